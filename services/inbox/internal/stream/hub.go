// Package stream pushes what happens to conversations to the agents
// working on them, as Server-Sent Events on GET /v1/stream.
//
// Every inbox replica runs a Hub that reads the whole of
// sb.conversations.v1 without a consumer group (each replica needs every
// event, whichever replica an agent is connected to), from the end of each
// partition at start. It keeps the last events in a bounded ring, so that a
// client that reconnects, to this replica or another, gets what it missed,
// and hands each event to the connected clients of its tenant that may see
// its conversation. A client too slow to keep up is disconnected rather
// than allowed to hold the hub back; it reconnects and resumes from the
// ring.
//
// An event's SSE id is a cursor: the offset reached on every partition of
// the topic (see position). Offsets are the topic's, not the replica's, so
// a cursor is meaningful on any replica.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Defaults of Config, also used for its zero fields.
const (
	DefaultHistory      = 10000
	DefaultHistoryBytes = 64 << 20
	DefaultClientBuffer = 256
	DefaultKeepalive    = 15 * time.Second
)

// writeTimeout bounds one write to a client: a client that does not read
// for that long is gone, and its handler must not stay blocked on it.
const writeTimeout = 30 * time.Second

// Config holds the stream settings.
type Config struct {
	// History is how many recent events are kept for clients that resume.
	History int
	// HistoryBytes bounds the memory those events take: a message event
	// can carry 64 KiB of text, so a count alone does not bound it.
	HistoryBytes int64
	// ClientBuffer is how many events may wait for one client before it is
	// deemed too slow and disconnected.
	ClientBuffer int
	// Keepalive is the longest a stream stays silent.
	Keepalive time.Duration
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.History, prefix+"inbox.stream.history", DefaultHistory, "Recent conversation events each inbox replica keeps in memory so that a client of GET /v1/stream that reconnects gets what it missed; one that was away longer is told to reload its lists.")
	f.Int64Var(&c.HistoryBytes, prefix+"inbox.stream.history-bytes", DefaultHistoryBytes, "Most memory, in bytes, those recent events may take; the oldest are dropped first.")
	f.IntVar(&c.ClientBuffer, prefix+"inbox.stream.client-buffer", DefaultClientBuffer, "Events that may wait for one client of GET /v1/stream; a client further behind is disconnected (it resumes where it was when it reconnects).")
	f.DurationVar(&c.Keepalive, prefix+"inbox.stream.keepalive", DefaultKeepalive, "Longest silence on GET /v1/stream: a comment is sent after it, so that proxies keep the connection open and clients notice a dead one.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.AtLeast("inbox.stream.history", c.History, 1)
	ck.Check(c.HistoryBytes >= 1<<20, "inbox.stream.history-bytes", fmt.Sprintf("must be at least 1 MiB, got %d", c.HistoryBytes), "set a size in bytes such as 67108864")
	ck.AtLeast("inbox.stream.client-buffer", c.ClientBuffer, 1)
	ck.Positive("inbox.stream.keepalive", c.Keepalive)
	return ck.Err()
}

// withDefaults fills the zero fields, for callers that build a Config by
// hand (tests) rather than from flags.
func (c Config) withDefaults() Config {
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	if c.HistoryBytes <= 0 {
		c.HistoryBytes = DefaultHistoryBytes
	}
	if c.ClientBuffer <= 0 {
		c.ClientBuffer = DefaultClientBuffer
	}
	if c.Keepalive <= 0 {
		c.Keepalive = DefaultKeepalive
	}
	return c
}

// Why the hub drops a client.
const (
	whyLeft    = "left"
	whySlow    = "too slow"
	whyStopped = "shutting down"
)

// errStopped is returned to a client arriving once the hub has stopped.
var errStopped = errors.New("the stream hub has stopped")

// Hub reads sb.conversations.v1 and serves GET /v1/stream.
type Hub struct {
	cfg     Config
	kafka   bus.Config
	topic   string
	log     *slog.Logger
	clock   retry.Clock
	evicted metric.Int64Counter
	// tp traces the records read, tracer the deliveries to clients.
	tp     trace.TracerProvider
	tracer trace.Tracer

	// started is closed once the starting position is known; done once
	// Run has returned.
	started chan struct{}
	done    chan struct{}

	mu sync.Mutex
	// pos is the offset of the last record handled on each partition.
	pos position
	// posCursor is pos encoded, or "" when pos changed since.
	posCursor string
	// floor says how far back the ring reaches: it holds every
	// deliverable record of partition p above floor[p].
	floor position
	// ring is a circular buffer of the last events; head is the oldest
	// and n how many it holds, ringBytes their size.
	ring      []*entry
	head, n   int
	ringBytes int64
	// subs are the connected clients, by tenant.
	subs    map[string]map[*subscriber]struct{}
	clients int
	stopped bool
	// servers holds, for each HTTP server a client came through, a
	// channel closed when that server shuts down (see serverGone).
	servers map[*http.Server]chan struct{}
}

