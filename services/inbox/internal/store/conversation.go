package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Conversation is a conversation as the API shows it and as events carry
// it.
type Conversation struct {
	ID               uuid.UUID         `json:"id"`
	Tenant           uuid.UUID         `json:"-"`
	ContactID        uuid.UUID         `json:"contact_id"`
	ContactName      string            `json:"contact_name"`
	Channel          string            `json:"channel"`
	ChannelAccountID uuid.UUID         `json:"channel_account_id"`
	ThreadKey        string            `json:"-"`
	State            domain.State      `json:"state"`
	PreviousState    domain.State      `json:"previous_state,omitempty"`
	QueueID          *uuid.UUID        `json:"queue_id"`
	Assignees        []uuid.UUID       `json:"assignee_ids"`
	LastAgentID      *uuid.UUID        `json:"last_agent_id,omitempty"`
	RequiredSkillID  *uuid.UUID        `json:"required_skill_id,omitempty"`
	RequiredLanguage string            `json:"required_language,omitempty"`
	Priority         int               `json:"priority"`
	Language         string            `json:"language"`
	Tags             map[string]string `json:"tags"`
	Flagged          bool              `json:"flagged"`
	Locked           bool              `json:"locked"`
	Ignored          bool              `json:"ignored"`
	Muted            bool              `json:"muted"`
	Unread           bool              `json:"unread"`
	LastWriter       string            `json:"last_writer"`
	StartedAt        time.Time         `json:"started_at"`
	LastMessageAt    time.Time         `json:"last_message_at"`
	DeferredUntil    *time.Time        `json:"deferred_until,omitempty"`
	Disposition      string            `json:"disposition,omitempty"`
	CompletionNotes  string            `json:"completion_notes,omitempty"`
	UpdatedAt        time.Time         `json:"updated_at"`
	// Version counts the conversation's changes; StateVersion is the
	// version at which it entered its state, at StateSince. Commands name
	// what they expect of them (events.Expectation).
	Version      int64     `json:"version"`
	StateVersion int64     `json:"state_version"`
	StateSince   time.Time `json:"state_since"`
	// OfferExpiresAt is when an offer to the assignee lapses (offered).
	OfferExpiresAt *time.Time `json:"offer_expires_at,omitempty"`
	// ClosingAskedAt is when the smart-close question went out (closing);
	// absent while smart close still waits before asking.
	ClosingAskedAt *time.Time `json:"closing_asked_at,omitempty"`
	// BotBlocked: an agent blocked the chat channel's bot on it.
	BotBlocked bool  `json:"bot_blocked"`
	Fence      int64 `json:"-"`
}

// conversationColumns are read by scanConversation, for a conversations
// row aliased c.
const conversationColumns = `c.id, c.tenant_id, c.contact_id, (SELECT n.name FROM inbox.contacts n WHERE n.id = c.contact_id),
	c.channel, c.channel_account_id, c.thread_key, c.state, coalesce(c.previous_state, ''), c.queue_id, c.assignee_ids,
	c.last_agent_id, c.required_skill_id, c.required_language, c.priority, c.language, c.tags, c.flagged, c.locked,
	c.ignored, c.muted, c.unread, c.last_writer, c.started_at, c.last_message_at, c.deferred_until,
	coalesce(c.disposition, ''), coalesce(c.completion_notes, ''), c.updated_at, c.version, c.state_version, c.state_since,
	c.offer_expires_at, c.closing_asked_at, c.bot_blocked, c.fence`

// scanConversation reads conversationColumns.
func scanConversation(row pgx.CollectableRow) (Conversation, error) {
	var c Conversation
	var tags []byte
	err := row.Scan(&c.ID, &c.Tenant, &c.ContactID, &c.ContactName, &c.Channel, &c.ChannelAccountID, &c.ThreadKey,
		&c.State, &c.PreviousState, &c.QueueID, &c.Assignees, &c.LastAgentID, &c.RequiredSkillID, &c.RequiredLanguage,
		&c.Priority, &c.Language, &tags, &c.Flagged, &c.Locked, &c.Ignored, &c.Muted, &c.Unread, &c.LastWriter,
		&c.StartedAt, &c.LastMessageAt, &c.DeferredUntil, &c.Disposition, &c.CompletionNotes, &c.UpdatedAt,
		&c.Version, &c.StateVersion, &c.StateSince, &c.OfferExpiresAt, &c.ClosingAskedAt, &c.BotBlocked, &c.Fence)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(tags, &c.Tags); err != nil {
		return c, fmt.Errorf("decode tags of conversation %s: %w", c.ID, err)
	}
	if c.Assignees == nil {
		c.Assignees = []uuid.UUID{}
	}
	return c, nil
}

// Domain is the part of the conversation the rules look at.
func (c Conversation) Domain() domain.Conversation {
	d := domain.Conversation{ID: c.ID.String(), State: c.State, PreviousState: c.PreviousState, Locked: c.Locked, Ignored: c.Ignored,
		Version: c.Version, StateVersion: c.StateVersion, LastWriter: c.LastWriter, Asked: c.ClosingAskedAt != nil,
		Channel: c.Channel, BotBlocked: c.BotBlocked}
	if c.LastAgentID != nil {
		d.LastAgent = c.LastAgentID.String()
	}
	if c.QueueID != nil {
		d.Queue = c.QueueID.String()
	}
	for _, a := range c.Assignees {
		d.Assignees = append(d.Assignees, a.String())
	}
	return d
}

// EventKey is the Kafka key of everything about the conversation.
func (c Conversation) EventKey() []byte {
	return events.ConversationKey(c.Tenant.String(), c.Channel, c.ChannelAccountID.String(), c.ThreadKey)
}

// VisibleTo reports whether p may see the conversation.
func (c Conversation) VisibleTo(p domain.Principal) bool {
	d := c.Domain()
	return p.Tenant == c.Tenant.String() && p.Sees(d.Queue, d.Assignees)
}
