package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Change is what an action did, for the audit log and the event.
type Change struct {
	Action domain.Action
	Reason string
	Data   any
	// Records are more events to commit with it (a reply's send command).
	Records []outbox.Record
	// Message is a message the action added (a reply), announced too.
	Message *Message
	// Noop: the action changes nothing (blocking a bot already blocked):
	// nothing is written, audited or published, and the conversation is
	// answered as it is.
	Noop bool
	// Earlier is a change the same action made before this one (the reply
	// of "send and ask for help"), with the conversation as it stood after
	// it: it is audited and announced first, as a change of its own.
	Earlier *Earlier
}

// Earlier is a change made before another in one action, and the
// conversation as it stood after it.
type Earlier struct {
	Change       Change
	Conversation Conversation
}

// Act applies an action to a conversation in one transaction: it locks the
// conversation, hides it from a principal who may not see it (ErrNotFound),
// lets fn check the rules and change it, then writes it, the audit log
// entry and the events.
func (s *Store) Act(ctx context.Context, p domain.Principal, id uuid.UUID, now time.Time, fn func(tx pgx.Tx, c *Conversation) (Change, error)) (Conversation, error) {
	var out Conversation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		c, err := lockConversation(ctx, tx, p.Tenant, id)
		if err != nil {
			return err
		}
		if !c.VisibleTo(p) {
			return domain.ErrNotFound
		}
		out, err = s.apply(ctx, tx, p, c, now, fn)
		return err
	})
	return out, err
}

// lockConversation reads a conversation of tenant and locks it for the
// rest of tx; ErrNotFound when there is none. It checks no visibility:
// its callers do.
func lockConversation(ctx context.Context, tx pgx.Tx, tenant string, id uuid.UUID) (Conversation, error) {
	rows, err := tx.Query(ctx, `SELECT `+conversationColumns+` FROM inbox.conversations c
		WHERE c.tenant_id = $1 AND c.id = $2 FOR UPDATE OF c`, tenant, id)
	if err != nil {
		return Conversation{}, fmt.Errorf("lock conversation: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanConversation)
	if errors.Is(err, pgx.ErrNoRows) {
		return Conversation{}, domain.ErrNotFound
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("lock conversation: %w", err)
	}
	return c, nil
}

// apply runs an action on c, locked in tx, by p: fn checks the rules and
// changes c, then the conversation, the audit log entry and the events are
// written in tx. It returns the conversation after the action.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, p domain.Principal, c Conversation, now time.Time, fn func(tx pgx.Tx, c *Conversation) (Change, error)) (Conversation, error) {
	from := c.State
	change, err := fn(tx, &c)
	if err != nil {
		return Conversation{}, err
	}
	if change.Noop {
		return c, nil
	}
	var (
		audits []auditEntry
		recs   []outbox.Record
	)
	if e := change.Earlier; e != nil {
		step := e.Conversation
		settle(&step, from, now)
		audits = append(audits, auditOf(step, from, p.ActorKind(), p.ActorID(), e.Change, now))
		stepRecs, err := changeRecords(e.Change, actorOf(p), from, step, now)
		if err != nil {
			return Conversation{}, err
		}
		recs = append(recs, stepRecs...)
		c.Version, c.StateVersion, c.StateSince = step.Version, step.StateVersion, step.StateSince
		from = step.State
	}
	settle(&c, from, now)
	if err := writeConversation(ctx, tx, c); err != nil {
		return Conversation{}, err
	}
	audits = append(audits, auditOf(c, from, p.ActorKind(), p.ActorID(), change, now))
	if err := writeAudit(ctx, tx, audits...); err != nil {
		return Conversation{}, err
	}
	lastRecs, err := changeRecords(change, actorOf(p), from, c, now)
	if err != nil {
		return Conversation{}, err
	}
	if err := s.outbox.Add(ctx, tx, append(recs, lastRecs...)...); err != nil {
		return Conversation{}, err
	}
	return c, nil
}

// settle completes a change to c made at now, from state from: the
// version, the entry into a new state, and what belongs to the state it
// left.
func settle(c *Conversation, from domain.State, now time.Time) {
	c.UpdatedAt = now
	c.Version++
	if from != c.State {
		c.StateVersion, c.StateSince = c.Version, now
	}
	if c.State != domain.StateDeferred {
		c.DeferredUntil = nil
	}
	if c.State != domain.StateOffered {
		c.OfferExpiresAt = nil
	}
	if c.State != domain.StateClosing {
		c.ClosingAskedAt = nil
	}
}

// auditOf is the audit entry of a change to c from state from.
func auditOf(c Conversation, from domain.State, actorKind, actorID string, change Change, now time.Time) auditEntry {
	entry := auditEntry{tenant: c.Tenant, conversation: c.ID, actorKind: actorKind, actorID: actorID,
		action: change.Action, reason: change.Reason, data: change.Data, at: now}
	if from != c.State {
		entry.from, entry.to = from, c.State
	}
	return entry
}

// changeRecords are the events of a change: the conversation as it is
// after it, the change's own records, and the message it added.
func changeRecords(change Change, actor events.Actor, from domain.State, c Conversation, now time.Time) ([]outbox.Record, error) {
	rec, err := changedEvent(change.Action, actor, from, change.Reason, change.Data, c, now)
	if err != nil {
		return nil, err
	}
	recs := append([]outbox.Record{rec}, change.Records...)
	if change.Message != nil {
		mrec, err := messageEvent(*change.Message, c, now)
		if err != nil {
			return nil, err
		}
		recs = append(recs, mrec)
	}
	return recs, nil
}

// writeConversation stores every field an action may change.
func writeConversation(ctx context.Context, tx pgx.Tx, c Conversation) error {
	sql, args, err := conversationUpdate(c)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("write conversation %s: %w", c.ID, err)
	}
	return nil
}

