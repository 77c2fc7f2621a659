package bus_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// traced is a bus whose spans go to an in-memory recorder.
type traced struct {
	env
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
}

func setupTraced(t *testing.T) traced {
	t.Helper()
	brokers := testkit.Kafka(t, events.TopicSpec{Name: topic, Partitions: 3})
	cfg := testkit.BusConfig(brokers)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel := telemetry.Discard()
	tel.Tracer = tp
	p, err := bus.NewProducer(cfg, tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return traced{env: env{cfg: cfg, tel: tel, producer: p}, rec: rec, tp: tp}
}

// ended returns the ended spans named name.
func (e traced) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range e.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// requireAttrs checks the attributes of s that want names.
func requireAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]any) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		a, ok := got[attribute.Key(k)]
		require.True(t, ok, "%s: attribute %s missing; has %v", s.Name(), k, got)
		require.Equal(t, v, a.AsInterface(), "%s: attribute %s", s.Name(), k)
	}
}

func requireNoAttrs(t *testing.T, s sdktrace.ReadOnlySpan, keys ...string) {
	t.Helper()
	got := attrs(s)
	for _, k := range keys {
		_, ok := got[attribute.Key(k)]
		require.False(t, ok, "%s: attribute %s is set", s.Name(), k)
	}
}

func newEvent(t *testing.T, n int) events.Event {
	t.Helper()
	ev, err := events.New("sb.test.happened.v1", "test", "tenant-1", time.Now(), payload{N: n})
	require.NoError(t, err)
	return ev
}

// readTopic reads want records of every partition of topic.
func readTopic(t *testing.T, brokers []string, want int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []kafka.Message
	for p := 0; p < 3 && len(out) < want; p++ {
		r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
		conn, err := testkit.KafkaDialer(t, brokers).DialLeader(ctx, "tcp", brokers[0], topic, p)
		require.NoError(t, err)
		last, err := conn.ReadLastOffset()
		require.NoError(t, err)
		_ = conn.Close()
		for i := int64(0); i < last; i++ {
			m, err := r.ReadMessage(ctx)
			require.NoError(t, err)
			out = append(out, m)
		}
		_ = r.Close()
	}
	require.Len(t, out, want)
	return out
}

func spanContextOf(m kafka.Message) trace.SpanContext { return bus.CreationContext(m) }

func TestPublishSpanFollowsMessagingConventions(t *testing.T) {
	e := setupTraced(t)
	ctx, parent := e.tp.Tracer("test").Start(context.Background(), "webhook")
	ev := newEvent(t, 1)
	require.NoError(t, e.producer.Publish(ctx, topic, []byte("conversation-1"), ev))
	parent.End()

	sends := e.ended("send " + topic)
	require.Len(t, sends, 1)
	s := sends[0]
	require.Equal(t, trace.SpanKindProducer, s.SpanKind())
	require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "a child of the caller's span")
	require.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
	requireAttrs(t, s, map[string]any{
		"messaging.system":           "kafka",
		"messaging.operation.type":   "send",
		"messaging.operation.name":   "send",
		"messaging.destination.name": topic,
		"messaging.message.id":       ev.ID,
	})
	requireNoAttrs(t, s, "messaging.batch.message_count", "messaging.kafka.message.key")

	// The record carries the send span as its creation context, and the
	// span says where the record landed.
	msgs := readTopic(t, e.cfg.Brokers, 1)
	require.Equal(t, s.SpanContext().SpanID(), spanContextOf(msgs[0]).SpanID())
	requireAttrs(t, s, map[string]any{
		"messaging.destination.partition.id": strconv.Itoa(msgs[0].Partition),
		"messaging.kafka.offset":             msgs[0].Offset,
	})
}

