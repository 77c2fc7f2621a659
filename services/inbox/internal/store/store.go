// Package store keeps the inbox's state in its PostgreSQL schema, inbox.
// It is the only code that reads or writes that schema.
package store

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/pg"
)

// Schema is the inbox's PostgreSQL schema.
const Schema = "inbox"

//go:embed migrations/*.sql
var migrations embed.FS

// Errors callers branch on.
var (
	// ErrNotFound: no such object in this tenant.
	ErrNotFound = errors.New("not found")
	// ErrUnknownAccount: an inbound message names a channel account that
	// does not exist for its tenant and channel.
	ErrUnknownAccount = errors.New("unknown channel account")
)

// Store is the inbox's data access.
type Store struct {
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
}

// New returns a store over pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, outbox: outbox.New(Schema)}
}

// Outbox is the inbox's outbox.
func (s *Store) Outbox() *outbox.Outbox { return s.outbox }

// Migrate brings the schema up to date.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("inbox migrations: %w", err)
	}
	if err := pg.Migrate(ctx, s.pool, Schema, "schema_version", sub); err != nil {
		return err
	}
	return s.outbox.Migrate(ctx, s.pool)
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// HashToken is how API tokens are stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Inbound is one message to ingest.
type Inbound struct {
	EventID string
	Msg     events.MessageReceived
}

// Ingested is what ingesting one message did.
type Ingested struct {
	MessageID           uuid.UUID
	ConversationID      uuid.UUID
	ContactID           uuid.UUID
	ConversationCreated bool
	Duplicate           bool
}

