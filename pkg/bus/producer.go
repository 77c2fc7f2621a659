// Package bus moves events over Kafka with kafka-go.
//
// The Producer waits for every in-sync replica to acknowledge (RequireAll)
// and batches for milliseconds, not kafka-go's default second. It has no
// Kafka idempotent-producer session (kafka-go has none): a retried write can
// land twice, so every event carries a unique, stable id and every consumer
// stores what it causes under a unique constraint on that id.
//
// The Consumer is a consumer-group loop that handles first and commits
// after, per partition, in order; retries failures with backoff; sends
// messages it cannot process to sb.dlq.v1 with headers saying why; and on
// shutdown finishes the batches in hand, commits them and leaves the group.
package bus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// Config holds the settings shared by the producers and consumers of a
// process.
type Config struct {
	// Brokers are the bootstrap addresses, host:port.
	Brokers config.StringList
	// BatchTimeout is the longest a produced message waits for its batch.
	BatchTimeout time.Duration
	// BatchSize is the most messages per produced batch and partition.
	BatchSize int
	// WriteTimeout bounds one produce request.
	WriteTimeout time.Duration
	// MaxBatch is the most messages a consumer hands to its handler at once.
	MaxBatch int
	// Retry is the backoff of failed handlers.
	RetryInitial time.Duration
	// RetryMax caps the backoff of failed handlers.
	RetryMax time.Duration
	// MaxAttempts is how often a failing message is tried before it goes
	// to the dead-letter topic.
	MaxAttempts int
	// DrainTimeout bounds the handling of in-flight batches at shutdown.
	DrainTimeout time.Duration
	// SessionTimeout is how long a consumer group member may go without a
	// heartbeat before Kafka gives its partitions to the others; 0 means
	// 30 seconds.
	SessionTimeout time.Duration
	// TLS and SASL secure the connections to the brokers (see Dialer and
	// Transport, which every connection comes from).
	TLS  TLS
	SASL SASL
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.Var(&c.Brokers, prefix+"kafka.brokers", "Comma-separated Kafka bootstrap brokers, host:port. Also read from KAFKA_BROKERS. Empty with -target=all: an embedded broker is started (see -kafka.embedded-dir).")
	f.DurationVar(&c.BatchTimeout, prefix+"kafka.batch-timeout", 5*time.Millisecond, "Longest a produced message waits for others to share its batch; the acknowledgement waits for it too.")
	f.IntVar(&c.BatchSize, prefix+"kafka.batch-size", 100, "Most messages in one produced batch per partition; a full batch goes out without waiting. kafka-go allocates room for this many messages in every batch, so a large value costs memory and CPU when batches are small.")
	f.DurationVar(&c.WriteTimeout, prefix+"kafka.write-timeout", 10*time.Second, "Longest wait for one produce request to be acknowledged.")
	f.IntVar(&c.MaxBatch, prefix+"kafka.consumer.max-batch", 256, "Most messages of one partition a consumer handles in one go (one database transaction in the inbox).")
	f.DurationVar(&c.RetryInitial, prefix+"kafka.consumer.retry-initial", 100*time.Millisecond, "First wait before a failed message is handled again; it doubles on each failure.")
	f.DurationVar(&c.RetryMax, prefix+"kafka.consumer.retry-max", 10*time.Second, "Longest wait between two attempts at a failed message.")
	f.IntVar(&c.MaxAttempts, prefix+"kafka.consumer.max-attempts", 8, "Attempts at a failing message before it goes to the dead-letter topic sb.dlq.v1. Failures because a dependency is down (the database) are retried without limit instead.")
	f.DurationVar(&c.DrainTimeout, prefix+"kafka.consumer.drain-timeout", 15*time.Second, "At shutdown, longest wait for the batches in hand to be handled and committed.")
	f.DurationVar(&c.SessionTimeout, prefix+"kafka.consumer.session-timeout", 30*time.Second, "How long a consumer that stopped without leaving its group (killed, frozen, cut off) keeps its partitions before Kafka hands them to the other replicas: the longest pause of a partition's consumption after such a crash. Shorter fails over sooner, but a replica paused that long (a long GC, a slow node) loses its partitions and the group rebalances. Kafka brokers accept 6s to 30m by default (group.min/max.session.timeout.ms); heartbeats go every second.")
	c.registerSecurityFlags(prefix, f)
}

