package main_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// twilioDouble stands in for Twilio's Messages resource
// (POST and GET /2010-04-01/Accounts/{sid}/Messages.json) on 127.0.0.1,
// with HTTP basic authentication by account SID and auth token.
type twilioDouble struct {
	srv        *httptest.Server
	accountSID string
	authToken  string

	mu       sync.Mutex
	requests int // POSTs received, refused or not
	created  []twilioMessage
}

// twilioMessage is a message created at the double.
type twilioMessage struct {
	SID, To, From, Body, StatusCallback string
}

func newTwilioDouble(t *testing.T, accountSID, authToken string) *twilioDouble {
	t.Helper()
	d := &twilioDouble{accountSID: accountSID, authToken: authToken}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	t.Cleanup(d.srv.Close)
	return d
}

// messages returns the messages created so far and the POSTs received.
func (d *twilioDouble) messages() ([]twilioMessage, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.created), d.requests
}

func (d *twilioDouble) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status, code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "status": status})
	}
	if r.Method == http.MethodPost {
		d.mu.Lock()
		d.requests++
		d.mu.Unlock()
	}
	if user, password, ok := r.BasicAuth(); !ok || user != d.accountSID || password != d.authToken {
		fail(http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.URL.Path != "/2010-04-01/Accounts/"+d.accountSID+"/Messages.json" {
		fail(http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodGet:
		// An attempt in doubt is looked for here; none is in this test.
		d.mu.Lock()
		list := make([]map[string]any, 0, len(d.created))
		for _, m := range d.created {
			list = append(list, d.resource(m))
		}
		d.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": list, "page": 0, "page_size": len(list), "next_page_uri": nil})
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, 20001, err.Error())
			return
		}
		d.mu.Lock()
		m := twilioMessage{SID: fmt.Sprintf("SM%032x", len(d.created)+1), To: r.PostForm.Get("To"), From: r.PostForm.Get("From"),
			Body: r.PostForm.Get("Body"), StatusCallback: r.PostForm.Get("StatusCallback")}
		d.created = append(d.created, m)
		d.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(d.resource(m))
	default:
		fail(http.StatusMethodNotAllowed, 20004, "Method not allowed")
	}
}

// resource renders m as Twilio's API does.
func (d *twilioDouble) resource(m twilioMessage) map[string]any {
	now := time.Now().UTC().Format(time.RFC1123Z)
	return map[string]any{
		"sid": m.SID, "account_sid": d.accountSID, "to": m.To, "from": m.From, "body": m.Body, "status": "queued",
		"direction": "outbound-api", "num_segments": "1", "num_media": "0", "date_created": now, "date_updated": now,
		"api_version": "2010-04-01", "uri": "/2010-04-01/Accounts/" + d.accountSID + "/Messages/" + m.SID + ".json",
	}
}

// startSMSNode starts the binary with its SMS connector signing webhooks
// for its own address and calling twilio for Twilio's API.
func startSMSNode(t *testing.T, dbURL, twilio string) *testkit.Node {
	t.Helper()
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := testkit.StartNode(ctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(), Addr: addr,
		Args: []string{"-sms.public-base-url=http://" + addr, "-sms.twilio.base-url=" + twilio}})
	require.NoError(t, err)
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("switchboard output:\n%s", n.Logs())
		}
	})
	return n
}

