package smtpsend

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

// Schema is the email connector's PostgreSQL schema.
const Schema = "email"

// versionTable keeps this package's migrations apart from those of the
// connector's other packages in the same schema.
const versionTable = "smtpsend_schema_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the ledger's tables in schema email.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("smtpsend migrations: %w", err)
	}
	return pg.Migrate(ctx, pool, Schema, versionTable, sub)
}

// Ledger statuses of a message.
const (
	// StatusSending: an attempt was started; no outcome is recorded yet.
	StatusSending = "sending"
	// StatusSent: the SMTP server accepted the message. Final.
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
	// MailboxID is the mailbox it is sent from.
	MailboxID string
	// ConversationID is the conversation it belongs to.
	ConversationID string
	// SMTPMessageID is its Message-ID, without angle brackets.
	SMTPMessageID string
	// Status is StatusSending, StatusSent or StatusFailed.
	Status string
	// Attempts counts the SMTP attempts started, over every delivery of
	// the command.
	Attempts int
	// LastError is the last failure: a retried one while sending, the
	// reason when failed.
	LastError string
	// UpdatedAt is when the status or the attempts last changed; for a
	// final status, when the outcome was known.
	UpdatedAt time.Time
}

// Final reports whether the status will not change again.
func (r Record) Final() bool { return r.Status == StatusSent || r.Status == StatusFailed }

// Ledger records what became of each message, in PostgreSQL. Times are
// passed in by the caller, whose clock the tests control.
type Ledger struct {
	pool *pgxpool.Pool
}

// NewLedger returns a ledger over pool; Migrate must have run.
func NewLedger(pool *pgxpool.Pool) *Ledger { return &Ledger{pool: pool} }

const recordColumns = `message_id, tenant_id, mailbox_id, conversation_id, smtp_message_id, status, attempts, last_error, updated_at`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	err := row.Scan(&r.MessageID, &r.TenantID, &r.MailboxID, &r.ConversationID, &r.SMTPMessageID, &r.Status, &r.Attempts, &r.LastError, &r.UpdatedAt)
	return r, err
}

// Get returns the record of messageID; ok is false when there is none.
func (l *Ledger) Get(ctx context.Context, messageID string) (rec Record, ok bool, err error) {
	rec, err = scanRecord(l.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM email.sent_messages WHERE message_id = $1`, messageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read ledger of message %s: %w", messageID, err)
	}
	return rec, true, nil
}

// StartAttempt records that an attempt to send rec.MessageID begins: the
// row is created in status sending with one attempt, or its attempts grow
// by one. A message whose status is final is left alone and its record
// returned as it is: the caller must not send it.
func (l *Ledger) StartAttempt(ctx context.Context, rec Record, at time.Time) (Record, error) {
	got, err := scanRecord(l.pool.QueryRow(ctx, `
		INSERT INTO email.sent_messages AS s (message_id, tenant_id, mailbox_id, conversation_id, smtp_message_id, status, attempts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'sending', 1, $6, $6)
		ON CONFLICT (message_id) DO UPDATE
		SET attempts = s.attempts + 1, smtp_message_id = EXCLUDED.smtp_message_id, updated_at = EXCLUDED.updated_at
		WHERE s.status = 'sending'
		RETURNING `+recordColumns,
		rec.MessageID, rec.TenantID, rec.MailboxID, rec.ConversationID, rec.SMTPMessageID, at))
	if errors.Is(err, pgx.ErrNoRows) {
		// The row exists with a final status: the update did not apply.
		got, ok, gerr := l.Get(ctx, rec.MessageID)
		if gerr != nil {
			return Record{}, gerr
		}
		if !ok {
			return Record{}, fmt.Errorf("start attempt of message %s: the ledger row vanished", rec.MessageID)
		}
		return got, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("start attempt of message %s: %w", rec.MessageID, err)
	}
	return got, nil
}

// NoteError records the failure of an attempt that will be retried.
func (l *Ledger) NoteError(ctx context.Context, messageID, reason string, at time.Time) error {
	_, err := l.pool.Exec(ctx, `
		UPDATE email.sent_messages SET last_error = $2, updated_at = $3
		WHERE message_id = $1 AND status = 'sending'`, messageID, reason, at)
	if err != nil {
		return fmt.Errorf("note error of message %s: %w", messageID, err)
	}
	return nil
}

// Finish records the final status of a message (StatusSent, or StatusFailed
// with its reason) and returns the record. A row that is already final is
// not changed; its record is returned. A message that has no row yet (it
// failed before any attempt, for want of a mailbox) gets one.
func (l *Ledger) Finish(ctx context.Context, rec Record, status, reason string, at time.Time) (Record, error) {
	if status != StatusSent && status != StatusFailed {
		return Record{}, fmt.Errorf("finish message %s: %q is not a final status", rec.MessageID, status)
	}
	got, err := scanRecord(l.pool.QueryRow(ctx, `
		INSERT INTO email.sent_messages AS s (message_id, tenant_id, mailbox_id, conversation_id, smtp_message_id, status, attempts, last_error, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)
		ON CONFLICT (message_id) DO UPDATE
		SET status = EXCLUDED.status,
		    -- A message sent after retries keeps its last retried failure.
		    last_error = CASE WHEN EXCLUDED.status = 'failed' THEN EXCLUDED.last_error ELSE s.last_error END,
		    updated_at = EXCLUDED.updated_at
		WHERE s.status = 'sending'
		RETURNING `+recordColumns,
		rec.MessageID, rec.TenantID, rec.MailboxID, rec.ConversationID, rec.SMTPMessageID, status, reason, at))
	if errors.Is(err, pgx.ErrNoRows) {
		got, ok, gerr := l.Get(ctx, rec.MessageID)
		if gerr != nil {
			return Record{}, gerr
		}
		if !ok {
			return Record{}, fmt.Errorf("finish message %s: the ledger row vanished", rec.MessageID)
		}
		return got, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("finish message %s as %s: %w", rec.MessageID, status, err)
	}
	return got, nil
}

// FindSent returns the record of the message sent with SMTP Message-ID
// smtpMessageID (without angle brackets): a bounce names the mail it
// reports on by that id.
func (l *Ledger) FindSent(ctx context.Context, smtpMessageID string) (rec Record, ok bool, err error) {
	rec, err = scanRecord(l.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM email.sent_messages WHERE smtp_message_id = $1 LIMIT 1`, smtpMessageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("find sent message %s: %w", smtpMessageID, err)
	}
	return rec, true, nil
}
