// Package commands applies what the scheduler and the router ask of the
// inbox (sb.inbox.commands.v1): wake a deferred conversation, offer one to
// an agent and take the offer back, send an automatic message, run smart
// close, raise an inactivity alert. Each goes through the same checked
// state machine, audit log and outbox as an agent's action, once per
// command id; a command whose conversation moved on changes nothing.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// ConsumerGroup is the group that reads sb.inbox.commands.v1 for the inbox.
const ConsumerGroup = "switchboard-inbox-commands"

// Handler applies commands.
type Handler struct {
	store    *store.Store
	clock    retry.Clock
	log      *slog.Logger
	applied  metric.Int64Counter
	missed   metric.Int64Counter
	lateness metric.Float64Histogram
}

// New builds the handler.
func New(s *store.Store, clock retry.Clock, log *slog.Logger, m metric.Meter) (*Handler, error) {
	h := &Handler{store: s, clock: clock, log: log}
	var err error
	if h.applied, err = m.Int64Counter("switchboard.inbox.commands", metric.WithDescription("Commands handled, by kind and outcome (applied, stale, missing, duplicate).")); err != nil {
		return nil, err
	}
	if h.missed, err = m.Int64Counter("switchboard.inbox.offers.missed", metric.WithDescription("Offers agents let lapse (each also counted on the agent: GET /v1/routing/agents).")); err != nil {
		return nil, err
	}
	if h.lateness, err = m.Float64Histogram("switchboard.inbox.command.lateness", metric.WithUnit("s"),
		metric.WithDescription("Time from a timer's due time to the inbox applying its command."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...)); err != nil {
		return nil, err
	}
	return h, nil
}

// Handle applies a batch of commands of one partition in one transaction.
// A command that cannot be read goes to the dead-letter topic; one whose
// conversation moved on is recorded as stale and changes nothing.
func (h *Handler) Handle(ctx context.Context, msgs []bus.Message) error {
	cmds := make([]store.Command, 0, len(msgs))
	for _, m := range msgs {
		if m.Event.Type != events.TypeInboxCommand {
			return bus.Permanent(fmt.Errorf("event %s: type %q is not handled on %s", m.Event.ID, m.Event.Type, m.Topic))
		}
		var in events.InboxCommand
		if err := m.Event.Decode(&in); err != nil {
			return bus.Permanent(err)
		}
		if in.TenantID != m.Event.Tenant {
			return bus.Permanent(fmt.Errorf("command %s: tenant_id %q does not match ce_tenant %q", m.Event.ID, in.TenantID, m.Event.Tenant))
		}
		cmd, err := store.NewCommand(m.Event.ID, sender(m.Event.Source), in)
		if err != nil {
			return bus.Permanent(fmt.Errorf("command %s: %w", m.Event.ID, err))
		}
		cmds = append(cmds, cmd)
	}
	now := h.clock.Now()
	outs, err := h.store.ApplyCommands(ctx, cmds, now, h.apply)
	if err != nil {
		if pg.IsTransient(err) {
			return bus.Transient(err)
		}
		return err
	}
	for _, o := range outs {
		h.applied.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", o.Command.Kind), attribute.String("outcome", o.Result)))
		if o.Result == store.OutcomeApplied && o.Command.Kind == events.CommandExpireOffer {
			h.missed.Add(ctx, 1)
		}
		if o.Result == store.OutcomeApplied && !o.Command.DueAt.IsZero() {
			h.lateness.Record(ctx, now.Sub(o.Command.DueAt).Seconds(), metric.WithAttributes(attribute.String("kind", o.Command.Kind)))
		}
		if o.Result == store.OutcomeStale || o.Result == store.OutcomeMissing {
			h.log.DebugContext(ctx, "command changed nothing", "command", o.Command.ID, "kind", o.Command.Kind,
				"conversation", o.Command.ConversationID, "outcome", o.Result, "reason", o.Reason)
		}
	}
	return nil
}

// sender names the service of a CloudEvents source (switchboard/scheduler).
func sender(source string) string {
	if s, ok := strings.CutPrefix(source, "switchboard/"); ok && s != "" {
		return s
	}
	return source
}

