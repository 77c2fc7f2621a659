package embedded_test

import (
	"context"
	"io"
	"log/slog"
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
