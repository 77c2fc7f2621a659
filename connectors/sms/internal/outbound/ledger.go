package outbound

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

// Schema is the SMS connector's PostgreSQL schema.
const Schema = "sms"

// versionTable keeps this package's migrations apart from those of the
// connector's other packages in the same schema.
const versionTable = "outbound_schema_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the ledger's table in schema sms.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sms outbound migrations: %w", err)
	}
	return pg.Migrate(ctx, pool, Schema, versionTable, sub)
}

// Ledger statuses of a message.
const (
	// StatusSending: an attempt was started; no outcome is recorded yet.
	StatusSending = "sending"
	// StatusSent: Twilio accepted the message (it has a Twilio SID). Final.
	StatusSent = "sent"
	// StatusFailed: the message will not be sent. Final.
	StatusFailed = "failed"
)

// Record is the ledger's row of one message.
type Record struct {
	// MessageID is the command's message id.
	MessageID string
	// TenantID is the tenant of the message.
	TenantID string
	// AccountID is the SMS account (channel account) it is sent from.
	AccountID string
	// ConversationID is the conversation it belongs to.
	ConversationID string
	// To is the customer's number, E.164.
	To string
	// Sender is what the last attempt sent from: one of the account's
	// numbers (E.164) or a Messaging Service SID (MG...).
	Sender string
	// TwilioSID is the Twilio message SID (SM...) once sent.
	TwilioSID string
	// Status is StatusSending, StatusSent or StatusFailed.
	Status string
	// Attempts counts the calls to Twilio's create-message endpoint
	// started, over every delivery of the command.
	Attempts int
	// LastError is the last failure: a retried one while sending, the
	// reason when failed.
	LastError string
	// Encoding and Segments say how the body travels: "GSM-7" or "UCS-2",
	// and the number of SMS segments (see Segment).
	Encoding string
	Segments int
	// InDoubtSince is when the earliest attempt started that may have
	// created the message at Twilio without our learning it (no answer, a
	// 5xx, a crash). Zero when no attempt is in doubt.
	InDoubtSince time.Time
	// UpdatedAt is when the status or the attempts last changed; for a
	// final status, when the outcome was known.
	UpdatedAt time.Time
}

// Final reports whether the status will not change again.
func (r Record) Final() bool { return r.Status == StatusSent || r.Status == StatusFailed }

// InDoubt reports whether an earlier attempt may have created the message
// at Twilio.
func (r Record) InDoubt() bool { return !r.InDoubtSince.IsZero() }

// Ledger records what became of each message, in PostgreSQL. Times are
// passed in by the caller, whose clock the tests control.
type Ledger struct {
	pool *pgxpool.Pool
}

// NewLedger returns a ledger over pool; Migrate must have run.
func NewLedger(pool *pgxpool.Pool) *Ledger { return &Ledger{pool: pool} }

const recordColumns = `message_id, tenant_id, account_id, conversation_id, to_number, sender, twilio_sid,
	status, attempts, last_error, encoding, segments, in_doubt_since, updated_at`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var doubt *time.Time
	err := row.Scan(&r.MessageID, &r.TenantID, &r.AccountID, &r.ConversationID, &r.To, &r.Sender, &r.TwilioSID,
		&r.Status, &r.Attempts, &r.LastError, &r.Encoding, &r.Segments, &doubt, &r.UpdatedAt)
	if doubt != nil {
		r.InDoubtSince = *doubt
	}
	return r, err
}

// Get returns the record of messageID; ok is false when there is none.
func (l *Ledger) Get(ctx context.Context, messageID string) (rec Record, ok bool, err error) {
	rec, err = scanRecord(l.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM sms.sent_messages WHERE message_id = $1`, messageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read ledger of message %s: %w", messageID, err)
	}
	return rec, true, nil
}

// FindByTwilioSID returns the record of the message Twilio knows as sid.
func (l *Ledger) FindByTwilioSID(ctx context.Context, sid string) (rec Record, ok bool, err error) {
	if sid == "" {
		return Record{}, false, nil
	}
	rec, err = scanRecord(l.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM sms.sent_messages WHERE twilio_sid = $1`, sid))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("find message of Twilio SID %s: %w", sid, err)
	}
	return rec, true, nil
}

