package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const topic = "sb.test.v1"

type env struct {
	cfg      bus.Config
	tel      *telemetry.Telemetry
	producer *bus.Producer
}

func setup(t *testing.T) env {
	t.Helper()
	brokers := testkit.Kafka(t, events.TopicSpec{Name: topic, Partitions: 3})
	cfg := testkit.BusConfig(brokers)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(cfg, tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return env{cfg: cfg, tel: tel, producer: p}
}

type payload struct {
	N int `json:"n"`
}

// publish sends n events numbered from first, keyed over a few keys.
func (e env) publish(t *testing.T, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		ev, err := events.New("sb.test.happened.v1", "test", "tenant-1", time.Now(), payload{N: i})
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(context.Background(), topic, []byte(fmt.Sprintf("key-%d", i%5)), ev))
	}
}

// recorder remembers what a handler saw, per event id.
type recorder struct {
	mu    sync.Mutex
	seen  map[int]int // n -> times handled successfully
	order map[string][]int
}

func newRecorder() *recorder { return &recorder{seen: map[int]int{}, order: map[string][]int{}} }

func (r *recorder) add(m bus.Message) error {
	var p payload
	if err := m.Event.Decode(&p); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[p.N]++
	r.order[string(m.Key)] = append(r.order[string(m.Key)], p.N)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func runConsumer(t *testing.T, e env, group string, h bus.Handler) (stop func()) {
	t.Helper()
	c, err := bus.NewConsumer(e.cfg, bus.ConsumerOptions{Group: group, Topics: []string{topic}}, h, e.producer, e.tel)
	require.NoError(t, err)
	return testkit.Run(t, c)
}

func TestHandlerFailingTwiceThenSucceedingLosesNothing(t *testing.T) {
	e := setup(t)
	rec := newRecorder()
	var mu sync.Mutex
	failures := map[int]int{}
	runConsumer(t, e, "g-retry", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			var p payload
			require.NoError(t, m.Event.Decode(&p))
			mu.Lock()
			fail := failures[p.N] < 2
			if fail {
				failures[p.N]++
			}
			mu.Unlock()
			if fail {
				return fmt.Errorf("transient trouble with %d", p.N)
			}
		}
		for _, m := range msgs {
			require.NoError(t, rec.add(m))
		}
		return nil
	})
	e.publish(t, 0, 50)
	testkit.Eventually(t, 30*time.Second, func() bool { return rec.count() == 50 }, "handled %d of 50", rec.count())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for n := 0; n < 50; n++ {
		require.GreaterOrEqual(t, rec.seen[n], 1, "message %d lost", n)
	}
	for key, ns := range rec.order {
		first := map[int]bool{}
		var firsts []int
		for _, n := range ns {
			if !first[n] {
				first[n] = true
				firsts = append(firsts, n)
			}
		}
		require.IsIncreasing(t, firsts, "order of key %s", key)
	}
	require.Empty(t, readDLQ(t, e, 0, 200*time.Millisecond), "nothing should be dead-lettered")
}

func TestPoisonMessageGoesToDLQAndNextIsProcessed(t *testing.T) {
	e := setup(t)
	rec := newRecorder()
	runConsumer(t, e, "g-poison", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			var p payload
			require.NoError(t, m.Event.Decode(&p))
			if p.N == 3 {
				return bus.Permanent(errors.New("message 3 is poison"))
			}
			if p.N == 7 {
				return errors.New("message 7 always fails")
			}
		}
		for _, m := range msgs {
			require.NoError(t, rec.add(m))
		}
		return nil
	})
	// A record that is not a CloudEvent at all.
	require.NoError(t, e.producer.PublishRecords(context.Background(), kafka.Message{Topic: topic, Key: []byte("key-1"), Value: []byte("not an event")}))
	e.publish(t, 0, 12)

	testkit.Eventually(t, 30*time.Second, func() bool { return rec.count() == 10 }, "handled %d of 10", rec.count())
	dead := readDLQ(t, e, 3, 30*time.Second)
	reasons := map[string]bool{}
	for _, m := range dead {
		h := headers(m)
		require.Equal(t, topic, h[bus.HeaderDLQTopic])
		require.Equal(t, "g-poison", h[bus.HeaderDLQHandler])
		require.NotEmpty(t, h[bus.HeaderDLQOffset])
		kind, _, _ := strings.Cut(h[bus.HeaderDLQReason], ":")
		reasons[kind] = true
	}
	require.Equal(t, map[string]bool{"decode": true, "permanent": true, "exhausted": true}, reasons)

	var metrics map[string]float64
	testkit.Eventually(t, 10*time.Second, func() bool {
		var err error
		metrics, err = e.tel.Gather()
		require.NoError(t, err)
		// Every record, dead-lettered or not, is consumed and committed.
		return sum(metrics, "messaging_client_consumed_messages_total") == 13
	}, "consumed %v of 13", sum(metrics, "messaging_client_consumed_messages_total"))
	require.Equal(t, 3.0, sum(metrics, "switchboard_bus_dead_lettered_total"), metrics)
	require.Positive(t, sum(metrics, "switchboard_bus_handler_failures_total"))
	require.Contains(t, keys(metrics), "switchboard_bus_lag")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.NotContains(t, rec.seen, 3)
	require.NotContains(t, rec.seen, 7)
	for _, n := range []int{0, 1, 2, 4, 5, 6, 8, 9, 10, 11} {
		require.Contains(t, rec.seen, n)
	}
}

