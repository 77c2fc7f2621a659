// Package follow keeps the scheduler's timers in step with what happens:
// it folds the inbox's conversation events (sb.conversations.v1) into the
// scheduler's view of each conversation, and the automation settings
// (sb.config.v1) into its view of them, and after each change makes the
// timers of the conversations concerned exactly what the rules want.
//
// Events of one conversation arrive in order on one partition, but may
// arrive again (a rebalance, the outbox publishing twice): an event older
// than the view (by the conversation's version) changes nothing.
package follow

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/rules"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/store"
)

// Consumer groups.
const (
	// ConversationsGroup reads sb.conversations.v1 for the scheduler.
	ConversationsGroup = "switchboard-scheduler"
	// ConfigGroup reads sb.config.v1 for the scheduler.
	ConfigGroup = "switchboard-scheduler-config"
)

// Action names of the inbox's events the rules look at.
const (
	actionCreated  = "created"
	actionInactive = "inactive"
)

// revisitBatch is how many conversations a settings change revisits per
// transaction.
const revisitBatch = 500

// Follower applies events to views and timers.
type Follower struct {
	store *store.Store
	clock retry.Clock
	log   *slog.Logger
	// horizon: a timer set due within it wakes the fire loops at once.
	horizon time.Duration

	set       metric.Int64Counter
	cancelled metric.Int64Counter
}

// New builds a follower; horizon is the fire loop's longest sleep.
func New(s *store.Store, clock retry.Clock, log *slog.Logger, m metric.Meter, horizon time.Duration) (*Follower, error) {
	f := &Follower{store: s, clock: clock, log: log, horizon: horizon}
	var err error
	if f.set, err = m.Int64Counter("switchboard.scheduler.timers.set", metric.WithDescription("Timers created or moved.")); err != nil {
		return nil, err
	}
	if f.cancelled, err = m.Int64Counter("switchboard.scheduler.timers.cancelled", metric.WithDescription("Timers removed: their reason is gone, or their occurrence is over.")); err != nil {
		return nil, err
	}
	return f, nil
}

// snapshot is what the scheduler reads of a conversation in a changed
// event (the inbox's representation).
type snapshot struct {
	ID             uuid.UUID  `json:"id"`
	Channel        string     `json:"channel"`
	QueueID        *uuid.UUID `json:"queue_id"`
	State          string     `json:"state"`
	Version        int64      `json:"version"`
	StateVersion   int64      `json:"state_version"`
	StateSince     time.Time  `json:"state_since"`
	DeferredUntil  *time.Time `json:"deferred_until"`
	OfferExpiresAt *time.Time `json:"offer_expires_at"`
	ClosingAskedAt *time.Time `json:"closing_asked_at"`
}

// ref is what a message event says of its conversation.
type ref struct {
	ID           uuid.UUID  `json:"id"`
	State        string     `json:"state"`
	QueueID      *uuid.UUID `json:"queue_id"`
	Version      int64      `json:"version"`
	StateVersion int64      `json:"state_version"`
	StateSince   time.Time  `json:"state_since"`
}

// message is what the scheduler reads of a message.
type message struct {
	Direction string            `json:"direction"`
	Body      string            `json:"body"`
	Automatic bool              `json:"automatic"`
	Metadata  map[string]string `json:"metadata"`
}

// item is one decoded conversation event.
type item struct {
	conversation uuid.UUID
	tenant       uuid.UUID
	key          []byte
	at           time.Time
	// changed events
	action string
	snap   *snapshot
	// message events
	ref *ref
	msg *message
}

func decode(m bus.Message) (*item, error) {
	tenant, err := uuid.Parse(m.Event.Tenant)
	if err != nil {
		return nil, fmt.Errorf("event %s: ce_tenant %q is not a tenant id", m.Event.ID, m.Event.Tenant)
	}
	it := &item{tenant: tenant, key: m.Key, at: m.Event.Time}
	switch m.Event.Type {
	case events.TypeConversationChanged:
		var c events.ConversationChanged
		if err := m.Event.Decode(&c); err != nil {
			return nil, err
		}
		var s snapshot
		if err := json.Unmarshal(c.Conversation, &s); err != nil {
			return nil, fmt.Errorf("event %s: conversation: %w", m.Event.ID, err)
		}
		if s.ID == uuid.Nil || s.State == "" {
			return nil, fmt.Errorf("event %s: the conversation has no id or state", m.Event.ID)
		}
		it.conversation, it.action, it.snap = s.ID, c.Action, &s
	case events.TypeConversationMessage:
		var c events.ConversationMessage
		if err := m.Event.Decode(&c); err != nil {
			return nil, err
		}
		var r ref
		var msg message
		if err := json.Unmarshal(c.Conversation, &r); err != nil {
			return nil, fmt.Errorf("event %s: conversation: %w", m.Event.ID, err)
		}
		if err := json.Unmarshal(c.Message, &msg); err != nil {
			return nil, fmt.Errorf("event %s: message: %w", m.Event.ID, err)
		}
		if r.ID == uuid.Nil || r.State == "" {
			return nil, fmt.Errorf("event %s: the conversation has no id or state", m.Event.ID)
		}
		it.conversation, it.ref, it.msg = r.ID, &r, &msg
	default:
		return nil, nil // not about timers
	}
	return it, nil
}

