package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// Consumer groups of the chat connector's outbound side.
const (
	// CommandGroup reads sb.outbound.chat.v1: replies and bot controls.
	CommandGroup = "switchboard-chat-send"
	// StateGroup reads sb.conversations.v1 for the state changes that
	// endpoints subscribe to.
	StateGroup = "switchboard-chat-state"
)

// PublishFunc publishes a delivery status and returns once Kafka has it.
type PublishFunc func(ctx context.Context, d events.Delivery) error

// Recorder records what Kafka asks to deliver, before the offsets are
// committed: a batch of commands is one transaction, so that a partition
// never waits for an endpoint.
type Recorder struct {
	RecorderConfig
}

// RecorderConfig is what a Recorder works with; every field is required
// but Clock and Logger.
type RecorderConfig struct {
	Store      *Store
	Dispatcher *Dispatcher
	Endpoints  EndpointFunc
	// Loaded fails until the configuration is read: a state change is
	// delivered to the endpoints subscribed when it is handled.
	Loaded func(ctx context.Context) error
	// StateSubscribers reports whether any endpoint subscribed to
	// conversation.state_changed: until one does, conversation events are
	// not even decoded.
	StateSubscribers func() bool
	// Publish reports an invalid command's message failed.
	Publish PublishFunc
	Clock   retry.Clock
	Logger  *slog.Logger
}

// NewRecorder builds the recorder.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if cfg.Clock == nil {
		cfg.Clock = retry.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Recorder{cfg}
}

// HandleCommands records the send and bot control commands of a batch of
// sb.outbound.chat.v1. An invalid command is a permanent error (the
// consumer dead-letters it alone); a message's is also reported failed.
func (r *Recorder) HandleCommands(ctx context.Context, msgs []bus.Message) error {
	ds := make([]Delivery, 0, len(msgs))
	for _, m := range msgs {
		d, err := r.command(ctx, m)
		if err != nil {
			return err
		}
		ds = append(ds, d)
	}
	return r.record(ctx, ds)
}

func (r *Recorder) command(ctx context.Context, m bus.Message) (Delivery, error) {
	switch m.Event.Type {
	case events.TypeSendMessage:
		var cmd events.SendMessage
		if err := m.Event.Decode(&cmd); err != nil {
			return Delivery{}, bus.Permanent(err)
		}
		d, err := MessageDelivery(cmd, m.Event.Time)
		if err != nil {
			return Delivery{}, r.refuse(ctx, cmd, err)
		}
		return d, nil
	case events.TypeBotControl:
		var cmd events.BotControl
		if err := m.Event.Decode(&cmd); err != nil {
			return Delivery{}, bus.Permanent(err)
		}
		d, err := BotControlDelivery(cmd, m.Event.Time)
		if err != nil {
			return Delivery{}, bus.Permanent(err)
		}
		return d, nil
	}
	return Delivery{}, bus.Permanent(fmt.Errorf("%w: event type %q is not a chat command", ErrInvalidCommand, m.Event.Type))
}

// refuse reports an invalid send command's message failed, when it names
// one, and returns the permanent error that dead-letters it.
func (r *Recorder) refuse(ctx context.Context, cmd events.SendMessage, cause error) error {
	if cmd.MessageID != "" && cmd.TenantID != "" {
		d := events.Delivery{MessageID: cmd.MessageID, TenantID: cmd.TenantID, Status: events.DeliveryFailed,
			Error: "the chat connector cannot deliver it: " + cause.Error(), At: r.Clock.Now().UTC()}
		if err := r.Publish(ctx, d); err != nil {
			return fmt.Errorf("report invalid message %s failed: %w", cmd.MessageID, err)
		}
	}
	return bus.Permanent(cause)
}

// conversationRef is what a state change needs of the inbox's
// conversation.
type conversationRef struct {
	ID               string `json:"id"`
	Channel          string `json:"channel"`
	ChannelAccountID string `json:"channel_account_id"`
}

// HandleConversations records the state changes of chat conversations
// whose endpoint subscribed to conversation.state_changed.
func (r *Recorder) HandleConversations(ctx context.Context, msgs []bus.Message) error {
	if err := r.Loaded(ctx); err != nil {
		// Retried until the configuration is read: until then, who
		// subscribed is not known.
		return bus.Transient(fmt.Errorf("chat state changes wait for the configuration: %w", err))
	}
	if !r.StateSubscribers() {
		return nil
	}
	type change struct {
		m    bus.Message
		ch   events.ConversationChanged
		conv conversationRef
	}
	var changes []change
	var convs []string
	for _, m := range msgs {
		if m.Event.Type != events.TypeConversationChanged {
			continue
		}
		var ch events.ConversationChanged
		if err := m.Event.Decode(&ch); err != nil {
			return bus.Permanent(err)
		}
		if ch.From == ch.To || len(ch.Conversation) == 0 {
			continue
		}
		var conv conversationRef
		if err := json.Unmarshal(ch.Conversation, &conv); err != nil {
			return bus.Permanent(fmt.Errorf("conversation of event %s: %w", m.Event.ID, err))
		}
		if conv.Channel != events.ChannelChat || conv.ID == "" {
			continue
		}
		ep, ok := r.Endpoints(conv.ChannelAccountID)
		if !ok || ep.Deleted || ep.Outbound == nil || !ep.Outbound.Wants(events.ChatEventConversationState) {
			continue
		}
		changes = append(changes, change{m: m, ch: ch, conv: conv})
		convs = append(convs, conv.ID)
	}
	if len(changes) == 0 {
		return nil
	}
	users, err := r.Store.Users(ctx, convs)
	if err != nil {
		if pg.IsTransient(err) {
			return bus.Transient(err)
		}
		return err
	}
	ds := make([]Delivery, 0, len(changes))
	for _, c := range changes {
		tenant := c.m.Event.Tenant
		session := sessionOf(c.m.Key)
		if tenant == "" || session == "" {
			return bus.Permanent(fmt.Errorf("conversation event %s has no tenant or no conversation key", c.m.Event.ID))
		}
		d, err := StateDelivery(c.m.Event.ID, tenant, c.conv.ChannelAccountID, c.conv.ID, session, users[c.conv.ID], c.ch, c.m.Event.Time)
		if err != nil {
			return bus.Permanent(err)
		}
		ds = append(ds, d)
	}
	return r.record(ctx, ds)
}

// sessionOf is the thread key (the chat session) of a conversation key,
// tenant/channel/account/thread.
func sessionOf(key []byte) string {
	parts := strings.SplitN(string(key), "/", 4)
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

// record writes ds and wakes their endpoints' loops.
func (r *Recorder) record(ctx context.Context, ds []Delivery) error {
	channels, err := r.Store.Record(ctx, ds, r.Clock.Now())
	if err != nil {
		if pg.IsTransient(err) && !errors.Is(err, context.Canceled) {
			return bus.Transient(err) // PostgreSQL is away: not the commands' fault
		}
		return err
	}
	for _, ch := range channels {
		r.Dispatcher.Wake(ch)
	}
	return nil
}
