package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Notification is something a user was told (GET /v1/me/notifications).
type Notification struct {
	ID             uuid.UUID         `json:"id"`
	UserID         uuid.UUID         `json:"-"`
	Kind           domain.NoticeKind `json:"kind"`
	ConversationID uuid.UUID         `json:"conversation_id"`
	Actor          events.Actor      `json:"actor"`
	// Data are the action's own ids (help_request_id, ...), when any.
	Data      json.RawMessage `json:"data,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	ReadAt    *time.Time      `json:"read_at"`
}

// Position is where the notification stands in a list.
func (n Notification) Position() Position { return Position{At: n.CreatedAt, ID: n.ID} }

// Recipient is a user a notification may go to.
type Recipient struct {
	Principal domain.Principal
	Email     string
	// EmailWhenOffline is the user's preference.
	EmailWhenOffline bool
}

// NotificationRecipients loads the enabled users of tenant among ids, or
// all of them when all is true, with their preferences.
func (s *Store) NotificationRecipients(ctx context.Context, tenant uuid.UUID, ids []uuid.UUID, all bool) ([]Recipient, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id::text, u.role, u.permissions, u.email, coalesce(np.email_when_offline, true),
			coalesce((SELECT array_agg(q.queue_id::text) FROM inbox.user_queues q WHERE q.user_id = u.id), '{}')
		FROM inbox.users u LEFT JOIN inbox.notification_preferences np ON np.user_id = u.id
		WHERE u.tenant_id = $1 AND u.disabled_at IS NULL AND ($3 OR u.id = ANY($2))
		ORDER BY u.id`, tenant, ids, all)
	if err != nil {
		return nil, fmt.Errorf("load the users to notify: %w", err)
	}
	var out []Recipient
	for rows.Next() {
		var r Recipient
		var role string
		var perms, queues []string
		if err := rows.Scan(&r.Principal.UserID, &role, &perms, &r.Email, &r.EmailWhenOffline, &queues); err != nil {
			return nil, fmt.Errorf("load the users to notify: %w", err)
		}
		r.Principal.Tenant, r.Principal.Role, r.Principal.Permissions, r.Principal.Queues = tenant.String(), domain.Role(role), toPermissions(perms), queues
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load the users to notify: %w", err)
	}
	return out, nil
}

// NewNotification is a notification to store.
type NewNotification struct {
	Tenant uuid.UUID
	// EventID is the conversation event it comes from: a notification is
	// stored once per (event, user).
	EventID string
	Notification
	// Conversation is {id, queue_id, assignee_ids}, for the stream.
	Conversation json.RawMessage
	// Key is the record key of the conversation's events.
	Key []byte
}

// AddNotification stores n unless it is stored already (the event was
// delivered again), and publishes it for the user's streams. When mail is
// not nil and the user was not mailed about the conversation after
// mailCutoff, mail is sent too, from the tenant's notification mailbox
// (none: the operator's SMTP). It reports whether n was new and whether a
// mail went.
func (s *Store) AddNotification(ctx context.Context, n NewNotification, mail *events.SendMail, mailCutoff time.Time) (added, mailed bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO inbox.notifications (id, tenant_id, user_id, event_id, kind, conversation_id, actor_kind, actor_id, data, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id, user_id) DO NOTHING`,
			n.ID, n.Tenant, n.UserID, n.EventID, string(n.Kind), n.ConversationID, n.Actor.Kind, n.Actor.ID, nullJSON(n.Data), n.CreatedAt)
		if err != nil {
			return fmt.Errorf("store notification: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		added = true
		ev, err := events.NewWithID(n.ID.String(), events.TypeNotification, EventSource, n.Tenant.String(), n.CreatedAt, events.Notification{
			ID: n.ID.String(), RecipientID: n.UserID.String(), Kind: string(n.Kind), Actor: n.Actor, Data: n.Data,
			Conversation: n.Conversation, CreatedAt: n.CreatedAt,
		})
		if err != nil {
			return err
		}
		ev.Subject = n.ConversationID.String()
		recs := []outbox.Record{{Topic: events.TopicConversations, Key: n.Key, Event: ev}}
		if mail != nil {
			var due bool
			err := tx.QueryRow(ctx, `INSERT INTO inbox.notification_emails (user_id, conversation_id, sent_at) VALUES ($1, $2, $3)
				ON CONFLICT (user_id, conversation_id) DO UPDATE SET sent_at = EXCLUDED.sent_at
				WHERE notification_emails.sent_at <= $4
				RETURNING true`, n.UserID, n.ConversationID, n.CreatedAt, mailCutoff).Scan(&due)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("coalesce notification emails: %w", err)
			}
			if due {
				box, err := notificationMailbox(ctx, tx, n.Tenant)
				if err != nil {
					return err
				}
				m := *mail
				m.MailboxID = box
				if err := m.Validate(); err != nil {
					return fmt.Errorf("notification email: %w", err)
				}
				ev, err := events.NewWithID(m.ID, events.TypeSendMail, EventSource, n.Tenant.String(), n.CreatedAt, m)
				if err != nil {
					return err
				}
				recs = append(recs, outbox.Record{Topic: events.TopicOutbound(events.ChannelEmail), Key: []byte(m.ID), Event: ev})
				mailed = true
			}
		}
		return s.outbox.Add(ctx, tx, recs...)
	})
	return added, mailed, err
}

func nullJSON(raw json.RawMessage) any {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// notificationMailbox is the tenant's live notification mailbox, "" for
// none.
func notificationMailbox(ctx context.Context, db pgx.Tx, tenant uuid.UUID) (string, error) {
	var box string
	err := db.QueryRow(ctx, `SELECT ns.mailbox_id::text FROM inbox.notification_settings ns
		JOIN inbox.channel_accounts ca ON ca.id = ns.mailbox_id AND ca.tenant_id = ns.tenant_id AND ca.channel = 'email' AND ca.deleted_at IS NULL
		WHERE ns.tenant_id = $1`, tenant).Scan(&box)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("load the notification mailbox: %w", err)
	}
	return box, nil
}

// ListNotifications returns user's notifications, newest first, after
// the position after; only the unread ones when unread.
func (s *Store) ListNotifications(ctx context.Context, tenant, user uuid.UUID, unread bool, after *Position, limit int) ([]Notification, error) {
	args := []any{tenant, user, unread, limit}
	where := ""
	if after != nil {
		where = ` AND (created_at, id) < ($5, $6)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, kind, conversation_id, actor_kind, actor_id, data, created_at, read_at
		FROM inbox.notifications WHERE tenant_id = $1 AND user_id = $2 AND (NOT $3 OR read_at IS NULL)`+where+`
		ORDER BY created_at DESC, id DESC LIMIT $4`, args...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Notification, error) {
		var n Notification
		var kind string
		var data []byte
		err := row.Scan(&n.ID, &n.UserID, &kind, &n.ConversationID, &n.Actor.Kind, &n.Actor.ID, &data, &n.CreatedAt, &n.ReadAt)
		n.Kind, n.Data = domain.NoticeKind(kind), data
		return n, err
	})
}

// MarkNotificationsRead marks user's notifications ids, or all of them,
// read at now; ids of others are ignored. It returns how many changed.
func (s *Store) MarkNotificationsRead(ctx context.Context, tenant, user uuid.UUID, ids []uuid.UUID, all bool, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE inbox.notifications SET read_at = $5
		WHERE tenant_id = $1 AND user_id = $2 AND read_at IS NULL AND ($4 OR id = ANY($3))`, tenant, user, ids, all, now)
	if err != nil {
		return 0, fmt.Errorf("mark notifications read: %w", err)
	}
	return tag.RowsAffected(), nil
}

