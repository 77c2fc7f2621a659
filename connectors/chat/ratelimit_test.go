package chat_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/chat"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestWebhooksLimitedPerChannel: one channel's flood of signed messages is
// refused past its burst (429, Retry-After), while another channel's
// messages keep being accepted; unsigned requests naming a channel do not
// use up its rate. The rate is so slow (one per 100 s) that only the burst
// counts: nothing depends on how fast the requests go.
func TestWebhooksLimitedPerChannel(t *testing.T) {
	const quiet = "7a1c3e5f-2b4d-4f6a-8c0e-9d1b3f5a7c92"
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	keys := testkit.Keyring(t)
	for _, id := range []string{channelID, quiet} {
		ev, err := events.New(events.TypeChatChannel, "switchboard/inbox", tenantID, time.Now(),
			sealed(t, keys, events.ChatChannel{ID: id, TenantID: tenantID, Name: "web", Secrets: []string{secret}}))
		require.NoError(t, err)
		require.NoError(t, p.Publish(context.Background(), events.TopicConfig, events.ConfigKey("chat_channel", id), ev))
	}
	clock := &fixedClock{now: time.Now()}
	rdb, prefix := testkit.Redis(t)
	limiter, err := ratelimit.NewLimiter(rdb, prefix, "chat", tel, clock)
	require.NoError(t, err)
	cfg := testConfig()
	cfg.Webhook = ratelimit.Rule{Rate: 0.01, Burst: 3}
	srv := newServer(tel)
	deps := testDeps(t, brokers, p, srv, tel, clock, keys)
	deps.Limiter = limiter
	c, err := chat.New(context.Background(), cfg, deps)
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, c)
	testkit.Run(t, srv)
	testkit.Eventually(t, 10*time.Second, func() bool { return c.Ready(context.Background()) == nil }, "the connector never caught up with the config topic")
	e := env{clock: clock}
	url := func(id string) string { return "http://" + srv.Addr() + "/v1/webhooks/chat/" + id + "/messages" }
	message := func(n int) []byte {
		return []byte(fmt.Sprintf(`{"message_id":"m-%d","user":{"id":"u-1"},"text":"hi"}`, n))
	}

	// Unsigned requests for the quiet channel cost it nothing.
	for n := range 5 {
		resp, _ := e.post(t, url(quiet), message(n), nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	var accepted, refused int
	for n := range 10 {
		body := message(n)
		resp, out := e.post(t, url(channelID), body, signed(secret, clock.now, body))
		switch resp.StatusCode {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
			refused++
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			require.NoError(t, err)
			require.Positive(t, s)
			require.Contains(t, out["detail"], "webhooks of this channel")
		default:
			t.Fatalf("message %d answered %d %v", n, resp.StatusCode, out)
		}
		if n%4 == 0 { // three of them: the quiet channel's own burst
			body := message(100 + n)
			resp, out := e.post(t, url(quiet), body, signed(secret, clock.now, body))
			require.Equal(t, http.StatusAccepted, resp.StatusCode, "the quiet channel's message during the flood answered %d %v", resp.StatusCode, out)
		}
	}
	require.Equal(t, 3, accepted, "the channel's burst")
	require.Equal(t, 7, refused)
	m, err := tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 7.0, m["switchboard_chat_webhooks_rejected_total{reason=rate_limited}"], "metrics: %v", m)
}
