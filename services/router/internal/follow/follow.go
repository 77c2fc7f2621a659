// Package follow is the router at work: it folds the inbox's events
// (sb.conversations.v1) and the configuration (sb.config.v1: users,
// queues, presence) into the router's view and Redis state, and whenever
// something may let a conversation go to an agent (a conversation waits,
// an agent comes online or has room again) it picks and sends the offer
// (sb.inbox.commands.v1) at once. No sweep is needed for that; the loops
// here only notice what no event tells: heartbeats that stopped, decisions
// whose command never arrived, agents gone for longer than their queue
// keeps their conversations.
package follow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/router/internal/state"
	"github.com/switchboard-oss/switchboard/services/router/internal/view"
)

// Consumer groups.
const (
	// ConversationsGroup reads sb.conversations.v1 for the router; its
	// partitions, and so the conversations, are shared among replicas.
	ConversationsGroup = "switchboard-router"
	// ConfigGroup reads sb.config.v1 for the router.
	ConfigGroup = "switchboard-router-config"
)

// EventSource is the CloudEvents source of the router's commands.
const EventSource = "switchboard/router"

// heldStates are the states in which a conversation counts against its
// assignees' capacity (as the inbox counts them).
var heldStates = []string{"offered", "assigned", "answered", "closing"}

// commandSpace makes the ids of commands the router may send more than
// once for the same reason (withdrawals, requeues) the same, so that the
// inbox applies them once.
var commandSpace = uuid.MustParse("5d0f6a3c-8d1e-4f5e-9c3e-2b8f0e7a6c11")

// bypassAhead is how far ahead of the queue a conversation transferred
// with "bypass the queue" goes: about 30 years of waiting.
const bypassAhead = int64(1e12)

// maxDrain bounds the offers one drain sends before it lets others in;
// drainBatch is how many go out in one publish.
const (
	maxDrain   = 1000
	drainBatch = 64
)

// Router follows events and routes.
type Router struct {
	view     *view.Store
	state    *state.State
	presence *redis.Presence
	producer *bus.Producer
	clock    retry.Clock
	log      *slog.Logger

	offers      metric.Int64Counter
	withdrawals metric.Int64Counter
	rebuilds    metric.Int64Counter
	latency     metric.Float64Histogram
}

// New builds the router.
func New(v *view.Store, st *state.State, presence *redis.Presence, producer *bus.Producer, clock retry.Clock, log *slog.Logger, m metric.Meter) (*Router, error) {
	r := &Router{view: v, state: st, presence: presence, producer: producer, clock: clock, log: log}
	var err error
	if r.offers, err = m.Int64Counter("switchboard.router.offers", metric.WithDescription("Offers sent to agents.")); err != nil {
		return nil, err
	}
	if r.withdrawals, err = m.Int64Counter("switchboard.router.commands", metric.WithDescription("Commands sent besides offers, by kind (withdraw_offer: the agent went away or silent; requeue: the agent was gone for the queue's limit).")); err != nil {
		return nil, err
	}
	if r.rebuilds, err = m.Int64Counter("switchboard.router.rebuilds", metric.WithDescription("Tenants whose Redis state was rebuilt from the view (Redis lost its data).")); err != nil {
		return nil, err
	}
	if r.latency, err = m.Float64Histogram("switchboard.router.offer.latency", metric.WithUnit("s"),
		metric.WithDescription("Time from the event that let a conversation go to an agent to its offer being sent."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...)); err != nil {
		return nil, err
	}
	return r, nil
}

// withState runs fn, rebuilding the tenant's Redis state from the view
// when it is missing.
func (r *Router) withState(ctx context.Context, tenant uuid.UUID, fn func() error) error {
	for range 3 {
		err := fn()
		if !errors.Is(err, state.ErrNoState) {
			return err
		}
		r.log.Warn("routing state missing in Redis; rebuilding it from the view", "tenant", tenant)
		if err := r.state.Rebuild(ctx, tenant, func(ctx context.Context) ([]state.Agent, []state.Conversation, error) {
			return r.load(ctx, tenant)
		}); err != nil {
			return err
		}
		r.rebuilds.Add(ctx, 1)
	}
	return fmt.Errorf("tenant %s: the routing state went missing three times in a row", tenant)
}

