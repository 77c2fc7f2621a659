package state_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/router/internal/state"
)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fixture is a tenant's state over the real Redis, with its presence.
type fixture struct {
	t        *testing.T
	ctx      context.Context
	rdb      *goredis.Client
	st       *state.State
	presence *redis.Presence
	clock    *clock
	prefix   string
	tenant   uuid.UUID
	// view is what Rebuild loads.
	agents []state.Agent
	convs  []state.Conversation
}

func newFixture(t *testing.T) *fixture {
	rdb, prefix := testkit.Redis(t)
	c := &clock{now: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	p := redis.NewPresence(rdb, prefix+"p:", 30*time.Second, c)
	f := &fixture{t: t, ctx: testkit.Context(t), rdb: rdb, presence: p, clock: c, prefix: prefix, tenant: uuid.New(),
		st: state.New(rdb, prefix+"r:", p, c, 30*time.Second)}
	f.rebuild()
	return f
}

func (f *fixture) rebuild() {
	f.t.Helper()
	require.NoError(f.t, f.st.Rebuild(f.ctx, f.tenant, func(context.Context) ([]state.Agent, []state.Conversation, error) {
		return f.agents, f.convs, nil
	}))
}

// agent adds an online, connected agent.
func (f *fixture) agent(capacity float64, queues []uuid.UUID, langs ...string) uuid.UUID {
	f.t.Helper()
	a := state.Agent{ID: uuid.New(), Routable: true, Capacity: state.Milli(capacity), Queues: queues, Languages: langs}
	_, err := f.presence.Beat(f.ctx, f.tenant.String(), a.ID.String())
	require.NoError(f.t, err)
	_, err = f.st.SyncAgent(f.ctx, f.tenant, a)
	require.NoError(f.t, err)
	f.agents = append(f.agents, a)
	return a.ID
}

// wait makes a conversation wait in queue.
func (f *fixture) wait(queue uuid.UUID, score int64, c state.Conversation) state.Conversation {
	f.t.Helper()
	if c.ID == uuid.Nil {
		c.ID = uuid.New()
	}
	if c.Weight == 0 {
		c.Weight = 1000
	}
	c.StateVersion++
	c.Version++
	c.WaitQueue, c.Score, c.Holders = queue, score, nil
	_, err := f.st.SyncConversation(f.ctx, f.tenant, c)
	require.NoError(f.t, err)
	return c
}

// held says, as the inbox's event would, that c is held by agent.
func (f *fixture) held(c state.Conversation, agent uuid.UUID) state.Conversation {
	f.t.Helper()
	c.Version++
	c.StateVersion++
	c.WaitQueue, c.Holders = uuid.Nil, []uuid.UUID{agent}
	_, err := f.st.SyncConversation(f.ctx, f.tenant, c)
	require.NoError(f.t, err)
	return c
}

// done says c is over; it returns the agents it freed.
func (f *fixture) done(c state.Conversation) []uuid.UUID {
	f.t.Helper()
	c.Version += 2
	c.StateVersion += 2
	c.WaitQueue, c.Holders = uuid.Nil, nil
	freed, err := f.st.SyncConversation(f.ctx, f.tenant, c)
	require.NoError(f.t, err)
	return freed
}

func (f *fixture) pick(queue uuid.UUID) *state.Decision {
	f.t.Helper()
	d, err := f.st.Pick(f.ctx, f.tenant, queue)
	require.NoError(f.t, err)
	return d
}

// TestFairness: 1,000 conversations through 20 agents of equal capacity
// in one queue, each offer accepted and the conversation finished at
// random later: assignment counts differ by at most one.
func TestFairness(t *testing.T) {
	f := newFixture(t)
	q := uuid.New()
	agents := make([]uuid.UUID, 20)
	for i := range agents {
		agents[i] = f.agent(3, []uuid.UUID{q})
	}
	convs := map[uuid.UUID]state.Conversation{}
	for i := range 1000 {
		c := f.wait(q, int64(i), state.Conversation{})
		convs[c.ID] = c
	}
	counts := map[uuid.UUID]int{}
	var open []state.Conversation
	for n := 0; n < 1000; {
		d := f.pick(q)
		if d == nil {
			// Everyone is full: the oldest open conversation ends.
			require.NotEmpty(t, open, "no pick and nothing open")
			f.done(open[0])
			open = open[1:]
			continue
		}
		counts[d.Agent]++
		n++
		f.clock.Advance(time.Millisecond)
		open = append(open, f.held(convs[d.Conversation], d.Agent))
		if n%7 == 0 { // now and then, two finish at once
			for range min(2, len(open)) {
				f.done(open[0])
				open = open[1:]
			}
		}
	}
	lo, hi := 1000, 0
	for _, a := range agents {
		lo, hi = min(lo, counts[a]), max(hi, counts[a])
	}
	t.Logf("assignments per agent: min %d, max %d", lo, hi)
	require.LessOrEqual(t, hi-lo, 1, "counts %v", counts)
}

// TestPickRespectsEligibility: language, skill, exclusion (unless nobody
// else can), capacity by weight, presence.
func TestPickRespectsEligibility(t *testing.T) {
	f := newFixture(t)
	q := uuid.New()
	skill := uuid.New()
	fr := f.agent(1, []uuid.UUID{q}, "fr")
	en := f.agent(1.5, []uuid.UUID{q}, "en")

	// A German conversation: nobody; it is passed over for the next.
	de := f.wait(q, 1, state.Conversation{Language: "de"})
	c := f.wait(q, 2, state.Conversation{Language: "en"})
	d := f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, c.ID, d.Conversation)
	require.Equal(t, en, d.Agent)
	require.Nil(t, f.pick(q), "the German one waits")
	_ = de

	// A skill nobody has: waits.
	f.wait(q, 3, state.Conversation{Skill: &skill})
	require.Nil(t, f.pick(q))

	// Excluded: fr missed it; en is full (1 of 1.5, weight 1); so fr gets
	// it again, nobody else can.
	x := f.wait(q, 0, state.Conversation{Excluded: []uuid.UUID{fr}})
	d = f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, x.ID, d.Conversation)
	require.Equal(t, fr, d.Agent, "the excluded agent when nobody else can")

	// Weights: en has 0.5 left: an email (0.5) fits, a chat (1) not.
	chat := f.wait(q, 4, state.Conversation{})
	require.Nil(t, f.pick(q), "no room for a chat")
	email := f.wait(q, 5, state.Conversation{Weight: 500})
	d = f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, email.ID, d.Conversation)
	require.Equal(t, en, d.Agent)

	// An agent whose heartbeats stopped is not offered anything.
	f.done(x)
	f.clock.Advance(31 * time.Second)
	require.Nil(t, f.pick(q), "fr has room, but is silent")
	_, err := f.presence.Beat(f.ctx, f.tenant.String(), fr.String())
	require.NoError(t, err)
	_, err = f.st.SyncAgent(f.ctx, f.tenant, f.agents[0])
	require.NoError(t, err)
	d = f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, chat.ID, d.Conversation)
	require.Equal(t, fr, d.Agent)
}

