package sendledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// details stands for a channel's own fields.
type details struct {
	Sender   string `json:"sender,omitempty"`
	Segments int    `json:"segments,omitempty"`
}

const lease = time.Minute

// t0 is the tests' clock: times are passed in, never read.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func newLedger(t *testing.T) (*sendledger.Ledger[details], *pgxpool.Pool) {
	t.Helper()
	pool := testkit.Postgres(t)
	l := sendledger.New[details](pool, "chat")
	ctx := testkit.Context(t)
	require.NoError(t, l.Migrate(ctx))
	require.NoError(t, l.Migrate(ctx), "migrating twice is harmless")
	return l, pool
}

func ref(id string) sendledger.Ref {
	return sendledger.Ref{ID: id, TenantID: "t-1", ChannelAccountID: "acct-1", ConversationID: "c-" + id}
}

func attempt(id string, at time.Time) sendledger.Attempt[details] {
	return sendledger.Attempt[details]{Ref: ref(id), Lease: lease, At: at}
}

func begin(t *testing.T, l *sendledger.Ledger[details], a sendledger.Attempt[details], want sendledger.Verdict) sendledger.Send[details] {
	t.Helper()
	s, v, err := l.Begin(testkit.Context(t), a)
	require.NoError(t, err)
	require.Equal(t, want, v, "verdict of Begin on %s", a.ID)
	return s
}

func count(t *testing.T, pool *pgxpool.Pool, id string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(testkit.Context(t), `SELECT count(*) FROM chat.send_ledger WHERE id = $1`, id).Scan(&n))
	return n
}

func TestBegin(t *testing.T) {
	l, pool := newLedger(t)
	ctx := testkit.Context(t)

	t.Run("begin twice: one row, the second finds it busy", func(t *testing.T) {
		a := attempt("m-twice", t0)
		a.Details = &details{Sender: "+15005550006", Segments: 2}
		first := begin(t, l, a, sendledger.Proceed)
		require.Equal(t, sendledger.StateAttempting, first.State)
		require.Equal(t, 1, first.Attempts)
		require.NotEmpty(t, first.Claim)
		require.Equal(t, t0.Add(lease), first.ClaimedUntil.UTC())
		require.Equal(t, t0, first.InDoubtSince.UTC(), "an attempt is in doubt until its outcome is known")
		require.Equal(t, details{Sender: "+15005550006", Segments: 2}, first.Details)
		require.Equal(t, ref("m-twice"), first.Ref)

		second := begin(t, l, attempt("m-twice", t0.Add(time.Second)), sendledger.Busy)
		require.Equal(t, first.Claim, second.Claim)
		require.Equal(t, 1, second.Attempts, "a busy send counts no attempt")
		require.Equal(t, 1, count(t, pool, "m-twice"))
		require.Equal(t, details{Sender: "+15005550006", Segments: 2}, second.Details, "details are kept when none are given")
	})

	t.Run("an attempt that failed for sure is retried", func(t *testing.T) {
		s := begin(t, l, attempt("m-retry", t0), sendledger.Proceed)
		next := t0.Add(30 * time.Second)
		r, err := l.Retry(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, Reason: "HTTP 429", Answer: "429 Too Many Requests",
			Resolved: true, NextAttemptAt: next, At: t0.Add(time.Second)})
		require.NoError(t, err)
		require.Equal(t, sendledger.StatePending, r.State)
		require.Empty(t, r.Claim)
		require.True(t, r.ClaimedUntil.IsZero())
		require.False(t, r.InDoubt(), "a refusal ends the doubt")
		require.Equal(t, next, r.NextAttemptAt.UTC())
		require.Equal(t, "HTTP 429", r.LastError)
		require.Equal(t, "429 Too Many Requests", r.Answer)

		again := begin(t, l, attempt("m-retry", t0.Add(2*time.Second)), sendledger.Proceed)
		require.Equal(t, 2, again.Attempts)
		require.NotEqual(t, s.Claim, again.Claim)
		require.True(t, again.NextAttemptAt.IsZero())
		require.Equal(t, "HTTP 429", again.LastError, "the last failure stays for the record")
	})

	t.Run("a retry by a worker whose claim was taken over changes nothing", func(t *testing.T) {
		old := begin(t, l, attempt("m-stale", t0), sendledger.Proceed)
		// The first worker's claim ran out; a second one took the send.
		cur := begin(t, l, attempt("m-stale", t0.Add(2*lease)), sendledger.InDoubt)
		_, err := l.Retry(ctx, sendledger.Outcome[details]{Ref: old.Ref, Claim: old.Claim, Reason: "late", At: t0.Add(2*lease + time.Second)})
		require.ErrorIs(t, err, sendledger.ErrClaimed)
		_, err = l.Failed(ctx, sendledger.Outcome[details]{Ref: old.Ref, Claim: old.Claim, Reason: "late", At: t0.Add(2*lease + time.Second)})
		require.ErrorIs(t, err, sendledger.ErrClaimed)
		got, ok, err := l.Get(ctx, "m-stale")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, cur.Claim, got.Claim)
		require.Empty(t, got.LastError)
	})

	t.Run("invalid attempts", func(t *testing.T) {
		_, _, err := l.Begin(ctx, sendledger.Attempt[details]{Ref: sendledger.Ref{ID: "m-x"}, Lease: lease})
		require.Error(t, err)
		_, _, err = l.Begin(ctx, sendledger.Attempt[details]{Ref: ref("m-x")})
		require.Error(t, err)
		_, err = l.Retry(ctx, sendledger.Outcome[details]{Ref: ref("m-never")})
		require.ErrorIs(t, err, sendledger.ErrNotFound)
		begin(t, l, attempt("m-tenant", t0), sendledger.Proceed)
		a := attempt("m-tenant", t0)
		a.TenantID = "t-2"
		_, _, err = l.Begin(ctx, a)
		require.ErrorContains(t, err, "belongs to tenant t-1")
	})
}