// load reads a tenant's view as state.
func (r *Router) load(ctx context.Context, tenant uuid.UUID) ([]state.Agent, []state.Conversation, error) {
	agents, err := r.view.Agents(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	queues, err := r.view.Queues(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	convs, err := r.view.Conversations(ctx, tenant)
	if err != nil {
		return nil, nil, err
	}
	sa := make([]state.Agent, len(agents))
	for i, a := range agents {
		sa[i] = stateAgent(a)
	}
	sc := make([]state.Conversation, 0, len(convs))
	for _, c := range convs {
		q := view.Queue{Routing: events.DefaultQueueRouting()}
		if c.QueueID != nil {
			if qq, ok := queues[*c.QueueID]; ok {
				q = qq
			}
		}
		sc = append(sc, stateConversation(c, q))
	}
	return sa, sc, nil
}

func stateAgent(a view.Agent) state.Agent {
	return state.Agent{ID: a.ID, Routable: a.Routable(), Capacity: state.Milli(float64(a.Capacity)), Queues: a.QueueIDs,
		Skills: a.SkillIDs, Languages: a.Languages}
}

// stateConversation is what the state needs of c in queue q.
func stateConversation(c view.Conversation, q view.Queue) state.Conversation {
	sc := state.Conversation{ID: c.ID, StateVersion: c.StateVersion, Version: c.Version, Skill: c.RequiredSkillID,
		Language: c.RequiredLanguage, Weight: state.Milli(q.Routing.Weight(c.Channel)), Excluded: c.Excluded}
	if slices.Contains(heldStates, c.State) {
		sc.Holders = c.Assignees
	}
	if c.State == "new" && c.QueueID != nil && q.Push() {
		sc.WaitQueue = *c.QueueID
		sc.Score = Score(c.StateSince, c.Priority, c.Bypass, time.Duration(q.Routing.AgingSeconds)*time.Second)
	}
	return sc
}

// Score orders waiting conversations, lowest first: by effective priority
// (priority plus one level per aging period waited), then oldest first.
// Effective priority at time t is priority + (t - since)/aging; comparing
// two conversations, t cancels out, so since - priority*aging orders them
// for good: a low-priority conversation overtakes a newer high-priority
// one once it has waited aging per level of difference, and none starves.
// A conversation transferred bypassing the queue goes ahead of all.
func Score(since time.Time, priority int, bypass bool, aging time.Duration) int64 {
	s := since.UnixMilli() - int64(priority)*aging.Milliseconds()
	if bypass {
		s -= bypassAhead
	}
	return s
}

// snapshot is what the router reads of a conversation in a changed event
// (the inbox's representation).
type snapshot struct {
	ID               uuid.UUID   `json:"id"`
	Channel          string      `json:"channel"`
	QueueID          *uuid.UUID  `json:"queue_id"`
	State            string      `json:"state"`
	Version          int64       `json:"version"`
	StateVersion     int64       `json:"state_version"`
	StateSince       time.Time   `json:"state_since"`
	Assignees        []uuid.UUID `json:"assignee_ids"`
	RequiredSkillID  *uuid.UUID  `json:"required_skill_id"`
	RequiredLanguage string      `json:"required_language"`
	Priority         int         `json:"priority"`
}

// actionData is what the router reads of an action's data.
type actionData struct {
	UserID      string `json:"user_id"`
	BypassQueue bool   `json:"bypass_queue"`
}

// HandleConversations folds a batch of conversation events into the view
// (one round trip) and the state, then drains once each queue they let
// something go in.
func (r *Router) HandleConversations(ctx context.Context, msgs []bus.Message) error {
	changes := make([]view.Change, 0, len(msgs))
	at := map[uuid.UUID]time.Time{} // conversation: its earliest event's time
	for _, m := range msgs {
		if m.Event.Type != events.TypeConversationChanged {
			continue
		}
		ch, err := decodeChange(m)
		if err != nil {
			return err
		}
		changes = append(changes, ch)
		if t, ok := at[ch.ID]; !ok || m.Event.Time.Before(t) {
			at[ch.ID] = m.Event.Time
		}
	}
	if len(changes) == 0 {
		return nil
	}
	convs, err := r.view.ApplyAll(ctx, changes)
	if err != nil || len(convs) == 0 {
		return err
	}
	var qids []uuid.UUID
	for _, c := range convs {
		if c.QueueID != nil && !slices.Contains(qids, *c.QueueID) {
			qids = append(qids, *c.QueueID)
		}
	}
	queues, err := r.view.QueuesOf(ctx, qids)
	if err != nil {
		return err
	}
	type target struct{ tenant, queue uuid.UUID }
	drains := map[target]time.Time{}
	var order []target
	want := func(tenant, queue uuid.UUID, t time.Time) {
		k := target{tenant, queue}
		if old, ok := drains[k]; !ok {
			order = append(order, k)
			drains[k] = t
		} else if t.Before(old) {
			drains[k] = t
		}
	}
	for _, c := range convs {
		q := view.Queue{Routing: events.DefaultQueueRouting()}
		if c.QueueID != nil {
			if qq, ok := queues[*c.QueueID]; ok {
				q = qq
			}
		}
		sc := stateConversation(c, q)
		var freed []uuid.UUID
		if err := r.withState(ctx, c.TenantID, func() (err error) {
			freed, err = r.state.SyncConversation(ctx, c.TenantID, sc)
			return err
		}); err != nil {
			return err
		}
		if sc.WaitQueue != uuid.Nil {
			want(c.TenantID, sc.WaitQueue, at[c.ID])
		}
		for _, id := range freed {
			a, ok, err := r.view.Agent(ctx, id)
			if err != nil {
				return err
			}
			if ok {
				for _, q := range a.QueueIDs {
					want(c.TenantID, q, at[c.ID])
				}
			}
		}
	}
	for _, k := range order {
		if err := r.drain(ctx, k.tenant, k.queue, drains[k]); err != nil {
			return err
		}
	}
	return nil
}

// decodeChange reads a conversation-changed event.
func decodeChange(m bus.Message) (view.Change, error) {
	tenant, err := uuid.Parse(m.Event.Tenant)
	if err != nil {
		return view.Change{}, bus.Permanent(fmt.Errorf("event %s: ce_tenant %q is not a tenant id", m.Event.ID, m.Event.Tenant))
	}
	var ev events.ConversationChanged
	if err := m.Event.Decode(&ev); err != nil {
		return view.Change{}, bus.Permanent(err)
	}
	var s snapshot
	if err := json.Unmarshal(ev.Conversation, &s); err != nil {
		return view.Change{}, bus.Permanent(fmt.Errorf("event %s: conversation: %w", m.Event.ID, err))
	}
	if s.ID == uuid.Nil || s.State == "" || s.Version <= 0 {
		return view.Change{}, bus.Permanent(fmt.Errorf("event %s: the conversation has no id, state or version", m.Event.ID))
	}
	var data actionData
	if len(ev.Data) > 0 {
		_ = json.Unmarshal(ev.Data, &data) // only some actions carry these fields
	}
	ch := view.Change{Conversation: view.Conversation{ID: s.ID, TenantID: tenant, Key: m.Key, Channel: s.Channel, QueueID: s.QueueID,
		State: s.State, Version: s.Version, StateVersion: s.StateVersion, StateSince: s.StateSince, Assignees: s.Assignees,
		RequiredSkillID: s.RequiredSkillID, RequiredLanguage: s.RequiredLanguage, Priority: s.Priority}, KeepBypass: true}
	switch ev.Action {
	case "offer_expired", "offer_rejected":
		ch.Exclude, _ = uuid.Parse(data.UserID)
	case "transfer":
		ch.KeepBypass, ch.Bypass = false, data.BypassQueue
	}
	return ch, nil
}

// HandleConfig folds users, queues and presence into the view and state.
func (r *Router) HandleConfig(ctx context.Context, msgs []bus.Message) error {
	for _, m := range msgs {
		ctx := bus.HandlingContext(ctx, msgs, m)
		var err error
		switch m.Event.Type {
		case events.TypeUser:
			err = r.user(ctx, m)
		case events.TypeQueue:
			err = r.queue(ctx, m)
		case events.TypePresence:
			err = r.presenceChanged(ctx, m)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) user(ctx context.Context, m bus.Message) error {
	var u events.User
	if err := m.Event.Decode(&u); err != nil {
		return bus.Permanent(err)
	}
	a, err := r.view.PutAgent(ctx, u)
	if err != nil {
		return bus.Permanent(fmt.Errorf("event %s: %w", m.Event.ID, err))
	}
	return r.agentChanged(ctx, a, m.Event.Time)
}

func (r *Router) presenceChanged(ctx context.Context, m bus.Message) error {
	var p events.Presence
	if err := m.Event.Decode(&p); err != nil {
		return bus.Permanent(err)
	}
	tenant, err1 := uuid.Parse(p.TenantID)
	user, err2 := uuid.Parse(p.UserID)
	if err := errors.Join(err1, err2); err != nil {
		return bus.Permanent(fmt.Errorf("event %s: %w", m.Event.ID, err))
	}
	a, err := r.view.SetPresence(ctx, tenant, user, p.Status, p.Status != "offline", r.clock.Now())
	if err != nil {
		return err
	}
	return r.agentChanged(ctx, a, m.Event.Time)
}

// agentChanged stores an agent in the state; one who can take more gets
// what waits for them, one who cannot take offers any more loses theirs.
func (r *Router) agentChanged(ctx context.Context, a view.Agent, at time.Time) error {
	var available bool
	if err := r.withState(ctx, a.TenantID, func() (err error) {
		available, err = r.state.SyncAgent(ctx, a.TenantID, stateAgent(a))
		return err
	}); err != nil {
		return err
	}
	if !a.Routable() {
		return r.withdraw(ctx, a.TenantID, a.ID)
	}
	if !available {
		return nil
	}
	for _, q := range a.QueueIDs {
		if err := r.drain(ctx, a.TenantID, q, at); err != nil {
			return err
		}
	}
	return nil
}

func (r *Router) queue(ctx context.Context, m bus.Message) error {
	var qe events.Queue
	if err := m.Event.Decode(&qe); err != nil {
		return bus.Permanent(err)
	}
	q, err := r.view.PutQueue(ctx, qe)
	if err != nil {
		return bus.Permanent(fmt.Errorf("event %s: %w", m.Event.ID, err))
	}
	// The mode, weights or aging may have changed: the queue's
	// conversations are stored again.
	convs, err := r.view.Conversations(ctx, q.TenantID)
	if err != nil {
		return err
	}
	for _, c := range convs {
		if c.QueueID == nil || *c.QueueID != q.ID {
			continue
		}
		var freed []uuid.UUID
		if err := r.withState(ctx, q.TenantID, func() (err error) {
			freed, err = r.state.SyncConversation(ctx, q.TenantID, stateConversation(c, q))
			return err
		}); err != nil {
			return err
		}
		for _, a := range freed {
			if err := r.drainAgent(ctx, q.TenantID, a, m.Event.Time); err != nil {
				return err
			}
		}
	}
	if q.Push() {
		return r.drain(ctx, q.TenantID, q.ID, m.Event.Time)
	}
	return nil
}

// drainAgent offers what waits in agent's queues.
func (r *Router) drainAgent(ctx context.Context, tenant, agent uuid.UUID, at time.Time) error {
	a, ok, err := r.view.Agent(ctx, agent)
	if err != nil || !ok {
		return err
	}
	for _, q := range a.QueueIDs {
		if err := r.drain(ctx, tenant, q, at); err != nil {
			return err
		}
	}
	return nil
}

// drain offers the waiting conversations of queue to available agents
// until one side runs out. at is when the event that called it happened.
// Decisions are sent in batches: one publish for up to drainBatch offers.
func (r *Router) drain(ctx context.Context, tenant, queue uuid.UUID, at time.Time) error {
	q, err := r.view.Queue(ctx, tenant, queue)
	if err != nil {
		return err
	}
	if !q.Push() {
		return nil
	}
	for sent := 0; sent < maxDrain; {
		var batch []*state.Decision
		for len(batch) < drainBatch {
			var d *state.Decision
			if err := r.withState(ctx, tenant, func() (err error) {
				d, err = r.state.Pick(ctx, tenant, queue)
				return err
			}); err != nil {
				return err
			}
			if d == nil {
				break
			}
			batch = append(batch, d)
		}
		if len(batch) == 0 {
			return nil
		}
		// A batch not sent stays pending and is taken back after its
		// grace: nothing is lost.
		if err := r.offer(ctx, q, batch, at); err != nil {
			return err
		}
		sent += len(batch)
		if len(batch) < drainBatch {
			return nil
		}
	}
	return nil
}

// offer sends the commands of decisions ds.
func (r *Router) offer(ctx context.Context, q view.Queue, ds []*state.Decision, at time.Time) error {
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.Conversation
	}
	keys, err := r.view.Keys(ctx, ids)
	if err != nil {
		return err
	}
	now := r.clock.Now()
	cmds := make([]command, 0, len(ds))
	for _, d := range ds {
		key, ok := keys[d.Conversation]
		if !ok {
			return fmt.Errorf("offer conversation %s: not in the view", d.Conversation)
		}
		cmds = append(cmds, command{id: uuid.NewString(), key: key, cmd: events.InboxCommand{
			TenantID: d.Tenant.String(), ConversationID: d.Conversation.String(), Kind: events.CommandOffer,
			Expect: events.Expectation{State: "new", StateVersion: d.StateVersion},
			Offer:  &events.Offer{UserID: d.Agent.String(), ExpiresAt: now.Add(time.Duration(q.Routing.OfferSeconds) * time.Second), Fence: d.Fence}}})
	}
	if err := r.send(ctx, cmds...); err != nil {
		return err
	}
	r.offers.Add(ctx, int64(len(ds)))
	if !at.IsZero() {
		r.latency.Record(ctx, r.clock.Now().Sub(at).Seconds())
	}
	return nil
}

// command is a command to send, with its id and key.
type command struct {
	id  string
	key []byte
	cmd events.InboxCommand
}

func (r *Router) send(ctx context.Context, cmds ...command) error {
	msgs := make([]kafka.Message, 0, len(cmds))
	now := r.clock.Now()
	for _, c := range cmds {
		if err := c.cmd.Validate(); err != nil {
			return fmt.Errorf("command for conversation %s: %w", c.cmd.ConversationID, err)
		}
		ev, err := events.NewWithID(c.id, events.TypeInboxCommand, EventSource, c.cmd.TenantID, now, c.cmd)
		if err != nil {
			return err
		}
		ev.Subject = c.cmd.ConversationID
		msgs = append(msgs, ev.Message(ctx, events.TopicCommands, c.key))
	}
	return r.producer.PublishRecords(ctx, msgs...)
}

// withdraw takes back the offers pending for agent (they went away,
// offline or silent, or were disabled); each goes to someone else.
func (r *Router) withdraw(ctx context.Context, tenant, agent uuid.UUID) error {
	offered, err := r.view.Held(ctx, tenant, agent, []string{"offered"})
	if err != nil {
		return err
	}
	for _, c := range offered {
		cmd := events.InboxCommand{TenantID: tenant.String(), ConversationID: c.ID.String(), Kind: events.CommandWithdrawOffer,
			Expect: events.Expectation{State: "offered", StateVersion: c.StateVersion}}
		id := uuid.NewSHA1(commandSpace, fmt.Appendf(nil, "withdraw|%s|%d", c.ID, c.StateVersion)).String()
		if err := r.send(ctx, command{id: id, key: c.Key, cmd: cmd}); err != nil {
			return err
		}
		r.withdrawals.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", events.CommandWithdrawOffer)))
	}
	return nil
}
