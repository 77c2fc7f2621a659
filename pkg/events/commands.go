package events

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// TopicCommands carries what the router and the scheduler ask of the inbox,
// keyed by conversation (ConversationKey): the inbox is the only writer of
// conversations, and everyone else changes one by sending it a command.
const TopicCommands = "sb.inbox.commands.v1"

// TypeInboxCommand is the type of every record on TopicCommands; its data
// is an InboxCommand. The event id is the command id: the inbox applies a
// command once per id, however often it is delivered.
const TypeInboxCommand = "sb.inbox.command.v1"

// Command kinds.
const (
	// CommandWake wakes a deferred conversation at the time it was
	// deferred to.
	CommandWake = "wake"
	// CommandOffer offers a new conversation to one agent until
	// Offer.ExpiresAt (push routing).
	CommandOffer = "offer"
	// CommandExpireOffer takes back an offer its agent did not accept in
	// time.
	CommandExpireOffer = "expire_offer"
	// CommandSendAutomatic sends an automatic message (an acknowledgement,
	// a waiting message) on the conversation.
	CommandSendAutomatic = "send_automatic"
	// CommandSmartCloseAsk sends the smart-close question after the first
	// wait the agent asked for.
	CommandSmartCloseAsk = "smart_close_ask"
	// CommandSmartCloseAnswer applies the customer's answer to the
	// smart-close question (Answer).
	CommandSmartCloseAnswer = "smart_close_answer"
	// CommandSmartCloseTimeout closes a conversation whose customer did
	// not answer the smart-close question in time.
	CommandSmartCloseTimeout = "smart_close_timeout"
	// CommandInactivity tells the agent of an assigned conversation that it
	// has been inactive for the queue's limit.
	CommandInactivity = "inactivity"
	// CommandWithdrawOffer takes back an offer because its agent went
	// away or offline (not counted as missed).
	CommandWithdrawOffer = "withdraw_offer"
	// CommandRequeue puts a conversation held by an agent who has been
	// offline for the queue's limit back in its queue.
	CommandRequeue = "requeue"
)

// Purposes of an automatic message.
const (
	// AutomaticAcknowledgement is the first answer when a conversation
	// starts.
	AutomaticAcknowledgement = "acknowledgement"
	// AutomaticWaiting is a waiting message, sent after some hours in a
	// state.
	AutomaticWaiting = "waiting"
)

// Answers to the smart-close question.
const (
	AnswerYes   = "yes"
	AnswerNo    = "no"
	AnswerOther = "other"
)

// Expectation is what the sender of a command saw of the conversation. The
// inbox applies the command only while it still holds; otherwise the
// conversation moved on (the customer wrote, an agent acted, the timer was
// superseded) and the command is a harmless no-op.
type Expectation struct {
	// State is the conversation's state.
	State string `json:"state"`
	// StateVersion identifies the entry into State: the conversation's
	// version when it entered it. 0 expects nothing of it.
	StateVersion int64 `json:"state_version,omitempty"`
	// Version is the conversation's version: nothing at all happened to
	// it since. 0 expects nothing of it.
	Version int64 `json:"version,omitempty"`
}

// Offer is the offer of a CommandOffer.
type Offer struct {
	// UserID is the agent offered the conversation.
	UserID string `json:"user_id"`
	// ExpiresAt is when the offer lapses if the agent did not accept it.
	ExpiresAt time.Time `json:"expires_at"`
	// Fence is the fencing token of the decision: the inbox refuses an
	// offer whose token is older than the one it stored with the
	// conversation's last assignment. 0 carries none.
	Fence int64 `json:"fence,omitempty"`
}

// Automatic names the automatic message of a CommandSendAutomatic; the
// inbox renders its current text when it applies the command.
type Automatic struct {
	// Purpose is AutomaticAcknowledgement or AutomaticWaiting.
	Purpose string `json:"purpose"`
	// WaitingMessageID is the waiting message to send (AutomaticWaiting).
	WaitingMessageID string `json:"waiting_message_id,omitempty"`
}