func TestInDoubt(t *testing.T) {
	l, _ := newLedger(t)
	ctx := testkit.Context(t)

	t.Run("a worker that stopped mid-attempt leaves it in doubt", func(t *testing.T) {
		begin(t, l, attempt("m-crash", t0), sendledger.Proceed)
		// No outcome is recorded: the worker died. While its claim holds
		// the send is busy, then it is in doubt.
		begin(t, l, attempt("m-crash", t0.Add(lease-time.Second)), sendledger.Busy)
		after := t0.Add(lease)
		d := begin(t, l, attempt("m-crash", after), sendledger.InDoubt)
		require.Equal(t, 1, d.Attempts, "resolving a doubt is not an attempt")
		require.Equal(t, t0, d.InDoubtSince.UTC())
		require.Equal(t, after.Add(lease), d.ClaimedUntil.UTC(), "the caller holds the send while it resolves the doubt")
		begin(t, l, attempt("m-crash", after.Add(time.Second)), sendledger.Busy)

		// The channel attempts again (email: the same Message-ID).
		a := attempt("m-crash", after.Add(2*time.Second))
		a.Claim, a.Resend = d.Claim, true
		again := begin(t, l, a, sendledger.Proceed)
		require.Equal(t, 2, again.Attempts)
		require.Equal(t, after.Add(2*time.Second), again.InDoubtSince.UTC(), "the doubt is the new attempt's")
	})

	t.Run("a doubt resolved by finding the message: adopted", func(t *testing.T) {
		s := begin(t, l, attempt("m-adopt", t0), sendledger.Proceed)
		// A 502 from a gateway: the provider may have the message.
		r, err := l.Retry(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, Reason: "HTTP 502", At: t0.Add(time.Second)})
		require.NoError(t, err)
		require.True(t, r.InDoubt())
		require.Equal(t, sendledger.StatePending, r.State)

		d := begin(t, l, attempt("m-adopt", t0.Add(2*time.Second)), sendledger.InDoubt)
		sent, err := l.Sent(ctx, sendledger.Outcome[details]{Ref: d.Ref, Claim: d.Claim, ProviderID: "SM-adopted", Answer: "queued", At: t0.Add(3 * time.Second)})
		require.NoError(t, err)
		require.Equal(t, sendledger.StateSent, sent.State)
		require.Equal(t, 1, sent.Attempts)
		require.False(t, sent.InDoubt())
		require.Equal(t, "HTTP 502", sent.LastError)
	})

	t.Run("a failure to look for the message keeps the doubt", func(t *testing.T) {
		s := begin(t, l, attempt("m-look", t0), sendledger.Proceed)
		_, err := l.Retry(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, Reason: "timeout", At: t0.Add(time.Second)})
		require.NoError(t, err)
		d := begin(t, l, attempt("m-look", t0.Add(2*time.Second)), sendledger.InDoubt)
		r, err := l.Retry(ctx, sendledger.Outcome[details]{Ref: d.Ref, Claim: d.Claim, Reason: "list unavailable", At: t0.Add(3 * time.Second)})
		require.NoError(t, err)
		require.True(t, r.InDoubt())
		require.Equal(t, t0, r.InDoubtSince.UTC())
		require.Equal(t, 1, r.Attempts)
		begin(t, l, attempt("m-look", t0.Add(4*time.Second)), sendledger.InDoubt)
	})
}

