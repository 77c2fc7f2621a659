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

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// The inbox's side of the commands the scheduler and the router send on
// sb.inbox.commands.v1: each applied through the state machine, audited
// with its sender as the actor, once per id; a stale one changes nothing.
// The tests publish the commands as the scheduler would.

// cmdConv is what these tests read of a conversation.
type cmdConv struct {
	ID             string     `json:"id"`
	State          string     `json:"state"`
	Version        int64      `json:"version"`
	StateVersion   int64      `json:"state_version"`
	StateSince     time.Time  `json:"state_since"`
	AssigneeIDs    []string   `json:"assignee_ids"`
	LastWriter     string     `json:"last_writer"`
	OfferExpiresAt *time.Time `json:"offer_expires_at"`
	ClosingAskedAt *time.Time `json:"closing_asked_at"`
	ContactID      string     `json:"contact_id"`
}

type cmdMessage struct {
	Direction string `json:"direction"`
	Body      string `json:"body"`
	Subject   string `json:"subject"`
	Automatic bool   `json:"automatic"`
}

type cmdAudit struct {
	ActorKind string          `json:"actor_kind"`
	ActorID   string          `json:"actor_id"`
	Action    string          `json:"action"`
	From      string          `json:"from_state"`
	To        string          `json:"to_state"`
	Data      json.RawMessage `json:"data"`
}

// cmdFixture is a tenant with a queue, its admin and an agent of the queue.
type cmdFixture struct {
	e         env
	b         inbox.Bootstrap
	q         inbox.Queue
	admin     string
	agentUser inbox.User
	agent     string
}

func newCmdFixture(t *testing.T) *cmdFixture {
	e := start(t)
	fx := &cmdFixture{e: e, b: e.tenant(t, "Acme")}
	fx.q = e.queue(t, fx.b, "Support")
	_, fx.admin = e.userToken(t, fx.b, "admin", fx.q)
	fx.agentUser, fx.agent = e.userToken(t, fx.b, "agent", fx.q)
	return fx
}

// inbound publishes a customer message as a connector does and returns its
// conversation, once stored.
func (fx *cmdFixture) inbound(t *testing.T, m events.MessageReceived) cmdConv {
	t.Helper()
	m.TenantID = fx.b.Tenant.ID.String()
	if m.ExternalID == "" {
		m.ExternalID = uuid.NewString()
	}
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = time.Now().UTC()
	}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, fx.e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	var found cmdConv
	testkit.Eventually(t, 20*time.Second, func() bool {
		var l list[cmdConv]
		require.Equal(t, http.StatusOK, fx.e.get(t, fx.admin, "/v1/conversations?limit=200&channel="+m.Channel, &l))
		for _, c := range l.Items {
			for _, msg := range fx.messages(t, c.ID) {
				if msg.Body == m.Text && msg.Direction == "inbound" {
					found = c
					return true
				}
			}
		}
		return false
	}, "the message %q was not stored", m.Text)
	return found
}

// write sends a customer message on a chat conversation's thread.
func (fx *cmdFixture) write(t *testing.T, conv, text string) {
	t.Helper()
	fx.inbound(t, events.MessageReceived{Channel: events.ChannelChat, ChannelAccountID: fx.b.ChatChannel.ID.String(),
		ThreadKey: threadOf(t, fx, conv), From: events.Party{Identity: "someone"}, Text: text})
}

// chat starts a chat conversation.
func (fx *cmdFixture) chat(t *testing.T, text string) cmdConv {
	return fx.inbound(t, events.MessageReceived{Channel: events.ChannelChat, ChannelAccountID: fx.b.ChatChannel.ID.String(),
		ThreadKey: uuid.NewString(), From: events.Party{Identity: "u-" + uuid.NewString()[:8], Name: "Ada"}, Text: text})
}

func (fx *cmdFixture) conv(t *testing.T, id string) cmdConv {
	t.Helper()
	var c cmdConv
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodGet, "/v1/conversations/"+id, "", &c))
	return c
}

func (fx *cmdFixture) messages(t *testing.T, id string) []cmdMessage {
	t.Helper()
	var l list[cmdMessage]
	require.Equal(t, http.StatusOK, fx.e.get(t, fx.admin, "/v1/conversations/"+id+"/messages?limit=200", &l))
	return l.Items
}

