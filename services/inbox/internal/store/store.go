// Package store keeps the inbox's state in its PostgreSQL schema, inbox.
// It is the only code that reads or writes that schema.
package store

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/seal"
)

// Schema is the inbox's PostgreSQL schema.
const Schema = "inbox"

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers branch on.
var (
	// ErrNotFound: no such object in this tenant.
	ErrNotFound = errors.New("not found")
	// ErrUnknownAccount: an inbound message names a channel account that
	// does not exist for its tenant and channel.
	ErrUnknownAccount = errors.New("unknown channel account")
)

// Store is the inbox's data access.
type Store struct {
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
	// keys seal the secrets the store writes (docs/adr/0022).
	keys *seal.Keyring
}

// New returns a store over pool that seals secrets under keys.
func New(pool *pgxpool.Pool, keys *seal.Keyring) *Store {
	return &Store{pool: pool, outbox: outbox.New(Schema), keys: keys}
}

// Outbox is the inbox's outbox.
func (s *Store) Outbox() *outbox.Outbox { return s.outbox }

// Migrate brings the schema up to date.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("inbox migrations: %w", err)
	}
	if err := pg.Migrate(ctx, s.pool, Schema, "schema_version", sub); err != nil {
		return err
	}
	return s.outbox.Migrate(ctx, s.pool)
}

// pipelined runs a transaction in two round trips. first sends its first
// pipeline on conn (starting with BEGIN) and reads it, then returns the
// statements of the second, to which pipelined adds COMMIT. Any failure
// rolls back.
func (s *Store) pipelined(ctx context.Context, first func(ctx context.Context, conn *pgx.Conn) (*pgx.Batch, error)) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	committed := false
	defer func() {
		if committed {
			return
		}
		// Leave no transaction open on a pooled connection; if even the
		// rollback fails, close the connection so the pool drops it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
	}()
	second, err := first(ctx, conn.Conn())
	if err != nil {
		return err
	}
	second.Queue("COMMIT")
	if err := conn.SendBatch(ctx, second).Close(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// HashToken is how API tokens are stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Tenant is a tenant.
type Tenant struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// TenantByToken returns the tenant of a valid API token.
func (s *Store) TenantByToken(ctx context.Context, token string) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM inbox.api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, HashToken(token)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, ErrNotFound
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("look up API token: %w", err)
	}
	return id, nil
}