// New builds a hub reading from the brokers of kafkaCfg; Run starts it.
// clock drives the keepalives and the retries; nil means the system clock.
func New(kafkaCfg bus.Config, cfg Config, tel *telemetry.Telemetry, clock retry.Clock) (*Hub, error) {
	if clock == nil {
		clock = retry.SystemClock{}
	}
	cfg = cfg.withDefaults()
	h := &Hub{
		cfg: cfg, kafka: kafkaCfg, topic: events.TopicConversations,
		log: tel.Component("stream"), clock: clock,
		tp: tel.Tracer, tracer: tel.Tracer.Tracer("switchboard/inbox/stream"),
		started: make(chan struct{}), done: make(chan struct{}),
		ring: make([]*entry, cfg.History), subs: map[string]map[*subscriber]struct{}{},
		servers: map[*http.Server]chan struct{}{},
	}
	m := tel.Meter.Meter("switchboard/inbox")
	var err error
	if h.evicted, err = m.Int64Counter("switchboard.inbox.stream.evicted", metric.WithDescription("Clients of GET /v1/stream disconnected because they did not keep up.")); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("switchboard.inbox.stream.clients", metric.WithDescription("Clients connected to GET /v1/stream."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			h.mu.Lock()
			n := h.clients
			h.mu.Unlock()
			o.Observe(int64(n))
			return nil
		})); err != nil {
		return nil, err
	}
	return h, nil
}

// Ready reports whether the hub reads every partition of the topic.
func (h *Hub) Ready(context.Context) error {
	// Checked in turn: once stopped, both channels are closed, and a select
	// would pick either.
	select {
	case <-h.done:
		return errStopped
	default:
	}
	select {
	case <-h.started:
		return nil
	default:
		return fmt.Errorf("stream: not reading %s yet", h.topic)
	}
}

// Run reads the topic until ctx is cancelled, then disconnects every
// client. Until Kafka answers, it retries (and stays not ready) rather than
// failing the process: live updates are not worth stopping the inbox for.
func (h *Hub) Run(ctx context.Context) error {
	defer h.stop()
	var ends map[int]int64
	policy := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
	for n := 1; ; n++ {
		var err error
		if ends, err = h.endOffsets(ctx); err == nil {
			break
		}
		h.log.Warn("cannot read the topic's end offsets yet; retrying", "topic", h.topic, "attempt", n, "error", h.kafka.Explain(err))
		if policy.Sleep(ctx, h.clock, n) != nil {
			return nil
		}
	}
	h.begin(ends)
	h.log.Info("streaming conversation events", "topic", h.topic, "partitions", len(ends))
	var wg sync.WaitGroup
	for p, end := range ends {
		wg.Go(func() { h.follow(ctx, p, end) })
	}
	wg.Wait()
	return nil
}

// begin sets the starting position: each partition from its end offset,
// as nothing before it is in the ring.
func (h *Hub) begin(ends map[int]int64) {
	n := 0
	for p := range ends {
		n = max(n, p+1)
	}
	pos := make(position, n)
	for i := range pos {
		pos[i] = -1
	}
	for p, end := range ends {
		pos[p] = end - 1
	}
	h.mu.Lock()
	h.pos, h.floor, h.posCursor = pos, append(position(nil), pos...), ""
	h.mu.Unlock()
	close(h.started)
}

