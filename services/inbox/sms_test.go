package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// Twilio-shaped credentials of the tests. The secrets share nothing with
// the SIDs, so that finding one in an answer means the secret leaked.
const (
	smsAccountSID = "AC0123456789abcdef0123456789abcdef"
	smsAuthToken  = "fedcba9876543210fedcba9876543210"
	smsKeySID     = "SK0123456789abcdef0123456789abcdef"
	smsKeySecret  = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
	smsNewToken   = "aaaabbbbccccddddeeeeffff00001111"
	smsNewSecret  = "ZyXwVuTsRqPoNmLkJiHgFeDcBa987654"
	smsServiceSID = "MG0123456789abcdef0123456789abcdef"
)

type adminSMSAccount struct {
	ID                   string   `json:"id"`
	Name                 string   `json:"name"`
	AccountSID           string   `json:"account_sid"`
	AuthTokenSet         bool     `json:"auth_token_set"`
	APIKeySID            string   `json:"api_key_sid"`
	APIKeySecretSet      bool     `json:"api_key_secret_set"`
	Numbers              []string `json:"numbers"`
	MessagingServiceSIDs []string `json:"messaging_service_sids"`
}

// smsAccountBody is a valid POST /v1/admin/sms-accounts body receiving on
// number.
func smsAccountBody(number string) string {
	return fmt.Sprintf(`{"name":"Support line","account_sid":%q,"auth_token":%q,"api_key_sid":%q,"api_key_secret":%q,
		"numbers":[%q],"messaging_service_sids":[%q]}`, smsAccountSID, smsAuthToken, smsKeySID, smsKeySecret, number, smsServiceSID)
}

// smsNumbers counts the numbers smsNumber gave, from a random start.
var smsNumbers atomic.Int64

func init() { smsNumbers.Store(rand.Int64N(5_000_000)) }

// smsNumber is a fresh E.164 number: no two calls give the same.
func smsNumber() string { return fmt.Sprintf("+1628%07d", smsNumbers.Add(1)) }

