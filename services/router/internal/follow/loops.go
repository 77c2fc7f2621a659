package follow

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// The loops: what no event tells. Each runs on every replica; what they
// take is taken atomically (TakeStale, the pending set), and the commands
// they may repeat have ids derived from their reason, so replicas never
// act twice.

// WatchPresence takes, every interval, the agents whose heartbeats
// stopped for a presence window: they are gone, their offers are
// withdrawn and re-offered at once. With interval half the window, an
// agent is taken within 1.5 windows of their last heartbeat.
func (r *Router) WatchPresence(ctx context.Context, interval time.Duration) error {
	return r.every(ctx, interval, "watch presence", r.takeGone)
}

func (r *Router) takeGone(ctx context.Context) error {
	tenants, err := r.view.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range tenants {
		gone, err := r.presence.TakeStale(ctx, t.String())
		if err != nil {
			return err
		}
		for _, s := range gone {
			agent, err := uuid.Parse(s)
			if err != nil {
				continue
			}
			a, err := r.view.Gone(ctx, t, agent, r.clock.Now())
			if err != nil {
				return err
			}
			r.log.Info("agent's heartbeats stopped; withdrawing their offers", "tenant", t, "agent", agent)
			if a.ID != uuid.Nil {
				if err := r.withState(ctx, t, func() error {
					_, err := r.state.SyncAgent(ctx, t, stateAgent(a))
					return err
				}); err != nil {
					return err
				}
			}
			if err := r.withdraw(ctx, t, agent); err != nil {
				return err
			}
		}
	}
	return nil
}

// Reap takes back, every interval, the decisions no event confirmed
// within their grace (the router died before its command went out, or
// the inbox refused it), and offers their conversations again.
func (r *Router) Reap(ctx context.Context, interval time.Duration) error {
	return r.every(ctx, interval, "take back unconfirmed decisions", func(ctx context.Context) error {
		overdue, err := r.state.Reap(ctx, 1000)
		if err != nil {
			return err
		}
		for _, o := range overdue {
			if err := r.drain(ctx, o.Tenant, o.Queue, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Requeue puts back in their queue, every interval, the conversations of
// agents gone for longer than the queue's requeue_offline_seconds.
func (r *Router) Requeue(ctx context.Context, interval time.Duration) error {
	return r.every(ctx, interval, "requeue the conversations of agents gone too long", func(ctx context.Context) error {
		convs, err := r.view.Overstayed(ctx, r.clock.Now(), 500)
		if err != nil {
			return err
		}
		for _, c := range convs {
			cmd := events.InboxCommand{TenantID: c.TenantID.String(), ConversationID: c.ID.String(), Kind: events.CommandRequeue,
				Expect: events.Expectation{State: c.State, StateVersion: c.StateVersion}}
			id := uuid.NewSHA1(commandSpace, fmt.Appendf(nil, "requeue|%s|%d", c.ID, c.StateVersion)).String()
			if err := r.send(ctx, command{id: id, key: c.Key, cmd: cmd}); err != nil {
				return err
			}
			r.withdrawals.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", events.CommandRequeue)))
		}
		return nil
	})
}

func (r *Router) every(ctx context.Context, interval time.Duration, what string, fn func(context.Context) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.After(interval):
		}
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("router loop failed; trying again", "loop", what, "error", err)
		}
	}
}