// follow reads one partition from offset next until ctx is cancelled. A
// failed reader is replaced after a backoff, from where it was, so that a
// broker outage pauses the stream instead of ending it.
func (h *Hub) follow(ctx context.Context, partition int, next int64) {
	policy := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
	for failures := 0; ; {
		r, err := h.kafka.NewReader(kafka.ReaderConfig{
			Topic:     h.topic,
			Partition: partition,
			MinBytes:  1,
			MaxBytes:  16 << 20,
			MaxWait:   bus.FetchMaxWait,
		}, h.log)
		// An error here is a TLS or password file gone since the start (a
		// Secret being replaced): it may come back.
		if err == nil {
			err = r.SetOffset(next)
			for err == nil {
				var m kafka.Message
				if m, err = r.ReadMessage(ctx); err == nil {
					failures = 0
					h.deliver(ctx, partition, m)
					next = m.Offset + 1
				}
			}
			_ = r.Close()
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		h.log.Warn("reading a partition failed; retrying", "topic", h.topic, "partition", partition, "offset", next, "attempt", failures, "error", h.kafka.Explain(err))
		if policy.Sleep(ctx, h.clock, failures) != nil {
			return
		}
	}
}

// endOffsets returns the end offset of every partition of the topic.
func (h *Hub) endOffsets(ctx context.Context) (map[int]int64, error) {
	client, done, err := h.kafka.Client(10 * time.Second)
	if err != nil {
		return nil, err
	}
	defer done()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{h.topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", h.topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, tp := range meta.Topics {
		if tp.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", h.topic, tp.Error)
		}
		for _, p := range tp.Partitions {
			reqs = append(reqs, kafka.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions; create it first", h.topic)
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{h.topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", h.topic, err)
	}
	ends := map[int]int64{}
	for _, po := range resp.Topics[h.topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("end offset of %s[%d]: %w", h.topic, po.Partition, po.Error)
		}
		ends[po.Partition] = max(po.LastOffset, 0)
	}
	return ends, nil
}

// entry is one event as clients get it, prepared once for all of them,
// and only when a client of its tenant looks at it: most events are never
// sent to anyone (no agent of the tenant is connected), and decoding them
// all would cost the inbox as much as storing them.
type entry struct {
	partition int
	offset    int64
	tenant    string
	// msg is the record until the entry is prepared.
	msg      kafka.Message
	once     sync.Once
	prepared bool
	// queue ("" for none) and assignees decide who sees it; a
	// notification has a recipient instead, the only user who gets it.
	queue     string
	assignees []string
	recipient string
	// id, typ and conversation name the event in delivery spans;
	// message is the id of the message a message event carries.
	id, typ, conversation, message string
	// span is the context of the span of the record's processing: the
	// parent of its deliveries to clients.
	span trace.SpanContext
	// frame is the SSE event without its id line.
	frame []byte
	// pos is the hub's position right after this event, cursor its
	// encoding: the event's SSE id.
	pos    position
	cursor string
}

// size approximates the memory the entry holds, prepared or not (a frame
// is about as large as the record it comes from).
func (e *entry) size() int64 {
	return int64(len(e.msg.Value)+len(e.cursor)+len(e.tenant)) + int64(8*len(e.pos)) + 512
}

// ready prepares the entry on first use and reports whether a client may
// be sent it at all. The hub's lock is held.
func (e *entry) ready() bool {
	e.once.Do(func() {
		p, err := prepare(context.Background(), e.partition, e.msg)
		e.msg = kafka.Message{Value: e.msg.Value[:0:0]}
		if err != nil {
			return
		}
		e.queue, e.assignees, e.recipient, e.frame, e.prepared = p.queue, p.assignees, p.recipient, p.frame, true
		e.id, e.typ, e.conversation, e.message = p.id, p.typ, p.conversation, p.message
	})
	return e.prepared
}

// payload is the data of an SSE event.
type payload struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
}

// prepare turns a record into an entry, or says why no client can get it.
// Visibility needs the conversation's queue and assignees, which every
// conversation event carries in its conversation field; an event without
// them is withheld, since nobody can be shown to be allowed to see it.
func prepare(ctx context.Context, partition int, m kafka.Message) (*entry, error) {
	ev, _, err := events.FromMessage(ctx, m)
	if err != nil {
		return nil, err
	}
	if ev.Tenant == "" {
		return nil, fmt.Errorf("%s has no tenant", ev.Type)
	}
	var data struct {
		// RecipientID is a notification's user.
		RecipientID  string `json:"recipient_id"`
		Conversation *struct {
			ID        string   `json:"id"`
			QueueID   *string  `json:"queue_id"`
			Assignees []string `json:"assignee_ids"`
		} `json:"conversation"`
		Message *struct {
			ID string `json:"id"`
		} `json:"message"`
	}
	if err := ev.Decode(&data); err != nil {
		return nil, err
	}
	if data.Conversation == nil {
		return nil, fmt.Errorf("%s names no conversation", ev.Type)
	}
	recipient := ""
	if ev.Type == events.TypeNotification {
		// A notification without its user goes to nobody.
		if data.RecipientID == "" {
			return nil, fmt.Errorf("%s %s names no recipient", ev.Type, ev.ID)
		}
		recipient = data.RecipientID
	}
	// Marshalling compacts the raw data: an SSE data line must not hold a
	// line break.
	body, err := json.Marshal(payload{Type: ev.Type, ID: ev.ID, Time: ev.Time, Data: ev.Data})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.Type, err)
	}
	frame := make([]byte, 0, len(ev.Type)+len(body)+16)
	frame = append(frame, "event: "...)
	frame = append(frame, ev.Type...)
	frame = append(frame, "\ndata: "...)
	frame = append(frame, body...)
	frame = append(frame, "\n\n"...)
	e := &entry{partition: partition, offset: m.Offset, tenant: ev.Tenant, assignees: data.Conversation.Assignees, recipient: recipient, frame: frame,
		id: ev.ID, typ: ev.Type, conversation: data.Conversation.ID}
	if data.Message != nil {
		e.message = data.Message.ID
	}
	if q := data.Conversation.QueueID; q != nil {
		e.queue = *q
	}
	return e, nil
}

