// Package testkit gives integration tests their real dependencies, each
// isolated: a fresh PostgreSQL database per test, a Redis key prefix per
// test, and an in-process Kafka-protocol broker (kfake) per test.
//
// PostgreSQL and Redis are the local servers (127.0.0.1:5432 and
// 127.0.0.1:6379), or those named by SB_TEST_DATABASE_URL and
// SB_TEST_REDIS_URL. A test fails, rather than skips, when they are
// unreachable: `make test` starts them first.
package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
)

// DefaultDatabaseURL is the server tests create their databases on.
const DefaultDatabaseURL = "postgres://127.0.0.1:5432/postgres?sslmode=disable"

// DefaultRedisURL is the server tests use.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RandomName returns prefix followed by 12 random hex digits.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// DatabaseURL creates an empty database for the test, drops it when the test
// ends, and returns its URL.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("SB_TEST_DATABASE_URL")
	if base == "" {
		base = DefaultDatabaseURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testkit: PostgreSQL at %s is unreachable (run `make test`, which starts it, or set SB_TEST_DATABASE_URL): %v", base, err)
	}
	defer admin.Close(ctx)
	name := RandomName("sbtest_")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testkit: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("testkit: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testkit: drop database %s: %v", name, err)
		}
	})
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("testkit: parse %s: %v", base, err)
	}
	return replaceDatabase(base, cfg.Database, name)
}

// replaceDatabase swaps the database name in a URL.
func replaceDatabase(url, old, name string) string {
	if i := strings.LastIndex(url, "/"+old); i >= 0 {
		return url[:i] + "/" + name + url[i+1+len(old):]
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "dbname=" + name
}

// Postgres returns a pool on a fresh database, closed when the test ends.
func Postgres(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := DatabaseURL(t)
	pool, err := pg.Connect(context.Background(), pg.Config{URL: url, MaxConns: 8, ConnectTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Redis returns a client on the test Redis server and a key prefix unique
// to the test; keys under the prefix are deleted when the test ends.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	url := os.Getenv("SB_TEST_REDIS_URL")
	if url == "" {
		url = DefaultRedisURL
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("testkit: parse %s: %v", url, err)
	}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("testkit: Redis at %s is unreachable (run `make test`, which starts it, or set SB_TEST_REDIS_URL): %v", url, err)
	}
	prefix := RandomName("sbtest:") + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Kafka starts an in-process broker with Switchboard's topics plus extra
// ones, stopped when the test ends, and returns its address. With
// SB_TEST_KAFKA_SECURE=1 it is SecureKafka's broker, which requires TLS
// and SASL.
func Kafka(t testing.TB, extra ...events.TopicSpec) []string {
	t.Helper()
	if KafkaSecure() {
		return SecureKafka(t, extra...)
	}
	brokers := startKafka(t)
	createTopics(t, brokers, extra)
	return brokers
}

// startKafka starts kfake with opts, stopped when the test ends, and
// returns its address.
func startKafka(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(1)}, opts...)...)
	if err != nil {
		t.Fatalf("testkit: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// createTopics creates Switchboard's topics plus extra ones on brokers.
func createTopics(t testing.TB, brokers []string, extra []events.TopicSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, BusConfig(brokers), append(events.Topics(), extra...)); err != nil {
		t.Fatalf("testkit: %v", err)
	}
}

// BusConfig is a bus configuration for brokers with test-friendly timings,
// and the TLS and SASL settings of the broker when SecureKafka started it.
func BusConfig(brokers []string) bus.Config {
	return withSecurity(brokers, bus.Config{
		Brokers:      brokers,
		BatchTimeout: time.Millisecond,
		BatchSize:    100,
		WriteTimeout: 10 * time.Second,
		MaxBatch:     64,
		RetryInitial: 5 * time.Millisecond,
		RetryMax:     50 * time.Millisecond,
		MaxAttempts:  3,
		DrainTimeout: 10 * time.Second,
	})
}

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with msg. It bounds waits for asynchronous effects; it
// never measures time.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("testkit: after %s: "+msg, append([]any{timeout}, args...)...)
}

// Context returns a context cancelled when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// Runner is what Run runs: a component's Run loop.
type Runner interface {
	Run(ctx context.Context) error
}

// Run starts r in the background and returns a stop function that cancels
// it, waits for it and fails the test if it returned an error. Stop also
// runs when the test ends; calling it twice is harmless.
func Run(t testing.TB, r Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("testkit: %T stopped with an error: %v", r, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
