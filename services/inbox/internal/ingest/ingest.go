// Package ingest turns inbound message events into stored messages.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Handler handles sb.inbound.v1.
type Handler struct {
	store      *store.Store
	log        *slog.Logger
	tracer     trace.Tracer
	clock      retry.Clock
	detect     func(text string) string
	stored     metric.Int64Counter
	duplicates metric.Int64Counter
}

// New builds the handler. detect names the language of a text ("" when
// unsure); ingestion asks it only for the first message of a new
// conversation whose tenant has a routing rule on languages.
func New(s *store.Store, log *slog.Logger, tracer trace.Tracer, meter metric.Meter, clock retry.Clock, detect func(text string) string) (*Handler, error) {
	stored, err := meter.Int64Counter("switchboard.inbox.messages.stored", metric.WithDescription("Inbound messages stored."))
	if err != nil {
		return nil, err
	}
	dups, err := meter.Int64Counter("switchboard.inbox.messages.duplicates", metric.WithDescription("Inbound messages received again and not stored again."))
	if err != nil {
		return nil, err
	}
	return &Handler{store: s, log: log, tracer: tracer, clock: clock, detect: detect, stored: stored, duplicates: dups}, nil
}

// Handle stores a batch of inbound messages in one transaction. Invalid
// events are permanent failures (dead-lettered); an unavailable database
// is transient (retried until it is back).
func (h *Handler) Handle(ctx context.Context, msgs []bus.Message) error {
	in := make([]store.Inbound, 0, len(msgs))
	for _, m := range msgs {
		if m.Event.Type != events.TypeMessageReceived {
			return bus.Permanent(fmt.Errorf("event %s: type %q is not handled on %s", m.Event.ID, m.Event.Type, m.Topic))
		}
		var p events.MessageReceived
		if err := m.Event.Decode(&p); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: %w", m.Event.ID, err))
		}
		if err := p.Validate(); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: invalid %s: %w", m.Event.ID, m.Event.Type, err))
		}
		if err := checkBot(p); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: invalid %s: %w", m.Event.ID, m.Event.Type, err))
		}
		if m.Event.Tenant != p.TenantID {
			return bus.Permanent(fmt.Errorf("event %s: ce_tenant %q differs from tenant_id %q", m.Event.ID, m.Event.Tenant, p.TenantID))
		}
		// The language is detected behind ingestion (package qualify),
		// but for the first message of a new conversation that a routing
		// rule on languages reaches (store.Ingest).
		in = append(in, store.Inbound{EventID: m.Event.ID, Msg: p})
	}
	now := h.clock.Now()
	res, err := h.ingest(ctx, in, now)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrUnknownAccount) || pg.IsDataError(err):
		return bus.Permanent(err)
	case pg.IsTransient(err):
		return bus.Transient(err)
	default:
		return err
	}
	h.stored.Add(ctx, int64(len(res.Stored)))
	if res.Duplicates > 0 {
		h.duplicates.Add(ctx, int64(res.Duplicates))
		h.log.DebugContext(ctx, "duplicates skipped", "count", res.Duplicates)
	}
	return nil
}

// checkBot checks the bot of a message its chat channel's bot wrote: a
// chat message only, with the bot's name (1 to 256 bytes of valid UTF-8,
// not blank, without NUL), which agents see as the author.
func checkBot(m events.MessageReceived) error {
	if m.Bot == nil {
		return nil
	}
	if m.Channel != events.ChannelChat {
		return &events.FieldError{Field: "bot", Reason: fmt.Sprintf("only a chat message may be a bot's, this one is %s", m.Channel)}
	}
	name := m.Bot.Name
	if strings.TrimSpace(name) == "" || len(name) > events.MaxNameBytes || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return &events.FieldError{Field: "bot.name", Reason: "is required, at most 256 bytes of valid UTF-8 without NUL"}
	}
	return nil
}

// ingest stores the batch in an "inbox.store" span, which names what it
// stored. The events the transaction writes to the outbox carry the span
// as their trace context, so that their publication, and whatever follows
// it, joins the trace of the messages.
func (h *Handler) ingest(ctx context.Context, in []store.Inbound, now time.Time) (res store.IngestResult, err error) {
	ctx, span := h.tracer.Start(ctx, "inbox.store", trace.WithAttributes(attribute.Int("switchboard.inbox.batch.message_count", len(in))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		} else if span.IsRecording() {
			span.SetAttributes(storedAttributes(res)...)
		}
		span.End()
	}()
	return h.store.Ingest(ctx, in, now, h.detect, func(res store.IngestResult) ([]outbox.Record, error) {
		return store.IngestEvents(in, res, now)
	})
}

// storedAttributes name what a batch stored: the ids of the new messages
// and of their conversations, and how many were duplicates.
func storedAttributes(res store.IngestResult) []attribute.KeyValue {
	msgs := make([]string, len(res.Stored))
	var convs []string
	seen := map[string]bool{}
	for i, m := range res.Stored {
		msgs[i] = m.ID.String()
		if c := m.ConversationID.String(); !seen[c] {
			seen[c] = true
			convs = append(convs, c)
		}
	}
	return []attribute.KeyValue{
		attribute.StringSlice("switchboard.message.ids", msgs),
		attribute.StringSlice("switchboard.conversation.ids", convs),
		attribute.Int("switchboard.inbox.messages.stored", len(res.Stored)),
		attribute.Int("switchboard.inbox.messages.duplicates", res.Duplicates),
	}
}