// apply applies one command to its locked conversation.
func (h *Handler) apply(ctx context.Context, tx pgx.Tx, c *store.Conversation, cmd store.Command, now time.Time) (store.Change, error) {
	e := cmd.Expect
	if err := domain.Expect(c.Domain(), domain.State(e.State), e.StateVersion, e.Version); err != nil {
		return store.Change{}, err
	}
	due := map[string]any{}
	if !cmd.DueAt.IsZero() {
		due["due_at"] = cmd.DueAt
	}
	switch cmd.Kind {
	case events.CommandWake:
		next, err := h.backToAgent(ctx, tx, c)
		if err != nil {
			return store.Change{}, err
		}
		due["to"] = next
		return store.Change{Action: domain.ActionWake, Reason: "the deferral ended", Data: due}, nil

	case events.CommandOffer:
		user, _ := uuid.Parse(cmd.Offer.UserID) // checked by NewCommand
		return store.Offer(ctx, tx, c, user, cmd.Offer.ExpiresAt, cmd.Offer.Fence)

	case events.CommandExpireOffer, events.CommandWithdrawOffer:
		if c.State != domain.StateOffered {
			return store.Change{}, &domain.StaleError{Reason: "the conversation is not offered"}
		}
		var agent uuid.UUID
		if len(c.Assignees) > 0 {
			agent = c.Assignees[0]
		}
		c.PreviousState, c.State = c.State, domain.StateNew
		c.Assignees = []uuid.UUID{}
		c.OfferExpiresAt = nil
		due["user_id"] = agent.String()
		if cmd.Kind == events.CommandWithdrawOffer {
			return store.Change{Action: domain.ActionOfferWithdrawn, Reason: "the agent went away or offline", Data: due}, nil
		}
		if agent != uuid.Nil {
			away, err := h.store.MissedOffer(ctx, tx, c, agent, now)
			if err != nil {
				return store.Change{}, err
			}
			due["made_away"] = away
		}
		return store.Change{Action: domain.ActionOfferExpired, Reason: "the agent did not accept the offer in time", Data: due}, nil

	case events.CommandRequeue:
		if !slices.Contains([]domain.State{domain.StateAssigned, domain.StateAnswered}, c.State) || len(c.Assignees) == 0 {
			return store.Change{}, &domain.StaleError{Reason: "nobody holds the conversation"}
		}
		due["assignee_ids"] = c.Assignees
		c.PreviousState, c.State = c.State, domain.StateNew
		c.Assignees = []uuid.UUID{}
		return store.Change{Action: domain.ActionRequeue, Reason: "its agent has been offline for the queue's limit", Data: due}, nil

	case events.CommandSendAutomatic:
		var wm *uuid.UUID
		if id, err := uuid.Parse(cmd.Automatic.WaitingMessageID); err == nil {
			wm = &id
		}
		return h.store.SendAutomatic(ctx, tx, c, cmd.Automatic.Purpose, wm, strconv.FormatInt(c.StateVersion, 10), now)

	case events.CommandSmartCloseAsk:
		if err := domain.SmartCloseAsk(c.Domain()); err != nil {
			return store.Change{}, err
		}
		change, err := h.store.SendAutomatic(ctx, tx, c, store.PurposeSmartCloseQuestion, nil, strconv.FormatInt(c.StateVersion, 10), now)
		if err != nil {
			return store.Change{}, err
		}
		asked := now
		c.ClosingAskedAt = &asked
		c.LastWriter = "agent"
		change.Action = domain.ActionSmartCloseAsk
		return change, nil

	case events.CommandSmartCloseTimeout:
		if err := domain.SmartCloseTimeout(c.Domain()); err != nil {
			return store.Change{}, err
		}
		c.PreviousState, c.State = c.State, domain.StateDone
		return store.Change{Action: domain.ActionSmartCloseTimeout, Reason: "the customer did not answer the smart-close question in time", Data: due}, nil

	case events.CommandSmartCloseAnswer:
		return h.smartCloseAnswer(ctx, tx, c, domain.Answer(cmd.Answer), now)

	case events.CommandInactivity:
		if len(c.Assignees) == 0 {
			return store.Change{}, &domain.StaleError{Reason: "nobody holds the conversation"}
		}
		due["minutes"] = cmd.Minutes
		due["assignee_ids"] = c.Assignees
		return store.Change{Action: domain.ActionInactive, Reason: fmt.Sprintf("no activity for %s", minutes(cmd.Minutes)), Data: due}, nil
	}
	return store.Change{}, fmt.Errorf("unknown command kind %q", cmd.Kind)
}

// backToAgent moves c back to work: to its last agent when they can take
// it, else to new.
func (h *Handler) backToAgent(ctx context.Context, tx pgx.Tx, c *store.Conversation) (domain.State, error) {
	available := false
	if c.LastAgentID != nil {
		var err error
		if available, err = store.AgentAvailable(ctx, tx, c, *c.LastAgentID); err != nil {
			return "", err
		}
	}
	next, agent := domain.BackToAgent(c.Domain(), available)
	c.PreviousState, c.State = c.State, next
	c.Assignees = []uuid.UUID{}
	if agent != "" {
		c.Assignees = []uuid.UUID{*c.LastAgentID}
	}
	return next, nil
}

// smartCloseAnswer applies the customer's answer to the smart-close
// question: no closes; yes or anything else goes back to the agent, and
// after a yes the customer is asked for details.
func (h *Handler) smartCloseAnswer(ctx context.Context, tx pgx.Tx, c *store.Conversation, a domain.Answer, now time.Time) (store.Change, error) {
	if a == domain.AnswerNo {
		c.PreviousState, c.State = c.State, domain.StateDone
		return store.Change{Action: domain.ActionSmartCloseAnswer, Reason: "the customer needs nothing else", Data: map[string]string{"answer": string(a)}}, nil
	}
	next, err := h.backToAgent(ctx, tx, c)
	if err != nil {
		return store.Change{}, err
	}
	change := store.Change{Action: domain.ActionSmartCloseAnswer, Reason: "the customer needs more", Data: map[string]string{"answer": string(a), "to": string(next)}}
	if a != domain.AnswerYes {
		return change, nil
	}
	follow, err := h.store.SendAutomatic(ctx, tx, c, store.PurposeSmartCloseFollowUp, nil, strconv.FormatInt(c.Version, 10), now)
	if errors.Is(err, domain.ErrStale) {
		return change, nil // no follow-up configured, or not allowed: the agent takes it from here
	}
	if err != nil {
		return store.Change{}, err
	}
	change.Records, change.Message = follow.Records, follow.Message
	return change, nil
}

// minutes writes a duration in minutes for people.
func minutes(m float64) string {
	return strconv.FormatFloat(m, 'f', -1, 64) + " minutes"
}