// conversationUpdate is the statement that stores every field an action
// may change.
func conversationUpdate(c Conversation) (string, []any, error) {
	tags, err := json.Marshal(c.Tags)
	if err != nil {
		return "", nil, fmt.Errorf("encode tags: %w", err)
	}
	var prev, disposition, notes *string
	if c.PreviousState != "" {
		s := string(c.PreviousState)
		prev = &s
	}
	if c.Disposition != "" {
		disposition = &c.Disposition
	}
	if c.CompletionNotes != "" {
		notes = &c.CompletionNotes
	}
	return `UPDATE inbox.conversations SET state = $2, previous_state = $3, queue_id = $4, assignee_ids = $5,
		last_agent_id = $6, fence = $7, required_skill_id = $8, required_language = $9, priority = $10, language = $11,
		tags = $12, flagged = $13, locked = $14, ignored = $15, muted = $16, unread = $17, last_writer = $18,
		deferred_until = $19, disposition = $20, completion_notes = $21, updated_at = $22,
		version = $23, state_version = $24, state_since = $25, offer_expires_at = $26, closing_asked_at = $27, bot_blocked = $28
		WHERE id = $1`, []any{
			c.ID, string(c.State), prev, c.QueueID, c.Assignees, c.LastAgentID, c.Fence, c.RequiredSkillID, c.RequiredLanguage,
			c.Priority, c.Language, tags, c.Flagged, c.Locked, c.Ignored, c.Muted, c.Unread, c.LastWriter, c.DeferredUntil,
			disposition, notes, c.UpdatedAt, c.Version, c.StateVersion, c.StateSince, c.OfferExpiresAt, c.ClosingAskedAt, c.BotBlocked}, nil
}

// Assign makes user the conversation's only assignee and moves it to
// assigned. fence is the token of the user's Redis lease on the
// conversation: a lease older than the one that last assigned it (its
// holder paused past its expiry) is refused.
func Assign(c *Conversation, user uuid.UUID, fence int64) error {
	if fence < c.Fence {
		return &domain.ConflictError{State: c.State, Reason: "another assignment happened meanwhile (stale fencing token)"}
	}
	if c.State != domain.StateAssigned {
		c.PreviousState = c.State
	}
	c.State = domain.StateAssigned
	c.Assignees = []uuid.UUID{user}
	c.LastAgentID = &user
	c.Fence = fence
	c.DeferredUntil = nil
	return nil
}

// ReplyInput is what an agent sends.
type ReplyInput struct {
	Text string
	// HTML, when set, is the text's alternative as sanitised HTML (email
	// only).
	HTML    string
	Subject string
	CC      []string
	// Attachments are uploads to send with the text, blob keys included.
	Attachments []events.Attachment
	// ReplyToAgent asks the customer to answer the replying user's own
	// address rather than the channel account's (email only; the
	// principal must be a user).
	ReplyToAgent bool
	// Translation, when set, is the reply's translation: Text is its
	// translation into the customer's language (then Text of the reply
	// too), Original what the agent wrote; a failed one was sent as
	// written (fallback).
	Translation *Translation
}

