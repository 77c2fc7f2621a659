package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// The admin's duties on data: anonymising a message ([000]), deleting a
// message or a conversation ([002]), erasing a contact (GDPR art. 17).
// Each is one transaction that scrubs every copy of the content the inbox
// keeps (contentCopies), writes the admin audit log (ids, never content),
// and puts in the outbox the conversation's changed event (which makes
// every inbox replica scrub its stream replay) and an Erase event per
// channel (which makes the connector forget its own copies). Blobs no
// message names any more are queued in blob_erasures and deleted from the
// blob store after the commit (SweepBlobs).

// contentCopies are the copies of message content the inbox keeps outside
// the messages row itself, and how each is scrubbed. THIS IS THE ONE
// PLACE to add a new copy (a table that copies a message's text, subject,
// names or attachments): anonymising, deleting a message, deleting a
// conversation and erasing a contact all run every entry, in order,
// before the messages rows change. Each statement gets one parameter, $1:
// the ids (uuid[]) of the messages erased, all of one tenant.
var contentCopies = []struct {
	name string
	sql  string
	// keys: the statement returns blob keys (RETURNING blob_key) that
	// hold the content too, to delete from the blob store.
	keys bool
}{
	// An agent's upload is the file a reply attached: the same name and
	// bytes as the message's attachment.
	{"uploads attached to the messages", `DELETE FROM inbox.uploads u
		USING inbox.messages m, jsonb_array_elements(m.attachments) a
		WHERE m.id = ANY($1::uuid[]) AND m.attachments IS NOT NULL AND jsonb_typeof(m.attachments) = 'array'
		  AND u.tenant_id = m.tenant_id AND u.blob_key = a ->> 'blob_key'`, false},
	// Events not yet published that carry the content: the message event
	// (the stream, the scheduler) and the send command (the connector).
	// A reply anonymised before its command left the outbox is never sent.
	{"outbox events carrying the messages", `DELETE FROM inbox.outbox o
		WHERE (o.headers @> '[{"k":"ce_type","v":"` + events.TypeConversationMessage + `"}]'
		    OR o.headers @> '[{"k":"ce_type","v":"` + events.TypeMessageTranslated + `"}]'
		    OR o.headers @> '[{"k":"ce_type","v":"` + events.TypeSendMessage + `"}]')
		  AND EXISTS (SELECT 1 FROM unnest($1::uuid[]) AS e(id) WHERE position(convert_to(e.id::text, 'UTF8') IN o.value) > 0)`, false},
	// A translation copies the message's text in another language, and
	// a reply sent translated keeps what the agent wrote.
	{"translations of the messages", `DELETE FROM inbox.message_translations WHERE message_id = ANY($1::uuid[])`, false},
	// An expert question's excerpt copies the messages it shares (names
	// replaced, but the rest of the text as written, and its files).
	{"expert question excerpts", `UPDATE inbox.expert_question_messages SET text = '', attachments = NULL
		WHERE message_id = ANY($1::uuid[])`, false},
	// A transcript sent by email renders every message of its
	// conversation: a mail still waiting in the outbox is not sent, and
	// the PDF kept for the email connector is deleted.
	{"transcripts waiting to be sent", `DELETE FROM inbox.outbox o USING inbox.transcripts t
		WHERE t.conversation_id IN (SELECT m.conversation_id FROM inbox.messages m WHERE m.id = ANY($1::uuid[]))
		  AND o.headers @> '[{"k":"ce_type","v":"` + events.TypeSendMail + `"}]'
		  AND o.key = convert_to(t.id::text, 'UTF8')`, false},
	{"transcripts' PDFs", `DELETE FROM inbox.transcripts t
		WHERE t.conversation_id IN (SELECT m.conversation_id FROM inbox.messages m WHERE m.id = ANY($1::uuid[]))
		RETURNING t.blob_key`, true},
}