// Ingest stores messages in one transaction, in order, each once. after runs
// inside the transaction with what was stored, to add outbox events.
func (s *Store) Ingest(ctx context.Context, msgs []Inbound, after func(ctx context.Context, tx pgx.Tx, res []Ingested) error) ([]Ingested, error) {
	var res []Ingested
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, in := range msgs {
			m := in.Msg
			tenant, err := uuid.Parse(m.TenantID)
			if err != nil {
				return fmt.Errorf("%w: tenant_id %q is not a UUID", ErrUnknownAccount, m.TenantID)
			}
			account, err := uuid.Parse(m.ChannelAccountID)
			if err != nil {
				return fmt.Errorf("%w: channel_account_id %q is not a UUID", ErrUnknownAccount, m.ChannelAccountID)
			}
			var meta []byte
			if len(m.Metadata) > 0 {
				if meta, err = json.Marshal(m.Metadata); err != nil {
					return fmt.Errorf("encode metadata: %w", err)
				}
			}
			var sentAt *time.Time
			if !m.SentAt.IsZero() {
				sentAt = &m.SentAt
			}
			b.Queue(`SELECT message_id, conversation_id, contact_id, conversation_created, duplicate
				FROM inbox.ingest_inbound($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
				in.EventID, tenant, m.Channel, account, m.ExternalID, m.ThreadKey, m.From.Identity, m.From.Name,
				m.From.AvatarURL, m.Text, meta, sentAt, m.ReceivedAt)
		}
		br := tx.SendBatch(ctx, b)
		res = make([]Ingested, len(msgs))
		for i := range msgs {
			r := &res[i]
			if err := br.QueryRow().Scan(&r.MessageID, &r.ConversationID, &r.ContactID, &r.ConversationCreated, &r.Duplicate); err != nil {
				_ = br.Close()
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "SB001" {
					return fmt.Errorf("%w: %s", ErrUnknownAccount, pgErr.Message)
				}
				return fmt.Errorf("ingest message %s: %w", msgs[i].EventID, err)
			}
		}
		if err := br.Close(); err != nil {
			return fmt.Errorf("ingest batch: %w", err)
		}
		if after != nil {
			return after(ctx, tx, res)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Tenant is a tenant.
type Tenant struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// TenantByToken returns the tenant of a valid API token.
func (s *Store) TenantByToken(ctx context.Context, token string) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM inbox.api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, HashToken(token)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, ErrNotFound
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("look up API token: %w", err)
	}
	return id, nil
}

// Conversation is a conversation as the API shows it.
type Conversation struct {
	ID               uuid.UUID `json:"id"`
	ContactID        uuid.UUID `json:"contact_id"`
	ContactName      string    `json:"contact_name"`
	Channel          string    `json:"channel"`
	ChannelAccountID uuid.UUID `json:"channel_account_id"`
	State            string    `json:"state"`
	StartedAt        time.Time `json:"started_at"`
	LastMessageAt    time.Time `json:"last_message_at"`
}

// Position is a place in an ordered list: the sort time and the id.
type Position struct {
	At time.Time `json:"t"`
	ID uuid.UUID `json:"i"`
}

// ListConversations returns up to limit conversations of tenant after the
// position (nil: from the start), oldest start first.
func (s *Store) ListConversations(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]Conversation, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (c.started_at, c.id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.contact_id, ct.name, c.channel, c.channel_account_id, c.state, c.started_at, c.last_message_at
		FROM inbox.conversations c JOIN inbox.contacts ct ON ct.id = c.contact_id
		WHERE c.tenant_id = $1`+where+`
		ORDER BY c.started_at, c.id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) {
		var c Conversation
		err := r.Scan(&c.ID, &c.ContactID, &c.ContactName, &c.Channel, &c.ChannelAccountID, &c.State, &c.StartedAt, &c.LastMessageAt)
		return c, err
	})
}

// GetConversation returns one conversation of tenant.
func (s *Store) GetConversation(ctx context.Context, tenant, id uuid.UUID) (Conversation, error) {
	var c Conversation
	err := s.pool.QueryRow(ctx, `SELECT c.id, c.contact_id, ct.name, c.channel, c.channel_account_id, c.state, c.started_at, c.last_message_at
		FROM inbox.conversations c JOIN inbox.contacts ct ON ct.id = c.contact_id
		WHERE c.tenant_id = $1 AND c.id = $2`, tenant, id).
		Scan(&c.ID, &c.ContactID, &c.ContactName, &c.Channel, &c.ChannelAccountID, &c.State, &c.StartedAt, &c.LastMessageAt)
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
	ID         uuid.UUID         `json:"id"`
	Direction  string            `json:"direction"`
	Sender     string            `json:"sender"`
	Body       string            `json:"body"`
	ExternalID string            `json:"external_id"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	SentAt     *time.Time        `json:"sent_at,omitempty"`
	ReceivedAt time.Time         `json:"received_at"`
}

// ListMessages returns up to limit messages of a conversation of tenant
// after the position, oldest first. ErrNotFound when the conversation is
// not the tenant's.
func (s *Store) ListMessages(ctx context.Context, tenant, conversation uuid.UUID, after *Position, limit int) ([]Message, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.conversations WHERE tenant_id = $1 AND id = $2)`, tenant, conversation).Scan(&exists); err != nil {
		return nil, fmt.Errorf("find conversation: %w", err)
	}
	if !exists {
		return nil, ErrNotFound
	}
	args := []any{tenant, conversation, limit}
	where := ""
	if after != nil {
		where = ` AND (m.received_at, m.id) > ($4, $5)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.direction, m.sender, m.body, m.external_id, m.metadata, m.sent_at, m.received_at
		FROM inbox.messages m
		WHERE m.tenant_id = $1 AND m.conversation_id = $2`+where+`
		ORDER BY m.received_at, m.id LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		var m Message
		var meta []byte
		if err := r.Scan(&m.ID, &m.Direction, &m.Sender, &m.Body, &m.ExternalID, &meta, &m.SentAt, &m.ReceivedAt); err != nil {
			return m, err
		}
		if len(meta) > 0 {
			if err := json.Unmarshal(meta, &m.Metadata); err != nil {
				return m, fmt.Errorf("decode metadata of message %s: %w", m.ID, err)
			}
		}
		return m, nil
	})
}
