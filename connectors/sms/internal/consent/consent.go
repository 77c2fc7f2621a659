// Package consent keeps which customers' numbers opted out of SMS, per
// Twilio account, in the connector's schema: sending to one is refused
// before any call to Twilio.
package consent

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/pg"
)

// Schema is the connector's PostgreSQL schema.
const Schema = "sms"

//go:embed migrations/*.sql
var migrations embed.FS

// Store keeps consent in PostgreSQL.
type Store struct{ pool *pgxpool.Pool }

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate brings the table up to date.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("consent migrations: %w", err)
	}
	return pg.Migrate(ctx, s.pool, Schema, "consent_schema_version", sub)
}

// Set records that number opted out (or back in) of account's messages at
// at. A change older than the one recorded is ignored: webhooks and send
// failures may arrive out of order.
func (s *Store) Set(ctx context.Context, accountID, number string, optedOut bool, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sms.consent AS c (account_id, number, opted_out, changed_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, number) DO UPDATE SET opted_out = EXCLUDED.opted_out, changed_at = EXCLUDED.changed_at
		WHERE c.changed_at <= EXCLUDED.changed_at`, accountID, number, optedOut, at)
	if err != nil {
		return fmt.Errorf("record consent of %s: %w", number, err)
	}
	return nil
}

// OptedOut reports whether number opted out of account's messages.
func (s *Store) OptedOut(ctx context.Context, accountID, number string) (bool, error) {
	var out bool
	err := s.pool.QueryRow(ctx, `SELECT opted_out FROM sms.consent WHERE account_id = $1 AND number = $2`, accountID, number).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read consent of %s: %w", number, err)
	}
	return out, nil
}
