package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestPresence(t *testing.T) {
	const window = 30 * time.Second
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			rdb, prefix, _ := b.open(t)
			clock := newFakeClock()
			p := redis.NewPresence(rdb, prefix, window, clock)
			ctx := testkit.Context(t)
			t0 := clock.Now()

			require.NoError(t, p.Heartbeat(ctx, "acme", "alice", redis.StatusOnline))
			require.NoError(t, p.Heartbeat(ctx, "acme", "bob", redis.StatusAway))
			require.NoError(t, p.Heartbeat(ctx, "globex", "carol", redis.StatusOnline))

			online, err := p.Online(ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, []redis.Agent{
				{ID: "alice", Status: redis.StatusOnline, LastSeen: t0},
				{ID: "bob", Status: redis.StatusAway, LastSeen: t0},
			}, normalize(online))

			// The keys expire, so an abandoned tenant leaves nothing behind.
			for _, key := range []string{prefix + "presence:acme", prefix + "status:acme"} {
				ttl, err := rdb.PTTL(ctx, key).Result()
				require.NoError(t, err)
				require.Greater(t, ttl, window, key)
			}

			// alice keeps beating, bob goes quiet.
			clock.Advance(20 * time.Second)
			require.NoError(t, p.Heartbeat(ctx, "acme", "alice", redis.StatusAway))
			t1 := clock.Now()
			clock.Advance(window - 20*time.Second) // bob's heartbeat is exactly window old
			status, seen, err := p.Status(ctx, "acme", "bob")
			require.NoError(t, err)
			require.Equal(t, redis.StatusAway, status)
			require.True(t, seen.Equal(t0))

			clock.Advance(time.Millisecond)
			status, seen, err = p.Status(ctx, "acme", "bob")
			require.NoError(t, err)
			require.Equal(t, redis.StatusOffline, status)
			require.True(t, seen.Equal(t0), "last seen of an offline agent")

			online, err = p.Online(ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, []redis.Agent{{ID: "alice", Status: redis.StatusAway, LastSeen: t1}}, normalize(online))
			// Online pruned bob from the set.
			_, err = rdb.ZScore(ctx, prefix+"presence:acme", "bob").Result()
			require.ErrorIs(t, err, goredis.Nil)
			status, seen, err = p.Status(ctx, "acme", "bob")
			require.NoError(t, err)
			require.Equal(t, redis.StatusOffline, status)
			require.True(t, seen.IsZero())

			// Tenants are apart: carol's tenant is untouched by acme's
			// pruning, only by the window.
			status, _, err = p.Status(ctx, "globex", "carol")
			require.NoError(t, err)
			require.Equal(t, redis.StatusOffline, status)

			require.NoError(t, p.Leave(ctx, "acme", "alice"))
			status, seen, err = p.Status(ctx, "acme", "alice")
			require.NoError(t, err)
			require.Equal(t, redis.StatusOffline, status)
			require.True(t, seen.IsZero())
			online, err = p.Online(ctx, "acme")
			require.NoError(t, err)
			require.Empty(t, online)
			require.NoError(t, p.Leave(ctx, "acme", "nobody"))

			status, seen, err = p.Status(ctx, "initech", "dave")
			require.NoError(t, err)
			require.Equal(t, redis.StatusOffline, status)
			require.True(t, seen.IsZero())

			for _, bad := range []string{"", "offline", "busy", "Online"} {
				err := p.Heartbeat(ctx, "acme", "alice", bad)
				require.ErrorIs(t, err, redis.ErrInvalidStatus, "status %q", bad)
			}
			require.Error(t, p.Heartbeat(ctx, "", "alice", redis.StatusOnline))
			require.Error(t, p.Heartbeat(ctx, "acme", "", redis.StatusOnline))
			online, err = p.Online(ctx, "acme")
			require.NoError(t, err)
			require.Empty(t, online, "a refused heartbeat records nothing")
		})
	}
}

func TestNewPresenceRefusesZeroWindow(t *testing.T) {
	rdb, prefix := testkit.Redis(t)
	require.Panics(t, func() { redis.NewPresence(rdb, prefix, 0, nil) })
}

// normalize puts times in UTC, so that require.Equal compares instants and
// not the location time.UnixMilli attaches.
func normalize(agents []redis.Agent) []redis.Agent {
	for i := range agents {
		agents[i].LastSeen = agents[i].LastSeen.UTC()
	}
	return agents
}

func TestPresenceBeatAndTakeStale(t *testing.T) {
	const window = 30 * time.Second
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			rdb, prefix, _ := b.open(t)
			clock := newFakeClock()
			p := redis.NewPresence(rdb, prefix, window, clock)
			ctx := testkit.Context(t)

			appeared, err := p.Beat(ctx, "acme", "alice")
			require.NoError(t, err)
			require.True(t, appeared, "a first beat")
			require.NoError(t, p.Heartbeat(ctx, "acme", "alice", redis.StatusAway))
			appeared, err = p.Beat(ctx, "acme", "alice")
			require.NoError(t, err)
			require.False(t, appeared, "a beat of a present agent")
			status, _, err := p.Status(ctx, "acme", "alice")
			require.NoError(t, err)
			require.Equal(t, redis.StatusAway, status, "a beat keeps the status")
			_, err = p.Beat(ctx, "acme", "bob")
			require.NoError(t, err)

			clock.Advance(window / 2)
			_, err = p.Beat(ctx, "acme", "bob")
			require.NoError(t, err)
			stale, err := p.TakeStale(ctx, "acme")
			require.NoError(t, err)
			require.Empty(t, stale, "nobody is silent for a window yet")

			clock.Advance(window/2 + time.Millisecond)
			stale, err = p.TakeStale(ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, []string{"alice"}, stale)
			stale, err = p.TakeStale(ctx, "acme")
			require.NoError(t, err)
			require.Empty(t, stale, "each silent agent is taken once")

			appeared, err = p.Beat(ctx, "acme", "alice")
			require.NoError(t, err)
			require.True(t, appeared, "an agent taken as gone appears again")
			set, hash := p.Keys("acme")
			require.Equal(t, prefix+"presence:acme", set)
			require.Equal(t, prefix+"status:acme", hash)
			require.Equal(t, window, p.Window())
		})
	}
}