func (fx *cmdFixture) automatic(t *testing.T, id string) []cmdMessage {
	var out []cmdMessage
	for _, m := range fx.messages(t, id) {
		if m.Automatic && m.Direction == "outbound" {
			out = append(out, m)
		}
	}
	return out
}

func (fx *cmdFixture) audit(t *testing.T, id string) []cmdAudit {
	t.Helper()
	var l list[cmdAudit]
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodGet, "/v1/conversations/"+id+"/audit", "", &l))
	return l.Items
}

func (fx *cmdFixture) act(t *testing.T, token, id, action, body string) cmdConv {
	t.Helper()
	var c cmdConv
	require.Equal(t, http.StatusOK, fx.e.do(t, token, http.MethodPost, "/v1/conversations/"+id+"/"+action, body, &c), "%s %s", action, body)
	return c
}

// send publishes a command as the scheduler does, with id as its id.
func (fx *cmdFixture) send(t *testing.T, id string, c cmdConv, cmd events.InboxCommand) {
	t.Helper()
	cmd.TenantID, cmd.ConversationID = fx.b.Tenant.ID.String(), c.ID
	ev, err := events.NewWithID(id, events.TypeInboxCommand, "switchboard/scheduler", cmd.TenantID, time.Now(), cmd)
	require.NoError(t, err)
	require.NoError(t, fx.e.producer.Publish(context.Background(), events.TopicCommands, []byte(c.ID), ev))
}

// outcome waits until the command id was handled and says what became of
// it, and why.
func (fx *cmdFixture) outcome(t *testing.T, id string) (string, string) {
	t.Helper()
	var outcome, reason string
	testkit.Eventually(t, 20*time.Second, func() bool {
		err := fx.e.pool.QueryRow(context.Background(), `SELECT outcome, reason FROM inbox.applied_commands WHERE id = $1`, id).Scan(&outcome, &reason)
		return err == nil
	}, "command %s was not handled", id)
	return outcome, reason
}

// run sends cmd, expecting c's current state and stay in it, under a
// fresh id, and says what became of it.
func (fx *cmdFixture) run(t *testing.T, c cmdConv, cmd events.InboxCommand) (string, string) {
	t.Helper()
	id := "cmd-" + uuid.NewString()
	cmd.Expect = entry(fx.conv(t, c.ID))
	fx.send(t, id, c, cmd)
	return fx.outcome(t, id)
}

// entry is what a command expects of c as it is now.
func entry(c cmdConv) events.Expectation {
	return events.Expectation{State: c.State, StateVersion: c.StateVersion}
}

