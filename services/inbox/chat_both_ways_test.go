package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// Chat both ways: the chat channels' admin API (endpoints, secrets and
// their rotation), bot control on chat conversations, the bot's own
// messages, and failed deliveries sent again.

type adminChatOutbound struct {
	URL               string   `json:"url"`
	Events            []string `json:"events"`
	Disabled          bool     `json:"disabled"`
	Secret            string   `json:"secret"`
	SecretSet         bool     `json:"secret_set"`
	PreviousSecretSet bool     `json:"previous_secret_set"`
}

type adminChatChannel struct {
	ID                       string             `json:"id"`
	Name                     string             `json:"name"`
	WebhookPath              string             `json:"webhook_path"`
	StatusWebhookPath        string             `json:"status_webhook_path"`
	InboundSecret            string             `json:"inbound_secret"`
	InboundSecretSet         bool               `json:"inbound_secret_set"`
	PreviousInboundSecretSet bool               `json:"previous_inbound_secret_set"`
	Outbound                 *adminChatOutbound `json:"outbound"`
}

const chatChannels = "/v1/admin/chat-channels"

// chatChannelBody is a valid POST /v1/admin/chat-channels body with an
// endpoint.
func chatChannelBody(name string) string {
	return fmt.Sprintf(`{"name":%q,"outbound":{"url":"https://bots.example.com/switchboard","events":["message.created","bot.control"]}}`, name)
}

// readChatChannelEvents reads the config topic until every key of want has
// as many chat channel events as want lists, and returns them summarised.
func readChatChannelEvents(t *testing.T, e env, b inbox.Bootstrap, want map[string][]string) map[string][]string {
	t.Helper()
	return readConfig(t, e, want, func(key string, ev events.Event) string {
		require.Equal(t, events.TypeChatChannel, ev.Type)
		require.Equal(t, b.Tenant.ID.String(), ev.Tenant)
		var x events.ChatChannel
		require.NoError(t, ev.Decode(&x))
		openSecrets(t, e, x.SecretPlace(), x.SecretFields())
		require.Equal(t, "chat_channel/"+x.ID, key)
		s := fmt.Sprintf("%s secrets=%v", x.Name, x.Secrets)
		if o := x.Outbound; o != nil {
			s += fmt.Sprintf(" outbound=%s events=%v secrets=%v disabled=%v", o.URL, o.Events, o.Secrets, o.Disabled)
		}
		if x.Deleted {
			s += " deleted"
		}
		return s
	})
}

