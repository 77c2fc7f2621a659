package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// ChatChannel is a newly created chat channel with its signing secret.
type ChatChannel struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Secret string    `json:"secret"`
}

// CreateChatChannel creates a chat channel of tenant, without an outbound
// endpoint, and announces it on the config topic, through the outbox, in
// the same transaction.
func (s *Store) CreateChatChannel(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (ChatChannel, error) {
	secret, err := NewChatSecret(false)
	if err != nil {
		return ChatChannel{}, err
	}
	c, err := s.CreateChatChannelFrom(ctx, tx, tenant, ChatChannelSpec{Name: name, Secrets: []string{secret}}, now)
	if err != nil {
		return ChatChannel{}, fmt.Errorf("create chat channel: %w", err)
	}
	return ChatChannel{ID: c.ID, Name: name, Secret: secret}, nil
}

// Announced counts what AnnounceConfig published.
type Announced struct {
	ChatChannels, Mailboxes, SMSAccounts int
	// Automation counts waiting messages, tenants' automation settings and
	// queues.
	Automation int
	// Sealed counts the secrets found in clear (written by a version
	// that did not seal them) and sealed before anything was announced.
	Sealed int
}

// AnnounceConfig publishes, through the outbox, the current state of every
// configuration entity the connectors and the scheduler need: chat
// channels, mailboxes, SMS accounts, and the automation settings (waiting
// messages, tenants' settings, queues).
// The inbox does it at start, so that their views converge even when the
// config topic lost entries (an embedded broker's data directory removed,
// a topic recreated). Consumers treat entries as upserts, so the
// repetition is harmless. Secrets still in clear are sealed first, in the
// same transaction: nothing is announced in clear.
func (s *Store) AnnounceConfig(ctx context.Context, now time.Time) (Announced, error) {
	var n Announced
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		sealed, err := s.sealSecrets(ctx, tx, false)
		if err != nil {
			return err
		}
		if n, err = s.announceConfig(ctx, tx, now); err != nil {
			return err
		}
		n.Sealed = sealed.Total()
		return nil
	})
	return n, err
}

// announceConfig adds the records of AnnounceConfig to the outbox in tx.
func (s *Store) announceConfig(ctx context.Context, tx pgx.Tx, now time.Time) (Announced, error) {
	recs, err := chatChannelKind.announce(ctx, tx, now)
	if err != nil {
		return Announced{}, err
	}
	mailboxes, err := mailboxKind.announce(ctx, tx, now)
	if err != nil {
		return Announced{}, err
	}
	sms, err := smsAccountKind.announce(ctx, tx, now)
	if err != nil {
		return Announced{}, err
	}
	automation, err := announceAutomation(ctx, tx, now)
	if err != nil {
		return Announced{}, err
	}
	n := Announced{ChatChannels: len(recs), Mailboxes: len(mailboxes), SMSAccounts: len(sms), Automation: len(automation)}
	recs = append(append(append(recs, mailboxes...), sms...), automation...)
	return n, s.outbox.Add(ctx, tx, recs...)
}
