// Package events defines the envelope of every event Switchboard puts on
// Kafka: a CloudEvents 1.0 event in binary content mode (the CloudEvents
// Kafka protocol binding), with attributes in ce_* headers, the JSON data in
// the record value and the W3C trace context in the traceparent header.
//
// Event types are versioned (sb.message.received.v1): a change that breaks
// readers gets a new type, and both are published while readers move over.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
)

// SpecVersion is the CloudEvents specification version of every event.
const SpecVersion = "1.0"

// ContentTypeJSON is the content type of every event's data.
const ContentTypeJSON = "application/json"

// Header names of the CloudEvents Kafka binding, plus ce_tenant, a CloudEvents
// extension attribute carrying the tenant the event belongs to.
const (
	HeaderID          = "ce_id"
	HeaderType        = "ce_type"
	HeaderSource      = "ce_source"
	HeaderTime        = "ce_time"
	HeaderSpecVersion = "ce_specversion"
	HeaderSubject     = "ce_subject"
	HeaderTenant      = "ce_tenant"
	HeaderContentType = "content-type"
)

// ErrInvalid is wrapped by every error about a malformed event.
var ErrInvalid = errors.New("invalid event")

// validType reports whether t has the shape of a Switchboard event type,
// sb.<name>(.<name>)*.v<N>: names of [a-z0-9_], N a positive integer. It
// runs for every event produced and consumed, hence no regexp.
func validType(t string) bool {
	rest, ok := strings.CutPrefix(t, "sb.")
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, ".v")
	if i <= 0 {
		return false
	}
	names, version := rest[:i], rest[i+2:]
	if version == "" || version[0] == '0' {
		return false
	}
	for _, c := range version {
		if c < '0' || c > '9' {
			return false
		}
	}
	for _, name := range strings.Split(names, ".") {
		if name == "" {
			return false
		}
		for _, c := range name {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				return false
			}
		}
	}
	return true
}

// Event is one CloudEvent. Data holds the JSON payload.
type Event struct {
	// ID is unique per event; consumers dedupe on it.
	ID string
	// Type is the versioned event type, such as sb.message.received.v1.
	Type string
	// Source names the producer, such as switchboard/chat.
	Source string
	// Time is when the occurrence happened.
	Time time.Time
	// Tenant is the tenant the event belongs to; empty for system events.
	Tenant string
	// Subject optionally names the entity the event is about.
	Subject string
	// Data is the JSON payload.
	Data json.RawMessage
}

// New builds an event with a fresh time-ordered id, marshalling data to JSON.
func New(typ, source, tenant string, at time.Time, data any) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	return NewWithID(id.String(), typ, source, tenant, at, data)
}

// NewWithID builds an event with a caller-chosen id. Producers use it for
// idempotence: the same occurrence published twice carries the same id, so
// consumers store it once.
func NewWithID(id, typ, source, tenant string, at time.Time, data any) (Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("marshal %s data: %w", typ, err)
	}
	ev := Event{ID: id, Type: typ, Source: source, Time: at.UTC(), Tenant: tenant, Data: raw}
	// The data was just marshalled: only the attributes need checking.
	if err := ev.validateAttributes(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// Validate checks the required attributes and that the data is JSON.
func (e Event) Validate() error {
	if err := e.validateAttributes(); err != nil {
		return err
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return fmt.Errorf("%w: data is not valid JSON", ErrInvalid)
	}
	return nil
}

func (e Event) validateAttributes() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, HeaderID)
	case !validType(e.Type):
		return fmt.Errorf("%w: %s %q is not a versioned Switchboard type (sb.<name>.v<N>)", ErrInvalid, HeaderType, e.Type)
	case e.Source == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, HeaderSource)
	case e.Time.IsZero():
		return fmt.Errorf("%w: %s is empty", ErrInvalid, HeaderTime)
	}
	return nil
}

