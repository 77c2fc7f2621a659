package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// Flags of a node whose chat deliveries go to test receivers on
// 127.0.0.1 over plain http, and retry fast.
var chatOutArgs = []string{
	"-egress.allow=127.0.0.1/32", "-egress.allow-http",
	"-chat.delivery.retry-for=4s", "-chat.delivery.retry-initial=100ms", "-chat.delivery.retry-max=500ms",
	"-chat.delivery.poll-interval=200ms",
}

// chatDelivery is one request a chat endpoint received.
type chatDelivery struct {
	key, event, attempt string
	body                []byte
	env                 struct {
		ID             string         `json:"id"`
		Type           string         `json:"type"`
		ChannelID      string         `json:"channel_id"`
		SessionID      string         `json:"session_id"`
		UserID         string         `json:"user_id"`
		ConversationID string         `json:"conversation_id"`
		Data           map[string]any `json:"data"`
	}
	signed bool
	// status is what it was answered; -1 while unanswered.
	status int
}

// chatEndpoint is a tenant's chat endpoint: it checks each delivery's
// signature with the outbound secret, and answers as answer says (by the
// text of the message and how often its key was seen before; nil: 200).
type chatEndpoint struct {
	srv    *httptest.Server
	answer func(text string, seen int) int

	mu     sync.Mutex
	secret string
	got    []*chatDelivery
	seen   map[string]int
}

func newChatEndpoint(t *testing.T, answer func(text string, seen int) int) *chatEndpoint {
	ep := &chatEndpoint{answer: answer, seen: map[string]int{}}
	ep.srv = httptest.NewServer(http.HandlerFunc(ep.serve))
	t.Cleanup(ep.srv.Close)
	return ep
}

func (ep *chatEndpoint) setSecret(s string) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.secret = s
}

func (ep *chatEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := &chatDelivery{key: r.Header.Get("Idempotency-Key"), event: r.Header.Get("X-Switchboard-Event"),
		attempt: r.Header.Get("X-Switchboard-Attempt"), body: body, status: -1}
	_ = json.Unmarshal(body, &d.env)
	ep.mu.Lock()
	d.signed = ep.secret != "" && webhook.Verify([][]byte{[]byte(ep.secret)}, r.Header.Get(webhook.HeaderTimestamp),
		r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute) == nil
	seen := ep.seen[d.key]
	ep.seen[d.key]++
	ep.got = append(ep.got, d)
	ep.mu.Unlock()
	status := http.StatusOK
	if ep.answer != nil {
		text, _ := d.env.Data["text"].(string)
		status = ep.answer(text, seen)
	}
	w.WriteHeader(status)
	ep.mu.Lock()
	d.status = status
	ep.mu.Unlock()
}

// deliveries returns a copy of what arrived, in arrival order.
func (ep *chatEndpoint) deliveries() []chatDelivery {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	out := make([]chatDelivery, len(ep.got))
	for i, d := range ep.got {
		out[i] = *d
	}
	return out
}

// accepted returns the deliveries answered 2xx, in arrival order.
func (ep *chatEndpoint) accepted() []chatDelivery {
	var out []chatDelivery
	for _, d := range ep.deliveries() {
		if d.status >= 200 && d.status < 300 {
			out = append(out, d)
		}
	}
	return out
}

// acceptedIDs is the set of delivery ids answered 2xx.
func (ep *chatEndpoint) acceptedIDs() map[string]int {
	out := map[string]int{}
	for _, d := range ep.accepted() {
		out[d.env.ID]++
	}
	return out
}

// chatOutTenant is a tenant set up to reply: a queue, an agent who logged
// in, and its chat channel's endpoint.
type chatOutTenant struct {
	b            testkit.Bootstrap
	api, webhook string // base URLs of the inbox API and of the chat webhooks
	agent, queue string
	db           *pgxpool.Pool
}

