// Package notify tells users of what awaits them ([002] "notifié"): a
// conversation someone else assigned to them, a help request they may
// answer, an expert's question or answer, a customer's answer on a
// conversation they hold.
//
// The notifier reads sb.conversations.v1 in its own consumer group, at
// least once. For each event that tells someone something, it stores one
// notification per user (unique per event and user, so that an event
// read again changes nothing) and, in the same transaction, publishes it
// through the outbox as a TypeNotification event on the same topic, which
// every replica's stream hub hands to that user's clients only. A user
// who is not connected (no fresh heartbeat in Redis: an open stream beats
// for its user) and who kept email_when_offline gets an email too, at
// most one per conversation per EmailInterval, through the email
// connector (events.SendMail).
package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// ConsumerGroup is the notifier's consumer group on sb.conversations.v1.
const ConsumerGroup = "switchboard-inbox-notify"

// Defaults of Config.
const (
	DefaultEmailInterval = 10 * time.Minute
	DefaultMaxAge        = time.Hour
)

// Config holds the notifier's settings.
type Config struct {
	// EmailInterval is the least time between two emails to a user about
	// one conversation; what happens in between is in the app only.
	EmailInterval time.Duration
	// MaxAge skips events older than this: a new consumer group reads the
	// topic from its start, and nobody is to be told of last week.
	MaxAge time.Duration
}

// Notifier is the consumer's handler.
type Notifier struct {
	cfg      Config
	store    *store.Store
	presence *redis.Presence
	clock    retry.Clock
	log      *slog.Logger
}