func TestAdminChatChannels(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	answers := &answerLog{t: t, e: e, token: admin}
	call := answers.call

	// The channel the bootstrap made is there, manageable.
	var l list[adminChatChannel]
	call(http.MethodGet, chatChannels, "", http.StatusOK, &l)
	require.Len(t, l.Items, 1)
	boot := l.Items[0]
	require.Equal(t, adminChatChannel{ID: b.ChatChannel.ID.String(), Name: "chat", WebhookPath: "/v1/webhooks/chat/" + b.ChatChannel.ID.String() + "/messages",
		StatusWebhookPath: "/v1/webhooks/chat/" + b.ChatChannel.ID.String() + "/statuses", InboundSecretSet: true}, boot)

	// A new one with an endpoint: its secrets are in this answer only.
	var c adminChatChannel
	call(http.MethodPost, chatChannels, chatChannelBody("Website"), http.StatusCreated, &c)
	require.True(t, strings.HasPrefix(c.InboundSecret, "sbwh_"), c.InboundSecret)
	require.NotNil(t, c.Outbound)
	require.True(t, strings.HasPrefix(c.Outbound.Secret, "sbwo_"), c.Outbound.Secret)
	inbound, outbound := c.InboundSecret, c.Outbound.Secret
	path := chatChannels + "/" + c.ID
	var got adminChatChannel
	call(http.MethodGet, path, "", http.StatusOK, &got)
	require.Equal(t, adminChatChannel{ID: c.ID, Name: "Website", WebhookPath: "/v1/webhooks/chat/" + c.ID + "/messages",
		StatusWebhookPath: "/v1/webhooks/chat/" + c.ID + "/statuses", InboundSecretSet: true,
		Outbound: &adminChatOutbound{URL: "https://bots.example.com/switchboard", Events: []string{"message.created", "bot.control"}, SecretSet: true}}, got)

	// Endpoints the egress policy refuses, and events that are not.
	for _, bad := range []struct{ body, field string }{
		{`{"name":"x","outbound":{"url":"http://bots.example.com/hook"}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":"https://10.0.0.5/hook"}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":"https://169.254.169.254/latest"}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":"https://[::1]:8443/hook"}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":"https://bot:pw@bots.example.com/hook"}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":"https://localhost/hook"}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":""}}`, "outbound.url"},
		{`{"name":"x","outbound":{"url":"https://bots.example.com","events":["bot.control"]}}`, "outbound.events"},
		{`{"name":"x","outbound":{"url":"https://bots.example.com","events":["message.created","typing"]}}`, "outbound.events[1]"},
		{`{"name":"x","outbound":{"url":"https://bots.example.com","events":["message.created","message.created"]}}`, "outbound.events[1]"},
	} {
		e.adminInvalid(t, admin, http.MethodPost, chatChannels, bad.body, bad.field)
	}

	// Changes: disable, remove, set again (a new secret, shown once).
	update := func(body string) adminChatChannel {
		var c adminChatChannel
		call(http.MethodPatch, path, body, http.StatusOK, &c)
		return c
	}
	got = update(`{"outbound":{"disabled":true}}`)
	require.True(t, got.Outbound.Disabled)
	require.Empty(t, got.Outbound.Secret)
	got = update(`{"name":"Web","outbound":null}`)
	require.Equal(t, "Web", got.Name)
	require.Nil(t, got.Outbound)
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"outbound":{"events":["message.created"]}}`, "outbound.url")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"outbound":{"url":"https://192.168.1.10/"}}`, "outbound.url")
	got = update(`{"outbound":{"url":"https://bots.example.com/v2"}}`)
	require.Equal(t, []string{"message.created"}, got.Outbound.Events, "the default events")
	require.True(t, strings.HasPrefix(got.Outbound.Secret, "sbwo_"))
	outbound2 := got.Outbound.Secret
	got = update(`{"outbound":{"events":["message.created","conversation.state_changed","bot.control"]}}`)
	require.Empty(t, got.Outbound.Secret, "an endpoint that had a secret keeps it, unshown")

	// Rotations: a new secret, the previous one kept until finished.
	rotate := func(body string, want int) adminChatChannel {
		var c adminChatChannel
		call(http.MethodPost, path+"/rotate-secret", body, want, &c)
		return c
	}
	got = rotate(`{"which":"inbound"}`, http.StatusOK)
	inbound2 := got.InboundSecret
	require.True(t, strings.HasPrefix(inbound2, "sbwh_"))
	require.NotEqual(t, inbound, inbound2)
	require.True(t, got.PreviousInboundSecretSet)
	rotate(`{"which":"inbound"}`, http.StatusConflict)
	got = rotate(`{"which":"inbound","finish":true}`, http.StatusOK)
	require.Empty(t, got.InboundSecret)
	require.False(t, got.PreviousInboundSecretSet)
	rotate(`{"which":"inbound","finish":true}`, http.StatusConflict)
	got = rotate(`{"which":"outbound"}`, http.StatusOK)
	outbound3 := got.Outbound.Secret
	require.True(t, strings.HasPrefix(outbound3, "sbwo_"))
	require.True(t, got.Outbound.PreviousSecretSet)
	require.Empty(t, got.InboundSecret)
	got = rotate(`{"which":"outbound","finish":true}`, http.StatusOK)
	require.False(t, got.Outbound.PreviousSecretSet)

	// The bootstrap channel gets an endpoint like any other; an outbound
	// rotation needs one.
	bootPath := chatChannels + "/" + boot.ID
	var rotated adminChatChannel
	call(http.MethodPost, bootPath+"/rotate-secret", `{"which":"outbound"}`, http.StatusConflict, nil)
	call(http.MethodPatch, bootPath, `{"outbound":{"url":"https://bots.example.com/acme"}}`, http.StatusOK, &rotated)
	bootOutbound := rotated.Outbound.Secret

	// Deleting it stops it.
	call(http.MethodDelete, path, "", http.StatusNoContent, nil)
	call(http.MethodGet, path, "", http.StatusNotFound, nil)
	call(http.MethodPatch, path, `{"name":"again"}`, http.StatusNotFound, nil)
	call(http.MethodGet, chatChannels, "", http.StatusOK, &l)
	require.Len(t, l.Items, 1)

	// Each change went to the chat connector, secrets included.
	key, bootKey := "chat_channel/"+c.ID, "chat_channel/"+boot.ID
	want := map[string][]string{
		key: {
			"Website secrets=[" + inbound + "] outbound=https://bots.example.com/switchboard events=[message.created bot.control] secrets=[" + outbound + "] disabled=false",
			"Website secrets=[" + inbound + "] outbound=https://bots.example.com/switchboard events=[message.created bot.control] secrets=[" + outbound + "] disabled=true",
			"Web secrets=[" + inbound + "]",
			"Web secrets=[" + inbound + "] outbound=https://bots.example.com/v2 events=[message.created] secrets=[" + outbound2 + "] disabled=false",
			"Web secrets=[" + inbound + "] outbound=https://bots.example.com/v2 events=[message.created conversation.state_changed bot.control] secrets=[" + outbound2 + "] disabled=false",
			"Web secrets=[" + inbound2 + " " + inbound + "] outbound=https://bots.example.com/v2 events=[message.created conversation.state_changed bot.control] secrets=[" + outbound2 + "] disabled=false",
			"Web secrets=[" + inbound2 + "] outbound=https://bots.example.com/v2 events=[message.created conversation.state_changed bot.control] secrets=[" + outbound2 + "] disabled=false",
			"Web secrets=[" + inbound2 + "] outbound=https://bots.example.com/v2 events=[message.created conversation.state_changed bot.control] secrets=[" + outbound3 + " " + outbound2 + "] disabled=false",
			"Web secrets=[" + inbound2 + "] outbound=https://bots.example.com/v2 events=[message.created conversation.state_changed bot.control] secrets=[" + outbound3 + "] disabled=false",
			"Web secrets=[] deleted",
		},
		bootKey: {
			"chat secrets=[" + b.ChatChannel.Secret + "]",
			"chat secrets=[" + b.ChatChannel.Secret + "] outbound=https://bots.example.com/acme events=[message.created] secrets=[" + bootOutbound + "] disabled=false",
		},
	}
	require.Equal(t, want, readChatChannelEvents(t, e, b, want))

	// Every secret was in the answer that made it, and in no other.
	for _, secret := range []string{inbound, outbound, outbound2, inbound2, outbound3, bootOutbound} {
		n := 0
		for _, body := range answers.bodies {
			if strings.Contains(body, secret) {
				n++
			}
		}
		require.Equal(t, 1, n, "a secret is in %d answers", n)
	}

	// Another tenant sees none of it.
	other := e.tenant(t, "Other")
	var theirs list[adminChatChannel]
	require.Equal(t, http.StatusOK, e.do(t, other.APIToken.Token, http.MethodGet, chatChannels, "", &theirs))
	require.Len(t, theirs.Items, 1)
	require.Equal(t, other.ChatChannel.ID.String(), theirs.Items[0].ID)
	require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, http.MethodGet, bootPath, "", nil))
}

