package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// Config tunes the deliveries.
type Config struct {
	// RetryFor is how long a delivery is retried, from its first attempt,
	// before it fails.
	RetryFor time.Duration
	// RetryInitial and RetryMax bound the backoff between two attempts.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// AttemptTimeout bounds one attempt, from connecting to reading the
	// answer.
	AttemptTimeout time.Duration
	// Concurrency is how many attempts run at once per endpoint.
	Concurrency int
	// PollInterval is how often the deliveries table is looked at for
	// work no signal announced (another replica's, after a restart).
	PollInterval time.Duration
	// Retention is how long a delivered delivery's body is kept.
	Retention time.Duration
}

// leaseMargin is added to the attempt timeout to make a delivery's lease:
// the time to record the outcome once the endpoint answered.
const leaseMargin = 10 * time.Second

// Lease is how long an attempt holds its delivery against other workers;
// after a crash, the delivery is attempted again once it has passed.
func (c Config) Lease() time.Duration { return c.AttemptTimeout + leaseMargin }

// Endpoint is what the connector knows of a chat channel's outbound side.
type Endpoint struct {
	// TenantID owns the channel: a delivery of another tenant's fails.
	TenantID string
	// Outbound is nil when the channel has no endpoint.
	Outbound *events.ChatOutbound
	// Deleted channels fail their open deliveries.
	Deleted bool
}

// EndpointFunc returns what the configuration says of a channel; false
// when it never heard of it.
type EndpointFunc func(channelID string) (Endpoint, bool)

// Doer makes HTTP calls: an *egress.Client.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Dispatcher delivers what the store holds: one loop per endpoint, each
// with its own bound on attempts at once, so that a slow or hanging
// endpoint holds only its own.
type Dispatcher struct {
	cfg       Config
	store     *Store
	client    Doer
	endpoints EndpointFunc
	clock     retry.Clock
	log       *slog.Logger
	policy    retry.Policy

	mu      sync.Mutex
	ctx     context.Context // Run's, once it started
	stopped bool            // Run is returning: no loop starts any more
	loops   map[string]*loop
	wg      sync.WaitGroup

	queued     atomic.Int64
	deliveries metric.Int64Counter
	duration   metric.Float64Histogram
	inFlight   metric.Int64UpDownCounter
}

// loop is one endpoint's.
type loop struct {
	channel string
	wake    chan struct{}
	// done receives each attempt's end.
	done chan ended
	// inFlight, ready and stalled are the loop goroutine's own: the
	// attempts running, heads read but not started yet, and deliveries
	// left alone until a time after an error that changed nothing (the
	// database away), so that they are not picked again at once.
	inFlight map[string]bool
	ready    []Head
	stalled  map[string]time.Time
}

// ended is the end of one attempt: stalled when it changed nothing.
type ended struct {
	id      string
	stalled bool
}

// NewDispatcher builds the dispatcher.
func NewDispatcher(cfg Config, store *Store, client Doer, endpoints EndpointFunc, clock retry.Clock, tel *telemetry.Telemetry) (*Dispatcher, error) {
	if clock == nil {
		clock = retry.SystemClock{}
	}
	d := &Dispatcher{cfg: cfg, store: store, client: client, endpoints: endpoints, clock: clock,
		log:    tel.Component("chat-delivery"),
		policy: retry.Policy{Initial: cfg.RetryInitial, Max: cfg.RetryMax, Multiplier: 2},
		loops:  map[string]*loop{}}
	m := tel.Meter.Meter("switchboard/chat")
	var err error
	if d.deliveries, err = m.Int64Counter("switchboard.chat.deliveries",
		metric.WithDescription("Chat delivery attempts and decisions, by outcome (sent, retried, failed, skipped) and event.")); err != nil {
		return nil, err
	}
	if d.duration, err = m.Float64Histogram("switchboard.chat.delivery.duration", metric.WithUnit("s"),
		metric.WithDescription("Time of one delivery attempt to a chat endpoint, from the request to the end of the answer, by outcome."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...)); err != nil {
		return nil, err
	}
	if d.inFlight, err = m.Int64UpDownCounter("switchboard.chat.delivery.in_flight",
		metric.WithDescription("Chat delivery attempts waiting for the endpoint's answer.")); err != nil {
		return nil, err
	}
	if _, err = m.Int64ObservableGauge("switchboard.chat.delivery.queued",
		metric.WithDescription("Chat deliveries recorded and not yet sent or failed (waiting, retrying or attempted), as last counted."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(d.queued.Load())
			return nil
		})); err != nil {
		return nil, err
	}
	return d, nil
}

