package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// startConv is what the start tests read of a conversation.
type startConv struct {
	ID               string   `json:"id"`
	State            string   `json:"state"`
	Channel          string   `json:"channel"`
	ContactID        string   `json:"contact_id"`
	ChannelAccountID string   `json:"channel_account_id"`
	QueueID          string   `json:"queue_id"`
	Assignees        []string `json:"assignee_ids"`
	LastAgentID      string   `json:"last_agent_id"`
	LastWriter       string   `json:"last_writer"`
}

type startMsg struct {
	ID        string   `json:"id"`
	Direction string   `json:"direction"`
	Body      string   `json:"body"`
	Subject   string   `json:"subject"`
	CC        []string `json:"cc"`
}

// startPost posts a start with an optional Idempotency-Key.
func startPost(t *testing.T, e env, token, key, body string) (azResp, startConv) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+"/v1/conversations", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	oaCheck(t, req, resp.StatusCode, resp.Header, b)
	r := azResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
	var c startConv
	if resp.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(b, &c))
	}
	return r, c
}

// startCommand waits for the send command of conversation conv on channel.
func startCommand(t *testing.T, e env, channel, conv string) events.SendMessage {
	t.Helper()
	rd := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{events.TopicOutbound(channel)}, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		m, err := rd.FetchMessage(ctx)
		require.NoError(t, err, "no send command for conversation %s", conv)
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		if ev.Type != events.TypeSendMessage {
			continue
		}
		var cmd events.SendMessage
		require.NoError(t, ev.Decode(&cmd))
		if cmd.ConversationID == conv {
			return cmd
		}
	}
}

// startInbound publishes a customer's message as a connector does.
func startInbound(t *testing.T, e env, b inbox.Bootstrap, channel, account, thread, from, text string) {
	t.Helper()
	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: channel, ChannelAccountID: account,
		ExternalID: testkit.RandomName("x-"), ThreadKey: thread, From: events.Party{Identity: from}, Text: text, ReceivedAt: time.Now().UTC()}
	if channel == events.ChannelEmail {
		m.Subject = "Re: Your order"
	}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
}

func startMessages(t *testing.T, e env, token, conv string) []startMsg {
	t.Helper()
	var l list[startMsg]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/conversations/"+conv+"/messages?limit=200", "", &l))
	return l.Items
}