func TestAdminSMSAccounts(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	const base = "/v1/admin/sms-accounts"

	secrets := []string{smsAuthToken, smsKeySecret, smsNewToken, smsNewSecret}
	answers := &answerLog{t: t, e: e, token: admin}
	call := answers.call

	var a adminSMSAccount
	call(http.MethodPost, base, smsAccountBody("+14155550100"), http.StatusCreated, &a)
	require.Equal(t, adminSMSAccount{ID: a.ID, Name: "Support line", AccountSID: smsAccountSID, AuthTokenSet: true, APIKeySID: smsKeySID,
		APIKeySecretSet: true, Numbers: []string{"+14155550100"}, MessagingServiceSIDs: []string{smsServiceSID}}, a)
	var got adminSMSAccount
	call(http.MethodGet, base+"/"+a.ID, "", http.StatusOK, &got)
	require.Equal(t, a, got)

	// A number belongs to one account of the tenant.
	r := azCall(t, e, admin, http.MethodPost, base, `{"name":"Twin","account_sid":"`+smsAccountSID+`","auth_token":"`+smsAuthToken+`",
		"numbers":["+14155550199","+14155550100"]}`)
	answers.bodies = append(answers.bodies, string(r.Body))
	require.Equal(t, []string{"numbers[1]"}, azMustProblem(t, r, http.StatusBadRequest, "a taken number").fields())

	// PATCH keeps the secrets it does not name and replaces those it names;
	// an empty api_key_sid removes the key.
	call(http.MethodPatch, base+"/"+a.ID, `{"name":"Sales line","numbers":["+14155550100","+14155550101"],"messaging_service_sids":[]}`, http.StatusOK, &got)
	require.Equal(t, adminSMSAccount{ID: a.ID, Name: "Sales line", AccountSID: smsAccountSID, AuthTokenSet: true, APIKeySID: smsKeySID,
		APIKeySecretSet: true, Numbers: []string{"+14155550100", "+14155550101"}, MessagingServiceSIDs: []string{}}, got)
	call(http.MethodPatch, base+"/"+a.ID, `{"auth_token":"`+smsNewToken+`","api_key_secret":"`+smsNewSecret+`"}`, http.StatusOK, &got)
	require.True(t, got.AuthTokenSet)
	require.True(t, got.APIKeySecretSet)
	call(http.MethodPatch, base+"/"+a.ID, `{"api_key_sid":""}`, http.StatusOK, &got)
	require.Equal(t, "", got.APIKeySID)
	require.False(t, got.APIKeySecretSet)
	// The token is required: it verifies Twilio's webhooks.
	call(http.MethodPatch, base+"/"+a.ID, `{"auth_token":""}`, http.StatusBadRequest, nil)
	// Another Twilio account needs its own token.
	call(http.MethodPatch, base+"/"+a.ID, `{"account_sid":"AC00000000000000000000000000000000"}`, http.StatusBadRequest, nil)

	// Lists page like the other admin lists.
	second := e.createSMSAccount(t, admin, "+14155550102")
	third := e.createSMSAccount(t, admin, "+14155550103")
	ids := pagedIDs(call, base, func(it adminSMSAccount) string { return it.ID })
	require.Equal(t, []string{a.ID, second.ID, third.ID}, ids)

	// Another tenant sees none of them, and may use the same number.
	other := e.tenant(t, "Bravo")
	var theirs list[adminSMSAccount]
	require.Equal(t, http.StatusOK, e.do(t, other.APIToken.Token, http.MethodGet, base, "", &theirs))
	require.Empty(t, theirs.Items)
	e.createSMSAccount(t, other.APIToken.Token, "+14155550100")

	// Deleted, it is gone, and its number is free again.
	call(http.MethodDelete, base+"/"+second.ID, "", http.StatusNoContent, nil)
	call(http.MethodGet, base+"/"+second.ID, "", http.StatusNotFound, nil)
	call(http.MethodPatch, base+"/"+second.ID, `{"name":"Back"}`, http.StatusNotFound, nil)
	call(http.MethodDelete, base+"/"+second.ID, "", http.StatusNotFound, nil)
	call(http.MethodPost, base, smsAccountBody("+14155550102"), http.StatusCreated, nil)
	var l list[adminSMSAccount]
	call(http.MethodGet, base+"?limit=200", "", http.StatusOK, &l)
	require.Len(t, l.Items, 3)

	// Agents neither read nor write SMS accounts.
	_, agent := e.userToken(t, b, "agent")
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, base, "", nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, base+"/"+a.ID, "", nil))

	for _, body := range answers.bodies {
		for _, s := range secrets {
			require.NotContains(t, body, s, "an answer shows a secret")
		}
	}

	// The connector hears of each change, secrets included; a deleted
	// account is announced without them.
	want := map[string][]string{
		"sms_account/" + a.ID: {
			"Support line token=" + smsAuthToken + " key=" + smsKeySID + "/" + smsKeySecret + " numbers=[+14155550100] services=[" + smsServiceSID + "]",
			"Sales line token=" + smsAuthToken + " key=" + smsKeySID + "/" + smsKeySecret + " numbers=[+14155550100 +14155550101] services=[]",
			"Sales line token=" + smsNewToken + " key=" + smsKeySID + "/" + smsNewSecret + " numbers=[+14155550100 +14155550101] services=[]",
			"Sales line token=" + smsNewToken + " key=/ numbers=[+14155550100 +14155550101] services=[]",
		},
		"sms_account/" + second.ID: {
			"Support line token=" + smsAuthToken + " key=" + smsKeySID + "/" + smsKeySecret + " numbers=[+14155550102] services=[" + smsServiceSID + "]",
			"Support line token= key=" + smsKeySID + "/ numbers=[+14155550102] services=[" + smsServiceSID + "] deleted",
		},
	}
	require.Equal(t, want, readSMSAccountEvents(t, e, b, want))
}

// createSMSAccount creates an SMS account through the API.
func (e env) createSMSAccount(t *testing.T, token, number string) adminSMSAccount {
	t.Helper()
	var a adminSMSAccount
	require.Equal(t, http.StatusCreated, e.do(t, token, http.MethodPost, "/v1/admin/sms-accounts", smsAccountBody(number), &a))
	return a
}

// readSMSAccountEvents reads the config topic until every key of want has
// as many SMS account events as want lists, and returns them summarised.
func readSMSAccountEvents(t *testing.T, e env, b inbox.Bootstrap, want map[string][]string) map[string][]string {
	t.Helper()
	return readConfig(t, e, want, func(key string, ev events.Event) string {
		require.Equal(t, events.TypeSMSAccount, ev.Type)
		require.Equal(t, b.Tenant.ID.String(), ev.Tenant)
		var x events.SMSAccount
		require.NoError(t, ev.Decode(&x))
		openSecrets(t, e, x.SecretPlace(), x.SecretFields())
		require.Equal(t, "sms_account/"+x.ID, key)
		require.Equal(t, b.Tenant.ID.String(), x.TenantID)
		s := fmt.Sprintf("%s token=%s key=%s/%s numbers=%v services=%v", x.Name, x.AuthToken, x.APIKeySID, x.APIKeySecret, x.Numbers, x.MessagingServiceSIDs)
		if x.Deleted {
			s += " deleted"
		}
		return s
	})
}