// Validate checks the settings; brokers are checked by the caller, which
// knows whether an embedded broker stands in.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	for _, b := range c.Brokers {
		_, _, err := net.SplitHostPort(b)
		ck.Check(err == nil, "kafka.brokers", fmt.Sprintf("%q is not host:port", b), "list brokers as host:port,host:port")
	}
	ck.Positive("kafka.batch-timeout", c.BatchTimeout)
	ck.AtLeast("kafka.batch-size", c.BatchSize, 1)
	ck.Positive("kafka.write-timeout", c.WriteTimeout)
	ck.AtLeast("kafka.consumer.max-batch", c.MaxBatch, 1)
	ck.Positive("kafka.consumer.retry-initial", c.RetryInitial)
	ck.Check(c.RetryMax >= c.RetryInitial, "kafka.consumer.retry-max", fmt.Sprintf("%s is less than -kafka.consumer.retry-initial %s", c.RetryMax, c.RetryInitial), "set it to at least the initial wait")
	ck.AtLeast("kafka.consumer.max-attempts", c.MaxAttempts, 1)
	ck.Positive("kafka.consumer.drain-timeout", c.DrainTimeout)
	ck.Check(c.SessionTimeout == 0 || c.SessionTimeout >= 3*time.Second, "kafka.consumer.session-timeout",
		fmt.Sprintf("%s is shorter than three heartbeats (one a second)", c.SessionTimeout), "set at least 6s, Kafka's default minimum")
	c.checkSecurity(ck)
	return ck.Err()
}

// Producer publishes events and raw records.
type Producer struct {
	w      *kafka.Writer
	cfg    Config
	t      *kafka.Transport
	tracer trace.Tracer
	sent   metric.Int64Counter
	errs   metric.Int64Counter
}

// NewProducer builds a producer for cfg.Brokers. It connects lazily.
func NewProducer(cfg Config, tel *telemetry.Telemetry) (*Producer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("producer: no Kafka brokers configured")
	}
	t, err := cfg.Transport()
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(cfg.Brokers...),
		// Murmur2 is the Java client's partitioner: other clients keying
		// the same way land on the same partitions.
		Balancer:        kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		BatchTimeout:    cfg.BatchTimeout,
		BatchSize:       cfg.BatchSize,
		BatchBytes:      4 << 20,
		WriteTimeout:    cfg.WriteTimeout,
		MaxAttempts:     5,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: time.Second,
		Transport:       t,
		// Tells the send spans where their messages landed.
		Completion: completed,
	}
	m := tel.Meter.Meter("switchboard/bus")
	sent, err := m.Int64Counter("messaging.client.sent.messages", metric.WithDescription("Messages acknowledged by Kafka."))
	if err != nil {
		return nil, err
	}
	errs, err := m.Int64Counter("switchboard.bus.publish.errors", metric.WithDescription("Publish calls that failed."))
	if err != nil {
		return nil, err
	}
	return &Producer{w: w, cfg: cfg, t: t, tracer: tel.Tracer.Tracer(tracerName), sent: sent, errs: errs}, nil
}

// Publish sends the events to topic under key and returns once Kafka
// acknowledged all of them, in a "send <topic>" span of kind PRODUCER,
// child of the span of ctx. That span is the events' creation context: its
// trace context travels with them in the traceparent header.
func (p *Producer) Publish(ctx context.Context, topic string, key []byte, evs ...events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(evs))
	for i, ev := range evs {
		// The id first: the span's attributes read it.
		msgs[i] = kafka.Message{Topic: topic, Headers: []kafka.Header{{Key: events.HeaderID, Value: []byte(ev.ID)}}}
	}
	ctx, span := p.tracer.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(sendAttributes(topic, msgs)...))
	defer span.End()
	state := p.track(span)
	for i, ev := range evs {
		msgs[i] = ev.Message(ctx, topic, key)
		if state != nil {
			msgs[i].WriterData = state
		}
	}
	err := p.write(ctx, msgs)
	p.finish(span, state, len(msgs), err)
	return err
}

