package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestLocker(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("two holders never both succeed", func(t *testing.T) {
				rdb, prefix, _ := b.open(t)
				locks := redis.NewLocker(rdb, prefix, newFakeClock())
				ctx := testkit.Context(t)
				const resources, racers = 20, 50
				for r := range resources {
					resource := fmt.Sprintf("conv-%d", r)
					var (
						wg      sync.WaitGroup
						start   = make(chan struct{})
						leases  = make([]redis.Lease, racers)
						errs    = make([]error, racers)
						holders = make([]string, racers)
					)
					for i := range racers {
						holders[i] = fmt.Sprintf("agent-%d", i)
						wg.Go(func() {
							<-start
							leases[i], errs[i] = locks.Acquire(ctx, resource, holders[i], time.Minute)
						})
					}
					close(start)
					wg.Wait()

					winners := 0
					for i, err := range errs {
						if err == nil {
							winners++
							require.Equal(t, holders[i], leases[i].Holder)
							require.Equal(t, resource, leases[i].Resource)
							fence, gerr := rdb.Get(ctx, prefix+"fence:"+resource).Result()
							require.NoError(t, gerr)
							require.Equal(t, strconv.FormatInt(leases[i].Token, 10), fence)
							continue
						}
						require.ErrorIs(t, err, redis.ErrHeld, "racer %d on %s", i, resource)
						require.Zero(t, leases[i])
					}
					require.Equal(t, 1, winners, "winners on %s", resource)
				}
			})

			t.Run("an expired holder's token is refused by the fencing check", func(t *testing.T) {
				rdb, prefix, expire := b.open(t)
				clock := newFakeClock()
				locks := redis.NewLocker(rdb, prefix, clock)
				ctx := testkit.Context(t)
				const ttl = 50 * time.Millisecond

				a, err := locks.Acquire(ctx, "conv-1", "agent-a", ttl)
				require.NoError(t, err)
				require.Equal(t, clock.Now().Add(ttl), a.ExpiresAt)
				require.NoError(t, locks.Check(ctx, "conv-1", a.Token))

				// The store the lock protects: it keeps the token of the
				// last write and refuses older ones, as the inbox does in
				// PostgreSQL.
				store := &guardedStore{}
				require.NoError(t, store.write(a.Token, "assigned to a"))

				_, err = locks.Acquire(ctx, "conv-1", "agent-b", ttl)
				require.ErrorIs(t, err, redis.ErrHeld)

				// a pauses past its TTL; b takes over.
				expire(t, prefix+"lock:conv-1", ttl)
				b, err := locks.Acquire(ctx, "conv-1", "agent-b", time.Minute)
				require.NoError(t, err)
				require.Greater(t, b.Token, a.Token)

				err = locks.Check(ctx, "conv-1", a.Token)
				require.ErrorIs(t, err, redis.ErrFenced)
				require.NoError(t, locks.Check(ctx, "conv-1", b.Token))

				require.ErrorIs(t, locks.Release(ctx, a), redis.ErrNotHeld)
				_, err = locks.Extend(ctx, a, time.Minute)
				require.ErrorIs(t, err, redis.ErrNotHeld)

				// a's failed Release and Extend left b's lease alone.
				val, err := rdb.Get(ctx, prefix+"lock:conv-1").Result()
				require.NoError(t, err)
				require.Equal(t, "agent-b:"+strconv.FormatInt(b.Token, 10), val)

				require.NoError(t, store.write(b.Token, "assigned to b"))
				require.NoError(t, store.write(b.Token, "assigned to b, note added"))
				require.ErrorIs(t, store.write(a.Token, "assigned to a again"), errStaleWrite)
				require.Equal(t, "assigned to b, note added", store.value)

				b2, err := locks.Extend(ctx, b, time.Minute)
				require.NoError(t, err)
				require.Equal(t, b.Token, b2.Token)
				require.NoError(t, locks.Release(ctx, b2))
				require.ErrorIs(t, locks.Release(ctx, b2), redis.ErrNotHeld)
			})

			t.Run("token monotonic after the fence key is lost", func(t *testing.T) {
				rdb, prefix, _ := b.open(t)
				locks := redis.NewLocker(rdb, prefix, newFakeClock())
				ctx := testkit.Context(t)

				var last int64
				for i := range 20 {
					l, err := locks.Acquire(ctx, "conv-1", "agent", time.Minute)
					require.NoError(t, err)
					require.Greater(t, l.Token, last, "acquisition %d", i)
					last = l.Token
					require.NoError(t, locks.Release(ctx, l))
				}

				// Redis restarts without persistence: lock and fence are gone.
				require.NoError(t, rdb.Del(ctx, prefix+"lock:conv-1", prefix+"fence:conv-1").Err())
				l, err := locks.Acquire(ctx, "conv-1", "agent", time.Minute)
				require.NoError(t, err)
				require.Greater(t, l.Token, last)
			})

			t.Run("large tokens round-trip exactly", func(t *testing.T) {
				rdb, prefix, _ := b.open(t)
				locks := redis.NewLocker(rdb, prefix, newFakeClock())
				ctx := testkit.Context(t)

				// A token from the clock: about 1.7e15, more digits than
				// Lua's %.14g keeps.
				l, err := locks.Acquire(ctx, "conv-1", "agent", time.Minute)
				require.NoError(t, err)
				require.Greater(t, l.Token, int64(1e15))
				requireStored(t, rdb.Get(ctx, prefix+"fence:conv-1").Result, strconv.FormatInt(l.Token, 10))
				requireStored(t, rdb.Get(ctx, prefix+"lock:conv-1").Result, "agent:"+strconv.FormatInt(l.Token, 10))
				require.NoError(t, locks.Release(ctx, l))

				// A token from the fence, above the clock and odd, so that
				// any rounding shows in the last digit.
				const fence = int64(4_000_000_000_000_123)
				require.NoError(t, rdb.Set(ctx, prefix+"fence:conv-1", fence, 0).Err())
				l, err = locks.Acquire(ctx, "conv-1", "agent", time.Minute)
				require.NoError(t, err)
				require.Equal(t, fence+1, l.Token)
				requireStored(t, rdb.Get(ctx, prefix+"fence:conv-1").Result, "4000000000000124")
				require.NoError(t, locks.Check(ctx, "conv-1", fence+1))
				require.ErrorIs(t, locks.Check(ctx, "conv-1", fence), redis.ErrFenced)
				require.NoError(t, locks.Release(ctx, l))
			})

			t.Run("refuses bad arguments", func(t *testing.T) {
				rdb, prefix, _ := b.open(t)
				locks := redis.NewLocker(rdb, prefix, nil)
				ctx := testkit.Context(t)
				_, err := locks.Acquire(ctx, "", "agent", time.Minute)
				require.Error(t, err)
				_, err = locks.Acquire(ctx, "conv-1", "", time.Minute)
				require.Error(t, err)
				_, err = locks.Acquire(ctx, "conv-1", "agent", time.Microsecond)
				require.Error(t, err)
				require.NoError(t, locks.Check(ctx, "never-locked", 1))
			})
		})
	}
}

func requireStored(t *testing.T, get func() (string, error), want string) {
	t.Helper()
	got, err := get()
	require.NoError(t, err)
	require.Equal(t, want, got)
}

var errStaleWrite = errors.New("stale fencing token")

// guardedStore stands for the assignment row in PostgreSQL: it keeps the
// token of the last write and refuses writes under an older one.
type guardedStore struct {
	mu    sync.Mutex
	token int64
	value string
}

func (s *guardedStore) write(token int64, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !redis.FenceOK(s.token, token) {
		return fmt.Errorf("write %q with token %d after %d: %w", value, token, s.token, errStaleWrite)
	}
	s.token, s.value = token, value
	return nil
}

func TestFenceOK(t *testing.T) {
	require.True(t, redis.FenceOK(0, 1))
	require.True(t, redis.FenceOK(5, 5))
	require.True(t, redis.FenceOK(5, 6))
	require.False(t, redis.FenceOK(6, 5))
}

func TestLockerWithoutRedis(t *testing.T) {
	rdb, prefix := testkit.Redis(t)
	locks := redis.NewLocker(rdb, prefix, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := locks.Acquire(ctx, "conv-1", "agent", time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, redis.ErrHeld)
}
