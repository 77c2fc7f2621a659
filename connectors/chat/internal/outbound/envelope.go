package outbound

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// Headers of a delivery, besides Content-Type and the signature headers
// of package webhook (X-Switchboard-Timestamp, X-Switchboard-Signature).
const (
	// HeaderEvent names the delivery's event: message.created,
	// bot.control or conversation.state_changed.
	HeaderEvent = "X-Switchboard-Event"
	// HeaderIdempotencyKey is the delivery's id, the same for every
	// attempt and every replay: the receiver drops a repeat.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderAttempt counts the attempts of the delivery, from 1; a replay
	// starts again from 1.
	HeaderAttempt = "X-Switchboard-Attempt"
)

// UserAgent is the User-Agent of every delivery.
const UserAgent = "Switchboard-Webhooks/1"

// Envelope is the JSON body of every delivery.
type Envelope struct {
	// ID identifies the delivery, as Idempotency-Key does: the message id
	// of a message, the command id of a bot control, the conversation
	// event's id of a state change.
	ID string `json:"id"`
	// Type is the event: message.created, bot.control or
	// conversation.state_changed.
	Type string `json:"type"`
	// CreatedAt is when Switchboard made it (the reply, the command, the
	// change), not when it is attempted.
	CreatedAt time.Time `json:"created_at"`
	// ChannelID is the chat channel.
	ChannelID string `json:"channel_id"`
	// SessionID is the chat session (the session_id of the customer's
	// messages).
	SessionID string `json:"session_id"`
	// UserID is the customer's user id; empty on a state change of a
	// conversation that no delivery named the user of yet.
	UserID string `json:"user_id"`
	// ConversationID is Switchboard's conversation.
	ConversationID string `json:"conversation_id"`
	// Data depends on Type: MessageData, BotControlData or StateData.
	Data any `json:"data"`
}

// MessageData is the data of message.created: an agent's reply, or a
// message Switchboard sent on its own (automatic).
type MessageData struct {
	MessageID string `json:"message_id"`
	Text      string `json:"text"`
	// Choices are answers to show as buttons; the customer's pick comes
	// back as a message whose metadata "choice" is the choice's id.
	Choices []events.Choice `json:"choices"`
	// Automatic marks a message Switchboard sent on its own (an
	// acknowledgement, a waiting message, the smart-close question).
	Automatic bool `json:"automatic"`
	// Attachments describe the message's files; their content is not
	// delivered.
	Attachments []AttachmentData `json:"attachments"`
}

// AttachmentData describes one file of a message.
type AttachmentData struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// BotControlData is the data of bot.control.
type BotControlData struct {
	// Action is block, unblock or run.
	Action string `json:"action"`
	// Actor is who asked: kind user or api_token, and its id.
	Actor events.Actor `json:"actor"`
}

// StateData is the data of conversation.state_changed.
type StateData struct {
	// From is the state before; empty when the change created the
	// conversation.
	From string `json:"from"`
	// To is the state after.
	To string `json:"to"`
	// Action is what changed it (assign, reply, complete, ...).
	Action string `json:"action"`
}

// Delivery is one delivery to record: its envelope, marshalled once so
// that every attempt sends the same bytes.
type Delivery struct {
	ID             string
	TenantID       string
	ChannelID      string
	ConversationID string
	SessionID      string
	UserID         string
	Event          string
	Body           []byte
	// Replay is the replay count of the send command (0 for the first).
	Replay int
}

// ErrInvalidCommand is wrapped by the errors of commands that cannot be
// delivered whatever happens: they go to the dead-letter topic.
var ErrInvalidCommand = errors.New("invalid chat command")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidCommand, fmt.Sprintf(format, args...))
}

// MessageDelivery turns a send command into its delivery.
func MessageDelivery(cmd events.SendMessage, at time.Time) (Delivery, error) {
	switch {
	case cmd.MessageID == "" || cmd.TenantID == "" || cmd.ConversationID == "" || cmd.ChannelAccountID == "":
		return Delivery{}, invalid("message_id, tenant_id, conversation_id and channel_account_id are required (message %q)", cmd.MessageID)
	case cmd.Channel != "" && cmd.Channel != events.ChannelChat:
		return Delivery{}, invalid("message %s is for channel %q, not chat", cmd.MessageID, cmd.Channel)
	case strings.TrimSpace(cmd.Text) == "" && len(cmd.Attachments) == 0:
		return Delivery{}, invalid("message %s has neither text nor attachments", cmd.MessageID)
	case cmd.Replay < 0:
		return Delivery{}, invalid("message %s has a negative replay count", cmd.MessageID)
	}
	data := MessageData{MessageID: cmd.MessageID, Text: cmd.Text, Choices: cmd.Choices, Automatic: cmd.Automatic, Attachments: []AttachmentData{}}
	if data.Choices == nil {
		data.Choices = []events.Choice{}
	}
	for _, a := range cmd.Attachments {
		data.Attachments = append(data.Attachments, AttachmentData{Name: a.Name, ContentType: a.ContentType, Size: a.Size})
	}
	d := Delivery{ID: cmd.MessageID, TenantID: cmd.TenantID, ChannelID: cmd.ChannelAccountID, ConversationID: cmd.ConversationID,
		SessionID: cmd.ThreadKey, UserID: cmd.To, Event: events.ChatEventMessage, Replay: cmd.Replay}
	return d, d.seal(at, data)
}

// BotControlDelivery turns a bot control command into its delivery.
func BotControlDelivery(cmd events.BotControl, at time.Time) (Delivery, error) {
	if err := cmd.Validate(); err != nil {
		return Delivery{}, invalid("bot control %q: %v", cmd.ID, err)
	}
	d := Delivery{ID: cmd.ID, TenantID: cmd.TenantID, ChannelID: cmd.ChannelAccountID, ConversationID: cmd.ConversationID,
		SessionID: cmd.ThreadKey, UserID: cmd.To, Event: events.ChatEventBotControl}
	return d, d.seal(at, BotControlData{Action: cmd.Action, Actor: cmd.Actor})
}

// StateDelivery is the delivery of a conversation's change of state; id is
// the change event's id.
func StateDelivery(id, tenantID, channelID, conversationID, sessionID, userID string, ch events.ConversationChanged, at time.Time) (Delivery, error) {
	d := Delivery{ID: id, TenantID: tenantID, ChannelID: channelID, ConversationID: conversationID,
		SessionID: sessionID, UserID: userID, Event: events.ChatEventConversationState}
	return d, d.seal(at, StateData{From: ch.From, To: ch.To, Action: ch.Action})
}

// seal marshals the envelope into d.Body.
func (d *Delivery) seal(at time.Time, data any) error {
	body, err := json.Marshal(Envelope{ID: d.ID, Type: d.Event, CreatedAt: at.UTC(), ChannelID: d.ChannelID, SessionID: d.SessionID,
		UserID: d.UserID, ConversationID: d.ConversationID, Data: data})
	if err != nil {
		return fmt.Errorf("encode %s delivery %s: %w", d.Event, d.ID, err)
	}
	d.Body = body
	return nil
}

// Signature is the X-Switchboard-Signature of body sent at ts: one v1=
// value per secret, the current one first, comma-separated.
func Signature(secrets []string, ts time.Time, body []byte) string {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sigs = append(sigs, webhook.Sign([]byte(s), ts, body))
	}
	return strings.Join(sigs, ",")
}
