package bus

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestBatchProcessSpanLinksEveryCreationContext: a batch's process span
// starts a trace of its own and links to the creation context of each of
// its messages (a batch consumer span cannot have several parents).
func TestBatchProcessSpanLinksEveryCreationContext(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var msgs []Message
	for i := range 3 {
		_, s := tp.Tracer("test").Start(context.Background(), "send")
		s.End()
		m := Message{Topic: "sb.test.v1", Partition: 1, Offset: int64(10 + i), SpanContext: s.SpanContext()}
		m.Event.ID = "ev"
		msgs = append(msgs, m)
	}
	_, span := startProcess(context.Background(), tp.Tracer(tracerName), "g", msgs)
	span.End()
	ended := rec.Ended()
	p := ended[len(ended)-1]
	require.Equal(t, "process sb.test.v1", p.Name())
	require.Equal(t, trace.SpanKindConsumer, p.SpanKind())
	require.False(t, p.Parent().IsValid(), "a batch is not the child of any one message")
	require.Len(t, p.Links(), 3)
	for i, l := range p.Links() {
		require.Equal(t, msgs[i].SpanContext, l.SpanContext)
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range p.Attributes() {
		got[kv.Key] = kv.Value
	}
	require.Equal(t, int64(3), got["messaging.batch.message_count"].AsInt64())
	require.Equal(t, "1", got["messaging.destination.partition.id"].AsString())
	require.Equal(t, "g", got["messaging.consumer.group.name"].AsString())
	require.Equal(t, "process", got["messaging.operation.type"].AsString())
	_, hasID := got["messaging.message.id"]
	_, hasOffset := got["messaging.kafka.offset"]
	require.False(t, hasID || hasOffset, "a batch has no one message id or offset")
}
