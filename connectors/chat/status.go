package chat

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
)

// statusBodyLimit bounds a status webhook's body.
const statusBodyLimit = 4 << 10

// statusNamespace derives the event id of a status from (channel, message,
// status), so that a status posted twice is one event.
var statusNamespace = uuid.MustParse("2f0b7e52-4c1d-4a8b-9b3e-7d5a6c9e8f14")

// Status is the body of a status webhook: what became of a reply the
// channel's endpoint was sent.
type Status struct {
	// MessageID is the message_id of the message.created delivery.
	// Required.
	MessageID string `json:"message_id"`
	// Status is delivered (the customer's device has it) or read.
	// Required.
	Status string `json:"status"`
	// At is when it happened, RFC 3339; default: when it is received.
	At *time.Time `json:"at,omitempty"`
}

// parseStatus decodes and checks a status webhook's body: malformed JSON
// is a 400, a field out of bounds a 422, naming it.
func parseStatus(body []byte) (Status, error) {
	var st Status
	if err := httpx.DecodeJSONBytes(bytes.NewReader(body), &st); err != nil {
		return Status{}, err
	}
	unprocessable := func(field, reason string) error {
		p := httpx.Invalid(field, reason)
		p.Status = http.StatusUnprocessableEntity
		return p
	}
	switch {
	case st.MessageID == "" || len(st.MessageID) > events.MaxIDBytes:
		return Status{}, unprocessable("message_id", "is required, at most 256 bytes")
	case st.Status != events.DeliveryDelivered && st.Status != events.DeliveryRead:
		return Status{}, unprocessable("status", fmt.Sprintf("must be %s or %s, got %q", events.DeliveryDelivered, events.DeliveryRead, st.Status))
	case st.At != nil && (st.At.IsZero() || st.At.Year() < 2000 || st.At.Year() > 9999):
		return Status{}, unprocessable("at", "must be an RFC 3339 time")
	}
	return st, nil
}

// receiveStatus handles POST /v1/webhooks/chat/{channel}/statuses.
func (c *Connector) receiveStatus(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := c.clock.Now()
	channelID, ch, body, ok := c.verified(w, r, c.statusRejected, now)
	if !ok {
		return
	}
	st, err := parseStatus(body)
	if err != nil {
		c.reject(ctx, w, c.statusRejected, "invalid", asProblem(err))
		return
	}
	tenant, msgChannel, found, err := c.store.MessageChannel(ctx, st.MessageID)
	if err != nil {
		c.log.ErrorContext(ctx, "could not look up the message of a chat status", "channel", channelID, "message_id", st.MessageID, "error", err)
		c.statusRejected.Add(ctx, 1, reasonAttr("unavailable"))
		w.Header().Set("Retry-After", "5")
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the status could not be checked yet; retry it"))
		return
	}
	if !found || msgChannel != channelID || tenant != ch.tenant {
		c.reject(ctx, w, c.statusRejected, "unknown_message",
			httpx.NewProblem(http.StatusNotFound, fmt.Sprintf("no message %q was delivered to this channel's endpoint", st.MessageID)))
		return
	}
	at := now
	if st.At != nil {
		at = *st.At
	}
	d := events.Delivery{MessageID: st.MessageID, TenantID: tenant, Status: st.Status, At: at.UTC()}
	id := uuid.NewSHA1(statusNamespace, []byte(channelID+"\x00"+st.MessageID+"\x00"+st.Status)).String()
	ev, err := events.NewWithID(id, events.TypeDelivery, EventSource, tenant, now, d)
	if err != nil {
		c.reject(ctx, w, c.statusRejected, "invalid", asProblem(err))
		return
	}
	if err := c.producer.Publish(ctx, events.TopicDelivery, []byte(st.MessageID), ev); err != nil {
		c.log.ErrorContext(ctx, "could not hand a chat status to Kafka", "channel", channelID, "message_id", st.MessageID, "error", err)
		c.statusRejected.Add(ctx, 1, reasonAttr("unavailable"))
		w.Header().Set("Retry-After", "5")
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the status could not be stored yet; retry it"))
		return
	}
	c.statusAccepted.Add(ctx, 1)
	httpx.WriteJSON(w, http.StatusAccepted, Accepted{EventID: ev.ID, Status: "accepted"})
}

func reasonAttr(reason string) metric.MeasurementOption {
	return metric.WithAttributes(attribute.String("reason", reason))
}
