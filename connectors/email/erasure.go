package email

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// ErrInvalidErase marks an sb.erase.v1 event that cannot be applied (for
// the dead-letter topic).
var ErrInvalidErase = errors.New("invalid erase event")

// forget applies an erasure the inbox asks for (sb.erase.v1). What the
// email connector keeps of a message is its thread record (Message-ID,
// thread, subject; the thread's Outlook conversation root and the hash of
// its topic) and its send ledger row (the SMTP server's answer and
// last error, which may quote the recipient); attachments are the inbox's
// blobs, and no raw copy of a mail is kept. So:
//
//   - every erased message's subject is blanked in its thread record, and
//     its send's answer and error;
//   - the threads of deleted conversations and of an erased contact's are
//     forgotten (their records, reply token and Outlook conversation
//     roots): a later mail of that thread starts a new conversation;
//   - nothing is stored per address, so an erased contact's addresses
//     need nothing more.
//
// Applying it twice changes nothing more.
func (c *Connector) forget(ctx context.Context, e events.Erase) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidErase, err)
	}
	if e.Channel != events.ChannelEmail {
		return fmt.Errorf("%w: erasure %s is for channel %s", ErrInvalidErase, e.ID, e.Channel)
	}
	ids := e.MessageIDs()
	keys := append([]string(nil), ids...)
	mailboxes := make([]string, 0, len(e.Messages))
	for _, m := range e.Messages {
		if m.ExternalID != "" {
			keys = append(keys, m.ExternalID)
		}
		mailboxes = append(mailboxes, m.ChannelAccountID)
	}
	threadMailboxes, threadKeys := make([]string, len(e.Conversations)), make([]string, len(e.Conversations))
	for i, conv := range e.Conversations {
		threadMailboxes[i], threadKeys[i] = conv.ChannelAccountID, conv.ThreadKey
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		for _, s := range []struct {
			what string
			sql  string
			args []any
		}{
			{"blank the sends' answers", `UPDATE email.send_ledger SET answer = '', last_error = '' WHERE tenant_id = $1 AND id = ANY($2)`,
				[]any{e.TenantID, ids}},
			{"blank the subjects", `UPDATE email.messages SET subject = '' WHERE mailbox_id = ANY($1) AND external_id = ANY($2)`,
				[]any{mailboxes, keys}},
			{"forget the threads' mails", `DELETE FROM email.messages m USING unnest($1::text[], $2::text[]) AS t(mailbox_id, thread_key)
				WHERE m.mailbox_id = t.mailbox_id AND m.thread_key = t.thread_key`, []any{threadMailboxes, threadKeys}},
			{"forget the threads' tokens", `DELETE FROM email.threads h USING unnest($1::text[], $2::text[]) AS t(mailbox_id, thread_key)
				WHERE h.mailbox_id = t.mailbox_id AND h.thread_key = t.thread_key`, []any{threadMailboxes, threadKeys}},
			{"forget the threads' Outlook conversations", `DELETE FROM email.thread_roots r USING unnest($1::text[], $2::text[]) AS t(mailbox_id, thread_key)
				WHERE r.mailbox_id = t.mailbox_id AND r.thread_key = t.thread_key`, []any{threadMailboxes, threadKeys}},
		} {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("%s: %w", s.what, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply erasure %s: %w", e.ID, err)
	}
	c.log.InfoContext(ctx, "erasure applied", "erasure_id", e.ID, "tenant_id", e.TenantID, "reason", e.Reason,
		"messages", len(e.Messages), "conversations", len(e.Conversations), "identities", len(e.Identities))
	return nil
}
