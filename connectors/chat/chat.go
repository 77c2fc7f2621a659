// Package chat is the chat connector: a documented, signed JSON webhook that
// any chat front end or bot platform posts customer messages to. A message is
// verified (HMAC-SHA256 over the timestamp and the raw body, see package
// webhook), validated, published on sb.inbound.v1, and acknowledged only
// once Kafka has acknowledged it.
//
// The connector knows its channels and their secrets from the sb.config.v1
// topic, which the inbox publishes; it has no database of its own.
package chat

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// EventSource is the CloudEvents source of the connector's events.
const EventSource = "switchboard/chat"

// WebhookPath is the route of inbound messages; {channel} is the chat
// channel id.
const WebhookPath = "POST /v1/webhooks/chat/{channel}/messages"

// eventNamespace derives stable event ids from (channel, message id), so
// that a message posted twice is the same event and is stored once.
var eventNamespace = uuid.MustParse("6f1d7c8e-2b0a-4a53-9d0e-5c3f51d0c1a7")

// Config holds the connector settings.
type Config struct {
	// Tolerance is how far a webhook's timestamp may be from now.
	Tolerance time.Duration
	// MaxBodyBytes bounds one webhook body.
	MaxBodyBytes int64
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.Tolerance, prefix+"chat.signature-tolerance", 5*time.Minute, "How far the X-Switchboard-Timestamp of a chat webhook may be from the server's clock; older or newer requests are refused as replays.")
	f.Int64Var(&c.MaxBodyBytes, prefix+"chat.max-body-bytes", 256<<10, "Largest chat webhook body accepted, in bytes; larger ones get 413.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.Positive("chat.signature-tolerance", c.Tolerance)
	ck.Check(c.MaxBodyBytes >= 1024, "chat.max-body-bytes", fmt.Sprintf("%d is too small for a chat message", c.MaxBodyBytes), "set at least 1024")
	return ck.Err()
}

// Router is where routes are registered (an *httpx.Server).
type Router interface {
	HandleFunc(pattern string, h http.HandlerFunc, opts ...httpx.RouteOption)
}

// Deps are what the connector runs on.
type Deps struct {
	// Brokers is where the config topic is read.
	Brokers []string
	// Producer publishes inbound messages.
	Producer *bus.Producer
	// Router receives the webhook route.
	Router Router
	// Telemetry gives logs, traces and metrics.
	Telemetry *telemetry.Telemetry
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
}

// channel is what the connector knows of a chat channel.
type channel struct {
	tenant  string
	secrets [][]byte
}

// Connector is the running chat connector.
type Connector struct {
	cfg      Config
	producer *bus.Producer
	clock    retry.Clock
	log      *slog.Logger
	table    *bus.Table

	mu       sync.RWMutex
	channels map[string]channel

	accepted metric.Int64Counter
	rejected metric.Int64Counter
}

// New builds the connector and registers its webhook.
func New(cfg Config, d Deps) (*Connector, error) {
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	c := &Connector{cfg: cfg, producer: d.Producer, clock: d.Clock, log: d.Telemetry.Component("chat"), channels: map[string]channel{}}
	c.table = bus.NewTable(d.Brokers, events.TopicConfig, c.applyConfig, d.Telemetry)
	m := d.Telemetry.Meter.Meter("switchboard/chat")
	var err error
	if c.accepted, err = m.Int64Counter("switchboard.chat.webhooks.accepted", metric.WithDescription("Chat messages accepted and handed to Kafka.")); err != nil {
		return nil, err
	}
	if c.rejected, err = m.Int64Counter("switchboard.chat.webhooks.rejected", metric.WithDescription("Chat webhooks refused, by reason.")); err != nil {
		return nil, err
	}
	d.Router.HandleFunc(WebhookPath, c.receive, httpx.WithBodyLimit(cfg.MaxBodyBytes))
	return c, nil
}

// Run follows the configuration topic until ctx is cancelled.
func (c *Connector) Run(ctx context.Context) error { return c.table.Run(ctx) }

