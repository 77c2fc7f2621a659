package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// instantClock never waits, and records the waits asked for.
type instantClock struct{ waits []time.Duration }

func (c *instantClock) Now() time.Time { return time.Unix(0, 0) }
func (c *instantClock) After(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- time.Unix(0, 0)
	return ch
}

func TestDelayGrowsWithJitterAndCap(t *testing.T) {
	p := retry.Policy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2}
	for n, base := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for i := 0; i < 100; i++ {
			d := p.Delay(n)
			if d < base/2 || d > base {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", n, d, base/2, base)
			}
		}
	}
}

func TestDo(t *testing.T) {
	clock := &instantClock{}
	p := retry.Policy{Initial: time.Millisecond, Max: time.Second, Multiplier: 2, MaxAttempts: 4}
	calls := 0
	err := p.Do(context.Background(), clock, nil, func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 || len(clock.waits) != 2 {
		t.Errorf("Do succeeding on the third call: err %v, calls %d, waits %d; want nil, 3, 2", err, calls, len(clock.waits))
	}

	calls = 0
	boom := errors.New("boom")
	err = p.Do(context.Background(), clock, nil, func(context.Context) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 4 {
		t.Errorf("Do always failing: err %v, calls %d; want boom, 4", err, calls)
	}

	calls = 0
	permanent := errors.New("permanent")
	err = p.Do(context.Background(), clock, func(err error) bool { return !errors.Is(err, permanent) }, func(context.Context) error { calls++; return permanent })
	if !errors.Is(err, permanent) || calls != 1 {
		t.Errorf("Do with a non-retryable error: err %v, calls %d; want permanent, 1", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = retry.Policy{Initial: time.Hour, Max: time.Hour, Multiplier: 2}.Do(ctx, retry.SystemClock{}, nil, func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Do with a cancelled context = %v, want the last error", err)
	}
}