// deliver handles one record of partition: it moves the position, keeps
// the event in the ring and hands it to the clients that may see it. It
// does so in a "process sb.conversations.v1" span, child of the record's
// creation context (the outbox relay's send span), without a consumer
// group: every replica reads everything.
func (h *Hub) deliver(ctx context.Context, partition int, m kafka.Message) {
	ctx, span := bus.StartProcessSpan(ctx, h.tp, "", m)
	defer span.End()
	var e *entry
	for _, hd := range m.Headers {
		if hd.Key == events.HeaderTenant && len(hd.Value) > 0 {
			e = &entry{partition: partition, offset: m.Offset, tenant: string(hd.Value), msg: m, span: span.SpanContext()}
			break
		}
	}
	if e == nil {
		// The record still counts: the position moves past it.
		h.log.Warn("skipping a conversation event without a tenant", "partition", partition, "offset", m.Offset)
	}
	var er *erasure
	if e != nil {
		er = erasureOf(m)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if partition >= len(h.pos) || m.Offset <= h.pos[partition] {
		return // a replaced reader read it again
	}
	if er != nil {
		h.scrubLocked(e.tenant, er)
	}
	h.pos[partition] = m.Offset
	h.posCursor = ""
	if e == nil {
		return
	}
	e.pos = append(position(nil), h.pos...)
	e.cursor = h.cursorLocked()
	h.keepLocked(e)
	handed := 0
	for s := range h.subs[e.tenant] {
		if !s.wants(e) {
			continue
		}
		select {
		case s.ch <- e:
			handed++
		default:
			h.dropLocked(s, whySlow)
			h.evicted.Add(ctx, 1)
		}
	}
	span.SetAttributes(attribute.Int("switchboard.inbox.stream.clients", handed))
}

// startDelivery starts the span of the delivery of e to the client of
// principal p on the stream of ctx: "stream.deliver", child of the span of
// e's processing, linked to the stream request's span. It ends once the
// event is flushed to the client. Events without a trace context get no
// span.
func (h *Hub) startDelivery(ctx context.Context, p domain.Principal, e *entry, replay bool) trace.Span {
	if !e.span.IsValid() {
		return trace.SpanFromContext(context.Background())
	}
	req := trace.SpanContextFromContext(ctx)
	_, span := h.tracer.Start(trace.ContextWithSpanContext(ctx, e.span), "stream.deliver",
		trace.WithLinks(trace.Link{SpanContext: req}))
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			semconv.CloudEventsEventID(e.id),
			semconv.CloudEventsEventType(e.typ),
			attribute.String("switchboard.conversation.id", e.conversation),
			attribute.String("switchboard.tenant.id", e.tenant),
			attribute.Bool("switchboard.inbox.stream.replay", replay),
		}
		if p.UserID != "" {
			attrs = append(attrs, attribute.String("switchboard.user.id", p.UserID))
		}
		span.SetAttributes(attrs...)
	}
	return span
}

// cursorLocked returns the current position encoded.
func (h *Hub) cursorLocked() string {
	if h.posCursor == "" {
		h.posCursor = h.pos.String()
	}
	return h.posCursor
}

// keepLocked adds e to the ring, dropping the oldest events past either
// bound; floor remembers how far back the ring still reaches.
func (h *Hub) keepLocked(e *entry) {
	if h.n == len(h.ring) {
		h.evictOldestLocked()
	}
	h.ring[(h.head+h.n)%len(h.ring)] = e
	h.n++
	h.ringBytes += e.size()
	for h.n > 1 && h.ringBytes > h.cfg.HistoryBytes {
		h.evictOldestLocked()
	}
}