func setUpChatOut(t *testing.T, b testkit.Bootstrap, apiBase, webhookBase, dbURL string) *chatOutTenant {
	t.Helper()
	ten := &chatOutTenant{b: b, api: apiBase, webhook: webhookBase}
	admin := b.APIToken.Token
	var q struct {
		ID string `json:"id"`
	}
	mustAPI(t, http.StatusCreated, http.MethodPost, apiBase+"/v1/admin/queues", admin, map[string]string{"name": "Support"}, &q)
	ten.queue = q.ID
	mustAPI(t, http.StatusCreated, http.MethodPost, apiBase+"/v1/admin/users", admin, map[string]any{"email": "ada@acme.test", "name": "Ada", "role": "agent",
		"capacity": 100, "queue_ids": []string{q.ID}, "password": "correct horse battery"}, nil)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	mustAPI(t, http.StatusOK, http.MethodPost, apiBase+"/v1/auth/login", "", map[string]string{"tenant_id": b.Tenant.ID, "email": "ada@acme.test", "password": "correct horse battery"}, &login)
	ten.agent = login.AccessToken
	db, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	ten.db = db
	return ten
}

// setEndpoint points a chat channel at ep and returns the outbound secret
// the answer made.
func (ten *chatOutTenant) setEndpoint(t *testing.T, channelID string, ep *chatEndpoint) {
	t.Helper()
	var out struct {
		Outbound struct {
			Secret string   `json:"secret"`
			Events []string `json:"events"`
		} `json:"outbound"`
	}
	mustAPI(t, http.StatusOK, http.MethodPatch, ten.api+"/v1/admin/chat-channels/"+channelID, ten.b.APIToken.Token,
		map[string]any{"outbound": map[string]any{"url": ep.srv.URL + "/switchboard", "events": []string{"message.created"}}}, &out)
	require.NotEmpty(t, out.Outbound.Secret, "the answer that made the endpoint shows its secret")
	ep.setSecret(out.Outbound.Secret)
}

// newChannel creates another chat channel with its endpoint at ep and
// returns how to post to it.
func (ten *chatOutTenant) newChannel(t *testing.T, name string, ep *chatEndpoint) testkit.Bootstrap {
	t.Helper()
	var out struct {
		ID            string `json:"id"`
		WebhookPath   string `json:"webhook_path"`
		InboundSecret string `json:"inbound_secret"`
		Outbound      struct {
			Secret string `json:"secret"`
		} `json:"outbound"`
	}
	mustAPI(t, http.StatusCreated, http.MethodPost, ten.api+"/v1/admin/chat-channels", ten.b.APIToken.Token,
		map[string]any{"name": name, "outbound": map[string]any{"url": ep.srv.URL + "/switchboard"}}, &out)
	require.NotEmpty(t, out.InboundSecret)
	require.NotEmpty(t, out.Outbound.Secret)
	ep.setSecret(out.Outbound.Secret)
	b := ten.b
	b.ChatChannel.ID, b.ChatChannel.Secret, b.WebhookPath = out.ID, out.InboundSecret, out.WebhookPath
	return b
}

// conversation makes a customer of channel b write in session, waits for
// the conversation, and has the agent take it into the queue.
func (ten *chatOutTenant) conversation(t *testing.T, client *http.Client, b testkit.Bootstrap, session string) string {
	t.Helper()
	chatSay(t, client, ten.webhook, b, "in-"+session, session, "Bonjour, ma commande ?", nil)
	var id string
	testkit.Eventually(t, 30*time.Second, func() bool {
		err := ten.db.QueryRow(context.Background(), `SELECT id::text FROM inbox.conversations WHERE thread_key = $1 AND channel_account_id = $2`,
			session, b.ChatChannel.ID).Scan(&id)
		return err == nil
	}, "no conversation for session %s", session)
	mustAPI(t, http.StatusOK, http.MethodPost, ten.api+"/v1/conversations/"+id+"/assign", ten.agent, nil, nil)
	mustAPI(t, http.StatusOK, http.MethodPost, ten.api+"/v1/conversations/"+id+"/route", ten.agent, map[string]string{"queue_id": ten.queue}, nil)
	return id
}

// reply answers conversation id with text (taking it back first when it
// was answered already) and returns the message's id.
func (ten *chatOutTenant) reply(t *testing.T, id, text string) string {
	t.Helper()
	var state struct {
		State string `json:"state"`
	}
	mustAPI(t, http.StatusOK, http.MethodGet, ten.api+"/v1/conversations/"+id, ten.agent, nil, &state)
	if state.State != "assigned" {
		mustAPI(t, http.StatusOK, http.MethodPost, ten.api+"/v1/conversations/"+id+"/assign", ten.agent, nil, nil)
	}
	mustAPI(t, http.StatusOK, http.MethodPost, ten.api+"/v1/conversations/"+id+"/reply", ten.agent, map[string]string{"text": text}, nil)
	var mid string
	require.NoError(t, ten.db.QueryRow(context.Background(), `SELECT id::text FROM inbox.messages
		WHERE conversation_id = $1 AND direction = 'outbound' AND body = $2`, id, text).Scan(&mid))
	return mid
}

