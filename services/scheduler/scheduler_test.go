package scheduler_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/scheduler"
)

// These tests hold the scheduler to its contract with the inbox: from the
// events the inbox publishes (sb.conversations.v1, sb.config.v1) it sends
// the commands it should (sb.inbox.commands.v1), when they are due, once.
// The inbox's side is tested in services/inbox, and both together through
// the binary in cmd/switchboard.

type env struct {
	pool     *pgxpool.Pool
	brokers  []string
	producer *bus.Producer
	tenant   uuid.UUID
	cmds     *commands
	stop     func()
	start    func()
}

// commands collects what the scheduler sends the inbox.
type commands struct {
	mu   sync.Mutex
	got  []received
	seen map[string]int
}

type received struct {
	id  string
	at  time.Time
	cmd events.InboxCommand
	key string
}

func (c *commands) all() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.got...)
}

// of returns the commands about conversation conv.
func (c *commands) of(conv uuid.UUID) []received {
	var out []received
	for _, r := range c.all() {
		if r.cmd.ConversationID == conv.String() {
			out = append(out, r)
		}
	}
	return out
}

func start(t *testing.T) *env {
	t.Helper()
	pool := testkit.Postgres(t)
	brokers := testkit.Kafka(t)
	cfg := testkit.BusConfig(brokers)
	tel := telemetry.Discard()
	producer, err := bus.NewProducer(cfg, tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close() })
	e := &env{pool: pool, brokers: brokers, producer: producer, tenant: uuid.New(), cmds: &commands{seen: map[string]int{}}}

	var stop func()
	e.start = func() {
		svc, err := scheduler.New(testkit.Context(t), scheduler.Config{FireBatch: 100, MaxSleep: 200 * time.Millisecond},
			scheduler.Deps{Pool: pool, Bus: cfg, Producer: producer, Telemetry: tel})
		require.NoError(t, err)
		stop = testkit.Run(t, svc)
		testkit.Eventually(t, 20*time.Second, func() bool { return svc.Ready(context.Background()) == nil }, "the scheduler is not ready")
	}
	e.stop = func() { stop() }
	e.start()

	// Read sb.inbox.commands.v1 as the inbox would, in the background.
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: brokers, GroupID: "test-inbox", GroupTopics: []string{events.TopicCommands},
		StartOffset: kafka.FirstOffset, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 50 * time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, JoinGroupBackoff: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				return
			}
			ev, _, err := events.FromMessage(ctx, m)
			if err != nil {
				t.Errorf("a command that is not a CloudEvent: %v", err)
				continue
			}
			var c events.InboxCommand
			if err := ev.Decode(&c); err != nil {
				t.Errorf("command %s: %v", ev.ID, err)
				continue
			}
			if err := c.Validate(); err != nil {
				t.Errorf("command %s is invalid: %v", ev.ID, err)
			}
			if ev.Type != events.TypeInboxCommand || ev.Source != scheduler.EventSource || ev.Tenant != c.TenantID {
				t.Errorf("command %s: type %s, source %s, tenant %s", ev.ID, ev.Type, ev.Source, ev.Tenant)
			}
			e.cmds.mu.Lock()
			e.cmds.got = append(e.cmds.got, received{id: ev.ID, at: time.Now(), cmd: c, key: string(m.Key)})
			e.cmds.seen[ev.ID]++
			e.cmds.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done; _ = r.Close() })
	return e
}

// conversation is what the inbox says of a conversation in its events.
type conversation struct {
	ID             uuid.UUID  `json:"id"`
	Channel        string     `json:"channel"`
	QueueID        *uuid.UUID `json:"queue_id"`
	State          string     `json:"state"`
	Version        int64      `json:"version"`
	StateVersion   int64      `json:"state_version"`
	StateSince     time.Time  `json:"state_since"`
	DeferredUntil  *time.Time `json:"deferred_until,omitempty"`
	OfferExpiresAt *time.Time `json:"offer_expires_at,omitempty"`
	ClosingAskedAt *time.Time `json:"closing_asked_at,omitempty"`
}

func (e *env) key(c conversation) []byte {
	return events.ConversationKey(e.tenant.String(), c.Channel, "acct", c.ID.String())
}

