package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// DueTimer is a timer that came due.
type DueTimer struct {
	ID      string
	Kind    string
	DueAt   time.Time
	Key     []byte
	Command events.InboxCommand
}

// TakeDue reads and locks up to limit timers due at now, earliest first,
// skipping those another fire loop holds: several replicas fire side by
// side, each its own timers.
func TakeDue(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]DueTimer, error) {
	rows, err := tx.Query(ctx, `SELECT id, kind, due_at, key, command FROM scheduler.timers
		WHERE fired_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("read due timers: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (DueTimer, error) {
		var (
			t   DueTimer
			raw []byte
		)
		if err := row.Scan(&t.ID, &t.Kind, &t.DueAt, &t.Key, &raw); err != nil {
			return t, fmt.Errorf("read due timer: %w", err)
		}
		if err := json.Unmarshal(raw, &t.Command); err != nil {
			return t, fmt.Errorf("decode command of timer %s: %w", t.ID, err)
		}
		return t, nil
	})
}

// MarkFired records that the timers ids fired at now: they stay until
// their occurrence is over, so that it never fires again.
func MarkFired(ctx context.Context, tx pgx.Tx, ids []string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE scheduler.timers SET fired_at = $2 WHERE id = ANY($1)`, ids, now); err != nil {
		return fmt.Errorf("mark timers fired: %w", err)
	}
	return nil
}

// NextDue returns the due time of the earliest pending timer; false when
// none is pending.
func (s *Store) NextDue(ctx context.Context, conn *pgx.Conn) (time.Time, bool, error) {
	var next *time.Time
	err := conn.QueryRow(ctx, `SELECT min(due_at) FROM scheduler.timers WHERE fired_at IS NULL`).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && next == nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due time: %w", err)
	}
	return *next, true, nil
}