// Decode unmarshals the event's data into v.
func (e Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("%w: decode %s data: %v", ErrInvalid, e.Type, err)
	}
	return nil
}

// traceContext is the W3C Trace Context propagator; a value, not a global.
var traceContext = propagation.TraceContext{}

// Message encodes the event as a Kafka record for topic with key, injecting
// the trace context of ctx.
func (e Event) Message(ctx context.Context, topic string, key []byte) kafka.Message {
	headers := []kafka.Header{
		{Key: HeaderSpecVersion, Value: []byte(SpecVersion)},
		{Key: HeaderID, Value: []byte(e.ID)},
		{Key: HeaderType, Value: []byte(e.Type)},
		{Key: HeaderSource, Value: []byte(e.Source)},
		{Key: HeaderTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))},
		{Key: HeaderContentType, Value: []byte(ContentTypeJSON)},
	}
	if e.Tenant != "" {
		headers = append(headers, kafka.Header{Key: HeaderTenant, Value: []byte(e.Tenant)})
	}
	if e.Subject != "" {
		headers = append(headers, kafka.Header{Key: HeaderSubject, Value: []byte(e.Subject)})
	}
	InjectTraceContext(ctx, &headers)
	return kafka.Message{Topic: topic, Key: key, Value: e.Data, Headers: headers}
}

// FromMessage decodes a Kafka record into an event and returns ctx carrying
// the remote span context found in its headers. It checks the envelope;
// the data is checked where it is read, by Decode, so that it is parsed
// once.
func FromMessage(ctx context.Context, m kafka.Message) (Event, context.Context, error) {
	var e Event
	var specVersion, contentType string
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderSpecVersion:
			specVersion = v
		case HeaderID:
			e.ID = v
		case HeaderType:
			e.Type = v
		case HeaderSource:
			e.Source = v
		case HeaderTime:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return Event{}, ctx, fmt.Errorf("%w: %s %q: %v", ErrInvalid, HeaderTime, v, err)
			}
			e.Time = t
		case HeaderTenant:
			e.Tenant = v
		case HeaderSubject:
			e.Subject = v
		case HeaderContentType:
			contentType = v
		}
	}
	if specVersion != SpecVersion {
		return Event{}, ctx, fmt.Errorf("%w: %s %q, want %q", ErrInvalid, HeaderSpecVersion, specVersion, SpecVersion)
	}
	if contentType != "" && contentType != ContentTypeJSON {
		return Event{}, ctx, fmt.Errorf("%w: content type %q, want %q", ErrInvalid, contentType, ContentTypeJSON)
	}
	e.Data = m.Value
	if err := e.validateAttributes(); err != nil {
		return Event{}, ctx, err
	}
	return e, ExtractTraceContext(ctx, m.Headers), nil
}

// InjectTraceContext sets the W3C traceparent (and tracestate) of ctx's
// span in headers, replacing any there.
func InjectTraceContext(ctx context.Context, headers *[]kafka.Header) {
	traceContext.Inject(ctx, headerCarrier{headers: headers})
}

// ExtractTraceContext returns ctx carrying the remote span context of the
// traceparent in headers, ctx itself when there is none.
func ExtractTraceContext(ctx context.Context, headers []kafka.Header) context.Context {
	return traceContext.Extract(ctx, headerCarrier{headers: &headers})
}

// HeaderValue returns the value of the header named key, or "".
func HeaderValue(headers []kafka.Header, key string) string {
	return headerCarrier{headers: &headers}.Get(key)
}

// headerCarrier adapts Kafka headers to the OpenTelemetry TextMapCarrier.
type headerCarrier struct{ headers *[]kafka.Header }

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, h := range *c.headers {
		if h.Key == key {
			(*c.headers)[i].Value = []byte(value)
			return
		}
	}
	*c.headers = append(*c.headers, kafka.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.headers))
	for _, h := range *c.headers {
		keys = append(keys, h.Key)
	}
	return keys
}
