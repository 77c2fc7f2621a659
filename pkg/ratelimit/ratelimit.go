// Package ratelimit limits how often something may happen, counted in
// Redis so that every replica shares the count:
//
//   - Limiter is a request rate (the inbox API per token and per tenant,
//     the chat and SMS webhooks per channel): the generic cell rate
//     algorithm (GCRA) over one or more keys, checked and recorded in one
//     Lua script, one round trip.
//   - Backoff is a delay that grows with failures (logins per account and
//     per client address): a few free failures, then a wait that doubles
//     with each further one, up to a maximum.
//
// Both fail open. Redis holds nothing durable here, and a limit that
// cannot be counted must not take the service down with it: when Redis
// does not answer, the request is allowed, the switchboard.ratelimit.
// unavailable counter counts it, and a warning is logged, at most once a
// minute per limiter so that an outage does not flood the logs.
//
// Times come from the injected clock, not from Redis, so that tests
// control them; servers sharing a Redis should keep their clocks in sync
// (NTP), as skew between them shifts the limits by that much.
package ratelimit

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// logEvery is the least time between two warnings that Redis did not
// answer, per limiter.
const logEvery = time.Minute

// Rule is a rate: Rate requests a second on average, Burst of them at
// once after a quiet spell.
type Rule struct {
	// Name names the rule in RateLimit headers and metrics, such as
	// "token" or "tenant".
	Name string
	// Rate is the sustained rate, in requests a second; 0 turns the rule
	// off.
	Rate float64
	// Burst is how many requests may come back to back; at least 1.
	Burst int
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.Rate <= 0 }

// interval is the GCRA emission interval, 1/Rate, in whole microseconds
// (at least 1).
func (r Rule) interval() int64 {
	return max(1, int64(math.Round(1e6/r.Rate)))
}

// Window is how long a full burst takes to come back: Burst / Rate.
func (r Rule) Window() time.Duration {
	return time.Duration(r.interval()*int64(max(r.Burst, 1))) * time.Microsecond
}

// RegisterFlags declares name.rate and name.burst, with their defaults;
// who says whose requests are counted ("one API token on the inbox
// API"), why what the limit is for (a sentence, or "").
func (r *Rule) RegisterFlags(f *flag.FlagSet, name string, rate float64, burst int, who, why string) {
	if why != "" {
		why = " " + why
	}
	f.Float64Var(&r.Rate, name+".rate", rate, fmt.Sprintf("Requests a second that %s may make on average, counted in Redis for every replica together; more get 429 with Retry-After.%s 0 turns this limit off.", who, why))
	f.IntVar(&r.Burst, name+".burst", burst, fmt.Sprintf("Requests that %s may make back to back above -%s.rate, after a quiet spell; at least 1.", who, name))
}

// Check validates the rule's settings, registered as name.rate and
// name.burst.
func (r Rule) Check(ck *config.Checker, name string) {
	ck.Check(r.Rate >= 0 && r.Rate <= 1e6, name+".rate", fmt.Sprintf("must be from 0 to 1000000, got %g", r.Rate), "set requests a second such as 20, or 0 for no limit")
	ck.Check(r.Off() || r.Burst >= 1, name+".burst", fmt.Sprintf("must be at least 1, got %d", r.Burst), "set a burst such as 50")
}

// Limit is one rule applied to one key, such as the rule "tenant" to a
// tenant's id.
type Limit struct {
	Key  string
	Rule Rule
}

// Decision is what Allow decided.
type Decision struct {
	// Allowed says whether the request may go on.
	Allowed bool
	// Rule is the rule that refused the request, or else the one with the
	// fewest requests left; zero when no rule applied.
	Rule Rule
	// Remaining is how many more requests Rule allows now.
	Remaining int
	// RetryAfter is, on a refusal, how long until a request is allowed.
	RetryAfter time.Duration
	// Reset is how long until Rule's full burst is back.
	Reset time.Duration
	// Degraded means Redis did not answer and the request was allowed
	// without being counted.
	Degraded bool
}

// gcraScript checks every limit and records the request against all of
// them, or against none when one refuses it: a refused request costs
// nothing, so a caller refused by its token's limit does not use up its
// tenant's.
//
// GCRA keeps one number per key, the theoretical arrival time (TAT) of the
// next request if requests came exactly at the rate. A request at now is
// allowed when TAT - now <= T * (B - 1), T being the emission interval
// (1/rate) and B the burst, i.e. when the new TAT (max(TAT, now) + T) is at
// most now + T*B; it then stores the new TAT. A key untouched for T*B
// holds no information (max(TAT, now) = now), so it expires then.
//
// Numbers are microseconds: a timestamp is about 1.8e15, within the 2^53
// that Lua's doubles hold exactly; string.format('%d') writes them whole
// (see redis/lock.go on Redis's %.14g).
//
// KEYS[i] the key of limit i; ARGV[1] now; ARGV[2i] T of limit i,
// ARGV[2i+1] B of limit i. Returns {allowed (0/1), retry after, then per
// limit: remaining, reset}.
const gcraScript = `
local now = tonumber(ARGV[1])
local tats = {}
local allowed = 1
local retry = 0
for i = 1, #KEYS do
	local t = tonumber(ARGV[2 * i])
	local b = tonumber(ARGV[2 * i + 1])
	local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
	if tat < now then
		tat = now
	end
	tats[i] = tat
	local allow_at = tat + t - t * b
	if allow_at > now then
		allowed = 0
		if allow_at - now > retry then
			retry = allow_at - now
		end
	end
end
local out = {allowed, retry}
for i = 1, #KEYS do
	local t = tonumber(ARGV[2 * i])
	local b = tonumber(ARGV[2 * i + 1])
	local tat = tats[i]
	if allowed == 1 then
		tat = tat + t
		redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', string.format('%d', math.floor((tat - now) / 1000) + 1))
	end
	local remaining = math.floor((now + t * b - tat) / t)
	if remaining < 0 then
		remaining = 0
	end
	out[#out + 1] = remaining
	out[#out + 1] = tat - now
end
return out
`

