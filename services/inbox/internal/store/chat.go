package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Chat channels are channel accounts of the chat channel: a tenant's chat
// front end or bot platform, which posts its customers' messages to the
// channel's webhook signed with the channel's inbound secret, and
// receives agents' replies, bot commands and state changes at its
// outbound endpoint, signed with the outbound secret. Both secrets are
// stored and published sealed for the chat connector, which signs and
// verifies with them (docs/adr/0022), and shown once: by the answer that
// made them.

// ChatOutboundSecretPrefix starts an outbound signing secret, as
// ChatSecretPrefix starts an inbound one.
const ChatOutboundSecretPrefix = "sbwo_"

// MaxChatSecrets is how many secrets of a kind a chat channel holds: the
// current one, and the one a rotation keeps valid until it is finished.
const MaxChatSecrets = 2

// ChatChannelSpec is what defines a chat channel, secrets included.
type ChatChannelSpec struct {
	Name string
	// Secrets verify the webhooks: the current one first, then the one
	// being rotated out.
	Secrets []string
	// Outbound is where deliveries go, its secrets included; nil when the
	// tenant set no endpoint.
	Outbound *events.ChatOutbound
}

// chatSettings is the settings column of a chat channel: the spec but its
// name.
type chatSettings struct {
	Secrets  []string             `json:"secrets"`
	Outbound *events.ChatOutbound `json:"outbound,omitempty"`
}

func (s ChatChannelSpec) settings() chatSettings {
	return chatSettings{Secrets: orEmpty(s.Secrets), Outbound: s.Outbound}
}

func (st chatSettings) spec(name string) ChatChannelSpec {
	return ChatChannelSpec{Name: name, Secrets: st.Secrets, Outbound: st.Outbound}
}

func (s ChatChannelSpec) accountName() string { return s.Name }

// withoutSecrets is what a deleted channel keeps: its name.
func (s ChatChannelSpec) withoutSecrets() ChatChannelSpec {
	return ChatChannelSpec{Name: s.Name}
}

// event announces the channel, secrets included (sealed): the chat
// connector verifies webhooks and signs deliveries with them.
func (s ChatChannelSpec) event(tenant, id uuid.UUID, deleted bool) any {
	c := events.ChatChannel{ID: id.String(), TenantID: tenant.String(), Name: s.Name, Secrets: orEmpty(s.Secrets), Deleted: deleted}
	if s.Outbound != nil {
		o := *s.Outbound
		o.Events, o.Secrets = slices.Clone(o.Events), slices.Clone(o.Secrets)
		c.Outbound = &o
	}
	return c
}

// Validate checks a chat channel spec; the error names the field as the
// API's body spells it ("outbound.events[1]"). Whether the outbound URL
// may be called is the caller's to check: it knows the operator's
// allow-list.
func (s ChatChannelSpec) Validate() error {
	if err := CheckName("name", s.Name); err != nil {
		return err
	}
	if !textOK(s.Name) {
		return domain.Invalid("name", "must be valid UTF-8 without control characters")
	}
	if len(s.Secrets) == 0 || len(s.Secrets) > MaxChatSecrets || slices.Contains(s.Secrets, "") {
		return fmt.Errorf("chat channel %q: %d inbound secrets, want 1 or 2 that are not empty", s.Name, len(s.Secrets))
	}
	if s.Outbound == nil {
		return nil
	}
	if err := s.Outbound.Validate(); err != nil {
		var fe *events.FieldError
		if !errors.As(err, &fe) || fe.Field == "secrets" {
			return fmt.Errorf("chat channel %q: outbound: %w", s.Name, err)
		}
		return domain.Invalid("outbound."+fe.Field, fe.Reason)
	}
	if slices.Contains(s.Outbound.Secrets, "") {
		return fmt.Errorf("chat channel %q: an outbound secret is empty", s.Name)
	}
	for i, e := range s.Outbound.Events {
		if slices.Contains(s.Outbound.Events[:i], e) {
			return domain.Invalid(fmt.Sprintf("outbound.events[%d]", i), "is listed twice")
		}
	}
	return nil
}

// ChatChannelInfo is a chat channel as the API shows it. Secrets are in
// the answer that made them only; otherwise the flags say which are set.
type ChatChannelInfo struct {
	ID   uuid.UUID `json:"id"`
	Name string    `json:"name"`
	// WebhookPath receives the customers' messages; StatusWebhookPath
	// the delivery statuses of replies.
	WebhookPath       string `json:"webhook_path"`
	StatusWebhookPath string `json:"status_webhook_path"`
	// InboundSecret is the secret this answer made, if any.
	InboundSecret    string `json:"inbound_secret,omitempty"`
	InboundSecretSet bool   `json:"inbound_secret_set"`
	// PreviousInboundSecretSet: a rotation keeps the previous secret
	// valid until it is finished.
	PreviousInboundSecretSet bool              `json:"previous_inbound_secret_set"`
	Outbound                 *ChatOutboundInfo `json:"outbound"`
	CreatedAt                time.Time         `json:"created_at"`
}

// ChatOutboundInfo is a chat channel's endpoint as the API shows it.
type ChatOutboundInfo struct {
	URL      string   `json:"url"`
	Events   []string `json:"events"`
	Disabled bool     `json:"disabled"`
	// Secret is the signing secret this answer made, if any.
	Secret    string `json:"secret,omitempty"`
	SecretSet bool   `json:"secret_set"`
	// PreviousSecretSet: a rotation signs with the previous secret too
	// until it is finished.
	PreviousSecretSet bool `json:"previous_secret_set"`
}