// twilioSignature is X-Twilio-Signature: base64 of the HMAC-SHA1, keyed
// with the auth token, of the URL followed by each POST parameter's name
// and value, sorted by name.
func twilioSignature(token, u string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(token))
	_, _ = io.WriteString(mac, u)
	for _, k := range keys {
		for _, v := range form[k] {
			_, _ = io.WriteString(mac, k+v)
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// postTwilio posts form to u signed with token, as Twilio does, and
// returns the answer's status.
func postTwilio(t *testing.T, u, token string, form url.Values) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilioSignature(token, u, form))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Logf("POST %s: %d %s", u, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// TestSMSEndToEnd runs the binary against a Twilio double: an admin
// configures an SMS account through the API, a customer's signed SMS
// becomes a conversation (and the same MessageSid posted again is stored
// once), an agent answers, the answer reaches Twilio from our number with
// a status callback that marks it delivered, and after the customer's STOP
// a second answer never reaches Twilio.
func TestSMSEndToEnd(t *testing.T) {
	const (
		accountSID = "AC0123456789abcdef0123456789abcdef"
		authToken  = "f00dcafe5ec7e70ce7f00dcafe5ec7e7"
		ours       = "+33700000001"
		customer   = "+33612345678"
	)
	twilio := newTwilioDouble(t, accountSID, authToken)
	db := testkit.DatabaseURL(t)
	node := startSMSNode(t, db, twilio.srv.URL)
	base := node.Base()
	b, err := testkit.CreateTenant(binary, db, "SMS Co")
	require.NoError(t, err)
	admin := b.APIToken.Token

	var acct map[string]any
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/sms-accounts", admin, map[string]any{
		"name": "France", "account_sid": accountSID, "auth_token": authToken, "numbers": []string{ours},
	}, &acct))
	account, _ := acct["id"].(string)
	require.NotEmpty(t, account, "the created SMS account has an id: %v", acct)
	raw, err := json.Marshal(acct)
	require.NoError(t, err)
	require.NotContains(t, string(raw), authToken, "the auth token is never returned")

	inbound := func(sid, body string) url.Values {
		return url.Values{
			"AccountSid": {accountSID}, "MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "SmsStatus": {"received"},
			"From": {customer}, "To": {ours}, "Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"},
			"FromCountry": {"FR"}, "ToCountry": {"FR"}, "ApiVersion": {"2010-04-01"},
		}
	}
	messagesURL := base + "/v1/webhooks/sms/" + account + "/messages"
	first := inbound("SM00000000000000000000000000000001", "Bonjour, où est mon colis ?")
	// The account is known once the connector has read its configuration;
	// until then the webhook is refused (403) and Twilio would retry.
	testkit.Eventually(t, 30*time.Second, func() bool {
		return postTwilio(t, messagesURL, authToken, first) == http.StatusOK
	}, "the customer's SMS is answered 200")

	var conv conversation
	testkit.Eventually(t, 30*time.Second, func() bool {
		var list struct {
			Items []conversation `json:"items"`
		}
		api(t, "GET", base+"/v1/conversations?channel=sms", admin, nil, &list)
		if len(list.Items) == 1 {
			conv = list.Items[0]
		}
		return len(list.Items) == 1
	}, "the customer's SMS becomes a conversation")
	require.Equal(t, "sms", conv.Channel)
	conn, err := pgx.Connect(context.Background(), db)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var threadKey, channelAccount string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT thread_key, channel_account_id::text FROM inbox.conversations WHERE id = $1`, conv.ID).
		Scan(&threadKey, &channelAccount))
	require.Equal(t, ours+":"+customer, threadKey, "one conversation per (our number, customer)")
	require.Equal(t, account, channelAccount)
	var msgs struct {
		Items []message `json:"items"`
	}
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", admin, nil, &msgs))
	require.Len(t, msgs.Items, 1)
	require.Equal(t, "Bonjour, où est mon colis ?", msgs.Items[0].Body)

	// Twilio delivers the same message again (a retry after a timeout):
	// answered, stored once.
	require.Equal(t, http.StatusOK, postTwilio(t, messagesURL, authToken, first))

	// An agent of a queue takes it and answers.
	var queue struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/queues", admin, map[string]any{"name": "SMS"}, &queue))
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/users", admin, map[string]any{
		"email": "ada@shop.example", "name": "Ada", "role": "agent", "queue_ids": []string{queue.ID}, "password": "correct horse battery",
	}, nil))
	var login struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/auth/login", "", map[string]any{"tenant_id": b.Tenant.ID, "email": "ada@shop.example", "password": "correct horse battery"}, &login))
	agent := login.AccessToken
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/assign", agent, nil, nil))
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/route", agent, map[string]any{"queue_id": queue.ID}, nil))
	const answer = "Bonjour, votre colis part demain."
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/reply", agent, map[string]any{"text": answer}, &conv))
	require.Equal(t, "answered", conv.State)

	testkit.Eventually(t, 30*time.Second, func() bool { m, _ := twilio.messages(); return len(m) == 1 }, "the answer reaches Twilio")
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs))
	require.Len(t, msgs.Items, 2)
	reply := msgs.Items[1]
	require.Equal(t, "outbound", reply.Direction)
	sent, _ := twilio.messages()
	require.Equal(t, customer, sent[0].To)
	require.Equal(t, ours, sent[0].From, "sent from the number the customer wrote to")
	require.Equal(t, answer, sent[0].Body)
	statusURL := base + "/v1/webhooks/sms/" + account + "/status?message_id=" + reply.ID
	require.Equal(t, statusURL, sent[0].StatusCallback)
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 2 && msgs.Items[1].Delivery == "sent"
	}, "the answer is marked sent")

	// Twilio reports it delivered.
	require.Equal(t, http.StatusNoContent, postTwilio(t, statusURL, authToken, url.Values{
		"AccountSid": {accountSID}, "MessageSid": {sent[0].SID}, "SmsSid": {sent[0].SID}, "MessageStatus": {"delivered"},
		"SmsStatus": {"delivered"}, "To": {customer}, "From": {ours}, "ApiVersion": {"2010-04-01"},
	}))
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 2 && msgs.Items[1].Delivery == "delivered"
	}, "the answer is marked delivered")

	// The customer opts out; the retry of the first message was published
	// before, on the same conversation's partition, so it has been handled
	// once the STOP shows.
	require.Equal(t, http.StatusOK, postTwilio(t, messagesURL, authToken, inbound("SM00000000000000000000000000000002", "STOP")))
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) >= 3 && msgs.Items[len(msgs.Items)-1].Body == "STOP"
	}, "the STOP joins the conversation")
	require.Len(t, msgs.Items, 3, "the first message, posted twice, is stored once")
	require.Equal(t, "opted_out", msgs.Items[2].Metadata["consent"])
	var copies int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM inbox.messages WHERE external_id = $1`, first.Get("MessageSid")).Scan(&copies))
	require.Equal(t, 1, copies, "the same MessageSid posted twice is stored once")

	// A second answer must not reach the customer.
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/assign", agent, nil, nil))
	status := api(t, "POST", base+"/v1/conversations/"+conv.ID+"/reply", agent, map[string]any{"text": "Autre chose ?"}, nil)
	switch status {
	case http.StatusConflict, http.StatusUnprocessableEntity:
		// The inbox knows of the opt-out and refuses the reply itself:
		// nothing is stored, nothing is sent.
		t.Logf("the inbox refused the reply to an opted-out customer: %d", status)
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		require.Len(t, msgs.Items, 3, "a refused reply is not stored")
	case http.StatusOK:
		// The inbox accepts it; the connector checks consent before any
		// call to Twilio and reports the message failed.
		t.Log("the inbox accepted the reply to an opted-out customer; the connector must fail it")
		testkit.Eventually(t, 30*time.Second, func() bool {
			api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
			return len(msgs.Items) == 4 && msgs.Items[3].Delivery == "failed"
		}, "the answer to an opted-out number is reported failed")
		require.Equal(t, "Autre chose ?", msgs.Items[3].Body)
		var reason string
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT coalesce(delivery_error, '') FROM inbox.messages WHERE id = $1`, msgs.Items[3].ID).Scan(&reason))
		require.Contains(t, reason, "opted out", "the agent sees why")
	default:
		t.Fatalf("a reply to an opted-out customer answered %d, want 200 (failed by the connector), 409 or 422 (refused by the inbox)", status)
	}
	created, posts := twilio.messages()
	require.Len(t, created, 1, "nothing more reaches Twilio after STOP")
	require.Equal(t, 1, posts, "no call to Twilio after STOP")

	require.NotContains(t, node.Logs(), authToken, "the auth token is never logged")
}