// Ready reports whether the connector knows the channels configured when it
// started; before that, a valid webhook could be refused.
func (c *Connector) Ready(ctx context.Context) error { return c.table.Ready(ctx) }

// applyConfig updates the channel view from one config event.
func (c *Connector) applyConfig(_ context.Context, ev events.Event) error {
	if ev.Type != events.TypeChatChannel {
		return nil // other connectors' configuration
	}
	var ch events.ChatChannel
	if err := ev.Decode(&ch); err != nil {
		return err
	}
	if ch.ID == "" || ch.TenantID == "" {
		return fmt.Errorf("chat channel event %s lacks id or tenant", ev.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch.Deleted || len(ch.Secrets) == 0 {
		delete(c.channels, ch.ID)
		return nil
	}
	secrets := make([][]byte, len(ch.Secrets))
	for i, s := range ch.Secrets {
		secrets[i] = []byte(s)
	}
	c.channels[ch.ID] = channel{tenant: ch.TenantID, secrets: secrets}
	return nil
}

func (c *Connector) lookup(id string) (channel, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ch, ok := c.channels[id]
	return ch, ok
}

// Message is the body of an inbound chat webhook.
type Message struct {
	// MessageID is the chat platform's id of the message; the same id
	// posted again is stored once. Required.
	MessageID string `json:"message_id"`
	// SessionID names the conversation on the chat side; messages with
	// one session id form one conversation. Default: the user id.
	SessionID string `json:"session_id,omitempty"`
	// User is the customer. Its id is required.
	User User `json:"user"`
	// Text is the message. Required.
	Text string `json:"text"`
	// SentAt is when the customer sent it, RFC 3339. Optional.
	SentAt *time.Time `json:"sent_at,omitempty"`
	// Metadata is shown to agents as is. Optional.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// User is the customer who wrote.
type User struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
}

// Accepted is the answer to an accepted webhook.
type Accepted struct {
	// EventID is the id of the event the message became; posting the same
	// message again gives the same id.
	EventID string `json:"event_id"`
	// Status is always "accepted".
	Status string `json:"status"`
}

func (c *Connector) reject(ctx context.Context, w http.ResponseWriter, reason string, p *httpx.Problem) {
	c.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `HMAC-SHA256 realm="switchboard", headers="`+webhook.HeaderTimestamp+` `+webhook.HeaderSignature+`"`)
	}
	httpx.WriteProblem(w, p)
}

