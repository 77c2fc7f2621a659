// Package fire runs the loop that fires timers: it sleeps until the
// earliest pending timer is due (or a notification says an earlier one was
// set), takes the due timers with FOR UPDATE SKIP LOCKED, publishes their
// commands to sb.inbox.commands.v1 and marks them fired, in one
// transaction. A crash between the publication and the commit publishes
// them again with the same ids, which the inbox applies once.
package fire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/store"
)

// EventSource is the CloudEvents source of the commands the scheduler
// sends; the inbox audits them as done by "scheduler".
const EventSource = "switchboard/scheduler"

// Options tune the loop.
type Options struct {
	// Batch is the most timers fired in one transaction.
	Batch int
	// MaxSleep is the longest the loop sleeps without looking at the
	// table, should a notification be lost.
	MaxSleep time.Duration
	// Clock gives the time; nil means the system clock.
	Clock retry.Clock
}

// Loop fires timers.
type Loop struct {
	store    *store.Store
	producer *bus.Producer
	opts     Options
	log      *slog.Logger
	policy   retry.Policy
	running  atomic.Bool

	fired    metric.Int64Counter
	lateness metric.Float64Histogram
	failures metric.Int64Counter
}

// New builds the loop.
func New(s *store.Store, producer *bus.Producer, tel *telemetry.Telemetry, opts Options) (*Loop, error) {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.MaxSleep <= 0 {
		opts.MaxSleep = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = retry.SystemClock{}
	}
	l := &Loop{store: s, producer: producer, opts: opts, log: tel.Component("scheduler").With("loop", "fire"),
		policy: retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}}
	m := tel.Meter.Meter("switchboard/scheduler")
	var err error
	if l.fired, err = m.Int64Counter("switchboard.scheduler.fired", metric.WithDescription("Timers fired (their command published to the inbox), by kind.")); err != nil {
		return nil, err
	}
	if l.lateness, err = m.Float64Histogram("switchboard.scheduler.fire.lateness", metric.WithUnit("s"),
		metric.WithDescription("Time from a timer's due time to the publication of its command."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...)); err != nil {
		return nil, err
	}
	if l.failures, err = m.Int64Counter("switchboard.scheduler.fire.failures", metric.WithDescription("Fire rounds that failed and were retried.")); err != nil {
		return nil, err
	}
	return l, nil
}

// Ready reports whether the loop runs.
func (l *Loop) Ready(context.Context) error {
	if !l.running.Load() {
		return errors.New("the fire loop is not listening yet")
	}
	return nil
}

// Run fires timers until ctx is cancelled. Failures (the database or
// Kafka away) are retried with backoff.
func (l *Loop) Run(ctx context.Context) error {
	defer l.running.Store(false)
	for n := 1; ctx.Err() == nil; n++ {
		err := l.session(ctx)
		if ctx.Err() != nil {
			break
		}
		l.running.Store(false)
		l.failures.Add(ctx, 1)
		l.log.Warn("fire loop interrupted; retrying", "attempt", n, "error", err)
		if l.policy.Sleep(ctx, l.opts.Clock, n) != nil {
			break
		}
	}
	return nil
}

// session listens on one connection and fires until an error or ctx.
func (l *Loop) session(ctx context.Context) error {
	conn, err := pg.Dedicated(ctx, l.store.Pool())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := pg.Listen(ctx, conn, store.NotifyChannel); err != nil {
		return err
	}
	l.running.Store(true)
	for {
		n, err := l.fireBatch(ctx)
		if err != nil {
			return err
		}
		if n == l.opts.Batch {
			continue // more are due
		}
		wait := l.opts.MaxSleep
		next, ok, err := l.store.NextDue(ctx, conn)
		if err != nil {
			return err
		}
		if ok {
			wait = min(wait, next.Sub(l.opts.Clock.Now()))
		}
		if wait <= 0 {
			if n > 0 {
				continue
			}
			// Due, yet none taken: another replica holds them. Look again
			// shortly rather than spin.
			wait = 20 * time.Millisecond
		}
		if _, err := pg.Wait(ctx, conn, wait); err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// fireBatch fires the timers due now, at most a batch, and returns how
// many it fired.
func (l *Loop) fireBatch(ctx context.Context) (int, error) {
	var due []store.DueTimer
	now := l.opts.Clock.Now()
	err := l.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if due, err = store.TakeDue(ctx, tx, now, l.opts.Batch); err != nil || len(due) == 0 {
			return err
		}
		msgs := make([]kafka.Message, 0, len(due))
		ids := make([]string, 0, len(due))
		for _, t := range due {
			ev, err := events.NewWithID(t.ID, events.TypeInboxCommand, EventSource, t.Command.TenantID, now, t.Command)
			if err != nil {
				return fmt.Errorf("timer %s: %w", t.ID, err)
			}
			ev.Subject = t.Command.ConversationID
			msgs = append(msgs, ev.Message(ctx, events.TopicCommands, t.Key))
			ids = append(ids, t.ID)
		}
		if err := l.producer.PublishRecords(ctx, msgs...); err != nil {
			return err
		}
		return store.MarkFired(ctx, tx, ids, now)
	})
	if err != nil {
		return 0, fmt.Errorf("fire timers: %w", err)
	}
	for _, t := range due {
		attrs := metric.WithAttributes(attribute.String("kind", t.Kind))
		l.fired.Add(ctx, 1, attrs)
		l.lateness.Record(ctx, now.Sub(t.DueAt).Seconds(), attrs)
	}
	return len(due), nil
}
