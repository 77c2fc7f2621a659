package events

import (
	"encoding/json"
	"time"
)

// TypeNotification: the inbox told one of its users of something waiting
// for them (a conversation assigned to them, a help request, an expert's
// question or answer, a customer's answer). It travels on
// TopicConversations, keyed like the conversation's own events, so that
// every inbox replica's stream hub hands it to the user's clients, and to
// theirs only. Other readers of the topic skip it.
const TypeNotification = "sb.notification.v1"

// Notification is the data of TypeNotification.
type Notification struct {
	// ID is the notification's id (GET /v1/me/notifications).
	ID string `json:"id"`
	// RecipientID is the user it is for; nobody else is shown it.
	RecipientID string `json:"recipient_id"`
	// Kind is assigned, help_request, expert_question, expert_answer or
	// customer_message.
	Kind string `json:"kind"`
	// Actor did what it tells of.
	Actor Actor `json:"actor"`
	// Data are the action's own ids (help_request_id, ...), when any.
	Data json.RawMessage `json:"data,omitempty"`
	// Conversation is {id, queue_id, assignee_ids} of the conversation.
	Conversation json.RawMessage `json:"conversation"`
	CreatedAt    time.Time       `json:"created_at"`
}