// receive handles POST /v1/webhooks/chat/{channel}/messages.
func (c *Connector) receive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := c.clock.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			c.reject(ctx, w, "too_large", httpx.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)))
			return
		}
		c.reject(ctx, w, "read", httpx.NewProblem(http.StatusBadRequest, "the body could not be read"))
		return
	}

	// The signature is checked before anything in the body is looked at.
	channelID := r.PathValue("channel")
	ch, known := c.lookup(channelID)
	if !known && c.table.Ready(ctx) != nil {
		// Starting: the channels are still being read, and a refusal now
		// would be final for the sender. Same answer for every channel, so
		// an unsigned caller still learns nothing.
		c.log.WarnContext(ctx, "chat webhook before the channels are known; answered 503", "channel", channelID)
		c.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", "starting")))
		w.Header().Set("Retry-After", "1")
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the connector is starting and does not know its channels yet; retry"))
		return
	}
	if !known {
		// Same answer as a bad signature: an unsigned caller learns nothing
		// about which channels exist.
		c.log.WarnContext(ctx, "chat webhook for an unknown channel", "channel", channelID)
		c.reject(ctx, w, "unknown_channel", httpx.NewProblem(http.StatusUnauthorized, "the signature does not verify for this channel"))
		return
	}
	if err := webhook.Verify(ch.secrets, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, now, c.cfg.Tolerance); err != nil {
		reason, detail := "bad_signature", "the signature does not verify for this channel"
		switch {
		case errors.Is(err, webhook.ErrStale):
			reason, detail = "stale", fmt.Sprintf("%s is outside the accepted window of ±%s: %v", webhook.HeaderTimestamp, c.cfg.Tolerance, err)
		case errors.Is(err, webhook.ErrMissing):
			reason, detail = "missing_signature", fmt.Sprintf("both %s and %s are required", webhook.HeaderTimestamp, webhook.HeaderSignature)
		case errors.Is(err, webhook.ErrMalformed):
			reason, detail = "malformed_signature", err.Error()
		}
		c.log.WarnContext(ctx, "chat webhook refused", "channel", channelID, "reason", reason, "error", err)
		c.reject(ctx, w, reason, httpx.NewProblem(http.StatusUnauthorized, detail))
		return
	}

	msg, err := parse(body)
	if err != nil {
		c.reject(ctx, w, "invalid", asProblem(err))
		return
	}
	ev, key, err := c.event(channelID, ch.tenant, msg, now)
	if err != nil {
		c.reject(ctx, w, "invalid", asProblem(err))
		return
	}
	if err := c.producer.Publish(ctx, events.TopicInbound, key, ev); err != nil {
		// Not acknowledged: the sender must retry; the stable event id makes
		// a retry of a message that did land harmless.
		c.log.ErrorContext(ctx, "could not hand a chat message to Kafka", "channel", channelID, "message_id", msg.MessageID, "error", err)
		c.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", "unavailable")))
		w.Header().Set("Retry-After", "5")
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the message could not be stored yet; retry it"))
		return
	}
	c.accepted.Add(ctx, 1)
	httpx.WriteJSON(w, http.StatusAccepted, Accepted{EventID: ev.ID, Status: "accepted"})
}

func asProblem(err error) *httpx.Problem {
	var p *httpx.Problem
	if errors.As(err, &p) {
		return p
	}
	return httpx.Invalid("body", err.Error())
}

// parse decodes a webhook body; errors are problems naming the field.
func parse(body []byte) (Message, error) {
	var m Message
	if err := httpx.DecodeJSONBytes(bytes.NewReader(body), &m); err != nil {
		return Message{}, err
	}
	if m.User.ID == "" {
		return Message{}, httpx.Invalid("user.id", "is required")
	}
	if m.SessionID == "" {
		m.SessionID = m.User.ID
	}
	return m, nil
}

// event turns a validated webhook message into its event.
func (c *Connector) event(channelID, tenant string, m Message, now time.Time) (events.Event, []byte, error) {
	p := events.MessageReceived{
		TenantID:         tenant,
		Channel:          events.ChannelChat,
		ChannelAccountID: channelID,
		ExternalID:       m.MessageID,
		ThreadKey:        m.SessionID,
		From:             events.Party{Identity: m.User.ID, Name: m.User.Name, AvatarURL: m.User.AvatarURL},
		Text:             m.Text,
		ReceivedAt:       now.UTC(),
		Metadata:         m.Metadata,
	}
	if m.SentAt != nil {
		p.SentAt = m.SentAt.UTC()
	}
	if err := p.Validate(); err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return events.Event{}, nil, httpx.Invalid(webhookField(fe.Field), fe.Reason)
		}
		return events.Event{}, nil, err
	}
	id := uuid.NewSHA1(eventNamespace, []byte(channelID+"\x00"+m.MessageID)).String()
	ev, err := events.NewWithID(id, events.TypeMessageReceived, EventSource, tenant, now, p)
	if err != nil {
		return events.Event{}, nil, err
	}
	return ev, events.ConversationKey(tenant, events.ChannelChat, channelID, m.SessionID), nil
}

// webhookField maps a field of the event back to the webhook's name for it.
func webhookField(eventField string) string {
	switch eventField {
	case "external_id":
		return "message_id"
	case "thread_key":
		return "session_id"
	case "from.identity":
		return "user.id"
	case "from.name":
		return "user.name"
	case "from.avatar_url":
		return "user.avatar_url"
	}
	return eventField
}
