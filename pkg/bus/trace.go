package bus

import (
	"context"
	"strconv"
	"sync"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// Messaging spans follow the OpenTelemetry semantic conventions for
// messaging (attribute registry of semconv v1.40.0):
//
//   - every produce is a "send <topic>" span of kind PRODUCER, whose
//     context goes out in the traceparent header of the messages it sends:
//     it is their creation context;
//   - every handled batch is a "process <topic>" span of kind CONSUMER that
//     links to the creation context of each of its messages, and is the
//     child of it when the batch holds one message, so that a message's
//     trace reads straight through.
//
// Both carry messaging.system, messaging.operation.type and .name,
// messaging.destination.name and, once known, .partition.id; consumer spans
// also messaging.consumer.group.name. A span about one message carries its
// messaging.message.id (the ce_id) and messaging.kafka.offset; a span about
// several carries messaging.batch.message_count instead. The record key is
// not recorded (messaging.kafka.message.key): an SMS conversation's key
// holds the customer's phone number, which has no place in traces.

// tracerName is the instrumentation scope of the bus's spans.
const tracerName = "switchboard/bus"

// headerTraceParent is the W3C header that carries a creation context.
const headerTraceParent = "traceparent"

// header returns the value of the header named key, or "".
func header(m kafka.Message, key string) string {
	return events.HeaderValue(m.Headers, key)
}

// CreationContext returns the span context a record was created in, from
// its traceparent header; it is invalid when the record has none.
func CreationContext(m kafka.Message) trace.SpanContext {
	return trace.SpanContextFromContext(events.ExtractTraceContext(context.Background(), m.Headers))
}

// partitionID is the string form messaging.destination.partition.id takes.
func partitionID(p int) attribute.KeyValue {
	return semconv.MessagingDestinationPartitionID(strconv.Itoa(p))
}

// sendAttributes are the attributes of a send span over msgs, known before
// they go out.
func sendAttributes(topic string, msgs []kafka.Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeSend,
		semconv.MessagingOperationName("send"),
		semconv.MessagingDestinationName(topic),
	}
	if len(msgs) == 1 {
		if id := header(msgs[0], events.HeaderID); id != "" {
			attrs = append(attrs, semconv.MessagingMessageID(id))
		}
	} else {
		attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
	}
	return attrs
}

// processAttributes are the attributes of a process span over msgs, all of
// one partition; group is "" for a reader outside any consumer group.
func processAttributes(group string, msgs []Message) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(msgs[0].Topic),
		partitionID(msgs[0].Partition),
	}
	if group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(group))
	}
	if len(msgs) == 1 {
		attrs = append(attrs, semconv.MessagingKafkaOffset(int(msgs[0].Offset)))
		if msgs[0].Event.ID != "" {
			attrs = append(attrs, semconv.MessagingMessageID(msgs[0].Event.ID))
		}
	} else {
		attrs = append(attrs, semconv.MessagingBatchMessageCount(len(msgs)))
	}
	return attrs
}

// startProcess starts the process span of msgs: a child of the creation
// context of a lone message, linked to the creation context of each.
func startProcess(ctx context.Context, tracer trace.Tracer, group string, msgs []Message) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(msgs))
	for _, m := range msgs {
		if m.SpanContext.IsValid() {
			links = append(links, trace.Link{SpanContext: m.SpanContext})
		}
	}
	if len(msgs) == 1 {
		ctx = msgs[0].Context(ctx)
	}
	return tracer.Start(ctx, "process "+msgs[0].Topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...),
		trace.WithAttributes(processAttributes(group, msgs)...))
}

// StartProcessSpan starts the span of the processing of one record read
// without a Consumer (a partition reader outside any consumer group, such
// as the inbox's stream hub): a "process <topic>" span of kind CONSUMER,
// child of and linked to the record's creation context. group is the
// consumer group, "" for none. The caller ends the span.
func StartProcessSpan(ctx context.Context, tp trace.TracerProvider, group string, m kafka.Message) (context.Context, trace.Span) {
	msg := Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, SpanContext: CreationContext(m)}
	msg.Event.ID = header(m, events.HeaderID)
	return startProcess(ctx, tp.Tracer(tracerName), group, []Message{msg})
}

// sendState gathers where Kafka put the messages of one send span; the
// writer's completion callback fills it, from the partition writers'
// goroutines.
type sendState struct {
	mu        sync.Mutex
	partition int
	offset    int64
	seen      int
	mixed     bool
}

func (s *sendState) add(partition int, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen > 0 && partition != s.partition {
		s.mixed = true
	}
	s.partition, s.offset = partition, offset
	s.seen++
}

// attributes are the partition, when every message went to the same one,
// and the offset of a lone message.
func (s *sendState) attributes(n int) []attribute.KeyValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == 0 || s.mixed {
		return nil
	}
	attrs := []attribute.KeyValue{partitionID(s.partition)}
	if n == 1 && s.seen == 1 {
		attrs = append(attrs, semconv.MessagingKafkaOffset(int(s.offset)))
	}
	return attrs
}

// completed is the kafka.Writer's Completion callback: it tells each
// recorded send span where its messages landed.
func completed(msgs []kafka.Message, err error) {
	if err != nil {
		return
	}
	for _, m := range msgs {
		if s, ok := m.WriterData.(*sendState); ok && s != nil {
			s.add(m.Partition, m.Offset)
		}
	}
}
