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

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

type env struct {
	base     string
	brokers  []string
	producer *bus.Producer
	admin    *inbox.Admin
	tel      *telemetry.Telemetry
	// pool is the inbox's database, for checks no API call can make.
	pool *pgxpool.Pool
	// blobs is the inbox's blob store, in blobDir.
	blobs   *blob.Dir
	blobDir string
	// keys seal the secrets the inbox stores and announces; tests open
	// them as the connectors do.
	keys *seal.Keyring
}

// userToken creates a user of b's tenant in queues and logs them in.
func (e env) userToken(t *testing.T, b inbox.Bootstrap, role string, queues ...inbox.Queue) (inbox.User, string) {
	t.Helper()
	spec := inbox.UserSpec{Email: testkit.RandomName("u") + "@example.com", Name: "Agent " + role, Role: domain.Role(role), Password: "correct horse battery"}
	for _, q := range queues {
		spec.QueueIDs = append(spec.QueueIDs, q.ID)
	}
	u, err := e.admin.CreateUser(context.Background(), b.Tenant.ID, spec)
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":"correct horse battery"}`, b.Tenant.ID, spec.Email)
	require.Equal(t, http.StatusOK, e.do(t, "", http.MethodPost, "/v1/auth/login", body, &tok))
	return u, tok.AccessToken
}

// queue creates a queue in b's tenant.
func (e env) queue(t *testing.T, b inbox.Bootstrap, name string) inbox.Queue {
	t.Helper()
	q, err := e.admin.CreateQueue(context.Background(), b.Tenant.ID, name)
	require.NoError(t, err)
	return q
}

// do sends a request with a JSON body ("" for none) and decodes the answer
// into out (nil to skip); it returns the status. The response must match
// the OpenAPI document (oaCheck).
func (e env) do(t *testing.T, token, method, path, body string, out any) int {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	oaCheck(t, req, resp.StatusCode, resp.Header, raw)
	if out != nil && len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s answered %d %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

func start(t *testing.T) env {
	t.Helper()
	return startWith(t, nil)
}

// startWith starts the inbox with clock as its time source (nil: the
// system clock).
func startWith(t *testing.T, clock retry.Clock) env {
	t.Helper()
	return startTuned(t, clock, nil)
}

// startTuned is startWith, tune (nil: none) changing the inbox's settings
// and dependencies before it starts.
func startTuned(t *testing.T, clock retry.Clock, tune func(*inbox.Config, *inbox.Deps)) env {
	t.Helper()
	return startServed(t, clock, tune, nil)
}

// startServed is startTuned, tuneHTTP (nil: none) changing the HTTP
// server's settings too.
func startServed(t *testing.T, clock retry.Clock, tune func(*inbox.Config, *inbox.Deps), tuneHTTP func(*httpx.Config)) env {
	t.Helper()
	ctx := testkit.Context(t)
	pool := testkit.Postgres(t)
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	cfg := testkit.BusConfig(brokers)
	producer, err := bus.NewProducer(cfg, tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close() })
	keys := testkit.Keyring(t)
	admin, err := inbox.NewAdmin(ctx, pool, keys, time.Now)
	require.NoError(t, err)

	blobDir := t.TempDir()
	blobs, err := blob.NewDir(blobDir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = blobs.Close() })

	rdb, prefix := testkit.Redis(t)
	hcfg := httpx.Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second, RequestTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second}
	if tuneHTTP != nil {
		tuneHTTP(&hcfg)
	}
	srv := httpx.NewServer(hcfg, tel, func(context.Context) error { return nil })
	// Uploads are limited like every other body (biLimit), so that the
	// checks of oversized bodies hold for POST /v1/attachments too.
	icfg := inbox.Config{OutboxBatch: 100, OutboxPoll: 100 * time.Millisecond, MaxUploadBytes: biLimit}
	deps := inbox.Deps{
		Pool: pool, Bus: cfg, Brokers: brokers, Producer: producer, Redis: rdb, RedisPrefix: prefix, Router: srv, Blobs: blobs, Telemetry: tel,
		Clock: clock, Secrets: keys,
	}
	if tune != nil {
		tune(&icfg, &deps)
	}
	svc, err := inbox.New(ctx, icfg, deps)
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, svc)
	testkit.Run(t, srv) // stops first: cleanups run last-in first-out
	base := "http://" + srv.Addr()
	oaLoad(t, base) // do checks every response against the API's OpenAPI document
	return env{base: base, brokers: brokers, producer: producer, admin: admin, tel: tel, pool: pool, blobs: blobs, blobDir: blobDir, keys: keys}
}

