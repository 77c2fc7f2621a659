package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// Headers added to a record sent to the dead-letter topic, beside its own.
const (
	HeaderDLQReason    = "dlq_reason"
	HeaderDLQTopic     = "dlq_topic"
	HeaderDLQPartition = "dlq_partition"
	HeaderDLQOffset    = "dlq_offset"
	HeaderDLQHandler   = "dlq_handler"
	HeaderDLQAttempts  = "dlq_attempts"
	HeaderDLQTime      = "dlq_time"
)

// FetchMaxWait is every reader's deadline for a fetch's answer. The client
// asks the broker to wait for data at most this less one second (kafka-go
// keeps a second for the round trip), and the broker answers as soon as a
// record comes, so it costs no latency: it is how late an answer may be.
// With 250 ms a broker slowed down (a loaded node, a long GC) answered
// after the deadline every time; the reader reconnected and asked again,
// and the partition stopped moving.
const FetchMaxWait = 1500 * time.Millisecond

// Message is one event handed to a Handler, with where it came from.
type Message struct {
	// Event is the decoded CloudEvent.
	Event events.Event
	// Topic, Partition and Offset locate the record.
	Topic     string
	Partition int
	Offset    int64
	// Key is the record key.
	Key []byte
	// SpanContext is the producer's span, from the traceparent header.
	SpanContext trace.SpanContext
}

// Context returns ctx carrying the message's remote span, so that logs and
// spans of its handling join the producer's trace.
func (m Message) Context(ctx context.Context) context.Context {
	if !m.SpanContext.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, m.SpanContext)
}

// Handler handles a batch of messages of one partition, in offset order. It
// returns nil when all of them are handled. It must be idempotent: after a
// crash or a rebalance the same messages come again.
//
// When a batch of several messages fails, the consumer hands them to the
// handler one at a time, so that one bad message does not hold up the rest.
type Handler func(ctx context.Context, msgs []Message) error

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot fix (invalid data):
// the message goes to the dead-letter topic at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool { return errors.As(err, &permanentError{}) }

// transientError marks a failure of a dependency.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// Transient marks err as the unavailability of a dependency (the database
// is down): the message is retried without limit instead of going to the
// dead-letter topic, because it is not the message's fault.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientError{err}
}

// IsTransient reports whether err was marked with Transient.
func IsTransient(err error) bool { return errors.As(err, &transientError{}) }

// ConsumerOptions names what one consumer reads and how.
type ConsumerOptions struct {
	// Group is the consumer group; it also names the handler in
	// dead-letter headers and metrics.
	Group string
	// Topics are read from the earliest offset when the group is new.
	Topics []string
	// Clock drives the backoff; nil means the system clock.
	Clock retry.Clock
}

// Consumer runs a handler over a consumer group.
type Consumer struct {
	cfg     Config
	opts    ConsumerOptions
	handler Handler
	dlq     *Producer
	log     *slog.Logger
	tracer  trace.Tracer
	policy  retry.Policy
	clock   retry.Clock
	running atomic.Bool

	consumed     metric.Int64Counter
	failed       metric.Int64Counter
	deadLettered metric.Int64Counter
	commitErrs   metric.Int64Counter
	duration     metric.Float64Histogram
	batchSize    metric.Int64Histogram
	lagMu        sync.Mutex
	lag          map[partitionKey]int64
	lastBatch    atomic.Int64 // unix nanoseconds of the last batch handled
	attrs        metric.MeasurementOption
}

type partitionKey struct {
	topic     string
	partition int
}

