package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Position is a place in an ordered list: the sort time and the id.
type Position struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

// Filter selects conversations. Zero values do not filter.
type Filter struct {
	States         []domain.State
	Channel        string
	ChannelAccount *uuid.UUID
	Queue          *uuid.UUID
	// NoQueue selects conversations no queue holds yet.
	NoQueue    bool
	Assignee   *uuid.UUID
	TagList    string
	TagValue   string
	Language   string
	Flagged    *bool
	Unread     *bool
	LastWriter string
	From, To   *time.Time
	// Query is a full-text search over message bodies.
	Query string
}

// where builds the conditions of f for principal p, numbering parameters
// after args.
func (f Filter) where(p domain.Principal, args []any) (string, []any) {
	conds := []string{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds = append(conds, "c.tenant_id = "+arg(p.Tenant))
	if !p.Can(domain.PermSeeAll) {
		// What an agent sees: their queues, no queue yet, or assigned to
		// them (domain.Principal.Sees).
		vis := []string{"c.queue_id IS NULL"}
		if len(p.Queues) > 0 {
			vis = append(vis, "c.queue_id = ANY("+arg(p.Queues)+"::uuid[])")
		}
		if p.UserID != "" {
			vis = append(vis, "c.assignee_ids @> ARRAY["+arg(p.UserID)+"::uuid]")
		}
		conds = append(conds, "("+strings.Join(vis, " OR ")+")")
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		conds = append(conds, "c.state = ANY("+arg(states)+"::text[])")
	}
	if f.Channel != "" {
		conds = append(conds, "c.channel = "+arg(f.Channel))
	}
	if f.ChannelAccount != nil {
		conds = append(conds, "c.channel_account_id = "+arg(*f.ChannelAccount))
	}
	if f.Queue != nil {
		conds = append(conds, "c.queue_id = "+arg(*f.Queue))
	}
	if f.NoQueue {
		conds = append(conds, "c.queue_id IS NULL")
	}
	if f.Assignee != nil {
		conds = append(conds, "c.assignee_ids @> ARRAY["+arg(*f.Assignee)+"::uuid]")
	}
	if f.TagList != "" {
		raw, _ := json.Marshal(map[string]string{f.TagList: f.TagValue}) // strings always marshal
		conds = append(conds, "c.tags @> "+arg(string(raw))+"::jsonb")
	}
	if f.Language != "" {
		conds = append(conds, "c.language = "+arg(f.Language))
	}
	if f.Flagged != nil {
		conds = append(conds, "c.flagged = "+arg(*f.Flagged))
	}
	if f.Unread != nil {
		conds = append(conds, "c.unread = "+arg(*f.Unread))
	}
	if f.LastWriter != "" {
		conds = append(conds, "c.last_writer = "+arg(f.LastWriter))
	}
	if f.From != nil {
		conds = append(conds, "c.started_at >= "+arg(*f.From))
	}
	if f.To != nil {
		conds = append(conds, "c.started_at < "+arg(*f.To))
	}
	if f.Query != "" {
		// The tenant condition inside lets the planner start from the
		// search index and drop other tenants' matches early.
		conds = append(conds, `EXISTS (SELECT 1 FROM inbox.messages m
			WHERE m.conversation_id = c.id AND to_tsvector('simple', m.body) @@ plainto_tsquery('simple', `+arg(f.Query)+`))`)
	}
	return strings.Join(conds, " AND "), args
}

// ListConversations returns up to limit conversations matching f that p
// may see, after the position (nil: from the start), oldest start first.
func (s *Store) ListConversations(ctx context.Context, p domain.Principal, f Filter, after *Position, limit int) ([]Conversation, error) {
	where, args := f.where(p, nil)
	if after != nil {
		args = append(args, after.At, after.ID)
		where += fmt.Sprintf(" AND (c.started_at, c.id) > ($%d, $%d)", len(args)-1, len(args))
	}
	args = append(args, limit)
	// Planned for this call's values (QueryExecModeExec), not once for
	// all: a list query has many shapes, and how selective a filter or a
	// search is decides the plan.
	rows, err := s.pool.Query(ctx, `SELECT `+conversationColumns+`
		FROM inbox.conversations c WHERE `+where+`
		ORDER BY c.started_at, c.id LIMIT $`+strconv.Itoa(len(args)), append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return pgx.CollectRows(rows, scanConversation)
}

// MarkRead sets unread = false on every conversation matching f that p may
// see, and returns how many changed.
func (s *Store) MarkRead(ctx context.Context, p domain.Principal, f Filter, now time.Time) (int64, error) {
	where, args := f.where(p, nil)
	args = append(args, now)
	tag, err := s.pool.Exec(ctx, `UPDATE inbox.conversations c SET unread = false, updated_at = $`+strconv.Itoa(len(args))+`
		WHERE c.unread AND `+where, args...)
	if err != nil {
		return 0, fmt.Errorf("mark read: %w", err)
	}
	return tag.RowsAffected(), nil
}

// GetConversation returns a conversation of tenant; ErrNotFound when
// there is none.
func (s *Store) GetConversation(ctx context.Context, tenant, id uuid.UUID) (Conversation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+conversationColumns+` FROM inbox.conversations c WHERE c.tenant_id = $1 AND c.id = $2`, tenant, id)
	if err != nil {
		return Conversation{}, fmt.Errorf("get conversation: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanConversation)
	if errors.Is(err, pgx.ErrNoRows) {
		return Conversation{}, ErrNotFound
	}
	if err != nil {
		return Conversation{}, fmt.Errorf("get conversation: %w", err)
	}
	return c, nil
}

// Message is a message as the API shows it.
type Message struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	Direction      string    `json:"direction"`
	Sender         string    `json:"sender"`
	AuthorID       string    `json:"author_id,omitempty"`
	// AuthorKind is "bot" on a message the chat channel's bot wrote to
	// the customer (direction outbound, AuthorName the bot's name); absent
	// on the others, whose author the direction says.
	AuthorKind        string            `json:"author_kind,omitempty"`
	AuthorName        string            `json:"author_name,omitempty"`
	Body              string            `json:"body"`
	Subject           string            `json:"subject,omitempty"`
	CC                []string          `json:"cc,omitempty"`
	HTML              string            `json:"html,omitempty"`
	Automatic         bool              `json:"automatic"`
	Attachments       []Attachment      `json:"attachments,omitempty"`
	ExternalID        string            `json:"external_id"`
	Language          string            `json:"language"`
	Tags              map[string]string `json:"tags"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	SentAt            *time.Time        `json:"sent_at,omitempty"`
	ReceivedAt        time.Time         `json:"received_at"`
	DeliveryStatus    string            `json:"delivery_status,omitempty"`
	DeliveryError     string            `json:"delivery_error,omitempty"`
	DeliveryUpdatedAt *time.Time        `json:"delivery_updated_at,omitempty"`
	// AnonymisedAt is when an admin erased the message's content, by
	// AnonymisedBy (kind:id); the message stays as the fact that it was
	// sent, with nothing of what it said.
	AnonymisedAt *time.Time `json:"anonymised_at,omitempty"`
	AnonymisedBy string     `json:"anonymised_by,omitempty"`
	// Translation is the message's translation, when it has one (see
	// Translation).
	Translation *Translation `json:"translation,omitempty"`
}

// AuthorBot is the author_kind of a message the chat channel's bot wrote.
const AuthorBot = "bot"

// Attachment is a file of a message as the API shows it. Where the blob
// store keeps it is not shown: the API serves the content itself, by
// message and position (GET /v1/messages/{id}/attachments/{index}), so
// that clients never depend on the store's keys.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline"`
	ContentID   string `json:"content_id,omitempty"`
	// Skipped says why the content was not kept (too large, too many).
	Skipped string `json:"skipped,omitempty"`
	// BlobKey is where the blob store keeps the content, for the
	// inbox's own use (exports); never shown.
	BlobKey string `json:"-"`
}

func attachmentsOf(as []events.Attachment) []Attachment {
	if len(as) == 0 {
		return nil
	}
	out := make([]Attachment, len(as))
	for i, a := range as {
		out[i] = Attachment{Name: a.Name, ContentType: a.ContentType, Size: a.Size, Inline: a.Inline, ContentID: a.ContentID, Skipped: a.Skipped,
			BlobKey: a.BlobKey}
	}
	return out
}

const messageColumns = `m.id, m.conversation_id, m.direction, m.sender, coalesce(m.author_id, ''), m.body, coalesce(m.subject, ''), m.cc,
	m.external_id, m.language, m.tags, m.metadata, m.sent_at, m.received_at, coalesce(m.delivery_status, ''),
	coalesce(m.delivery_error, ''), m.delivery_updated_at, coalesce(m.html, ''), m.automatic, m.attachments, coalesce(m.author_kind, ''),
	m.anonymised_at, coalesce(m.anonymised_by, '')`

func scanMessage(r pgx.CollectableRow) (Message, error) {
	var m Message
	var tags, meta, attachments []byte
	if err := r.Scan(&m.ID, &m.ConversationID, &m.Direction, &m.Sender, &m.AuthorID, &m.Body, &m.Subject, &m.CC,
		&m.ExternalID, &m.Language, &tags, &meta, &m.SentAt, &m.ReceivedAt, &m.DeliveryStatus, &m.DeliveryError, &m.DeliveryUpdatedAt,
		&m.HTML, &m.Automatic, &attachments, &m.AuthorKind, &m.AnonymisedAt, &m.AnonymisedBy); err != nil {
		return m, err
	}
	if m.AuthorKind == AuthorBot {
		m.AuthorName = m.Sender
	}
	if len(attachments) > 0 {
		var stored []events.Attachment
		if err := json.Unmarshal(attachments, &stored); err != nil {
			return m, fmt.Errorf("decode attachments of message %s: %w", m.ID, err)
		}
		m.Attachments = attachmentsOf(stored)
	}
	if err := json.Unmarshal(tags, &m.Tags); err != nil {
		return m, fmt.Errorf("decode tags of message %s: %w", m.ID, err)
	}
	if len(meta) > 0 {
		if err := json.Unmarshal(meta, &m.Metadata); err != nil {
			return m, fmt.Errorf("decode metadata of message %s: %w", m.ID, err)
		}
	}
	return m, nil
}

// ListMessages returns up to limit messages of a conversation after the
// position, oldest first.
func (s *Store) ListMessages(ctx context.Context, conversation uuid.UUID, after *Position, limit int) ([]Message, error) {
	args := []any{conversation, limit}
	where := ""
	if after != nil {
		where = ` AND (m.received_at, m.id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+` FROM inbox.messages m
		WHERE m.conversation_id = $1`+where+`
		ORDER BY m.received_at, m.id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	if err := attachTranslations(ctx, s.pool, msgs); err != nil {
		return nil, err
	}
	return msgs, nil
}

// GetMessage returns a message with its conversation, of tenant.
func (s *Store) GetMessage(ctx context.Context, tenant, id uuid.UUID) (Message, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+` FROM inbox.messages m WHERE m.tenant_id = $1 AND m.id = $2`, tenant, id)
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMessage)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	return m, nil
}