// Reply adds an agent's message to the conversation, moves it to answered
// and returns the change, whose records carry the send command for the
// channel's connector. Mandatory tags without a value on the customer's
// latest message refuse it.
func (s *Store) Reply(ctx context.Context, tx pgx.Tx, p domain.Principal, c *Conversation, in ReplyInput, now time.Time) (Change, error) {
	if err := domain.Reply(p, c.Domain()); err != nil {
		return Change{}, err
	}
	var missing []string
	rows, err := tx.Query(ctx, `SELECT name FROM inbox.tag_lists t WHERE t.tenant_id = $1 AND t.mandatory
		AND NOT ($2::jsonb ? t.id::text) ORDER BY name`, c.Tenant, mustJSON(c.Tags))
	if err != nil {
		return Change{}, fmt.Errorf("check mandatory tags: %w", err)
	}
	if missing, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return Change{}, fmt.Errorf("check mandatory tags: %w", err)
	}
	if len(missing) > 0 {
		return Change{}, &domain.MissingTagsError{Lists: missing}
	}
	cust, err := lastCustomer(ctx, tx, c)
	if err != nil {
		return Change{}, err
	}
	if c.Channel == events.ChannelSMS && cust.consent == ConsentOptedOut {
		return Change{}, &domain.OptedOutError{Field: "to", To: cust.to}
	}
	if c.Channel == events.ChannelEmail && in.Subject == "" {
		in.Subject = replySubject(cust.subject)
	}
	var replyTo string
	if in.ReplyToAgent {
		err := tx.QueryRow(ctx, `SELECT email FROM inbox.users WHERE tenant_id = $1 AND id::text = $2`, c.Tenant, p.UserID).Scan(&replyTo)
		if errors.Is(err, pgx.ErrNoRows) {
			return Change{}, domain.Invalid("reply_to", "agent needs a user with an email address")
		}
		if err != nil {
			return Change{}, fmt.Errorf("find the agent's address: %w", err)
		}
	}
	m, cmd, err := s.compose(ctx, tx, c, cust, draft{text: in.Text, html: in.HTML, subject: in.Subject, cc: in.CC, attachments: in.Attachments,
		replyTo: replyTo, author: p.ActorID(), language: replyLanguage(in.Translation)}, now)
	if err != nil {
		return Change{}, err
	}
	if tr := in.Translation; tr != nil {
		if err := insertReplyTranslation(ctx, tx, c, &m, *tr, now); err != nil {
			return Change{}, err
		}
	}
	if uid, err := uuid.Parse(p.UserID); err == nil {
		c.LastAgentID = &uid
	}
	c.PreviousState = c.State
	c.State = domain.StateAnswered
	c.Assignees = []uuid.UUID{}
	c.LastWriter = "agent"
	c.Unread = false
	return Change{Action: domain.ActionReply, Data: map[string]string{"message_id": m.ID.String()},
		Records: []outbox.Record{cmd}, Message: &m}, nil
}

// replyLanguage is the language of a reply sent translated, "" for the
// conversation's.
func replyLanguage(tr *Translation) string {
	if tr != nil && tr.State == TranslationDone {
		return tr.TargetLanguage
	}
	return ""
}

// replySubject is the subject of a reply to an email about subject: the
// same, marked as a reply once (RFC 5322 section 3.6.5), on one line.
func replySubject(subject string) string {
	subject = strings.Join(strings.Fields(subject), " ")
	if subject == "" {
		return ""
	}
	if len(subject) >= 3 && strings.EqualFold(subject[:3], "re:") {
		return subject
	}
	return "Re: " + subject
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		// Only maps of strings and attachments (strings, numbers and
		// booleans) reach here, which always marshal.
		panic(err)
	}
	return raw
}