// TestExclusionPrefersOthers: an agent who missed a conversation is not
// offered it while someone else can take it.
func TestExclusionPrefersOthers(t *testing.T) {
	f := newFixture(t)
	q := uuid.New()
	a := f.agent(5, []uuid.UUID{q})
	f.clock.Advance(time.Millisecond)
	b := f.agent(5, []uuid.UUID{q})
	c := f.wait(q, 1, state.Conversation{Excluded: []uuid.UUID{a}})
	d := f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, c.ID, d.Conversation)
	require.Equal(t, b, d.Agent)
}

// TestUndoAndConfirm: a decision no event confirms is taken back after its
// grace; a confirmed one is not.
func TestUndoAndConfirm(t *testing.T) {
	f := newFixture(t)
	q := uuid.New()
	a := f.agent(1, []uuid.UUID{q})
	c1 := f.wait(q, 1, state.Conversation{})
	d := f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, a, d.Agent)
	require.Nil(t, f.pick(q), "a is full")

	f.clock.Advance(31 * time.Second)
	_, err := f.presence.Beat(f.ctx, f.tenant.String(), a.String())
	require.NoError(t, err)
	overdue, err := f.st.Reap(f.ctx, 100)
	require.NoError(t, err)
	require.Equal(t, []state.Overdue{{Tenant: f.tenant, Queue: q}}, overdue)
	d = f.pick(q)
	require.NotNil(t, d, "taken back: a has room and c1 waits again")
	require.Equal(t, c1.ID, d.Conversation)

	// Confirmed by the inbox's event: nothing to take back.
	f.held(c1, a)
	f.clock.Advance(31 * time.Second)
	overdue, err = f.st.Reap(f.ctx, 100)
	require.NoError(t, err)
	require.Empty(t, overdue)
}

// TestConcurrentPicksNeverOverfill: many pickers at once, as replicas
// would: no agent is reserved beyond capacity, no conversation twice.
func TestConcurrentPicksNeverOverfill(t *testing.T) {
	f := newFixture(t)
	q := uuid.New()
	agents := map[uuid.UUID]bool{}
	for range 10 {
		agents[f.agent(2, []uuid.UUID{q})] = true
	}
	for i := range 100 {
		f.wait(q, int64(i), state.Conversation{})
	}
	var (
		mu      sync.Mutex
		perConv = map[uuid.UUID]int{}
		perAg   = map[uuid.UUID]int{}
		wg      sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				d, err := f.st.Pick(f.ctx, f.tenant, q)
				if err != nil || d == nil {
					return
				}
				mu.Lock()
				perConv[d.Conversation]++
				perAg[d.Agent]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, perConv, 20, "10 agents of capacity 2")
	for c, n := range perConv {
		require.Equal(t, 1, n, "conversation %s", c)
	}
	for a, n := range perAg {
		require.True(t, agents[a])
		require.Equal(t, 2, n, "agent %s", a)
	}
}

// TestFlushRebuild: after Redis loses everything, scripts refuse to run
// until the state is rebuilt from the view.
func TestFlushRebuild(t *testing.T) {
	f := newFixture(t)
	q := uuid.New()
	a := f.agent(2, []uuid.UUID{q})
	c := f.wait(q, 1, state.Conversation{})
	held := f.held(f.wait(q, 0, state.Conversation{}), a)

	// Everything of this test's, as FLUSHALL would.
	keys, err := f.rdb.Keys(f.ctx, f.prefix+"*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		require.NoError(t, f.rdb.Del(f.ctx, k).Err())
	}
	_, err = f.st.Pick(f.ctx, f.tenant, q)
	require.ErrorIs(t, err, state.ErrNoState)

	f.convs = []state.Conversation{c, held}
	f.rebuild()
	require.Nil(t, f.pick(q), "a's heartbeat went with the rest: not connected")
	_, err = f.presence.Beat(f.ctx, f.tenant.String(), a.String())
	require.NoError(t, err)
	_, err = f.st.SyncAgent(f.ctx, f.tenant, f.agents[0])
	require.NoError(t, err)
	d := f.pick(q)
	require.NotNil(t, d)
	require.Equal(t, c.ID, d.Conversation)
	require.Nil(t, f.pick(q), fmt.Sprintf("a holds %s and %s: full", held.ID, c.ID))
}