// blobReferences are the places that may still name a blob key ($1) once
// an erasure scrubbed its own copies: a blob is deleted only when none
// does. Add here any table that keeps attachments' blob keys.
var blobReferences = []string{
	`SELECT EXISTS (SELECT 1 FROM inbox.messages m WHERE m.attachments IS NOT NULL
		AND m.attachments @> jsonb_build_array(jsonb_build_object('blob_key', $1::text)))`,
	`SELECT EXISTS (SELECT 1 FROM inbox.uploads u WHERE u.blob_key = $1)`,
	`SELECT EXISTS (SELECT 1 FROM inbox.templates t WHERE t.attachments @> jsonb_build_array(jsonb_build_object('blob_key', $1::text)))`,
}

// erasedMessage is what an erasure needs of a message.
type erasedMessage struct {
	id, conversation, account uuid.UUID
	externalID, direction     string
	channel, threadKey        string
	blobKeys                  []string
}

// erasedMessages reads the messages of tenant that cond selects (a SQL
// condition on m with $2, $3... from args), locking them.
func erasedMessages(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, cond string, args ...any) ([]erasedMessage, error) {
	rows, err := tx.Query(ctx, `SELECT m.id, m.conversation_id, m.channel_account_id, m.external_id, m.direction, c.channel, c.thread_key,
			coalesce((SELECT array_agg(a ->> 'blob_key') FROM jsonb_array_elements(CASE jsonb_typeof(m.attachments) WHEN 'array' THEN m.attachments ELSE '[]' END) a
			          WHERE coalesce(a ->> 'blob_key', '') <> ''), '{}')
		FROM inbox.messages m JOIN inbox.conversations c ON c.id = m.conversation_id
		WHERE m.tenant_id = $1 AND `+cond+` ORDER BY m.received_at, m.id FOR UPDATE OF m`, append([]any{tenant}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("find the messages to erase: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (erasedMessage, error) {
		var m erasedMessage
		err := r.Scan(&m.id, &m.conversation, &m.account, &m.externalID, &m.direction, &m.channel, &m.threadKey, &m.blobKeys)
		return m, err
	})
}

// scrubCopies runs contentCopies for msgs and returns the blob keys they
// named.
func scrubCopies(ctx context.Context, tx pgx.Tx, msgs []erasedMessage) ([]string, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(msgs))
	var keys []string
	for i, m := range msgs {
		ids[i] = m.id
		keys = append(keys, m.blobKeys...)
	}
	for _, c := range contentCopies {
		if !c.keys {
			if _, err := tx.Exec(ctx, c.sql, ids); err != nil {
				return nil, fmt.Errorf("scrub %s: %w", c.name, err)
			}
			continue
		}
		rows, err := tx.Query(ctx, c.sql, ids)
		if err != nil {
			return nil, fmt.Errorf("scrub %s: %w", c.name, err)
		}
		named, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("scrub %s: %w", c.name, err)
		}
		keys = append(keys, named...)
	}
	return keys, nil
}

// anonymiseRows blanks the content of msgs in place; the rows keep their
// times, account, direction, author, external id and delivery status.
func anonymiseRows(ctx context.Context, tx pgx.Tx, msgs []erasedMessage, by string, now time.Time) error {
	ids := make([]uuid.UUID, len(msgs))
	for i, m := range msgs {
		ids[i] = m.id
	}
	_, err := tx.Exec(ctx, `UPDATE inbox.messages SET body = '', html = NULL, subject = NULL, cc = NULL, metadata = NULL,
			attachments = NULL, sender = '', reply_to = NULL, choices = NULL, delivery_error = NULL,
			anonymised_at = coalesce(anonymised_at, $2), anonymised_by = coalesce(anonymised_by, $3)
		WHERE id = ANY($1::uuid[])`, ids, now, by)
	if err != nil {
		return fmt.Errorf("anonymise %d message(s): %w", len(msgs), err)
	}
	return nil
}

