package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/chat"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

const (
	channelID = "5b7f2c1e-8d4a-4a8e-9a61-0b6c2f4d9e10"
	tenantID  = "0c2f1d7e-3b5a-4c8d-8e9f-1a2b3c4d5e6f"
	secret    = "sbwh_test-secret"
)

// fixedClock is a clock the test sets.
type fixedClock struct{ now time.Time }

func (c *fixedClock) Now() time.Time                         { return c.now }
func (c *fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type env struct {
	url     string
	brokers []string
	clock   *fixedClock
	tel     *telemetry.Telemetry
}

func start(t *testing.T) env { return startWith(t, nil) }

// startWith starts the connector; publishTo, when set, replaces the
// brokers messages are published to.
func startWith(t *testing.T, publishTo []string) env {
	t.Helper()
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	cfg := testkit.BusConfig(brokers)
	p, err := bus.NewProducer(cfg, tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	publisher := p
	if publishTo != nil {
		dead := testkit.BusConfig(publishTo)
		dead.WriteTimeout = 500 * time.Millisecond
		publisher, err = bus.NewProducer(dead, tel)
		require.NoError(t, err)
		t.Cleanup(func() { _ = publisher.Close() })
	}

	// The channel, as the inbox announces it.
	keys := testkit.Keyring(t)
	ev, err := events.New(events.TypeChatChannel, "switchboard/inbox", tenantID, time.Now(),
		sealed(t, keys, events.ChatChannel{ID: channelID, TenantID: tenantID, Name: "web", Secrets: []string{"sbwh_old", secret}}))
	require.NoError(t, err)
	require.NoError(t, p.Publish(context.Background(), events.TopicConfig, events.ConfigKey("chat_channel", channelID), ev))

	clock := &fixedClock{now: time.Now()}
	srv := newServer(tel)
	c, err := chat.New(context.Background(), testConfig(), testDeps(t, brokers, publisher, srv, tel, clock, keys))
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, c)
	testkit.Run(t, srv)
	testkit.Eventually(t, 10*time.Second, func() bool { return c.Ready(context.Background()) == nil }, "the connector never caught up with the config topic")
	return env{url: "http://" + srv.Addr() + "/v1/webhooks/chat/" + channelID + "/messages", brokers: brokers, clock: clock, tel: tel}
}

func (e env) post(t *testing.T, url string, body []byte, sign func(h http.Header)) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		sign(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func signed(key string, at time.Time, body []byte) func(h http.Header) {
	return func(h http.Header) {
		h.Set(webhook.HeaderTimestamp, webhook.Timestamp(at))
		h.Set(webhook.HeaderSignature, webhook.Sign([]byte(key), at, body))
	}
}

func (e env) inbound(t *testing.T, want int) []kafka.Message {
	t.Helper()
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t"), GroupTopics: []string{events.TopicInbound}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < want {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

func TestAcceptedMessageIsOnKafkaBeforeTheAnswer(t *testing.T) {
	e := start(t)
	body := []byte(`{"message_id":"m-1","session_id":"s-1","user":{"id":"u-1","name":"Ada"},"text":"Bonjour","sent_at":"2026-11-21T09:59:58Z","metadata":{"page":"/pricing"}}`)
	resp, out := e.post(t, e.url, body, signed(secret, e.clock.now, body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	require.Equal(t, "accepted", out["status"])

	msgs := e.inbound(t, 1)
	ev, _, err := events.FromMessage(context.Background(), msgs[0])
	require.NoError(t, err)
	require.Equal(t, out["event_id"], ev.ID)
	require.Equal(t, events.TypeMessageReceived, ev.Type)
	require.Equal(t, tenantID, ev.Tenant)
	require.Equal(t, string(events.ConversationKey(tenantID, "chat", channelID, "s-1")), string(msgs[0].Key))
	var p events.MessageReceived
	require.NoError(t, ev.Decode(&p))
	require.Equal(t, "m-1", p.ExternalID)
	require.Equal(t, "s-1", p.ThreadKey)
	require.Equal(t, "u-1", p.From.Identity)
	require.Equal(t, "Ada", p.From.Name)
	require.Equal(t, "Bonjour", p.Text)
	require.Equal(t, "/pricing", p.Metadata["page"])
	require.NoError(t, p.Validate())

	// The same message again is the same event.
	resp, again := e.post(t, e.url, body, signed(secret, e.clock.now, body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, out["event_id"], again["event_id"])

	// A rotated-out secret still in the list verifies too.
	body2 := []byte(`{"message_id":"m-2","user":{"id":"u-2"},"text":"Hi"}`)
	resp, _ = e.post(t, e.url, body2, signed("sbwh_old", e.clock.now, body2))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
}

func TestRefusedWebhooks(t *testing.T) {
	e := start(t)
	body := []byte(`{"message_id":"m-1","user":{"id":"u-1"},"text":"Bonjour"}`)
	now := e.clock.now
	unknown := strings.Replace(e.url, channelID, "00000000-0000-0000-0000-000000000000", 1)
	cases := []struct {
		name   string
		url    string
		body   []byte
		sign   func(h http.Header)
		status int
		field  string
	}{
		{"no signature", e.url, body, nil, 401, ""},
		{"wrong secret", e.url, body, signed("sbwh_guess", now, body), 401, ""},
		{"signature of another body", e.url, body, signed(secret, now, []byte(`{}`)), 401, ""},
		{"stale timestamp", e.url, body, signed(secret, now.Add(-10*time.Minute), body), 401, ""},
		{"unknown channel", unknown, body, signed(secret, now, body), 401, ""},
		{"not JSON", e.url, []byte(`hello`), signed(secret, now, []byte(`hello`)), 400, "body"},
		{"unknown field", e.url, []byte(`{"message_id":"m","user":{"id":"u"},"text":"t","colour":1}`), signed(secret, now, []byte(`{"message_id":"m","user":{"id":"u"},"text":"t","colour":1}`)), 400, "colour"},
		{"wrong type", e.url, []byte(`{"message_id":7,"user":{"id":"u"},"text":"t"}`), signed(secret, now, []byte(`{"message_id":7,"user":{"id":"u"},"text":"t"}`)), 400, "message_id"},
		{"no user", e.url, []byte(`{"message_id":"m","text":"t"}`), signed(secret, now, []byte(`{"message_id":"m","text":"t"}`)), 400, "user.id"},
		{"no message id", e.url, []byte(`{"user":{"id":"u"},"text":"t"}`), signed(secret, now, []byte(`{"user":{"id":"u"},"text":"t"}`)), 400, "message_id"},
		{"empty text", e.url, []byte(`{"message_id":"m","user":{"id":"u"},"text":" "}`), signed(secret, now, []byte(`{"message_id":"m","user":{"id":"u"},"text":" "}`)), 400, "text"},
		{"bad sent_at", e.url, []byte(`{"message_id":"m","user":{"id":"u"},"text":"t","sent_at":"yesterday"}`), signed(secret, now, []byte(`{"message_id":"m","user":{"id":"u"},"text":"t","sent_at":"yesterday"}`)), 400, "body"},
		{"too large", e.url, bytes.Repeat([]byte("x"), 5000), nil, 413, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := e.post(t, c.url, c.body, c.sign)
			require.Equal(t, c.status, resp.StatusCode, out)
			require.Equal(t, httpx.ContentTypeProblem, resp.Header.Get("Content-Type"))
			if c.field != "" {
				errs, _ := out["errors"].([]any)
				require.NotEmpty(t, errs, out)
				require.Equal(t, c.field, errs[0].(map[string]any)["field"], out)
			}
		})
	}
	metrics, err := e.tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 1.0, metrics["switchboard_chat_webhooks_rejected_total{reason=stale}"], metrics)
	require.Equal(t, 2.0, metrics["switchboard_chat_webhooks_rejected_total{reason=bad_signature}"])

	// None of them reached Kafka: the next accepted message is the first.
	resp, _ := e.post(t, e.url, body, signed(secret, now, body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	ev, _, err := events.FromMessage(context.Background(), e.inbound(t, 1)[0])
	require.NoError(t, err)
	var p events.MessageReceived
	require.NoError(t, ev.Decode(&p))
	require.Equal(t, "m-1", p.ExternalID)
}

func TestKafkaUnavailableAnswers503(t *testing.T) {
	e := startWith(t, []string{"127.0.0.1:1"})
	body := []byte(`{"message_id":"m-1","user":{"id":"u-1"},"text":"Bonjour"}`)
	resp, out := e.post(t, e.url, body, signed(secret, e.clock.now, body))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, out)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	metrics, err := e.tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 1.0, metrics["switchboard_chat_webhooks_rejected_total{reason=unavailable}"], metrics)
}

// TestStartingAnswers503: until the connector has read the channels, a
// webhook is not refused for good (401) but asked again (503): a replica
// that has just started and gets traffic before its readiness is seen
// (no load balancer, or a restart in place) loses nothing.
func TestStartingAnswers503(t *testing.T) {
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	// In clear, as an inbox of a version that did not seal secrets
	// announced it: still verified.
	ev, err := events.New(events.TypeChatChannel, "switchboard/inbox", tenantID, time.Now(),
		events.ChatChannel{ID: channelID, TenantID: tenantID, Name: "web", Secrets: []string{secret}})
	require.NoError(t, err)
	require.NoError(t, p.Publish(context.Background(), events.TopicConfig, events.ConfigKey("chat_channel", channelID), ev))
	srv := newServer(tel)
	c, err := chat.New(context.Background(), testConfig(), testDeps(t, brokers, p, srv, tel, nil, testkit.Keyring(t)))
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, srv)
	e := env{url: "http://" + srv.Addr() + "/v1/webhooks/chat/" + channelID + "/messages", brokers: brokers, tel: tel}
	body := []byte(`{"message_id":"m-1","user":{"id":"u-1"},"text":"Bonjour"}`)

	// Not running yet: it has read nothing.
	require.Error(t, c.Ready(context.Background()))
	resp, out := e.post(t, e.url, body, signed(secret, time.Now(), body))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, out)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	metrics, err := tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 1.0, metrics["switchboard_chat_webhooks_rejected_total{reason=starting}"], metrics)

	testkit.Run(t, c)
	testkit.Eventually(t, 10*time.Second, func() bool { return c.Ready(context.Background()) == nil }, "the connector never caught up with the config topic")
	resp, out = e.post(t, e.url, body, signed(secret, time.Now(), body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	// Caught up, an unknown channel is refused for good again.
	unknown := strings.Replace(e.url, channelID, "00000000-0000-0000-0000-000000000000", 1)
	resp, out = e.post(t, unknown, body, signed(secret, time.Now(), body))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, out)
}

// TestChannelSealedUnderAnUnknownKeyIsNotTaken: a channel whose secrets
// do not open (sealed under a key the connector's keyring lacks) takes no
// webhook, and the others are not held up by it.
func TestChannelSealedUnderAnUnknownKeyIsNotTaken(t *testing.T) {
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	keys := testkit.Keyring(t)
	gone, err := seal.NewKey("gone")
	require.NoError(t, err)
	goneKeys, err := seal.NewKeyring("gone", gone)
	require.NoError(t, err)
	const lostID = "7a0c3f4e-1d2b-4c5a-9e8f-0b1a2c3d4e5f"
	for _, ch := range []events.ChatChannel{
		sealed(t, goneKeys, events.ChatChannel{ID: lostID, TenantID: tenantID, Name: "lost", Secrets: []string{secret}}),
		sealed(t, keys, events.ChatChannel{ID: channelID, TenantID: tenantID, Name: "web", Secrets: []string{secret}}),
	} {
		ev, err := events.New(events.TypeChatChannel, "switchboard/inbox", tenantID, time.Now(), ch)
		require.NoError(t, err)
		require.NoError(t, p.Publish(context.Background(), events.TopicConfig, events.ConfigKey("chat_channel", ch.ID), ev))
	}
	srv := newServer(tel)
	c, err := chat.New(context.Background(), testConfig(), testDeps(t, brokers, p, srv, tel, nil, keys))
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, c)
	testkit.Run(t, srv)
	testkit.Eventually(t, 10*time.Second, func() bool { return c.Ready(context.Background()) == nil }, "the connector never became ready")
	e := env{brokers: brokers, tel: tel}
	body := []byte(`{"message_id":"m-1","user":{"id":"u-1"},"text":"Bonjour"}`)
	now := time.Now()
	base := "http://" + srv.Addr() + "/v1/webhooks/chat/"
	resp, out := e.post(t, base+lostID+"/messages", body, signed(secret, now, body))
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, out)
	resp, out = e.post(t, base+channelID+"/messages", body, signed(secret, now, body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
}