// chatConversation makes a chat conversation of b (session s-1, user u-1),
// assigned to token's user and routed to q, and returns its path.
func (e env) chatConversation(t *testing.T, b inbox.Bootstrap, token string, q inbox.Queue) string {
	t.Helper()
	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "Bonjour")
	var l list[conversation]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, token, http.MethodGet, "/v1/conversations?channel=chat", "", &l)
		return len(l.Items) == 1
	}, "not stored")
	path := "/v1/conversations/" + l.Items[0].ID
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID), nil))
	return path
}

// topicReader reads topic from its start.
func topicReader(t *testing.T, e env, topic string) *kafka.Reader {
	t.Helper()
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{topic}, MaxWait: 50 * time.Millisecond})
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// nextEvent reads r until an event that keep accepts.
func nextEvent(t *testing.T, r *kafka.Reader, keep func(ev events.Event) bool) events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err)
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		if keep(ev) {
			return ev
		}
	}
}

type botConversation struct {
	fullConversation
	BotBlocked bool  `json:"bot_blocked"`
	Version    int64 `json:"version"`
}

func TestBotControl(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	q := e.queue(t, b, "Support")
	agent, tok := e.userToken(t, b, "agent", q)
	_, mate := e.userToken(t, b, "agent", q)
	path := e.chatConversation(t, b, tok, q)
	commands := topicReader(t, e, events.TopicOutbound(events.ChannelChat))
	changes := topicReader(t, e, events.TopicConversations)

	bot := func(token, action string, want int) botConversation {
		var c botConversation
		require.Equal(t, want, e.do(t, token, http.MethodPost, path+"/bot", fmt.Sprintf(`{"action":%q}`, action), &c))
		return c
	}
	var prob problemBody
	require.Equal(t, http.StatusForbidden, e.do(t, mate, http.MethodPost, path+"/bot", `{"action":"block"}`, &prob), "a teammate who does not hold it")
	c := bot(tok, "block", http.StatusOK)
	require.True(t, c.BotBlocked)
	again := bot(tok, "block", http.StatusOK)
	require.True(t, again.BotBlocked)
	require.Equal(t, c.Version, again.Version, "blocking a blocked bot changed the conversation")
	require.Equal(t, http.StatusConflict, e.do(t, tok, http.MethodPost, path+"/bot", `{"action":"run"}`, &prob))
	require.Equal(t, "assigned", prob.State)
	require.Contains(t, prob.Detail, "blocked")
	require.False(t, bot(tok, "unblock", http.StatusOK).BotBlocked)
	require.False(t, bot(tok, "unblock", http.StatusOK).BotBlocked)
	require.False(t, bot(tok, "run", http.StatusOK).BotBlocked)
	var got botConversation
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path, "", &got))
	require.Equal(t, "assigned", got.State, "bot control moves no state")

	// Audited, once for each change.
	var audit struct {
		Items []struct {
			Action  string            `json:"action"`
			ActorID string            `json:"actor_id"`
			Data    map[string]string `json:"data"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/audit", "", &audit))
	var bots []string
	var ids []string
	for _, a := range audit.Items {
		if strings.HasPrefix(a.Action, "bot_") {
			bots = append(bots, a.Action)
			ids = append(ids, a.Data["command_id"])
			require.Equal(t, agent.ID.String(), a.ActorID)
		}
	}
	require.Equal(t, []string{"bot_blocked", "bot_unblocked", "bot_run"}, bots)

	// Each a command to the chat connector, under the id the audit names.
	conv := strings.TrimPrefix(path, "/v1/conversations/")
	for i, action := range []string{"block", "unblock", "run"} {
		ev := nextEvent(t, commands, func(ev events.Event) bool { return ev.Type == events.TypeBotControl })
		var cmd events.BotControl
		require.NoError(t, ev.Decode(&cmd))
		require.Equal(t, events.BotControl{ID: ids[i], TenantID: b.Tenant.ID.String(), ConversationID: conv, ChannelAccountID: b.ChatChannel.ID.String(),
			ThreadKey: "s-1", To: "u-1", Action: action, Actor: events.Actor{Kind: "user", ID: agent.ID.String()}}, cmd)
		require.Equal(t, ids[i], ev.ID)
	}
	// And a change on the agents' stream.
	for _, action := range []string{"bot_blocked", "bot_unblocked", "bot_run"} {
		ev := nextEvent(t, changes, func(ev events.Event) bool {
			var c events.ConversationChanged
			return ev.Type == events.TypeConversationChanged && ev.Decode(&c) == nil && strings.HasPrefix(c.Action, "bot_")
		})
		var ch events.ConversationChanged
		require.NoError(t, ev.Decode(&ch))
		require.Equal(t, action, ch.Action)
		var snap botConversation
		require.NoError(t, json.Unmarshal(ch.Conversation, &snap))
		require.Equal(t, action == "bot_blocked", snap.BotBlocked)
	}

	// A done conversation's bot does not run (a supervisor asks: the agent
	// holds it no more); an email has no bot.
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/complete", `{"disposition":"solved"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, tok, http.MethodPost, path+"/bot", `{"action":"run"}`, &prob))
	require.Equal(t, http.StatusConflict, e.do(t, b.APIToken.Token, http.MethodPost, path+"/bot", `{"action":"run"}`, &prob))
	require.Equal(t, "done", prob.State)
	mb := e.createMailbox(t, b.APIToken.Token, "support@acme.example")
	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<1@customer.example>", ThreadKey: "<1@customer.example>", From: events.Party{Identity: "ada@customer.example"},
		Text: "hello", Subject: "Order", ReceivedAt: time.Now().UTC()}
	e.publishInbound(t, m)
	var emails list[conversation]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, "/v1/conversations?channel=email", "", &emails)
		return len(emails.Items) == 1
	}, "the email was not stored")
	email := "/v1/conversations/" + emails.Items[0].ID
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, email+"/assign", "", nil))
	require.Equal(t, http.StatusUnprocessableEntity, e.do(t, tok, http.MethodPost, email+"/bot", `{"action":"block"}`, &prob))
	require.Contains(t, prob.Detail, "only a chat conversation has a bot")
}

