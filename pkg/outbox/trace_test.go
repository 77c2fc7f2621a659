package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestRelayContinuesTheTraceOfTheTransaction: an event carries the trace
// context of the transaction that added it, and the relay publishes it in a
// send span that is a child of that context, so that the record's creation
// context (its traceparent on Kafka) is in the transaction's trace.
func TestRelayContinuesTheTraceOfTheTransaction(t *testing.T) {
	e := setup(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tel := telemetry.Discard()
	tel.Tracer = tp
	producer, err := bus.NewProducer(testkit.BusConfig(e.brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close() })
	r, err := e.ob.Relay(e.pool, producer, tel, outbox.RelayOptions{PollInterval: 100 * time.Millisecond})
	require.NoError(t, err)

	ctx, store := tp.Tracer("test").Start(context.Background(), "store")
	ev, err := events.New("sb.thing.created.v1", "test", "tenant-1", time.Now(), payload{N: 1})
	require.NoError(t, err)
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, e.ob.Add(ctx, tx, outbox.Record{Topic: topic, Key: []byte("k"), Event: ev}))
	require.NoError(t, tx.Commit(ctx))
	store.End()
	testkit.Run(t, r)

	var sc trace.SpanContext
	for p := 0; p < 4 && !sc.IsValid(); p++ {
		sc = firstCreationContext(t, e.brokers, p)
	}
	require.True(t, sc.IsValid(), "the published record carries no trace context")
	var send sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "send "+topic {
			send = s
		}
	}
	require.NotNil(t, send, "the relay published without a send span")
	require.Equal(t, trace.SpanKindProducer, send.SpanKind())
	require.Equal(t, store.SpanContext().SpanID(), send.Parent().SpanID(), "the send span continues the transaction's trace")
	require.Equal(t, store.SpanContext().TraceID(), sc.TraceID())
	require.Equal(t, send.SpanContext().SpanID(), sc.SpanID(), "the record's creation context is the relay's send span")
}

// firstCreationContext returns the creation context of the first record of
// partition p, or an invalid one when the partition stays empty.
func firstCreationContext(t *testing.T, brokers []string, p int) trace.SpanContext {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rd := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	m, err := rd.ReadMessage(ctx)
	if err != nil {
		return trace.SpanContext{}
	}
	return bus.CreationContext(m)
}
