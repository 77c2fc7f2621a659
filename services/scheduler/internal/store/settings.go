package store

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/rules"
)

// Settings are the automation settings of some tenants and queues, as the
// scheduler last heard of them.
type Settings struct {
	tenants  map[uuid.UUID]events.Automation
	queues   map[uuid.UUID]events.QueueAutomation
	waitings map[uuid.UUID]map[string]events.WaitingHours
}

// For returns the settings that apply to v.
func (s *Settings) For(v *rules.View) rules.Settings {
	out := rules.Settings{Tenant: s.tenants[v.TenantID], WaitingMessages: s.waitings[v.TenantID]}
	if v.QueueID != nil {
		if q, ok := s.queues[*v.QueueID]; ok {
			out.Queue = &q
		}
	}
	return out
}

// LoadSettings reads the settings of the tenants and queues of views.
func LoadSettings(ctx context.Context, tx pgx.Tx, views []*rules.View) (*Settings, error) {
	var tenants, queues []uuid.UUID
	for _, v := range views {
		if !slices.Contains(tenants, v.TenantID) {
			tenants = append(tenants, v.TenantID)
		}
		if v.QueueID != nil && !slices.Contains(queues, *v.QueueID) {
			queues = append(queues, *v.QueueID)
		}
	}
	s := &Settings{tenants: map[uuid.UUID]events.Automation{}, queues: map[uuid.UUID]events.QueueAutomation{},
		waitings: map[uuid.UUID]map[string]events.WaitingHours{}}
	if len(tenants) == 0 {
		return s, nil
	}
	rows, err := tx.Query(ctx, `SELECT 't', tenant_id, NULL::uuid, settings FROM scheduler.tenant_settings WHERE tenant_id = ANY($1)
		UNION ALL SELECT 'q', tenant_id, queue_id, settings FROM scheduler.queue_settings WHERE queue_id = ANY($2)
		UNION ALL SELECT 'w', tenant_id, id, hours FROM scheduler.waiting_messages WHERE tenant_id = ANY($1)`, tenants, queues)
	if err != nil {
		return nil, fmt.Errorf("read automation settings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind   string
			tenant uuid.UUID
			id     *uuid.UUID
			raw    []byte
		)
		if err := rows.Scan(&kind, &tenant, &id, &raw); err != nil {
			return nil, fmt.Errorf("read automation settings: %w", err)
		}
		switch kind {
		case "t":
			var a events.Automation
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("decode settings of tenant %s: %w", tenant, err)
			}
			s.tenants[tenant] = a
		case "q":
			var q events.QueueAutomation
			if err := json.Unmarshal(raw, &q); err != nil {
				return nil, fmt.Errorf("decode settings of queue %s: %w", id, err)
			}
			s.queues[*id] = q
		case "w":
			var h events.WaitingHours
			if err := json.Unmarshal(raw, &h); err != nil {
				return nil, fmt.Errorf("decode waiting message %s: %w", id, err)
			}
			if s.waitings[tenant] == nil {
				s.waitings[tenant] = map[string]events.WaitingHours{}
			}
			s.waitings[tenant][id.String()] = h
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read automation settings: %w", err)
	}
	return s, nil
}

// LockTenants serialises the handling of conversation events with
// changes of the tenants' settings: conversation batches hold the lock
// shared, a settings change holds it alone. Without it, a batch could read
// the old settings while a change, not seeing the batch's new views yet,
// revisits the others: a conversation would miss the new settings.
func LockTenants(ctx context.Context, tx pgx.Tx, tenants []uuid.UUID, exclusive bool) error {
	keys := make([]int64, len(tenants))
	for i, t := range tenants {
		h := fnv.New64a()
		h.Write([]byte("switchboard.scheduler.tenant." + t.String()))
		keys[i] = int64(h.Sum64())
	}
	slices.Sort(keys) // one order: no deadlock between batches
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	if _, err := tx.Exec(ctx, `SELECT `+fn+`(k) FROM unnest($1::bigint[]) AS k ORDER BY k`, keys); err != nil {
		return fmt.Errorf("lock tenants: %w", err)
	}
	return nil
}