// changed publishes a conversation change as the inbox does.
func (e *env) changed(t *testing.T, action string, c conversation) {
	t.Helper()
	snap, err := json.Marshal(c)
	require.NoError(t, err)
	ev, err := events.New(events.TypeConversationChanged, "switchboard/inbox", e.tenant.String(), time.Now(),
		events.ConversationChanged{Action: action, Actor: events.Actor{Kind: "user", ID: "u"}, To: c.State, Conversation: snap})
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicConversations, e.key(c), ev))
}

// message publishes a customer message of c as the inbox does.
func (e *env) message(t *testing.T, c conversation, text string, automatic bool) {
	t.Helper()
	msg, err := json.Marshal(map[string]any{"id": uuid.NewString(), "direction": "inbound", "body": text, "automatic": automatic})
	require.NoError(t, err)
	ref, err := json.Marshal(map[string]any{"id": c.ID, "state": c.State, "queue_id": c.QueueID, "version": c.Version,
		"state_version": c.StateVersion, "state_since": c.StateSince})
	require.NoError(t, err)
	ev, err := events.New(events.TypeConversationMessage, "switchboard/inbox", e.tenant.String(), time.Now(),
		events.ConversationMessage{Message: msg, Conversation: ref})
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicConversations, e.key(c), ev))
}

// config publishes a configuration entity as the inbox does.
func (e *env) config(t *testing.T, typ, kind, id string, data any) {
	t.Helper()
	ev, err := events.New(typ, "switchboard/inbox", e.tenant.String(), time.Now(), data)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicConfig, events.ConfigKey(kind, id), ev))
}

// pendingDue returns the due time of the pending timers of conv, by id.
func (e *env) pendingDue(t *testing.T, conv uuid.UUID) map[string]time.Time {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT id, due_at FROM scheduler.timers WHERE conversation_id = $1 AND fired_at IS NULL`, conv)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var due time.Time
		require.NoError(t, rows.Scan(&id, &due))
		out[id] = due
	}
	require.NoError(t, rows.Err())
	return out
}

func newConv(state string, version int64) conversation {
	now := time.Now().UTC()
	return conversation{ID: uuid.New(), Channel: events.ChannelEmail, State: state, Version: version, StateVersion: version, StateSince: now}
}

func TestDeferralWakesOnceAndResumeCancels(t *testing.T) {
	e := start(t)
	woken := newConv("deferred", 4)
	until := time.Now().Add(300 * time.Millisecond).UTC()
	woken.DeferredUntil = &until
	e.changed(t, "defer", woken)

	resumed := newConv("deferred", 4)
	later := time.Now().Add(500 * time.Millisecond).UTC()
	resumed.DeferredUntil = &later
	e.changed(t, "defer", resumed)
	resumed.State, resumed.Version, resumed.StateVersion, resumed.DeferredUntil = "assigned", 5, 5, nil
	e.changed(t, "resume", resumed)

	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(woken.ID)) > 0 }, "the deferred conversation was not woken")
	got := e.cmds.of(woken.ID)[0]
	require.Equal(t, events.CommandWake, got.cmd.Kind)
	require.Equal(t, events.Expectation{State: "deferred", StateVersion: 4}, got.cmd.Expect)
	require.True(t, until.Equal(got.cmd.DueAt), "due_at %s, want %s", got.cmd.DueAt, until)
	require.Equal(t, string(e.key(woken)), got.key, "commands are keyed by conversation")
	require.False(t, got.at.Before(until), "woken before its time")

	// The resumed one's timer is gone before its time came, and nothing
	// came for it once that time passed.
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.pendingDue(t, resumed.ID)) == 0 }, "resuming did not cancel the wake-up")
	testkit.Eventually(t, 10*time.Second, func() bool { return time.Now().After(later.Add(300 * time.Millisecond)) }, "time stands still")
	require.Empty(t, e.cmds.of(resumed.ID), "a resumed conversation was woken")

	// Restarted, the scheduler does not fire the wake-up again.
	e.stop()
	e.start()
	marker := newConv("deferred", 2)
	soon := time.Now().Add(100 * time.Millisecond).UTC()
	marker.DeferredUntil = &soon
	e.changed(t, "defer", marker)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(marker.ID)) > 0 }, "the scheduler does not fire after a restart")
	require.Len(t, e.cmds.of(woken.ID), 1, "a timer fired again after a restart")
}

func TestOldAndRepeatedEventsChangeNothing(t *testing.T) {
	e := start(t)
	c := newConv("deferred", 4)
	until := time.Now().Add(time.Hour).UTC()
	c.DeferredUntil = &until
	e.changed(t, "defer", c)
	back := c
	back.State, back.Version, back.StateVersion, back.DeferredUntil = "assigned", 5, 5, nil
	e.changed(t, "resume", back)
	// The outbox publishes again after a crash: the defer event comes a
	// second time, after the resume. It must not bring the wake-up back.
	e.changed(t, "defer", c)
	marker := newConv("new", 1)
	e.changed(t, "created", marker) // after the others on the same partition
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.conversations WHERE id = $1`, marker.ID).Scan(&n)
		return n == 1
	}, "the scheduler did not take the events in")
	require.Empty(t, e.pendingDue(t, c.ID), "an old event brought a cancelled timer back")
}

