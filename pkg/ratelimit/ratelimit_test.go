package ratelimit_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// backends are the Redis servers the scripts run on: a real one (Lua 5.1,
// whose number formatting differs) and miniredis (gopher-lua).
func backends() map[string]func(t *testing.T) (*goredis.Client, string) {
	return map[string]func(t *testing.T) (*goredis.Client, string){
		"redis": func(t *testing.T) (*goredis.Client, string) { return testkit.Redis(t) },
		"miniredis": func(t *testing.T) (*goredis.Client, string) {
			mr := miniredis.RunT(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			return rdb, "sbtest:"
		},
	}
}

// clock moves only when told to.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 14, 9, 26, 53, 589_793_000, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now().Add(d)
	return ch
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLimiterAllowsTheBurstThenTheRate(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			rdb, prefix := open(t)
			clk := newClock()
			l, err := ratelimit.NewLimiter(rdb, prefix, "test", telemetry.Discard(), clk)
			require.NoError(t, err)
			ctx := context.Background()
			rule := ratelimit.Rule{Name: "token", Rate: 10, Burst: 5}
			lim := ratelimit.Limit{Key: "token:a", Rule: rule}
			for i := range 5 {
				d := l.Allow(ctx, lim)
				require.True(t, d.Allowed, "request %d of the burst was refused", i+1)
				require.Equal(t, 4-i, d.Remaining, "remaining after request %d", i+1)
				require.Equal(t, "token", d.Rule.Name)
			}
			d := l.Allow(ctx, lim)
			require.False(t, d.Allowed, "the request past the burst was allowed")
			require.Equal(t, 100*time.Millisecond, d.RetryAfter, "one request comes back every 1/rate")
			require.Equal(t, 0, d.Remaining)

			clk.Advance(99 * time.Millisecond)
			require.False(t, l.Allow(ctx, lim).Allowed, "allowed before its time")
			clk.Advance(time.Millisecond)
			d = l.Allow(ctx, lim)
			require.True(t, d.Allowed, "refused once the interval passed")
			require.Equal(t, 0, d.Remaining)
			require.Equal(t, 500*time.Millisecond, d.Reset, "the full burst is back after burst/rate")

			// A quiet spell brings the whole burst back, and no more.
			clk.Advance(time.Hour)
			for range 5 {
				require.True(t, l.Allow(ctx, lim).Allowed)
			}
			require.False(t, l.Allow(ctx, lim).Allowed)
		})
	}
}

// TestLimiterCountsAllOrNothing: a request refused by one limit uses up
// none of the others, so that one token refused by its own limit does not
// eat its tenant's; and keys do not share their counts.
func TestLimiterCountsAllOrNothing(t *testing.T) {
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			rdb, prefix := open(t)
			l, err := ratelimit.NewLimiter(rdb, prefix, "test", telemetry.Discard(), newClock())
			require.NoError(t, err)
			ctx := context.Background()
			token := ratelimit.Rule{Name: "token", Rate: 1, Burst: 2}
			tenant := ratelimit.Rule{Name: "tenant", Rate: 1, Burst: 3}
			a := []ratelimit.Limit{{Key: "token:a", Rule: token}, {Key: "tenant:x", Rule: tenant}}
			b := []ratelimit.Limit{{Key: "token:b", Rule: token}, {Key: "tenant:x", Rule: tenant}}
			other := []ratelimit.Limit{{Key: "token:c", Rule: token}, {Key: "tenant:y", Rule: tenant}}

			require.True(t, l.Allow(ctx, a...).Allowed)
			d := l.Allow(ctx, a...)
			require.True(t, d.Allowed)
			require.Equal(t, "token", d.Rule.Name, "the closest limit is the token's: it has nothing left")
			for range 10 {
				d = l.Allow(ctx, a...)
				require.False(t, d.Allowed)
				require.Equal(t, "token", d.Rule.Name)
			}
			d = l.Allow(ctx, b...)
			require.True(t, d.Allowed, "the token's refusals used up the tenant's limit")
			require.Equal(t, "tenant", d.Rule.Name)
			require.Equal(t, 0, d.Remaining)
			d = l.Allow(ctx, b...)
			require.False(t, d.Allowed)
			require.Equal(t, "tenant", d.Rule.Name, "refused by the tenant's limit")
			require.True(t, l.Allow(ctx, other...).Allowed, "another tenant shares the limit")

			// A rule that is off counts nothing.
			off := ratelimit.Limit{Key: "token:a", Rule: ratelimit.Rule{Name: "token"}}
			require.Equal(t, ratelimit.Decision{Allowed: true}, l.Allow(ctx, off))
		})
	}
}

