// Package ingest turns inbound message events into stored messages.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Handler handles sb.inbound.v1.
type Handler struct {
	store      *store.Store
	log        *slog.Logger
	stored     metric.Int64Counter
	duplicates metric.Int64Counter
}

// New builds the handler.
func New(s *store.Store, log *slog.Logger, meter metric.Meter) (*Handler, error) {
	stored, err := meter.Int64Counter("switchboard.inbox.messages.stored", metric.WithDescription("Inbound messages stored."))
	if err != nil {
		return nil, err
	}
	dups, err := meter.Int64Counter("switchboard.inbox.messages.duplicates", metric.WithDescription("Inbound messages received again and not stored again."))
	if err != nil {
		return nil, err
	}
	return &Handler{store: s, log: log, stored: stored, duplicates: dups}, nil
}

// Handle stores a batch of inbound messages in one transaction. Invalid
// events are permanent failures (dead-lettered); an unavailable database
// is transient (retried until it is back).
func (h *Handler) Handle(ctx context.Context, msgs []bus.Message) error {
	in := make([]store.Inbound, 0, len(msgs))
	for _, m := range msgs {
		if m.Event.Type != events.TypeMessageReceived {
			return bus.Permanent(fmt.Errorf("event %s: type %q is not handled on %s", m.Event.ID, m.Event.Type, m.Topic))
		}
		var p events.MessageReceived
		if err := m.Event.Decode(&p); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: %w", m.Event.ID, err))
		}
		if err := p.Validate(); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: invalid %s: %w", m.Event.ID, m.Event.Type, err))
		}
		if m.Event.Tenant != p.TenantID {
			return bus.Permanent(fmt.Errorf("event %s: ce_tenant %q differs from tenant_id %q", m.Event.ID, m.Event.Tenant, p.TenantID))
		}
		in = append(in, store.Inbound{EventID: m.Event.ID, Msg: p})
	}
	res, err := h.store.Ingest(ctx, in, func(res []store.Ingested) ([]outbox.Record, error) {
		var recs []outbox.Record
		announced := map[uuid.UUID]bool{}
		for i, r := range res {
			// Every message of a conversation opened by this batch says so;
			// it is announced once.
			if !r.ConversationCreated || announced[r.ConversationID] {
				continue
			}
			announced[r.ConversationID] = true
			p := in[i].Msg
			ev, err := events.New(events.TypeConversationCreated, store.EventSource, p.TenantID, p.ReceivedAt, events.ConversationCreated{
				ConversationID: r.ConversationID.String(), TenantID: p.TenantID, ContactID: r.ContactID.String(),
				Channel: p.Channel, ChannelAccountID: p.ChannelAccountID, State: "new", StartedAt: p.ReceivedAt,
			})
			if err != nil {
				return nil, err
			}
			recs = append(recs, outbox.Record{Topic: events.TopicConversations, Key: events.ConversationKey(p.TenantID, p.Channel, p.ChannelAccountID, p.ThreadKey), Event: ev})
		}
		return recs, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, store.ErrUnknownAccount) || pg.IsDataError(err):
		return bus.Permanent(err)
	case pg.IsTransient(err):
		return bus.Transient(err)
	default:
		return err
	}
	var stored, dups int64
	for _, r := range res {
		if r.Duplicate {
			dups++
		} else {
			stored++
		}
	}
	h.stored.Add(ctx, stored)
	if dups > 0 {
		h.duplicates.Add(ctx, dups)
		h.log.DebugContext(ctx, "duplicates skipped", "count", dups)
	}
	return nil
}