// NewConsumer builds a consumer; dlq publishes dead letters.
func NewConsumer(cfg Config, opts ConsumerOptions, handler Handler, dlq *Producer, tel *telemetry.Telemetry) (*Consumer, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("consumer: no Kafka brokers configured")
	}
	if opts.Group == "" || len(opts.Topics) == 0 {
		return nil, errors.New("consumer: a group and at least one topic are required")
	}
	if opts.Clock == nil {
		opts.Clock = retry.SystemClock{}
	}
	// The TLS files and the password file are read now: a bad one fails
	// the start rather than the consumer loop.
	if _, err := cfg.Dialer(); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	c := &Consumer{
		cfg: cfg, opts: opts, handler: handler, dlq: dlq,
		log:    tel.Component("bus").With("group", opts.Group),
		tracer: tel.Tracer.Tracer(tracerName),
		policy: retry.Policy{Initial: cfg.RetryInitial, Max: cfg.RetryMax, Multiplier: 2, MaxAttempts: cfg.MaxAttempts},
		clock:  opts.Clock,
		lag:    map[partitionKey]int64{},
		attrs:  metric.WithAttributes(attribute.String("messaging.system", "kafka"), attribute.String("messaging.consumer.group.name", opts.Group)),
	}
	m := tel.Meter.Meter("switchboard/bus")
	var err error
	if c.consumed, err = m.Int64Counter("messaging.client.consumed.messages", metric.WithDescription("Messages handled and committed.")); err != nil {
		return nil, err
	}
	if c.failed, err = m.Int64Counter("switchboard.bus.handler.failures", metric.WithDescription("Handler calls that returned an error (each is retried or dead-lettered).")); err != nil {
		return nil, err
	}
	if c.deadLettered, err = m.Int64Counter("switchboard.bus.dead_lettered", metric.WithDescription("Messages sent to the dead-letter topic.")); err != nil {
		return nil, err
	}
	if c.commitErrs, err = m.Int64Counter("switchboard.bus.commit.errors", metric.WithDescription("Offset commits that failed (the messages will be handled again).")); err != nil {
		return nil, err
	}
	if c.duration, err = m.Float64Histogram("messaging.process.duration", metric.WithUnit("s"), metric.WithDescription("Time to handle one batch."), metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...)); err != nil {
		return nil, err
	}
	if c.batchSize, err = m.Int64Histogram("messaging.batch.message_count", metric.WithDescription("Messages per handled batch."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("switchboard.bus.lag", metric.WithDescription("Messages in the partition after the last one handled."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			c.lagMu.Lock()
			defer c.lagMu.Unlock()
			for k, v := range c.lag {
				o.Observe(v, metric.WithAttributes(
					attribute.String("messaging.consumer.group.name", opts.Group),
					attribute.String("messaging.destination.name", k.topic),
					partitionID(k.partition)))
			}
			return nil
		})); err != nil {
		return nil, err
	}
	return c, nil
}

// sessionTimeout is the group session timeout, also the rebalance
// timeout: a rebalance waits for the members as long as Kafka keeps a
// silent one.
func (c *Consumer) sessionTimeout() time.Duration {
	if c.cfg.SessionTimeout > 0 {
		return c.cfg.SessionTimeout
	}
	return 30 * time.Second
}

// Busy reports whether the consumer handled a batch within d: work that
// can wait yields to it (see the inbox's language detection).
func (c *Consumer) Busy(d time.Duration) bool {
	last := c.lastBatch.Load()
	return last != 0 && c.clock.Now().Sub(time.Unix(0, last)) < d
}

// Ready reports whether the consumer loop runs.
func (c *Consumer) Ready(context.Context) error {
	if !c.running.Load() {
		return fmt.Errorf("consumer %s is not running", c.opts.Group)
	}
	return nil
}

// Run consumes until ctx is cancelled, then finishes the batches in hand,
// commits them and leaves the group.
func (c *Consumer) Run(ctx context.Context) error {
	r, err := c.cfg.NewReader(kafka.ReaderConfig{
		GroupID:               c.opts.Group,
		GroupTopics:           c.opts.Topics,
		StartOffset:           kafka.FirstOffset,
		CommitInterval:        0, // commit synchronously, after handling
		MinBytes:              1,
		MaxBytes:              16 << 20,
		MaxWait:               FetchMaxWait,
		QueueCapacity:         2 * c.cfg.MaxBatch,
		WatchPartitionChanges: true,
		HeartbeatInterval:     time.Second,
		SessionTimeout:        c.sessionTimeout(),
		RebalanceTimeout:      c.sessionTimeout(),
		JoinGroupBackoff:      time.Second,
		ReadBackoffMin:        50 * time.Millisecond,
		ReadBackoffMax:        time.Second,
		Logger:                nil,
	}, c.log)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.opts.Group, err)
	}
	c.running.Store(true)
	defer c.running.Store(false)
	c.log.Info("consuming", "topics", c.opts.Topics)

	// Handlers get their own context: shutdown does not interrupt a batch
	// in hand, but DrainTimeout after shutdown begins, it gives up.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	stopDrain := context.AfterFunc(ctx, func() {
		select {
		case <-time.After(c.cfg.DrainTimeout):
			hcancel()
		case <-hctx.Done():
		}
	})
	defer stopDrain()

	var wg sync.WaitGroup
	workers := map[partitionKey]chan kafka.Message{}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				break
			}
			c.log.Warn("fetch failed; retrying", "error", c.cfg.Explain(err))
			select {
			case <-ctx.Done():
			case <-c.clock.After(time.Second):
			}
			continue
		}
		k := partitionKey{m.Topic, m.Partition}
		ch, ok := workers[k]
		if !ok {
			ch = make(chan kafka.Message, 2*c.cfg.MaxBatch)
			workers[k] = ch
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.work(ctx, hctx, r, k, ch)
			}()
		}
		select {
		case ch <- m:
		case <-ctx.Done():
		}
	}
	for _, ch := range workers {
		close(ch)
	}
	wg.Wait()
	hcancel()
	if err := r.Close(); err != nil {
		c.log.Warn("close reader", "error", err)
	}
	c.log.Info("consumer stopped")
	return nil
}

