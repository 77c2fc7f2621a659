package imapsync

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
)

// Schema is the email connector's PostgreSQL schema.
const Schema = "email"

// versionTable keeps this package's migrations apart from the other sets of
// migrations that may live in the email schema (see pg.Migrate).
const versionTable = "imapsync_schema_version"

//go:embed migrations/*.sql
var migrations embed.FS

// ErrUIDValidityChanged is returned by Checkpoints.Advance when the stored
// checkpoint belongs to another UIDVALIDITY than the one given: the folder
// was recreated (or another syncer reset it) and the caller's view is stale.
var ErrUIDValidityChanged = errors.New("imap checkpoint has another UIDVALIDITY")

// Migrate creates or updates the checkpoint table in the email schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("imapsync migrations: %w", err)
	}
	if err := pg.Migrate(ctx, pool, Schema, versionTable, sub); err != nil {
		return fmt.Errorf("imapsync: %w", err)
	}
	return nil
}

// Checkpoint is how far one mailbox's folder has been handed on: every
// message with a UID up to LastUID under UIDValidity was delivered.
type Checkpoint struct {
	// MailboxID is the mailbox (events.Mailbox.ID).
	MailboxID string
	// UIDValidity is the folder's UIDVALIDITY the UIDs belong to.
	UIDValidity uint32
	// LastUID is the highest UID delivered; 0 when none was.
	LastUID uint32
	// Source names the account and folder the UIDs belong to (see
	// Source); empty for a checkpoint written before sources were kept.
	Source string
	// UpdatedAt is when the checkpoint last changed.
	UpdatedAt time.Time
}

// Checkpoints stores the checkpoints of every mailbox in
// email.imap_checkpoints. Its methods are safe for concurrent use.
type Checkpoints struct {
	pool *pgxpool.Pool
}

// NewCheckpoints returns the checkpoint store over pool. Migrate must have
// run first.
func NewCheckpoints(pool *pgxpool.Pool) *Checkpoints {
	return &Checkpoints{pool: pool}
}

// Get returns the mailbox's checkpoint; ok is false when it has none yet.
func (c *Checkpoints) Get(ctx context.Context, mailboxID string) (cp Checkpoint, ok bool, err error) {
	var validity, last int64
	err = c.pool.QueryRow(ctx,
		`SELECT uid_validity, last_uid, source, updated_at FROM email.imap_checkpoints WHERE mailbox_id = $1`,
		mailboxID).Scan(&validity, &last, &cp.Source, &cp.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{MailboxID: mailboxID}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read IMAP checkpoint of mailbox %s: %w", mailboxID, err)
	}
	cp.MailboxID = mailboxID
	cp.UIDValidity = uint32(validity)
	cp.LastUID = uint32(last)
	return cp, true, nil
}

// Reset starts the mailbox over under a new UIDVALIDITY or source, with no
// UID delivered. It changes nothing when the checkpoint already has that
// UIDVALIDITY and source, so that it never moves a checkpoint backwards. A
// checkpoint without a source (written before sources were kept) under the
// same UIDVALIDITY is taken to be of this source: it gets the source and
// keeps its position.
func (c *Checkpoints) Reset(ctx context.Context, mailboxID string, uidValidity uint32, source string) error {
	if uidValidity == 0 {
		return fmt.Errorf("reset IMAP checkpoint of mailbox %s: UIDVALIDITY 0 is not valid", mailboxID)
	}
	_, err := c.pool.Exec(ctx, `
		INSERT INTO email.imap_checkpoints AS cp (mailbox_id, uid_validity, last_uid, source)
		VALUES ($1, $2, 0, $3)
		ON CONFLICT (mailbox_id) DO UPDATE
		   SET uid_validity = EXCLUDED.uid_validity, source = EXCLUDED.source, updated_at = now(),
		       last_uid = CASE WHEN cp.source = '' AND cp.uid_validity = EXCLUDED.uid_validity THEN cp.last_uid ELSE 0 END
		 WHERE cp.uid_validity <> EXCLUDED.uid_validity OR cp.source <> EXCLUDED.source`,
		mailboxID, int64(uidValidity), source)
	if err != nil {
		return fmt.Errorf("reset IMAP checkpoint of mailbox %s to UIDVALIDITY %d: %w", mailboxID, uidValidity, err)
	}
	return nil
}

// Source names the folder a mailbox reads, for Checkpoint.Source: the IMAP
// host, the account and the folder. The port and TLS mode are left out, as
// they change how the same folder is reached, not which folder it is.
func Source(server events.MailServer, folder string) string {
	return "imap://" + url.PathEscape(server.Username) + "@" + strings.ToLower(server.Host) + "/" + url.PathEscape(folder)
}

// Advance records that every message up to uid under uidValidity was
// delivered. It is monotonic: a uid at or below the stored one changes
// nothing. It returns ErrUIDValidityChanged, and changes nothing, when the
// stored checkpoint has another UIDVALIDITY (use Reset to change it).
func (c *Checkpoints) Advance(ctx context.Context, mailboxID string, uidValidity, uid uint32) error {
	if uidValidity == 0 {
		return fmt.Errorf("advance IMAP checkpoint of mailbox %s: UIDVALIDITY 0 is not valid", mailboxID)
	}
	// The WHERE of the upsert is the guard: a write from a syncer that is
	// behind, or that still sees an old UIDVALIDITY, is a no-op.
	tag, err := c.pool.Exec(ctx, `
		INSERT INTO email.imap_checkpoints AS cp (mailbox_id, uid_validity, last_uid)
		VALUES ($1, $2, $3)
		ON CONFLICT (mailbox_id) DO UPDATE
		   SET last_uid = EXCLUDED.last_uid, updated_at = now()
		 WHERE cp.uid_validity = EXCLUDED.uid_validity AND cp.last_uid < EXCLUDED.last_uid`,
		mailboxID, int64(uidValidity), int64(uid))
	if err != nil {
		return fmt.Errorf("advance IMAP checkpoint of mailbox %s to UID %d: %w", mailboxID, uid, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	cp, ok, err := c.Get(ctx, mailboxID)
	if err != nil {
		return err
	}
	if ok && cp.UIDValidity != uidValidity {
		return fmt.Errorf("advance IMAP checkpoint of mailbox %s to UID %d under UIDVALIDITY %d (stored: %d): %w",
			mailboxID, uid, uidValidity, cp.UIDValidity, ErrUIDValidityChanged)
	}
	return nil
}
