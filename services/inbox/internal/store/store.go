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
	ConversationID      uuid.UUID
	ContactID           uuid.UUID
	ConversationCreated bool
	Duplicate           bool
}

// The input of a batch, as parallel arrays that unnest into rows; every
// statement of Ingest starts from it. Set-based statements cost far less
// per message than one statement per message.
//
// Lookups into the big tables are written as correlated scalar subqueries,
// not joins: the statements are prepared once, while the tables are still
// empty, and a join planned then (a sequential scan feeding a hash) would
// cost more with every row stored. A scalar subquery is always an index
// probe per input row.
const ingestInput = `input AS (
	SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::uuid[], $7::text[],
	                     $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::timestamptz[], $13::timestamptz[])
	    AS i(ord, msg_id, event_id, tenant_id, channel, account_id, external_id,
	         thread_key, identity, body, metadata, sent_at, received_at))`

// ingestCheck lists the messages whose channel account does not exist for
// their tenant and channel.
const ingestCheck = `SELECT coalesce(array_agg(i.ord), '{}')
FROM unnest($1::int[], $2::uuid[], $3::text[], $4::uuid[]) AS i(ord, tenant_id, channel, account_id)
WHERE (SELECT 1 FROM inbox.channel_accounts a
       WHERE a.id = i.account_id AND a.tenant_id = i.tenant_id AND a.channel = i.channel) IS NULL`

// ingestContacts gives every new channel identity a contact, named after
// the first message that brought it. Known identities are filtered out
// first (an index probe is cheaper than a conflicting insert); identities
// are claimed in key order so that concurrent batches wait for each other
// instead of deadlocking.
const ingestContacts = `WITH input AS (
	SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
	    AS i(ord, tenant_id, channel, identity, name, avatar)),
claimed AS (
	INSERT INTO inbox.contact_identities AS ci (tenant_id, channel, identity, contact_id)
	SELECT DISTINCT ON (tenant_id, channel, identity) tenant_id, channel, identity, gen_random_uuid()
	FROM input i
	WHERE (SELECT 1 FROM inbox.contact_identities k
	       WHERE k.tenant_id = i.tenant_id AND k.channel = i.channel AND k.identity = i.identity) IS NULL
	ORDER BY tenant_id, channel, identity, ord
	ON CONFLICT DO NOTHING
	RETURNING ci.tenant_id, ci.channel, ci.identity, ci.contact_id)
INSERT INTO inbox.contacts (id, tenant_id, name, avatar_url, source)
SELECT c.contact_id, c.tenant_id, f.name, f.avatar, c.channel
FROM claimed c CROSS JOIN LATERAL (
	SELECT i.name, i.avatar FROM input i
	WHERE i.tenant_id = c.tenant_id AND i.channel = c.channel AND i.identity = c.identity
	ORDER BY i.ord LIMIT 1) f`

// ingestMessages finds or opens the conversation of every thread, then
// stores the messages not stored yet, and says for each message what
// happened. The conversation upsert locks its row, so that batches touching
// one thread are stored one after the other.
const ingestMessages = `WITH ` + ingestInput + `,
threads AS (
	SELECT DISTINCT ON (i.account_id, i.thread_key) i.tenant_id, i.channel, i.account_id, i.thread_key,
	       (SELECT ci.contact_id FROM inbox.contact_identities ci
	         WHERE ci.tenant_id = i.tenant_id AND ci.channel = i.channel AND ci.identity = i.identity) AS contact_id,
	       min(i.received_at) OVER w AS first_at, max(i.received_at) OVER w AS last_at
	FROM input i
	WINDOW w AS (PARTITION BY i.account_id, i.thread_key)
	ORDER BY i.account_id, i.thread_key, i.ord),
conv AS (
	INSERT INTO inbox.conversations AS c (id, tenant_id, contact_id, channel, channel_account_id, thread_key, started_at, last_message_at)
	SELECT gen_random_uuid(), tenant_id, contact_id, channel, account_id, thread_key, first_at, last_at FROM threads
	ORDER BY account_id, thread_key
	ON CONFLICT (channel_account_id, thread_key)
	    DO UPDATE SET last_message_at = greatest(c.last_message_at, excluded.last_message_at)
	RETURNING c.id, c.contact_id, c.channel_account_id, c.thread_key, (c.xmax = 0) AS created),
stored AS (
	INSERT INTO inbox.messages (id, tenant_id, conversation_id, event_id, channel_account_id, external_id, direction,
	                            sender, body, metadata, sent_at, received_at)
	SELECT i.msg_id, i.tenant_id, conv.id, i.event_id, i.account_id, i.external_id, 'inbound',
	       i.identity, i.body, i.metadata, i.sent_at, i.received_at
	FROM input i JOIN conv ON conv.channel_account_id = i.account_id AND conv.thread_key = i.thread_key
	ORDER BY i.ord
	ON CONFLICT (channel_account_id, external_id) DO NOTHING
	RETURNING id)
SELECT i.ord, conv.id, conv.contact_id, conv.created, stored.id IS NULL
FROM input i
JOIN conv ON conv.channel_account_id = i.account_id AND conv.thread_key = i.thread_key
LEFT JOIN stored ON stored.id = i.msg_id`

