package ratelimit

import (
	"context"
	"flag"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// BackoffRule is how failures delay the next attempt: Free of them cost
// nothing, the next one makes the next attempt wait Base, and each one
// after doubles the wait, up to Max. A subject without a failure for
// Forget starts again from nothing.
type BackoffRule struct {
	// Name names the rule in metrics ("account", "address").
	Name string
	// Free is how many failures come without a delay.
	Free int
	// Base is the first delay.
	Base time.Duration
	// Max bounds every delay.
	Max time.Duration
	// Forget is how long failures are remembered after the last one.
	Forget time.Duration
}

// Delay is the wait after the failures-th failure in a row.
func (r BackoffRule) Delay(failures int) time.Duration {
	if failures <= r.Free {
		return 0
	}
	d := r.Base
	for i := r.Free + 1; i < failures && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

// RegisterFlags declares name.free-failures, name.base-delay,
// name.max-delay and name.forget-after with the rule's current values as
// defaults; what names the attempts counted ("logins to one account").
func (r *BackoffRule) RegisterFlags(f *flag.FlagSet, name, what string) {
	f.IntVar(&r.Free, name+".free-failures", r.Free, fmt.Sprintf("Failed %s that are answered at once. After each further failure the next attempt waits -%s.base-delay, doubled with each failure after, up to -%s.max-delay; an attempt meanwhile is refused with 429 and Retry-After, unchecked.", what, name, name))
	f.DurationVar(&r.Base, name+".base-delay", r.Base, fmt.Sprintf("First delay imposed on %s once the free failures are used.", what))
	f.DurationVar(&r.Max, name+".max-delay", r.Max, fmt.Sprintf("Longest delay imposed on %s, however many failures: once an attacker stops, the right user waits at most this long.", what))
	f.DurationVar(&r.Forget, name+".forget-after", r.Forget, fmt.Sprintf("Failed %s are forgotten after this long without a new failure.", what))
}

// Check validates the rule's settings, registered under name.
func (r BackoffRule) Check(ck *config.Checker, name string) {
	ck.Check(r.Free >= 0 && r.Free <= 1000, name+".free-failures", fmt.Sprintf("must be from 0 to 1000, got %d", r.Free), "set 5")
	ck.Positive(name+".base-delay", r.Base)
	ck.Check(r.Max >= r.Base, name+".max-delay", fmt.Sprintf("%s is shorter than -%s.base-delay (%s)", r.Max, name, r.Base), "set it at least as long, such as 15m")
	ck.Check(r.Forget >= time.Second, name+".forget-after", fmt.Sprintf("%s is shorter than 1s", r.Forget), "set 1h")
}

// failScript records a failure of every subject and sets when its next
// attempt may come.
//
// A subject is a hash: n, its failures in a row, and until, the time
// (microseconds) before which an attempt is refused. The delay is computed
// here from the new count so that concurrent failures (an attacker sends
// many at once) each count; it only grows, since n does. The key lives
// Forget after the last failure (or the delay, if longer): then the
// subject starts again from nothing.
//
// KEYS[i] subject i; ARGV[1] now; per subject i, from ARGV[4i-2]: free,
// base (µs), max (µs), forget (ms). Returns the longest delay set (µs).
const failScript = `
local now = tonumber(ARGV[1])
local longest = 0
for i = 1, #KEYS do
	local j = 4 * i - 2
	local free, base, cap, forget = tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])
	local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
	local delay = 0
	if n > free then
		delay = base
		for _ = free + 2, n do
			if delay >= cap then
				break
			end
			delay = delay * 2
		end
		if delay > cap then
			delay = cap
		end
	end
	redis.call('HSET', KEYS[i], 'until', string.format('%d', now + delay))
	local keep = math.floor(delay / 1000) + 1
	if forget > keep then
		keep = forget
	end
	redis.call('PEXPIRE', KEYS[i], string.format('%d', keep))
	if delay > longest then
		longest = delay
	end
end
return longest
`

// waitScript says how long until every subject may try again.
//
// KEYS[i] subject i; ARGV[1] now. Returns {wait (µs), the 1-based index
// of the subject that waits longest, or 0}.
const waitScript = `
local now = tonumber(ARGV[1])
local wait, which = 0, 0
for i = 1, #KEYS do
	local till = tonumber(redis.call('HGET', KEYS[i], 'until') or '0')
	if till - now > wait then
		wait, which = till - now, i
	end
end
return {wait, which}
`

// Subject is a rule applied to one key, such as the rule "account" to a
// tenant and an email.
type Subject struct {
	Key  string
	Rule BackoffRule
}

// Backoff delays attempts after failures.
type Backoff struct {
	*guard
	rdb    goredis.UniversalClient
	prefix string
	fail   *goredis.Script
	wait   *goredis.Script
}

// NewBackoff returns a backoff whose keys start with prefix+"fail:";
// name names it in logs and metrics ("login"). clock nil means the
// system clock.
func NewBackoff(rdb goredis.UniversalClient, prefix, name string, tel *telemetry.Telemetry, clock retry.Clock) (*Backoff, error) {
	g, err := newGuard(name, tel, clock)
	if err != nil {
		return nil, err
	}
	return &Backoff{guard: g, rdb: rdb, prefix: prefix + "fail:", fail: goredis.NewScript(failScript), wait: goredis.NewScript(waitScript)}, nil
}

func (b *Backoff) keys(subjects []Subject) []string {
	keys := make([]string, len(subjects))
	for i, s := range subjects {
		keys[i] = b.prefix + s.Key
	}
	return keys
}

// Wait returns how long until an attempt of every subject is allowed (0:
// now), and the subject that waits longest. Call it before the attempt
// is checked: a refused attempt costs nothing and counts as no failure,
// so that an attacker hammering a locked account does not keep its owner
// locked out longer than the rule's Max after they stop.
func (b *Backoff) Wait(ctx context.Context, subjects ...Subject) (time.Duration, Subject) {
	if len(subjects) == 0 {
		return 0, Subject{}
	}
	res, err := b.wait.Run(ctx, b.rdb, b.keys(subjects), b.clock.Now().UnixMicro()).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("the wait script answered %d numbers, want 2", len(res))
	}
	if err != nil {
		b.failOpen(ctx, "wait", err)
		return 0, Subject{}
	}
	if res[0] <= 0 || res[1] < 1 || int(res[1]) > len(subjects) {
		return 0, Subject{}
	}
	s := subjects[res[1]-1]
	b.denied.Add(ctx, 1, metric.WithAttributes(attribute.String("limiter", b.name), attribute.String("rule", s.Rule.Name)))
	return time.Duration(res[0]) * time.Microsecond, s
}

// Fail records a failed attempt of every subject and returns the longest
// delay it now imposes.
func (b *Backoff) Fail(ctx context.Context, subjects ...Subject) time.Duration {
	if len(subjects) == 0 {
		return 0
	}
	args := []any{b.clock.Now().UnixMicro()}
	for _, s := range subjects {
		args = append(args, s.Rule.Free, s.Rule.Base.Microseconds(), s.Rule.Max.Microseconds(), s.Rule.Forget.Milliseconds())
	}
	delay, err := b.fail.Run(ctx, b.rdb, b.keys(subjects), args...).Int64()
	if err != nil {
		b.failOpen(ctx, "fail", err)
		return 0
	}
	return time.Duration(delay) * time.Microsecond
}

// Reset forgets the failures of subjects, after a success.
func (b *Backoff) Reset(ctx context.Context, subjects ...Subject) {
	if len(subjects) == 0 {
		return
	}
	if err := b.rdb.Del(ctx, b.keys(subjects)...).Err(); err != nil {
		b.failOpen(ctx, "reset", err)
	}
}