// channelOfKey reads the channel from a conversation key
// (tenant/channel/account/thread).
func channelOfKey(key []byte) string {
	parts := strings.SplitN(string(key), "/", 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}

// fold applies one event to the view of its conversation (v nil when the
// scheduler never heard of it) and returns the view, or nil when the
// event is older than what the view knows.
func fold(v *rules.View, it *item) *rules.View {
	var version int64
	if it.snap != nil {
		version = it.snap.Version
	} else {
		version = it.ref.Version
	}
	if v != nil && version < v.Version {
		return nil
	}
	if v == nil {
		v = &rules.View{ID: it.conversation, TenantID: it.tenant, Key: it.key, Channel: channelOfKey(it.key)}
	}
	if len(it.key) > 0 {
		v.Key = it.key
	}
	prevState, prevStateVersion := v.State, v.StateVersion
	if s := it.snap; s != nil {
		if s.Channel != "" {
			v.Channel = s.Channel
		}
		v.QueueID, v.State, v.Version, v.StateVersion, v.StateSince = s.QueueID, s.State, s.Version, s.StateVersion, s.StateSince
		v.DeferredUntil, v.OfferExpiresAt, v.ClosingAskedAt = s.DeferredUntil, s.OfferExpiresAt, s.ClosingAskedAt
		if it.action == actionCreated {
			v.AckVersion = s.StateVersion
		}
		if it.action != actionInactive {
			v.ActivityVersion, v.ActivityAt = s.Version, it.at
		}
	} else {
		r := it.ref
		v.QueueID, v.State, v.Version, v.StateVersion, v.StateSince = r.QueueID, r.State, r.Version, r.StateVersion, r.StateSince
		if prevState != v.State || prevStateVersion != v.StateVersion {
			// Only changed events carry these; a message alone never
			// changes the state, but be safe.
			v.DeferredUntil, v.OfferExpiresAt, v.ClosingAskedAt = nil, nil, nil
		}
		v.ActivityVersion, v.ActivityAt = r.Version, it.at
		if it.msg.Direction == "inbound" && !it.msg.Automatic && r.State == rules.StateClosing {
			v.Answer, v.AnswerVersion, v.AnswerAt = rules.Answer(it.msg.Body, it.msg.Metadata), r.StateVersion, it.at
		}
	}
	if v.StateSince.IsZero() {
		v.StateSince = it.at
	}
	if v.ActivityAt.IsZero() {
		v.ActivityAt = it.at
	}
	if v.State != rules.StateClosing {
		v.Answer, v.AnswerVersion, v.AnswerAt = "", 0, time.Time{}
	}
	return v
}

// HandleConversations applies a batch of conversation events: one
// transaction locks the views concerned, folds the events into them in
// order, and reconciles their timers.
func (f *Follower) HandleConversations(ctx context.Context, msgs []bus.Message) error {
	items := make([]*item, 0, len(msgs))
	var ids []uuid.UUID
	for _, m := range msgs {
		it, err := decode(m)
		if err != nil {
			return bus.Permanent(err)
		}
		if it == nil {
			continue
		}
		items = append(items, it)
		if !slices.Contains(ids, it.conversation) {
			ids = append(ids, it.conversation)
		}
	}
	if len(items) == 0 {
		return nil
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	var tenants []uuid.UUID
	for _, it := range items {
		if !slices.Contains(tenants, it.tenant) {
			tenants = append(tenants, it.tenant)
		}
	}
	err := f.store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.LockTenants(ctx, tx, tenants, false); err != nil {
			return err
		}
		views, err := store.LockViews(ctx, tx, ids)
		if err != nil {
			return err
		}
		touched, created := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
		for _, it := range items {
			v := fold(views[it.conversation], it)
			if v == nil {
				continue
			}
			views[it.conversation] = v
			touched[it.conversation] = true
			if it.action == actionCreated {
				created[it.conversation] = true
			}
		}
		var changed []*rules.View
		for _, id := range ids {
			if touched[id] {
				changed = append(changed, views[id])
			}
		}
		return f.reconcile(ctx, tx, changed, created)
	})
	return classify(err)
}