func TestWaitingMessagesFollowTheirSettings(t *testing.T) {
	e := start(t)
	tenantWM, queueWM, queue := uuid.New(), uuid.New(), uuid.New()
	hours := func(v float64) *float64 { return &v }
	e.config(t, events.TypeWaitingMessage, "waiting_message", tenantWM.String(), events.WaitingMessage{ID: tenantWM.String(), TenantID: e.tenant.String(),
		Hours: events.WaitingHours{New: hours(4)}})
	e.config(t, events.TypeWaitingMessage, "waiting_message", queueWM.String(), events.WaitingMessage{ID: queueWM.String(), TenantID: e.tenant.String(),
		Hours: events.WaitingHours{New: hours(1)}})
	e.config(t, events.TypeAutomation, "automation", e.tenant.String(), events.Automation{TenantID: e.tenant.String(), WaitingMessageID: tenantWM.String()})

	c := newConv("new", 2)
	e.changed(t, "created", c)
	inQueue := newConv("new", 2)
	inQueue.QueueID = &queue
	e.changed(t, "created", inQueue)
	id := "waiting/" + c.ID.String() + "/2"
	qid := "waiting/" + inQueue.ID.String() + "/2"
	dueIn := func(conv uuid.UUID, id string, d time.Duration, since time.Time) func() bool {
		return func() bool {
			due, ok := e.pendingDue(t, conv)[id]
			return ok && due.Sub(since.Add(d)).Abs() < time.Millisecond
		}
	}
	testkit.Eventually(t, 10*time.Second, dueIn(c.ID, id, 4*time.Hour, c.StateSince), "the tenant's waiting message is not scheduled at 4 h")
	testkit.Eventually(t, 10*time.Second, dueIn(inQueue.ID, qid, 4*time.Hour, inQueue.StateSince), "a queue without its own takes the tenant's")

	// The queue gets its own: it wins, for what already waits too.
	e.config(t, events.TypeQueue, "queue", queue.String(), events.Queue{ID: queue.String(), TenantID: e.tenant.String(), Name: "Q",
		Automation: &events.QueueAutomation{WaitingMessageID: queueWM.String()}})
	testkit.Eventually(t, 10*time.Second, dueIn(inQueue.ID, qid, time.Hour, inQueue.StateSince), "the queue's waiting message does not win")

	// Editing the tenant's moves what waits at once.
	e.config(t, events.TypeWaitingMessage, "waiting_message", tenantWM.String(), events.WaitingMessage{ID: tenantWM.String(), TenantID: e.tenant.String(),
		Hours: events.WaitingHours{New: hours(0.5)}})
	testkit.Eventually(t, 10*time.Second, dueIn(c.ID, id, 30*time.Minute, c.StateSince), "an edit did not move the waiting message")
	require.True(t, dueIn(inQueue.ID, qid, time.Hour, inQueue.StateSince)(), "editing the tenant's moved the queue's")

	// Deleting it cancels what was scheduled.
	e.config(t, events.TypeWaitingMessage, "waiting_message", tenantWM.String(), events.WaitingMessage{ID: tenantWM.String(), TenantID: e.tenant.String(), Deleted: true})
	testkit.Eventually(t, 10*time.Second, func() bool { _, ok := e.pendingDue(t, c.ID)[id]; return !ok }, "deleting did not cancel the send")

	// The queue deleted: its conversations fall back to the tenant's,
	// which has none any more.
	e.config(t, events.TypeQueue, "queue", queue.String(), events.Queue{ID: queue.String(), TenantID: e.tenant.String(), Deleted: true})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.pendingDue(t, inQueue.ID)) == 0 }, "a deleted queue's waiting message is still scheduled")
}

