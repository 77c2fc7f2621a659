package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/chat"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

const otherChannelID = "9d3e5a7c-1b2f-4c6d-8e0a-2f4b6d8c0e12"

func TestReplyIsDeliveredSignedAndReportedSent(t *testing.T) {
	rc := newReceiver(t, nil)
	e := startOut(t, testConfig(), channelWith(channelID, rc.srv.URL+"/hook"))
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour, nous regardons.", 0)

	ds := e.deliveries(t, 1)
	require.Equal(t, events.Delivery{MessageID: "msg-1", TenantID: tenantID, Status: events.DeliverySent, At: ds[0].At}, ds[0])
	got := rc.accepted()
	require.Len(t, got, 1)
	r := got[0]
	verify(t, r)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, events.ChatEventMessage, r.header.Get(chat.HeaderEvent))
	require.Equal(t, "msg-1", r.header.Get(chat.HeaderIdempotencyKey))
	require.Equal(t, "1", r.header.Get(chat.HeaderAttempt))
	require.Len(t, strings.Split(r.header.Get(webhook.HeaderSignature), ","), 2, "one v1= per outbound secret")
	require.Equal(t, chat.Envelope{ID: "msg-1", Type: events.ChatEventMessage, CreatedAt: r.env.CreatedAt, ChannelID: channelID, SessionID: "s-1",
		UserID: "user-s-1", ConversationID: "conv-1", Data: r.env.Data}, r.env)
	require.False(t, r.env.CreatedAt.IsZero())
	require.Equal(t, map[string]any{"message_id": "msg-1", "text": "Bonjour, nous regardons.", "automatic": false,
		"choices": []any{map[string]any{"id": "yes", "label": "Oui"}}, "attachments": []any{}}, r.data)

	metrics, err := e.tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 1.0, metrics["switchboard_chat_deliveries_total{event=message.created,outcome=sent}"], metrics)
}

// TestRetriesKeepTheOrderOfAConversation: the first reply of a
// conversation is refused three times (503, 429 with Retry-After, no
// answer in time), then accepted; the second waits for it, and goes once
// it is sent. Another conversation is not held up.
func TestRetriesKeepTheOrderOfAConversation(t *testing.T) {
	cfg := testConfig()
	cfg.Delivery.AttemptTimeout = 300 * time.Millisecond
	rc := newReceiver(t, func(key string, n int, w http.ResponseWriter) int {
		if key != "msg-a1" {
			return http.StatusNoContent
		}
		switch n {
		case 0:
			return http.StatusServiceUnavailable
		case 1:
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		case 2:
			time.Sleep(500 * time.Millisecond) // past the attempt timeout
			return http.StatusOK
		}
		return http.StatusOK
	})
	e := startOut(t, cfg, channelWith(channelID, rc.srv.URL))
	e.reply(t, channelID, "conv-a", "s-a", "msg-a1", "first", 0)
	e.reply(t, channelID, "conv-a", "s-a", "msg-a2", "second", 0)
	e.reply(t, channelID, "conv-b", "s-b", "msg-b1", "other", 0)

	ds := e.deliveries(t, 3)
	for _, d := range ds {
		require.Equal(t, events.DeliverySent, d.Status, d)
	}
	var order []string
	var attempts []string
	for _, r := range rc.requests() {
		if r.env.ConversationID == "conv-a" {
			order = append(order, r.env.ID)
		}
		if r.env.ID == "msg-a1" {
			attempts = append(attempts, r.header.Get(chat.HeaderAttempt))
			require.Equal(t, "msg-a1", r.header.Get(chat.HeaderIdempotencyKey))
			verify(t, r)
		}
	}
	require.Equal(t, []string{"msg-a1", "msg-a1", "msg-a1", "msg-a1", "msg-a2"}, order, "the second reply waits for the first")
	require.Equal(t, []string{"1", "2", "3", "4"}, attempts)
	metrics, err := e.tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 3.0, metrics["switchboard_chat_deliveries_total{event=message.created,outcome=retried}"], metrics)
	require.Equal(t, 3.0, metrics["switchboard_chat_deliveries_total{event=message.created,outcome=sent}"], metrics)
}