// PublishRecords sends records that already carry their topic and headers
// (the outbox relay and the dead-letter path use it). The records of one
// topic that carry the same creation context (the traceparent header of the
// transaction that wrote them to the outbox, or of the message a dead
// letter was) go out in one "send <topic>" span of kind PRODUCER, child of
// that context, which becomes their new creation context; records without
// one get a span that is a child of the span of ctx.
func (p *Producer) PublishRecords(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	out := make([]kafka.Message, len(msgs))
	type group struct {
		topic, parent string
		idx           []int
	}
	var groups []group
	index := map[[2]string]int{}
	for i, m := range msgs {
		out[i] = m
		// Headers are rewritten below: the caller's slice stays as it was.
		out[i].Headers = append(make([]kafka.Header, 0, len(m.Headers)+1), m.Headers...)
		k := [2]string{m.Topic, header(m, headerTraceParent)}
		g, ok := index[k]
		if !ok {
			g = len(groups)
			index[k] = g
			groups = append(groups, group{topic: k[0], parent: k[1]})
		}
		groups[g].idx = append(groups[g].idx, i)
	}
	type sending struct {
		span  trace.Span
		state *sendState
		n     int
	}
	spans := make([]sending, len(groups))
	for gi, g := range groups {
		members := make([]kafka.Message, len(g.idx))
		for j, i := range g.idx {
			members[j] = out[i]
		}
		parent := ctx
		if g.parent != "" {
			parent = events.ExtractTraceContext(ctx, members[0].Headers)
		}
		sctx, span := p.tracer.Start(parent, "send "+g.topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(sendAttributes(g.topic, members)...))
		state := p.track(span)
		for _, i := range g.idx {
			events.InjectTraceContext(sctx, &out[i].Headers)
			if state != nil {
				out[i].WriterData = state
			}
		}
		spans[gi] = sending{span: span, state: state, n: len(g.idx)}
	}
	err := p.write(ctx, out)
	for _, s := range spans {
		p.finish(s.span, s.state, s.n, err)
		s.span.End()
	}
	return err
}

// track returns what the writer's completion callback fills in for span,
// or nil when the span records nothing (its attributes would go nowhere).
func (p *Producer) track(span trace.Span) *sendState {
	if !span.IsRecording() {
		return nil
	}
	return &sendState{}
}

// finish records the outcome of a send on its span.
func (p *Producer) finish(span trace.Span, state *sendState, n int, err error) {
	if state != nil {
		span.SetAttributes(state.attributes(n)...)
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}

func (p *Producer) write(ctx context.Context, msgs []kafka.Message) error {
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		p.errs.Add(ctx, 1)
		return p.cfg.Explain(fmt.Errorf("publish %d message(s) to %s: %w", len(msgs), msgs[0].Topic, err))
	}
	byTopic := map[string]int64{}
	for _, m := range msgs {
		byTopic[m.Topic]++
	}
	for t, n := range byTopic {
		p.sent.Add(ctx, n, metric.WithAttributes(attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", t)))
	}
	return nil
}

// Close flushes pending writes and closes the connections.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.t.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close producer: %w", err)
	}
	return nil
}

// EnsureTopics creates the topics that do not exist yet, for the embedded
// broker and for development clusters; production clusters get them from
// deploy/topics.
func EnsureTopics(ctx context.Context, cfg Config, specs []events.TopicSpec) error {
	client, done, err := cfg.Client(10 * time.Second)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	defer done()
	var topics []kafka.TopicConfig
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: -1}
		if s.Compacted {
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
		}
		topics = append(topics, tc)
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return cfg.Explain(fmt.Errorf("create topics: %w", err))
	}
	for name, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", name, terr)
		}
	}
	return nil
}

func itoa(n int64) []byte { return []byte(strconv.FormatInt(n, 10)) }
