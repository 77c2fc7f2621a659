package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DeliveryReport is what a channel said of a sent message.
type DeliveryReport struct {
	MessageID uuid.UUID
	Tenant    uuid.UUID
	Status    string
	Error     string
	At        time.Time
	// OptedOut: the recipient opted out of the channel (SMS only).
	OptedOut bool
}

// deliveryRank orders statuses in SQL as events.DeliveryRank does in Go.
const deliveryRank = `CASE %s WHEN 'pending' THEN 0 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'failed' THEN 3 WHEN 'read' THEN 4 ELSE -1 END`

// ApplyDeliveries records delivery reports on outbound messages of their
// tenant, each only if it moves the message's status forward (by
// events.DeliveryRank); reports for unknown messages are ignored. A
// replayed message (see ReplayDelivery) takes only the reports made after
// the failure it replayed: the earlier ones are of the attempts that
// failed.
func (s *Store) ApplyDeliveries(ctx context.Context, reports []DeliveryReport) error {
	if len(reports) == 0 {
		return nil
	}
	// Strings, not [16]byte: a statement run without a prior describe
	// (QueryExecModeExec) sends its parameters as text.
	ids, tenants := make([]string, len(reports)), make([]string, len(reports))
	statuses, errs, ats := make([]string, len(reports)), make([]string, len(reports)), make([]time.Time, len(reports))
	for i, r := range reports {
		ids[i], tenants[i], statuses[i], errs[i], ats[i] = r.MessageID.String(), r.Tenant.String(), r.Status, r.Error, r.At
	}
	// Several reports of one message in a batch: the highest wins, of those
	// made after the failure a replay answered.
	_, err := s.pool.Exec(ctx, `UPDATE inbox.messages m SET delivery_status = d.status,
			delivery_error = nullif(d.error, ''), delivery_updated_at = d.at
		FROM (SELECT DISTINCT ON (id) * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
		          AS u(id, tenant_id, status, error, at)
		      WHERE coalesce((SELECT u.at > x.replayed_after FROM inbox.messages x WHERE x.id = u.id), true)
		      ORDER BY id, `+fmt.Sprintf(deliveryRank, "u.status")+` DESC) d
		WHERE m.id = d.id AND m.tenant_id = d.tenant_id AND m.direction = 'outbound'
		  AND `+fmt.Sprintf(deliveryRank, "d.status")+` > `+fmt.Sprintf(deliveryRank, "coalesce(m.delivery_status, 'pending')"),
		pgx.QueryExecModeExec, ids, tenants, statuses, errs, ats)
	if err != nil {
		return fmt.Errorf("apply delivery reports: %w", err)
	}
	return s.applyOptOuts(ctx, reports)
}

// applyOptOuts records, on the SMS identity of each message's customer,
// that they opted out, as the connector learned it (Twilio's error 21610):
// the next reply is then refused before it is sent. A newer choice of the
// customer (a START received after) stands.
func (s *Store) applyOptOuts(ctx context.Context, reports []DeliveryReport) error {
	var ids, tenants []string
	var ats []time.Time
	for _, r := range reports {
		if r.OptedOut {
			ids, tenants, ats = append(ids, r.MessageID.String()), append(tenants, r.Tenant.String()), append(ats, r.At)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	// An SMS thread key is "<our number>:<customer number>".
	_, err := s.pool.Exec(ctx, `UPDATE inbox.contact_identities ci SET consent = 'opted_out', consent_changed_at = o.at
		FROM (SELECT c.tenant_id, split_part(c.thread_key, ':', 2) AS identity, max(u.at) AS at
		      FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[]) AS u(id, tenant_id, at)
		      JOIN inbox.messages m ON m.id = u.id AND m.tenant_id = u.tenant_id AND m.direction = 'outbound'
		      JOIN inbox.conversations c ON c.id = m.conversation_id AND c.channel = 'sms'
		      GROUP BY 1, 2) o
		WHERE ci.tenant_id = o.tenant_id AND ci.channel = 'sms' AND ci.identity = o.identity
		  AND (ci.consent_changed_at IS NULL OR ci.consent_changed_at <= o.at)`,
		pgx.QueryExecModeExec, ids, tenants, ats)
	if err != nil {
		return fmt.Errorf("record opt-outs reported by the SMS connector: %w", err)
	}
	return nil
}
