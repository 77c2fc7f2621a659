package outbound

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// Schema is the SMS connector's PostgreSQL schema.
const Schema = "sms"

// versionTable keeps this package's migrations apart from those of the
// connector's other packages in the same schema.
const versionTable = "outbound_schema_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Details is what SMS records of a send beyond the ledger's columns (the
// Twilio SID is the provider id).
type Details struct {
	// To is the customer's number, E.164.
	To string `json:"to"`
	// Sender is what the last attempt sent from: one of the account's
	// numbers (E.164) or a Messaging Service SID (MG...). An attempt in
	// doubt is looked for from it.
	Sender string `json:"sender"`
	// Encoding and Segments say how the body travels: "GSM-7" or "UCS-2",
	// and the number of SMS segments (see Segment).
	Encoding string `json:"encoding"`
	Segments int    `json:"segments"`
}

// Ledger is the SMS connector's send ledger, in schema sms.
type Ledger = sendledger.Ledger[Details]

// Record is the ledger's row of one message.
type Record = sendledger.Send[Details]

// NewLedger returns the ledger over pool; Migrate must have run.
func NewLedger(pool *pgxpool.Pool) *Ledger { return sendledger.New[Details](pool, Schema) }

// Migrate creates or updates the send ledger in schema sms, then runs this
// package's migrations, the last of which moved the rows of the table
// earlier versions kept into it.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := NewLedger(pool).Migrate(ctx); err != nil {
		return fmt.Errorf("sms send ledger: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sms outbound migrations: %w", err)
	}
	return pg.Migrate(ctx, pool, Schema, versionTable, sub)
}
