// Package retry is the one retry policy of Switchboard: exponential backoff
// with full jitter, an attempt limit, and an injected clock.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Clock is the time source of every timer; tests inject their own.
type Clock interface {
	Now() time.Time
	// After waits for d, like time.After.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Policy says how often and how long to retry.
type Policy struct {
	// Initial is the first delay.
	Initial time.Duration
	// Max caps every delay.
	Max time.Duration
	// Multiplier grows the delay after each attempt (2 doubles it).
	Multiplier float64
	// MaxAttempts bounds the attempts, the first included; 0 means no limit.
	MaxAttempts int
}

// Default is the policy used where nothing more specific applies: 100 ms,
// doubling, capped at 10 s, 8 attempts (about 30 s in all).
func Default() Policy {
	return Policy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, MaxAttempts: 8}
}

// Delay returns the wait before attempt n+1, after n failed attempts (n >= 1).
// The jitter is "full jitter": uniform in [d/2, d], so that many clients
// failing together do not retry together.
func (p Policy) Delay(n int) time.Duration {
	d := float64(p.Initial)
	for i := 1; i < n; i++ {
		d *= p.Multiplier
		if p.Max > 0 && d >= float64(p.Max) {
			d = float64(p.Max)
			break
		}
	}
	if p.Max > 0 && d > float64(p.Max) {
		d = float64(p.Max)
	}
	half := d / 2
	return time.Duration(half + rand.Float64()*half)
}

// Exhausted reports whether n failed attempts use up the policy.
func (p Policy) Exhausted(n int) bool { return p.MaxAttempts > 0 && n >= p.MaxAttempts }

// Sleep waits for the delay after n failed attempts, or until ctx is done.
func (p Policy) Sleep(ctx context.Context, clock Clock, n int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(p.Delay(n)):
		return nil
	}
}

// Do calls fn until it succeeds, the policy is exhausted, fn returns an error
// that retryable rejects, or ctx is done. It returns fn's last error, or
// ctx's error when cancelled while waiting. retryable may be nil (retry
// every error).
func (p Policy) Do(ctx context.Context, clock Clock, retryable func(error) bool, fn func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		if (retryable != nil && !retryable(err)) || p.Exhausted(n) {
			return err
		}
		if serr := p.Sleep(ctx, clock, n); serr != nil {
			return err
		}
	}
}