// put upserts a settings row and reports whether it changed.
func put(ctx context.Context, tx pgx.Tx, sql string, args ...any) (bool, error) {
	tag, err := tx.Exec(ctx, sql, args...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}

// PutTenantSettings records a tenant's settings; changed is false when
// they are what the scheduler had.
func PutTenantSettings(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, a events.Automation) (bool, error) {
	raw, err := json.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("encode settings of tenant %s: %w", tenant, err)
	}
	changed, err := put(ctx, tx, `INSERT INTO scheduler.tenant_settings AS t (tenant_id, settings) VALUES ($1, $2)
		ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings WHERE t.settings IS DISTINCT FROM excluded.settings`, tenant, raw)
	if err != nil {
		return false, fmt.Errorf("record settings of tenant %s: %w", tenant, err)
	}
	return changed, nil
}

// PutQueueSettings records a queue's own settings, or forgets a deleted
// queue; changed is false when nothing changed.
func PutQueueSettings(ctx context.Context, tx pgx.Tx, tenant, queue uuid.UUID, a *events.QueueAutomation, deleted bool) (bool, error) {
	if deleted {
		changed, err := put(ctx, tx, `DELETE FROM scheduler.queue_settings WHERE queue_id = $1`, queue)
		if err != nil {
			return false, fmt.Errorf("forget queue %s: %w", queue, err)
		}
		return changed, nil
	}
	if a == nil {
		a = &events.QueueAutomation{}
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return false, fmt.Errorf("encode settings of queue %s: %w", queue, err)
	}
	changed, err := put(ctx, tx, `INSERT INTO scheduler.queue_settings AS q (queue_id, tenant_id, settings) VALUES ($1, $2, $3)
		ON CONFLICT (queue_id) DO UPDATE SET settings = excluded.settings WHERE q.settings IS DISTINCT FROM excluded.settings`, queue, tenant, raw)
	if err != nil {
		return false, fmt.Errorf("record settings of queue %s: %w", queue, err)
	}
	return changed, nil
}

// PutWaitingMessage records a waiting message's hours, or forgets a
// deleted one; changed is false when nothing changed.
func PutWaitingMessage(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, h events.WaitingHours, deleted bool) (bool, error) {
	if deleted {
		changed, err := put(ctx, tx, `DELETE FROM scheduler.waiting_messages WHERE id = $1`, id)
		if err != nil {
			return false, fmt.Errorf("forget waiting message %s: %w", id, err)
		}
		return changed, nil
	}
	raw, err := json.Marshal(h)
	if err != nil {
		return false, fmt.Errorf("encode waiting message %s: %w", id, err)
	}
	changed, err := put(ctx, tx, `INSERT INTO scheduler.waiting_messages AS w (id, tenant_id, hours) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET hours = excluded.hours WHERE w.hours IS DISTINCT FROM excluded.hours`, id, tenant, raw)
	if err != nil {
		return false, fmt.Errorf("record waiting message %s: %w", id, err)
	}
	return changed, nil
}

// OpenViews reads and locks, in id order, up to limit views of tenant's
// conversations that are not done, after the id after (uuid.Nil for the
// first); queue, when set, narrows them to a queue.
func OpenViews(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, queue *uuid.UUID, after uuid.UUID, limit int) ([]*rules.View, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if queue == nil {
		rows, err = tx.Query(ctx, `SELECT `+viewColumns+` FROM scheduler.conversations
			WHERE tenant_id = $1 AND state <> 'done' AND id > $2 ORDER BY id LIMIT $3 FOR UPDATE`, tenant, after, limit)
	} else {
		rows, err = tx.Query(ctx, `SELECT `+viewColumns+` FROM scheduler.conversations
			WHERE queue_id = $1 AND tenant_id = $2 AND state <> 'done' AND id > $3 ORDER BY id LIMIT $4 FOR UPDATE`, *queue, tenant, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read open conversations of tenant %s: %w", tenant, err)
	}
	views, err := pgx.CollectRows(rows, scanView)
	if err != nil {
		return nil, fmt.Errorf("read open conversations of tenant %s: %w", tenant, err)
	}
	return views, nil
}