// work handles the messages of one partition in order. It stops taking new
// batches once ctx is cancelled; the batch in hand finishes under hctx.
func (c *Consumer) work(ctx, hctx context.Context, r *kafka.Reader, k partitionKey, ch <-chan kafka.Message) {
	batch := make([]kafka.Message, 0, c.cfg.MaxBatch)
	for {
		if ctx.Err() != nil {
			return
		}
		m, ok := <-ch
		if !ok {
			return
		}
		batch = append(batch[:0], m)
	fill:
		for len(batch) < c.cfg.MaxBatch {
			select {
			case m, ok := <-ch:
				if !ok {
					break fill
				}
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if !c.handle(ctx, hctx, batch) {
			return // shutting down mid-retry: leave it uncommitted
		}
		last := batch[len(batch)-1]
		cctx, cancel := context.WithTimeout(hctx, 10*time.Second)
		err := r.CommitMessages(cctx, last)
		cancel()
		if err != nil {
			// The messages were handled; after the rebalance or restart
			// that caused this, they come again and the handler's
			// idempotence makes that harmless.
			c.commitErrs.Add(hctx, 1, c.attrs)
			c.log.Warn("commit failed", "topic", k.topic, "partition", k.partition, "offset", last.Offset, "error", err)
		}
		c.consumed.Add(hctx, int64(len(batch)), c.attrs, metric.WithAttributes(attribute.String("messaging.destination.name", k.topic)))
		c.batchSize.Record(hctx, int64(len(batch)), c.attrs)
		c.lastBatch.Store(c.clock.Now().UnixNano())
		c.lagMu.Lock()
		c.lag[k] = max(0, last.HighWaterMark-last.Offset-1)
		c.lagMu.Unlock()
	}
}

// handle decodes and handles a batch, retrying and dead-lettering as
// needed. It returns false when shutdown interrupted it before every
// message was handled or dead-lettered.
func (c *Consumer) handle(ctx, hctx context.Context, batch []kafka.Message) bool {
	msgs := make([]Message, 0, len(batch))
	raw := make([]kafka.Message, 0, len(batch))
	for _, m := range batch {
		ev, mctx, err := events.FromMessage(hctx, m)
		if err != nil {
			// Not a CloudEvent we can read: no retry can fix that.
			if !c.deadLetter(ctx, hctx, m, "decode", fmt.Errorf("decode: %w", err), 1) {
				return false
			}
			continue
		}
		msgs = append(msgs, Message{Event: ev, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key,
			SpanContext: trace.SpanContextFromContext(mctx)})
		raw = append(raw, m)
	}
	if len(msgs) == 0 {
		return true
	}
	return c.handleMsgs(ctx, hctx, msgs, raw)
}

func (c *Consumer) handleMsgs(ctx, hctx context.Context, msgs []Message, raw []kafka.Message) bool {
	for n := 1; ; n++ {
		err := c.call(hctx, msgs)
		if err == nil {
			return true
		}
		c.failed.Add(hctx, 1, c.attrs)
		transient := IsTransient(err)
		switch {
		case len(msgs) > 1 && !transient:
			// Find the bad message: hand them over one at a time.
			c.log.Warn("batch failed; handling its messages one by one", "messages", len(msgs), "error", err)
			for i := range msgs {
				if !c.handleMsgs(ctx, hctx, msgs[i:i+1], raw[i:i+1]) {
					return false
				}
			}
			return true
		case len(msgs) == 1 && IsPermanent(err):
			return c.deadLetter(ctx, hctx, raw[0], "permanent", err, n)
		case len(msgs) == 1 && !transient && c.policy.Exhausted(n):
			return c.deadLetter(ctx, hctx, raw[0], "exhausted", err, n)
		}
		c.log.Warn("handler failed; retrying", "attempt", n, "messages", len(msgs), "transient", transient,
			"topic", msgs[0].Topic, "partition", msgs[0].Partition, "offset", msgs[0].Offset, "error", err)
		if c.policy.Sleep(ctx, c.clock, n) != nil {
			return false
		}
	}
}

func (c *Consumer) call(ctx context.Context, msgs []Message) (err error) {
	spanCtx, span := startProcess(ctx, c.tracer, c.opts.Group, msgs)
	start := time.Now()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("handler panicked: %v", v)
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		c.duration.Record(ctx, time.Since(start).Seconds(), c.attrs)
	}()
	return c.handler(spanCtx, msgs)
}

// deadLetter publishes m to the dead-letter topic, retrying until it is
// acknowledged: a dead letter is never dropped. It returns false when
// shutdown interrupted it (m stays uncommitted and comes again).
func (c *Consumer) deadLetter(ctx, hctx context.Context, m kafka.Message, kind string, cause error, attempts int) bool {
	reason := cause.Error()
	if len(reason) > 2048 {
		reason = reason[:2048]
	}
	headers := append([]kafka.Header(nil), m.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(kind + ": " + reason)},
		kafka.Header{Key: HeaderDLQTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderDLQPartition, Value: itoa(int64(m.Partition))},
		kafka.Header{Key: HeaderDLQOffset, Value: itoa(m.Offset)},
		kafka.Header{Key: HeaderDLQHandler, Value: []byte(c.opts.Group)},
		kafka.Header{Key: HeaderDLQAttempts, Value: itoa(int64(attempts))},
		kafka.Header{Key: HeaderDLQTime, Value: []byte(c.clock.Now().UTC().Format(time.RFC3339Nano))},
	)
	dead := kafka.Message{Topic: events.TopicDLQ, Key: m.Key, Value: m.Value, Headers: headers}
	c.log.Error("sending message to the dead-letter topic", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
		"reason", kind, "attempts", attempts, "error", cause)
	for n := 1; ; n++ {
		err := c.dlq.PublishRecords(hctx, dead)
		if err == nil {
			c.deadLettered.Add(hctx, 1, c.attrs, metric.WithAttributes(attribute.String("reason", kind), attribute.String("messaging.destination.name", m.Topic)))
			return true
		}
		c.log.Error("dead-letter publish failed; retrying", "attempt", n, "error", err)
		if c.policy.Sleep(ctx, c.clock, n) != nil {
			return false
		}
	}
}