func TestOutcomes(t *testing.T) {
	l, _ := newLedger(t)
	ctx := testkit.Context(t)

	t.Run("sent is final", func(t *testing.T) {
		s := begin(t, l, attempt("m-sent", t0), sendledger.Proceed)
		done := t0.Add(time.Second)
		sent, err := l.Sent(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, ProviderID: "p-1", Answer: "250 2.0.0 Ok: queued as 4F2A",
			Details: &details{Segments: 3}, At: done})
		require.NoError(t, err)
		require.Equal(t, sendledger.StateSent, sent.State)
		require.True(t, sent.Final())
		require.Equal(t, "p-1", sent.ProviderID)
		require.Equal(t, "250 2.0.0 Ok: queued as 4F2A", sent.Answer)
		require.Equal(t, details{Segments: 3}, sent.Details)
		require.Equal(t, done, sent.UpdatedAt.UTC())
		require.Empty(t, sent.Claim)

		later := t0.Add(time.Hour)
		got := begin(t, l, attempt("m-sent", later), sendledger.Settled)
		require.Equal(t, sent, got)
		a := attempt("m-sent", later)
		a.Resend = true
		begin(t, l, a, sendledger.Settled)
		for _, record := range []func(context.Context, sendledger.Outcome[details]) (sendledger.Send[details], error){l.Sent, l.Failed, l.Retry} {
			again, err := record(ctx, sendledger.Outcome[details]{Ref: s.Ref, ProviderID: "p-2", Reason: "late", At: later})
			require.NoError(t, err)
			require.Equal(t, sent, again, "an outcome is recorded once")
		}
		_, err = l.Replay(ctx, "t-1", "m-sent", later)
		require.ErrorIs(t, err, sendledger.ErrNotFailed)
	})

	t.Run("failed before any attempt", func(t *testing.T) {
		f, err := l.Failed(ctx, sendledger.Outcome[details]{Ref: ref("m-no-account"), Reason: "unknown account", At: t0})
		require.NoError(t, err)
		require.Equal(t, sendledger.StateFailed, f.State)
		require.Equal(t, 0, f.Attempts)
		require.Equal(t, "unknown account", f.LastError)
		require.Equal(t, ref("m-no-account"), f.Ref)
		begin(t, l, attempt("m-no-account", t0.Add(time.Second)), sendledger.Settled)
	})

	t.Run("failed while another worker holds the send changes nothing", func(t *testing.T) {
		begin(t, l, attempt("m-held", t0), sendledger.Proceed)
		_, err := l.Failed(ctx, sendledger.Outcome[details]{Ref: ref("m-held"), Reason: "no", At: t0.Add(time.Second)})
		require.ErrorIs(t, err, sendledger.ErrClaimed)
	})

	t.Run("provider ids are a tenant's sends' own", func(t *testing.T) {
		s := begin(t, l, attempt("m-p1", t0), sendledger.Proceed)
		_, err := l.Sent(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, ProviderID: "SM1", At: t0})
		require.NoError(t, err)
		s2 := begin(t, l, attempt("m-p2", t0), sendledger.Proceed)
		_, err = l.Sent(ctx, sendledger.Outcome[details]{Ref: s2.Ref, Claim: s2.Claim, ProviderID: "SM1", At: t0})
		require.ErrorIs(t, err, sendledger.ErrProviderIDTaken)

		other := sendledger.Attempt[details]{Ref: sendledger.Ref{ID: "m-other-tenant", TenantID: "t-2"}, Lease: lease, At: t0, ProviderID: "SM1"}
		begin(t, l, other, sendledger.Proceed)

		claimed, err := l.Claimed(ctx, "t-1", "m-p2", []string{"SM1", "SM2"})
		require.NoError(t, err)
		require.Equal(t, map[string]bool{"SM1": true}, claimed)
		claimed, err = l.Claimed(ctx, "t-1", "m-p1", []string{"SM1"})
		require.NoError(t, err)
		require.Empty(t, claimed, "a send's own provider id is not another's")

		got, ok, err := l.FindByProviderID(ctx, "t-1", "SM1")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "m-p1", got.ID)
		got, ok, err = l.FindByProviderID(ctx, "t-2", "SM1")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "m-other-tenant", got.ID, "known before sending (a Message-ID)")
		_, ok, err = l.FindByProviderID(ctx, "t-3", "SM1")
		require.NoError(t, err)
		require.False(t, ok)
	})
}