// publishInbound publishes an inbound message the way a connector does.
func (e env) publishInbound(t *testing.T, m events.MessageReceived) {
	t.Helper()
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
}

type botMessage struct {
	message
	AuthorKind     string `json:"author_kind"`
	AuthorName     string `json:"author_name"`
	Sender         string `json:"sender"`
	DeliveryStatus string `json:"delivery_status"`
}

func TestBotMessagesAreShownAsTheBots(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	q := e.queue(t, b, "Support")
	_, tok := e.userToken(t, b, "agent", q)
	path := e.chatConversation(t, b, tok, q)
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Nous regardons."}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/complete", `{"disposition":"solved"}`, nil))

	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelChat, ChannelAccountID: b.ChatChannel.ID.String(),
		ExternalID: "bot-1", ThreadKey: "s-1", From: events.Party{Identity: "u-1"}, Text: "Anything else I can do?",
		ReceivedAt: time.Now().UTC(), Bot: &events.BotAuthor{Name: "Acme Assistant"}}
	e.publishInbound(t, m)
	var msgs list[botMessage]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, path+"/messages", "", &msgs)
		return len(msgs.Items) == 3
	}, "the bot's message was not stored")
	bm := msgs.Items[2]
	require.Equal(t, "outbound", bm.Direction)
	require.Equal(t, "bot", bm.AuthorKind)
	require.Equal(t, "Acme Assistant", bm.AuthorName)
	require.Equal(t, "Acme Assistant", bm.Sender)
	require.Empty(t, bm.DeliveryStatus)
	var c fullConversation
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path, "", &c))
	require.Equal(t, "done", c.State, "the bot's message re-opened the conversation")

	// The customer's next message does re-open it.
	e.send(t, b, "ev-2", "m-2", "s-1", "u-1", "Oui, encore une question")
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, path, "", &c)
		return c.State == "new"
	}, "the customer's message did not re-open the conversation")
}

