package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// attempts is the ledger's attempt loop that a conversation's message
// (Handler) and a platform mail (MailHandler) share: each SMTP attempt is
// recorded first, a temporary failure is retried after a backoff until
// the policy's attempts are used up, a permanent one fails at once, an
// attempt in doubt is made again and one another consumer holds is
// waited for. What differs is what follows an outcome: the hooks.
type attempts struct {
	ledger *Ledger
	retry  retry.Policy
	lease  time.Duration
	clock  retry.Clock
	log    *slog.Logger
	// what names the thing sent in errors: "message" or "mail".
	what string
	// send makes one SMTP attempt.
	send func(ctx context.Context) error
	// sent records a success; o.At is unset.
	sent func(ctx context.Context, o sendledger.Outcome[Details]) error
	// fail records o as failed for good.
	fail func(ctx context.Context, o sendledger.Outcome[Details]) error
	// settled hears of an outcome the ledger recorded meanwhile (another
	// consumer finished it, or the last retry made it final).
	settled func(ctx context.Context, rec Record) error
}

// run sends ref, whose SMTP Message-ID is providerID, until an outcome is
// recorded; an error means it must be handled again later.
func (a attempts) run(ctx context.Context, ref sendledger.Ref, providerID string) error {
	var claim string
	resend := false
	for {
		cur, verdict, err := a.ledger.Begin(ctx, sendledger.Attempt[Details]{Ref: ref, Claim: claim, Resend: resend,
			Lease: a.lease, ProviderID: providerID, At: a.clock.Now()})
		if err != nil {
			return err
		}
		switch verdict {
		case sendledger.Settled:
			// Another consumer finished it meanwhile (a rebalance).
			return a.settled(ctx, cur)
		case sendledger.Busy:
			a.log.InfoContext(ctx, "another consumer is sending it; waiting for it", "until", cur.ClaimedUntil)
			if err := sendledger.WaitClaim(ctx, a.clock, cur); err != nil {
				return err
			}
			continue
		case sendledger.InDoubt:
			// SMTP cannot tell whether the server took it: send it again,
			// under the same Message-ID, which receivers collapse.
			a.log.WarnContext(ctx, "an earlier attempt may have reached the server; sending again with the same Message-ID",
				"attempts", cur.Attempts, "in_doubt_since", cur.InDoubtSince)
			claim, resend = cur.Claim, true
			continue
		}
		claim, resend = cur.Claim, false
		o := sendledger.Outcome[Details]{Ref: ref, Claim: claim, ProviderID: providerID}
		err = a.send(ctx)
		if err == nil {
			return a.sent(ctx, o)
		}
		if ctx.Err() != nil {
			// Stopping: let go of it, its attempt in doubt, so that the
			// next delivery need not wait for the claim to end.
			o.Reason, o.At = "interrupted: "+err.Error(), a.clock.Now()
			if _, rerr := a.ledger.Retry(context.WithoutCancel(ctx), o); rerr != nil {
				a.log.WarnContext(ctx, "could not release the interrupted attempt", "error", rerr)
			}
			return fmt.Errorf("send %s %s: %w", a.what, ref.ID, err)
		}
		o.Reason = err.Error()
		var se *SendError
		if errors.As(err, &se) {
			o.Reason = se.Reply
			if se.Code != 0 {
				// The server answered: it refused it.
				o.Answer, o.Resolved = se.Reply, true
			}
		}
		if IsPermanent(err) {
			a.log.WarnContext(ctx, "smtp server refused it", "attempt", cur.Attempts, "reply", o.Reason)
			return a.fail(ctx, o)
		}
		if a.retry.Exhausted(cur.Attempts) {
			o.Reason = fmt.Sprintf("gave up after %d attempts: %s", cur.Attempts, o.Reason)
			return a.fail(ctx, o)
		}
		a.log.InfoContext(ctx, "smtp attempt failed; will retry", "attempt", cur.Attempts, "error", err)
		delay := a.retry.Delay(cur.Attempts)
		o.At = a.clock.Now()
		o.NextAttemptAt = o.At.Add(delay)
		rec, err := a.ledger.Retry(ctx, o)
		if err != nil {
			return err
		}
		if rec.Final() {
			return a.settled(ctx, rec)
		}
		claim = ""
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait to retry %s %s: %w", a.what, ref.ID, ctx.Err())
		case <-a.clock.After(delay):
		}
	}
}

// defaults fills the zero settings both handlers share (retry policy,
// lease, clock) and returns the logger to use.
func defaults(policy *retry.Policy, lease *time.Duration, clock *retry.Clock, log *slog.Logger) *slog.Logger {
	if *policy == (retry.Policy{}) {
		*policy = retry.Default()
	}
	if *lease <= 0 {
		*lease = DefaultLease
	}
	if *clock == nil {
		*clock = retry.SystemClock{}
	}
	if log == nil {
		return slog.Default()
	}
	return log
}