// deliveryStatus is the message's delivery status as the inbox has it.
func (ten *chatOutTenant) deliveryStatus(t *testing.T, messageID string) string {
	var s string
	require.NoError(t, ten.db.QueryRow(context.Background(), `SELECT coalesce(delivery_status, '') FROM inbox.messages WHERE id = $1`, messageID).Scan(&s))
	return s
}

func (ten *chatOutTenant) waitStatus(t *testing.T, messageID, want string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() bool { return ten.deliveryStatus(t, messageID) == want },
		"message %s is %q, want %q", messageID, ten.deliveryStatus(t, messageID), want)
}

// TestChatRepliesBothWaysEndToEnd runs a chat conversation through the
// binary both ways: a customer's message in, the agent's reply delivered
// to the tenant's endpoint signed with the outbound secret, a reply the
// endpoint refuses three times delivered once and before the next one, a
// reply to an endpoint down for good failed after the retry time, listed
// as failed and replayed once the endpoint is back, and the endpoint's
// read receipt reaching the message.
func TestChatRepliesBothWaysEndToEnd(t *testing.T) {
	dbURL := testkit.DatabaseURL(t)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	var down atomic.Bool
	ep := newChatEndpoint(t, func(text string, seen int) int {
		switch {
		case down.Load():
			return http.StatusServiceUnavailable
		case strings.Contains(text, "flaky") && seen < 3:
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := testkit.StartNode(ctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(), Args: chatOutArgs})
	require.NoError(t, err)
	t.Cleanup(func() {
		node.Kill()
		if t.Failed() {
			t.Logf("switchboard output:\n%s", lastLines(node.Logs(), 200))
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	ten := setUpChatOut(t, b, node.Base(), node.Base(), dbURL)
	ten.setEndpoint(t, b.ChatChannel.ID, ep)

	// A reply, delivered signed.
	conv := ten.conversation(t, client, b, "s-1")
	first := ten.reply(t, conv, "Bonjour, nous regardons votre commande.")
	testkit.Eventually(t, 30*time.Second, func() bool { return ep.acceptedIDs()[first] == 1 }, "the reply never reached the endpoint")
	d := ep.accepted()[0]
	require.True(t, d.signed, "signed with the outbound secret")
	require.Equal(t, first, d.key)
	require.Equal(t, "message.created", d.event)
	require.Equal(t, "1", d.attempt)
	require.Equal(t, "message.created", d.env.Type)
	require.Equal(t, b.ChatChannel.ID, d.env.ChannelID)
	require.Equal(t, "s-1", d.env.SessionID)
	require.Equal(t, "user-s-1", d.env.UserID)
	require.Equal(t, conv, d.env.ConversationID)
	require.Equal(t, "Bonjour, nous regardons votre commande.", d.env.Data["text"])
	ten.waitStatus(t, first, "sent")

	// The endpoint reads it: its status webhook, signed with the inbound
	// secret.
	body := []byte(fmt.Sprintf(`{"message_id":%q,"status":"read"}`, first))
	req, err := http.NewRequest(http.MethodPost, node.Base()+"/v1/webhooks/chat/"+b.ChatChannel.ID+"/statuses", bytes.NewReader(body))
	require.NoError(t, err)
	now := time.Now()
	req.Header.Set(webhook.HeaderTimestamp, webhook.Timestamp(now))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(b.ChatChannel.Secret), now, body))
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	ten.waitStatus(t, first, "read")

	// Refused three times, then accepted: delivered once, and the next
	// reply of the conversation after it.
	flaky := ten.reply(t, conv, "Un instant (flaky).")
	next := ten.reply(t, conv, "Voilà, c'est réglé.")
	testkit.Eventually(t, 30*time.Second, func() bool { return ep.acceptedIDs()[next] == 1 }, "the reply after the flaky one never arrived")
	var order []string
	for _, d := range ep.deliveries() {
		if d.env.ID == flaky || d.env.ID == next {
			order = append(order, fmt.Sprintf("%s/%d", map[string]string{flaky: "flaky", next: "next"}[d.env.ID], d.status))
			require.True(t, d.signed)
			require.Equal(t, d.env.ID, d.key)
		}
	}
	require.Equal(t, []string{"flaky/502", "flaky/502", "flaky/502", "flaky/200", "next/200"}, order)
	require.Equal(t, 1, ep.acceptedIDs()[flaky], "delivered once")
	ten.waitStatus(t, flaky, "sent")
	ten.waitStatus(t, next, "sent")

	// Down for good: failed once the retry time has passed, listed, then
	// replayed once the endpoint is back.
	down.Store(true)
	lost := ten.reply(t, conv, "Avez-vous reçu le colis ?")
	ten.waitStatus(t, lost, "failed")
	var failed struct {
		Items []struct {
			MessageID string `json:"message_id"`
			Channel   string `json:"channel"`
			Error     string `json:"error"`
		} `json:"items"`
	}
	mustAPI(t, http.StatusOK, http.MethodGet, node.Base()+"/v1/admin/deliveries?status=failed", b.APIToken.Token, nil, &failed)
	require.Len(t, failed.Items, 1)
	require.Equal(t, lost, failed.Items[0].MessageID)
	require.Equal(t, "chat", failed.Items[0].Channel)
	require.Contains(t, failed.Items[0].Error, "HTTP 503")
	attemptsDown := 0
	for _, d := range ep.deliveries() {
		if d.env.ID == lost {
			attemptsDown++
		}
	}
	require.GreaterOrEqual(t, attemptsDown, 2, "retried before it failed")
	down.Store(false)
	mustAPI(t, http.StatusAccepted, http.MethodPost, node.Base()+"/v1/admin/deliveries/"+lost+"/replay", b.APIToken.Token, nil, nil)
	testkit.Eventually(t, 30*time.Second, func() bool { return ep.acceptedIDs()[lost] == 1 }, "the replayed reply never arrived")
	ten.waitStatus(t, lost, "sent")
	for _, d := range ep.deliveries() {
		if d.env.ID == lost {
			require.Equal(t, lost, d.key, "the same Idempotency-Key on every attempt and the replay")
		}
	}
}

// TestChatEndpointsAreIsolatedEndToEnd: with one channel's endpoint
// hanging (its requests never answered during the test), another
// channel's replies are all delivered.
func TestChatEndpointsAreIsolatedEndToEnd(t *testing.T) {
	const hanging, fine = 8, 20
	dbURL := testkit.DatabaseURL(t)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	release := make(chan struct{})
	var answered atomic.Int64
	stuck := newChatEndpoint(t, func(string, int) int {
		<-release
		answered.Add(1)
		return http.StatusOK
	})
	ok := newChatEndpoint(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Nothing times out during the test: the hanging endpoint holds its
	// attempt slots all along.
	args := append([]string{"-chat.delivery.attempt-timeout=5m", "-egress.request-timeout=5m", "-egress.response-header-timeout=5m"}, chatOutArgs...)
	node, err := testkit.StartNode(ctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(), Args: args})
	require.NoError(t, err)
	t.Cleanup(func() {
		node.Kill()
		close(release)
		if t.Failed() {
			t.Logf("switchboard output:\n%s", lastLines(node.Logs(), 200))
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	ten := setUpChatOut(t, b, node.Base(), node.Base(), dbURL)
	ten.setEndpoint(t, b.ChatChannel.ID, stuck)
	other := ten.newChannel(t, "Bot platform", ok)

	var stuckReplies []string
	for i := range hanging {
		conv := ten.conversation(t, client, b, fmt.Sprintf("stuck-%d", i))
		stuckReplies = append(stuckReplies, ten.reply(t, conv, fmt.Sprintf("Réponse %d", i)))
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return len(stuck.deliveries()) > 0 }, "the hanging endpoint was never called")
	var fineReplies []string
	for i := range fine {
		conv := ten.conversation(t, client, other, fmt.Sprintf("fine-%d", i))
		fineReplies = append(fineReplies, ten.reply(t, conv, fmt.Sprintf("Réponse rapide %d", i)))
	}
	testkit.Eventually(t, 60*time.Second, func() bool { return len(ok.acceptedIDs()) == fine }, "%d of %d replies of the other channel delivered", len(ok.acceptedIDs()), fine)
	for _, id := range fineReplies {
		require.Equal(t, 1, ok.acceptedIDs()[id])
		ten.waitStatus(t, id, "sent")
	}
	for _, d := range ok.accepted() {
		require.True(t, d.signed)
	}
	require.Zero(t, answered.Load(), "the hanging endpoint answered nothing meanwhile")
	require.LessOrEqual(t, len(stuck.deliveries()), 4, "it holds its own attempt slots (-chat.delivery.concurrency), no more")
	for _, id := range stuckReplies {
		require.Equal(t, "pending", ten.deliveryStatus(t, id))
	}
}

// TestChatDeliveriesSurviveSIGKILL runs the chat connector as its own
// process beside the inbox, on one Kafka broker (in this process), and
// kills it with SIGKILL while it delivers 60 replies to a slow endpoint:
// once it is started again, every reply has reached the endpoint, in
// order in each conversation; a reply delivered twice (its attempt was in
// flight at the kill) came both times with the same Idempotency-Key and
// the same body.
func TestChatDeliveriesSurviveSIGKILL(t *testing.T) {
	const convs, perConv = 30, 2
	dbURL := testkit.DatabaseURL(t)
	brokers := testkit.Kafka(t)
	redisURL := os.Getenv("SB_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = testkit.DefaultRedisURL
	}
	env := append(testkit.KafkaEnv(brokers), "SB_REDIS_URL="+redisURL)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	ep := newChatEndpoint(t, func(string, int) int {
		time.Sleep(40 * time.Millisecond) // slow: attempts are in flight at the kill
		return http.StatusOK
	})
	inboxAddr, err := testkit.FreeAddr()
	require.NoError(t, err)
	chatAddr, err := testkit.FreeAddr()
	require.NoError(t, err)
	dataDir := t.TempDir()
	procs := newProcesses(t)
	start := func(targets, addr string) *testkit.Node {
		t.Helper()
		return procs.start(t, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: dataDir, Addr: addr, Targets: targets, Env: env,
			Args: append([]string{"-kafka.consumer.session-timeout=6s", "-chat.delivery.attempt-timeout=3s"}, chatOutArgs...)})
	}
	start("inbox", inboxAddr)
	chatNode := start("chat", chatAddr)
	client := &http.Client{Timeout: 10 * time.Second}
	ten := setUpChatOut(t, b, "http://"+inboxAddr, "http://"+chatAddr, dbURL)
	ten.setEndpoint(t, b.ChatChannel.ID, ep)

	ids := make([]string, convs)
	parallel(convs, 8, func(i int) { ids[i] = ten.conversation(t, client, b, fmt.Sprintf("k-%d", i)) })
	// Replies, in order per conversation, while the connector is killed
	// part-way through delivering them.
	replies := make([][]string, convs)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		deadline := time.Now().Add(2 * time.Minute)
		for len(ep.deliveries()) < convs*perConv/3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		chatNode.Kill()
	}()
	parallel(convs, 8, func(i int) {
		for r := range perConv {
			replies[i] = append(replies[i], ten.reply(t, ids[i], fmt.Sprintf("Réponse %d à k-%d", r, i)))
		}
	})
	<-killed
	deliveredBefore := len(ep.acceptedIDs())
	require.Less(t, deliveredBefore, convs*perConv, "killed before the end of the deliveries")
	start("chat", chatAddr)
	testkit.Eventually(t, 2*time.Minute, func() bool { return len(ep.acceptedIDs()) == convs*perConv },
		"%d of %d replies delivered after the kill", len(ep.acceptedIDs()), convs*perConv)

	// In order per conversation (by first acceptance); repeats carry the
	// key and the body of the first.
	first := map[string]int{}
	bodies := map[string][]byte{}
	twice := 0
	for i, d := range ep.accepted() {
		require.True(t, d.signed)
		require.Equal(t, d.env.ID, d.key, "the Idempotency-Key is the delivery id")
		if prev, ok := bodies[d.key]; ok {
			require.Equal(t, string(prev), string(d.body), "a repeat sends the same body")
			twice++
			continue
		}
		bodies[d.key] = d.body
		first[d.key] = i
	}
	for i, rs := range replies {
		for r := 1; r < len(rs); r++ {
			require.Less(t, first[rs[r-1]], first[rs[r]], "conversation k-%d: reply %d arrived before reply %d", i, r, r-1)
		}
		for _, id := range rs {
			ten.waitStatus(t, id, "sent")
		}
	}
	t.Logf("%d replies delivered, %d before the kill, %d twice (in flight at the kill)", convs*perConv, deliveredBefore, twice)
}