// Wake makes the endpoint's loop look for due deliveries now.
func (d *Dispatcher) Wake(channel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.loops[channel]
	if !ok {
		l = &loop{channel: channel, wake: make(chan struct{}, 1), done: make(chan ended, d.cfg.Concurrency),
			inFlight: map[string]bool{}, stalled: map[string]time.Time{}}
		d.loops[channel] = l
		if d.ctx != nil && !d.stopped {
			d.start(l)
		}
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Nudge wakes the endpoint's loop if it has one.
func (d *Dispatcher) Nudge(channel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.loops[channel]; ok {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// start runs l's goroutine; d.mu is held and d.ctx set.
func (d *Dispatcher) start(l *loop) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.run(d.ctx, l)
	}()
}

// pruneEvery is how often delivered bodies past the retention are removed.
const pruneEvery = time.Minute

// Run delivers until ctx is cancelled, then waits for the attempts in
// flight (each bounded by the attempt timeout) to be recorded.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	d.ctx = ctx
	for _, l := range d.loops {
		d.start(l)
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.stopped = true
		d.mu.Unlock()
		d.wg.Wait()
	}()
	lastPrune := time.Time{}
	for {
		d.poll(ctx)
		if now := d.clock.Now(); now.Sub(lastPrune) >= pruneEvery {
			lastPrune = now
			if n, err := d.store.Prune(ctx, now.Add(-d.cfg.Retention), 1000); err != nil && ctx.Err() == nil {
				d.log.WarnContext(ctx, "could not remove delivered chat deliveries", "error", err)
			} else if n > 0 {
				d.log.DebugContext(ctx, "removed delivered chat deliveries", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.clock.After(d.cfg.PollInterval):
		}
	}
}

// poll wakes the loop of every endpoint with open deliveries, and counts
// them.
func (d *Dispatcher) poll(ctx context.Context) {
	open, err := d.store.Open(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.WarnContext(ctx, "could not look for chat deliveries", "error", err)
		}
		return
	}
	var total int64
	for ch, n := range open {
		total += n
		d.Wake(ch)
	}
	d.queued.Store(total)
}

// run is one endpoint's loop: it starts the attempts of the deliveries
// due, up to the concurrency, and waits for a signal, an attempt's end or
// the next due time.
func (d *Dispatcher) run(ctx context.Context, l *loop) {
	for {
		next := d.fill(ctx, l)
		var timer <-chan time.Time
		if !next.IsZero() {
			timer = d.clock.After(max(next.Sub(d.clock.Now()), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			// The attempts in flight finish under their own timeout;
			// Run waits for them.
			return
		case <-l.wake:
		case e := <-l.done:
			d.ended(l, e)
		case <-timer:
		}
		// Take every attempt that ended meanwhile.
		for drained := false; !drained; {
			select {
			case e := <-l.done:
				d.ended(l, e)
			default:
				drained = true
			}
		}
	}
}

// stallFor is how long a delivery whose attempt changed nothing is left
// alone.
func (d *Dispatcher) stallFor() time.Duration { return max(d.cfg.PollInterval, time.Second) }

func (d *Dispatcher) ended(l *loop, e ended) {
	delete(l.inFlight, e.id)
	if e.stalled {
		l.stalled[e.id] = d.clock.Now().Add(d.stallFor())
	}
}

// fill starts attempts of l's due deliveries while it has room, and
// returns when to look again if no attempt's end or signal comes first
// (zero: not before one).
func (d *Dispatcher) fill(ctx context.Context, l *loop) time.Time {
	ep, ok := d.endpoints(l.channel)
	if !ok || (!ep.Deleted && (ep.Outbound == nil || ep.Outbound.Disabled || ep.Outbound.URL == "")) {
		// No endpoint yet, or disabled: the deliveries wait. A change of
		// the configuration wakes the loop.
		l.ready = nil
		return time.Time{}
	}
	free := d.cfg.Concurrency - len(l.inFlight)
	if free <= 0 {
		return time.Time{} // an attempt's end wakes the loop
	}
	now := d.clock.Now()
	var next time.Time
	if len(l.ready) == 0 {
		// Read a batch of heads at once: the query walks every open
		// delivery of the endpoint, and attempts end one by one.
		batch := d.batch()
		skip := make([]string, 0, len(l.inFlight)+len(l.stalled))
		for id := range l.inFlight {
			skip = append(skip, id)
		}
		for id, until := range l.stalled {
			if !until.After(now) {
				delete(l.stalled, id)
				continue
			}
			skip = append(skip, id)
			if next.IsZero() || until.Before(next) {
				next = until
			}
		}
		heads, err := d.store.Heads(ctx, l.channel, now, batch, skip)
		if err != nil {
			if ctx.Err() == nil {
				d.log.WarnContext(ctx, "could not read the chat deliveries due", "channel", l.channel, "error", err)
				return now.Add(d.stallFor())
			}
			return time.Time{}
		}
		l.ready = heads
		if len(heads) < batch {
			due, err := d.nextDue(ctx, l.channel, now)
			if err != nil {
				return now.Add(d.stallFor())
			}
			if !due.IsZero() && (next.IsZero() || due.Before(next)) {
				next = due
			}
		} else {
			next = time.Time{} // more to read once these are started
		}
	}
	for ; free > 0 && len(l.ready) > 0; free-- {
		h := l.ready[0]
		l.ready = l.ready[1:]
		l.inFlight[h.ID] = true
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			stalled := d.deliver(ctx, ep, h)
			l.done <- ended{id: h.ID, stalled: stalled}
		}()
	}
	return next
}

// batch is how many heads one query reads ahead.
func (d *Dispatcher) batch() int { return min(max(8*d.cfg.Concurrency, 32), 512) }

// nextDue is when the loop should look again, nothing being due now: the
// next retry or end of a claim; zero when there is none.
func (d *Dispatcher) nextDue(ctx context.Context, channel string, now time.Time) (time.Time, error) {
	next, err := d.store.NextDue(ctx, channel)
	if err != nil {
		if ctx.Err() == nil {
			d.log.WarnContext(ctx, "could not read the chat deliveries due", "channel", channel, "error", err)
		}
		return time.Time{}, err
	}
	if !next.IsZero() && !next.After(now) {
		// Due, yet not offered: one waiting behind an earlier delivery
		// of its conversation (a replay). The poll looks again.
		return now.Add(d.cfg.PollInterval), nil
	}
	return next, nil
}

// deliver settles or attempts one head. It reports true when it could not
// change anything (the database away): the loop leaves h alone a moment.
func (d *Dispatcher) deliver(runCtx context.Context, ep Endpoint, h Head) bool {
	// An attempt begun is seen through even when the process stops: its
	// outcome is recorded, or the delivery waits out its lease.
	ctx := context.WithoutCancel(runCtx)
	log := d.log.With("delivery_id", h.ID, "channel", h.ChannelID, "event", h.Event, "conversation_id", h.ConversationID)
	switch {
	case h.State == sendledger.StateSent || h.State == sendledger.StateFailed:
		// The ledger has its outcome; the process stopped before the
		// delivery was closed.
		outcome := OutcomeSent
		if h.State == sendledger.StateFailed {
			outcome = OutcomeFailed
		}
		return d.finish(ctx, log, h, outcome, h.LastError, h.UpdatedAt)
	case ep.Deleted:
		return d.fail(ctx, log, h, "", "the chat channel was deleted", 0, "")
	case ep.TenantID != h.TenantID:
		return d.fail(ctx, log, h, "", "the chat channel belongs to another tenant", 0, "")
	case !wants(ep.Outbound, h.Event):
		// Recorded before the endpoint was set, or since unsubscribed.
		return d.finish(ctx, log, h, OutcomeSkipped, "", d.clock.Now())
	}
	if runCtx.Err() != nil {
		return false // stopping: no new attempt
	}
	now := d.clock.Now()
	send, verdict, err := d.store.ledger.Begin(ctx, sendledger.Attempt[Details]{Ref: h.Ref(), Resend: true, Lease: d.cfg.Lease(),
		Details: &Details{Event: h.Event}, At: now})
	if err != nil {
		log.WarnContext(ctx, "could not record a chat delivery attempt", "error", err)
		return true
	}
	switch verdict {
	case sendledger.Settled:
		outcome := OutcomeSent
		if send.State == sendledger.StateFailed {
			outcome = OutcomeFailed
		}
		return d.finish(ctx, log, h, outcome, send.LastError, send.UpdatedAt)
	case sendledger.Busy:
		return false // another replica attempts it; the loop looks again after its lease
	}
	o := d.attempt(ctx, ep.Outbound, h, send.Attempts)
	return d.record(ctx, log, h, send, now, o)
}

// attempt makes one signed POST of h's body.
func (d *Dispatcher) attempt(ctx context.Context, ob *events.ChatOutbound, h Head, attempt int) Outcome {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.AttemptTimeout)
	defer cancel()
	d.inFlight.Add(ctx, 1)
	defer d.inFlight.Add(ctx, -1)
	start := time.Now()
	o := d.call(ctx, ob, h, attempt)
	d.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("outcome", o.Kind.String())))
	return o
}