// TestSMSConsent: a customer's STOP shows on their contact card and
// refuses replies, storing and sending nothing; START lifts it.
func TestSMSConsent(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	ours := smsNumber()
	acct := e.createSMSAccount(t, admin, ours)
	const customer = "+33612345678"

	send := func(sid, text, consent string) {
		t.Helper()
		m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelSMS, ChannelAccountID: acct.ID,
			ExternalID: sid, ThreadKey: ours + ":" + customer, From: events.Party{Identity: customer}, Text: text, ReceivedAt: time.Now().UTC()}
		if consent != "" {
			m.Metadata = map[string]string{"consent": consent}
		}
		ev, err := events.NewWithID("ev-"+sid, events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	}
	type identity struct {
		Channel          string     `json:"channel"`
		Identity         string     `json:"identity"`
		Consent          string     `json:"consent"`
		ConsentChangedAt *time.Time `json:"consent_changed_at"`
	}
	card := func(contact string) identity {
		t.Helper()
		var c struct {
			Identities []identity `json:"identities"`
		}
		r := azCall(t, e, admin, http.MethodGet, "/v1/contacts/"+contact, "")
		require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
		require.NoError(t, json.Unmarshal(r.Body, &c))
		require.Len(t, c.Identities, 1)
		return c.Identities[0]
	}

	send("SM1", "Where is my parcel?", "")
	var conv conversation
	testkit.Eventually(t, 20*time.Second, func() bool {
		cs := e.conversations(t, admin)
		if len(cs) == 1 {
			conv = cs[0]
		}
		return len(cs) == 1
	}, "the text was not stored")
	require.Equal(t, events.ChannelSMS, conv.Channel)
	require.Equal(t, identity{Channel: "sms", Identity: customer}, card(conv.ContactID), "no consent before any keyword")

	send("SM2", "STOP", "opted_out")
	testkit.Eventually(t, 20*time.Second, func() bool { return card(conv.ContactID).Consent == "opted_out" }, "STOP did not opt the customer out")
	require.NotNil(t, card(conv.ContactID).ConsentChangedAt)

	path := "/v1/conversations/" + conv.ID
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/assign", "", nil))
	snap := func() string {
		var s string
		for _, p := range []string{path, path + "/messages?limit=200", path + "/audit"} {
			r := azCall(t, e, admin, http.MethodGet, p, "")
			s += fmt.Sprintf("%s: %d %s\n", p, r.Status, r.Body)
		}
		return s
	}
	before := snap()
	r := azCall(t, e, admin, http.MethodPost, path+"/reply", `{"text":"It left the warehouse."}`)
	p := azMustProblem(t, r, http.StatusConflict, "a reply to an opted-out customer")
	require.Equal(t, []string{"to"}, p.fields())
	require.Contains(t, p.Detail, "opted out of SMS (STOP)")
	require.Equal(t, before, snap(), "a refused reply changed the conversation")

	send("SM3", "START", "opted_in")
	testkit.Eventually(t, 20*time.Second, func() bool { return card(conv.ContactID).Consent == "opted_in" }, "START did not opt the customer back in")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/reply", `{"text":"Welcome back: it left the warehouse."}`, nil))

	// The refused reply was never sent: the first command is the second reply.
	rd := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{events.TopicOutbound(events.ChannelSMS)}, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var cmd events.SendMessage
	for cmd.ConversationID != conv.ID {
		m, err := rd.FetchMessage(ctx)
		require.NoError(t, err)
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		require.NoError(t, ev.Decode(&cmd))
	}
	require.Equal(t, "Welcome back: it left the warehouse.", cmd.Text)
	require.Equal(t, customer, cmd.To)
	require.Equal(t, acct.ID, cmd.ChannelAccountID)

	// Twilio refuses that reply: the customer opted out where we did not
	// see it (error 21610). The connector says so; the next reply is refused.
	d := events.Delivery{MessageID: cmd.MessageID, TenantID: cmd.TenantID, Status: events.DeliveryFailed,
		Error: "Twilio error 21610: Attempt to send to unsubscribed recipient", At: time.Now().UTC(), OptedOut: true}
	ev, err := events.New(events.TypeDelivery, "test", d.TenantID, d.At, d)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicDelivery, []byte(d.MessageID), ev))
	testkit.Eventually(t, 20*time.Second, func() bool { return card(conv.ContactID).Consent == "opted_out" }, "Twilio's 21610 did not opt the customer out")
	r = azCall(t, e, admin, http.MethodPost, path+"/reply", `{"text":"Hello?"}`)
	azMustProblem(t, r, http.StatusConflict, "a reply after Twilio's 21610")
}
