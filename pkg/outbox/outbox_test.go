package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const topic = "sb.outboxtest.v1"

type env struct {
	pool     *pgxpool.Pool
	brokers  []string
	producer *bus.Producer
	ob       *outbox.Outbox
	tel      *telemetry.Telemetry
}

func setup(t *testing.T) env {
	t.Helper()
	pool := testkit.Postgres(t)
	brokers := testkit.Kafka(t, events.TopicSpec{Name: topic, Partitions: 4})
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	ob := outbox.New("svc")
	require.NoError(t, ob.Migrate(context.Background(), pool))
	_, err = pool.Exec(context.Background(), `CREATE TABLE svc.things (id int PRIMARY KEY)`)
	require.NoError(t, err)
	return env{pool: pool, brokers: brokers, producer: p, ob: ob, tel: tel}
}

type payload struct {
	N int `json:"n"`
}

// write commits (or rolls back) a state change with its event.
func (e env) write(t *testing.T, n int, commit bool) string {
	t.Helper()
	ctx := context.Background()
	ev, err := events.New("sb.thing.created.v1", "test", "tenant-1", time.Now(), payload{N: n})
	require.NoError(t, err)
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO svc.things (id) VALUES ($1)`, n)
	require.NoError(t, err)
	require.NoError(t, e.ob.Add(ctx, tx, outbox.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", n%3)), Event: ev}))
	if commit {
		require.NoError(t, tx.Commit(ctx))
	} else {
		require.NoError(t, tx.Rollback(ctx))
	}
	return ev.ID
}

func (e env) relay(t *testing.T) (stop func()) {
	t.Helper()
	r, err := e.ob.Relay(e.pool, e.producer, e.tel, outbox.RelayOptions{BatchSize: 7, PollInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	return testkit.Run(t, r)
}

// read returns the events on the topic, per key, in partition order, until
// want distinct ids arrived or the wait ends.
func (e env) read(t *testing.T, want int, wait time.Duration) (byKey map[string][]int, ids map[string]int) {
	t.Helper()
	byKey, ids = map[string][]int{}, map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				ev, _, err := events.FromMessage(ctx, m)
				require.NoError(t, err)
				var pl payload
				require.NoError(t, ev.Decode(&pl))
				mu.Lock()
				ids[ev.ID]++
				byKey[string(m.Key)] = append(byKey[string(m.Key)], pl.N)
				done := len(ids) >= want
				mu.Unlock()
				if done {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	return byKey, ids
}

func TestCommittedEventsArePublishedInOrderPerKey(t *testing.T) {
	e := setup(t)
	e.relay(t)
	committed := map[string]bool{}
	for n := 0; n < 60; n++ {
		commit := n%10 != 9
		id := e.write(t, n, commit)
		if commit {
			committed[id] = true
		}
	}
	byKey, ids := e.read(t, len(committed), 30*time.Second)
	require.Len(t, ids, len(committed))
	for id := range ids {
		require.True(t, committed[id], "event %s of a rolled-back transaction was published", id)
	}
	for key, ns := range byKey {
		require.IsIncreasing(t, ns, "key %s out of order", key)
	}
	var left int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM svc.outbox`).Scan(&left))
	require.Zero(t, left, "published events stay in the outbox")
}

func TestRelayRestartLosesNothing(t *testing.T) {
	e := setup(t)
	want := map[string]bool{}
	for n := 0; n < 20; n++ {
		want[e.write(t, n, true)] = true
	}
	stop := e.relay(t)
	stop() // may have published some, all or none
	for n := 20; n < 40; n++ {
		want[e.write(t, n, true)] = true
	}
	e.relay(t)
	_, ids := e.read(t, len(want), 30*time.Second)
	for id := range want {
		require.Contains(t, ids, id, "event lost across the relay restart")
	}
}

func TestOnlyOneRelayIsActive(t *testing.T) {
	e := setup(t)
	e.relay(t)
	e.relay(t) // a standby: waits for the advisory lock
	for n := 0; n < 30; n++ {
		e.write(t, n, true)
	}
	byKey, ids := e.read(t, 30, 30*time.Second)
	require.Len(t, ids, 30)
	for id, times := range ids {
		require.Equal(t, 1, times, "event %s published %d times by two relays", id, times)
	}
	for key, ns := range byKey {
		require.IsIncreasing(t, ns, "key %s out of order", key)
	}
}

func TestAddOutsideCommitPublishesNothing(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ev, err := events.New("sb.thing.created.v1", "test", "tenant-1", time.Now(), payload{N: 1})
	require.NoError(t, err)
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		require.NoError(t, e.ob.Add(ctx, tx, outbox.Record{Topic: topic, Key: []byte("k"), Event: ev}))
		return errors.New("the state change failed")
	})
	require.Error(t, err)
	var n int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM svc.outbox`).Scan(&n))
	require.Zero(t, n)
}