func (d *Dispatcher) call(ctx context.Context, ob *events.ChatOutbound, h Head, attempt int) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ob.URL, bytes.NewReader(h.Body))
	if err != nil {
		return Outcome{Kind: Fail, Reason: "the endpoint URL cannot be called: " + err.Error()}
	}
	ts := d.clock.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(webhook.HeaderTimestamp, webhook.Timestamp(ts))
	req.Header.Set(webhook.HeaderSignature, Signature(ob.Secrets, ts, h.Body))
	req.Header.Set(HeaderEvent, h.Event)
	req.Header.Set(HeaderIdempotencyKey, h.ID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))
	resp, err := d.client.Do(req)
	if err != nil {
		return Classify(0, nil, nil, err, d.clock.Now())
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, MaxExcerpt))
	// Read a little more so that the connection can be reused; a larger
	// answer closes it.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return Classify(resp.StatusCode, resp.Header, excerpt, nil, d.clock.Now())
}

// record writes the outcome of an attempt of h (the ledger's send after
// Begin), begun at began, and closes the delivery when it is final.
func (d *Dispatcher) record(ctx context.Context, log *slog.Logger, h Head, send sendledger.Send[Details], began time.Time, o Outcome) bool {
	now := d.clock.Now()
	details := &Details{Event: h.Event, HTTPStatus: o.Status}
	switch o.Kind {
	case Sent:
		err := d.retryDB(ctx, func(ctx context.Context) error {
			_, err := d.store.ledger.Sent(ctx, sendledger.Outcome[Details]{Ref: h.Ref(), Claim: send.Claim, Answer: o.Answer, Details: details, At: now})
			return err
		})
		if err != nil {
			log.ErrorContext(ctx, "chat delivery sent, but its outcome could not be recorded: it will be sent again after its lease, with the same Idempotency-Key", "error", err)
			return true
		}
		d.count(h.Event, OutcomeSent)
		return d.finish(ctx, log, h, OutcomeSent, "", now)
	case Fail:
		log.WarnContext(ctx, "chat delivery failed", "attempt", send.Attempts, "reason", o.Reason)
		return d.fail(ctx, log, h, send.Claim, o.Reason, o.Status, o.Answer)
	}
	// The retry window starts with the first attempt that failed since
	// the delivery was recorded or replayed.
	window := h.WindowStart
	if window.IsZero() {
		var err error
		if window, err = d.store.StartWindow(ctx, h.ID, began); err != nil {
			log.WarnContext(ctx, "could not record a chat delivery's failed attempt; it is attempted again after its lease", "error", err)
			return true
		}
	}
	deadline := window.Add(d.cfg.RetryFor)
	if !now.Before(deadline) {
		return d.fail(ctx, log, h, send.Claim, fmt.Sprintf("gave up after %d attempts in %s: %s", send.Attempts, d.cfg.RetryFor, o.Reason), o.Status, o.Answer)
	}
	wait := d.policy.Delay(send.Attempts)
	if o.RetryAfter > 0 {
		if now.Add(o.RetryAfter).After(deadline) {
			return d.fail(ctx, log, h, send.Claim, fmt.Sprintf("gave up after %d attempts: the endpoint asked to wait %s, past the %s of retries: %s",
				send.Attempts, o.RetryAfter, d.cfg.RetryFor, o.Reason), o.Status, o.Answer)
		}
		wait = max(wait, o.RetryAfter)
	}
	next := now.Add(wait)
	if next.After(deadline) {
		next = deadline // a last attempt at the end of the window
	}
	err := d.retryDB(ctx, func(ctx context.Context) error {
		_, err := d.store.ledger.Retry(ctx, sendledger.Outcome[Details]{Ref: h.Ref(), Claim: send.Claim, Answer: o.Answer, Reason: o.Reason,
			Resolved: o.Refused, NextAttemptAt: next, Details: details, At: now})
		return err
	})
	if err != nil {
		log.WarnContext(ctx, "could not record a chat delivery's failed attempt; it is attempted again after its lease", "error", err)
		return true
	}
	d.count(h.Event, "retried")
	log.InfoContext(ctx, "chat delivery attempt failed; will retry", "attempt", send.Attempts, "next_attempt_at", next, "reason", o.Reason)
	return false
}