func (e env) tenant(t *testing.T, name string) inbox.Bootstrap {
	t.Helper()
	b, err := e.admin.CreateTenant(context.Background(), name)
	require.NoError(t, err)
	return b
}

// send publishes a chat message event the way the chat connector does.
func (e env) send(t *testing.T, b inbox.Bootstrap, eventID, externalID, session, user, text string) {
	t.Helper()
	m := events.MessageReceived{
		TenantID: b.Tenant.ID.String(), Channel: events.ChannelChat, ChannelAccountID: b.ChatChannel.ID.String(),
		ExternalID: externalID, ThreadKey: session, From: events.Party{Identity: user, Name: "Ada"},
		Text: text, ReceivedAt: time.Now().UTC(),
	}
	ev, err := events.NewWithID(eventID, events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
}

func (e env) get(t *testing.T, token, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

type conversation struct {
	ID        string `json:"id"`
	ContactID string `json:"contact_id"`
	State     string `json:"state"`
	Channel   string `json:"channel"`
}

type message struct {
	ID         string `json:"id"`
	Body       string `json:"body"`
	ExternalID string `json:"external_id"`
	Direction  string `json:"direction"`
}

type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (e env) conversations(t *testing.T, token string) []conversation {
	var l list[conversation]
	require.Equal(t, http.StatusOK, e.get(t, token, "/v1/conversations", &l))
	return l.Items
}

func (e env) messages(t *testing.T, token, conv string) []message {
	var l list[message]
	require.Equal(t, http.StatusOK, e.get(t, token, "/v1/conversations/"+conv+"/messages?limit=200", &l))
	return l.Items
}

func TestMessagesAreStoredOnceAndServed(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	tok := b.APIToken.Token

	e.send(t, b, "ev-1", "m-1", "session-1", "user-1", "Bonjour")
	e.send(t, b, "ev-1", "m-1", "session-1", "user-1", "Bonjour")  // the same event again
	e.send(t, b, "ev-1b", "m-1", "session-1", "user-1", "Bonjour") // the channel sent it twice
	e.send(t, b, "ev-2", "m-2", "session-1", "user-1", "Vous êtes là ?")
	e.send(t, b, "ev-3", "m-3", "session-2", "user-1", "Autre sujet") // same customer, new conversation

	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.conversations(t, tok)) == 2 }, "conversations not stored")
	convs := e.conversations(t, tok)
	require.Equal(t, convs[0].ContactID, convs[1].ContactID, "one customer, one contact")
	for _, c := range convs {
		require.Equal(t, "new", c.State)
		require.Equal(t, "chat", c.Channel)
	}
	var first []message
	testkit.Eventually(t, 20*time.Second, func() bool { first = e.messages(t, tok, convs[0].ID); return len(first) >= 2 }, "messages not stored")
	require.Len(t, first, 2, "a message was stored twice")
	require.Equal(t, "Bonjour", first[0].Body)
	require.Equal(t, "Vous êtes là ?", first[1].Body)
	require.Equal(t, "inbound", first[0].Direction)
	second := e.messages(t, tok, convs[1].ID)
	require.Len(t, second, 1)

	// Redelivering all of it changes nothing.
	e.send(t, b, "ev-2", "m-2", "session-1", "user-1", "Vous êtes là ?")
	e.send(t, b, "ev-4", "m-4", "session-1", "user-1", "Fin")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.messages(t, tok, convs[0].ID)) == 3 }, "the next message after a duplicate was not stored")
}

func TestConversationEventsArePublished(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "hello")
	e.send(t, b, "ev-2", "m-2", "s-1", "u-1", "again")
	e.send(t, b, "ev-2", "m-2", "s-1", "u-1", "again") // a duplicate announces nothing

	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: "t", GroupTopics: []string{events.TopicConversations}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	var got []events.Event
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(got) < 3 {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err)
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		got = append(got, ev)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	_, err := r.FetchMessage(short)
	require.Error(t, err, "more events than the conversation's opening and its two messages")

	var changed []events.ConversationChanged
	var messages int
	for _, ev := range got {
		require.Equal(t, b.Tenant.ID.String(), ev.Tenant)
		switch ev.Type {
		case events.TypeConversationChanged:
			var c events.ConversationChanged
			require.NoError(t, ev.Decode(&c))
			changed = append(changed, c)
		case events.TypeConversationMessage:
			messages++
		default:
			t.Fatalf("unexpected event type %s", ev.Type)
		}
	}
	require.Len(t, changed, 1)
	require.Equal(t, "created", changed[0].Action)
	require.Equal(t, "new", changed[0].To)
	require.Equal(t, "customer", changed[0].Actor.Kind)
	require.Equal(t, 2, messages)
}