func TestStartEmailConversation(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Bravo")
	support := e.queue(t, b, "Support")
	user, agent := e.userToken(t, b, "agent", support)
	_, admin := e.userToken(t, b, "admin", support)
	_, otherAdmin := e.userToken(t, other, "admin")
	mb := e.createMailbox(t, admin, "support@acme.example")
	sms := e.createSMSAccount(t, admin, smsNumber())
	contact := azID(t, azCall(t, e, admin, http.MethodPost, "/v1/contacts",
		`{"name":"Ada","identities":[{"channel":"email","identity":"ada@customer.example"},{"channel":"email","identity":"ada@work.example"}]}`))
	noEmail := azID(t, azCall(t, e, admin, http.MethodPost, "/v1/contacts", `{"name":"Bob","identities":[{"channel":"sms","identity":"+33611111111"}]}`))
	theirs := azID(t, azCall(t, e, otherAdmin, http.MethodPost, "/v1/contacts", `{"name":"Eve","identities":[{"channel":"email","identity":"eve@customer.example"}]}`))
	body := func(contact, account, extra string) string {
		return fmt.Sprintf(`{"channel":"email","contact_id":%q,"channel_account_id":%q,"queue_id":%q,"subject":"Your order","text":"It left the warehouse."%s}`,
			contact, account, support.ID, extra)
	}
	listed := func() string {
		return string(azCall(t, e, admin, http.MethodGet, "/v1/conversations?limit=200", "").Body)
	}
	before := listed()

	// The recipient must be a contact of the tenant with an address.
	for _, c := range []struct {
		name, body, field string
		status            int
	}{
		{"another tenant's contact", body(theirs, mb.ID, ""), "contact_id", http.StatusUnprocessableEntity},
		{"a contact without an email address", body(noEmail, mb.ID, ""), "contact_id", http.StatusUnprocessableEntity},
		{"an address that is not the contact's", body(contact, mb.ID, `,"to":"eve@customer.example"`), "to", http.StatusUnprocessableEntity},
		{"an SMS account for an email", body(contact, sms.ID, ""), "channel_account_id", http.StatusBadRequest},
		{"a subject missing", strings.Replace(body(contact, mb.ID, ""), `"subject":"Your order",`, "", 1), "subject", http.StatusBadRequest},
		{"a cc that is not an address", body(contact, mb.ID, `,"cc":["boss"]`), "cc[0]", http.StatusBadRequest},
		{"reply_to unknown", body(contact, mb.ID, `,"reply_to":"customer"`), "reply_to", http.StatusBadRequest},
	} {
		r, _ := startPost(t, e, agent, "", c.body)
		p := azMustProblem(t, r, c.status, c.name)
		require.Equal(t, []string{c.field}, p.fields(), c.name)
	}

	// Up to 3 attachments ([002]); a 4th is refused.
	var ups []string
	for i := range 4 {
		r := azCallAs(t, e, agent, http.MethodPost, "/v1/attachments?filename="+url.QueryEscape(fmt.Sprintf("doc%d.txt", i)), "text/plain", fmt.Sprintf("document %d", i))
		require.Equal(t, http.StatusCreated, r.Status, "upload answered %s", r)
		ups = append(ups, azID(t, r))
	}
	four, _ := json.Marshal(ups)
	three, _ := json.Marshal(ups[:3])
	r, _ := startPost(t, e, agent, "", body(contact, mb.ID, `,"attachments":`+string(four)))
	require.Equal(t, []string{"attachments"}, azMustProblem(t, r, http.StatusBadRequest, "4 attachments").fields())
	require.Equal(t, before, listed(), "a refused start stored a conversation")

	// The start: to the contact's second address, with CC, 3 files and the
	// agent's own address for the answer.
	full := body(contact, mb.ID, `,"to":"Ada@Work.example","cc":["boss@customer.example"],"reply_to":"agent","attachments":`+string(three))
	r, c := startPost(t, e, agent, "order-42", full)
	require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
	require.Equal(t, "/v1/conversations/"+c.ID, r.Header.Get("Location"))
	require.Equal(t, "answered", c.State, "the first message is a reply: the conversation waits for the customer")
	require.Equal(t, events.ChannelEmail, c.Channel)
	require.Equal(t, contact, c.ContactID)
	require.Equal(t, support.ID.String(), c.QueueID)
	require.Equal(t, user.ID.String(), c.LastAgentID)
	require.Empty(t, c.Assignees)
	require.Equal(t, "agent", c.LastWriter)

	cmd := startCommand(t, e, events.ChannelEmail, c.ID)
	require.Equal(t, "ada@work.example", cmd.To)
	require.Equal(t, "Your order", cmd.Subject)
	require.Equal(t, []string{"boss@customer.example"}, cmd.CC)
	require.Equal(t, user.Email, cmd.ReplyTo)
	require.Empty(t, cmd.InReplyTo, "a new thread answers no mail")
	require.Equal(t, mb.ID, cmd.ChannelAccountID)
	require.Len(t, cmd.Attachments, 3)
	require.Equal(t, "doc0.txt", cmd.Attachments[0].Name)

	// Retried with the same key: nothing is sent again.
	r, again := startPost(t, e, agent, "order-42", full)
	require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
	require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
	require.Equal(t, c.ID, again.ID)
	msgs := startMessages(t, e, agent, c.ID)
	require.Len(t, msgs, 1)
	require.Equal(t, "outbound", msgs[0].Direction)
	require.Equal(t, "Your order", msgs[0].Subject)
	require.Equal(t, []string{"boss@customer.example"}, msgs[0].CC)
	r = azCall(t, e, agent, http.MethodGet, "/v1/conversations/"+c.ID+"/audit", "")
	var audit list[struct {
		Action string `json:"action"`
		From   string `json:"from_state"`
		To     string `json:"to_state"`
	}]
	require.NoError(t, json.Unmarshal(r.Body, &audit))
	require.Len(t, audit.Items, 2, "audit: %s", r.Body)
	require.Equal(t, "outbound", audit.Items[0].Action)
	require.Equal(t, "reply", audit.Items[1].Action)

	// The customer's answer, on the thread the connector records for the
	// mail it sent, lands in the same conversation and puts it back to work.
	startInbound(t, e, b, events.ChannelEmail, mb.ID, cmd.ThreadKey, "ada@work.example", "Thanks!")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(startMessages(t, e, agent, c.ID)) == 2 }, "the answer did not join the conversation")
	var now startConv
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, "/v1/conversations/"+c.ID, "", &now))
	require.Equal(t, "new", now.State)
	require.Equal(t, "customer", now.LastWriter)
}

