// Package chat is the chat connector, both ways.
//
// In: a documented, signed JSON webhook that any chat front end or bot
// platform posts customer messages to (and its bot's own messages). A
// message is verified (HMAC-SHA256 over the timestamp and the raw body, see
// package webhook), validated, published on sb.inbound.v1, and acknowledged
// only once Kafka has acknowledged it. A second webhook takes the delivery
// statuses (delivered, read) of the replies it was sent.
//
// Out: agents' replies, bot controls and conversation state changes,
// delivered as signed JSON POSTs to the endpoint the tenant set on the
// channel (package outbound): recorded in PostgreSQL (schema chat) before
// the Kafka offset is committed, then attempted per endpoint, in order per
// conversation, retried with backoff until they are sent or fail.
//
// The connector knows its channels, their secrets and endpoints from the
// sb.config.v1 topic, which the inbox publishes.
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
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/connectors/chat/internal/outbound"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// EventSource is the CloudEvents source of the connector's events.
const EventSource = "switchboard/chat"

// WebhookPath is the route of inbound messages; {channel} is the chat
// channel id.
const WebhookPath = "POST /v1/webhooks/chat/{channel}/messages"

// StatusPath is the route of the delivery statuses of the replies a
// channel's endpoint was sent.
const StatusPath = "POST /v1/webhooks/chat/{channel}/statuses"

// Headers and events of deliveries, for receivers and tests.
const (
	HeaderEvent          = outbound.HeaderEvent
	HeaderIdempotencyKey = outbound.HeaderIdempotencyKey
	HeaderAttempt        = outbound.HeaderAttempt
)

// Envelope is the body of every delivery.
type Envelope = outbound.Envelope

// Consumer groups of the delivery side.
const (
	SendGroup  = outbound.CommandGroup
	StateGroup = outbound.StateGroup
)

// eventNamespace derives stable event ids from (channel, message id), so
// that a message posted twice is the same event and is stored once.
var eventNamespace = uuid.MustParse("6f1d7c8e-2b0a-4a53-9d0e-5c3f51d0c1a7")