func (h *Hub) evictOldestLocked() {
	old := h.ring[h.head]
	h.ring[h.head] = nil
	h.head = (h.head + 1) % len(h.ring)
	h.n--
	h.ringBytes -= old.size()
	h.floor[old.partition] = max(h.floor[old.partition], old.offset)
}

// subscriber is one connected client.
type subscriber struct {
	tenant    string
	principal domain.Principal
	// after is the client's cursor where it is ahead of this hub (it came
	// from a replica that had read further), nil otherwise: events it
	// already has are not sent again, and ids never go back.
	after position
	ch    chan *entry
	// gone is closed when the hub drops the client; why says why.
	gone chan struct{}
	why  string
}

// wants reports whether the client is to get e (of its tenant): an event
// of a conversation it may see, or a notification to its user.
func (s *subscriber) wants(e *entry) bool {
	if e.offset <= s.after.get(e.partition) || !e.ready() {
		return false
	}
	if e.recipient != "" {
		return s.principal.UserID == e.recipient
	}
	return s.principal.Sees(e.queue, e.assignees)
}

// cursor is the SSE id of e for this client.
func (s *subscriber) cursor(e *entry) string {
	if s.after == nil || e.pos.covers(s.after) {
		return e.cursor
	}
	return merge(e.pos, s.after).String()
}

// subscription is what a new client starts with.
type subscription struct {
	sub *subscriber
	// replay are the events it missed, oldest first.
	replay []*entry
	// reset is true when it missed more than the ring holds.
	reset bool
	// cursor is where the replay ends and the live events begin.
	cursor string
}

// subscribe registers a client of principal p that has seen everything up
// to from (nil: nothing, start live). Under the lock, so that no event
// falls between the replay and the live ones.
func (h *Hub) subscribe(p domain.Principal, from position) (subscription, error) {
	s := &subscriber{tenant: p.Tenant, principal: p, ch: make(chan *entry, h.cfg.ClientBuffer), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return subscription{}, errStopped
	}
	out := subscription{sub: s}
	if from != nil {
		for i, fl := range h.floor {
			if from.get(i) < fl {
				out.reset = true
				break
			}
		}
	}
	if from != nil && !out.reset {
		s.after = from
		for i := range h.n {
			e := h.ring[(h.head+i)%len(h.ring)]
			if e.tenant == s.tenant && s.wants(e) {
				out.replay = append(out.replay, e)
			}
		}
		if h.pos.covers(from) {
			s.after = nil // every event to come is past it
		}
	}
	out.cursor = h.cursorLocked()
	if s.after != nil {
		out.cursor = merge(h.pos, s.after).String()
	}
	if h.subs[s.tenant] == nil {
		h.subs[s.tenant] = map[*subscriber]struct{}{}
	}
	h.subs[s.tenant][s] = struct{}{}
	h.clients++
	return out, nil
}

// idle returns the cursor of a client that has been sent everything the
// hub handled so far, so that a client whose events are rare still moves
// its position on (and can resume without a reset after a busy hour for
// others); ok is false while events wait for it.
func (h *Hub) idle(s *subscriber) (cursor string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(s.ch) > 0 || h.pos == nil {
		return "", false
	}
	if s.after != nil && !h.pos.covers(s.after) {
		return merge(h.pos, s.after).String(), true
	}
	return h.cursorLocked(), true
}

// unsubscribe forgets a client that left.
func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s, whyLeft)
}

// dropLocked removes s and tells its handler.
func (h *Hub) dropLocked(s *subscriber, why string) {
	subs := h.subs[s.tenant]
	if _, ok := subs[s]; !ok {
		return
	}
	delete(subs, s)
	if len(subs) == 0 {
		delete(h.subs, s.tenant)
	}
	h.clients--
	s.why = why
	close(s.gone)
}

// stop disconnects every client and refuses new ones.
func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.stopped = true
	for _, subs := range h.subs {
		for s := range subs {
			h.dropLocked(s, whyStopped)
		}
	}
	close(h.done)
}

// serverGone returns a channel closed when the HTTP server that received r
// shuts down. The HTTP server stops before the inbox does (it is ingress),
// and its Shutdown waits for requests to end, which a stream never does by
// itself: without this, every shutdown would wait for the HTTP shutdown
// timeout and then fail.
func (h *Hub) serverGone(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return nil // never closed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.servers[srv]
	if !ok {
		ch = make(chan struct{})
		h.servers[srv] = ch
		// Kept closed in the map afterwards: a request racing the
		// shutdown sees the channel closed and ends at once.
		srv.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}
