// Package store keeps the scheduler's state in its PostgreSQL schema,
// scheduler: its view of conversations and of the automation settings,
// built from events, and the timers. It is the only code that reads or
// writes that schema.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/rules"
)

// Schema is the scheduler's PostgreSQL schema.
const Schema = "scheduler"

// NotifyChannel is the channel on which a change of timers due soon wakes
// the fire loops (LISTEN/NOTIFY), so that they need not poll.
const NotifyChannel = "scheduler_timers"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the scheduler's data access.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store over pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the store's pool (the fire loop holds a connection of its own
// to listen on).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Migrate brings the schema up to date.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("scheduler migrations: %w", err)
	}
	return pg.Migrate(ctx, s.pool, Schema, "schema_version", sub)
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// InTx runs fn in a transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

const viewColumns = `id, tenant_id, key, channel, queue_id, state, version, state_version, state_since, deferred_until,
	offer_expires_at, closing_asked_at, activity_version, activity_at, ack_version, answer, answer_version, answer_at`

func scanView(row pgx.CollectableRow) (*rules.View, error) {
	var v rules.View
	var answerAt *time.Time
	err := row.Scan(&v.ID, &v.TenantID, &v.Key, &v.Channel, &v.QueueID, &v.State, &v.Version, &v.StateVersion, &v.StateSince,
		&v.DeferredUntil, &v.OfferExpiresAt, &v.ClosingAskedAt, &v.ActivityVersion, &v.ActivityAt, &v.AckVersion, &v.Answer,
		&v.AnswerVersion, &answerAt)
	if answerAt != nil {
		v.AnswerAt = *answerAt
	}
	return &v, err
}

// LockViews reads and locks the views of the conversations ids, in id
// order; a conversation the scheduler never heard of is absent.
func LockViews(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) (map[uuid.UUID]*rules.View, error) {
	rows, err := tx.Query(ctx, `SELECT `+viewColumns+` FROM scheduler.conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("lock conversation views: %w", err)
	}
	views, err := pgx.CollectRows(rows, scanView)
	if err != nil {
		return nil, fmt.Errorf("lock conversation views: %w", err)
	}
	out := make(map[uuid.UUID]*rules.View, len(views))
	for _, v := range views {
		out[v.ID] = v
	}
	return out, nil
}

// SaveViews writes views.
func SaveViews(ctx context.Context, tx pgx.Tx, views []*rules.View) error {
	if len(views) == 0 {
		return nil
	}
	n := len(views)
	var (
		ids, tenants                                     = make([][16]byte, n), make([][16]byte, n)
		keys                                             = make([][]byte, n)
		channels, states, answers                        = make([]string, n), make([]string, n), make([]string, n)
		queues                                           = make([]*uuid.UUID, n)
		versions, stateVersions, activity, acks, answerV = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		since, activityAt                                = make([]time.Time, n), make([]time.Time, n)
		deferred, offers, asked, answerAt                = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	)
	for i, v := range views {
		ids[i], tenants[i], keys[i], channels[i], queues[i], states[i] = v.ID, v.TenantID, v.Key, v.Channel, v.QueueID, v.State
		versions[i], stateVersions[i], since[i] = v.Version, v.StateVersion, v.StateSince
		deferred[i], offers[i], asked[i] = v.DeferredUntil, v.OfferExpiresAt, v.ClosingAskedAt
		activity[i], activityAt[i], acks[i], answers[i], answerV[i] = v.ActivityVersion, v.ActivityAt, v.AckVersion, v.Answer, v.AnswerVersion
		if !v.AnswerAt.IsZero() {
			t := v.AnswerAt
			answerAt[i] = &t
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO scheduler.conversations AS c (`+viewColumns+`)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::text[], $5::uuid[], $6::text[], $7::bigint[], $8::bigint[],
		                     $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[], $13::bigint[],
		                     $14::timestamptz[], $15::bigint[], $16::text[], $17::bigint[], $18::timestamptz[])
		ON CONFLICT (id) DO UPDATE SET key = excluded.key, channel = excluded.channel, queue_id = excluded.queue_id,
			state = excluded.state, version = excluded.version, state_version = excluded.state_version,
			state_since = excluded.state_since, deferred_until = excluded.deferred_until,
			offer_expires_at = excluded.offer_expires_at, closing_asked_at = excluded.closing_asked_at,
			activity_version = excluded.activity_version, activity_at = excluded.activity_at, ack_version = excluded.ack_version,
			answer = excluded.answer, answer_version = excluded.answer_version, answer_at = excluded.answer_at`,
		ids, tenants, keys, channels, queues, states, versions, stateVersions, since, deferred, offers, asked, activity, activityAt,
		acks, answers, answerV, answerAt)
	if err != nil {
		return fmt.Errorf("save conversation views: %w", err)
	}
	return nil
}

