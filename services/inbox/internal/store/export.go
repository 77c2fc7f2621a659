package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// ExportMessage is a message as an export (a printout, a PDF, a mail to
// an outsider) shows it: the message as the API reads it, whatever that
// read hides staying hidden, and whether its content was anonymised.
type ExportMessage struct {
	Message
	// Anonymised: the content was anonymised; an export shows that it
	// was, and nothing of it (the message's anonymised_at).
	Anonymised bool
}

// LastMessages returns the last limit messages of a conversation, oldest
// first, read as ListMessages reads them, and how many the conversation
// has in all.
func (s *Store) LastMessages(ctx context.Context, conversation uuid.UUID, limit int) ([]ExportMessage, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE conversation_id = $1`, conversation).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count messages of conversation %s: %w", conversation, err)
	}
	// The same columns and scan as ListMessages: what the API's read
	// leaves out, an export leaves out too.
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+` FROM inbox.messages m
		WHERE m.conversation_id = $1 ORDER BY m.received_at DESC, m.id DESC LIMIT $2`, conversation, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("read the last messages of conversation %s: %w", conversation, err)
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, 0, fmt.Errorf("read the last messages of conversation %s: %w", conversation, err)
	}
	slices.Reverse(msgs)
	out := make([]ExportMessage, len(msgs))
	for i, m := range msgs {
		out[i] = ExportMessage{Message: m, Anonymised: m.AnonymisedAt != nil}
	}
	return out, total, nil
}

// ConversationSubject is the subject of a conversation: that of its first
// message that has one (an email's), "" when none has.
func (s *Store) ConversationSubject(ctx context.Context, conversation uuid.UUID) (string, error) {
	var subject string
	err := s.pool.QueryRow(ctx, `SELECT m.subject FROM inbox.messages m
		WHERE m.conversation_id = $1 AND coalesce(m.subject, '') <> '' ORDER BY m.received_at, m.id LIMIT 1`, conversation).Scan(&subject)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the subject of conversation %s: %w", conversation, err)
	}
	return subject, nil
}

// ActorNames maps the ids among ids of tenant's users and API tokens to
// their names; an id of neither is absent.
func (s *Store) ActorNames(ctx context.Context, tenant uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]string, error) {
	out := map[uuid.UUID]string{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, name FROM inbox.users WHERE tenant_id = $1 AND id = ANY($2)
		UNION ALL SELECT id, name FROM inbox.api_tokens WHERE tenant_id = $1 AND id = ANY($2)`, tenant, ids)
	if err != nil {
		return nil, fmt.Errorf("read names of users and tokens: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("read names of users and tokens: %w", err)
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read names of users and tokens: %w", err)
	}
	return out, nil
}

// ExportSettings are a tenant's settings of exports.
type ExportSettings struct {
	// SendByEmail lets admins send a conversation by email to an
	// outsider.
	SendByEmail bool `json:"send_by_email"`
	// MailboxID is the mailbox that sends it; required to enable it.
	MailboxID *uuid.UUID `json:"mailbox_id"`
}

// GetExportSettings returns tenant's export settings; a tenant that never
// set them has sending by email off.
func (s *Store) GetExportSettings(ctx context.Context, tenant uuid.UUID) (ExportSettings, error) {
	return exportSettings(ctx, s.pool, tenant)
}

// ExportSettingsIn is GetExportSettings in tx.
func ExportSettingsIn(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) (ExportSettings, error) {
	return exportSettings(ctx, tx, tenant)
}

// rowReader reads one row: a pool or a transaction.
type rowReader interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func exportSettings(ctx context.Context, db rowReader, tenant uuid.UUID) (ExportSettings, error) {
	var out ExportSettings
	err := db.QueryRow(ctx, `SELECT send_by_email, mailbox_id FROM inbox.export_settings WHERE tenant_id = $1`, tenant).
		Scan(&out.SendByEmail, &out.MailboxID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return ExportSettings{}, fmt.Errorf("read export settings: %w", err)
	}
	return out, nil
}

// PutExportSettings replaces tenant's export settings. The mailbox, when
// named, must be a live mailbox of tenant (field mailbox_id); enabling
// needs one.
func (s *Store) PutExportSettings(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, set ExportSettings, now time.Time) (ExportSettings, error) {
	if set.SendByEmail && set.MailboxID == nil {
		return ExportSettings{}, domain.Invalid("mailbox_id", "is required to enable send_by_email: the id of one of the tenant's mailboxes")
	}
	if set.MailboxID != nil {
		ok, err := LiveMailbox(ctx, tx, tenant, *set.MailboxID)
		if err != nil {
			return ExportSettings{}, err
		}
		if !ok {
			return ExportSettings{}, domain.Invalid("mailbox_id", "is not a mailbox of the tenant")
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.export_settings (tenant_id, send_by_email, mailbox_id, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id) DO UPDATE SET send_by_email = excluded.send_by_email, mailbox_id = excluded.mailbox_id,
		updated_at = excluded.updated_at`, tenant, set.SendByEmail, set.MailboxID, now)
	if err != nil {
		return ExportSettings{}, fmt.Errorf("write export settings: %w", err)
	}
	return set, nil
}

// LiveMailbox reports whether id is a mailbox of tenant that is not
// deleted, and share locks it until tx ends, so that it cannot be deleted
// meanwhile.
func LiveMailbox(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM inbox.channel_accounts
		WHERE tenant_id = $1 AND id = $2 AND channel = 'email' AND deleted_at IS NULL FOR SHARE`, tenant, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read mailbox %s: %w", id, err)
	}
	return true, nil
}

// RecordTranscript remembers that the PDF under blobKey renders
// conversation for the mail id, so that an erasure of one of its messages
// deletes it (see contentCopies).
func RecordTranscript(ctx context.Context, tx pgx.Tx, tenant, conversation, id uuid.UUID, blobKey string, now time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.transcripts (id, tenant_id, conversation_id, blob_key, created_at)
		VALUES ($1, $2, $3, $4, $5)`, id, tenant, conversation, blobKey, now); err != nil {
		return fmt.Errorf("record the transcript %s: %w", id, err)
	}
	return nil
}
