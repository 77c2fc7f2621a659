package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
)

// EventSource is the CloudEvents source of the inbox's events.
const EventSource = "switchboard/inbox"

// Prefixes make secrets recognisable in logs and by secret scanners.
const (
	TokenPrefix      = "sbt_"
	ChatSecretPrefix = "sbwh_"
)

// RandomSecret returns prefix and 256 random bits, base64url.
func RandomSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// InTx runs fn in a transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// CreateTenant creates a tenant.
func (s *Store) CreateTenant(ctx context.Context, tx pgx.Tx, name string) (Tenant, error) {
	t := Tenant{ID: uuid.New(), Name: name}
	err := tx.QueryRow(ctx, `INSERT INTO inbox.tenants (id, name) VALUES ($1, $2) RETURNING created_at`, t.ID, name).Scan(&t.CreatedAt)
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// TenantExists reports whether the tenant exists.
func (s *Store) TenantExists(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.tenants WHERE id = $1)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("find tenant: %w", err)
	}
	if !ok {
		return fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	return nil
}

// APIToken is a newly created token; the plain value is shown once.
type APIToken struct {
	ID    uuid.UUID `json:"id"`
	Name  string    `json:"name"`
	Token string    `json:"token"`
}

// CreateAPIToken creates a token for tenant.
func (s *Store) CreateAPIToken(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string) (APIToken, error) {
	token, err := RandomSecret(TokenPrefix)
	if err != nil {
		return APIToken{}, err
	}
	t := APIToken{ID: uuid.New(), Name: name, Token: token}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.api_tokens (id, tenant_id, name, token_hash) VALUES ($1, $2, $3, $4)`,
		t.ID, tenant, name, HashToken(token)); err != nil {
		return APIToken{}, fmt.Errorf("create API token: %w", err)
	}
	return t, nil
}

type chatSettings struct {
	Secrets []string `json:"secrets"`
}

// ChatChannel is a newly created chat channel with its signing secret.
type ChatChannel struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Secret string    `json:"secret"`
}

// CreateChatChannel creates a chat channel of tenant and announces it on
// the config topic, through the outbox, in the same transaction.
func (s *Store) CreateChatChannel(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (ChatChannel, error) {
	secret, err := RandomSecret(ChatSecretPrefix)
	if err != nil {
		return ChatChannel{}, err
	}
	c := ChatChannel{ID: uuid.New(), Name: name, Secret: secret}
	settings, err := json.Marshal(chatSettings{Secrets: []string{secret}})
	if err != nil {
		return ChatChannel{}, fmt.Errorf("encode chat settings: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.channel_accounts (id, tenant_id, channel, name, settings) VALUES ($1, $2, 'chat', $3, $4)`,
		c.ID, tenant, name, settings); err != nil {
		return ChatChannel{}, fmt.Errorf("create chat channel: %w", err)
	}
	rec, err := chatChannelRecord(events.ChatChannel{ID: c.ID.String(), TenantID: tenant.String(), Name: name, Secrets: []string{secret}}, now)
	if err != nil {
		return ChatChannel{}, err
	}
	if err := s.outbox.Add(ctx, tx, rec); err != nil {
		return ChatChannel{}, err
	}
	return c, nil
}

func chatChannelRecord(c events.ChatChannel, now time.Time) (outbox.Record, error) {
	ev, err := events.New(events.TypeChatChannel, EventSource, c.TenantID, now, c)
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Topic: events.TopicConfig, Key: events.ConfigKey("chat_channel", c.ID), Event: ev}, nil
}

// Announced counts what AnnounceConfig published.
type Announced struct {
	ChatChannels, Mailboxes, SMSAccounts int
	// Automation counts waiting messages, tenants' automation settings and
	// queues.
	Automation int
}

// AnnounceConfig publishes, through the outbox, the current state of every
// configuration entity the connectors and the scheduler need: chat
// channels, mailboxes, SMS accounts, and the automation settings (waiting
// messages, tenants' settings, queues).
// The inbox does it at start, so that their views converge even when the
// config topic lost entries (an embedded broker's data directory removed,
// a topic recreated). Consumers treat entries as upserts, so the
// repetition is harmless.
func (s *Store) AnnounceConfig(ctx context.Context, now time.Time) (Announced, error) {
	var n Announced
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, tenant_id, name, settings, deleted_at IS NOT NULL FROM inbox.channel_accounts WHERE channel = 'chat'`)
		if err != nil {
			return fmt.Errorf("read chat channels: %w", err)
		}
		var recs []outbox.Record
		for rows.Next() {
			var (
				id, tenant uuid.UUID
				name       string
				raw        []byte
				deleted    bool
			)
			if err := rows.Scan(&id, &tenant, &name, &raw, &deleted); err != nil {
				rows.Close()
				return fmt.Errorf("scan chat channel: %w", err)
			}
			var st chatSettings
			if err := json.Unmarshal(raw, &st); err != nil {
				rows.Close()
				return fmt.Errorf("decode settings of chat channel %s: %w", id, err)
			}
			rec, err := chatChannelRecord(events.ChatChannel{ID: id.String(), TenantID: tenant.String(), Name: name, Secrets: st.Secrets, Deleted: deleted}, now)
			if err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, rec)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read chat channels: %w", err)
		}
		mailboxes, err := mailboxKind.announce(ctx, tx, now)
		if err != nil {
			return err
		}
		sms, err := smsAccountKind.announce(ctx, tx, now)
		if err != nil {
			return err
		}
		automation, err := announceAutomation(ctx, tx, now)
		if err != nil {
			return err
		}
		n = Announced{ChatChannels: len(recs), Mailboxes: len(mailboxes), SMSAccounts: len(sms), Automation: len(automation)}
		recs = append(append(append(recs, mailboxes...), sms...), automation...)
		return s.outbox.Add(ctx, tx, recs...)
	})
	return n, err
}