func TestConsumerRestartResumesAfterLastCommit(t *testing.T) {
	e := setup(t)
	first := newRecorder()
	stop := runConsumer(t, e, "g-restart", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			require.NoError(t, first.add(m))
		}
		return nil
	})
	e.publish(t, 0, 30)
	testkit.Eventually(t, 30*time.Second, func() bool { return first.count() == 30 }, "first consumer handled %d of 30", first.count())
	stop()

	e.publish(t, 30, 20)
	second := newRecorder()
	runConsumer(t, e, "g-restart", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			require.NoError(t, second.add(m))
		}
		return nil
	})
	testkit.Eventually(t, 30*time.Second, func() bool { return second.count() == 20 }, "second consumer handled %d of 20", second.count())
	second.mu.Lock()
	defer second.mu.Unlock()
	for n := range second.seen {
		require.GreaterOrEqual(t, n, 30, "message %d was committed before the restart but handled again", n)
	}
}

func TestShutdownFinishesTheBatchInHand(t *testing.T) {
	e := setup(t)
	rec := newRecorder()
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	stop := runConsumer(t, e, "g-drain", func(ctx context.Context, msgs []bus.Message) error {
		once.Do(func() { close(started) })
		<-release
		for _, m := range msgs {
			require.NoError(t, rec.add(m))
		}
		return nil
	})
	e.publish(t, 0, 5)
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	close(release)
	<-stopped
	handled := rec.count()
	require.Positive(t, handled)

	// What was handled was committed: a new consumer of the group sees only the rest.
	again := newRecorder()
	runConsumer(t, e, "g-drain", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			require.NoError(t, again.add(m))
		}
		return nil
	})
	testkit.Eventually(t, 30*time.Second, func() bool { return handled+again.count() >= 5 }, "messages lost after drain")
	rec.mu.Lock()
	again.mu.Lock()
	defer rec.mu.Unlock()
	defer again.mu.Unlock()
	for n := range again.seen {
		require.NotContains(t, rec.seen, n, "message %d was handled before shutdown but not committed", n)
	}
}

// sum adds the series of a metric, whatever their labels.
func sum(metrics map[string]float64, name string) float64 {
	var total float64
	for k, v := range metrics {
		if k == name || strings.HasPrefix(k, name+"{") {
			total += v
		}
	}
	return total
}

// keys lists metric names without labels.
func keys(metrics map[string]float64) []string {
	var out []string
	for k := range metrics {
		name, _, _ := strings.Cut(k, "{")
		out = append(out, name)
	}
	return out
}

func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// readDLQ reads the dead-letter topic until want records arrive or wait
// passes.
func readDLQ(t *testing.T, e env, want int, wait time.Duration) []kafka.Message {
	t.Helper()
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.cfg.Brokers, Topic: events.TopicDLQ, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var out []kafka.Message
	for want == 0 || len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			break
		}
		out = append(out, m)
	}
	if want > 0 {
		require.Len(t, out, want)
	}
	return out
}

func TestTraceContextTravelsWithTheMessage(t *testing.T) {
	e := setup(t)
	seen := make(chan bus.Message, 1)
	runConsumer(t, e, "g-trace", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			seen <- m
		}
		return nil
	})
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "webhook")
	ev, err := events.New("sb.test.happened.v1", "test", "tenant-1", time.Now(), payload{N: 1})
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(ctx, topic, []byte("k"), ev))
	span.End()
	select {
	case m := <-seen:
		require.Equal(t, span.SpanContext().TraceID(), m.SpanContext.TraceID())
		require.Equal(t, ev.ID, m.Event.ID)
	case <-time.After(20 * time.Second):
		t.Fatal("the message never arrived")
	}
}
