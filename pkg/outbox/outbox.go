// Package outbox implements the transactional outbox: a service writes its
// state change and the events describing it in one PostgreSQL transaction
// (Add), and a relay publishes the committed events to Kafka, then deletes
// them.
//
// Guarantees: an event is published if and only if its transaction
// committed; at least once (a crash between publishing and deleting
// publishes again, with the same event id, which consumers dedupe on);
// in commit order per key, provided that transactions writing events with
// the same key serialise on a row they both update before they call Add
// (the inbox updates the conversation row first). One relay per schema is
// active at a time, elected with a PostgreSQL advisory lock; the others wait
// as standbys.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Outbox is the outbox table of one schema.
type Outbox struct {
	schema  string
	channel string
}

// New returns the outbox of schema (the service's own).
func New(schema string) *Outbox {
	return &Outbox{schema: schema, channel: schema + "_outbox"}
}

// Migrate creates the outbox table in the schema.
func (o *Outbox) Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := subFS()
	if err != nil {
		return err
	}
	return pg.Migrate(ctx, pool, o.schema, "outbox_version", sub)
}

type header struct {
	K string `json:"k"`
	V string `json:"v"`
}

// Record is one event to publish.
type Record struct {
	// Topic is where the event goes.
	Topic string
	// Key orders it (the conversation key).
	Key []byte
	// Event is the event itself.
	Event events.Event
}

// Add writes the records in tx. They are published after tx commits, never
// if it rolls back. The trace context of ctx is stored with them (the
// traceparent header): the relay's "send <topic>" span is a child of it, so
// that the transaction and the publication are one trace.
func (o *Outbox) Add(ctx context.Context, tx pgx.Tx, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	sql, args, err := o.insert(ctx, recs)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("outbox: insert %d event(s): %w", len(recs), err)
	}
	return nil
}

// Queue adds the insert of the records to a batch that runs inside a
// transaction, for callers that pipeline their statements. The batch must
// not be sent outside a transaction.
func (o *Outbox) Queue(ctx context.Context, b *pgx.Batch, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	sql, args, err := o.insert(ctx, recs)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

// insert is the statement that writes recs, with the notification that
// wakes the relay (delivered at commit; several in one transaction fold
// into one).
func (o *Outbox) insert(ctx context.Context, recs []Record) (string, []any, error) {
	ids := make([]string, len(recs))
	topics := make([]string, len(recs))
	keys := make([][]byte, len(recs))
	hdrs := make([]string, len(recs))
	values := make([][]byte, len(recs))
	for i, r := range recs {
		m := r.Event.Message(ctx, r.Topic, r.Key)
		hs := make([]header, len(m.Headers))
		for j, h := range m.Headers {
			hs[j] = header{K: h.Key, V: string(h.Value)}
		}
		hj, err := json.Marshal(hs)
		if err != nil {
			return "", nil, fmt.Errorf("outbox: encode headers: %w", err)
		}
		ids[i], topics[i], keys[i], hdrs[i], values[i] = r.Event.ID, r.Topic, r.Key, string(hj), m.Value
		if values[i] == nil {
			values[i] = []byte{}
		}
	}
	sql := `WITH added AS (
			INSERT INTO ` + o.schema + `.outbox (event_id, topic, key, headers, value)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[], $5::bytea[])
			RETURNING 1)
		SELECT pg_notify($6, '') WHERE EXISTS (SELECT 1 FROM added)`
	return sql, []any{ids, topics, keys, hdrs, values, o.channel}, nil
}

// RelayOptions tune a relay.
type RelayOptions struct {
	// BatchSize is the most events published at once.
	BatchSize int
	// PollInterval is the longest wait between two looks at the table when
	// no notification arrives (notifications can be missed across a
	// reconnection).
	PollInterval time.Duration
	// Linger is how long the relay waits after a notification before it
	// reads, so that the events of several transactions go out together:
	// fewer round trips for a few milliseconds of delay.
	Linger time.Duration
	// Clock drives the waits; nil means the system clock.
	Clock retry.Clock
}

// Relay publishes committed events.
type Relay struct {
	o        *Outbox
	pool     *pgxpool.Pool
	producer *bus.Producer
	opts     RelayOptions
	log      *slog.Logger
	policy   retry.Policy

	published metric.Int64Counter
	failures  metric.Int64Counter
	delay     metric.Float64Histogram
}

// Relay builds the relay of this outbox.
func (o *Outbox) Relay(pool *pgxpool.Pool, producer *bus.Producer, tel *telemetry.Telemetry, opts RelayOptions) (*Relay, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Clock == nil {
		opts.Clock = retry.SystemClock{}
	}
	r := &Relay{o: o, pool: pool, producer: producer, opts: opts,
		log:    tel.Component("outbox").With("schema", o.schema),
		policy: retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}}
	m := tel.Meter.Meter("switchboard/outbox")
	var err error
	if r.published, err = m.Int64Counter("switchboard.outbox.published", metric.WithDescription("Outbox events published to Kafka.")); err != nil {
		return nil, err
	}
	if r.failures, err = m.Int64Counter("switchboard.outbox.failures", metric.WithDescription("Relay rounds that failed and were retried.")); err != nil {
		return nil, err
	}
	if r.delay, err = m.Float64Histogram("switchboard.outbox.delay", metric.WithUnit("s"), metric.WithDescription("Time from an event's commit to its publication."), metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...)); err != nil {
		return nil, err
	}
	return r, nil
}