// ChatWebhookPath and ChatStatusWebhookPath are where the chat connector
// receives a channel's messages and delivery statuses.
func ChatWebhookPath(id uuid.UUID) string { return "/v1/webhooks/chat/" + id.String() + "/messages" }

// ChatStatusWebhookPath: see ChatWebhookPath.
func ChatStatusWebhookPath(id uuid.UUID) string {
	return "/v1/webhooks/chat/" + id.String() + "/statuses"
}

// Info is the channel as the API shows it, without secrets.
func (s ChatChannelSpec) Info(id uuid.UUID, createdAt time.Time) ChatChannelInfo {
	c := ChatChannelInfo{ID: id, Name: s.Name, WebhookPath: ChatWebhookPath(id), StatusWebhookPath: ChatStatusWebhookPath(id),
		InboundSecretSet: len(s.Secrets) > 0, PreviousInboundSecretSet: len(s.Secrets) > 1, CreatedAt: createdAt}
	if o := s.Outbound; o != nil {
		c.Outbound = &ChatOutboundInfo{URL: o.URL, Events: slices.Clone(orEmpty(o.Events)), Disabled: o.Disabled,
			SecretSet: len(o.Secrets) > 0, PreviousSecretSet: len(o.Secrets) > 1}
	}
	return c
}

// chatChannelKind is the chat channel's accounts.
var chatChannelKind = accountKind[ChatChannelSpec, chatSettings, ChatChannelInfo]{channel: "chat", noun: "chat channel", plural: "chat channels",
	configKind: events.KindChatChannel, eventType: events.TypeChatChannel,
	secrets: func(s *ChatChannelSpec) []seal.Field {
		// Lists of its own: the caller's spec keeps its secrets in clear
		// (CreateChatChannelFrom shows them).
		s.Secrets = slices.Clone(s.Secrets)
		if s.Outbound != nil {
			o := *s.Outbound
			o.Secrets = slices.Clone(o.Secrets)
			s.Outbound = &o
		}
		return events.ChatSecretFields(s.Secrets, s.Outbound)
	}}

// NewChatSecret makes a secret: inbound (webhooks) or outbound
// (deliveries).
func NewChatSecret(outbound bool) (string, error) {
	if outbound {
		return RandomSecret(ChatOutboundSecretPrefix)
	}
	return RandomSecret(ChatSecretPrefix)
}

// CreateChatChannelFrom creates a chat channel of tenant from spec and
// announces it to the chat connector. The answer shows the secrets spec
// holds, this once.
func (s *Store) CreateChatChannelFrom(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec ChatChannelSpec, now time.Time) (ChatChannelInfo, error) {
	c, err := chatChannelKind.create(ctx, s, tx, tenant, spec, now)
	if err != nil {
		return ChatChannelInfo{}, err
	}
	c.InboundSecret = spec.Secrets[0]
	if spec.Outbound != nil {
		c.Outbound.Secret = spec.Outbound.Secrets[0]
	}
	return c, nil
}

// ListChatChannels returns up to limit chat channels of tenant after the
// position, oldest first; deleted ones are gone.
func (s *Store) ListChatChannels(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]ChatChannelInfo, error) {
	return chatChannelKind.list(ctx, s.pool, tenant, after, limit)
}

// GetChatChannel returns a chat channel of tenant.
func (s *Store) GetChatChannel(ctx context.Context, tenant, id uuid.UUID) (ChatChannelInfo, error) {
	return chatChannelKind.get(ctx, s.pool, tenant, id)
}

// UpdateChatChannel changes a chat channel of tenant, its row locked
// meanwhile: fn changes its spec, secrets included (what fn leaves keeps
// its value) or refuses the change, then the spec is validated, written
// and announced. The answer shows the secrets fn made (newInbound,
// newOutbound: "" for none), this once.
func (s *Store) UpdateChatChannel(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time,
	fn func(spec *ChatChannelSpec) (newInbound, newOutbound string, err error)) (ChatChannelInfo, error) {
	var inbound, outbound string
	c, err := chatChannelKind.update(ctx, s, tx, tenant, id, now, func(spec *ChatChannelSpec) error {
		// fn may change the lists in place.
		spec.Secrets = slices.Clone(spec.Secrets)
		if spec.Outbound != nil {
			o := *spec.Outbound
			o.Events, o.Secrets = slices.Clone(o.Events), slices.Clone(o.Secrets)
			spec.Outbound = &o
		}
		var err error
		inbound, outbound, err = fn(spec)
		return err
	})
	if err != nil {
		return ChatChannelInfo{}, err
	}
	c.InboundSecret = inbound
	if c.Outbound != nil {
		c.Outbound.Secret = outbound
	}
	return c, nil
}

// DeleteChatChannel deletes a chat channel of tenant and tells the chat
// connector to refuse its webhooks and deliver nothing more. The row
// stays, marked deleted, for its conversations refer to it; its secrets
// and endpoint are dropped.
func (s *Store) DeleteChatChannel(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	return chatChannelKind.remove(ctx, s, tx, tenant, id, now)
}
