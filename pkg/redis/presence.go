package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// Agent statuses. Heartbeat accepts StatusOnline and StatusAway; Status and
// Online report StatusOffline for agents whose last heartbeat is older than
// the window.
const (
	StatusOnline  = "online"
	StatusAway    = "away"
	StatusOffline = "offline"
)

// PresencePrefix starts the presence keys the inbox writes and the router
// reads.
const PresencePrefix = "switchboard:"

// DefaultPresenceWindow is how long a heartbeat keeps an agent present
// unless configured otherwise; clients beat every third of it.
const DefaultPresenceWindow = 30 * time.Second

// ErrInvalidStatus is wrapped by Heartbeat's error for a status other than
// StatusOnline or StatusAway, so that an API can answer 400.
var ErrInvalidStatus = errors.New(`invalid status: want "online" or "away"`)

// keyLifetimeWindows is how many windows a tenant's presence keys outlive
// their last heartbeat. After one window every entry is offline anyway; the
// margin keeps LastSeen answerable for a while and absorbs clock skew
// between the servers whose clocks score the heartbeats and Redis's, which
// counts the TTL. Without a TTL, a tenant that stops sending heartbeats
// would leave its keys in Redis for good.
const keyLifetimeWindows = 3

// Agent is one agent's presence.
type Agent struct {
	// ID is the agent's id.
	ID string
	// Status is StatusOnline or StatusAway.
	Status string
	// LastSeen is the time of the agent's last heartbeat, to the millisecond.
	LastSeen time.Time
}

// Presence records which agents of each tenant are connected, from
// heartbeats: an agent is present while its last heartbeat is younger than
// the window. Heartbeats carry no TTL per agent, which Redis cannot give to
// members of a set; instead each tenant has a sorted set of agent ids scored
// by the heartbeat time, from which Online prunes the stale ones, and a hash
// of the statuses.
//
// Times come from the injected clock, not from Redis, so that tests control
// them; servers sharing a Redis should keep their clocks in sync (NTP), as
// skew shifts the window by that much.
type Presence struct {
	rdb    *goredis.Client
	prefix string
	window time.Duration
	clock  retry.Clock
}

// NewPresence returns a Presence whose keys start with prefix: prefix+
// "presence:"+tenant is the sorted set of heartbeats, prefix+"status:"+
// tenant the hash of statuses. window is how long a heartbeat keeps an agent
// present: clients should beat at a fraction of it (a third, say) so that
// one lost beat does not show them offline. clock nil means
// retry.SystemClock. NewPresence panics if window is shorter than a
// millisecond, the resolution of the scores, as that is a programming error.
func NewPresence(rdb *goredis.Client, prefix string, window time.Duration, clock retry.Clock) *Presence {
	if window < time.Millisecond {
		panic(fmt.Sprintf("redis.NewPresence: window %s is shorter than a millisecond", window))
	}
	if clock == nil {
		clock = retry.SystemClock{}
	}
	return &Presence{rdb: rdb, prefix: prefix, window: window, clock: clock}
}

func (p *Presence) setKey(tenant string) string    { return p.prefix + "presence:" + tenant }
func (p *Presence) statusKey(tenant string) string { return p.prefix + "status:" + tenant }

// cutoff returns the score below which a heartbeat is stale.
func (p *Presence) cutoff() int64 { return p.clock.Now().Add(-p.window).UnixMilli() }

// Heartbeat records that agent of tenant is connected with status, now.
func (p *Presence) Heartbeat(ctx context.Context, tenant, agent, status string) error {
	if tenant == "" || agent == "" {
		return fmt.Errorf("heartbeat of agent %q in tenant %q: tenant and agent must not be empty", agent, tenant)
	}
	if status != StatusOnline && status != StatusAway {
		return fmt.Errorf("heartbeat of agent %s in tenant %s: status %q: %w", agent, tenant, status, ErrInvalidStatus)
	}
	now := p.clock.Now()
	set, hash := p.setKey(tenant), p.statusKey(tenant)
	keep := keyLifetimeWindows * p.window
	// MULTI/EXEC so that a reader never sees a heartbeat without its status.
	_, err := p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		pipe.ZAdd(ctx, set, goredis.Z{Score: float64(now.UnixMilli()), Member: agent})
		pipe.HSet(ctx, hash, agent, status)
		pipe.PExpire(ctx, set, keep)
		pipe.PExpire(ctx, hash, keep)
		return nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat of agent %s in tenant %s: %w", agent, tenant, err)
	}
	return nil
}

// Beat records that agent of tenant is still connected, now, without
// touching its status. appeared reports that the agent had no heartbeat in
// the set: it is new, was taken as gone (TakeStale) or Redis lost its data;
// the caller then writes the status again with Heartbeat and tells whoever
// routes that the agent is back.
func (p *Presence) Beat(ctx context.Context, tenant, agent string) (appeared bool, err error) {
	if tenant == "" || agent == "" {
		return false, fmt.Errorf("heartbeat of agent %q in tenant %q: tenant and agent must not be empty", agent, tenant)
	}
	set := p.setKey(tenant)
	var added *goredis.IntCmd
	_, err = p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		added = pipe.ZAdd(ctx, set, goredis.Z{Score: float64(p.clock.Now().UnixMilli()), Member: agent})
		pipe.PExpire(ctx, set, keyLifetimeWindows*p.window)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("heartbeat of agent %s in tenant %s: %w", agent, tenant, err)
	}
	return added.Val() == 1, nil
}