// Config holds the connector settings.
type Config struct {
	// Tolerance is how far a webhook's timestamp may be from now.
	Tolerance time.Duration
	// MaxBodyBytes bounds one webhook body.
	MaxBodyBytes int64
	// Delivery tunes the deliveries to the channels' endpoints.
	Delivery outbound.Config
	// Webhook is the request rate of each channel's webhooks (messages
	// and statuses apart), so that one channel's flood does not starve
	// the others; off when its rate is 0.
	Webhook ratelimit.Rule
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.Tolerance, prefix+"chat.signature-tolerance", 5*time.Minute, "How far the X-Switchboard-Timestamp of a chat webhook may be from the server's clock; older or newer requests are refused as replays.")
	f.Int64Var(&c.MaxBodyBytes, prefix+"chat.max-body-bytes", 256<<10, "Largest chat webhook body accepted, in bytes; larger ones get 413.")
	d := &c.Delivery
	f.DurationVar(&d.RetryFor, prefix+"chat.delivery.retry-for", 24*time.Hour, "How long a delivery to a chat channel's endpoint is retried (after 408, 429, 5xx or no answer), from its first attempt, before it is reported failed; an admin can replay it then.")
	f.DurationVar(&d.RetryInitial, prefix+"chat.delivery.retry-initial", time.Second, "Wait before the second attempt of a chat delivery; it doubles with each attempt (with jitter), up to -chat.delivery.retry-max. A Retry-After from the endpoint is honoured when longer.")
	f.DurationVar(&d.RetryMax, prefix+"chat.delivery.retry-max", 10*time.Minute, "Longest wait between two attempts of a chat delivery, Retry-After aside.")
	f.DurationVar(&d.AttemptTimeout, prefix+"chat.delivery.attempt-timeout", 15*time.Second, "Longest time one attempt of a chat delivery may take, from connecting to the end of the endpoint's answer (also bounded by -egress.request-timeout); a hanging endpoint holds one of its own attempt slots that long. A delivery whose attempt was cut short by a crash is attempted again this long plus 10s after it began.")
	f.IntVar(&d.Concurrency, prefix+"chat.delivery.concurrency", 4, "Attempts at once per chat endpoint (per process): endpoints do not share them, so a slow one only holds up its own deliveries. Deliveries of one conversation go one at a time, in order.")
	f.DurationVar(&d.PollInterval, prefix+"chat.delivery.poll-interval", time.Second, "How often the chat connector looks for deliveries it was not told about: recorded by another replica, due after a restart, or whose endpoint was just set.")
	f.DurationVar(&d.Retention, prefix+"chat.delivery.retention", 72*time.Hour, "How long the body of a chat delivery is kept once sent; failed ones are kept for a replay. The send ledger keeps every delivery's outcome.")
	c.Webhook.Name = "channel"
	c.Webhook.RegisterFlags(f, prefix+"chat.webhook", 100, 500, "one chat channel (its signed webhooks, messages and statuses counted apart)",
		"Counted once the signature verifies; it keeps one channel's flood from starving the others.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.Positive("chat.signature-tolerance", c.Tolerance)
	ck.Check(c.MaxBodyBytes >= 1024, "chat.max-body-bytes", fmt.Sprintf("%d is too small for a chat message", c.MaxBodyBytes), "set at least 1024")
	d := c.Delivery
	ck.Positive("chat.delivery.retry-for", d.RetryFor)
	ck.Positive("chat.delivery.retry-initial", d.RetryInitial)
	ck.Check(d.RetryMax >= d.RetryInitial, "chat.delivery.retry-max", fmt.Sprintf("%s is shorter than -%schat.delivery.retry-initial (%s)", d.RetryMax, prefix, d.RetryInitial), "set it at least as long")
	ck.Positive("chat.delivery.attempt-timeout", d.AttemptTimeout)
	ck.Check(d.Concurrency >= 1 && d.Concurrency <= 256, "chat.delivery.concurrency", fmt.Sprintf("must be between 1 and 256, got %d", d.Concurrency), "set 4")
	ck.Positive("chat.delivery.poll-interval", d.PollInterval)
	ck.Positive("chat.delivery.retention", d.Retention)
	c.Webhook.Check(ck, "chat.webhook")
	return ck.Err()
}

// Router is where routes are registered (an *httpx.Server).
type Router interface {
	HandleFunc(pattern string, h http.HandlerFunc, opts ...httpx.RouteOption)
}

// Deps are what the connector runs on.
type Deps struct {
	// Pool holds the connector's schema (chat: deliveries, their ledger,
	// the outbox of their statuses).
	Pool *pgxpool.Pool
	// Bus configures the consumers; Brokers is where they and the config
	// topic are read.
	Bus     bus.Config
	Brokers []string
	// Producer publishes inbound messages and delivery statuses.
	Producer *bus.Producer
	// Client makes the deliveries: an *egress.Client, which refuses
	// private and metadata addresses unless the operator allows them.
	Client outbound.Doer
	// Router receives the webhook route.
	Router Router
	// Telemetry gives logs, traces and metrics.
	Telemetry *telemetry.Telemetry
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
	// Limiter counts each channel's webhooks against Config.Webhook; nil
	// counts nothing.
	Limiter *ratelimit.Limiter
	// Secrets open the channels' signing secrets, which travel sealed
	// (docs/adr/0022); required.
	Secrets *seal.Keyring
}

// channel is what the connector knows of a chat channel.
type channel struct {
	tenant  string
	secrets [][]byte
	// outbound is where deliveries go; nil when none is set.
	outbound *events.ChatOutbound
	deleted  bool
}

// wantsStates reports whether the channel's endpoint subscribed to state
// changes.
func (ch channel) wantsStates() bool {
	return !ch.deleted && ch.outbound.Wants(events.ChatEventConversationState)
}

