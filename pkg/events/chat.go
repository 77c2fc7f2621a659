package events

import (
	"fmt"
	"slices"
)

// The chat channel's outbound side: what the chat connector delivers to
// the endpoint a tenant set on a chat channel, and the commands the inbox
// sends it on TopicOutbound(ChannelChat), keyed by conversation.

// TypeBotControl: a command to the chat connector to tell the channel's
// endpoint that an agent blocked or unblocked the bot of a conversation,
// or asked for a bot run now.
const TypeBotControl = "sb.chat.bot_control.v1"

// Bot control actions.
const (
	BotBlock   = "block"
	BotUnblock = "unblock"
	BotRun     = "run"
)

// Events a chat endpoint may subscribe to (ChatOutbound.Events): the names
// of the deliveries it receives.
const (
	// ChatEventMessage: an agent's reply, or an automatic message.
	ChatEventMessage = "message.created"
	// ChatEventBotControl: an agent blocked, unblocked or ran the bot.
	ChatEventBotControl = "bot.control"
	// ChatEventConversationState: the conversation changed state (taken,
	// completed, closed, reopened...).
	ChatEventConversationState = "conversation.state_changed"
)

// ChatEvents lists the events an endpoint may subscribe to.
func ChatEvents() []string {
	return []string{ChatEventMessage, ChatEventBotControl, ChatEventConversationState}
}

// ChatOutbound is where a chat channel's deliveries go: part of
// ChatChannel on TopicConfig.
type ChatOutbound struct {
	// URL receives every delivery as a signed JSON POST; https unless the
	// operator allows the address (-egress.allow).
	URL string `json:"url"`
	// Events are the deliveries the endpoint wants, of ChatEvents; message
	// deliveries are always among them.
	Events []string `json:"events"`
	// Secrets sign deliveries (HMAC-SHA256 over timestamp and body, the
	// inbound scheme); the first is the current one, a second is the one
	// being rotated out, and each delivery carries a signature by each.
	Secrets []string `json:"secrets"`
	// Disabled endpoints get nothing; deliveries wait until enabled.
	Disabled bool `json:"disabled,omitempty"`
}

// Wants reports whether the endpoint subscribed to event.
func (o *ChatOutbound) Wants(event string) bool {
	return o != nil && slices.Contains(o.Events, event)
}

// Validate checks the events and that there is a URL and a secret; the URL's
// safety is checked by the caller, which knows the operator's allow-list.
func (o *ChatOutbound) Validate() error {
	if o.URL == "" {
		return &FieldError{Field: "url", Reason: "is required"}
	}
	for i, e := range o.Events {
		if !slices.Contains(ChatEvents(), e) {
			return &FieldError{Field: fmt.Sprintf("events[%d]", i), Reason: fmt.Sprintf("must be one of %v, got %q", ChatEvents(), e)}
		}
	}
	if !slices.Contains(o.Events, ChatEventMessage) {
		return &FieldError{Field: "events", Reason: fmt.Sprintf("must include %s: replies are what the endpoint is for", ChatEventMessage)}
	}
	if len(o.Secrets) == 0 || len(o.Secrets) > 2 {
		return &FieldError{Field: "secrets", Reason: fmt.Sprintf("must hold one or two secrets, got %d", len(o.Secrets))}
	}
	return nil
}

// BotControl is the data of TypeBotControl.
type BotControl struct {
	// ID identifies the command: the delivery's idempotency key.
	ID               string `json:"id"`
	TenantID         string `json:"tenant_id"`
	ConversationID   string `json:"conversation_id"`
	ChannelAccountID string `json:"channel_account_id"`
	// ThreadKey is the chat session.
	ThreadKey string `json:"thread_key"`
	// To is the customer's chat user id.
	To     string `json:"to"`
	Action string `json:"action"`
	Actor  Actor  `json:"actor"`
}

// Validate checks the action and the ids.
func (b BotControl) Validate() error {
	switch {
	case b.ID == "" || b.TenantID == "" || b.ConversationID == "" || b.ChannelAccountID == "":
		return &FieldError{Field: "id", Reason: "id, tenant_id, conversation_id and channel_account_id are required"}
	case b.Action != BotBlock && b.Action != BotUnblock && b.Action != BotRun:
		return &FieldError{Field: "action", Reason: fmt.Sprintf("must be block, unblock or run, got %q", b.Action)}
	}
	return nil
}