func TestWaitingMessageFiresOncePerEntry(t *testing.T) {
	e := start(t)
	wm := uuid.New()
	v := 0.0002 // hours: 0.72 s
	e.config(t, events.TypeWaitingMessage, "waiting_message", wm.String(), events.WaitingMessage{ID: wm.String(), TenantID: e.tenant.String(),
		Hours: events.WaitingHours{New: &v}})
	e.config(t, events.TypeAutomation, "automation", e.tenant.String(), events.Automation{TenantID: e.tenant.String(), WaitingMessageID: wm.String()})
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.tenant_settings`).Scan(&n)
		return n == 1
	}, "the settings did not arrive")

	c := newConv("new", 2)
	e.changed(t, "created", c)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(c.ID)) == 1 }, "no waiting message went out")
	// Messages come in the same stay in new: not sent again.
	c.Version = 3
	e.message(t, c, "still waiting", false)
	c.Version = 4
	e.message(t, c, "hello?", false)
	// A new entry into new (the customer wrote after an answer): sent again.
	c.State, c.Version, c.StateVersion = "answered", 5, 5
	e.changed(t, "reply", c)
	c.State, c.Version, c.StateVersion, c.StateSince = "new", 6, 6, time.Now().UTC()
	e.changed(t, "customer_message", c)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(c.ID)) == 2 }, "the second entry into new got no waiting message")
	got := e.cmds.of(c.ID)
	require.Equal(t, events.Expectation{State: "new", StateVersion: 2}, got[0].cmd.Expect)
	require.Equal(t, events.Expectation{State: "new", StateVersion: 6}, got[1].cmd.Expect)
	require.NotEqual(t, got[0].id, got[1].id)
	for _, r := range got {
		require.Equal(t, events.CommandSendAutomatic, r.cmd.Kind)
		require.Equal(t, &events.Automatic{Purpose: events.AutomaticWaiting, WaitingMessageID: wm.String()}, r.cmd.Automatic)
	}
}

func TestSmartCloseAnswersAndTimeouts(t *testing.T) {
	e := start(t)
	e.config(t, events.TypeAutomation, "automation", e.tenant.String(), events.Automation{TenantID: e.tenant.String(),
		SmartCloseFirstWaitMinutes: 0.005, SmartCloseTimeoutMinutes: 0.01})
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.tenant_settings`).Scan(&n)
		return n == 1
	}, "the settings did not arrive")
	asked := time.Now().UTC()

	// Asked at once, no answer: closed after the timeout (0.6 s).
	silent := newConv("closing", 7)
	silent.ClosingAskedAt = &asked
	e.changed(t, "complete", silent)
	// Asked at once, the customer says no: the answer goes at once.
	no := newConv("closing", 7)
	no.ClosingAskedAt = &asked
	e.changed(t, "complete", no)
	no.Version = 8
	e.message(t, no, "Non merci", false)
	// An out-of-office reply is no answer.
	away := newConv("closing", 7)
	away.ClosingAskedAt = &asked
	e.changed(t, "complete", away)
	away.Version = 8
	e.message(t, away, "Je suis absent jusqu'au 4", true)
	// Waiting first (0.3 s): asks, then the inbox says it asked.
	waiting := newConv("closing", 7)
	e.changed(t, "complete", waiting)

	testkit.Eventually(t, 10*time.Second, func() bool {
		return len(e.cmds.of(silent.ID)) == 1 && len(e.cmds.of(no.ID)) == 1 && len(e.cmds.of(away.ID)) == 1 && len(e.cmds.of(waiting.ID)) == 1
	}, "smart close sent not what it should: %+v", e.cmds.all())
	require.Equal(t, events.CommandSmartCloseTimeout, e.cmds.of(silent.ID)[0].cmd.Kind)
	require.Equal(t, events.CommandSmartCloseAnswer, e.cmds.of(no.ID)[0].cmd.Kind)
	require.Equal(t, events.AnswerNo, e.cmds.of(no.ID)[0].cmd.Answer)
	require.Equal(t, events.CommandSmartCloseTimeout, e.cmds.of(away.ID)[0].cmd.Kind)
	require.Equal(t, events.CommandSmartCloseAsk, e.cmds.of(waiting.ID)[0].cmd.Kind)

	now := time.Now().UTC()
	waiting.Version, waiting.ClosingAskedAt = 8, &now
	e.changed(t, "smart_close_ask", waiting)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(waiting.ID)) == 2 }, "no timeout after the question")
	require.Equal(t, events.CommandSmartCloseTimeout, e.cmds.of(waiting.ID)[1].cmd.Kind)
	for _, r := range e.cmds.all() {
		require.Equal(t, 1, e.cmds.seen[r.id], "command %s sent twice", r.id)
	}
}

