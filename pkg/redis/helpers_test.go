package redis_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// backend is a Redis the tests run against. Both are covered because they
// differ where it matters here: real Redis runs Lua 5.1, whose tostring
// prints large numbers in exponent notation, miniredis runs gopher-lua,
// which does not; and only real Redis expires keys in real time.
type backend struct {
	name string
	// open returns a client and a key prefix private to the test.
	open func(t *testing.T) (rdb *goredis.Client, prefix string, expire func(t *testing.T, key string, ttl time.Duration))
}

func backends() []backend {
	return []backend{
		{name: "redis", open: func(t *testing.T) (*goredis.Client, string, func(*testing.T, string, time.Duration)) {
			rdb, prefix := testkit.Redis(t)
			// Wait for Redis to expire the key itself, polling with a
			// bound rather than sleeping for a guessed duration.
			expire := func(t *testing.T, key string, ttl time.Duration) {
				t.Helper()
				testkit.Eventually(t, 2*time.Second+ttl, func() bool {
					n, err := rdb.Exists(context.Background(), key).Result()
					require.NoError(t, err)
					return n == 0
				}, "key %s still exists", key)
			}
			return rdb, prefix, expire
		}},
		{name: "miniredis", open: func(t *testing.T) (*goredis.Client, string, func(*testing.T, string, time.Duration)) {
			mr := miniredis.RunT(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			expire := func(t *testing.T, key string, ttl time.Duration) {
				t.Helper()
				mr.FastForward(ttl + time.Millisecond)
				require.False(t, mr.Exists(key), "key %s still exists after FastForward", key)
			}
			return rdb, "sbtest:", expire
		}},
	}
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After fires at once, with the time d from now; nothing under test waits
// on it, and a fake clock must not block a test on real time.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now().Add(d)
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
