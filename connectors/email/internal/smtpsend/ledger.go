package smtpsend

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// Schema is the email connector's PostgreSQL schema.
const Schema = "email"

// versionTable keeps this package's migrations apart from those of the
// connector's other packages in the same schema.
const versionTable = "smtpsend_schema_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Details is what email records of a send beyond the ledger's columns:
// nothing, its Message-ID being the provider id and the server's reply the
// answer.
type Details = struct{}

// Ledger is the email connector's send ledger, in schema email.
type Ledger = sendledger.Ledger[Details]

// Record is the ledger's row of one message.
type Record = sendledger.Send[Details]

// NewLedger returns the ledger over pool; Migrate must have run.
func NewLedger(pool *pgxpool.Pool) *Ledger { return sendledger.New[Details](pool, Schema) }

// Migrate creates or updates the send ledger in schema email, then runs
// this package's migrations, the last of which moved the rows of the
// table earlier versions kept into it.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := NewLedger(pool).Migrate(ctx); err != nil {
		return fmt.Errorf("email send ledger: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("smtpsend migrations: %w", err)
	}
	return pg.Migrate(ctx, pool, Schema, versionTable, sub)
}