func TestFailedAndReplay(t *testing.T) {
	l, _ := newLedger(t)
	ctx := testkit.Context(t)

	// Five failed sends of t-1 a minute apart, one of t-2, one sent.
	for i := range 5 {
		s := begin(t, l, attempt(fmt.Sprintf("m-f%d", i), t0), sendledger.Proceed)
		_, err := l.Failed(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, Reason: fmt.Sprintf("HTTP 410 (%d)", i),
			Answer: "410 Gone", At: t0.Add(time.Duration(i) * time.Minute)})
		require.NoError(t, err)
	}
	_, err := l.Failed(ctx, sendledger.Outcome[details]{Ref: sendledger.Ref{ID: "m-t2", TenantID: "t-2"}, Reason: "no", At: t0})
	require.NoError(t, err)
	_, err = l.Sent(ctx, sendledger.Outcome[details]{Ref: ref("m-ok"), At: t0})
	require.NoError(t, err)

	ids := func(ss []sendledger.Send[details]) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.ID
		}
		return out
	}
	first, err := l.ListFailed(ctx, "t-1", sendledger.Page{Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"m-f4", "m-f3", "m-f2"}, ids(first), "the latest failure first")
	require.Equal(t, "HTTP 410 (4)", first[0].LastError)
	require.Equal(t, "410 Gone", first[0].Answer)
	rest, err := l.ListFailed(ctx, "t-1", sendledger.Page{Limit: 3, After: first[2].Cursor()})
	require.NoError(t, err)
	require.Equal(t, []string{"m-f1", "m-f0"}, ids(rest))
	other, err := l.ListFailed(ctx, "t-2", sendledger.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{"m-t2"}, ids(other))

	at := t0.Add(time.Hour)
	r, err := l.Replay(ctx, "t-1", "m-f4", at)
	require.NoError(t, err)
	require.Equal(t, sendledger.StatePending, r.State)
	require.Equal(t, 0, r.Attempts, "a replayed send has every attempt again")
	require.Equal(t, at, r.NextAttemptAt.UTC())
	require.Equal(t, "HTTP 410 (4)", r.LastError)
	due, err := l.Due(ctx, at, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"m-f4"}, ids(due))

	s := begin(t, l, attempt("m-f4", at), sendledger.Proceed)
	require.Equal(t, 1, s.Attempts)
	left, err := l.ListFailed(ctx, "t-1", sendledger.Page{})
	require.NoError(t, err)
	require.Equal(t, []string{"m-f3", "m-f2", "m-f1", "m-f0"}, ids(left))

	_, err = l.Replay(ctx, "t-2", "m-f3", at)
	require.ErrorIs(t, err, sendledger.ErrNotFound, "another tenant's send")
	_, err = l.Replay(ctx, "t-1", "m-none", at)
	require.ErrorIs(t, err, sendledger.ErrNotFound)
	_, err = l.Replay(ctx, "t-1", "m-f4", at)
	require.ErrorIs(t, err, sendledger.ErrNotFailed)
}