// queueBlobErasures queues, of keys, those no message or upload names any
// more, for SweepBlobs.
func queueBlobErasures(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, keys []string, now time.Time) error {
	seen := map[string]bool{}
next:
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		for _, q := range blobReferences {
			var used bool
			if err := tx.QueryRow(ctx, q, k).Scan(&used); err != nil {
				return fmt.Errorf("look for other references to a blob: %w", err)
			}
			if used {
				continue next
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inbox.blob_erasures (blob_key, tenant_id, queued_at) VALUES ($1, $2, $3)
			ON CONFLICT (blob_key) DO NOTHING`, k, tenant, now); err != nil {
			return fmt.Errorf("queue a blob's deletion: %w", err)
		}
	}
	return nil
}

// BlobDeleter deletes blobs (blob.Store).
type BlobDeleter interface {
	Delete(ctx context.Context, key string) error
}

// SweepBlobs deletes from blobs up to limit blobs that erasures queued,
// and returns how many it deleted. A failure leaves the rest queued for
// the next sweep.
func (s *Store) SweepBlobs(ctx context.Context, blobs BlobDeleter, limit int) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT blob_key FROM inbox.blob_erasures ORDER BY queued_at LIMIT $1`, limit)
	if err != nil {
		return 0, fmt.Errorf("read the blobs to delete: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("read the blobs to delete: %w", err)
	}
	for i, k := range keys {
		if err := blobs.Delete(ctx, k); err != nil {
			return i, fmt.Errorf("delete an erased blob: %w", err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM inbox.blob_erasures WHERE blob_key = $1`, k); err != nil {
			return i, fmt.Errorf("forget an erased blob: %w", err)
		}
	}
	return len(keys), nil
}

// AdminAuditEntry is one line of the admin audit log: who did which data
// duty, when, on which ids. It never holds content.
type AdminAuditEntry struct {
	ID             uuid.UUID      `json:"id"`
	At             time.Time      `json:"at"`
	ActorKind      string         `json:"actor_kind"`
	ActorID        string         `json:"actor_id"`
	Action         domain.Action  `json:"action"`
	ConversationID *uuid.UUID     `json:"conversation_id,omitempty"`
	MessageID      *uuid.UUID     `json:"message_id,omitempty"`
	ContactID      *uuid.UUID     `json:"contact_id,omitempty"`
	Data           map[string]int `json:"data"`
}

func writeAdminAudit(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, p domain.Principal, e AdminAuditEntry) error {
	if e.Data == nil {
		e.Data = map[string]int{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.admin_audit (id, tenant_id, at, actor_kind, actor_id, action, conversation_id, message_id, contact_id, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, uuid.New(), tenant, e.At, p.ActorKind(), p.ActorID(), string(e.Action),
		e.ConversationID, e.MessageID, e.ContactID, mustJSON(e.Data))
	if err != nil {
		return fmt.Errorf("write the admin audit log: %w", err)
	}
	return nil
}

// ListAdminAudit returns up to limit entries of tenant's admin audit log,
// newest first, after the position (nil: from the newest).
func (s *Store) ListAdminAudit(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]AdminAuditEntry, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (at, id) < ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor_kind, actor_id, action, conversation_id, message_id, contact_id, data
		FROM inbox.admin_audit WHERE tenant_id = $1`+where+` ORDER BY at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list the admin audit log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AdminAuditEntry, error) {
		var e AdminAuditEntry
		var data []byte
		if err := r.Scan(&e.ID, &e.At, &e.ActorKind, &e.ActorID, &e.Action, &e.ConversationID, &e.MessageID, &e.ContactID, &data); err != nil {
			return e, err
		}
		return e, json.Unmarshal(data, &e.Data)
	})
}

// eraseRecords are the Erase events telling the connector of channel to
// forget msgs, convs and identities, keyed by key (the conversation's, so
// that they follow its send commands on their partition), in chunks of
// events.MaxEraseItems.
func eraseRecords(tenant uuid.UUID, channel, reason string, key []byte, msgs []erasedMessage, convs []events.ErasedConversation,
	identities []string, now time.Time) ([]outbox.Record, error) {
	var recs []outbox.Record
	em := make([]events.ErasedMessage, len(msgs))
	for i, m := range msgs {
		em[i] = events.ErasedMessage{ID: m.id.String(), ExternalID: m.externalID, ChannelAccountID: m.account.String(),
			ConversationID: m.conversation.String(), Direction: m.direction}
	}
	for first := true; first || len(em) > 0 || len(convs) > 0 || len(identities) > 0; first = false {
		e := events.Erase{ID: uuid.NewString(), TenantID: tenant.String(), Channel: channel, Reason: reason}
		n := min(len(em), events.MaxEraseItems)
		e.Messages, em = em[:n], em[n:]
		n = min(len(convs), events.MaxEraseItems)
		e.Conversations, convs = convs[:n], convs[n:]
		n = min(len(identities), events.MaxEraseItems)
		e.Identities, identities = identities[:n], identities[n:]
		if len(e.Messages)+len(e.Conversations)+len(e.Identities) == 0 {
			break
		}
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("erase event: %w", err)
		}
		ev, err := events.NewWithID(e.ID, events.TypeErase, EventSource, e.TenantID, now, e)
		if err != nil {
			return nil, err
		}
		recs = append(recs, outbox.Record{Topic: events.TopicOutbound(channel), Key: key, Event: ev})
	}
	return recs, nil
}

// messageConversation returns the conversation of tenant's message id.
func (s *Store) messageConversation(ctx context.Context, tenant, id uuid.UUID) (uuid.UUID, error) {
	var conv uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT conversation_id FROM inbox.messages WHERE tenant_id = $1 AND id = $2`, tenant, id).Scan(&conv)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, domain.ErrNotFound
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("find message %s: %w", id, err)
	}
	return conv, nil
}

func actorRef(p domain.Principal) string { return p.ActorKind() + ":" + p.ActorID() }

// AnonymiseMessage erases the content of tenant's message id for p
// (irreversibly) and keeps the fact that it was sent: see anonymiseRows.
// Anonymising it again changes nothing. It returns the message as it is.
func (s *Store) AnonymiseMessage(ctx context.Context, p domain.Principal, tenant, id uuid.UUID, now time.Time) (Message, error) {
	conv, err := s.messageConversation(ctx, tenant, id)
	if err != nil {
		return Message{}, err
	}
	_, err = s.Act(ctx, p, conv, now, func(tx pgx.Tx, c *Conversation) (Change, error) {
		msgs, err := erasedMessages(ctx, tx, tenant, `m.id = $2 AND m.conversation_id = $3 AND m.anonymised_at IS NULL`, id, c.ID)
		if err != nil {
			return Change{}, err
		}
		if len(msgs) == 0 {
			var gone bool
			if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM inbox.messages WHERE id = $1 AND conversation_id = $2)`, id, c.ID).Scan(&gone); err != nil {
				return Change{}, fmt.Errorf("find message %s: %w", id, err)
			}
			if gone {
				return Change{}, domain.ErrNotFound
			}
			return Change{Noop: true}, nil
		}
		keys, err := scrubCopies(ctx, tx, msgs)
		if err != nil {
			return Change{}, err
		}
		if err := anonymiseRows(ctx, tx, msgs, actorRef(p), now); err != nil {
			return Change{}, err
		}
		if err := queueBlobErasures(ctx, tx, tenant, keys, now); err != nil {
			return Change{}, err
		}
		if err := writeAdminAudit(ctx, tx, tenant, p, AdminAuditEntry{At: now, Action: domain.ActionAnonymise, ConversationID: &c.ID, MessageID: &id,
			Data: map[string]int{"attachments": len(keys)}}); err != nil {
			return Change{}, err
		}
		recs, err := eraseRecords(tenant, c.Channel, events.EraseAnonymise, c.EventKey(), msgs, nil, nil, now)
		if err != nil {
			return Change{}, err
		}
		return Change{Action: domain.ActionAnonymise, Data: map[string]string{"message_id": id.String()}, Records: recs}, nil
	})
	if err != nil {
		return Message{}, err
	}
	return s.GetMessage(ctx, tenant, id)
}

// DeleteMessage deletes tenant's message id for p, with its blobs: the
// conversation's audit log says who deleted which message, and when.
func (s *Store) DeleteMessage(ctx context.Context, p domain.Principal, tenant, id uuid.UUID, now time.Time) error {
	conv, err := s.messageConversation(ctx, tenant, id)
	if err != nil {
		return err
	}
	_, err = s.Act(ctx, p, conv, now, func(tx pgx.Tx, c *Conversation) (Change, error) {
		msgs, err := erasedMessages(ctx, tx, tenant, `m.id = $2 AND m.conversation_id = $3`, id, c.ID)
		if err != nil {
			return Change{}, err
		}
		if len(msgs) == 0 {
			return Change{}, domain.ErrNotFound
		}
		keys, err := scrubCopies(ctx, tx, msgs)
		if err != nil {
			return Change{}, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox.messages WHERE id = $1`, id); err != nil {
			return Change{}, fmt.Errorf("delete message %s: %w", id, err)
		}
		// The conversation's last message is the latest one left (its
		// start when none is).
		if err := tx.QueryRow(ctx, `UPDATE inbox.conversations c SET last_message_at =
				coalesce((SELECT max(m.received_at) FROM inbox.messages m WHERE m.conversation_id = c.id), c.started_at)
			WHERE c.id = $1 RETURNING last_message_at`, c.ID).Scan(&c.LastMessageAt); err != nil {
			return Change{}, fmt.Errorf("update the last message of conversation %s: %w", c.ID, err)
		}
		if err := queueBlobErasures(ctx, tx, tenant, keys, now); err != nil {
			return Change{}, err
		}
		if err := writeAdminAudit(ctx, tx, tenant, p, AdminAuditEntry{At: now, Action: domain.ActionDeleteMessage, ConversationID: &c.ID, MessageID: &id,
			Data: map[string]int{"attachments": len(keys)}}); err != nil {
			return Change{}, err
		}
		recs, err := eraseRecords(tenant, c.Channel, events.EraseDelete, c.EventKey(), msgs, nil, nil, now)
		if err != nil {
			return Change{}, err
		}
		return Change{Action: domain.ActionDeleteMessage, Data: map[string]string{"message_id": id.String()}, Records: recs}, nil
	})
	return err
}

// lockVisibleConversation locks tenant's conversation id for p:
// ErrNotFound when there is none or p may not see it.
func lockVisibleConversation(ctx context.Context, tx pgx.Tx, p domain.Principal, tenant, id uuid.UUID) (Conversation, error) {
	c, err := lockConversation(ctx, tx, tenant.String(), id)
	if err != nil {
		return Conversation{}, err
	}
	if !c.VisibleTo(p) {
		return Conversation{}, domain.ErrNotFound
	}
	return c, nil
}

// finalEvent is the last changed event of a conversation an erasure
// closes or scrubs: the conversation done (a deleted one), with nobody
// assigned, so that the router offers it no more and the scheduler drops
// its timers; its contact's name is not carried.
func finalEvent(p domain.Principal, action domain.Action, c Conversation, key []byte, done bool, now time.Time) (outbox.Record, error) {
	from := c.State
	if done {
		c.State, c.PreviousState = domain.StateDone, from
		c.Assignees = []uuid.UUID{}
	}
	settle(&c, from, now)
	c.ContactName = ""
	rec, err := changedEvent(action, actorOf(p), from, "", nil, c, now)
	if err != nil {
		return outbox.Record{}, err
	}
	rec.Key = key
	return rec, nil
}

// DeleteConversation deletes tenant's conversation id for p with its
// messages, blobs, audit log and recorded commands; the admin audit log
// keeps who deleted it, and when.
func (s *Store) DeleteConversation(ctx context.Context, p domain.Principal, tenant, id uuid.UUID, now time.Time) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		c, err := lockVisibleConversation(ctx, tx, p, tenant, id)
		if err != nil {
			return err
		}
		msgs, err := erasedMessages(ctx, tx, tenant, `m.conversation_id = $2`, id)
		if err != nil {
			return err
		}
		keys, err := scrubCopies(ctx, tx, msgs)
		if err != nil {
			return err
		}
		for _, stmt := range []string{
			`DELETE FROM inbox.messages WHERE conversation_id = $1`,
			`DELETE FROM inbox.conversation_audit WHERE conversation_id = $1`,
			`DELETE FROM inbox.applied_commands WHERE conversation_id = $1`,
			`DELETE FROM inbox.conversations WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, stmt, id); err != nil {
				return fmt.Errorf("delete conversation %s: %w", id, err)
			}
		}
		// Its events still in the outbox go unpublished: the last one
		// below says all there is left to say.
		if _, err := tx.Exec(ctx, `DELETE FROM inbox.outbox WHERE key = $1`, c.EventKey()); err != nil {
			return fmt.Errorf("drop the unpublished events of conversation %s: %w", id, err)
		}
		if err := queueBlobErasures(ctx, tx, tenant, keys, now); err != nil {
			return err
		}
		if err := writeAdminAudit(ctx, tx, tenant, p, AdminAuditEntry{At: now, Action: domain.ActionDeleteConversation, ConversationID: &c.ID,
			ContactID: &c.ContactID, Data: map[string]int{"messages": len(msgs), "attachments": len(keys)}}); err != nil {
			return err
		}
		last, err := finalEvent(p, domain.ActionDeleteConversation, c, c.EventKey(), true, now)
		if err != nil {
			return err
		}
		erase, err := eraseRecords(tenant, c.Channel, events.EraseDelete, c.EventKey(), msgs,
			[]events.ErasedConversation{{ID: c.ID.String(), ChannelAccountID: c.ChannelAccountID.String(), ThreadKey: c.ThreadKey}}, nil, now)
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, append([]outbox.Record{last}, erase...)...)
	})
}

// ErasedContact says what erasing a contact did.
type ErasedContact struct {
	ContactID     uuid.UUID `json:"contact_id"`
	Conversations int       `json:"conversations"`
	Messages      int       `json:"messages"`
	// KeptIdentities are the SMS numbers kept because their customer
	// opted out (STOP): the opt-out must outlive the erasure, or the next
	// text would go to someone who refused them.
	KeptIdentities int `json:"kept_identities"`
}

// EraseContact erases tenant's contact id for p (GDPR art. 17): name,
// avatar, notes, identities (but an SMS opt-out) go; every message of
// their conversations is anonymised; the conversations stay as facts
// (state, times, channel), their thread keys replaced, so that a new
// message from the same identity opens a new conversation.
func (s *Store) EraseContact(ctx context.Context, p domain.Principal, tenant, id uuid.UUID, now time.Time) (ErasedContact, error) {
	out := ErasedContact{ContactID: id}
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var found bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE)`, tenant, id).Scan(&found); err != nil {
			return fmt.Errorf("lock contact %s: %w", id, err)
		}
		if !found {
			return domain.ErrNotFound
		}
		type identity struct{ channel, identity string }
		rows, err := tx.Query(ctx, `DELETE FROM inbox.contact_identities WHERE tenant_id = $1 AND contact_id = $2
			AND NOT (channel = 'sms' AND consent IS NOT DISTINCT FROM 'opted_out') RETURNING channel, identity`, tenant, id)
		if err != nil {
			return fmt.Errorf("erase the identities of contact %s: %w", id, err)
		}
		ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (identity, error) {
			var i identity
			return i, r.Scan(&i.channel, &i.identity)
		})
		if err != nil {
			return fmt.Errorf("erase the identities of contact %s: %w", id, err)
		}
		byChannel := map[string][]string{}
		for _, i := range ids {
			byChannel[i.channel] = append(byChannel[i.channel], i.identity)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM inbox.contact_identities WHERE tenant_id = $1 AND contact_id = $2`, tenant, id).Scan(&out.KeptIdentities); err != nil {
			return fmt.Errorf("count the kept identities of contact %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox.contact_notes WHERE contact_id = $1`, id); err != nil {
			return fmt.Errorf("erase the notes on contact %s: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox.contacts SET name = '', avatar_url = '', preferred_language = '', custom_fields = '{}', erased_at = coalesce(erased_at, $2)
			WHERE id = $1`, id, now); err != nil {
			return fmt.Errorf("erase contact %s: %w", id, err)
		}
		rows, err = tx.Query(ctx, `SELECT `+conversationColumns+` FROM inbox.conversations c
			WHERE c.tenant_id = $1 AND c.contact_id = $2 ORDER BY c.started_at, c.id FOR UPDATE OF c`, tenant, id)
		if err != nil {
			return fmt.Errorf("lock the conversations of contact %s: %w", id, err)
		}
		convs, err := pgx.CollectRows(rows, scanConversation)
		if err != nil {
			return fmt.Errorf("lock the conversations of contact %s: %w", id, err)
		}
		var recs []outbox.Record
		erasedChannels := map[string]bool{}
		for _, c := range convs {
			msgs, err := erasedMessages(ctx, tx, tenant, `m.conversation_id = $2`, c.ID)
			if err != nil {
				return err
			}
			keys, err := scrubCopies(ctx, tx, msgs)
			if err != nil {
				return err
			}
			if len(msgs) > 0 {
				if err := anonymiseRows(ctx, tx, msgs, actorRef(p), now); err != nil {
					return err
				}
			}
			if err := queueBlobErasures(ctx, tx, tenant, keys, now); err != nil {
				return err
			}
			key := c.EventKey()
			// Unpublished events name the contact (the snapshot's name,
			// a command's recipient): the one below replaces them.
			if _, err := tx.Exec(ctx, `DELETE FROM inbox.outbox WHERE key = $1`, key); err != nil {
				return fmt.Errorf("drop the unpublished events of conversation %s: %w", c.ID, err)
			}
			oldThread := c.ThreadKey
			c.ThreadKey = "erased:" + c.ID.String()
			c.CompletionNotes = ""
			from := c.State
			last, err := finalEvent(p, domain.ActionEraseContact, c, key, false, now)
			if err != nil {
				return err
			}
			settle(&c, from, now)
			if err := writeConversation(ctx, tx, c); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE inbox.conversations SET thread_key = $2, recipient = NULL WHERE id = $1`, c.ID, c.ThreadKey); err != nil {
				return fmt.Errorf("forget the thread of conversation %s: %w", c.ID, err)
			}
			if err := writeAudit(ctx, tx, auditOf(c, from, p.ActorKind(), p.ActorID(), Change{Action: domain.ActionEraseContact}, now)); err != nil {
				return err
			}
			erase, err := eraseRecords(tenant, c.Channel, events.EraseContact, key, msgs,
				[]events.ErasedConversation{{ID: c.ID.String(), ChannelAccountID: c.ChannelAccountID.String(), ThreadKey: oldThread}},
				byChannel[c.Channel], now)
			if err != nil {
				return err
			}
			erasedChannels[c.Channel] = true
			recs = append(recs, last)
			recs = append(recs, erase...)
			out.Conversations++
			out.Messages += len(msgs)
		}
		// Identities on channels where the contact has no conversation
		// are forgotten too.
		for ch, list := range byChannel {
			if erasedChannels[ch] {
				continue
			}
			erase, err := eraseRecords(tenant, ch, events.EraseContact, []byte(tenant.String()+"/"+ch+"/erase/"+id.String()), nil, nil, list, now)
			if err != nil {
				return err
			}
			recs = append(recs, erase...)
		}
		if err := writeAdminAudit(ctx, tx, tenant, p, AdminAuditEntry{At: now, Action: domain.ActionEraseContact, ContactID: &id,
			Data: map[string]int{"conversations": out.Conversations, "messages": out.Messages, "identities": len(ids), "kept_identities": out.KeptIdentities}}); err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, recs...)
	})
	return out, err
}
