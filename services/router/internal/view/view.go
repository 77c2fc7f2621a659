// Package view keeps the router's view of agents, queues and
// conversations in its PostgreSQL schema, router, built from events. Redis
// holds the router's working state; this view is what that state is
// rebuilt from when Redis loses it, and where the router looks up what an
// agent who went silent holds. It is the only code that touches the
// schema.
package view

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
)

// Schema is the router's PostgreSQL schema.
const Schema = "router"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the router's data access.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate brings the schema up to date.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("router migrations: %w", err)
	}
	return pg.Migrate(ctx, s.pool, Schema, "schema_version", sub)
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Agent is what routing knows of a user.
type Agent struct {
	ID        uuid.UUID
	TenantID  uuid.UUID
	Capacity  int
	QueueIDs  []uuid.UUID
	SkillIDs  []uuid.UUID
	Languages []string
	Disabled  bool
	// Presence is what the agent set: online, away or offline.
	Presence     string
	OfflineSince *time.Time
}

// Routable reports whether the agent may be offered conversations, as far
// as their settings and chosen presence go (heartbeats aside).
func (a Agent) Routable() bool { return !a.Disabled && a.Presence == "online" && a.Capacity > 0 }

// Queue is a queue's routing settings.
type Queue struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Routing  events.QueueRouting
	Deleted  bool
}

// Push reports whether the router offers the queue's conversations.
func (q Queue) Push() bool {
	return !q.Deleted && (q.Routing.Mode == events.RoutingPush || q.Routing.Mode == events.RoutingBoth)
}

// Conversation is what routing knows of a conversation.
type Conversation struct {
	ID               uuid.UUID
	TenantID         uuid.UUID
	Key              []byte
	Channel          string
	QueueID          *uuid.UUID
	State            string
	Version          int64
	StateVersion     int64
	StateSince       time.Time
	Assignees        []uuid.UUID
	RequiredSkillID  *uuid.UUID
	RequiredLanguage string
	Priority         int
	// Bypass: transferred ahead of the queue.
	Bypass bool
	// Excluded are the agents who missed or rejected its last offers.
	Excluded []uuid.UUID
}

const agentColumns = `id, tenant_id, capacity, queue_ids, skill_ids, languages, disabled, presence, offline_since`

func scanAgent(row pgx.CollectableRow) (Agent, error) {
	var a Agent
	err := row.Scan(&a.ID, &a.TenantID, &a.Capacity, &a.QueueIDs, &a.SkillIDs, &a.Languages, &a.Disabled, &a.Presence, &a.OfflineSince)
	return a, err
}

// PutAgent stores what the config says of an agent, keeping their presence.
func (s *Store) PutAgent(ctx context.Context, u events.User) (Agent, error) {
	id, err := uuid.Parse(u.ID)
	if err != nil {
		return Agent{}, fmt.Errorf("user id %q: %w", u.ID, err)
	}
	tenant, err := uuid.Parse(u.TenantID)
	if err != nil {
		return Agent{}, fmt.Errorf("user %s: tenant id %q: %w", u.ID, u.TenantID, err)
	}
	queues, err := parseIDs("queue_ids", u.QueueIDs)
	if err != nil {
		return Agent{}, err
	}
	skills, err := parseIDs("skill_ids", u.SkillIDs)
	if err != nil {
		return Agent{}, err
	}
	langs := u.Languages
	if langs == nil {
		langs = []string{}
	}
	rows, err := s.pool.Query(ctx, `INSERT INTO router.agents AS a (id, tenant_id, capacity, queue_ids, skill_ids, languages, disabled)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET capacity = EXCLUDED.capacity, queue_ids = EXCLUDED.queue_ids, skill_ids = EXCLUDED.skill_ids,
			languages = EXCLUDED.languages, disabled = EXCLUDED.disabled, updated_at = now()
		RETURNING `+agentColumns, id, tenant, u.Capacity, queues, skills, langs, u.Disabled)
	if err != nil {
		return Agent{}, fmt.Errorf("store agent %s: %w", id, err)
	}
	return pgx.CollectExactlyOneRow(rows, scanAgent)
}

