// Package state keeps the router's working state in Redis: which agents
// can take more, in which order; which conversations wait in each queue,
// in which order; who holds what, for how much of their capacity; the
// decisions awaiting confirmation. Each change is one Lua script (see
// scripts.go), so that picking a conversation and an agent and reserving
// the agent is atomic whatever the number of router replicas.
//
// Redis may lose everything at any time: every script then refuses to
// run (the tenant's ready key is gone), and Rebuild writes the tenant's
// state again from the router's PostgreSQL view before anyone goes on.
package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// ErrNoState means the tenant's state is missing (Redis lost its data, or
// it was never built): rebuild it, then try again.
var ErrNoState = errors.New("the tenant's routing state is missing")

// Limits of one pick: how many waiting conversations and idle agents it
// looks at. A conversation nobody available can take (a skill or language
// no one online has) is passed over; beyond these many, the next event
// tries again.
const (
	pickConversations = 50
	pickAgents        = 500
)

// State is the Redis state.
type State struct {
	rdb      *goredis.Client
	prefix   string
	presence *redis.Presence
	clock    retry.Clock
	// grace is how long a decision may wait for its confirming event.
	grace time.Duration

	syncAgent, syncConversation, pick, undo *goredis.Script
}

// New returns the state under prefix; presence is where the inbox keeps
// agents' heartbeats; grace is how long a decision may wait for the event
// that confirms it before it is taken back.
func New(rdb *goredis.Client, prefix string, presence *redis.Presence, clock retry.Clock, grace time.Duration) *State {
	return &State{rdb: rdb, prefix: prefix, presence: presence, clock: clock, grace: grace,
		syncAgent:        goredis.NewScript(syncAgentScript),
		syncConversation: goredis.NewScript(syncConversationScript),
		pick:             goredis.NewScript(pickScript),
		undo:             goredis.NewScript(undoScript),
	}
}

func (s *State) tenantKey(tenant uuid.UUID) string { return s.prefix + "t:" + tenant.String() + ":" }

// cutoff is the oldest heartbeat that still counts.
func (s *State) cutoff() string {
	return strconv.FormatInt(s.clock.Now().Add(-s.presence.Window()).UnixMilli(), 10)
}

func (s *State) presenceSet(tenant uuid.UUID) string {
	set, _ := s.presence.Keys(tenant.String())
	return set
}

func (s *State) run(ctx context.Context, script *goredis.Script, args ...any) (any, error) {
	v, err := script.Run(ctx, s.rdb, nil, args...).Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOSTATE") {
		return nil, ErrNoState
	}
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	return v, err
}

// Milli converts a capacity or weight to thousandths.
func Milli(f float64) int64 { return int64(f*1000 + 0.5) }

// Agent is what the state needs of an agent.
type Agent struct {
	ID uuid.UUID
	// Routable: enabled, online as they set it.
	Routable bool
	// Capacity in thousandths.
	Capacity  int64
	Queues    []uuid.UUID
	Skills    []uuid.UUID
	Languages []string
}

func joinIDs(ids []uuid.UUID) string {
	ss := make([]string, len(ids))
	for i, id := range ids {
		ss[i] = id.String()
	}
	return strings.Join(ss, ",")
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// SyncAgent stores an agent and reports whether they are available.
func (s *State) SyncAgent(ctx context.Context, tenant uuid.UUID, a Agent) (bool, error) {
	v, err := s.run(ctx, s.syncAgent, s.prefix, tenant.String(), a.ID.String(), flag(a.Routable), a.Capacity,
		joinIDs(a.Queues), joinIDs(a.Skills), strings.Join(a.Languages, ","), s.presenceSet(tenant), s.cutoff())
	if err != nil {
		return false, fmt.Errorf("store agent %s: %w", a.ID, err)
	}
	n, _ := v.(int64)
	return n == 1, nil
}

// Conversation is what the state needs of a conversation.
type Conversation struct {
	ID           uuid.UUID
	StateVersion int64
	Version      int64
	// WaitQueue is the push queue it waits in; uuid.Nil when it does not
	// wait (held, put aside, pull queue, no queue).
	WaitQueue uuid.UUID
	// Score orders waiting conversations, lowest first.
	Score    int64
	Skill    *uuid.UUID
	Language string
	// Weight in thousandths.
	Weight   int64
	Holders  []uuid.UUID
	Excluded []uuid.UUID
}

// SyncConversation makes the state of a conversation what its latest
// event says, and returns the agents it freed who are now available.
func (s *State) SyncConversation(ctx context.Context, tenant uuid.UUID, c Conversation) ([]uuid.UUID, error) {
	wq, skill := "", ""
	if c.WaitQueue != uuid.Nil {
		wq = c.WaitQueue.String()
	}
	if c.Skill != nil {
		skill = c.Skill.String()
	}
	v, err := s.run(ctx, s.syncConversation, s.prefix, tenant.String(), c.ID.String(), c.StateVersion, c.Version, wq, c.Score,
		skill, c.Language, c.Weight, joinIDs(c.Holders), joinIDs(c.Excluded), s.presenceSet(tenant), s.cutoff())
	if err != nil {
		return nil, fmt.Errorf("store conversation %s: %w", c.ID, err)
	}
	list, _ := v.([]any)
	freed := make([]uuid.UUID, 0, len(list))
	for _, x := range list {
		if id, err := uuid.Parse(fmt.Sprint(x)); err == nil {
			freed = append(freed, id)
		}
	}
	return freed, nil
}

// Decision is a conversation offered to an agent.
type Decision struct {
	Tenant       uuid.UUID
	Conversation uuid.UUID
	Agent        uuid.UUID
	Fence        int64
	StateVersion int64
}

// Pick takes the next conversation of queue and the agent to offer it to,
// and reserves the agent; nil when nobody waiting can be taken by anyone
// available.
func (s *State) Pick(ctx context.Context, tenant, queue uuid.UUID) (*Decision, error) {
	now := s.clock.Now()
	v, err := s.run(ctx, s.pick, s.prefix, tenant.String(), queue.String(), now.UnixMilli(), s.presenceSet(tenant), s.cutoff(),
		pickConversations, pickAgents, now.Add(s.grace).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("pick in queue %s: %w", queue, err)
	}
	list, ok := v.([]any)
	if !ok || len(list) != 4 {
		return nil, nil
	}
	d := &Decision{Tenant: tenant}
	var errs []error
	var e1, e2, e3, e4 error
	d.Conversation, e1 = uuid.Parse(fmt.Sprint(list[0]))
	d.Agent, e2 = uuid.Parse(fmt.Sprint(list[1]))
	d.Fence, e3 = strconv.ParseInt(fmt.Sprint(list[2]), 10, 64)
	d.StateVersion, e4 = strconv.ParseInt(fmt.Sprint(list[3]), 10, 64)
	if errs = append(errs, e1, e2, e3, e4); errors.Join(errs...) != nil {
		return nil, fmt.Errorf("pick in queue %s: unreadable decision %v: %w", queue, list, errors.Join(errs...))
	}
	return d, nil
}

// Overdue is a decision taken back, and the queue its conversation waits
// in again.
type Overdue struct {
	Tenant uuid.UUID
	Queue  uuid.UUID
}

// Reap takes back the decisions whose confirmation is overdue, at most
// limit, and returns the queues to look at again.
func (s *State) Reap(ctx context.Context, limit int64) ([]Overdue, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.prefix+"pending", &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.clock.Now().UnixMilli(), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read overdue decisions: %w", err)
	}
	var out []Overdue
	for _, m := range members {
		parts := strings.SplitN(m, "|", 3)
		tenant, err := uuid.Parse(parts[0])
		if err != nil || len(parts) != 3 {
			s.rdb.ZRem(ctx, s.prefix+"pending", m)
			continue
		}
		v, err := s.run(ctx, s.undo, s.prefix, tenant.String(), m, s.presenceSet(tenant), s.cutoff())
		if errors.Is(err, ErrNoState) {
			// The rebuild recomputes everything; this decision went with
			// the rest.
			s.rdb.ZRem(ctx, s.prefix+"pending", m)
			continue
		}
		if err != nil {
			return out, fmt.Errorf("take back decision %s: %w", m, err)
		}
		if q, err := uuid.Parse(fmt.Sprint(v)); err == nil && v != nil {
			out = append(out, Overdue{Tenant: tenant, Queue: q})
		}
	}
	return out, nil
}

