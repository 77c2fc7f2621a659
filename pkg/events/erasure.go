package events

import (
	"fmt"
)

// TypeErase: the inbox tells a channel's connector to forget what it keeps
// of messages an admin anonymised or deleted, of conversations deleted, or
// of a contact erased (GDPR art. 17). It travels on TopicOutbound(channel),
// keyed by its ID; a connector handles it after the commands before it on
// the same partition, and handling it twice is harmless.
//
// The event names what to forget (ids, thread keys, identities), never the
// content itself. Kafka's own log is not rewritten: the records that
// carried the content (the inbound message, the send command) live on in
// their topics until the topic's retention removes them.
const TypeErase = "sb.erase.v1"

// Why a connector is asked to forget.
const (
	// EraseAnonymise: messages were anonymised; the fact that they were
	// sent stays, their content goes.
	EraseAnonymise = "anonymise"
	// EraseDelete: messages, or whole conversations, were deleted.
	EraseDelete = "delete"
	// EraseContact: a contact was erased: their messages are anonymised,
	// and what the connector keeps per identity is forgotten.
	EraseContact = "erase_contact"
)

// MaxEraseItems bounds each list of an Erase: a larger erasure is sent as
// several events.
const MaxEraseItems = 1000

// Erase is the data of TypeErase.
type Erase struct {
	// ID is unique per event.
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Channel  string `json:"channel"`
	// Reason is EraseAnonymise, EraseDelete or EraseContact.
	Reason string `json:"reason"`
	// Messages are the messages whose stored copies (a delivery's body, a
	// provider's answer, a subject) are blanked.
	Messages []ErasedMessage `json:"messages,omitempty"`
	// Conversations are threads to forget (deleted conversations, the
	// conversations of an erased contact): the thread records, so that a
	// later mail or text starts a new conversation.
	Conversations []ErasedConversation `json:"conversations,omitempty"`
	// Identities are the erased contact's identities on the channel (an
	// address, a number, a chat user id).
	Identities []string `json:"identities,omitempty"`
}

// ErasedMessage names a message as the inbox and the connector know it.
type ErasedMessage struct {
	// ID is the inbox's message id: the send command's MessageID of an
	// outbound message.
	ID string `json:"id"`
	// ExternalID is the channel's id (an inbound mail's Message-ID, a
	// Twilio SID).
	ExternalID       string `json:"external_id,omitempty"`
	ChannelAccountID string `json:"channel_account_id"`
	ConversationID   string `json:"conversation_id"`
	// Direction is inbound or outbound.
	Direction string `json:"direction"`
}

// ErasedConversation names a conversation's thread on its channel account.
type ErasedConversation struct {
	ID               string `json:"id"`
	ChannelAccountID string `json:"channel_account_id"`
	ThreadKey        string `json:"thread_key"`
}

// Validate checks the payload; the error is a *FieldError.
func (e *Erase) Validate() error {
	checks := []struct {
		ok            bool
		field, reason string
	}{
		{idOK(e.ID), "id", "is required, at most 256 bytes of valid UTF-8"},
		{idOK(e.TenantID), "tenant_id", "is required"},
		{e.Channel == ChannelChat || e.Channel == ChannelEmail || e.Channel == ChannelSMS, "channel", fmt.Sprintf("must be chat, email or sms, got %q", e.Channel)},
		{e.Reason == EraseAnonymise || e.Reason == EraseDelete || e.Reason == EraseContact, "reason",
			fmt.Sprintf("must be %s, %s or %s, got %q", EraseAnonymise, EraseDelete, EraseContact, e.Reason)},
		{len(e.Messages)+len(e.Conversations)+len(e.Identities) > 0, "messages", "an erasure names at least one message, conversation or identity"},
		{len(e.Messages) <= MaxEraseItems, "messages", fmt.Sprintf("must list at most %d messages", MaxEraseItems)},
		{len(e.Conversations) <= MaxEraseItems, "conversations", fmt.Sprintf("must list at most %d conversations", MaxEraseItems)},
		{len(e.Identities) <= MaxEraseItems, "identities", fmt.Sprintf("must list at most %d identities", MaxEraseItems)},
	}
	for _, c := range checks {
		if !c.ok {
			return &FieldError{Field: c.field, Reason: c.reason}
		}
	}
	for i, m := range e.Messages {
		if !idOK(m.ID) || (m.Direction != "inbound" && m.Direction != "outbound") {
			return &FieldError{Field: fmt.Sprintf("messages[%d]", i), Reason: "needs an id and a direction (inbound or outbound)"}
		}
	}
	for i, c := range e.Conversations {
		if !idOK(c.ID) || !idOK(c.ChannelAccountID) {
			return &FieldError{Field: fmt.Sprintf("conversations[%d]", i), Reason: "needs an id and a channel account id"}
		}
	}
	for i, id := range e.Identities {
		if !idOK(id) {
			return &FieldError{Field: fmt.Sprintf("identities[%d]", i), Reason: "must be a non-empty identity"}
		}
	}
	return nil
}

// MessageIDs are the inbox ids of the erased messages.
func (e *Erase) MessageIDs() []string {
	ids := make([]string, len(e.Messages))
	for i, m := range e.Messages {
		ids[i] = m.ID
	}
	return ids
}