func TestInactivityOncePerPeriod(t *testing.T) {
	e := start(t)
	queue := uuid.New()
	e.config(t, events.TypeQueue, "queue", queue.String(), events.Queue{ID: queue.String(), TenantID: e.tenant.String(), Name: "Q",
		Automation: &events.QueueAutomation{InactivityMinutes: 0.005}}) // 0.3 s
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.queue_settings`).Scan(&n)
		return n == 1
	}, "the settings did not arrive")
	c := newConv("assigned", 3)
	c.QueueID = &queue
	e.changed(t, "assign", c)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(c.ID)) == 1 }, "no inactivity alert")
	require.Equal(t, events.Expectation{State: "assigned", Version: 3}, e.cmds.of(c.ID)[0].cmd.Expect)
	// The inbox applies it: its own event is no activity, so no second
	// alert comes for the same period.
	c.Version = 4
	e.changed(t, "inactive", c)
	// Activity: a new period, a new alert.
	c.Version = 5
	e.message(t, c, "any news?", false)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(c.ID)) == 2 }, "no alert for the second period")
	require.Equal(t, events.Expectation{State: "assigned", Version: 5}, e.cmds.of(c.ID)[1].cmd.Expect)
	testkit.Eventually(t, 10*time.Second, func() bool { return time.Now().After(e.cmds.of(c.ID)[1].at.Add(time.Second)) }, "time stands still")
	require.Len(t, e.cmds.of(c.ID), 2, "an inactivity alert came twice for one period")
}

func TestAcknowledgementWhenAConversationStarts(t *testing.T) {
	e := start(t)
	before := newConv("new", 1)
	e.changed(t, "created", before) // no acknowledgement configured yet
	// The settings travel on another topic: publish them only once the
	// scheduler took the conversation in, or they could overtake it.
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.conversations WHERE id = $1`, before.ID).Scan(&n)
		return n == 1
	}, "the scheduler did not take the first conversation in")
	e.config(t, events.TypeAutomation, "automation", e.tenant.String(), events.Automation{TenantID: e.tenant.String(), Acknowledgement: true})
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.tenant_settings`).Scan(&n)
		return n == 1
	}, "the settings did not arrive")
	after := newConv("new", 1)
	e.changed(t, "created", after)
	chat := newConv("new", 1)
	chat.Channel = events.ChannelChat // automatic messages are off on chat
	e.changed(t, "created", chat)
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.cmds.of(after.ID)) == 1 }, "no acknowledgement")
	got := e.cmds.of(after.ID)[0]
	require.Equal(t, events.CommandSendAutomatic, got.cmd.Kind)
	require.Equal(t, events.AutomaticAcknowledgement, got.cmd.Automatic.Purpose)
	require.Equal(t, events.Expectation{State: "new", StateVersion: 1}, got.cmd.Expect)
	testkit.Eventually(t, 10*time.Second, func() bool {
		var n int
		_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FROM scheduler.conversations WHERE id = ANY($1)`, []uuid.UUID{before.ID, chat.ID}).Scan(&n)
		return n == 2
	}, "the scheduler did not take the events in")
	require.Empty(t, e.pendingDue(t, before.ID))
	require.Empty(t, e.pendingDue(t, chat.ID))
	require.Empty(t, e.cmds.of(before.ID), "a conversation that started before the acknowledgement existed got one")
	require.Empty(t, e.cmds.of(chat.ID), "an acknowledgement went out on a channel where automatic messages are off")
}