// Rebuild writes tenant's state from the view, unless it is there. One
// caller rebuilds a tenant at a time; the others wait for it to finish.
// load reads the view: it is called after the rebuild began, so that
// every change stored in the view before is in the state, and every
// change after finds the state ready (or missing, and rebuilds again).
func (s *State) Rebuild(ctx context.Context, tenant uuid.UUID, load func(context.Context) ([]Agent, []Conversation, error)) error {
	T := s.tenantKey(tenant)
	for {
		n, err := s.rdb.Exists(ctx, T+"ready").Result()
		if err != nil {
			return fmt.Errorf("rebuild tenant %s: %w", tenant, err)
		}
		if n == 1 {
			return nil
		}
		got, err := s.rdb.SetNX(ctx, T+"rebuilding", "1", time.Minute).Result()
		if err != nil {
			return fmt.Errorf("rebuild tenant %s: %w", tenant, err)
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.clock.After(20 * time.Millisecond):
		}
	}
	defer s.rdb.Del(context.WithoutCancel(ctx), T+"rebuilding")
	agents, convs, err := load(ctx)
	if err != nil {
		return fmt.Errorf("rebuild tenant %s: %w", tenant, err)
	}
	// Whatever is left of the tenant (Redis lost only part of its data)
	// goes: the view is the whole truth.
	var stale []string
	iter := s.rdb.Scan(ctx, 0, T+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); k != T+"rebuilding" {
			stale = append(stale, k)
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("rebuild tenant %s: %w", tenant, err)
	}
	load2 := map[uuid.UUID]int64{}
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := 0; i < len(stale); i += 500 {
			p.Del(ctx, stale[i:min(i+500, len(stale))]...)
		}
		for _, c := range convs {
			k := T + "c:" + c.ID.String()
			wq, skill := "", ""
			if c.WaitQueue != uuid.Nil {
				wq = c.WaitQueue.String()
				p.ZAdd(ctx, T+"q:"+wq+":wait", goredis.Z{Score: float64(c.Score), Member: c.ID.String()})
			}
			if c.Skill != nil {
				skill = c.Skill.String()
			}
			p.HSet(ctx, k, "sv", c.StateVersion, "version", c.Version, "wq", wq, "score", c.Score, "skill", skill, "lang", c.Language,
				"weight", c.Weight, "holders", ","+joinIDs(c.Holders)+",")
			for _, a := range c.Holders {
				p.HSet(ctx, T+"a:"+a.String()+":held", c.ID.String(), c.Weight)
				load2[a] += c.Weight
			}
			for _, a := range c.Excluded {
				p.SAdd(ctx, k+":x", a.String())
			}
		}
		for a, l := range load2 {
			p.HSet(ctx, T+"a:"+a.String(), "load", l)
		}
		p.Set(ctx, T+"ready", "1", 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild tenant %s: %w", tenant, err)
	}
	for _, a := range agents {
		if _, err := s.SyncAgent(ctx, tenant, a); err != nil {
			return fmt.Errorf("rebuild tenant %s: %w", tenant, err)
		}
	}
	return nil
}