// Connector is the running chat connector.
type Connector struct {
	cfg      Config
	limiter  *ratelimit.Limiter
	producer *bus.Producer
	clock    retry.Clock
	log      *slog.Logger
	table    *bus.Table
	// keys open the channels' secrets.
	keys *seal.Keyring

	store      *outbound.Store
	dispatcher *outbound.Dispatcher
	sends      *bus.Consumer
	states     *bus.Consumer
	relay      *outbox.Relay

	mu       sync.RWMutex
	channels map[string]channel
	// stateSubscribers counts the endpoints subscribed to state changes.
	stateSubscribers atomic.Int64

	accepted       metric.Int64Counter
	rejected       metric.Int64Counter
	statusAccepted metric.Int64Counter
	statusRejected metric.Int64Counter
}

// New migrates the connector's schema, builds it and registers its
// webhooks.
func New(ctx context.Context, cfg Config, d Deps) (*Connector, error) {
	switch {
	case d.Pool == nil:
		return nil, errors.New("chat: no database pool given")
	case d.Producer == nil:
		return nil, errors.New("chat: no producer given")
	case d.Router == nil:
		return nil, errors.New("chat: no router given")
	case d.Client == nil:
		return nil, errors.New("chat: no HTTP client for deliveries given")
	case d.Secrets == nil:
		return nil, errors.New("chat: no keyring given: the channels' secrets travel sealed")
	}
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	cfg.Webhook.Name = "channel"
	c := &Connector{cfg: cfg, limiter: d.Limiter, producer: d.Producer, clock: d.Clock, log: d.Telemetry.Component("chat"), keys: d.Secrets, channels: map[string]channel{}}
	c.store = outbound.NewStore(d.Pool, EventSource)
	if err := c.store.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("chat: migrate: %w", err)
	}
	busCfg := d.Bus
	busCfg.Brokers = d.Brokers
	c.table = bus.NewTable(busCfg, events.TopicConfig, c.applyConfig, d.Telemetry)
	m := d.Telemetry.Meter.Meter("switchboard/chat")
	var err error
	if c.accepted, err = m.Int64Counter("switchboard.chat.webhooks.accepted", metric.WithDescription("Chat messages accepted and handed to Kafka.")); err != nil {
		return nil, err
	}
	if c.rejected, err = m.Int64Counter("switchboard.chat.webhooks.rejected", metric.WithDescription("Chat webhooks refused, by reason.")); err != nil {
		return nil, err
	}
	if c.statusAccepted, err = m.Int64Counter("switchboard.chat.statuses.accepted", metric.WithDescription("Delivery statuses posted by chat endpoints and handed to Kafka.")); err != nil {
		return nil, err
	}
	if c.statusRejected, err = m.Int64Counter("switchboard.chat.statuses.rejected", metric.WithDescription("Delivery status webhooks refused, by reason.")); err != nil {
		return nil, err
	}

	if c.dispatcher, err = outbound.NewDispatcher(cfg.Delivery, c.store, d.Client, c.endpoint, d.Clock, d.Telemetry); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	producer := d.Producer
	rec := outbound.NewRecorder(outbound.RecorderConfig{Store: c.store, Dispatcher: c.dispatcher, Endpoints: c.endpoint, Loaded: c.table.Ready,
		StateSubscribers: func() bool { return c.stateSubscribers.Load() > 0 },
		Publish: func(ctx context.Context, dl events.Delivery) error {
			ev, err := events.New(events.TypeDelivery, EventSource, dl.TenantID, dl.At, dl)
			if err != nil {
				return err
			}
			return producer.Publish(ctx, events.TopicDelivery, []byte(dl.MessageID), ev)
		},
		Clock: d.Clock, Logger: c.log})
	if c.sends, err = bus.NewConsumer(busCfg, bus.ConsumerOptions{Group: SendGroup, Topics: []string{events.TopicOutbound(events.ChannelChat)}, Clock: d.Clock},
		bus.ByType(map[string]bus.Handler{events.TypeErase: bus.Each(func(ctx context.Context, e events.Erase) error {
			return c.store.Forget(ctx, e, d.Clock.Now())
		}, outbound.ErrInvalidErase)}, rec.HandleCommands), d.Producer, d.Telemetry); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if c.states, err = bus.NewConsumer(busCfg, bus.ConsumerOptions{Group: StateGroup, Topics: []string{events.TopicConversations}, Clock: d.Clock},
		rec.HandleConversations, d.Producer, d.Telemetry); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if c.relay, err = c.store.Outbox().Relay(d.Pool, d.Producer, d.Telemetry, outbox.RelayOptions{Clock: d.Clock}); err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	d.Router.HandleFunc(WebhookPath, c.receive, httpx.WithBodyLimit(cfg.MaxBodyBytes))
	d.Router.HandleFunc(StatusPath, c.receiveStatus, httpx.WithBodyLimit(statusBodyLimit))
	return c, nil
}