func TestPublishOfSeveralEventsIsOneBatchSpan(t *testing.T) {
	e := setupTraced(t)
	require.NoError(t, e.producer.Publish(context.Background(), topic, []byte("conversation-1"), newEvent(t, 1), newEvent(t, 2), newEvent(t, 3)))
	sends := e.ended("send " + topic)
	require.Len(t, sends, 1)
	s := sends[0]
	require.False(t, s.Parent().IsValid(), "no caller span: a new trace")
	requireAttrs(t, s, map[string]any{"messaging.batch.message_count": int64(3), "messaging.operation.type": "send"})
	requireNoAttrs(t, s, "messaging.message.id", "messaging.kafka.offset")
	msgs := readTopic(t, e.cfg.Brokers, 3)
	for _, m := range msgs {
		require.Equal(t, s.SpanContext().SpanID(), spanContextOf(m).SpanID())
		require.Equal(t, strconv.Itoa(m.Partition), attrs(s)["messaging.destination.partition.id"].AsString(), "one key, one partition")
	}
}

// TestPublishRecordsContinuesTheirCreationContext: records that carry a
// traceparent (the outbox's, a dead letter's) get a send span that is a
// child of it, one per topic and context, and go out with that span as
// their new creation context.
func TestPublishRecordsContinuesTheirCreationContext(t *testing.T) {
	e := setupTraced(t)
	tr := e.tp.Tracer("test")
	record := func(ctx context.Context, n int) kafka.Message {
		return newEvent(t, n).Message(ctx, topic, []byte("k"+strconv.Itoa(n)))
	}
	ctxA, txA := tr.Start(context.Background(), "transaction A")
	txA.End()
	ctxB, txB := tr.Start(context.Background(), "transaction B")
	txB.End()
	in := []kafka.Message{record(ctxA, 1), record(ctxB, 2), record(ctxA, 3), record(context.Background(), 4)}
	before := spanContextOf(in[0])
	relayCtx, relay := tr.Start(context.Background(), "relay")
	require.NoError(t, e.producer.PublishRecords(relayCtx, in...))
	relay.End()
	require.Equal(t, before, spanContextOf(in[0]), "the caller's records are left as they were")

	sends := e.ended("send " + topic)
	require.Len(t, sends, 3, "one span per creation context")
	byParent := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range sends {
		require.Equal(t, trace.SpanKindProducer, s.SpanKind())
		requireAttrs(t, s, map[string]any{"messaging.system": "kafka", "messaging.operation.type": "send", "messaging.destination.name": topic})
		byParent[s.Parent().SpanID()] = s
	}
	a, b, none := byParent[txA.SpanContext().SpanID()], byParent[txB.SpanContext().SpanID()], byParent[relay.SpanContext().SpanID()]
	require.NotNil(t, a, "transaction A's records continue its trace")
	require.NotNil(t, b, "transaction B's record continues its trace")
	require.NotNil(t, none, "a record without a creation context is a child of the caller's span")
	require.Equal(t, txA.SpanContext().TraceID(), a.SpanContext().TraceID())
	require.Equal(t, txB.SpanContext().TraceID(), b.SpanContext().TraceID())
	requireAttrs(t, a, map[string]any{"messaging.batch.message_count": int64(2)})
	requireAttrs(t, b, map[string]any{"messaging.message.id": header(in[1], events.HeaderID)})

	want := map[string]trace.SpanID{
		header(in[0], events.HeaderID): a.SpanContext().SpanID(),
		header(in[1], events.HeaderID): b.SpanContext().SpanID(),
		header(in[2], events.HeaderID): a.SpanContext().SpanID(),
		header(in[3], events.HeaderID): none.SpanContext().SpanID(),
	}
	for _, m := range readTopic(t, e.cfg.Brokers, 4) {
		require.Equal(t, want[header(m, events.HeaderID)], spanContextOf(m).SpanID(), "the send span is the record's creation context")
	}
}