// NotificationPreferences are a user's choices.
type NotificationPreferences struct {
	// EmailWhenOffline: mail the user what they are told while they are
	// not connected.
	EmailWhenOffline bool `json:"email_when_offline"`
}

// GetNotificationPreferences returns user's preferences, the defaults
// when they never set them.
func (s *Store) GetNotificationPreferences(ctx context.Context, user uuid.UUID) (NotificationPreferences, error) {
	p := NotificationPreferences{EmailWhenOffline: true}
	err := s.pool.QueryRow(ctx, `SELECT email_when_offline FROM inbox.notification_preferences WHERE user_id = $1`, user).Scan(&p.EmailWhenOffline)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("load notification preferences: %w", err)
	}
	return p, nil
}

// PutNotificationPreferences replaces user's preferences.
func (s *Store) PutNotificationPreferences(ctx context.Context, user uuid.UUID, p NotificationPreferences, now time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO inbox.notification_preferences (user_id, email_when_offline, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET email_when_offline = EXCLUDED.email_when_offline, updated_at = EXCLUDED.updated_at`, user, p.EmailWhenOffline, now)
	if err != nil {
		return fmt.Errorf("save notification preferences: %w", err)
	}
	return nil
}

// NotificationSettings are a tenant's.
type NotificationSettings struct {
	// MailboxID is the mailbox that sends notification emails; nil means
	// the operator's SMTP setting of the email connector.
	MailboxID *uuid.UUID `json:"mailbox_id"`
}

// GetNotificationSettings returns the tenant's settings; a mailbox
// deleted since is none.
func (s *Store) GetNotificationSettings(ctx context.Context, tenant uuid.UUID) (NotificationSettings, error) {
	var out NotificationSettings
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		box, err := notificationMailbox(ctx, tx, tenant)
		if err != nil || box == "" {
			return err
		}
		id, err := uuid.Parse(box)
		out.MailboxID = &id
		return err
	})
	return out, err
}

// PutNotificationSettings replaces the tenant's settings; the mailbox
// must be a live mailbox of the tenant.
func (s *Store) PutNotificationSettings(ctx context.Context, tenant uuid.UUID, in NotificationSettings, now time.Time) error {
	return s.InTx(ctx, func(tx pgx.Tx) error {
		if in.MailboxID != nil {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM inbox.channel_accounts
				WHERE id = $1 AND tenant_id = $2 AND channel = 'email' AND deleted_at IS NULL`, *in.MailboxID, tenant).Scan(&n); err != nil {
				return fmt.Errorf("check the notification mailbox: %w", err)
			}
			if n == 0 {
				return domain.Invalid("mailbox_id", "is not a mailbox of this tenant")
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO inbox.notification_settings (tenant_id, mailbox_id, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (tenant_id) DO UPDATE SET mailbox_id = EXCLUDED.mailbox_id, updated_at = EXCLUDED.updated_at`, tenant, in.MailboxID, now)
		if err != nil {
			return fmt.Errorf("save notification settings: %w", err)
		}
		return nil
	})
}