// Run follows the configuration topic, records what is to be delivered
// and delivers it until ctx is cancelled.
func (c *Connector) Run(ctx context.Context) error {
	return lifecycle.RunAll(ctx, lifecycle.ServiceFunc(c.table.Run), c.sends, c.states, c.dispatcher, c.relay)
}

// Ready reports whether the connector knows the channels configured when it
// started (before that, a valid webhook could be refused) and reads its
// commands.
func (c *Connector) Ready(ctx context.Context) error {
	if err := c.table.Ready(ctx); err != nil {
		return err
	}
	if err := c.sends.Ready(ctx); err != nil {
		return err
	}
	return c.states.Ready(ctx)
}

// endpoint is what the dispatcher knows of a channel's endpoint.
func (c *Connector) endpoint(id string) (outbound.Endpoint, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ch, ok := c.channels[id]
	if !ok {
		return outbound.Endpoint{}, false
	}
	return outbound.Endpoint{TenantID: ch.tenant, Outbound: ch.outbound, Deleted: ch.deleted}, true
}

// applyConfig updates the channel view from one config event, opening
// its secrets. One that does not open (a key missing from the keyring)
// leaves the channel as it was known: the error names the key.
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
	plain, err := c.keys.OpenFields(ch.SecretPlace(), ch.SecretFields())
	if err != nil {
		return fmt.Errorf("chat channel event %s: %w", ev.ID, err)
	}
	if plain > 0 {
		c.log.Warn("chat channel secrets arrived in clear, from an inbox that did not seal them; the inbox seals them at its next start", "channel_id", ch.ID)
	}
	next := channel{tenant: ch.TenantID, deleted: ch.Deleted}
	if !ch.Deleted {
		for _, s := range ch.Secrets {
			next.secrets = append(next.secrets, []byte(s))
		}
		if ch.Outbound != nil {
			o := *ch.Outbound
			next.outbound = &o
		}
	}
	c.mu.Lock()
	if old, ok := c.channels[ch.ID]; ok && old.wantsStates() {
		c.stateSubscribers.Add(-1)
	}
	if next.wantsStates() {
		c.stateSubscribers.Add(1)
	}
	c.channels[ch.ID] = next
	c.mu.Unlock()
	// Deliveries waiting for an endpoint go now; those of a deleted
	// channel fail (the dispatcher's poll finds them too).
	if next.outbound != nil && !next.outbound.Disabled {
		c.dispatcher.Wake(ch.ID)
	} else {
		c.dispatcher.Nudge(ch.ID)
	}
	return nil
}

// lookup returns a channel that takes webhooks: known, not deleted, with a
// secret.
func (c *Connector) lookup(id string) (channel, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ch, ok := c.channels[id]
	return ch, ok && !ch.deleted && len(ch.secrets) > 0
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
	// Bot, when set, marks a message the chat platform's bot wrote to the
	// customer (before an agent took over): agents see it as the bot's,
	// in the conversation, not as the customer's. Optional.
	Bot *Bot `json:"bot,omitempty"`
}

