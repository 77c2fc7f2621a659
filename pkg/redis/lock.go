package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// Errors returned by Locker, wrapped with the resource; test with errors.Is.
var (
	// ErrHeld means another lease on the resource is live.
	ErrHeld = errors.New("lock is held by another holder")
	// ErrNotHeld means the lease expired or was released, and so may now
	// belong to someone else.
	ErrNotHeld = errors.New("lock is no longer held by this lease")
	// ErrFenced means a newer lease has been issued on the resource since
	// the presented token, so a write made under it must be refused.
	ErrFenced = errors.New("fencing token is stale")
)

// acquireScript takes the lock and issues its fencing token in one step, so
// that no two leases ever carry the same token and the token stored with
// the lock is the one returned.
//
// The token is max(fence + 1, Redis TIME in microseconds). fence + 1 alone
// would be monotonic only while Redis keeps its data; Redis here runs
// without persistence (and the embedded one is in memory), so after a
// restart the fence key is gone and a plain counter would restart at 1,
// handing out tokens smaller than ones PostgreSQL already stored, and every
// later assignment would be refused as stale. The clock floor keeps tokens
// above every token issued before the loss, as long as the Redis server's
// clock has not gone backwards across it. The fence + 1 term keeps tokens
// strictly increasing when two acquisitions fall in one microsecond or the
// clock steps back while the data survives.
//
// Numbers: Lua 5.1 numbers are doubles, exact up to 2^53 (about 9.0e15), and
// a microsecond timestamp is about 1.8e15, so the arithmetic is exact; but
// Redis's tostring, string concatenation and number arguments to redis.call
// format doubles with %.14g or similar, which prints 1.7634567891234e+15 and
// loses the last digits. string.format('%d') writes every digit.
//
// TIME is called before the writes; Redis 5 and later replicate a script's
// effects, not the script, so that is allowed. The token is computed before
// SET NX because it is part of the lock's value; the fence is written only
// when SET NX succeeded, so a refused attempt leaves no trace.
//
// The fence key has no TTL: it must outlive every lease and every stale
// holder's token. It costs one small key per resource ever locked.
//
// KEYS[1] lock key, KEYS[2] fence key; ARGV[1] holder, ARGV[2] TTL in ms.
// Returns the token as a decimal string, or false when the lock is held.
const acquireScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local token = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if now > token then
	token = now
end
local s = string.format('%d', token)
if not redis.call('SET', KEYS[1], ARGV[1] .. ':' .. s, 'NX', 'PX', ARGV[2]) then
	return false
end
redis.call('SET', KEYS[2], s)
return s
`

// releaseScript deletes the lock only if it still holds this lease's value;
// a plain DEL after expiry would delete the next holder's lock.
//
// KEYS[1] lock key; ARGV[1] holder:token. Returns 1 if deleted, else 0.
const releaseScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`

// extendScript renews the lock's TTL only if it still holds this lease's
// value, for the same reason as releaseScript.
//
// KEYS[1] lock key; ARGV[1] holder:token, ARGV[2] TTL in ms. Returns 1 if
// extended, else 0.
const extendScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

// Lease is a held lock. It is a value: Extend returns a new one.
type Lease struct {
	// Resource is what is locked, such as a conversation id.
	Resource string
	// Holder identifies the lease owner, such as an agent or worker id.
	Holder string
	// Token is the fencing token: larger than every token issued before on
	// the resource. Store it with whatever the lease authorises writing.
	Token int64
	// ExpiresAt is when the lease ends at the latest, by the Locker's clock.
	// It is measured from before the request was sent, so it errs early:
	// stop relying on the lease by then.
	ExpiresAt time.Time
}

// value is what the lock key holds while this lease is live. The token
// makes it unique even when a holder re-acquires the same resource, so a
// stale lease of that holder cannot release the new one.
func (l Lease) value() string { return l.Holder + ":" + strconv.FormatInt(l.Token, 10) }

// Locker hands out leases on named resources (an assignment lock per
// conversation, say) with fencing tokens, after Martin Kleppmann's "How to
// do distributed locking".
//
// A lease in Redis cannot by itself stop two holders writing: a holder can
// pause (GC, network, a slow query) past its TTL, another holder takes the
// lock, and the first resumes believing it still holds it. The fencing
// token closes that gap, but only where the write lands: the inbox stores
// the token with the assignment in PostgreSQL and refuses a write whose
// token is smaller than the stored one (see FenceOK), in the same
// transaction as the write. Check is a cheap early test for callers that
// want to give up before doing work; it is not a guard, because the lease
// can be lost between Check and the write.
type Locker struct {
	rdb     *goredis.Client
	prefix  string
	clock   retry.Clock
	acquire *goredis.Script
	release *goredis.Script
	extend  *goredis.Script
}

// NewLocker returns a Locker whose keys start with prefix: prefix+"lock:"+
// resource holds the lease and prefix+"fence:"+resource the last token
// issued. clock only computes Lease.ExpiresAt; nil means retry.SystemClock.
func NewLocker(rdb *goredis.Client, prefix string, clock retry.Clock) *Locker {
	if clock == nil {
		clock = retry.SystemClock{}
	}
	return &Locker{
		rdb:     rdb,
		prefix:  prefix,
		clock:   clock,
		acquire: goredis.NewScript(acquireScript),
		release: goredis.NewScript(releaseScript),
		extend:  goredis.NewScript(extendScript),
	}
}

