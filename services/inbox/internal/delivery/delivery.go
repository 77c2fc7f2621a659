// Package delivery applies what channels say of the messages agents sent
// (sb.delivery.v1): sent, delivered, read, failed, shown per message.
package delivery

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// ConsumerGroup is the group that reads sb.delivery.v1 for the inbox.
const ConsumerGroup = "switchboard-inbox-delivery"

// Handler applies delivery reports.
type Handler struct {
	store *store.Store
}

// New builds the handler.
func New(s *store.Store) *Handler { return &Handler{store: s} }

// Handle applies a batch of delivery reports. A report never moves a
// message's status backwards: callbacks arrive out of order.
func (h *Handler) Handle(ctx context.Context, msgs []bus.Message) error {
	reports := make([]store.DeliveryReport, 0, len(msgs))
	for _, m := range msgs {
		if m.Event.Type != events.TypeDelivery {
			return bus.Permanent(fmt.Errorf("event %s: type %q is not handled on %s", m.Event.ID, m.Event.Type, m.Topic))
		}
		var d events.Delivery
		if err := m.Event.Decode(&d); err != nil {
			return bus.Permanent(err)
		}
		id, err := uuid.Parse(d.MessageID)
		if err != nil {
			return bus.Permanent(fmt.Errorf("event %s: message_id %q is not a message id", m.Event.ID, d.MessageID))
		}
		tenant, err := uuid.Parse(d.TenantID)
		if err != nil || d.TenantID != m.Event.Tenant {
			return bus.Permanent(fmt.Errorf("event %s: tenant_id %q does not match ce_tenant %q", m.Event.ID, d.TenantID, m.Event.Tenant))
		}
		if events.DeliveryRank(d.Status) < 0 || d.Status == events.DeliveryPending {
			return bus.Permanent(fmt.Errorf("event %s: status %q is not sent, delivered, read or failed", m.Event.ID, d.Status))
		}
		if len(d.Error) > 2000 {
			d.Error = d.Error[:2000]
		}
		reports = append(reports, store.DeliveryReport{MessageID: id, Tenant: tenant, Status: d.Status, Error: d.Error, At: d.At, OptedOut: d.OptedOut})
	}
	if err := h.store.ApplyDeliveries(ctx, reports); err != nil {
		if pg.IsTransient(err) {
			return bus.Transient(err)
		}
		return err
	}
	return nil
}