// Bot is the bot that wrote a message.
type Bot struct {
	// Name is what agents see. Required when bot is set.
	Name string `json:"name"`
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

func (c *Connector) reject(ctx context.Context, w http.ResponseWriter, counter metric.Int64Counter, reason string, p *httpx.Problem) {
	counter.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `HMAC-SHA256 realm="switchboard", headers="`+webhook.HeaderTimestamp+` `+webhook.HeaderSignature+`"`)
	}
	httpx.WriteProblem(w, p)
}

// verified reads the body of a webhook to channel {channel} and checks its
// signature before anything in it is looked at. When it reports false, it
// has answered, counting the refusal on rejected.
func (c *Connector) verified(w http.ResponseWriter, r *http.Request, rejected metric.Int64Counter, now time.Time) (string, channel, []byte, bool) {
	ctx := r.Context()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			c.reject(ctx, w, rejected, "too_large", httpx.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)))
			return "", channel{}, nil, false
		}
		c.reject(ctx, w, rejected, "read", httpx.NewProblem(http.StatusBadRequest, "the body could not be read"))
		return "", channel{}, nil, false
	}

	channelID := r.PathValue("channel")
	ch, known := c.lookup(channelID)
	if !known && c.table.Ready(ctx) != nil {
		// Starting: the channels are still being read, and a refusal now
		// would be final for the sender. Same answer for every channel, so
		// an unsigned caller still learns nothing.
		c.log.WarnContext(ctx, "chat webhook before the channels are known; answered 503", "channel", channelID, "path", r.URL.Path)
		rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", "starting")))
		w.Header().Set("Retry-After", "1")
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the connector is starting and does not know its channels yet; retry"))
		return "", channel{}, nil, false
	}
	if !known {
		// Same answer as a bad signature: an unsigned caller learns nothing
		// about which channels exist.
		c.log.WarnContext(ctx, "chat webhook for an unknown channel", "channel", channelID, "path", r.URL.Path)
		c.reject(ctx, w, rejected, "unknown_channel", httpx.NewProblem(http.StatusUnauthorized, "the signature does not verify for this channel"))
		return "", channel{}, nil, false
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
		c.log.WarnContext(ctx, "chat webhook refused", "channel", channelID, "path", r.URL.Path, "reason", reason, "error", err)
		c.reject(ctx, w, rejected, reason, httpx.NewProblem(http.StatusUnauthorized, detail))
		return "", channel{}, nil, false
	}
	// Counted once signed: an unsigned flood naming the channel costs its
	// sender nothing and cannot use up the channel's rate.
	if c.limiter != nil {
		d := c.limiter.Allow(ctx, ratelimit.Limit{Key: "chat:" + channelID + ":" + path.Base(r.URL.Path), Rule: c.cfg.Webhook})
		ratelimit.SetHeaders(w.Header(), d, c.cfg.Webhook)
		if !d.Allowed {
			c.reject(ctx, w, rejected, "rate_limited", ratelimit.TooMany(w.Header(), d, "webhooks of this channel"))
			return "", channel{}, nil, false
		}
	}
	return channelID, ch, body, true
}

// receive handles POST /v1/webhooks/chat/{channel}/messages.
func (c *Connector) receive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := c.clock.Now()
	channelID, ch, body, ok := c.verified(w, r, c.rejected, now)
	if !ok {
		return
	}

	msg, err := parse(body)
	if err != nil {
		c.reject(ctx, w, c.rejected, "invalid", asProblem(err))
		return
	}
	ev, key, err := c.event(channelID, ch.tenant, msg, now)
	if err != nil {
		c.reject(ctx, w, c.rejected, "invalid", asProblem(err))
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
	if m.Bot != nil {
		switch name := strings.TrimSpace(m.Bot.Name); {
		case name == "":
			return Message{}, httpx.Invalid("bot.name", "is required when bot is set")
		case len(m.Bot.Name) > events.MaxNameBytes || !utf8.ValidString(m.Bot.Name) || strings.ContainsRune(m.Bot.Name, 0):
			return Message{}, httpx.Invalid("bot.name", "must be at most 256 bytes of valid UTF-8")
		}
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
	if m.Bot != nil {
		p.Bot = &events.BotAuthor{Name: m.Bot.Name}
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