// report publishes what a connector says of a sent message.
func (e env) report(t *testing.T, b inbox.Bootstrap, message, status, errText string, at time.Time) {
	t.Helper()
	d := events.Delivery{MessageID: message, TenantID: b.Tenant.ID.String(), Status: status, Error: errText, At: at}
	ev, err := events.New(events.TypeDelivery, "test", d.TenantID, time.Now(), d)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicDelivery, []byte(message), ev))
}

type delivery struct {
	MessageID        string    `json:"message_id"`
	ConversationID   string    `json:"conversation_id"`
	Channel          string    `json:"channel"`
	ChannelAccountID string    `json:"channel_account_id"`
	Status           string    `json:"status"`
	Error            string    `json:"error"`
	FailedAt         time.Time `json:"failed_at"`
	Replays          int       `json:"replays"`
}

// failedDeliveries lists token's failed deliveries (query: "" or
// "&channel=...").
func (e env) failedDeliveries(t *testing.T, token, query string) []delivery {
	t.Helper()
	var l list[delivery]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/admin/deliveries?status=failed&limit=200"+query, "", &l))
	return l.Items
}

// deliveryStatus is the delivery status of message m of the conversation
// at path.
func (e env) deliveryStatus(t *testing.T, token, path, m string) string {
	t.Helper()
	var l list[botMessage]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, path+"/messages?limit=200", "", &l))
	for _, it := range l.Items {
		if it.ID == m {
			return it.DeliveryStatus
		}
	}
	t.Fatalf("no message %s in %s", m, path)
	return ""
}