func (fx *cmdFixture) deferred(t *testing.T, text string) cmdConv {
	c := fx.chat(t, text)
	fx.act(t, fx.agent, c.ID, "assign", "")
	fx.act(t, fx.agent, c.ID, "route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID))
	return fx.act(t, fx.agent, c.ID, "defer", fmt.Sprintf(`{"until":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
}

func TestWakeGoesBackToTheAgentOrToNew(t *testing.T) {
	fx := newCmdFixture(t)

	back := fx.deferred(t, "back to the agent")
	fx.send(t, "wake-1", back, events.InboxCommand{Kind: events.CommandWake, Expect: entry(back), DueAt: time.Now()})
	outcome, _ := fx.outcome(t, "wake-1")
	require.Equal(t, "applied", outcome)
	got := fx.conv(t, back.ID)
	require.Equal(t, "assigned", got.State)
	require.Equal(t, []string{fx.agentUser.ID.String()}, got.AssigneeIDs, "the agent who deferred it takes it back")
	last := fx.audit(t, back.ID)
	wake := last[len(last)-1]
	require.Equal(t, cmdAudit{ActorKind: "system", ActorID: "scheduler", Action: "wake", From: "deferred", To: "assigned"},
		cmdAudit{ActorKind: wake.ActorKind, ActorID: wake.ActorID, Action: wake.Action, From: wake.From, To: wake.To})

	// The same command again: applied once.
	fx.send(t, "wake-1", back, events.InboxCommand{Kind: events.CommandWake, Expect: entry(back), DueAt: time.Now()})
	marker := fx.deferred(t, "marker")
	fx.send(t, "wake-marker", marker, events.InboxCommand{Kind: events.CommandWake, Expect: entry(marker)})
	fx.outcome(t, "wake-marker")
	require.Len(t, fx.audit(t, back.ID), len(last), "a command delivered twice was applied twice")

	// Resumed before its time (Reprendre, [004]): the wake-up is stale.
	resumed := fx.deferred(t, "resumed early")
	got = fx.act(t, fx.agent, resumed.ID, "resume", "")
	require.Equal(t, "assigned", got.State)
	fx.send(t, "wake-5", resumed, events.InboxCommand{Kind: events.CommandWake, Expect: entry(resumed)})
	outcome, _ = fx.outcome(t, "wake-5")
	require.Equal(t, "stale", outcome)

	// The agent cannot take it any more (left the queue): to new.
	away := fx.deferred(t, "the agent left")
	moved := fx.deferred(t, "stale one")
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPatch, "/v1/admin/users/"+fx.agentUser.ID.String(), `{"queue_ids":[]}`, nil))
	fx.send(t, "wake-2", away, events.InboxCommand{Kind: events.CommandWake, Expect: entry(away)})
	fx.outcome(t, "wake-2")
	got = fx.conv(t, away.ID)
	require.Equal(t, "new", got.State)
	require.Empty(t, got.AssigneeIDs)

	// Stale: the customer wrote meanwhile (the conversation is new, a new
	// stay): the wake-up changes nothing.
	fx.write(t, moved.ID, "are you there?")
	testkit.Eventually(t, 20*time.Second, func() bool { return fx.conv(t, moved.ID).State == "new" }, "the customer's message did not re-open it")
	before := fx.conv(t, moved.ID)
	fx.send(t, "wake-3", moved, events.InboxCommand{Kind: events.CommandWake, Expect: entry(moved)})
	outcome, reason := fx.outcome(t, "wake-3")
	require.Equal(t, "stale", outcome)
	require.Contains(t, reason, "is new, not deferred")
	require.Equal(t, before, fx.conv(t, moved.ID))

	// A conversation of another tenant, or none: missing.
	fx.send(t, "wake-4", cmdConv{ID: uuid.NewString()}, events.InboxCommand{Kind: events.CommandWake, Expect: events.Expectation{State: "deferred"}})
	outcome, _ = fx.outcome(t, "wake-4")
	require.Equal(t, "missing", outcome)
}

func TestOffersLapse(t *testing.T) {
	fx := newCmdFixture(t)
	c := fx.chat(t, "offer me")
	expires := time.Now().Add(30 * time.Second).UTC().Truncate(time.Microsecond)
	ev, err := events.NewWithID("offer-1", events.TypeInboxCommand, "switchboard/router", fx.b.Tenant.ID.String(), time.Now(), events.InboxCommand{
		TenantID: fx.b.Tenant.ID.String(), ConversationID: c.ID, Kind: events.CommandOffer, Expect: entry(c),
		Offer: &events.Offer{UserID: fx.agentUser.ID.String(), ExpiresAt: expires}})
	require.NoError(t, err)
	require.NoError(t, fx.e.producer.Publish(context.Background(), events.TopicCommands, []byte(c.ID), ev))
	outcome, _ := fx.outcome(t, "offer-1")
	require.Equal(t, "applied", outcome)
	offered := fx.conv(t, c.ID)
	require.Equal(t, "offered", offered.State)
	require.Equal(t, []string{fx.agentUser.ID.String()}, offered.AssigneeIDs)
	require.True(t, expires.Equal(*offered.OfferExpiresAt))

	fx.send(t, "expire-1", offered, events.InboxCommand{Kind: events.CommandExpireOffer, Expect: entry(offered), DueAt: expires})
	fx.outcome(t, "expire-1")
	back := fx.conv(t, c.ID)
	require.Equal(t, "new", back.State)
	require.Empty(t, back.AssigneeIDs)
	require.Nil(t, back.OfferExpiresAt)
	a := fx.audit(t, c.ID)
	require.Equal(t, "offer_expired", a[len(a)-1].Action)
	require.Contains(t, string(a[len(a)-1].Data), fx.agentUser.ID.String(), "the missed offer is counted against its agent")

	// An accepted offer does not lapse.
	fx.send(t, "offer-2", back, events.InboxCommand{Kind: events.CommandOffer, Expect: entry(back),
		Offer: &events.Offer{UserID: fx.agentUser.ID.String(), ExpiresAt: expires}})
	fx.outcome(t, "offer-2")
	offered = fx.conv(t, c.ID)
	fx.act(t, fx.agent, c.ID, "assign", "")
	fx.send(t, "expire-2", offered, events.InboxCommand{Kind: events.CommandExpireOffer, Expect: entry(offered)})
	outcome, _ = fx.outcome(t, "expire-2")
	require.Equal(t, "stale", outcome)
	require.Equal(t, "assigned", fx.conv(t, c.ID).State)
}

// TestAutomaticMessageRules holds the rules every automatic message
// follows ([003]): never in answer to a machine's mail, never to an SMS
// number that opted out, on SMS and chat only where the tenant enabled
// them, a waiting message only while assigned (the queue's wins), never
// once deleted, once per entry into a state.
func TestAutomaticMessageRules(t *testing.T) {
	fx := newCmdFixture(t)
	mb := fx.e.createMailbox(t, fx.admin, testkit.RandomName("support-")+"@acme.example")
	ours := smsNumber()
	acct := fx.e.createSMSAccount(t, fx.admin, ours)

	var wm, queueWM, other struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, fx.e.do(t, fx.admin, http.MethodPost, "/v1/admin/waiting-messages",
		`{"name":"Tenant","subject":"Still on it, {{customer_name}}","body":"Ref {{conversation_ref}}: {{hours_waited}} h in {{queue_name}}. {{tenant_name}}","hours":{"new":4}}`, &wm))
	require.Equal(t, http.StatusCreated, fx.e.do(t, fx.admin, http.MethodPost, "/v1/admin/waiting-messages",
		`{"name":"Queue","subject":"Queue's","body":"The queue's text","hours":{"new":1}}`, &queueWM))
	require.Equal(t, http.StatusCreated, fx.e.do(t, fx.admin, http.MethodPost, "/v1/admin/waiting-messages",
		`{"name":"Other","subject":"Other","body":"Other","hours":{"external":1}}`, &other))
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPut, "/v1/admin/automation", fmt.Sprintf(
		`{"waiting_message_id":%q,"announced_delay_hours":4,"acknowledgement":{"subject":"We got it","body":"Thanks {{customer_name}}, within {{announced_delay_hours}} h"}}`, wm.ID), nil))

	email := func(t *testing.T, text string, automatic bool) cmdConv {
		thread := "<" + uuid.NewString() + "@customer.example>"
		return fx.inbound(t, events.MessageReceived{Channel: events.ChannelEmail, ChannelAccountID: mb.ID, ExternalID: thread, ThreadKey: thread,
			From: events.Party{Identity: "ada@customer.example", Name: "Ada Lovelace"}, Text: text, Subject: "Order 42", Automatic: automatic})
	}
	sms := func(t *testing.T, customer, text, consent string) cmdConv {
		m := events.MessageReceived{Channel: events.ChannelSMS, ChannelAccountID: acct.ID, ThreadKey: ours + ":" + customer,
			From: events.Party{Identity: customer}, Text: text}
		if consent != "" {
			m.Metadata = map[string]string{"consent": consent}
		}
		return fx.inbound(t, m)
	}
	ack := events.InboxCommand{Kind: events.CommandSendAutomatic, Automatic: &events.Automatic{Purpose: events.AutomaticAcknowledgement}}
	waiting := func(id string) events.InboxCommand {
		return events.InboxCommand{Kind: events.CommandSendAutomatic, Automatic: &events.Automatic{Purpose: events.AutomaticWaiting, WaitingMessageID: id}}
	}
	run := fx.run

	t.Run("email acknowledgement and waiting message, rendered", func(t *testing.T) {
		c := email(t, "Where is my order?", false)
		outcome, reason := run(t, c, ack)
		require.Equal(t, "applied", outcome, reason)
		outcome, reason = run(t, c, waiting(wm.ID))
		require.Equal(t, "applied", outcome, reason)
		got := fx.automatic(t, c.ID)
		require.Len(t, got, 2)
		require.Equal(t, cmdMessage{Direction: "outbound", Body: "Thanks Ada Lovelace, within 4 h", Subject: "We got it", Automatic: true}, got[0])
		require.Equal(t, "Still on it, Ada Lovelace", got[1].Subject)
		require.Equal(t, "Ref "+strings.ToUpper(c.ID[:8])+": 0 h in . Acme", got[1].Body)
		// Once per entry: again in the same stay, nothing.
		outcome, reason = run(t, c, waiting(wm.ID))
		require.Equal(t, "stale", outcome)
		require.Contains(t, reason, "sent already")
	})
	t.Run("the send command carries Auto-Submitted for email", func(t *testing.T) {
		c := email(t, "Is it shipped?", false)
		r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: fx.e.brokers, GroupID: testkit.RandomName("outbound-"), GroupTopics: []string{events.TopicOutbound(events.ChannelEmail)},
			StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
		defer r.Close()
		outcome, _ := run(t, c, ack)
		require.Equal(t, "applied", outcome)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err, "no send command for the acknowledgement")
			ev, _, err := events.FromMessage(ctx, m)
			require.NoError(t, err)
			var s events.SendMessage
			require.NoError(t, ev.Decode(&s))
			if s.ConversationID == c.ID {
				require.True(t, s.Automatic)
				require.Equal(t, "ada@customer.example", s.To)
				require.NotEmpty(t, s.InReplyTo, "threaded on the customer's mail")
				return
			}
		}
	})
	t.Run("never in answer to a machine's mail", func(t *testing.T) {
		c := email(t, "I am out of the office until Monday.", true)
		for _, cmd := range []events.InboxCommand{ack, waiting(wm.ID)} {
			outcome, reason := run(t, c, cmd)
			require.Equal(t, "stale", outcome)
			require.Contains(t, reason, "RFC 3834")
		}
		require.Empty(t, fx.automatic(t, c.ID))
	})
	t.Run("SMS and chat only where enabled; never to an opted-out number", func(t *testing.T) {
		text := sms(t, "+33600000001", "Bonjour", "")
		chat := fx.chat(t, "Hello there")
		for _, c := range []cmdConv{text, chat} {
			outcome, reason := run(t, c, ack)
			require.Equal(t, "stale", outcome)
			require.Contains(t, reason, "off for this channel")
		}
		require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPut, "/v1/admin/automation", fmt.Sprintf(
			`{"channels":{"sms":true,"chat":true},"waiting_message_id":%q,"acknowledgement":{"body":"Thanks"}}`, wm.ID), nil))
		for _, c := range []cmdConv{text, chat} {
			outcome, reason := run(t, c, ack)
			require.Equal(t, "applied", outcome, reason)
			require.Len(t, fx.automatic(t, c.ID), 1)
		}
		stopped := sms(t, "+33600000002", "Bonjour, c'est Marc", "")
		sms(t, "+33600000002", "STOP", "opted_out")
		for _, cmd := range []events.InboxCommand{ack, waiting(wm.ID)} {
			outcome, reason := run(t, stopped, cmd)
			require.Equal(t, "stale", outcome)
			require.Contains(t, reason, "opted out")
		}
		require.Empty(t, fx.automatic(t, stopped.ID))
	})
	t.Run("a waiting message only while it applies", func(t *testing.T) {
		c := fx.chat(t, "Any news?")
		outcome, reason := run(t, c, waiting(other.ID))
		require.Equal(t, "stale", outcome, "a waiting message assigned nowhere went out")
		require.Contains(t, reason, "no longer assigned")
		// Routed to a queue with its own: the tenant's no longer applies.
		require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPut, "/v1/admin/queues/"+fx.q.ID.String()+"/automation",
			fmt.Sprintf(`{"waiting_message_id":%q}`, queueWM.ID), nil))
		fx.act(t, fx.admin, c.ID, "route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID))
		outcome, _ = run(t, c, waiting(wm.ID))
		require.Equal(t, "stale", outcome, "the tenant's went out where the queue has its own")
		outcome, _ = run(t, c, waiting(queueWM.ID))
		require.Equal(t, "applied", outcome)
		// Deleted: what comes after is refused.
		d := fx.chat(t, "Hello again")
		require.Equal(t, http.StatusNoContent, fx.e.do(t, fx.admin, http.MethodDelete, "/v1/admin/waiting-messages/"+wm.ID, "", nil))
		outcome, reason = run(t, d, waiting(wm.ID))
		require.Equal(t, "stale", outcome)
		require.Contains(t, reason, "no longer assigned")
		var a struct {
			WaitingMessageID *string `json:"waiting_message_id"`
		}
		require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodGet, "/v1/admin/automation", "", &a))
		require.Nil(t, a.WaitingMessageID, "the tenant still has the deleted waiting message")
	})
}

func TestSmartCloseCommands(t *testing.T) {
	fx := newCmdFixture(t)
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPut, "/v1/admin/automation",
		`{"channels":{"chat":true},"smart_close":{"texts":{"chat":{"question":"Anything else, {{customer_name}}?","follow_up":"Tell us more","yes_label":"Oui","no_label":"Non"}}}}`, nil))
	answered := func(t *testing.T, text string) cmdConv {
		c := fx.chat(t, text)
		fx.act(t, fx.agent, c.ID, "assign", "")
		fx.act(t, fx.agent, c.ID, "route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID))
		return fx.act(t, fx.agent, c.ID, "reply", `{"text":"Done."}`)
	}
	run := fx.run

	t.Run("asked at once; no answer closes", func(t *testing.T) {
		c := answered(t, "first")
		closing := fx.act(t, fx.agent, c.ID, "complete", `{"disposition":"solved","smart_close":true}`)
		require.Equal(t, "closing", closing.State)
		require.NotNil(t, closing.ClosingAskedAt)
		q := fx.automatic(t, c.ID)
		require.Len(t, q, 1)
		require.Equal(t, "Anything else, Ada?", q[0].Body)
		outcome, reason := run(t, c, events.InboxCommand{Kind: events.CommandSmartCloseTimeout})
		require.Equal(t, "applied", outcome, reason)
		require.Equal(t, "done", fx.conv(t, c.ID).State)
	})
	t.Run("no closes; yes comes back with a follow-up; anything else comes back", func(t *testing.T) {
		for _, tc := range []struct {
			answer   string
			state    string
			followUp bool
		}{{events.AnswerNo, "done", false}, {events.AnswerYes, "assigned", true}, {events.AnswerOther, "assigned", false}} {
			c := answered(t, "answer "+tc.answer)
			fx.act(t, fx.agent, c.ID, "complete", `{"disposition":"solved","smart_close":true}`)
			outcome, reason := run(t, c, events.InboxCommand{Kind: events.CommandSmartCloseAnswer, Answer: tc.answer})
			require.Equal(t, "applied", outcome, reason)
			got := fx.conv(t, c.ID)
			require.Equal(t, tc.state, got.State, tc.answer)
			if tc.state == "assigned" {
				require.Equal(t, []string{fx.agentUser.ID.String()}, got.AssigneeIDs, "back to its agent")
			}
			auto := fx.automatic(t, c.ID)
			if tc.followUp {
				require.Len(t, auto, 2)
				require.Equal(t, "Tell us more", auto[1].Body)
			} else {
				require.Len(t, auto, 1, tc.answer)
			}
		}
	})
	t.Run("the timeout is stale once the customer wrote", func(t *testing.T) {
		c := answered(t, "third")
		fx.act(t, fx.agent, c.ID, "complete", `{"disposition":"solved","smart_close":true}`)
		fx.write(t, c.ID, "wait, one more thing")
		testkit.Eventually(t, 20*time.Second, func() bool { return fx.conv(t, c.ID).LastWriter == "customer" }, "the customer's message did not arrive")
		outcome, reason := run(t, c, events.InboxCommand{Kind: events.CommandSmartCloseTimeout})
		require.Equal(t, "stale", outcome)
		require.Contains(t, reason, "customer wrote")
		require.Equal(t, "closing", fx.conv(t, c.ID).State)
	})
	t.Run("waiting first, then asking", func(t *testing.T) {
		c := answered(t, "fourth")
		closing := fx.act(t, fx.agent, c.ID, "complete", `{"disposition":"solved","smart_close":true,"smart_close_wait":true}`)
		require.Nil(t, closing.ClosingAskedAt)
		require.Empty(t, fx.automatic(t, c.ID), "asked before the wait")
		outcome, reason := run(t, c, events.InboxCommand{Kind: events.CommandSmartCloseTimeout})
		require.Equal(t, "stale", outcome, "closed before asking")
		require.Contains(t, reason, "not asked")
		outcome, reason = run(t, c, events.InboxCommand{Kind: events.CommandSmartCloseAsk})
		require.Equal(t, "applied", outcome, reason)
		got := fx.conv(t, c.ID)
		require.NotNil(t, got.ClosingAskedAt)
		require.Len(t, fx.automatic(t, c.ID), 1)
		outcome, _ = run(t, c, events.InboxCommand{Kind: events.CommandSmartCloseAsk})
		require.Equal(t, "stale", outcome, "asked twice")
	})
	t.Run("smart close where it cannot ask is refused", func(t *testing.T) {
		mb := fx.e.createMailbox(t, fx.admin, testkit.RandomName("support-")+"@acme.example")
		thread := "<" + uuid.NewString() + "@customer.example>"
		c := fx.inbound(t, events.MessageReceived{Channel: events.ChannelEmail, ChannelAccountID: mb.ID, ExternalID: thread, ThreadKey: thread,
			From: events.Party{Identity: "ada@customer.example"}, Text: "an email", Subject: "Hi"})
		fx.act(t, fx.agent, c.ID, "assign", "")
		var p struct {
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		}
		require.Equal(t, http.StatusBadRequest, fx.e.do(t, fx.agent, http.MethodPost, "/v1/conversations/"+c.ID+"/complete", `{"disposition":"solved","smart_close":true}`, &p))
		require.Equal(t, "smart_close", p.Errors[0].Field, "no question for email")
		require.Equal(t, "assigned", fx.conv(t, c.ID).State)
	})
}

// threadOf returns a conversation's thread key, which the API does not
// show.
func threadOf(t *testing.T, fx *cmdFixture, conv string) string {
	t.Helper()
	var thread string
	require.NoError(t, fx.e.pool.QueryRow(context.Background(), `SELECT thread_key FROM inbox.conversations WHERE id = $1`, conv).Scan(&thread))
	return thread
}

func TestInactivityAlert(t *testing.T) {
	fx := newCmdFixture(t)
	c := fx.chat(t, "hello")
	held := fx.act(t, fx.agent, c.ID, "assign", "")
	stream, _ := stOpen(t, fx.e, fx.agent, "")
	fx.send(t, "inactive-1", held, events.InboxCommand{Kind: events.CommandInactivity, Minutes: 20,
		Expect: events.Expectation{State: "assigned", Version: held.Version}})
	outcome, reason := fx.outcome(t, "inactive-1")
	require.Equal(t, "applied", outcome, reason)
	a := fx.audit(t, c.ID)
	last := a[len(a)-1]
	require.Equal(t, "inactive", last.Action)
	require.Empty(t, last.From, "an alert does not change the state")
	require.Contains(t, string(last.Data), fx.agentUser.ID.String(), "the alert names the agent")
	require.Equal(t, "assigned", fx.conv(t, c.ID).State)
	stream.until(t, "the inactivity alert on the agent's stream", func(ev stEvent) bool {
		return ev.Type == events.TypeConversationChanged && ev.Conversation == c.ID && ev.Action == "inactive"
	})

	// Activity since: the alert is stale.
	fx.act(t, fx.agent, c.ID, "route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID))
	fx.send(t, "inactive-2", held, events.InboxCommand{Kind: events.CommandInactivity, Minutes: 20,
		Expect: events.Expectation{State: "assigned", Version: held.Version + 1}})
	outcome, _ = fx.outcome(t, "inactive-2")
	require.Equal(t, "stale", outcome)
}

func TestUnreadableCommandsAreDeadLettered(t *testing.T) {
	fx := newCmdFixture(t)
	c := fx.chat(t, "hello")
	bad, err := events.NewWithID("bad-1", events.TypeInboxCommand, "switchboard/scheduler", fx.b.Tenant.ID.String(), time.Now(),
		events.InboxCommand{TenantID: fx.b.Tenant.ID.String(), ConversationID: c.ID, Kind: "explode", Expect: events.Expectation{State: "new"}})
	require.NoError(t, err)
	require.NoError(t, fx.e.producer.Publish(context.Background(), events.TopicCommands, []byte(c.ID), bad))
	held := fx.act(t, fx.agent, c.ID, "assign", "")
	fx.send(t, "after-bad", held, events.InboxCommand{Kind: events.CommandInactivity, Minutes: 1, Expect: events.Expectation{State: "assigned", Version: held.Version}})
	outcome, _ := fx.outcome(t, "after-bad")
	require.Equal(t, "applied", outcome, "a bad command held up the partition")

	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: fx.e.brokers, Topic: events.TopicDLQ, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "the bad command is not in the dead-letter topic")
		var reason, id string
		for _, h := range m.Headers {
			switch h.Key {
			case bus.HeaderDLQReason:
				reason = string(h.Value)
			case events.HeaderID:
				id = string(h.Value)
			}
		}
		if id == "bad-1" {
			require.Contains(t, reason, "kind")
			break
		}
	}
	require.False(t, slices.ContainsFunc(fx.audit(t, c.ID), func(a cmdAudit) bool { return a.Action == "explode" }))
}