// reconcile makes the timers of views what the rules want. created, when
// not nil, names the conversations that started in the events just
// folded: whether they get an acknowledgement is decided now, by the
// settings of the moment, and the views are saved.
func (f *Follower) reconcile(ctx context.Context, tx pgx.Tx, views []*rules.View, created map[uuid.UUID]bool) error {
	if len(views) == 0 {
		return nil
	}
	settings, err := store.LoadSettings(ctx, tx, views)
	if err != nil {
		return err
	}
	if created != nil {
		for _, v := range views {
			if created[v.ID] && !settings.For(v).Acknowledges(v.Channel) {
				v.AckVersion = 0
			}
		}
		if err := store.SaveViews(ctx, tx, views); err != nil {
			return err
		}
	}
	var desired []rules.Timer
	convs := make([]uuid.UUID, len(views))
	for i, v := range views {
		convs[i] = v.ID
		desired = append(desired, rules.Timers(*v, settings.For(v))...)
	}
	r, err := store.Reconcile(ctx, tx, convs, desired, f.clock.Now().Add(f.horizon))
	if err != nil {
		return err
	}
	f.set.Add(ctx, r.Set)
	f.cancelled.Add(ctx, r.Cancelled)
	return nil
}

// HandleConfig applies a batch of configuration events: waiting messages,
// tenants' settings, queues. A change revisits the open conversations it
// concerns at once ("editing takes effect at once"; "deleting cancels the
// sends already scheduled", [003]); the same settings announced again
// change nothing.
func (f *Follower) HandleConfig(ctx context.Context, msgs []bus.Message) error {
	for _, m := range msgs {
		if err := f.config(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (f *Follower) config(ctx context.Context, m bus.Message) error {
	var (
		tenant uuid.UUID
		queue  *uuid.UUID
		apply  func(tx pgx.Tx) (bool, error)
	)
	switch m.Event.Type {
	case events.TypeAutomation:
		var a events.Automation
		if err := m.Event.Decode(&a); err != nil {
			return bus.Permanent(err)
		}
		t, err := uuid.Parse(a.TenantID)
		if err != nil {
			return bus.Permanent(fmt.Errorf("event %s: tenant_id %q is not an id", m.Event.ID, a.TenantID))
		}
		tenant = t
		apply = func(tx pgx.Tx) (bool, error) { return store.PutTenantSettings(ctx, tx, t, a) }
	case events.TypeQueue:
		var q events.Queue
		if err := m.Event.Decode(&q); err != nil {
			return bus.Permanent(err)
		}
		t, err1 := uuid.Parse(q.TenantID)
		id, err2 := uuid.Parse(q.ID)
		if err1 != nil || err2 != nil {
			return bus.Permanent(fmt.Errorf("event %s: queue %q of tenant %q: not ids", m.Event.ID, q.ID, q.TenantID))
		}
		tenant, queue = t, &id
		apply = func(tx pgx.Tx) (bool, error) { return store.PutQueueSettings(ctx, tx, t, id, q.Automation, q.Deleted) }
	case events.TypeWaitingMessage:
		var w events.WaitingMessage
		if err := m.Event.Decode(&w); err != nil {
			return bus.Permanent(err)
		}
		t, err1 := uuid.Parse(w.TenantID)
		id, err2 := uuid.Parse(w.ID)
		if err1 != nil || err2 != nil {
			return bus.Permanent(fmt.Errorf("event %s: waiting message %q of tenant %q: not ids", m.Event.ID, w.ID, w.TenantID))
		}
		tenant = t
		apply = func(tx pgx.Tx) (bool, error) { return store.PutWaitingMessage(ctx, tx, t, id, w.Hours, w.Deleted) }
	default:
		return nil // the connectors' configuration
	}
	var changed bool
	if err := f.store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.LockTenants(ctx, tx, []uuid.UUID{tenant}, true); err != nil {
			return err
		}
		var err error
		changed, err = apply(tx)
		return err
	}); err != nil {
		return classify(err)
	}
	if !changed {
		return nil
	}
	n, err := f.Revisit(ctx, tenant, queue)
	if err != nil {
		return classify(err)
	}
	f.log.InfoContext(ctx, "automation settings changed; timers revisited", "type", m.Event.Type, "tenant", tenant, "conversations", n)
	return nil
}

// Revisit reconciles the timers of every open conversation of tenant (of
// queue, when set) with the settings as they are now, a batch per
// transaction. It returns how many it revisited.
func (f *Follower) Revisit(ctx context.Context, tenant uuid.UUID, queue *uuid.UUID) (int, error) {
	after, total := uuid.Nil, 0
	for {
		var n int
		err := f.store.InTx(ctx, func(tx pgx.Tx) error {
			views, err := store.OpenViews(ctx, tx, tenant, queue, after, revisitBatch)
			if err != nil {
				return err
			}
			n = len(views)
			if n == 0 {
				return nil
			}
			after = views[n-1].ID
			return f.reconcile(ctx, tx, views, nil)
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < revisitBatch {
			return total, nil
		}
	}
}

// classify marks a database outage as transient: it is not the
// message's fault.
func classify(err error) error {
	if err != nil && pg.IsTransient(err) {
		return bus.Transient(err)
	}
	return err
}
