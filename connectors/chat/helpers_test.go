package chat_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/chat"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

func newServer(tel *telemetry.Telemetry) *httpx.Server {
	return httpx.NewServer(httpx.Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second, RequestTimeout: 20 * time.Second, MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second},
		tel, func(context.Context) error { return nil })
}

// testConfig is the connector's configuration in tests: retries fast.
func testConfig() chat.Config {
	cfg := chat.Config{Tolerance: 5 * time.Minute, MaxBodyBytes: 4096}
	cfg.Delivery.RetryFor = time.Minute
	cfg.Delivery.RetryInitial = 20 * time.Millisecond
	cfg.Delivery.RetryMax = 100 * time.Millisecond
	cfg.Delivery.AttemptTimeout = 2 * time.Second
	cfg.Delivery.Concurrency = 4
	cfg.Delivery.PollInterval = 200 * time.Millisecond
	cfg.Delivery.Retention = time.Hour
	return cfg
}

// testEgress is an egress client that may reach the test receivers on
// 127.0.0.1 over plain http, and nothing else that is not public.
func testEgress(t *testing.T) *egress.Client {
	t.Helper()
	c, err := egress.New(egress.Config{Allow: []string{"127.0.0.1/32"}, AllowHTTP: true, ConnectTimeout: time.Second,
		ResponseHeaderTimeout: time.Minute, RequestTimeout: time.Minute, MaxResponseBytes: 1 << 20}, egress.Deps{})
	require.NoError(t, err)
	return c
}

func testDeps(t *testing.T, brokers []string, producer *bus.Producer, srv *httpx.Server, tel *telemetry.Telemetry, clock retry.Clock, keys *seal.Keyring) chat.Deps {
	t.Helper()
	return chat.Deps{Pool: testkit.Postgres(t), Bus: testkit.BusConfig(brokers), Brokers: brokers, Producer: producer, Router: srv,
		Telemetry: tel, Clock: clock, Client: testEgress(t), Secrets: keys}
}

// sealed is ch with its secrets sealed under keys, as the inbox announces
// it.
func sealed(t *testing.T, keys *seal.Keyring, ch events.ChatChannel) events.ChatChannel {
	t.Helper()
	ch.Secrets = slices.Clone(ch.Secrets)
	if ch.Outbound != nil {
		o := *ch.Outbound
		o.Secrets = slices.Clone(o.Secrets)
		ch.Outbound = &o
	}
	require.NoError(t, keys.SealFields(ch.SecretPlace(), ch.SecretFields()))
	return ch
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
	env    chat.Envelope
	data   map[string]any
	status int
}

// receiver is a chat endpoint on 127.0.0.1: answer says what to answer to
// each request (its index among the requests with the same
// Idempotency-Key, from 0); nil answers 200.
type receiver struct {
	srv    *httptest.Server
	answer func(key string, n int, w http.ResponseWriter) int

	mu   sync.Mutex
	got  []received
	seen map[string]int
	// arrived is signalled after each request.
	arrived chan struct{}
}

func newReceiver(t *testing.T, answer func(key string, n int, w http.ResponseWriter) int) *receiver {
	rc := &receiver{answer: answer, seen: map[string]int{}, arrived: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env chat.Envelope
	_ = json.Unmarshal(body, &env)
	var raw struct {
		Data map[string]any `json:"data"`
	}
	_ = json.Unmarshal(body, &raw)
	key := r.Header.Get(chat.HeaderIdempotencyKey)
	// Recorded as it arrives, in arrival order; its status once answered
	// (-1 until then).
	rc.mu.Lock()
	n := rc.seen[key]
	rc.seen[key]++
	i := len(rc.got)
	rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, env: env, data: raw.Data, status: -1})
	rc.mu.Unlock()
	status := http.StatusOK
	if rc.answer != nil {
		status = rc.answer(key, n, w)
	}
	if status != 0 {
		w.WriteHeader(status)
	} else {
		status = http.StatusUnprocessableEntity // written by answer
	}
	rc.mu.Lock()
	rc.got[i].status = status
	rc.mu.Unlock()
	select {
	case rc.arrived <- struct{}{}:
	default:
	}
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// accepted returns the requests answered 2xx, in order.
func (rc *receiver) accepted() []received {
	var out []received
	for _, r := range rc.requests() {
		if r.status >= 200 && r.status < 300 {
			out = append(out, r)
		}
	}
	return out
}