func TestLimiterFailsOpen(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	tel := telemetry.Discard()
	l, err := ratelimit.NewLimiter(rdb, "sbtest:", "test", tel, newClock())
	require.NoError(t, err)
	b, err := ratelimit.NewBackoff(rdb, "sbtest:", "test", tel, newClock())
	require.NoError(t, err)
	rule := ratelimit.Rule{Name: "token", Rate: 1, Burst: 1}
	subject := ratelimit.Subject{Key: "account:x", Rule: ratelimit.BackoffRule{Name: "account", Base: time.Second, Max: time.Minute, Forget: time.Hour}}
	mr.Close()
	ctx := context.Background()
	for range 3 {
		d := l.Allow(ctx, ratelimit.Limit{Key: "token:a", Rule: rule})
		require.True(t, d.Allowed, "a limit refused a request while Redis was down")
		require.True(t, d.Degraded)
		require.Zero(t, b.Fail(ctx, subject))
		wait, _ := b.Wait(ctx, subject)
		require.Zero(t, wait, "a backoff made an attempt wait while Redis was down")
	}
	b.Reset(ctx, subject)
	m, err := tel.Gather()
	require.NoError(t, err)
	require.Equal(t, 10.0, m["switchboard_ratelimit_unavailable_total{limiter=test}"], "metrics: %v", m)
}

func TestBackoffDelaysGrowAndAreBounded(t *testing.T) {
	rule := ratelimit.BackoffRule{Name: "account", Free: 2, Base: time.Second, Max: 8 * time.Second, Forget: time.Hour}
	for failures, want := range map[int]time.Duration{0: 0, 1: 0, 2: 0, 3: time.Second, 4: 2 * time.Second, 5: 4 * time.Second, 6: 8 * time.Second, 7: 8 * time.Second, 70: 8 * time.Second} {
		if got := rule.Delay(failures); got != want {
			t.Errorf("Delay(%d) = %s, want %s", failures, got, want)
		}
	}
	for name, open := range backends() {
		t.Run(name, func(t *testing.T) {
			rdb, prefix := open(t)
			clk := newClock()
			b, err := ratelimit.NewBackoff(rdb, prefix, "test", telemetry.Discard(), clk)
			require.NoError(t, err)
			ctx := context.Background()
			account := ratelimit.Subject{Key: "account:x", Rule: rule}
			address := ratelimit.Subject{Key: "address:1", Rule: ratelimit.BackoffRule{Name: "address", Free: 5, Base: time.Second, Max: time.Minute, Forget: time.Hour}}
			for n := 1; n <= 7; n++ {
				wait, _ := b.Wait(ctx, account, address)
				require.Zero(t, wait, "attempt %d waits although the last delay passed", n)
				delay := b.Fail(ctx, account, address)
				require.Equal(t, rule.Delay(n), delay, "delay after failure %d", n)
				if delay == 0 {
					continue
				}
				wait, who := b.Wait(ctx, account, address)
				require.Equal(t, delay, wait)
				require.Equal(t, "account", who.Rule.Name)
				clk.Advance(delay / 2)
				wait, _ = b.Wait(ctx, account, address)
				require.Equal(t, delay-delay/2, wait, "the wait shrinks as time passes")
				clk.Advance(delay - delay/2)
			}
			// The address reached its own delay (7 failures, 5 free).
			b.Reset(ctx, account)
			wait, who := b.Wait(ctx, account, address)
			require.Zero(t, wait, "the address's delay of failure 7 (2s) passed with the account's")
			delay := b.Fail(ctx, account, address)
			require.Equal(t, 4*time.Second, delay, "the address's delay after its 8th failure")
			wait, who = b.Wait(ctx, account, address)
			require.Equal(t, 4*time.Second, wait)
			require.Equal(t, "address", who.Rule.Name)
			b.Reset(ctx, address)
			wait, _ = b.Wait(ctx, account)
			require.Zero(t, wait, "a reset account still waits")
		})
	}
}

func TestHeaders(t *testing.T) {
	token := ratelimit.Rule{Name: "token", Rate: 10, Burst: 50}
	tenant := ratelimit.Rule{Name: "tenant", Rate: 0.5, Burst: 3}
	h := http.Header{}
	ratelimit.SetHeaders(h, ratelimit.Decision{Allowed: true, Rule: tenant, Remaining: 2, Reset: 1500 * time.Millisecond}, token, tenant)
	require.Equal(t, `"token";q=50;w=5, "tenant";q=3;w=6`, h.Get(ratelimit.HeaderPolicy))
	require.Equal(t, `"tenant";r=2;t=2`, h.Get(ratelimit.HeaderRateLimit))

	h = http.Header{}
	p := ratelimit.TooMany(h, ratelimit.Decision{Rule: token, RetryAfter: 1200 * time.Millisecond}, "requests of this API token")
	require.Equal(t, http.StatusTooManyRequests, p.Status)
	require.Equal(t, "2", h.Get("Retry-After"), "Retry-After rounds up")
	require.Contains(t, p.Detail, "retry in 2 s")

	h = http.Header{}
	ratelimit.SetHeaders(h, ratelimit.Decision{Allowed: true, Degraded: true}, token)
	require.Empty(t, h, "a degraded decision counted nothing")
}