func TestRefusalFailsAtOnceWithTheAnswer(t *testing.T) {
	rc := newReceiver(t, func(_ string, _ int, w http.ResponseWriter) int {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"error":"unknown session s-1"}` + strings.Repeat(" padding", 100)))
		return 0
	})
	e := startOut(t, testConfig(), channelWith(channelID, rc.srv.URL))
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour", 0)
	ds := e.deliveries(t, 1)
	require.Equal(t, events.DeliveryFailed, ds[0].Status)
	require.Contains(t, ds[0].Error, "HTTP 422 Unprocessable Entity")
	require.Contains(t, ds[0].Error, `unknown session s-1`)
	require.Less(t, len(ds[0].Error), 400, "the answer is an excerpt")
	require.Len(t, rc.requests(), 1)
}

func TestRefusedDestinationFailsAtOnce(t *testing.T) {
	e := startOut(t, testConfig(), channelWith(channelID, "https://10.1.2.3/hook"))
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour", 0)
	ds := e.deliveries(t, 1)
	require.Equal(t, events.DeliveryFailed, ds[0].Status)
	require.Contains(t, ds[0].Error, "not allowed")
	require.Contains(t, ds[0].Error, "10.1.2.3")
}

// TestGivesUpAfterTheRetryTimeThenReplays: an endpoint down for good
// fails the reply once -chat.delivery.retry-for has passed; replayed (a
// command with a higher replay count) once it is back, it is delivered,
// with the same Idempotency-Key.
func TestGivesUpAfterTheRetryTimeThenReplays(t *testing.T) {
	cfg := testConfig()
	cfg.Delivery.RetryFor = time.Second
	var mu sync.Mutex
	up := false
	rc := newReceiver(t, func(string, int, http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if up {
			return http.StatusOK
		}
		return http.StatusBadGateway
	})
	e := startOut(t, cfg, channelWith(channelID, rc.srv.URL))
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour", 0)
	ds := e.deliveries(t, 1)
	require.Equal(t, events.DeliveryFailed, ds[0].Status)
	require.Contains(t, ds[0].Error, "gave up after")
	require.Contains(t, ds[0].Error, "HTTP 502")
	failedAttempts := len(rc.requests())
	require.GreaterOrEqual(t, failedAttempts, 2)

	// The same command again (a rebalance) changes nothing.
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour", 0)
	mu.Lock()
	up = true
	mu.Unlock()
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour", 1)
	ds = e.deliveries(t, 2)
	require.Equal(t, events.DeliverySent, ds[1].Status, ds)
	got := rc.accepted()
	require.Len(t, got, 1)
	require.Equal(t, "msg-1", got[0].header.Get(chat.HeaderIdempotencyKey))
	require.Equal(t, "1", got[0].header.Get(chat.HeaderAttempt), "a replay counts its attempts afresh")
	require.Len(t, rc.requests(), failedAttempts+1)
}

// TestNoEndpointWaitsUntilOneIsSet: replies to a channel without an
// endpoint wait, pending; they go, in order, once one is set.
func TestNoEndpointWaitsUntilOneIsSet(t *testing.T) {
	rc := newReceiver(t, nil)
	e := startOut(t, testConfig(), channelWith(channelID, ""))
	for i := range 3 {
		e.reply(t, channelID, "conv-1", "s-1", fmt.Sprintf("msg-%d", i), "Bonjour", 0)
	}
	disabled := channelWith(channelID, rc.srv.URL)
	disabled.Outbound.Disabled = true
	e.announce(t, disabled)
	// Nothing goes while there is no endpoint or it is disabled; once it
	// is enabled, everything does.
	e.announce(t, channelWith(channelID, rc.srv.URL))
	ds := e.deliveries(t, 3)
	var ids []string
	for _, r := range rc.requests() {
		ids = append(ids, r.env.ID)
	}
	require.Equal(t, []string{"msg-0", "msg-1", "msg-2"}, ids)
	for i, d := range ds {
		require.Equal(t, events.DeliverySent, d.Status, i)
	}
}

// TestHangingEndpointHoldsOnlyItself: one channel's endpoint never
// answers; another channel's replies are all delivered meanwhile.
func TestHangingEndpointHoldsOnlyItself(t *testing.T) {
	cfg := testConfig()
	cfg.Delivery.AttemptTimeout = time.Minute
	release := make(chan struct{})
	hanging := newReceiver(t, func(string, int, http.ResponseWriter) int {
		<-release
		return http.StatusOK
	})
	fine := newReceiver(t, nil)
	e := startOut(t, cfg, channelWith(channelID, hanging.srv.URL), channelWith(otherChannelID, fine.srv.URL))
	t.Cleanup(func() { close(release) }) // first, so that the connector can stop
	for i := range 10 {
		e.reply(t, channelID, fmt.Sprintf("hang-%d", i), fmt.Sprintf("h-%d", i), fmt.Sprintf("hang-msg-%d", i), "Bonjour", 0)
	}
	for i := range 20 {
		e.reply(t, otherChannelID, fmt.Sprintf("fine-%d", i%5), fmt.Sprintf("f-%d", i%5), fmt.Sprintf("fine-msg-%d", i), "Bonjour", 0)
	}
	ds := e.deliveries(t, 20)
	for _, d := range ds {
		require.Equal(t, events.DeliverySent, d.Status)
		require.True(t, strings.HasPrefix(d.MessageID, "fine-"), d.MessageID)
	}
	require.Len(t, fine.accepted(), 20)
	require.Empty(t, hanging.accepted(), "the hanging endpoint's requests have not completed")
	require.LessOrEqual(t, len(hanging.requests()), cfg.Delivery.Concurrency, "it holds its own attempt slots, no more")
}

// TestStatusWebhook: the endpoint reports a reply delivered, then read,
// signed with the channel's inbound secret; statuses of messages it was
// not sent are refused.
func TestStatusWebhook(t *testing.T) {
	rc := newReceiver(t, nil)
	e := startOut(t, testConfig(), channelWith(channelID, rc.srv.URL), channelWith(otherChannelID, rc.srv.URL))
	e.reply(t, channelID, "conv-1", "s-1", "msg-1", "Bonjour", 0)
	e.reply(t, otherChannelID, "conv-2", "s-2", "msg-2", "Bonjour", 0)
	e.deliveries(t, 2)

	url := func(ch string) string { return e.base + "/v1/webhooks/chat/" + ch + "/statuses" }
	post := func(ch, body string, sign bool) (*http.Response, map[string]any) {
		var poster env
		var s func(h http.Header)
		if sign {
			s = signed(secret, time.Now(), []byte(body))
		}
		return poster.post(t, url(ch), []byte(body), s)
	}
	resp, out := post(channelID, `{"message_id":"msg-1","status":"delivered"}`, true)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	resp, out = post(channelID, `{"message_id":"msg-1","status":"read","at":"2026-12-06T10:00:00Z"}`, true)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	// One partition per message: in order for msg-1.
	var msg1 []events.Delivery
	for _, d := range e.deliveries(t, 4) {
		if d.MessageID == "msg-1" {
			msg1 = append(msg1, d)
		}
	}
	require.Len(t, msg1, 3)
	require.Equal(t, events.DeliverySent, msg1[0].Status)
	require.Equal(t, events.Delivery{MessageID: "msg-1", TenantID: tenantID, Status: events.DeliveryDelivered, At: msg1[1].At}, msg1[1])
	require.Equal(t, events.Delivery{MessageID: "msg-1", TenantID: tenantID, Status: events.DeliveryRead,
		At: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}, msg1[2])

	cases := []struct {
		name, channel, body string
		sign                bool
		status              int
	}{
		{"unsigned", channelID, `{"message_id":"msg-1","status":"read"}`, false, http.StatusUnauthorized},
		{"unknown channel", "00000000-0000-0000-0000-000000000000", `{"message_id":"msg-1","status":"read"}`, true, http.StatusUnauthorized},
		{"unknown message", channelID, `{"message_id":"msg-9","status":"read"}`, true, http.StatusNotFound},
		{"another channel's message", channelID, `{"message_id":"msg-2","status":"read"}`, true, http.StatusNotFound},
		{"status not reported by endpoints", channelID, `{"message_id":"msg-1","status":"sent"}`, true, http.StatusUnprocessableEntity},
		{"no message id", channelID, `{"status":"read"}`, true, http.StatusUnprocessableEntity},
		{"not JSON", channelID, `read`, true, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, out := post(c.channel, c.body, c.sign)
			require.Equal(t, c.status, resp.StatusCode, out)
		})
	}
}

// TestBotControlAndStateChanges: bot controls and state changes reach an
// endpoint that subscribed to them, in the conversation's order; one that
// did not subscribe gets only replies.
func TestBotControlAndStateChanges(t *testing.T) {
	rc := newReceiver(t, nil)
	only := newReceiver(t, nil)
	e := startOut(t, testConfig(), channelWith(channelID, rc.srv.URL, events.ChatEventBotControl, events.ChatEventConversationState),
		channelWith(otherChannelID, only.srv.URL))
	ctx := context.Background()
	for _, ch := range []string{channelID, otherChannelID} {
		key := events.ConversationKey(tenantID, events.ChannelChat, ch, "s-1")
		bc, err := events.New(events.TypeBotControl, "switchboard/inbox", tenantID, time.Now(), events.BotControl{ID: "bot-" + ch, TenantID: tenantID,
			ConversationID: "conv-" + ch, ChannelAccountID: ch, ThreadKey: "s-1", To: "user-1", Action: events.BotBlock,
			Actor: events.Actor{Kind: "user", ID: "agent-1"}})
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(ctx, events.TopicOutbound(events.ChannelChat), key, bc))
		e.reply(t, ch, "conv-"+ch, "s-1", "msg-"+ch, "Bonjour", 0)
		conv, err := json.Marshal(map[string]any{"id": "conv-" + ch, "channel": "chat", "channel_account_id": ch, "state": "assigned"})
		require.NoError(t, err)
		sc, err := events.New(events.TypeConversationChanged, "switchboard/inbox", tenantID, time.Now(), events.ConversationChanged{
			Action: "assign", Actor: events.Actor{Kind: "user", ID: "agent-1"}, From: "new", To: "assigned", Conversation: conv})
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(ctx, events.TopicConversations, key, sc))
	}
	e.deliveries(t, 2)
	testkit.Eventually(t, 20*time.Second, func() bool { return len(rc.accepted()) == 3 }, "the subscribed endpoint got %d deliveries", len(rc.accepted()))

	byType := map[string]received{}
	for _, r := range rc.accepted() {
		verify(t, r)
		require.Equal(t, r.env.Type, r.header.Get(chat.HeaderEvent))
		byType[r.env.Type] = r
	}
	bot := byType[events.ChatEventBotControl]
	require.Equal(t, "bot-"+channelID, bot.header.Get(chat.HeaderIdempotencyKey))
	require.Equal(t, map[string]any{"action": "block", "actor": map[string]any{"kind": "user", "id": "agent-1"}}, bot.data)
	require.Equal(t, "user-1", bot.env.UserID)
	st := byType[events.ChatEventConversationState]
	require.Equal(t, map[string]any{"from": "new", "to": "assigned", "action": "assign"}, st.data)
	require.Equal(t, "s-1", st.env.SessionID)
	require.Equal(t, "conv-"+channelID, st.env.ConversationID)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(only.accepted()) == 1 }, "the other endpoint got %d deliveries", len(only.accepted()))
	require.Equal(t, events.ChatEventMessage, only.accepted()[0].env.Type)
	// The bot control it did not subscribe to is skipped, not retried.
	testkit.Eventually(t, 10*time.Second, func() bool {
		metrics, err := e.tel.Gather()
		require.NoError(t, err)
		return metrics["switchboard_chat_deliveries_total{event=bot.control,outcome=skipped}"] == 1
	}, "the unsubscribed bot control was not skipped")
	require.Len(t, only.requests(), 1)
}

func TestBotMessageIsMarked(t *testing.T) {
	e := start(t)
	body := []byte(`{"message_id":"m-1","session_id":"s-1","user":{"id":"u-1"},"text":"Bonjour, je suis le robot.","bot":{"name":"Helper"}}`)
	resp, out := e.post(t, e.url, body, signed(secret, e.clock.now, body))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, out)
	ev, _, err := events.FromMessage(context.Background(), e.inbound(t, 1)[0])
	require.NoError(t, err)
	var p events.MessageReceived
	require.NoError(t, ev.Decode(&p))
	require.Equal(t, &events.BotAuthor{Name: "Helper"}, p.Bot)

	bad := []byte(`{"message_id":"m-2","user":{"id":"u-1"},"text":"t","bot":{"name":" "}}`)
	resp, out = e.post(t, e.url, bad, signed(secret, e.clock.now, bad))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, out)
	require.Equal(t, "bot.name", out["errors"].([]any)[0].(map[string]any)["field"])
}