// New builds a notifier.
func New(cfg Config, s *store.Store, presence *redis.Presence, clock retry.Clock, log *slog.Logger) *Notifier {
	if cfg.EmailInterval <= 0 {
		cfg.EmailInterval = DefaultEmailInterval
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	return &Notifier{cfg: cfg, store: s, presence: presence, clock: clock, log: log}
}

// conversationRef is what the notifier reads of an event's conversation;
// both event types carry these fields.
type conversationRef struct {
	ID        uuid.UUID `json:"id"`
	QueueID   *string   `json:"queue_id"`
	Assignees []string  `json:"assignee_ids"`
	Muted     bool      `json:"muted"`
}

// streamRef is the conversation as the stream hub needs it.
type streamRef struct {
	ID        uuid.UUID `json:"id"`
	QueueID   *string   `json:"queue_id"`
	Assignees []string  `json:"assignee_ids"`
}

// Handle notifies for each event of the batch. A failure is retried with
// the batch: what was already stored is recognised and not sent again.
func (n *Notifier) Handle(ctx context.Context, msgs []bus.Message) error {
	for _, m := range msgs {
		if err := n.handle(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (n *Notifier) handle(ctx context.Context, m bus.Message) error {
	ev := m.Event
	if ev.Type != events.TypeConversationChanged && ev.Type != events.TypeConversationMessage {
		return nil
	}
	now := n.clock.Now()
	if now.Sub(ev.Time) > n.cfg.MaxAge {
		return nil
	}
	tenant, err := uuid.Parse(ev.Tenant)
	if err != nil {
		return bus.Permanent(fmt.Errorf("event %s: tenant %q is not a UUID", ev.ID, ev.Tenant))
	}
	notice, actor, conv, ok, err := noticeOf(ev)
	if err != nil {
		return bus.Permanent(fmt.Errorf("event %s: %w", ev.ID, err))
	}
	if !ok {
		return nil
	}
	var candidates []store.Recipient
	if notice.HelpAnswerers {
		all, err := n.store.NotificationRecipients(ctx, tenant, nil, true)
		if err != nil {
			return err
		}
		queue := ""
		if conv.QueueID != nil {
			queue = *conv.QueueID
		}
		for _, r := range all {
			if domain.AnswersHelp(r.Principal, queue, conv.Assignees) {
				candidates = append(candidates, r)
			}
		}
	} else {
		var ids []uuid.UUID
		for _, u := range notice.Users {
			if id, err := uuid.Parse(u); err == nil {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		if candidates, err = n.store.NotificationRecipients(ctx, tenant, ids, false); err != nil {
			return err
		}
	}
	byID := make(map[string]store.Recipient, len(candidates))
	ids := make([]string, 0, len(candidates))
	for _, r := range candidates {
		byID[r.Principal.UserID] = r
		ids = append(ids, r.Principal.UserID)
	}
	actorUser := ""
	if actor.Kind == "user" {
		actorUser = actor.ID
	}
	ref, err := json.Marshal(streamRef{ID: conv.ID, QueueID: conv.QueueID, Assignees: conv.Assignees})
	if err != nil {
		return fmt.Errorf("encode conversation %s: %w", conv.ID, err)
	}
	data, err := noticeData(ev)
	if err != nil {
		return bus.Permanent(fmt.Errorf("event %s: %w", ev.ID, err))
	}
	for _, u := range domain.Recipients(ids, actorUser) {
		if slices.Contains(notice.Except, u) {
			continue
		}
		r := byID[u]
		user, _ := uuid.Parse(u) // loaded from the database
		nn := store.NewNotification{Tenant: tenant, EventID: ev.ID, Conversation: ref, Key: m.Key, Notification: store.Notification{
			ID: uuid.New(), UserID: user, Kind: notice.Kind, ConversationID: conv.ID, Actor: actor, Data: data,
			CreatedAt: now.UTC().Truncate(time.Microsecond),
		}}
		var mail *events.SendMail
		if r.EmailWhenOffline && r.Email != "" && !n.connected(ctx, tenant, u) {
			mail = mailOf(nn)
			mail.To = []string{r.Email}
		}
		added, mailed, err := n.store.AddNotification(ctx, nn, mail, now.Add(-n.cfg.EmailInterval))
		if err != nil {
			return fmt.Errorf("notify user %s of event %s: %w", u, ev.ID, err)
		}
		if added {
			n.log.DebugContext(ctx, "notified", "tenant", ev.Tenant, "user_id", u, "kind", notice.Kind, "conversation", conv.ID, "emailed", mailed)
		}
	}
	return nil
}

// connected reports whether the user has a fresh heartbeat (an open
// stream on any replica beats for them, and so does the app). Presence
// that cannot be read counts as not connected: the email is the safer
// mistake.
func (n *Notifier) connected(ctx context.Context, tenant uuid.UUID, user string) bool {
	if n.presence == nil {
		return false
	}
	status, _, err := n.presence.Status(ctx, tenant.String(), user)
	if err != nil {
		n.log.WarnContext(ctx, "cannot read a user's presence; taking them as offline", "user_id", user, "error", err)
		return false
	}
	return status != redis.StatusOffline
}

// noticeOf reads who ev tells of what.
func noticeOf(ev events.Event) (n domain.Notice, actor events.Actor, conv conversationRef, ok bool, err error) {
	switch ev.Type {
	case events.TypeConversationChanged:
		var d events.ConversationChanged
		if err := ev.Decode(&d); err != nil {
			return n, actor, conv, false, err
		}
		var data domain.ActionNoticeData
		if len(d.Data) > 0 && string(d.Data) != "null" {
			// Actions whose data is no object (or whose keys have
			// other types) tell nobody; only the notified ones matter.
			if json.Unmarshal(d.Data, &data) != nil {
				data = domain.ActionNoticeData{}
			}
		}
		if n, ok = domain.NoticeOfAction(domain.Action(d.Action), data); !ok {
			return n, actor, conv, false, nil
		}
		if err := json.Unmarshal(d.Conversation, &conv); err != nil || conv.ID == uuid.Nil {
			return n, actor, conv, false, fmt.Errorf("conversation: cannot be read (%v)", err)
		}
		return n, d.Actor, conv, true, nil
	case events.TypeConversationMessage:
		var d events.ConversationMessage
		if err := ev.Decode(&d); err != nil {
			return n, actor, conv, false, err
		}
		var msg struct {
			Direction  string `json:"direction"`
			AuthorKind string `json:"author_kind"`
		}
		if err := json.Unmarshal(d.Message, &msg); err != nil {
			return n, actor, conv, false, fmt.Errorf("message: %w", err)
		}
		if msg.Direction != "inbound" || msg.AuthorKind != "" {
			return n, actor, conv, false, nil
		}
		if err := json.Unmarshal(d.Conversation, &conv); err != nil || conv.ID == uuid.Nil {
			return n, actor, conv, false, fmt.Errorf("conversation: cannot be read (%v)", err)
		}
		if n, ok = domain.NoticeOfCustomerMessage(conv.Assignees, conv.Muted); !ok {
			return n, actor, conv, false, nil
		}
		return n, events.Actor{Kind: "customer"}, conv, true, nil
	}
	return n, actor, conv, false, nil
}

// noticeData keeps the ids of the action's data that say which help
// request or question a notification is about.
func noticeData(ev events.Event) (json.RawMessage, error) {
	if ev.Type != events.TypeConversationChanged {
		return nil, nil
	}
	var d events.ConversationChanged
	if err := ev.Decode(&d); err != nil {
		return nil, err
	}
	var all map[string]any
	if json.Unmarshal(d.Data, &all) != nil {
		return nil, nil
	}
	keep := map[string]any{}
	for _, k := range []string{"help_request_id", "requester_id", "expert_question_id", "expert_id", "asker_id"} {
		if v, ok := all[k].(string); ok && v != "" {
			keep[k] = v
		}
	}
	if len(keep) == 0 {
		return nil, nil
	}
	return json.Marshal(keep)
}

// subjects are the email subjects by kind.
var subjects = map[domain.NoticeKind]string{
	domain.NoticeAssigned:        "A conversation was assigned to you",
	domain.NoticeHelpRequest:     "An agent asks for help",
	domain.NoticeExpertQuestion:  "A question awaits your answer",
	domain.NoticeExpertAnswer:    "Your question was answered",
	domain.NoticeCustomerMessage: "A customer answered",
}

// mailOf is the email of a notification, without its recipient. It
// names the conversation and nothing of its content: a notification email
// leaves the platform, the conversation stays in it.
func mailOf(n store.NewNotification) *events.SendMail {
	subject := subjects[n.Kind]
	var b strings.Builder
	fmt.Fprintf(&b, "%s.\n\nConversation: %s\n", subject, n.ConversationID)
	b.WriteString("\nOpen Switchboard to see it. You get this email because you were not connected; ")
	b.WriteString("turn these emails off in your notification settings (email_when_offline).\n")
	return &events.SendMail{
		ID: "notification-" + n.ID.String(), TenantID: n.Tenant.String(), Purpose: events.MailNotification,
		Subject: "[Switchboard] " + subject, Text: b.String(),
	}
}