// SetPresence stores the presence an agent set; offline (or gone) since
// is set when they leave and cleared when they come back.
func (s *Store) SetPresence(ctx context.Context, tenant, user uuid.UUID, presence string, connected bool, at time.Time) (Agent, error) {
	rows, err := s.pool.Query(ctx, `INSERT INTO router.agents AS a (id, tenant_id, capacity, presence, offline_since)
		VALUES ($1, $2, 0, $3, CASE WHEN $4 THEN NULL ELSE $5::timestamptz END)
		ON CONFLICT (id) DO UPDATE SET presence = EXCLUDED.presence,
			offline_since = CASE WHEN $4 THEN NULL ELSE coalesce(a.offline_since, $5) END, updated_at = now()
		RETURNING `+agentColumns, user, tenant, presence, connected, at)
	if err != nil {
		return Agent{}, fmt.Errorf("store the presence of agent %s: %w", user, err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAgent)
	if err != nil {
		return Agent{}, fmt.Errorf("store the presence of agent %s: %w", user, err)
	}
	return a, nil
}

// Gone records that an agent's heartbeats stopped at; their chosen
// presence stays.
func (s *Store) Gone(ctx context.Context, tenant, user uuid.UUID, at time.Time) (Agent, error) {
	rows, err := s.pool.Query(ctx, `UPDATE router.agents SET offline_since = coalesce(offline_since, $3), updated_at = now()
		WHERE tenant_id = $1 AND id = $2 RETURNING `+agentColumns, tenant, user, at)
	if err != nil {
		return Agent{}, fmt.Errorf("record agent %s gone: %w", user, err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAgent)
	if errors.Is(err, pgx.ErrNoRows) {
		return Agent{}, nil
	}
	return a, err
}

// Agent returns an agent; ok is false when the router does not know them.
func (s *Store) Agent(ctx context.Context, id uuid.UUID) (Agent, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+agentColumns+` FROM router.agents WHERE id = $1`, id)
	if err != nil {
		return Agent{}, false, fmt.Errorf("read agent %s: %w", id, err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAgent)
	if errors.Is(err, pgx.ErrNoRows) {
		return Agent{}, false, nil
	}
	return a, err == nil, err
}

// Agents returns a tenant's agents.
func (s *Store) Agents(ctx context.Context, tenant uuid.UUID) ([]Agent, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+agentColumns+` FROM router.agents WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read the agents of tenant %s: %w", tenant, err)
	}
	return pgx.CollectRows(rows, scanAgent)
}

// Tenants returns the tenants that have agents.
func (s *Store) Tenants(ctx context.Context) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT tenant_id FROM router.agents ORDER BY tenant_id`)
	if err != nil {
		return nil, fmt.Errorf("read tenants: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// PutQueue stores a queue's routing settings.
func (s *Store) PutQueue(ctx context.Context, q events.Queue) (Queue, error) {
	id, err := uuid.Parse(q.ID)
	if err != nil {
		return Queue{}, fmt.Errorf("queue id %q: %w", q.ID, err)
	}
	tenant, err := uuid.Parse(q.TenantID)
	if err != nil {
		return Queue{}, fmt.Errorf("queue %s: tenant id %q: %w", q.ID, q.TenantID, err)
	}
	out := Queue{ID: id, TenantID: tenant, Routing: events.DefaultQueueRouting(), Deleted: q.Deleted}
	if q.Routing != nil {
		out.Routing = *q.Routing
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO router.queues (id, tenant_id, routing, deleted) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET routing = EXCLUDED.routing, deleted = EXCLUDED.deleted, updated_at = now()`,
		id, tenant, out.Routing, q.Deleted); err != nil {
		return Queue{}, fmt.Errorf("store queue %s: %w", id, err)
	}
	return out, nil
}

// Queues returns a tenant's queues by id.
func (s *Store) Queues(ctx context.Context, tenant uuid.UUID) (map[uuid.UUID]Queue, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, routing, deleted FROM router.queues WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read the queues of tenant %s: %w", tenant, err)
	}
	qs, err := pgx.CollectRows(rows, scanQueue)
	if err != nil {
		return nil, fmt.Errorf("read the queues of tenant %s: %w", tenant, err)
	}
	out := make(map[uuid.UUID]Queue, len(qs))
	for _, q := range qs {
		out[q.ID] = q
	}
	return out, nil
}

// Queue returns a queue; a queue the router never heard of has the
// default settings (pull).
func (s *Store) Queue(ctx context.Context, tenant, id uuid.UUID) (Queue, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, routing, deleted FROM router.queues WHERE id = $1`, id)
	if err != nil {
		return Queue{}, fmt.Errorf("read queue %s: %w", id, err)
	}
	q, err := pgx.CollectExactlyOneRow(rows, scanQueue)
	if errors.Is(err, pgx.ErrNoRows) {
		return Queue{ID: id, TenantID: tenant, Routing: events.DefaultQueueRouting()}, nil
	}
	return q, err
}

func scanQueue(row pgx.CollectableRow) (Queue, error) {
	var (
		q Queue
		r *events.QueueRouting
	)
	if err := row.Scan(&q.ID, &q.TenantID, &r, &q.Deleted); err != nil {
		return q, err
	}
	q.Routing = events.DefaultQueueRouting()
	if r != nil {
		q.Routing = *r
	}
	return q, nil
}

const conversationColumns = `id, tenant_id, key, channel, queue_id, state, version, state_version, state_since, assignee_ids,
	required_skill_id, required_language, priority, bypass, excluded`

func scanConversation(row pgx.CollectableRow) (Conversation, error) {
	var c Conversation
	err := row.Scan(&c.ID, &c.TenantID, &c.Key, &c.Channel, &c.QueueID, &c.State, &c.Version, &c.StateVersion, &c.StateSince,
		&c.Assignees, &c.RequiredSkillID, &c.RequiredLanguage, &c.Priority, &c.Bypass, &c.Excluded)
	return c, err
}

// Change is what an event tells of a conversation.
type Change struct {
	Conversation
	// Exclude is an agent to leave out of the next offers (they missed or
	// rejected it); uuid.Nil for none.
	Exclude uuid.UUID
	// KeepBypass: the event does not say whether the conversation was
	// transferred ahead of the queue (a message event), so what the view
	// says stays.
	KeepBypass bool
}

// applySQL folds one change and returns the conversation as the view now
// holds it: changed, or as it was when the view already held this version
// or a newer one.
const applySQL = `WITH up AS (INSERT INTO router.conversations AS c (` + conversationColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $15::uuid IS NULL THEN '{}'::uuid[] ELSE ARRAY[$15::uuid] END)
	ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key, channel = EXCLUDED.channel, queue_id = EXCLUDED.queue_id, state = EXCLUDED.state,
		version = EXCLUDED.version, state_version = EXCLUDED.state_version, state_since = EXCLUDED.state_since,
		assignee_ids = EXCLUDED.assignee_ids, required_skill_id = EXCLUDED.required_skill_id,
		required_language = EXCLUDED.required_language, priority = EXCLUDED.priority,
		bypass = CASE WHEN $16 THEN c.bypass AND EXCLUDED.state IN ('new', 'offered') ELSE EXCLUDED.bypass END,
		excluded = CASE
			WHEN EXCLUDED.state NOT IN ('new', 'offered') OR EXCLUDED.queue_id IS DISTINCT FROM c.queue_id THEN '{}'::uuid[]
			WHEN $15::uuid IS NULL OR $15::uuid = ANY(c.excluded) THEN c.excluded
			ELSE c.excluded || $15::uuid END
	WHERE c.version < EXCLUDED.version
	RETURNING ` + conversationColumns + `)
	SELECT ` + conversationColumns + ` FROM up
	UNION ALL
	SELECT ` + conversationColumns + ` FROM router.conversations WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM up)`

// ApplyAll folds changes, in order, in one round trip, and returns the
// conversations as they now are, one per change. A change the view
// already held (delivered again) returns the conversation too: the
// process that folded it may have died before the Redis state heard of
// it, and the state's scripts ignore what they already hold.
//
// Excluded agents are kept while the conversation goes from new to offered
// and back, and forgotten when someone takes it or it leaves its queue.
func (s *Store) ApplyAll(ctx context.Context, changes []Change) ([]Conversation, error) {
	batch := &pgx.Batch{}
	for _, ch := range changes {
		c := ch.Conversation
		if c.Assignees == nil {
			c.Assignees = []uuid.UUID{}
		}
		var exclude *uuid.UUID
		if ch.Exclude != uuid.Nil {
			exclude = &ch.Exclude
		}
		batch.Queue(applySQL, c.ID, c.TenantID, c.Key, c.Channel, c.QueueID, c.State, c.Version, c.StateVersion, c.StateSince, c.Assignees,
			c.RequiredSkillID, c.RequiredLanguage, c.Priority, c.Bypass, exclude, ch.KeepBypass)
	}
	res := s.pool.SendBatch(ctx, batch)
	defer res.Close()
	out := make([]Conversation, 0, len(changes))
	for _, ch := range changes {
		rows, err := res.Query()
		if err != nil {
			return nil, fmt.Errorf("store conversation %s: %w", ch.ID, err)
		}
		c, err := pgx.CollectExactlyOneRow(rows, scanConversation)
		if err != nil {
			return nil, fmt.Errorf("store conversation %s: %w", ch.ID, err)
		}
		out = append(out, c)
	}
	return out, res.Close()
}

// QueuesOf returns the queues ids, by id; one the router never heard of
// has the default settings (pull).
func (s *Store) QueuesOf(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Queue, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, routing, deleted FROM router.queues WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read queues: %w", err)
	}
	qs, err := pgx.CollectRows(rows, scanQueue)
	if err != nil {
		return nil, fmt.Errorf("read queues: %w", err)
	}
	out := make(map[uuid.UUID]Queue, len(qs))
	for _, q := range qs {
		out[q.ID] = q
	}
	return out, nil
}

// Conversations returns a tenant's conversations that are not done.
func (s *Store) Conversations(ctx context.Context, tenant uuid.UUID) ([]Conversation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+conversationColumns+` FROM router.conversations WHERE tenant_id = $1 AND state <> 'done'`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read the conversations of tenant %s: %w", tenant, err)
	}
	return pgx.CollectRows(rows, scanConversation)
}

// Overstayed returns the conversations held (assigned or answered) by
// agents offline for longer than their queue's requeue limit.
func (s *Store) Overstayed(ctx context.Context, now time.Time, limit int) ([]Conversation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("c.", conversationColumns)+` FROM router.conversations c
		JOIN router.queues q ON q.id = c.queue_id
		WHERE c.state IN ('assigned', 'answered') AND coalesce((q.routing ->> 'requeue_offline_seconds')::int, 0) > 0
		  AND EXISTS (SELECT 1 FROM router.agents a WHERE a.id = ANY(c.assignee_ids) AND a.offline_since IS NOT NULL
		              AND a.offline_since + make_interval(secs => (q.routing ->> 'requeue_offline_seconds')::int) <= $1)
		LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("read conversations of agents gone too long: %w", err)
	}
	return pgx.CollectRows(rows, scanConversation)
}

// prefixed qualifies each of a comma-separated column list.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// Held returns the conversations agent holds in states.
func (s *Store) Held(ctx context.Context, tenant, agent uuid.UUID, states []string) ([]Conversation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+conversationColumns+` FROM router.conversations
		WHERE tenant_id = $1 AND assignee_ids @> ARRAY[$2::uuid] AND state = ANY($3)`, tenant, agent, states)
	if err != nil {
		return nil, fmt.Errorf("read what agent %s holds: %w", agent, err)
	}
	return pgx.CollectRows(rows, scanConversation)
}

// Keys returns the Kafka keys of conversations ids.
func (s *Store) Keys(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, key FROM router.conversations WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read conversation keys: %w", err)
	}
	out := make(map[uuid.UUID][]byte, len(ids))
	var (
		id  uuid.UUID
		key []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &key}, func() error {
		out[id] = append([]byte(nil), key...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read conversation keys: %w", err)
	}
	return out, nil
}

func parseIDs(field string, ss []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, 0, len(ss))
	for _, s := range ss {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an id", field, s)
		}
		out = append(out, id)
	}
	return out, nil
}