func (l *Locker) lockKey(resource string) string  { return l.prefix + "lock:" + resource }
func (l *Locker) fenceKey(resource string) string { return l.prefix + "fence:" + resource }

// ttlMillis converts a TTL for PX and PEXPIRE, which count whole
// milliseconds; a TTL that rounds to zero would be rejected by Redis with an
// unhelpful message, so it is refused here.
func ttlMillis(ttl time.Duration) (int64, error) {
	ms := ttl.Milliseconds()
	if ms < 1 {
		return 0, fmt.Errorf("ttl %s is shorter than a millisecond", ttl)
	}
	return ms, nil
}

// Acquire takes the lock on resource for holder for ttl and returns the
// lease with a fresh fencing token. It returns an error wrapping ErrHeld
// when a lease on resource is live, even one of the same holder: a holder
// that wants more time calls Extend, so that two parts of one holder never
// both believe they own the lease.
func (l *Locker) Acquire(ctx context.Context, resource, holder string, ttl time.Duration) (Lease, error) {
	if resource == "" || holder == "" {
		return Lease{}, fmt.Errorf("acquire lock %q: resource and holder must not be empty", resource)
	}
	ms, err := ttlMillis(ttl)
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lock %s: %w", resource, err)
	}
	start := l.clock.Now()
	res, err := l.acquire.Run(ctx, l.rdb, []string{l.lockKey(resource), l.fenceKey(resource)}, holder, ms).Text()
	if errors.Is(err, goredis.Nil) {
		return Lease{}, fmt.Errorf("acquire lock %s: %w", resource, ErrHeld)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lock %s: %w", resource, err)
	}
	token, err := strconv.ParseInt(res, 10, 64)
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lock %s: parse fencing token %q: %w", resource, res, err)
	}
	return Lease{Resource: resource, Holder: holder, Token: token, ExpiresAt: start.Add(ttl)}, nil
}

// Release ends the lease. It returns an error wrapping ErrNotHeld when the
// lease had already expired (and the lock may belong to someone else, whose
// lease is left alone).
func (l *Locker) Release(ctx context.Context, lease Lease) error {
	n, err := l.release.Run(ctx, l.rdb, []string{l.lockKey(lease.Resource)}, lease.value()).Int64()
	if err != nil {
		return fmt.Errorf("release lock %s: %w", lease.Resource, err)
	}
	if n == 0 {
		return fmt.Errorf("release lock %s token %d: %w", lease.Resource, lease.Token, ErrNotHeld)
	}
	return nil
}

// Extend renews the lease for ttl from now and returns it with its new
// ExpiresAt; the token stays the same, since no one else held the lock in
// between. It returns an error wrapping ErrNotHeld when the lease was lost:
// the holder must then stop, because a newer token may already be in use.
func (l *Locker) Extend(ctx context.Context, lease Lease, ttl time.Duration) (Lease, error) {
	ms, err := ttlMillis(ttl)
	if err != nil {
		return Lease{}, fmt.Errorf("extend lock %s: %w", lease.Resource, err)
	}
	start := l.clock.Now()
	n, err := l.extend.Run(ctx, l.rdb, []string{l.lockKey(lease.Resource)}, lease.value(), ms).Int64()
	if err != nil {
		return Lease{}, fmt.Errorf("extend lock %s: %w", lease.Resource, err)
	}
	if n == 0 {
		return Lease{}, fmt.Errorf("extend lock %s token %d: %w", lease.Resource, lease.Token, ErrNotHeld)
	}
	lease.ExpiresAt = start.Add(ttl)
	return lease, nil
}

// Check is the fencing check against Redis: it returns an error wrapping
// ErrFenced when a token newer than token has been issued on resource, and
// nil otherwise, including when Redis has no fence for resource (after a
// data loss it cannot tell). It is advisory, an early exit before costly
// work; the guard that counts runs where the write lands, comparing with
// FenceOK against the token stored there.
func (l *Locker) Check(ctx context.Context, resource string, token int64) error {
	res, err := l.rdb.Get(ctx, l.fenceKey(resource)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check fence %s: %w", resource, err)
	}
	fence, err := strconv.ParseInt(res, 10, 64)
	if err != nil {
		return fmt.Errorf("check fence %s: parse stored token %q: %w", resource, res, err)
	}
	if !FenceOK(fence, token) {
		return fmt.Errorf("check fence %s: token %d is older than %d: %w", resource, token, fence, ErrFenced)
	}
	return nil
}

// FenceOK reports whether a write presenting token presented may replace
// state last written under token stored: it may unless a newer lease has
// written since. Equal tokens pass because one lease writes many times.
// Guards call it inside the transaction that performs the write, with the
// stored token read FOR UPDATE, then store presented along with the write.
func FenceOK(stored, presented int64) bool { return presented >= stored }