// outEnv is a connector with an endpoint on the channel.
type outEnv struct {
	brokers  []string
	producer *bus.Producer
	tel      *telemetry.Telemetry
	base     string
	conn     *chat.Connector
	// keys seal the channels announced, as the inbox's do.
	keys *seal.Keyring
}

// outSecret signs deliveries in these tests.
const outSecret = "sbwo_test-outbound"

// startOut starts a connector whose channels are announced by channels.
func startOut(t *testing.T, cfg chat.Config, channels ...events.ChatChannel) outEnv {
	t.Helper()
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	e := outEnv{brokers: brokers, producer: p, tel: tel, keys: testkit.Keyring(t)}
	for _, ch := range channels {
		e.announce(t, ch)
	}
	srv := newServer(tel)
	c, err := chat.New(context.Background(), cfg, testDeps(t, brokers, p, srv, tel, nil, e.keys))
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, c)
	testkit.Run(t, srv)
	testkit.Eventually(t, 20*time.Second, func() bool { return c.Ready(context.Background()) == nil }, "the connector never became ready")
	e.base = "http://" + srv.Addr()
	e.conn = c
	return e
}

// channelWith is the test channel with an endpoint at url.
func channelWith(id, url string, evs ...string) events.ChatChannel {
	ch := events.ChatChannel{ID: id, TenantID: tenantID, Name: "web", Secrets: []string{secret}}
	if url != "" {
		ch.Outbound = &events.ChatOutbound{URL: url, Events: append([]string{events.ChatEventMessage}, evs...), Secrets: []string{outSecret, "sbwo_old"}}
	}
	return ch
}

func (e outEnv) announce(t *testing.T, ch events.ChatChannel) {
	t.Helper()
	ev, err := events.New(events.TypeChatChannel, "switchboard/inbox", ch.TenantID, time.Now(), sealed(t, e.keys, ch))
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicConfig, events.ConfigKey("chat_channel", ch.ID), ev))
}

// reply publishes a send command as the inbox does.
func (e outEnv) reply(t *testing.T, channel, conversation, session, messageID, text string, replay int) {
	t.Helper()
	cmd := events.SendMessage{MessageID: messageID, ConversationID: conversation, TenantID: tenantID, Channel: events.ChannelChat,
		ChannelAccountID: channel, ThreadKey: session, To: "user-" + session, Text: text, Replay: replay,
		Choices: []events.Choice{{ID: "yes", Label: "Oui"}}}
	ev, err := events.New(events.TypeSendMessage, "switchboard/inbox", tenantID, time.Now(), cmd)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicOutbound(events.ChannelChat), events.ConversationKey(tenantID, events.ChannelChat, channel, session), ev))
}

// deliveries reads sb.delivery.v1 until want statuses are read.
func (e outEnv) deliveries(t *testing.T, want int) []events.Delivery {
	t.Helper()
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t"), GroupTopics: []string{events.TopicDelivery}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []events.Delivery
	for len(out) < want {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "read %d of %d delivery statuses", len(out), want)
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		var d events.Delivery
		require.NoError(t, ev.Decode(&d))
		out = append(out, d)
	}
	return out
}

// verify checks a delivery's signature with the outbound secret.
func verify(t *testing.T, r received) {
	t.Helper()
	require.NoError(t, webhook.Verify([][]byte{[]byte(outSecret)}, r.header.Get(webhook.HeaderTimestamp), r.header.Get(webhook.HeaderSignature),
		r.body, time.Now(), time.Minute))
	require.NoError(t, webhook.Verify([][]byte{[]byte("sbwo_old")}, r.header.Get(webhook.HeaderTimestamp), r.header.Get(webhook.HeaderSignature),
		r.body, time.Now(), time.Minute), "the secret being rotated out signs too")
}