// lockID is the advisory lock that elects the active relay of a schema.
func (r *Relay) lockID() int64 {
	h := fnv.New64a()
	h.Write([]byte("switchboard.outbox." + r.o.schema))
	return int64(h.Sum64())
}

// Run relays until ctx is cancelled. Connection failures are retried.
func (r *Relay) Run(ctx context.Context) error {
	for n := 1; ctx.Err() == nil; n++ {
		err := r.session(ctx)
		if ctx.Err() != nil {
			break
		}
		r.failures.Add(ctx, 1)
		r.log.Warn("relay interrupted; retrying", "attempt", n, "error", err)
		if r.policy.Sleep(ctx, r.opts.Clock, n) != nil {
			break
		}
	}
	return nil
}

// session holds one connection: it waits to become the active relay, then
// listens and publishes until an error or ctx.
func (r *Relay) session(ctx context.Context) error {
	// The connection holds a session lock and a LISTEN.
	conn, err := pg.Dedicated(ctx, r.pool)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, r.lockID()).Scan(&got); err != nil {
			return fmt.Errorf("take relay lock: %w", err)
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.opts.Clock.After(r.opts.PollInterval):
		}
	}
	r.log.Info("active relay")
	if err := pg.Listen(ctx, conn, r.o.channel); err != nil {
		return err
	}
	for {
		n, err := r.publishBatch(ctx, conn)
		if err != nil {
			return err
		}
		if n == r.opts.BatchSize {
			continue // more waiting
		}
		notified, err := pg.Wait(ctx, conn, r.opts.PollInterval)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if notified && r.opts.Linger > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-r.opts.Clock.After(r.opts.Linger):
			}
		}
	}
}

// publishBatch publishes the oldest events and deletes them.
func (r *Relay) publishBatch(ctx context.Context, conn *pgx.Conn) (int, error) {
	rows, err := conn.Query(ctx, `SELECT seq, topic, key, headers, value, created_at FROM `+r.o.schema+`.outbox ORDER BY seq LIMIT $1`, r.opts.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	var (
		seqs    []int64
		msgs    []kafka.Message
		created []time.Time
	)
	for rows.Next() {
		var (
			seq   int64
			m     kafka.Message
			hjson []byte
			at    time.Time
		)
		if err := rows.Scan(&seq, &m.Topic, &m.Key, &hjson, &m.Value, &at); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan outbox row: %w", err)
		}
		var hs []header
		if err := json.Unmarshal(hjson, &hs); err != nil {
			rows.Close()
			return 0, fmt.Errorf("decode headers of outbox row %d: %w", seq, err)
		}
		for _, h := range hs {
			m.Headers = append(m.Headers, kafka.Header{Key: h.K, Value: []byte(h.V)})
		}
		seqs = append(seqs, seq)
		msgs = append(msgs, m)
		created = append(created, at)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	// The producer gives the events of each transaction a send span, child
	// of the context the transaction stored with them.
	if err := r.producer.PublishRecords(ctx, msgs...); err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+r.o.schema+`.outbox WHERE seq = ANY($1)`, seqs); err != nil {
		return 0, fmt.Errorf("delete published outbox rows: %w", err)
	}
	now := r.opts.Clock.Now()
	for _, at := range created {
		r.delay.Record(ctx, now.Sub(at).Seconds())
	}
	r.published.Add(ctx, int64(len(msgs)))
	return len(msgs), nil
}

func subFS() (fs.FS, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("outbox migrations: %w", err)
	}
	return sub, nil
}