func TestStartSMSConversation(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, agent := e.userToken(t, b, "agent", support)
	_, admin := e.userToken(t, b, "admin", support)
	ours, second := smsNumber(), smsNumber()
	acct := e.createSMSAccount(t, admin, ours)
	other := e.createSMSAccount(t, admin, second)
	const grace, hugo = "+33622222222", "+33633333333"
	contact := azID(t, azCall(t, e, admin, http.MethodPost, "/v1/contacts", fmt.Sprintf(`{"name":"Grace","identities":[{"channel":"sms","identity":%q}]}`, grace)))
	body := func(account, extra string) string {
		return fmt.Sprintf(`{"channel":"sms","contact_id":%q,"channel_account_id":%q,"queue_id":%q,"text":"Your parcel is ready."%s}`, contact, account, support.ID, extra)
	}
	for _, c := range []struct{ name, extra, field string }{
		{"a subject on SMS", `,"subject":"Hi"`, "subject"},
		{"cc on SMS", `,"cc":["a@example.com"]`, "cc"},
		{"reply_to on SMS", `,"reply_to":"agent"`, "reply_to"},
		{"a number that is not E.164", `,"to":"0622222222"`, "to"},
	} {
		r, _ := startPost(t, e, agent, "", body(acct.ID, c.extra))
		require.Equal(t, []string{c.field}, azMustProblem(t, r, http.StatusBadRequest, c.name).fields(), c.name)
	}

	r, c := startPost(t, e, agent, "", body(acct.ID, ""))
	require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
	require.Equal(t, "answered", c.State)
	cmd := startCommand(t, e, events.ChannelSMS, c.ID)
	require.Equal(t, grace, cmd.To)
	require.Equal(t, ours+":"+grace, cmd.ThreadKey, "sent from the account's number, which the answer comes back to")
	require.Equal(t, "Your parcel is ready.", cmd.Text)

	// One conversation per pair of numbers: a second start names the first.
	r, _ = startPost(t, e, agent, "", body(acct.ID, ""))
	p := azMustProblem(t, r, http.StatusConflict, "a second start on the same numbers")
	require.Equal(t, []string{"to"}, p.fields())
	var taken struct {
		ConversationID string `json:"conversation_id"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &taken))
	require.Equal(t, c.ID, taken.ConversationID)

	// The customer's answer joins it.
	startInbound(t, e, b, events.ChannelSMS, acct.ID, ours+":"+grace, grace, "On my way")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(startMessages(t, e, agent, c.ID)) == 2 }, "the answer did not join the conversation")

	// Consent: Hugo texted STOP; a start toward him is refused, nothing stored.
	hugoContact := azID(t, azCall(t, e, admin, http.MethodPost, "/v1/contacts", fmt.Sprintf(`{"name":"Hugo","identities":[{"channel":"sms","identity":%q}]}`, hugo)))
	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelSMS, ChannelAccountID: acct.ID, ExternalID: "SM-stop",
		ThreadKey: ours + ":" + hugo, From: events.Party{Identity: hugo}, Text: "STOP", ReceivedAt: time.Now().UTC(), Metadata: map[string]string{"consent": "opted_out"}}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	testkit.Eventually(t, 20*time.Second, func() bool {
		return strings.Contains(string(azCall(t, e, admin, http.MethodGet, "/v1/contacts/"+hugoContact, "").Body), "opted_out")
	}, "STOP did not opt Hugo out")
	listed := string(azCall(t, e, admin, http.MethodGet, "/v1/conversations?limit=200", "").Body)
	r, _ = startPost(t, e, agent, "", fmt.Sprintf(`{"channel":"sms","contact_id":%q,"channel_account_id":%q,"queue_id":%q,"text":"Hello"}`, hugoContact, other.ID, support.ID))
	p = azMustProblem(t, r, http.StatusConflict, "a start toward an opted-out number")
	require.Equal(t, []string{"to"}, p.fields())
	require.Contains(t, p.Detail, "opted out of SMS")
	require.Equal(t, listed, string(azCall(t, e, admin, http.MethodGet, "/v1/conversations?limit=200", "").Body), "a refused start stored something")
}