// StartAttempt records, before the call, that an attempt to send
// rec.MessageID begins at at: the row is created in status sending with one
// attempt, or its attempts grow by one; its sender, encoding and segments
// are rec's, and the attempt is in doubt from at until NoteError or Finish
// says otherwise. A message whose status is final is left alone and its
// record returned as it is: the caller must not send it.
//
// The caller has ruled out, by searching Twilio, any earlier attempt in
// doubt: in_doubt_since is therefore replaced, not kept.
func (l *Ledger) StartAttempt(ctx context.Context, rec Record, at time.Time) (Record, error) {
	got, err := scanRecord(l.pool.QueryRow(ctx, `
		INSERT INTO sms.sent_messages AS s (message_id, tenant_id, account_id, conversation_id, to_number, sender,
			status, attempts, encoding, segments, in_doubt_since, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'sending', 1, $7, $8, $9, $9, $9)
		ON CONFLICT (message_id) DO UPDATE
		SET attempts = s.attempts + 1, sender = EXCLUDED.sender, encoding = EXCLUDED.encoding,
		    segments = EXCLUDED.segments, in_doubt_since = EXCLUDED.in_doubt_since, updated_at = EXCLUDED.updated_at
		WHERE s.status = 'sending'
		RETURNING `+recordColumns,
		rec.MessageID, rec.TenantID, rec.AccountID, rec.ConversationID, rec.To, rec.Sender, rec.Encoding, rec.Segments, at))
	if errors.Is(err, pgx.ErrNoRows) {
		// The row exists with a final status: the update did not apply.
		return l.mustGet(ctx, "start attempt of", rec.MessageID)
	}
	if err != nil {
		return Record{}, fmt.Errorf("start attempt of message %s: %w", rec.MessageID, err)
	}
	return got, nil
}

// NoteError records the failure of an attempt that will be retried, and
// returns the record. resolved says that the failure proves the attempt
// did not create the message (Twilio answered with an error such as 429),
// which ends the doubt; otherwise (no answer, a 5xx) the doubt stays.
func (l *Ledger) NoteError(ctx context.Context, messageID, reason string, resolved bool, at time.Time) (Record, error) {
	got, err := scanRecord(l.pool.QueryRow(ctx, `
		UPDATE sms.sent_messages
		SET last_error = $2, updated_at = $4,
		    in_doubt_since = CASE WHEN $3 THEN NULL ELSE in_doubt_since END
		WHERE message_id = $1 AND status = 'sending'
		RETURNING `+recordColumns, messageID, reason, resolved, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return l.mustGet(ctx, "note error of", messageID)
	}
	if err != nil {
		return Record{}, fmt.Errorf("note error of message %s: %w", messageID, err)
	}
	return got, nil
}

// Finish records the final status of a message (StatusSent with
// rec.TwilioSID, or StatusFailed with its reason) and returns the record. A
// row that is already final is not changed; its record is returned. A
// message that has no row yet (it failed before any attempt) gets one.
func (l *Ledger) Finish(ctx context.Context, rec Record, status, reason string, at time.Time) (Record, error) {
	if status != StatusSent && status != StatusFailed {
		return Record{}, fmt.Errorf("finish message %s: %q is not a final status", rec.MessageID, status)
	}
	got, err := scanRecord(l.pool.QueryRow(ctx, `
		INSERT INTO sms.sent_messages AS s (message_id, tenant_id, account_id, conversation_id, to_number, sender,
			twilio_sid, status, attempts, last_error, encoding, segments, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $12)
		ON CONFLICT (message_id) DO UPDATE
		SET status = EXCLUDED.status,
		    twilio_sid = EXCLUDED.twilio_sid,
		    sender = CASE WHEN EXCLUDED.sender <> '' THEN EXCLUDED.sender ELSE s.sender END,
		    -- A message sent after retries keeps its last retried failure.
		    last_error = CASE WHEN EXCLUDED.status = 'failed' THEN EXCLUDED.last_error ELSE s.last_error END,
		    encoding = EXCLUDED.encoding,
		    segments = EXCLUDED.segments,
		    in_doubt_since = NULL,
		    updated_at = EXCLUDED.updated_at
		WHERE s.status = 'sending'
		RETURNING `+recordColumns,
		rec.MessageID, rec.TenantID, rec.AccountID, rec.ConversationID, rec.To, rec.Sender,
		rec.TwilioSID, status, reason, rec.Encoding, rec.Segments, at))
	if errors.Is(err, pgx.ErrNoRows) {
		return l.mustGet(ctx, "finish", rec.MessageID)
	}
	if err != nil {
		return Record{}, fmt.Errorf("finish message %s as %s: %w", rec.MessageID, status, err)
	}
	return got, nil
}

// ClaimedSIDs returns which of sids the ledger already holds for a message
// other than messageID.
func (l *Ledger) ClaimedSIDs(ctx context.Context, messageID string, sids []string) (map[string]bool, error) {
	claimed := map[string]bool{}
	if len(sids) == 0 {
		return claimed, nil
	}
	rows, err := l.pool.Query(ctx, `SELECT twilio_sid FROM sms.sent_messages WHERE twilio_sid = ANY($1) AND message_id <> $2`, sids, messageID)
	if err != nil {
		return nil, fmt.Errorf("check Twilio SIDs for message %s: %w", messageID, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check Twilio SIDs for message %s: %w", messageID, err)
	}
	for _, sid := range got {
		claimed[sid] = true
	}
	return claimed, nil
}

// mustGet reads the row an update found in a final status.
func (l *Ledger) mustGet(ctx context.Context, what, messageID string) (Record, error) {
	got, ok, err := l.Get(ctx, messageID)
	if err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, fmt.Errorf("%s message %s: the ledger row vanished", what, messageID)
	}
	return got, nil
}