func TestFailedDeliveriesAreSentAgain(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	q := e.queue(t, b, "Support")
	_, tok := e.userToken(t, b, "agent", q)
	admin := b.APIToken.Token
	path := e.chatConversation(t, b, tok, q)
	chat := topicReader(t, e, events.TopicOutbound(events.ChannelChat))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Nous regardons."}`, nil))
	var first events.SendMessage
	require.NoError(t, nextEvent(t, chat, func(ev events.Event) bool { return ev.Type == events.TypeSendMessage }).Decode(&first))

	// The endpoint refused it: the delivery failed.
	failedAt := time.Now().UTC().Truncate(time.Millisecond)
	e.report(t, b, first.MessageID, events.DeliveryFailed, "the endpoint answered 500", failedAt)
	var failed []delivery
	testkit.Eventually(t, 20*time.Second, func() bool { failed = e.failedDeliveries(t, admin, ""); return len(failed) == 1 }, "the failure is not listed")
	require.Equal(t, delivery{MessageID: first.MessageID, ConversationID: first.ConversationID, Channel: "chat", ChannelAccountID: b.ChatChannel.ID.String(),
		Status: "failed", Error: "the endpoint answered 500", FailedAt: failedAt, Replays: 0}, failed[0])
	require.Len(t, e.failedDeliveries(t, admin, "&channel=chat"), 1)
	require.Empty(t, e.failedDeliveries(t, admin, "&channel=email"))
	e.adminInvalid(t, admin, http.MethodGet, "/v1/admin/deliveries?status=sent", "", "status")
	e.adminInvalid(t, admin, http.MethodGet, "/v1/admin/deliveries?channel=fax", "", "channel")
	require.Equal(t, http.StatusForbidden, e.do(t, tok, http.MethodGet, "/v1/admin/deliveries", "", nil), "an agent")

	// Sent again: pending, the same command with one replay more.
	var replayed struct {
		MessageID string `json:"message_id"`
		Replay    int    `json:"replay"`
	}
	require.Equal(t, http.StatusAccepted, e.do(t, admin, http.MethodPost, "/v1/admin/deliveries/"+first.MessageID+"/replay", "", &replayed))
	require.Equal(t, first.MessageID, replayed.MessageID)
	require.Equal(t, 1, replayed.Replay)
	require.Equal(t, "pending", e.deliveryStatus(t, tok, path, first.MessageID))
	require.Empty(t, e.failedDeliveries(t, admin, ""))
	var second events.SendMessage
	require.NoError(t, nextEvent(t, chat, func(ev events.Event) bool { return ev.Type == events.TypeSendMessage }).Decode(&second))
	want := first
	want.Replay = 1
	require.Equal(t, want, second)
	require.Equal(t, http.StatusConflict, e.do(t, admin, http.MethodPost, "/v1/admin/deliveries/"+first.MessageID+"/replay", "", nil), "not failed now")

	// A report of the failed attempt, late, does not move it; the replay's
	// own reports do.
	e.report(t, b, first.MessageID, events.DeliveryFailed, "the endpoint answered 500", failedAt)
	e.report(t, b, first.MessageID, events.DeliverySent, "", time.Now().UTC())
	testkit.Eventually(t, 20*time.Second, func() bool { return e.deliveryStatus(t, tok, path, first.MessageID) == "sent" },
		"the replay's report was not applied (status %s)", e.deliveryStatus(t, tok, path, first.MessageID))

	// It fails again: all of the tenant's failures are sent again at once.
	e.report(t, b, first.MessageID, events.DeliveryFailed, "the endpoint answered 502", time.Now().UTC())
	testkit.Eventually(t, 20*time.Second, func() bool { failed = e.failedDeliveries(t, admin, ""); return len(failed) == 1 }, "the failure is not listed")
	require.Equal(t, 1, failed[0].Replays)
	e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/deliveries/replay", `{"channel":"fax"}`, "channel")
	var res struct {
		Replayed int `json:"replayed"`
		Limit    int `json:"limit"`
	}
	require.Equal(t, http.StatusAccepted, e.do(t, admin, http.MethodPost, "/v1/admin/deliveries/replay", `{"channel":"email"}`, &res))
	require.Equal(t, 0, res.Replayed)
	require.Equal(t, http.StatusAccepted, e.do(t, admin, http.MethodPost, "/v1/admin/deliveries/replay", `{"channel":"chat"}`, &res))
	require.Equal(t, 1, res.Replayed)
	require.Equal(t, 1000, res.Limit)
	var third events.SendMessage
	require.NoError(t, nextEvent(t, chat, func(ev events.Event) bool { return ev.Type == events.TypeSendMessage }).Decode(&third))
	want.Replay = 2
	require.Equal(t, want, third)
	require.Equal(t, http.StatusAccepted, e.do(t, admin, http.MethodPost, "/v1/admin/deliveries/replay", "", &res))
	require.Equal(t, 0, res.Replayed, "nothing failed any more")

	// Audited with who asked; another tenant sees and replays nothing.
	var audit struct {
		Items []struct {
			Action    string         `json:"action"`
			ActorKind string         `json:"actor_kind"`
			Data      map[string]any `json:"data"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path+"/audit", "", &audit))
	var replays []string
	for _, a := range audit.Items {
		if a.Action == "delivery_replay" {
			require.Equal(t, "api_token", a.ActorKind)
			require.Equal(t, first.MessageID, a.Data["message_id"])
			replays = append(replays, fmt.Sprint(a.Data["replay"]))
		}
	}
	require.Equal(t, []string{"1", "2"}, replays)
	other := e.tenant(t, "Other")
	require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, http.MethodPost, "/v1/admin/deliveries/"+first.MessageID+"/replay", "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodPost, "/v1/admin/deliveries/"+strings.Repeat("0", 8)+"-0000-0000-0000-000000000000/replay", "", nil))
}

func TestAFailedEmailIsSentAgainAsItWas(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	q := e.queue(t, b, "Support")
	_, tok := e.userToken(t, b, "admin")
	mb := e.createMailbox(t, tok, "support@acme.example")
	e.publishInbound(t, events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<1@customer.example>", ThreadKey: "<1@customer.example>", From: events.Party{Identity: "ada@customer.example"},
		Text: "Where is my order?", Subject: "Order 42", ReceivedAt: time.Now().UTC()})
	var l list[conversation]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, "/v1/conversations?channel=email", "", &l)
		return len(l.Items) == 1
	}, "the email was not stored")
	path := "/v1/conversations/" + l.Items[0].ID
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID), nil))
	var up struct {
		ID string `json:"id"`
	}
	r := azCallAs(t, e, tok, http.MethodPost, "/v1/attachments?filename=invoice.txt", "text/plain", "Invoice 42")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	require.NoError(t, json.Unmarshal(r.Body, &up))
	emails := topicReader(t, e, events.TopicOutbound(events.ChannelEmail))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/reply",
		fmt.Sprintf(`{"text":"Here it is.","cc":["boss@customer.example"],"attachments":[%q],"reply_to":"agent"}`, up.ID), nil))
	var first events.SendMessage
	require.NoError(t, nextEvent(t, emails, func(ev events.Event) bool { return ev.Type == events.TypeSendMessage }).Decode(&first))
	require.Equal(t, "Re: Order 42", first.Subject)
	require.NotEmpty(t, first.ReplyTo)
	require.Len(t, first.Attachments, 1)

	// The customer writes meanwhile: the replay still answers what the
	// reply answered.
	e.publishInbound(t, events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<2@customer.example>", ThreadKey: "<1@customer.example>", From: events.Party{Identity: "ada@customer.example"},
		Text: "Hello?", Subject: "Re: Order 42", ReceivedAt: time.Now().UTC()})
	testkit.Eventually(t, 20*time.Second, func() bool {
		var m list[message]
		e.do(t, tok, http.MethodGet, path+"/messages", "", &m)
		return len(m.Items) == 3
	}, "the second email was not stored")
	e.report(t, b, first.MessageID, events.DeliveryFailed, "550 mailbox unavailable", time.Now().UTC())
	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.failedDeliveries(t, tok, "&channel=email")) == 1 }, "the failure is not listed")
	require.Equal(t, http.StatusAccepted, e.do(t, tok, http.MethodPost, "/v1/admin/deliveries/replay", `{"channel":"email"}`, nil))
	var again events.SendMessage
	require.NoError(t, nextEvent(t, emails, func(ev events.Event) bool { return ev.Type == events.TypeSendMessage }).Decode(&again))
	want := first
	want.Replay = 1
	require.Equal(t, want, again)
	require.True(t, slices.Equal([]string{"boss@customer.example"}, again.CC))
}

// failedMessage makes a conversation of A in q2 whose reply, by A's
// admin, failed to be delivered, and returns the conversation and the
// reply.
func (fx *azFixture) failedMessage(t *testing.T) (string, string) {
	t.Helper()
	conv := fx.conv(t, fx.q2, "assigned")
	return conv, fx.failReply(t, fx.a, fx.admin, conv)
}

// failReply replies on conv as token (who holds it), reports the reply
// failed, waits until it shows, and returns it.
func (fx *azFixture) failReply(t *testing.T, b inbox.Bootstrap, token, conv string) string {
	t.Helper()
	path := "/v1/conversations/" + conv
	fx.ok(t, token, http.MethodPost, path+"/reply", `{"text":"On it"}`)
	var l list[botMessage]
	require.NoError(t, json.Unmarshal(fx.ok(t, token, http.MethodGet, path+"/messages?limit=200", "").Body, &l))
	msg := ""
	for _, m := range l.Items {
		if m.Direction == "outbound" && m.DeliveryStatus == "pending" {
			msg = m.ID
		}
	}
	require.NotEmpty(t, msg, "no reply pending")
	fx.e.report(t, b, msg, events.DeliveryFailed, "the endpoint answered 500", time.Now().UTC())
	testkit.Eventually(t, 20*time.Second, func() bool { return fx.e.deliveryStatus(t, token, path, msg) == "failed" }, "the failure was not applied")
	return msg
}

// bFailed is B's failed message (made once).
func (fx *azFixture) bFailed(t *testing.T) string {
	t.Helper()
	if fx.bFailedMessage != "" {
		return fx.bFailedMessage
	}
	q := fx.create(t, fx.other, "/v1/admin/queues", fmt.Sprintf(`{"name":%q}`, testkit.RandomName("bq-")))
	path := "/v1/conversations/" + fx.bConv
	fx.ok(t, fx.other, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, q))
	fx.ok(t, fx.other, http.MethodPost, path+"/assign", "")
	fx.bFailedMessage = fx.failReply(t, fx.b, fx.other, fx.bConv)
	return fx.bFailedMessage
}

// deliveryIDs lists the message ids token's failed deliveries name.
func (fx *azFixture) deliveryIDs(t *testing.T, token string) []string {
	t.Helper()
	var l list[delivery]
	require.NoError(t, json.Unmarshal(fx.ok(t, token, http.MethodGet, "/v1/admin/deliveries?limit=200", "").Body, &l))
	out := []string{}
	for _, d := range l.Items {
		out = append(out, d.MessageID)
	}
	return out
}