func TestDue(t *testing.T) {
	l, _ := newLedger(t)
	ctx := testkit.Context(t)

	// m-later is due in a minute, m-now now, m-held is held, m-dead's
	// worker stopped and its claim ran out, m-done is sent.
	for _, id := range []string{"m-later", "m-now"} {
		s := begin(t, l, attempt(id, t0), sendledger.Proceed)
		next := t0
		if id == "m-later" {
			next = t0.Add(time.Minute)
		}
		_, err := l.Retry(ctx, sendledger.Outcome[details]{Ref: s.Ref, Claim: s.Claim, Resolved: true, NextAttemptAt: next, At: t0})
		require.NoError(t, err)
	}
	now := t0.Add(10 * time.Second)
	begin(t, l, attempt("m-held", now), sendledger.Proceed)
	begin(t, l, attempt("m-dead", now.Add(-lease-time.Second)), sendledger.Proceed)
	_, err := l.Sent(ctx, sendledger.Outcome[details]{Ref: ref("m-done"), At: t0})
	require.NoError(t, err)

	due, err := l.Due(ctx, now, 10)
	require.NoError(t, err)
	got := make([]string, len(due))
	for i, s := range due {
		got[i] = s.ID
	}
	require.Equal(t, []string{"m-now", "m-dead"}, got)
	due, err = l.Due(ctx, now.Add(time.Minute), 1)
	require.NoError(t, err)
	require.Len(t, due, 1)
}

// TestConcurrentBegin: workers beginning the same sends at once; for each
// send exactly one proceeds.
func TestConcurrentBegin(t *testing.T) {
	l, pool := newLedger(t)
	ctx := testkit.Context(t)
	const workers, sends = 6, 20
	var mu sync.Mutex
	proceeded := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, workers*sends)
	for range workers {
		wg.Go(func() {
			<-start
			for i := range sends {
				id := fmt.Sprintf("m-race-%d", i)
				_, v, err := l.Begin(ctx, attempt(id, t0))
				if err != nil {
					errs <- err
					continue
				}
				if v == sendledger.Proceed {
					mu.Lock()
					proceeded[id]++
					mu.Unlock()
				} else if v != sendledger.Busy {
					errs <- fmt.Errorf("send %s: verdict %v, want proceed or busy", id, v)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, proceeded, sends)
	for id, n := range proceeded {
		require.Equal(t, 1, n, "send %s proceeded %d times", id, n)
		require.Equal(t, 1, count(t, pool, id))
		s, ok, err := l.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, 1, s.Attempts)
	}
}

// TestSchemas: each connector's ledger is its own.
func TestSchemas(t *testing.T) {
	pool := testkit.Postgres(t)
	ctx := testkit.Context(t)
	email := sendledger.New[struct{}](pool, "email")
	sms := sendledger.New[details](pool, "sms")
	require.NoError(t, email.Migrate(ctx))
	require.NoError(t, sms.Migrate(ctx))
	_, v, err := email.Begin(ctx, sendledger.Attempt[struct{}]{Ref: ref("m-1"), Lease: lease, At: t0})
	require.NoError(t, err)
	require.Equal(t, sendledger.Proceed, v)
	_, ok, err := sms.Get(ctx, "m-1")
	require.NoError(t, err)
	require.False(t, ok)
}

// stepClock records the waits asked of it and never waits.
type stepClock struct {
	now   time.Time
	waits []time.Duration
}

func (c *stepClock) Now() time.Time { return c.now }
func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.waits = append(c.waits, d)
	ch := make(chan time.Time, 1)
	ch <- c.now.Add(d)
	return ch
}

func TestWaitClaim(t *testing.T) {
	ctx := testkit.Context(t)
	c := &stepClock{now: t0}
	for _, until := range []time.Time{t0.Add(2 * time.Second), t0.Add(time.Hour), t0.Add(-time.Second)} {
		require.NoError(t, sendledger.WaitClaim(ctx, c, sendledger.Send[details]{ClaimedUntil: until}))
	}
	require.Equal(t, []time.Duration{2 * time.Second, 5 * time.Second, 50 * time.Millisecond}, c.waits,
		"until the claim ends, polling every few seconds at most")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	blocked := &blockedClock{}
	require.ErrorIs(t, sendledger.WaitClaim(cctx, blocked, sendledger.Send[details]{ClaimedUntil: t0}), context.Canceled)
}

// blockedClock's timers never fire.
type blockedClock struct{}

func (blockedClock) Now() time.Time                       { return t0 }
func (blockedClock) After(time.Duration) <-chan time.Time { return nil }