// InboxCommand is the data of TypeInboxCommand.
type InboxCommand struct {
	TenantID       string `json:"tenant_id"`
	ConversationID string `json:"conversation_id"`
	// Kind is one of the Command constants.
	Kind string `json:"kind"`
	// Expect is what must still hold for the command to apply.
	Expect Expectation `json:"expect"`
	// DueAt is when the timer that sent the command came due; zero for a
	// command sent at once. The inbox records it beside when it applied
	// the command (lateness).
	DueAt time.Time `json:"due_at,omitzero"`
	// Offer is set on CommandOffer.
	Offer *Offer `json:"offer,omitempty"`
	// Automatic is set on CommandSendAutomatic.
	Automatic *Automatic `json:"automatic,omitempty"`
	// Answer is set on CommandSmartCloseAnswer: AnswerYes, AnswerNo or
	// AnswerOther.
	Answer string `json:"answer,omitempty"`
	// Minutes is the inactivity limit of a CommandInactivity.
	Minutes float64 `json:"minutes,omitempty"`
}

// Validate checks the command; the error is a *FieldError.
func (c *InboxCommand) Validate() error {
	if _, err := uuid.Parse(c.TenantID); err != nil {
		return &FieldError{Field: "tenant_id", Reason: "must be a tenant id"}
	}
	if _, err := uuid.Parse(c.ConversationID); err != nil {
		return &FieldError{Field: "conversation_id", Reason: "must be a conversation id"}
	}
	if c.Expect.State == "" {
		return &FieldError{Field: "expect.state", Reason: "is required"}
	}
	if c.Expect.StateVersion < 0 || c.Expect.Version < 0 {
		return &FieldError{Field: "expect", Reason: "versions must not be negative"}
	}
	switch c.Kind {
	case CommandWake, CommandExpireOffer, CommandSmartCloseAsk, CommandSmartCloseTimeout, CommandWithdrawOffer, CommandRequeue:
	case CommandOffer:
		if c.Offer == nil {
			return &FieldError{Field: "offer", Reason: "is required by an offer"}
		}
		if _, err := uuid.Parse(c.Offer.UserID); err != nil {
			return &FieldError{Field: "offer.user_id", Reason: "must be a user id"}
		}
		if c.Offer.ExpiresAt.IsZero() {
			return &FieldError{Field: "offer.expires_at", Reason: "is required"}
		}
		if c.Offer.Fence < 0 {
			return &FieldError{Field: "offer.fence", Reason: "must not be negative"}
		}
	case CommandSendAutomatic:
		if c.Automatic == nil {
			return &FieldError{Field: "automatic", Reason: "is required by send_automatic"}
		}
		switch c.Automatic.Purpose {
		case AutomaticAcknowledgement:
		case AutomaticWaiting:
			if _, err := uuid.Parse(c.Automatic.WaitingMessageID); err != nil {
				return &FieldError{Field: "automatic.waiting_message_id", Reason: "must be a waiting message id"}
			}
		default:
			return &FieldError{Field: "automatic.purpose", Reason: fmt.Sprintf("must be %s or %s, got %q", AutomaticAcknowledgement, AutomaticWaiting, c.Automatic.Purpose)}
		}
	case CommandSmartCloseAnswer:
		if c.Answer != AnswerYes && c.Answer != AnswerNo && c.Answer != AnswerOther {
			return &FieldError{Field: "answer", Reason: fmt.Sprintf("must be yes, no or other, got %q", c.Answer)}
		}
	case CommandInactivity:
		if c.Minutes <= 0 {
			return &FieldError{Field: "minutes", Reason: "must be positive"}
		}
	default:
		return &FieldError{Field: "kind", Reason: fmt.Sprintf("%q is not a command kind", c.Kind)}
	}
	return nil
}