// Reconciled counts what Reconcile changed.
type Reconciled struct {
	// Set counts timers created or moved; Cancelled those removed.
	Set, Cancelled int64
}

// Reconcile makes the timers of the conversations convs exactly desired:
// it creates the missing ones, moves those whose due time or command
// changed (unless fired: a fired occurrence never fires again), and
// removes the rest, fired ones included (their occurrence is over). When a
// timer set or moved is due before soon, the fire loops are woken.
func Reconcile(ctx context.Context, tx pgx.Tx, convs []uuid.UUID, desired []rules.Timer, soon time.Time) (Reconciled, error) {
	if len(convs) == 0 {
		return Reconciled{}, nil
	}
	n := len(desired)
	ids, kinds, commands := make([]string, n), make([]string, n), make([]string, n)
	conversations, tenants := make([][16]byte, n), make([][16]byte, n)
	dues, keys := make([]time.Time, n), make([][]byte, n)
	for i, t := range desired {
		raw, err := json.Marshal(t.Command)
		if err != nil {
			return Reconciled{}, fmt.Errorf("encode command of timer %s: %w", t.ID, err)
		}
		conv, err := uuid.Parse(t.Command.ConversationID)
		if err != nil {
			return Reconciled{}, fmt.Errorf("timer %s: %w", t.ID, err)
		}
		tenant, err := uuid.Parse(t.Command.TenantID)
		if err != nil {
			return Reconciled{}, fmt.Errorf("timer %s: %w", t.ID, err)
		}
		ids[i], kinds[i], commands[i], conversations[i], tenants[i], dues[i] = t.ID, t.Kind(), string(raw), conv, tenant, t.DueAt
		keys[i] = t.Key
	}
	var r Reconciled
	err := tx.QueryRow(ctx, `WITH d AS (
			SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::bytea[])
			    AS d(id, conversation_id, tenant_id, kind, due_at, command, key)),
		gone AS (
			DELETE FROM scheduler.timers t WHERE t.conversation_id = ANY($8::uuid[]) AND NOT (t.id = ANY($1::text[]))
			RETURNING 1),
		up AS (
			INSERT INTO scheduler.timers AS t (id, conversation_id, tenant_id, kind, due_at, command, key)
			SELECT * FROM d ORDER BY id
			ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, command = excluded.command, key = excluded.key
			WHERE t.fired_at IS NULL AND (t.due_at <> excluded.due_at OR t.command <> excluded.command)
			RETURNING t.due_at),
		woken AS (
			SELECT pg_notify($9, '') FROM (SELECT 1 FROM up WHERE due_at <= $10 LIMIT 1) s)
		SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM gone), (SELECT count(*) FROM woken)`,
		ids, conversations, tenants, kinds, dues, commands, keys, convs, NotifyChannel, soon).Scan(&r.Set, &r.Cancelled, new(int64))
	if err != nil {
		return Reconciled{}, fmt.Errorf("reconcile timers: %w", err)
	}
	return r, nil
}