// guard is what Limiter and Backoff share: the fail-open bookkeeping.
type guard struct {
	name        string
	clock       retry.Clock
	log         *slog.Logger
	unavailable metric.Int64Counter
	denied      metric.Int64Counter
	lastLog     atomic.Int64
}

func newGuard(name string, tel *telemetry.Telemetry, clock retry.Clock) (*guard, error) {
	if clock == nil {
		clock = retry.SystemClock{}
	}
	g := &guard{name: name, clock: clock, log: tel.Component("ratelimit").With("limiter", name)}
	m := tel.Meter.Meter("switchboard/ratelimit")
	var err error
	if g.unavailable, err = m.Int64Counter("switchboard.ratelimit.unavailable",
		metric.WithDescription("Requests allowed without being counted because Redis did not answer (the limits fail open), by limiter.")); err != nil {
		return nil, fmt.Errorf("ratelimit metrics: %w", err)
	}
	if g.denied, err = m.Int64Counter("switchboard.ratelimit.denied",
		metric.WithDescription("Requests refused with 429, by limiter and rule.")); err != nil {
		return nil, fmt.Errorf("ratelimit metrics: %w", err)
	}
	return g, nil
}

// failOpen counts a Redis failure, and logs it unless one was logged less
// than logEvery ago.
func (g *guard) failOpen(ctx context.Context, what string, err error) {
	g.unavailable.Add(ctx, 1, metric.WithAttributes(attribute.String("limiter", g.name)))
	now := g.clock.Now().UnixNano()
	last := g.lastLog.Load()
	if now-last < int64(logEvery) || !g.lastLog.CompareAndSwap(last, now) {
		return
	}
	g.log.WarnContext(ctx, "Redis did not answer; requests are allowed without a limit until it does", "check", what, "error", err)
}

// Limiter applies rates.
type Limiter struct {
	*guard
	rdb    goredis.UniversalClient
	prefix string
	script *goredis.Script
}

// NewLimiter returns a limiter whose keys start with prefix+"rate:"; name
// names it in logs and metrics ("api", "chat"). clock nil means the
// system clock.
func NewLimiter(rdb goredis.UniversalClient, prefix, name string, tel *telemetry.Telemetry, clock retry.Clock) (*Limiter, error) {
	g, err := newGuard(name, tel, clock)
	if err != nil {
		return nil, err
	}
	return &Limiter{guard: g, rdb: rdb, prefix: prefix + "rate:", script: goredis.NewScript(gcraScript)}, nil
}

// Allow counts one request against every limit whose rule is on, and
// says whether it may go on. A limit's key should name its rule too
// ("token:<id>"), as rules do not share keys.
func (l *Limiter) Allow(ctx context.Context, limits ...Limit) Decision {
	keys := make([]string, 0, len(limits))
	args := make([]any, 1, 1+2*len(limits))
	on := make([]Rule, 0, len(limits))
	for _, lim := range limits {
		if lim.Rule.Off() {
			continue
		}
		keys = append(keys, l.prefix+lim.Key)
		args = append(args, lim.Rule.interval(), max(lim.Rule.Burst, 1))
		on = append(on, lim.Rule)
	}
	if len(on) == 0 {
		return Decision{Allowed: true}
	}
	args[0] = l.clock.Now().UnixMicro()
	res, err := l.script.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err == nil && len(res) != 2+2*len(on) {
		err = fmt.Errorf("the rate script answered %d numbers, want %d", len(res), 2+2*len(on))
	}
	if err != nil {
		l.failOpen(ctx, "rate", err)
		return Decision{Allowed: true, Degraded: true}
	}
	d := Decision{Allowed: res[0] == 1, RetryAfter: time.Duration(res[1]) * time.Microsecond, Remaining: math.MaxInt}
	for i, r := range on {
		remaining, reset := int(res[2+2*i]), time.Duration(res[3+2*i])*time.Microsecond
		// On a refusal, the rule that refused is the one with nothing left
		// (the one that waits longest when several did).
		if d.Allowed && remaining < d.Remaining || !d.Allowed && remaining == 0 && reset >= d.Reset {
			d.Rule, d.Remaining, d.Reset = r, remaining, reset
		}
	}
	if !d.Allowed {
		l.denied.Add(ctx, 1, metric.WithAttributes(attribute.String("limiter", l.name), attribute.String("rule", d.Rule.Name)))
	}
	return d
}

// Seconds is d rounded up to whole seconds, at least 1: what Retry-After
// and the RateLimit headers carry.
func Seconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// secondsText is Seconds as a header value.
func secondsText(d time.Duration) string { return strconv.Itoa(Seconds(d)) }