// HandlingContext is the context to handle m of the batch msgs under: the
// batch's process span for a lone message (itself a child of the message's
// creation context), m's own creation context in a larger batch, so that
// what its handling does joins the message's trace.
func HandlingContext(ctx context.Context, msgs []Message, m Message) context.Context {
	if len(msgs) > 1 {
		return m.Context(ctx)
	}
	return ctx
}

// Each adapts a handler of one decoded event to a Handler: it decodes the
// data of every message of a batch into a T and handles them in order. A
// message whose data does not decode, or whose handling fails with an error
// matching one of permanent (errors.Is), is a permanent failure, for the
// dead-letter topic; any other error is retried.
//
// A lone message is handled under the batch's process span, itself a child
// of the message's creation context; each message of a larger batch is
// handled under its own creation context, so that what its handling does
// joins the message's trace.
func Each[T any](handle func(ctx context.Context, v T) error, permanent ...error) Handler {
	return func(ctx context.Context, msgs []Message) error {
		for _, m := range msgs {
			var v T
			if err := m.Event.Decode(&v); err != nil {
				return Permanent(err)
			}
			if err := handle(HandlingContext(ctx, msgs, m), v); err != nil {
				for _, p := range permanent {
					if errors.Is(err, p) {
						return Permanent(err)
					}
				}
				return err
			}
		}
		return nil
	}
}

// ByType is a handler of a topic that carries several event types: each
// record goes, in order, to the handler of its type, or to fallback when
// its type has none. Consecutive records of one type go together, so that
// a handler that works by batches still gets them as one.
func ByType(handlers map[string]Handler, fallback Handler) Handler {
	return func(ctx context.Context, msgs []Message) error {
		for start := 0; start < len(msgs); {
			typ := msgs[start].Event.Type
			end := start + 1
			for end < len(msgs) && msgs[end].Event.Type == typ {
				end++
			}
			h, ok := handlers[typ]
			if !ok {
				h = fallback
			}
			if err := h(ctx, msgs[start:end]); err != nil {
				return err
			}
			start = end
		}
		return nil
	}
}
