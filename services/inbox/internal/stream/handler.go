package stream

import (
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// batchMax bounds the events written between two flushes: batching saves
// system calls when events come in bursts, the bound keeps latency low.
const batchMax = 64

// Control frames. ready follows the replay (if any) and starts the live
// events; reset tells a client it missed more than this replica keeps, so
// it must reload its lists (the live events follow).
var (
	readyFrame = []byte("event: ready\ndata: {\"type\":\"ready\"}\n\n")
	resetFrame = []byte("event: reset\ndata: {\"type\":\"reset\",\"reason\":\"events were missed; reload your lists\"}\n\n")
)

// ServeHTTP serves GET /v1/stream to the principal the API authenticated.
//
// The response is a text/event-stream. Each event the principal may see is
// written as "id: <cursor>", "event: <type>" and "data: {type, id, time,
// data}" lines; "event: ready" marks the start of the live events, after
// any replay; ": keepalive" comes after every keepalive interval of
// silence, with an "id:" line when the position moved on (events the
// client may not see still move it), so that a client resumes from
// there. A client resumes with the Last-Event-ID header (what EventSource
// sends on its own) or the last_event_id query parameter.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := domain.PrincipalFrom(r.Context())
	if !ok {
		// The API authenticates before calling; this is a wiring mistake,
		// and must not become a stream of everything.
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusUnauthorized, "a token is required"))
		return
	}
	raw := r.Header.Get("Last-Event-ID")
	if raw == "" {
		raw = r.URL.Query().Get("last_event_id")
	}
	from, ok := parseCursor(raw)
	if !ok && raw != "" {
		h.log.DebugContext(r.Context(), "ignoring a malformed stream cursor; starting live", "cursor", raw)
	}

	rc := http.NewResponseController(w)
	// The deadline is the network poller's, against the wall clock: the
	// injected clock has no say there.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx would hold the events back
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{w: w, rc: rc}
	defer out.endDeliveries(errLeft)
	if err := out.flush(); err != nil {
		h.log.ErrorContext(r.Context(), "cannot stream: the response cannot be flushed", "error", err)
		return
	}

	ctx := r.Context()
	serverGone := h.serverGone(r)
	keepalive := h.clock.After(h.cfg.Keepalive)
	// The hub knows where the topic starts only once Kafka answered; the
	// client waits with keepalives meanwhile rather than get an error
	// status, after which EventSource would not reconnect.
	for waiting := true; waiting; {
		select {
		case <-h.started:
			waiting = false
		case <-keepalive:
			out.comment("keepalive", "")
			if out.flush() != nil {
				return
			}
			keepalive = h.clock.After(h.cfg.Keepalive)
		case <-ctx.Done():
			return
		case <-h.done:
			return
		case <-serverGone:
			return
		}
	}

	sn, err := h.subscribe(p, from)
	if err != nil {
		return
	}
	s := sn.sub
	defer h.unsubscribe(s)
	if sn.reset {
		err = out.event(sn.cursor, resetFrame)
	}
	for _, e := range sn.replay {
		if err != nil {
			break
		}
		err = out.deliver(h.startDelivery(ctx, p, e, true), s.cursor(e), e.frame)
	}
	if err != nil || out.event(sn.cursor, readyFrame) != nil || out.flush() != nil {
		return
	}
	last := sn.cursor

	for {
		select {
		case <-s.gone:
			if s.why == whySlow {
				h.log.InfoContext(ctx, "disconnected a stream client that did not keep up", "tenant", p.Tenant, "user_id", p.UserID)
			}
			return
		case <-ctx.Done():
			return
		case <-serverGone:
			return
		case e := <-s.ch:
			last = s.cursor(e)
			err := out.deliver(h.startDelivery(ctx, p, e, false), last, e.frame)
		batch:
			for n := 1; n < batchMax && err == nil; n++ {
				select {
				case e = <-s.ch:
					last = s.cursor(e)
					err = out.deliver(h.startDelivery(ctx, p, e, false), last, e.frame)
				default:
					break batch
				}
			}
			if err != nil || out.flush() != nil {
				return
			}
		case <-keepalive:
			cursor, idle := h.idle(s)
			if !idle || cursor == last {
				cursor = ""
			} else {
				last = cursor
			}
			out.comment("keepalive", cursor)
			if out.flush() != nil {
				return
			}
			keepalive = h.clock.After(h.cfg.Keepalive)
		}
	}
}

// errLeft ends the delivery spans of events the client never got.
var errLeft = errors.New("the stream ended before the event was flushed")

// sseWriter gathers SSE frames and writes them at each flush.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	// deliveries are the spans of the events gathered, ended at the flush
	// that pushes them to the client.
	deliveries []trace.Span
}

// deliver adds an event whose delivery span is span.
func (o *sseWriter) deliver(span trace.Span, cursor string, frame []byte) error {
	o.deliveries = append(o.deliveries, span)
	return o.event(cursor, frame)
}

// endDeliveries ends the delivery spans waiting for a flush, failed with
// err when it is not nil.
func (o *sseWriter) endDeliveries(err error) {
	for i, span := range o.deliveries {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		o.deliveries[i] = nil
	}
	o.deliveries = o.deliveries[:0]
}

// writeAbove is how much is gathered before it is written out, flushed
// or not: a replay of thousands of events must not pile up in memory.
const writeAbove = 32 << 10

// event adds an event with its id.
func (o *sseWriter) event(cursor string, frame []byte) error {
	o.buf = append(o.buf, "id: "...)
	o.buf = append(o.buf, cursor...)
	o.buf = append(o.buf, '\n')
	o.buf = append(o.buf, frame...)
	if len(o.buf) < writeAbove {
		return nil
	}
	return o.write()
}

// comment adds a comment line and, when cursor is not empty, an id line:
// a block with an id and no data moves EventSource's last event id
// without dispatching anything.
func (o *sseWriter) comment(text, cursor string) {
	o.buf = append(o.buf, ": "...)
	o.buf = append(o.buf, text...)
	o.buf = append(o.buf, '\n')
	if cursor != "" {
		o.buf = append(o.buf, "id: "...)
		o.buf = append(o.buf, cursor...)
		o.buf = append(o.buf, '\n')
	}
	o.buf = append(o.buf, '\n')
}

// flush writes what was gathered and pushes it to the client, within
// writeTimeout: a client that stopped reading must not hold its handler
// forever.
func (o *sseWriter) flush() error {
	err := o.write()
	if err == nil {
		err = o.rc.Flush()
	}
	o.endDeliveries(err)
	return err
}

// write hands what was gathered to the connection, within writeTimeout.
func (o *sseWriter) write() error {
	// Not every writer supports deadlines (a recorder in tests); the
	// flush is what must work.
	_ = o.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if len(o.buf) == 0 {
		return nil
	}
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	return err
}