// TakeStale removes from tenant's set the agents whose last heartbeat is
// older than the window and returns them, in one transaction: of several
// callers, one gets each agent. Their next Beat reports them appeared.
func (p *Presence) TakeStale(ctx context.Context, tenant string) ([]string, error) {
	set := p.setKey(tenant)
	below := "(" + strconv.FormatInt(p.cutoff(), 10)
	var stale *goredis.StringSliceCmd
	_, err := p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		stale = pipe.ZRangeByScore(ctx, set, &goredis.ZRangeBy{Min: "-inf", Max: below})
		pipe.ZRemRangeByScore(ctx, set, "-inf", below)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("take the silent agents of tenant %s: %w", tenant, err)
	}
	return stale.Val(), nil
}

// Keys returns the names of tenant's heartbeat set (member: agent id,
// score: last heartbeat in Unix milliseconds) and status hash, for scripts
// that read presence atomically with other keys.
func (p *Presence) Keys(tenant string) (set, status string) {
	return p.setKey(tenant), p.statusKey(tenant)
}

// Window is how long a heartbeat keeps an agent present.
func (p *Presence) Window() time.Duration { return p.window }

// Leave records that agent of tenant disconnected, so that it shows offline
// at once rather than when the window runs out.
func (p *Presence) Leave(ctx context.Context, tenant, agent string) error {
	_, err := p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		pipe.ZRem(ctx, p.setKey(tenant), agent)
		pipe.HDel(ctx, p.statusKey(tenant), agent)
		return nil
	})
	if err != nil {
		return fmt.Errorf("leave of agent %s in tenant %s: %w", agent, tenant, err)
	}
	return nil
}

// Online returns the agents of tenant whose last heartbeat is within the
// window, ordered by id. It removes the stale heartbeats in the same
// transaction, which is what keeps the sorted set to the connected agents.
// (Their statuses stay in the hash, bounded by the tenant's agents, until
// the agent beats or leaves again or the tenant's keys expire; a status is
// only read for an agent with a fresh heartbeat.)
func (p *Presence) Online(ctx context.Context, tenant string) ([]Agent, error) {
	cutoff := p.cutoff()
	set := p.setKey(tenant)
	var (
		fresh    *goredis.ZSliceCmd
		statuses *goredis.MapStringStringCmd
	)
	_, err := p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		pipe.ZRemRangeByScore(ctx, set, "-inf", "("+strconv.FormatInt(cutoff, 10))
		fresh = pipe.ZRangeByScoreWithScores(ctx, set, &goredis.ZRangeBy{Min: strconv.FormatInt(cutoff, 10), Max: "+inf"})
		statuses = pipe.HGetAll(ctx, p.statusKey(tenant))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list online agents of tenant %s: %w", tenant, err)
	}
	agents := make([]Agent, 0, len(fresh.Val()))
	for _, z := range fresh.Val() {
		id, _ := z.Member.(string)
		agents = append(agents, Agent{ID: id, Status: statusOrOnline(statuses.Val()[id]), LastSeen: time.UnixMilli(int64(z.Score))})
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].ID < agents[j].ID })
	return agents, nil
}

// Status returns agent's status in tenant and the time of its last
// heartbeat. It is StatusOffline when the last heartbeat is older than the
// window (lastSeen then still tells when it was, while Redis remembers) or
// when there is none (lastSeen is then the zero time).
func (p *Presence) Status(ctx context.Context, tenant, agent string) (status string, lastSeen time.Time, err error) {
	var (
		score *goredis.FloatCmd
		st    *goredis.StringCmd
	)
	_, err = p.rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
		score = pipe.ZScore(ctx, p.setKey(tenant), agent)
		st = pipe.HGet(ctx, p.statusKey(tenant), agent)
		return nil
	})
	// A missing member or field makes the transaction report goredis.Nil,
	// which here just means "no heartbeat".
	if err != nil && !errors.Is(err, goredis.Nil) {
		return "", time.Time{}, fmt.Errorf("status of agent %s in tenant %s: %w", agent, tenant, err)
	}
	if errors.Is(score.Err(), goredis.Nil) {
		return StatusOffline, time.Time{}, nil
	}
	ms := int64(score.Val())
	cutoff := p.cutoff()
	if ms < cutoff {
		return StatusOffline, time.UnixMilli(ms), nil
	}
	return statusOrOnline(st.Val()), time.UnixMilli(ms), nil
}

// statusOrOnline returns s, or StatusOnline when it is empty: Heartbeat
// writes both keys in one transaction, so a fresh heartbeat without a
// status only happens if the hash was deleted by hand; the heartbeat is the
// stronger evidence.
func statusOrOnline(s string) string {
	if s == "" {
		return StatusOnline
	}
	return s
}
