package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
)

// customer is whom a message of a conversation goes to, from what they
// last wrote on its thread.
type customer struct {
	// to is their address on the channel.
	to string
	// inReplyTo is the channel's id of their last message (an email's
	// In-Reply-To); subject is its subject.
	inReplyTo, subject string
	// consent is their SMS identity's (ConsentOptedOut, ConsentOptedIn or
	// "").
	consent string
	// automatic: their last message was a machine's (RFC 3834).
	automatic bool
}

// lastCustomer reads the customer's last message of the conversation, and
// their SMS consent. A conversation without one (an outbound one, before
// the customer answers) goes to the identity it was started toward, else
// to its thread's address.
func lastCustomer(ctx context.Context, tx pgx.Tx, c *Conversation) (customer, error) {
	var cu customer
	err := tx.QueryRow(ctx, `SELECT m.sender, m.external_id, coalesce(m.subject, ''), m.automatic,
			coalesce((SELECT ci.consent FROM inbox.contact_identities ci
			          WHERE ci.tenant_id = m.tenant_id AND ci.channel = 'sms' AND ci.identity = m.sender), '')
		FROM inbox.messages m
		WHERE m.conversation_id = $1 AND m.direction = 'inbound' ORDER BY m.received_at DESC, m.id DESC LIMIT 1`, c.ID).
		Scan(&cu.to, &cu.inReplyTo, &cu.subject, &cu.automatic, &cu.consent)
	if errors.Is(err, pgx.ErrNoRows) {
		cu = customer{}
		err := tx.QueryRow(ctx, `SELECT coalesce(c.recipient, c.thread_key),
				coalesce((SELECT ci.consent FROM inbox.contact_identities ci
				          WHERE ci.tenant_id = c.tenant_id AND ci.channel = 'sms' AND ci.identity = c.recipient), '')
			FROM inbox.conversations c WHERE c.id = $1`, c.ID).Scan(&cu.to, &cu.consent)
		if err != nil {
			return customer{}, fmt.Errorf("find the conversation's recipient: %w", err)
		}
		if c.Channel != events.ChannelSMS {
			cu.consent = ""
		}
		return cu, nil
	}
	if err != nil {
		return customer{}, fmt.Errorf("find the customer's last message: %w", err)
	}
	return cu, nil
}

// draft is a message to the customer.
type draft struct {
	text, subject string
	// html is the text's sanitised HTML alternative, email only.
	html        string
	cc          []string
	attachments []events.Attachment
	// replyTo asks the customer to answer there (an agent's address).
	replyTo string
	// author is the user or token that wrote it, or the service that sent
	// it on its own.
	author string
	// automatic: Switchboard sent it on its own.
	automatic bool
	// choices are answers offered as buttons where the channel has them.
	choices []events.Choice
	// externalID, when set, identifies the message on the channel account
	// (the messages' unique key) instead of its id: an automatic message
	// derives it from what it is for, so that it is stored once.
	externalID string
	// language is the message's language; "" is the conversation's.
	language string
}

// compose stores an outbound message of the conversation and returns it
// with the send command for the channel's connector, to commit with it.
func (s *Store) compose(ctx context.Context, tx pgx.Tx, c *Conversation, cu customer, d draft, now time.Time) (Message, outbox.Record, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Message{}, outbox.Record{}, fmt.Errorf("message id: %w", err)
	}
	external := d.externalID
	if external == "" {
		external = id.String()
	}
	language := d.language
	if language == "" {
		language = c.Language
	}
	m := Message{ID: id, ConversationID: c.ID, Direction: "outbound", Sender: d.author, AuthorID: d.author, Body: d.text,
		Subject: d.subject, CC: d.cc, ExternalID: external, Language: language, Tags: c.Tags, ReceivedAt: now,
		DeliveryStatus: events.DeliveryPending, Attachments: attachmentsOf(d.attachments), Automatic: d.automatic, HTML: d.html}
	var subject *string
	if d.subject != "" {
		subject = &d.subject
	}
	var attachments, choices []byte
	if len(d.attachments) > 0 {
		attachments = mustJSON(d.attachments)
	}
	if len(d.choices) > 0 {
		choices = mustJSON(d.choices)
	}
	var html *string
	if d.html != "" {
		html = &d.html
	}
	var replyTo *string
	if d.replyTo != "" {
		replyTo = &d.replyTo
	}
	// What the send command carries beyond the message's own fields
	// (reply_to, choices) is kept with it, for a replay to send the same.
	_, err = tx.Exec(ctx, `INSERT INTO inbox.messages (id, tenant_id, conversation_id, event_id, channel_account_id, external_id,
			direction, sender, author_id, body, subject, cc, received_at, language, tags, delivery_status, delivery_updated_at, attachments, automatic,
			reply_to, choices, html)
		VALUES ($1, $2, $3, $4, $5, $6, 'outbound', $7, $7, $8, $9, $10, $11, $12, $13, 'pending', $11, $14, $15, $16, $17, $18)`,
		m.ID, c.Tenant, c.ID, m.ID.String(), c.ChannelAccountID, m.ExternalID, m.AuthorID, m.Body, subject, d.cc, now, m.Language,
		mustJSON(m.Tags), attachments, d.automatic, replyTo, choices, html)
	if err != nil {
		return Message{}, outbox.Record{}, fmt.Errorf("store outbound message: %w", err)
	}
	cmd, err := events.New(events.TypeSendMessage, EventSource, c.Tenant.String(), now, events.SendMessage{
		MessageID: m.ID.String(), ConversationID: c.ID.String(), TenantID: c.Tenant.String(), Channel: c.Channel,
		ChannelAccountID: c.ChannelAccountID.String(), ThreadKey: c.ThreadKey, To: cu.to, InReplyTo: cu.inReplyTo,
		Text: d.text, HTML: d.html, Subject: d.subject, CC: d.cc, AuthorID: d.author, ReplyTo: d.replyTo, Attachments: d.attachments,
		Automatic: d.automatic, Choices: d.choices,
	})
	if err != nil {
		return Message{}, outbox.Record{}, err
	}
	cmd.Subject = c.ID.String()
	return m, outbox.Record{Topic: events.TopicOutbound(c.Channel), Key: c.EventKey(), Event: cmd}, nil
}
