package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// auditEntry is one line of a conversation's audit log.
type auditEntry struct {
	tenant       uuid.UUID
	conversation uuid.UUID
	actorKind    string
	actorID      string
	action       domain.Action
	from, to     domain.State
	reason       string
	data         any
	at           time.Time
}

const insertAudit = `INSERT INTO inbox.conversation_audit (tenant_id, conversation_id, actor_kind, actor_id, action, from_state, to_state, reason, data, at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::jsonb[], $10::timestamptz[])`

// queueAudit adds the insert of entries to b.
func queueAudit(b *pgx.Batch, entries []auditEntry) {
	sql, args, ok := auditInsert(entries)
	if ok {
		b.Queue(sql, args...)
	}
}

// writeAudit inserts entries in tx.
func writeAudit(ctx context.Context, tx pgx.Tx, entries ...auditEntry) error {
	sql, args, ok := auditInsert(entries)
	if !ok {
		return nil
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}

func auditInsert(entries []auditEntry) (string, []any, bool) {
	if len(entries) == 0 {
		return "", nil, false
	}
	n := len(entries)
	tenants, convs := make([][16]byte, n), make([][16]byte, n)
	kinds, actors, actions := make([]string, n), make([]string, n), make([]string, n)
	froms, tos := make([]*string, n), make([]*string, n)
	reasons, datas := make([]string, n), make([]*string, n)
	ats := make([]time.Time, n)
	for i, e := range entries {
		tenants[i], convs[i] = e.tenant, e.conversation
		kinds[i], actors[i], actions[i], reasons[i], ats[i] = e.actorKind, e.actorID, string(e.action), e.reason, e.at
		if e.from != "" {
			f := string(e.from)
			froms[i] = &f
		}
		if e.to != "" {
			t := string(e.to)
			tos[i] = &t
		}
		if e.data != nil {
			raw, err := json.Marshal(e.data)
			if err == nil {
				d := string(raw)
				datas[i] = &d
			}
		}
	}
	return insertAudit, []any{tenants, convs, kinds, actors, actions, froms, tos, reasons, datas, ats}, true
}

// AuditEntry is a line of the audit log as the API shows it.
type AuditEntry struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	ActorKind string          `json:"actor_kind"`
	ActorID   string          `json:"actor_id"`
	Action    string          `json:"action"`
	From      string          `json:"from_state,omitempty"`
	To        string          `json:"to_state,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Audit returns a conversation's audit log, oldest first.
func (s *Store) Audit(ctx context.Context, conversation uuid.UUID) ([]AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor_kind, actor_id, action, coalesce(from_state, ''), coalesce(to_state, ''), reason, data
		FROM inbox.conversation_audit WHERE conversation_id = $1 ORDER BY id`, conversation)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEntry, error) {
		var e AuditEntry
		var data []byte
		err := r.Scan(&e.ID, &e.At, &e.ActorKind, &e.ActorID, &e.Action, &e.From, &e.To, &e.Reason, &data)
		e.Data = data
		return e, err
	})
}