// UserInTenant checks that user is an enabled user of tenant.
func UserInTenant(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.users WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL)`, tenant, user).Scan(&ok)
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if !ok {
		return domain.ErrNotFound
	}
	return nil
}

// QueueInTenant checks that queue belongs to tenant.
func QueueInTenant(ctx context.Context, tx pgx.Tx, tenant, queue uuid.UUID) error {
	return exists(ctx, tx, `SELECT EXISTS (SELECT 1 FROM inbox.queues WHERE tenant_id = $1 AND id = $2)`, tenant, queue)
}

// SkillInTenant checks that skill belongs to tenant.
func SkillInTenant(ctx context.Context, tx pgx.Tx, tenant, skill uuid.UUID) error {
	return exists(ctx, tx, `SELECT EXISTS (SELECT 1 FROM inbox.skills WHERE tenant_id = $1 AND id = $2)`, tenant, skill)
}

func exists(ctx context.Context, tx pgx.Tx, sql string, args ...any) error {
	var ok bool
	if err := tx.QueryRow(ctx, sql, args...).Scan(&ok); err != nil {
		return fmt.Errorf("look up: %w", err)
	}
	if !ok {
		return domain.ErrNotFound
	}
	return nil
}

// QualifyMessage sets a message's language and tags. When the message is
// the conversation's latest, the conversation takes them too: tags carry
// over from it to the next message, and its language is the
// conversation's.
func (s *Store) QualifyMessage(ctx context.Context, tx pgx.Tx, c *Conversation, message uuid.UUID, lang *string, tags map[string]string) (Change, error) {
	data := map[string]any{"message_id": message.String()}
	if tags != nil {
		rows, err := tx.Query(ctx, `SELECT id::text, "values" FROM inbox.tag_lists WHERE tenant_id = $1`, c.Tenant)
		if err != nil {
			return Change{}, fmt.Errorf("read tag lists: %w", err)
		}
		lists := map[string][]string{}
		for rows.Next() {
			var id string
			var values []string
			if err := rows.Scan(&id, &values); err != nil {
				rows.Close()
				return Change{}, fmt.Errorf("read tag lists: %w", err)
			}
			lists[id] = values
		}
		if err := rows.Err(); err != nil {
			return Change{}, fmt.Errorf("read tag lists: %w", err)
		}
		for list, value := range tags {
			values, ok := lists[list]
			if !ok {
				return Change{}, domain.Invalid("tags."+list, "is not a tag list of this tenant")
			}
			if !slices.Contains(values, value) {
				return Change{}, domain.Invalid("tags."+list, fmt.Sprintf("%q is not one of the list's values", value))
			}
		}
		data["tags"] = tags
	}
	if lang != nil {
		data["language"] = *lang
	}
	var latest bool
	err := tx.QueryRow(ctx, `UPDATE inbox.messages m SET
			tags = coalesce($3::jsonb, m.tags), language = coalesce($4, m.language)
		WHERE m.id = $1 AND m.conversation_id = $2
		RETURNING NOT EXISTS (SELECT 1 FROM inbox.messages n WHERE n.conversation_id = m.conversation_id
			AND (n.received_at, n.id) > (m.received_at, m.id))`,
		message, c.ID, nullableJSON(tags), lang).Scan(&latest)
	if errors.Is(err, pgx.ErrNoRows) {
		return Change{}, domain.ErrNotFound
	}
	if err != nil {
		return Change{}, fmt.Errorf("qualify message: %w", err)
	}
	if latest {
		if tags != nil {
			c.Tags = tags
		}
		if lang != nil {
			c.Language = *lang
		}
	}
	action := domain.ActionTags
	if tags == nil {
		action = domain.ActionLanguage
	}
	return Change{Action: action, Data: data}, nil
}

func nullableJSON(tags map[string]string) []byte {
	if tags == nil {
		return nil
	}
	return mustJSON(tags)
}

// Detected is a message's detected language.
type Detected struct {
	MessageID      uuid.UUID
	ConversationID uuid.UUID
	Language       string
}

// SetLanguages stores detected languages on messages that have none yet
// (an agent's correction wins), and on their conversations when the
// message is the latest one.
func (s *Store) SetLanguages(ctx context.Context, found []Detected) error {
	// Strings, not [16]byte: a statement run without a prior describe
	// (QueryExecModeExec) sends its parameters as text.
	ids, langs := make([]string, len(found)), make([]string, len(found))
	for i, d := range found {
		ids[i], langs[i] = d.MessageID.String(), d.Language
	}
	// Planned per call (QueryExecModeExec): a plan cached while the tables
	// were small would join by scanning them.
	_, err := s.pool.Exec(ctx, `WITH d AS (
			SELECT * FROM unnest($1::uuid[], $2::text[]) AS d(id, language)),
		set AS (
			UPDATE inbox.messages m SET language = d.language FROM d
			WHERE m.id = d.id AND m.language = ''
			RETURNING m.conversation_id, m.received_at, m.id, m.language)
		UPDATE inbox.conversations c SET language = latest.language
		FROM (SELECT DISTINCT ON (conversation_id) conversation_id, language, received_at, id
		      FROM set ORDER BY conversation_id, received_at DESC, id DESC) latest
		WHERE c.id = latest.conversation_id
		  AND NOT EXISTS (SELECT 1 FROM inbox.messages n WHERE n.conversation_id = c.id AND n.direction = 'inbound'
		                  AND (n.received_at, n.id) > (latest.received_at, latest.id))`, pgx.QueryExecModeExec, ids, langs)
	if err != nil {
		return fmt.Errorf("store detected languages: %w", err)
	}
	return nil
}