func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestProcessSpanFollowsMessagingConventions(t *testing.T) {
	e := setupTraced(t)
	handled := make(chan bus.Message, 1)
	var inHandler trace.SpanContext
	runConsumer(t, e.env, "g-spans", func(ctx context.Context, msgs []bus.Message) error {
		inHandler = trace.SpanContextFromContext(ctx)
		handled <- msgs[0]
		return nil
	})
	ev := newEvent(t, 1)
	require.NoError(t, e.producer.Publish(context.Background(), topic, []byte("conversation-1"), ev))
	var m bus.Message
	select {
	case m = <-handled:
	case <-time.After(20 * time.Second):
		t.Fatal("the message never arrived")
	}
	send := e.ended("send " + topic)[0]
	var process sdktrace.ReadOnlySpan
	testkit.Eventually(t, 10*time.Second, func() bool {
		ps := e.ended("process " + topic)
		if len(ps) > 0 {
			process = ps[0]
		}
		return process != nil
	}, "no process span ended")
	require.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	require.Equal(t, send.SpanContext().SpanID(), process.Parent().SpanID(), "a lone message's processing is a child of its creation context")
	require.Equal(t, send.SpanContext().TraceID(), process.SpanContext().TraceID())
	require.Len(t, process.Links(), 1)
	require.Equal(t, send.SpanContext().SpanID(), process.Links()[0].SpanContext.SpanID(), "and links to it")
	require.Equal(t, process.SpanContext().SpanID(), inHandler.SpanID(), "the handler runs in the process span")
	requireAttrs(t, process, map[string]any{
		"messaging.system":                   "kafka",
		"messaging.operation.type":           "process",
		"messaging.operation.name":           "process",
		"messaging.destination.name":         topic,
		"messaging.destination.partition.id": strconv.Itoa(m.Partition),
		"messaging.consumer.group.name":      "g-spans",
		"messaging.message.id":               ev.ID,
		"messaging.kafka.offset":             m.Offset,
	})
	requireNoAttrs(t, process, "messaging.batch.message_count")
}

// TestEachHandlesALoneMessageInTheProcessSpan: bus.Each must not step out
// of the process span into the producer's.
func TestEachHandlesALoneMessageInTheProcessSpan(t *testing.T) {
	e := setupTraced(t)
	seen := make(chan trace.SpanContext, 1)
	runConsumer(t, e.env, "g-each", bus.Each(func(ctx context.Context, _ payload) error {
		seen <- trace.SpanContextFromContext(ctx)
		return nil
	}))
	require.NoError(t, e.producer.Publish(context.Background(), topic, []byte("k"), newEvent(t, 1)))
	var sc trace.SpanContext
	select {
	case sc = <-seen:
	case <-time.After(20 * time.Second):
		t.Fatal("the message never arrived")
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.ended("process "+topic)) > 0 }, "no process span ended")
	require.Equal(t, e.ended("process " + topic)[0].SpanContext().SpanID(), sc.SpanID())
}

// TestStartProcessSpanForAReaderWithoutGroup: the span of a record read by
// hand (the inbox's stream hub) is a child of its creation context and
// names no consumer group.
func TestStartProcessSpanForAReaderWithoutGroup(t *testing.T) {
	e := setupTraced(t)
	ctx, creator := e.tp.Tracer("test").Start(context.Background(), "send")
	creator.End()
	ev := newEvent(t, 7)
	m := ev.Message(ctx, topic, []byte("k"))
	m.Partition, m.Offset = 2, 41
	_, span := bus.StartProcessSpan(context.Background(), e.tp, "", m)
	span.End()
	ps := e.ended("process " + topic)
	require.Len(t, ps, 1)
	p := ps[0]
	require.Equal(t, trace.SpanKindConsumer, p.SpanKind())
	require.Equal(t, creator.SpanContext().SpanID(), p.Parent().SpanID())
	require.True(t, p.Parent().IsRemote())
	requireAttrs(t, p, map[string]any{
		"messaging.system":                   "kafka",
		"messaging.operation.type":           "process",
		"messaging.destination.name":         topic,
		"messaging.destination.partition.id": "2",
		"messaging.kafka.offset":             int64(41),
		"messaging.message.id":               ev.ID,
	})
	requireNoAttrs(t, p, "messaging.consumer.group.name")

	// Without a traceparent, a new trace.
	var kept []kafka.Header
	for _, h := range m.Headers {
		if h.Key != "traceparent" {
			kept = append(kept, h)
		}
	}
	m.Headers = kept
	_, span = bus.StartProcessSpan(context.Background(), e.tp, "g", m)
	span.End()
	require.False(t, e.ended("process " + topic)[1].Parent().IsValid())
	require.Empty(t, e.ended("process " + topic)[1].Links())
}
