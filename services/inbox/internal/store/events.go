package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// changedEvent announces an action on a conversation, with the
// conversation as it is after it.
func changedEvent(action domain.Action, actor events.Actor, from domain.State, reason string, data any, c Conversation, now time.Time) (outbox.Record, error) {
	snap, err := json.Marshal(c)
	if err != nil {
		return outbox.Record{}, fmt.Errorf("encode conversation %s: %w", c.ID, err)
	}
	var raw json.RawMessage
	if data != nil {
		if raw, err = json.Marshal(data); err != nil {
			return outbox.Record{}, fmt.Errorf("encode the data of %s on conversation %s: %w", action, c.ID, err)
		}
	}
	ev, err := events.New(events.TypeConversationChanged, EventSource, c.Tenant.String(), now, events.ConversationChanged{
		Action: string(action), Actor: actor, From: string(from), To: string(c.State), Reason: reason, Data: raw, Conversation: snap,
	})
	if err != nil {
		return outbox.Record{}, err
	}
	ev.Subject = c.ID.String()
	return outbox.Record{Topic: events.TopicConversations, Key: c.EventKey(), Event: ev}, nil
}

// ConversationRef is what a message event says of its conversation: enough
// to route the event to those who may see it, and whether it is muted
// (agents' screens do not notify for muted conversations).
type ConversationRef struct {
	ID        uuid.UUID    `json:"id"`
	State     domain.State `json:"state"`
	QueueID   *uuid.UUID   `json:"queue_id"`
	Assignees []uuid.UUID  `json:"assignee_ids"`
	Muted     bool         `json:"muted"`
	// Version, StateVersion and StateSince are the conversation's (see
	// Conversation), so that a reader of messages alone knows where it
	// stands.
	Version      int64     `json:"version"`
	StateVersion int64     `json:"state_version"`
	StateSince   time.Time `json:"state_since"`
}

// messageEvent announces a message of a conversation.
func messageEvent(m Message, c Conversation, now time.Time) (outbox.Record, error) {
	msg, err := json.Marshal(m)
	if err != nil {
		return outbox.Record{}, fmt.Errorf("encode message %s: %w", m.ID, err)
	}
	snap, err := json.Marshal(ConversationRef{ID: c.ID, State: c.State, QueueID: c.QueueID, Assignees: c.Assignees, Muted: c.Muted,
		Version: c.Version, StateVersion: c.StateVersion, StateSince: c.StateSince})
	if err != nil {
		return outbox.Record{}, fmt.Errorf("encode conversation %s: %w", c.ID, err)
	}
	ev, err := events.New(events.TypeConversationMessage, EventSource, c.Tenant.String(), now, events.ConversationMessage{Message: msg, Conversation: snap})
	if err != nil {
		return outbox.Record{}, err
	}
	ev.Subject = c.ID.String()
	return outbox.Record{Topic: events.TopicConversations, Key: c.EventKey(), Event: ev}, nil
}

// actorOf says who a principal is, for events.
func actorOf(p domain.Principal) events.Actor {
	return events.Actor{Kind: p.ActorKind(), ID: p.ActorID()}
}

// IngestEvents are the events of an ingested batch: each conversation
// opened or re-opened, and each message stored.
func IngestEvents(msgs []Inbound, res IngestResult, now time.Time) ([]outbox.Record, error) {
	var recs []outbox.Record
	byID := map[string]Conversation{}
	for _, t := range res.Touched {
		byID[t.ID.String()] = t.Conversation
		actor := events.Actor{Kind: "customer", ID: t.ContactID.String()}
		var rec outbox.Record
		var err error
		switch {
		case t.Created:
			rec, err = changedEvent(domain.ActionCreated, actor, "", t.Classification.Reason(), t.Classification.Data(), t.Conversation, now)
		case t.Reopened():
			rec, err = changedEvent(domain.ActionCustomerMessage, actor, t.From, "the customer wrote again", nil, t.Conversation, now)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	for _, s := range res.Stored {
		in := msgs[s.Index]
		c := byID[s.ConversationID.String()]
		language := in.Language
		if s.Language != "" {
			language = s.Language
		}
		m := Message{ID: s.ID, ConversationID: s.ConversationID, Direction: "inbound", Sender: in.Msg.From.Identity,
			Body: in.Msg.Text, ExternalID: in.Msg.ExternalID, Language: language, Tags: s.Tags, Metadata: in.Msg.Metadata,
			ReceivedAt: in.Msg.ReceivedAt, Subject: in.Msg.Subject, HTML: in.Msg.HTML, Automatic: in.Msg.Automatic,
			Attachments: attachmentsOf(in.Msg.Attachments)}
		if in.Msg.Bot != nil {
			m.Direction, m.Sender, m.AuthorKind, m.AuthorName = "outbound", in.Msg.Bot.Name, AuthorBot, in.Msg.Bot.Name
		}
		if !in.Msg.SentAt.IsZero() {
			t := in.Msg.SentAt
			m.SentAt = &t
		}
		rec, err := messageEvent(m, c, now)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return recs, nil
}