func TestInvalidEventsAreDeadLetteredAndTheNextIsStored(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")

	// A channel account of another tenant.
	bad := b
	bad.ChatChannel = other.ChatChannel
	e.send(t, bad, "ev-bad", "m-bad", "s-1", "u-1", "misrouted")
	// Data the schema refuses.
	m := map[string]any{"tenant_id": b.Tenant.ID.String(), "channel": "chat"}
	ev, err := events.New(events.TypeMessageReceived, "test", b.Tenant.ID.String(), time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, []byte("k"), ev))
	e.send(t, b, "ev-ok", "m-ok", "s-1", "u-1", "fine")

	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.conversations(t, b.APIToken.Token)) == 1 }, "the good message was not stored")
	require.Empty(t, e.conversations(t, other.APIToken.Token))

	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, Topic: events.TopicDLQ, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		dead, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		h := map[string]string{}
		for _, x := range dead.Headers {
			h[x.Key] = string(x.Value)
		}
		require.Equal(t, inbox.ConsumerGroup, h[bus.HeaderDLQHandler])
		require.Contains(t, h[bus.HeaderDLQReason], "permanent")
	}
}

func TestAPIRefusesWhatTheCallerMayNotSee(t *testing.T) {
	e := start(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bravo")
	e.send(t, a, "ev-1", "m-1", "s-1", "u-1", "secret of Acme")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.conversations(t, a.APIToken.Token)) == 1 }, "not stored")
	conv := e.conversations(t, a.APIToken.Token)[0].ID

	paths := []string{"/v1/conversations", "/v1/conversations/" + conv, "/v1/conversations/" + conv + "/messages"}
	for _, p := range paths {
		var prob httpx.Problem
		require.Equal(t, http.StatusUnauthorized, e.get(t, "", p, &prob), p)
		require.Equal(t, http.StatusUnauthorized, e.get(t, "sbt_not-a-token", p, &prob), p)
	}
	// Another tenant's conversation looks exactly like a missing one.
	var missing, foreign httpx.Problem
	require.Equal(t, http.StatusNotFound, e.get(t, b.APIToken.Token, "/v1/conversations/"+uuid.NewString(), &missing))
	require.Equal(t, http.StatusNotFound, e.get(t, b.APIToken.Token, "/v1/conversations/"+conv, &foreign))
	require.Equal(t, missing, foreign)
	require.Equal(t, http.StatusNotFound, e.get(t, b.APIToken.Token, "/v1/conversations/"+conv+"/messages", nil))
	require.Equal(t, http.StatusNotFound, e.get(t, b.APIToken.Token, "/v1/conversations/not-a-uuid/messages", nil))
	require.Empty(t, e.conversations(t, b.APIToken.Token))

	var prob httpx.Problem
	require.Equal(t, http.StatusBadRequest, e.get(t, a.APIToken.Token, "/v1/conversations?limit=0", &prob))
	require.Equal(t, "limit", prob.Errors[0].Field)
	require.Equal(t, http.StatusBadRequest, e.get(t, a.APIToken.Token, "/v1/conversations?cursor=garbage", &prob))
	require.Equal(t, "cursor", prob.Errors[0].Field)
}

func TestPagination(t *testing.T) {
	e := start(t)
	a := e.tenant(t, "Acme")
	for i := 0; i < 7; i++ {
		e.send(t, a, fmt.Sprintf("ev-%d", i), fmt.Sprintf("m-%d", i), fmt.Sprintf("s-%d", i), "u", "hi")
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		var l list[conversation]
		e.get(t, a.APIToken.Token, "/v1/conversations?limit=200", &l)
		return len(l.Items) == 7
	}, "not stored")
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		var l list[conversation]
		require.Equal(t, http.StatusOK, e.get(t, a.APIToken.Token, "/v1/conversations?limit=3&cursor="+url.QueryEscape(cursor), &l))
		pages++
		for _, c := range l.Items {
			require.False(t, seen[c.ID], "conversation %s on two pages", c.ID)
			seen[c.ID] = true
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	require.Len(t, seen, 7)
	require.Equal(t, 3, pages)
}