// Ingest stores messages in one transaction, each once, and returns what
// happened to each, in order. announce turns the results into events, which
// commit with the messages through the outbox.
//
// The transaction takes two round trips to PostgreSQL, not six: BEGIN and
// the three statements go in one pipeline, the events and COMMIT in a
// second.
func (s *Store) Ingest(ctx context.Context, msgs []Inbound, announce func(res []Ingested) ([]outbox.Record, error)) (res []Ingested, err error) {
	n := len(msgs)
	a, err := newIngestArrays(msgs)
	if err != nil {
		return nil, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	committed := false
	defer func() {
		if committed {
			return
		}
		// Leave no transaction open on a pooled connection; if even the
		// rollback fails, close the connection so the pool drops it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Conn().Close(rctx)
		}
	}()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(ingestCheck, a.ords, a.tenants, a.channels, a.accounts)
	b.Queue(ingestContacts, a.ords, a.tenants, a.channels, a.idents, a.names, a.avatars)
	b.Queue(ingestMessages, a.ords, a.ids, a.eventIDs, a.tenants, a.channels, a.accounts, a.externals,
		a.threads, a.idents, a.bodies, a.metadata, a.sentAt, a.received)
	res = make([]Ingested, n)
	if err := readIngest(conn.SendBatch(ctx, b), msgs, res); err != nil {
		return nil, err
	}

	b = &pgx.Batch{}
	if announce != nil {
		recs, err := announce(res)
		if err != nil {
			return nil, err
		}
		if err := s.outbox.Queue(ctx, b, recs...); err != nil {
			return nil, err
		}
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("commit ingested messages: %w", err)
	}
	committed = true
	return res, nil
}

// readIngest reads the results of the first pipeline of Ingest into res.
func readIngest(br pgx.BatchResults, msgs []Inbound, res []Ingested) (err error) {
	defer func() {
		if cerr := br.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("ingest batch: %w", cerr)
		}
	}()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var unknown []int32
	if err := br.QueryRow().Scan(&unknown); err != nil {
		return fmt.Errorf("check channel accounts: %w", err)
	}
	if len(unknown) > 0 {
		m := msgs[unknown[0]].Msg
		return fmt.Errorf("%w: %s of tenant %s on channel %s", ErrUnknownAccount, m.ChannelAccountID, m.TenantID, m.Channel)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("store contacts: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("store messages: %w", err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var ord int32
		var r Ingested
		if err := rows.Scan(&ord, &r.ConversationID, &r.ContactID, &r.ConversationCreated, &r.Duplicate); err != nil {
			return fmt.Errorf("store messages: %w", err)
		}
		res[ord] = r
		seen++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store messages: %w", err)
	}
	if seen != len(msgs) {
		return fmt.Errorf("store messages: %d results for %d messages", seen, len(msgs))
	}
	return nil
}

// ingestArrays are the columns of a batch.
type ingestArrays struct {
	ords      []int32
	ids       [][16]byte
	eventIDs  []string
	tenants   [][16]byte
	channels  []string
	accounts  [][16]byte
	externals []string
	threads   []string
	idents    []string
	names     []string
	avatars   []string
	bodies    []string
	metadata  []*string
	sentAt    []*time.Time
	received  []time.Time
}

// newIngestArrays turns messages into the columns of a batch.
func newIngestArrays(msgs []Inbound) (*ingestArrays, error) {
	n := len(msgs)
	a := &ingestArrays{
		ords: make([]int32, n), ids: make([][16]byte, n), eventIDs: make([]string, n), tenants: make([][16]byte, n),
		channels: make([]string, n), accounts: make([][16]byte, n), externals: make([]string, n), threads: make([]string, n),
		idents: make([]string, n), names: make([]string, n), avatars: make([]string, n), bodies: make([]string, n),
		metadata: make([]*string, n), sentAt: make([]*time.Time, n), received: make([]time.Time, n),
	}
	for i, in := range msgs {
		m := in.Msg
		// UUIDs go as 16 bytes: pgx has a binary plan for those, not for
		// strings (it would build an error, then fall back to text).
		tenant, err := uuid.Parse(m.TenantID)
		if err != nil {
			return nil, fmt.Errorf("%w: tenant_id %q is not a UUID", ErrUnknownAccount, m.TenantID)
		}
		account, err := uuid.Parse(m.ChannelAccountID)
		if err != nil {
			return nil, fmt.Errorf("%w: channel_account_id %q is not a UUID", ErrUnknownAccount, m.ChannelAccountID)
		}
		// Time-ordered ids keep the primary key index append-only.
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("message id: %w", err)
		}
		if len(m.Metadata) > 0 {
			raw, err := json.Marshal(m.Metadata)
			if err != nil {
				return nil, fmt.Errorf("encode metadata: %w", err)
			}
			s := string(raw)
			a.metadata[i] = &s
		}
		if !m.SentAt.IsZero() {
			t := m.SentAt
			a.sentAt[i] = &t
		}
		a.ords[i], a.ids[i], a.eventIDs[i], a.tenants[i], a.channels[i], a.accounts[i] = int32(i), id, in.EventID, tenant, m.Channel, account
		a.externals[i], a.threads[i], a.idents[i], a.names[i], a.avatars[i], a.bodies[i], a.received[i] = m.ExternalID, m.ThreadKey, m.From.Identity, m.From.Name, m.From.AvatarURL, m.Text, m.ReceivedAt
	}
	return a, nil
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
