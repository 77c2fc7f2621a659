// Package embedded starts the stand-ins that let the whole mesh run in one
// process for trying it out: a Kafka-protocol broker (kfake) that keeps its
// log and committed offsets in a data directory, so that messages and
// offsets survive a restart, and an in-memory Redis (miniredis), which is
// enough because nothing durable lives in Redis.
//
// Production deployments point every target at a real Kafka and Redis.
package embedded

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// SegmentBytes is the size of the embedded broker's log segments, in
// bytes, except for compacted topics. Trimming (see Trim) frees a segment's
// file once every record in it is trimmed, so segments are small enough for
// what consumers have handled to leave the disk soon.
const SegmentBytes = 4 << 20

// Kafka is a running embedded broker.
type Kafka struct {
	cluster *kfake.Cluster
	log     *slog.Logger
}

// StartKafka starts a single broker on 127.0.0.1:port (0 picks a free port)
// keeping its data in dir, and creates the topics that do not exist yet.
//
// Topics are created through the broker itself, not on first use: the
// broker persists a topic's existence when it is created this way, which is
// what lets its log be found again after a crash.
func StartKafka(dir string, port int, topics []events.TopicSpec, log *slog.Logger) (*Kafka, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded Kafka data directory %s: %w", dir, err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dir),
		kfake.WithLogger(kfakeLogger{log}),
	)
	if err != nil {
		return nil, fmt.Errorf("start embedded Kafka in %s: %w", dir, err)
	}
	k := &Kafka{cluster: c, log: log}
	var existing []string
	for _, t := range topics {
		if c.TopicInfo(t.Name) != nil {
			if !t.Compacted {
				existing = append(existing, t.Name)
			}
			continue // created by an earlier run
		}
		cfg := map[string]string{"segment.bytes": strconv.Itoa(SegmentBytes)}
		if t.Compacted {
			cfg = map[string]string{"cleanup.policy": "compact"}
		}
		if err := c.CreateTopic(t.Name, int32(t.Partitions), cfg); err != nil {
			c.Close()
			return nil, fmt.Errorf("create topic %s in embedded Kafka: %w", t.Name, err)
		}
	}
	if err := k.setSegmentBytes(existing); err != nil {
		c.Close()
		return nil, err
	}
	return k, nil
}

// Brokers returns the broker address.
func (k *Kafka) Brokers() []string { return k.cluster.ListenAddrs() }

// Close saves the broker state and stops it.
func (k *Kafka) Close() { k.cluster.Close() }

type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		l.log.Warn(fmt.Sprintf(msg, args...))
	}
}

// Redis is a running embedded Redis.
type Redis struct {
	m *miniredis.Miniredis
}

// StartRedis starts an in-memory Redis on a free loopback port.
func StartRedis() (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded Redis: %w", err)
	}
	return &Redis{m: m}, nil
}

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.m.Addr() + "/0" }

// Close stops the server.
func (r *Redis) Close() { r.m.Close() }