// fail records h failed with reason, and closes it.
func (d *Dispatcher) fail(ctx context.Context, log *slog.Logger, h Head, claim, reason string, status int, answer string) bool {
	now := d.clock.Now()
	var got sendledger.Send[Details]
	err := d.retryDB(ctx, func(ctx context.Context) error {
		var err error
		got, err = d.store.ledger.Failed(ctx, sendledger.Outcome[Details]{Ref: h.Ref(), Claim: claim, Answer: answer, Reason: reason,
			Details: &Details{Event: h.Event, HTTPStatus: status}, At: now})
		return err
	})
	if err != nil {
		log.WarnContext(ctx, "could not record a chat delivery's failure; it is looked at again after its lease", "error", err)
		return true
	}
	outcome := OutcomeFailed
	if got.State == sendledger.StateSent {
		outcome = OutcomeSent // sent meanwhile: that is the truth
	} else {
		d.count(h.Event, OutcomeFailed)
	}
	return d.finish(ctx, log, h, outcome, got.LastError, got.UpdatedAt)
}

// finish closes h and queues its status.
func (d *Dispatcher) finish(ctx context.Context, log *slog.Logger, h Head, outcome, reason string, at time.Time) bool {
	err := d.retryDB(ctx, func(ctx context.Context) error {
		_, err := d.store.Finish(ctx, h, outcome, reason, at)
		return err
	})
	if err != nil {
		log.WarnContext(ctx, "could not close a chat delivery; it is closed at its next look", "outcome", outcome, "error", err)
		return true
	}
	if outcome == OutcomeSkipped {
		d.count(h.Event, OutcomeSkipped)
	}
	return false
}

func (d *Dispatcher) count(event, outcome string) {
	d.deliveries.Add(context.Background(), 1, metric.WithAttributes(attribute.String("outcome", outcome), attribute.String("event", event)))
}

// dbRetry bounds the retries of one write whose failure is transient.
func dbRetry() retry.Policy {
	return retry.Policy{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2, MaxAttempts: 5}
}

// retryDB runs fn, again while PostgreSQL is unavailable, a few times.
func (d *Dispatcher) retryDB(ctx context.Context, fn func(ctx context.Context) error) error {
	return dbRetry().Do(ctx, d.clock, func(err error) bool {
		return pg.IsTransient(err) && !errors.Is(err, sendledger.ErrClaimed)
	}, fn)
}

// wants reports whether the endpoint takes event.
func wants(ob *events.ChatOutbound, event string) bool {
	return event == events.ChatEventMessage || (ob != nil && slices.Contains(ob.Events, event))
}
