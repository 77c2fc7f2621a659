package embedded_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/embedded"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

func TestKafkaKeepsMessagesAcrossARestart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	topics := []events.TopicSpec{{Name: "sb.test.v1", Partitions: 2}}
	k, err := embedded.StartKafka(dir, 0, topics, log)
	require.NoError(t, err)
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers()...), Topic: "sb.test.v1", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	require.NoError(t, w.WriteMessages(context.Background(), kafka.Message{Key: []byte("a"), Value: []byte("one")}, kafka.Message{Key: []byte("b"), Value: []byte("two")}))
	require.NoError(t, w.Close())
	k.Close()

	k, err = embedded.StartKafka(dir, 0, topics, log) // the topic exists: not created again
	require.NoError(t, err)
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for p := 0; p < 2; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers(), Topic: "sb.test.v1", Partition: p, MaxWait: 50 * time.Millisecond})
		conn, err := kafka.DialLeader(ctx, "tcp", k.Brokers()[0], "sb.test.v1", p)
		require.NoError(t, err)
		last, err := conn.ReadLastOffset()
		require.NoError(t, err)
		conn.Close()
		for i := int64(0); i < last; i++ {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			got = append(got, string(m.Value))
		}
		r.Close()
	}
	require.ElementsMatch(t, []string{"one", "two"}, got)
}

func TestRedis(t *testing.T) {
	r, err := embedded.StartRedis()
	require.NoError(t, err)
	defer r.Close()
	opts, err := redis.ParseURL(r.URL())
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	require.NoError(t, rdb.Set(context.Background(), "k", "v", 0).Err())
	require.Equal(t, "v", rdb.Get(context.Background(), "k").Val())
}

func TestTrimDeletesOnlyWhatEveryGroupCommitted(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	topics := []events.TopicSpec{
		{Name: "sb.read.v1", Partitions: 2},
		{Name: "sb.unread.v1", Partitions: 1},
		{Name: events.TopicConfig, Partitions: 1, Compacted: true},
		{Name: events.TopicDLQ, Partitions: 1},
	}
	k, err := embedded.StartKafka(t.TempDir(), 0, topics, log)
	require.NoError(t, err)
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tp := range topics {
		for p := range tp.Partitions {
			msgs := make([]kafka.Message, 100)
			for i := range msgs {
				msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte("v")}
			}
			w := &kafka.Writer{Addr: kafka.TCP(k.Brokers()...), Topic: tp.Name, Balancer: fixedPartition(p), RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			require.NoError(t, w.WriteMessages(ctx, msgs...))
			require.NoError(t, w.Close())
		}
	}
	// Group "fast" read partition 0 of sb.read.v1 up to 80 and partition 1
	// up to 100; group "slow" read partition 0 up to 60 and has not
	// committed in partition 1.
	commit(t, ctx, k, "fast", "sb.read.v1", map[int]int64{0: 80, 1: 100})
	commit(t, ctx, k, "slow", "sb.read.v1", map[int]int64{0: 60})

	res, err := k.Trim(ctx, topics, 10)
	require.NoError(t, err)
	require.Equal(t, embedded.TrimResult{Records: 60 + 90, Partitions: 2}, res)
	require.Equal(t, int64(60), firstOffset(t, ctx, k, "sb.read.v1", 0), "below what the slowest group committed")
	require.Equal(t, int64(0), firstOffset(t, ctx, k, "sb.read.v1", 1), "a group has yet to read this partition")
	require.Equal(t, int64(90), firstOffset(t, ctx, k, "sb.unread.v1", 0), "no group reads it: its last records are kept")
	require.Equal(t, int64(0), firstOffset(t, ctx, k, events.TopicConfig, 0), "compacted topics are read from their start")
	require.Equal(t, int64(0), firstOffset(t, ctx, k, events.TopicDLQ, 0), "dead letters wait for people")

	res, err = k.Trim(ctx, topics, 10)
	require.NoError(t, err)
	require.Zero(t, res.Records, "a second pass has nothing more to trim")
}

type fixedPartition int

func (p fixedPartition) Balance(kafka.Message, ...int) int { return int(p) }

func commit(t *testing.T, ctx context.Context, k *embedded.Kafka, group, topic string, offsets map[int]int64) {
	t.Helper()
	c := &kafka.Client{Addr: kafka.TCP(k.Brokers()...)}
	req := &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for p, off := range offsets {
		req.Topics[topic] = append(req.Topics[topic], kafka.OffsetCommit{Partition: p, Offset: off})
	}
	resp, err := c.OffsetCommit(ctx, req)
	require.NoError(t, err)
	for _, parts := range resp.Topics {
		for _, p := range parts {
			require.NoError(t, p.Error)
		}
	}
}

func firstOffset(t *testing.T, ctx context.Context, k *embedded.Kafka, topic string, p int) int64 {
	t.Helper()
	conn, err := kafka.DialLeader(ctx, "tcp", k.Brokers()[0], topic, p)
	require.NoError(t, err)
	defer conn.Close()
	first, err := conn.ReadFirstOffset()
	require.NoError(t, err)
	return first
}

func TestTrimFreesTheDisk(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	topics := []events.TopicSpec{{Name: "sb.big.v1", Partitions: 1}}
	k, err := embedded.StartKafka(dir, 0, topics, log)
	require.NoError(t, err)
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	value := make([]byte, 1024)
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers()...), Topic: "sb.big.v1", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 100}
	const n = 3 * embedded.SegmentBytes / 1024 // three segments' worth
	for i := 0; i < n; i += 500 {
		msgs := make([]kafka.Message, 500)
		for j := range msgs {
			msgs[j] = kafka.Message{Value: value}
		}
		require.NoError(t, w.WriteMessages(ctx, msgs...))
	}
	require.NoError(t, w.Close())
	before := dirSize(t, dir)
	require.Greater(t, before, int64(2*embedded.SegmentBytes))

	commit(t, ctx, k, "reader", "sb.big.v1", map[int]int64{0: int64(n)})
	_, err = k.Trim(ctx, topics, 10)
	require.NoError(t, err)
	require.Less(t, dirSize(t, dir), int64(embedded.SegmentBytes)+(1<<20), "only the active segment is left on disk (it had %d bytes)", before)
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	}))
	return total
}

func TestTrimWaitsForAGroupThatJoinedButHasNotCommitted(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	topics := []events.TopicSpec{{Name: "sb.joined.v1", Partitions: 1}}
	k, err := embedded.StartKafka(t.TempDir(), 0, topics, log)
	require.NoError(t, err)
	defer k.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(k.Brokers()...), Topic: "sb.joined.v1", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	msgs := make([]kafka.Message, 100)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte("v")}
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	require.NoError(t, w.Close())
	commit(t, ctx, k, "caught-up", "sb.joined.v1", map[int]int64{0: 100})

	// A consumer that joined its group and holds its first record, not
	// committed yet (its handler is slow, its database away).
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Brokers(), Topic: "sb.joined.v1", GroupID: "joined", StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	_, err = r.FetchMessage(ctx)
	require.NoError(t, err)

	res, err := k.Trim(ctx, topics, 10)
	require.NoError(t, err)
	require.Zero(t, res.Records, "the joined group has yet to handle them")
	require.Equal(t, int64(0), firstOffset(t, ctx, k, "sb.joined.v1", 0))
}
