package inbox

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/language"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/password"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Tenant, APIToken, ChatChannel, Queue and User are what the admin
// operations create; UserSpec describes a user.
type (
	Tenant      = store.Tenant
	APIToken    = store.APIToken
	ChatChannel = store.ChatChannel
	Queue       = store.Queue
	User        = store.User
	UserSpec    = store.UserSpec
)

// Errors of the admin operations that are the caller's to fix.
var (
	// ErrTenantNotFound: the tenant named does not exist.
	ErrTenantNotFound = errors.New("tenant not found")
	// ErrInvalidName: a name is empty or too long.
	ErrInvalidName = errors.New("invalid name")
)

// FieldError is a refused field of a user: which, and why.
type FieldError = domain.FieldError

// Admin performs the bootstrap operations behind `switchboard admin`: they
// run before any user or token exists, straight against the database.
type Admin struct {
	store *store.Store
	now   func() time.Time
}

// NewAdmin migrates the inbox schema (the admin may run before the service
// ever started) and returns the admin operations; secrets they make
// (chat channels') are sealed under keys.
func NewAdmin(ctx context.Context, pool *pgxpool.Pool, keys *seal.Keyring, now func() time.Time) (*Admin, error) {
	if keys == nil {
		return nil, errors.New("inbox admin: no keyring given: secrets are sealed under one")
	}
	s := store.New(pool, keys)
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	return &Admin{store: s, now: now}, nil
}

// Bootstrap is a new tenant with its first API token and chat channel,
// and its first admin user when one was asked for.
type Bootstrap struct {
	Tenant      Tenant      `json:"tenant"`
	APIToken    APIToken    `json:"api_token"`
	ChatChannel ChatChannel `json:"chat_channel"`
	AdminUser   *User       `json:"admin_user,omitempty"`
}

// FirstAdmin is a new tenant's first admin user, who logs in to the web
// console and creates the others.
type FirstAdmin struct {
	Email    string
	Name     string
	Password string
}

func checkName(what, name string) error {
	if n := len(strings.TrimSpace(name)); n == 0 || len(name) > 200 {
		return fmt.Errorf("%w: the %s name must be 1 to 200 characters, got %q", ErrInvalidName, what, name)
	}
	return nil
}

// CreateTenant creates a tenant, an API token and a chat channel in one
// transaction.
func (a *Admin) CreateTenant(ctx context.Context, name string) (Bootstrap, error) {
	return a.CreateTenantWithAdmin(ctx, name, nil)
}

// CreateTenantWithAdmin is CreateTenant and, unless admin is nil, the
// tenant's first admin user, created as POST /v1/admin/users creates
// users, in the same transaction. A refused user is a *FieldError naming
// email, name or password.
func (a *Admin) CreateTenantWithAdmin(ctx context.Context, name string, admin *FirstAdmin) (Bootstrap, error) {
	if err := checkName("tenant", name); err != nil {
		return Bootstrap{}, err
	}
	var spec UserSpec
	if admin != nil {
		spec = UserSpec{Email: admin.Email, Name: admin.Name, Role: domain.RoleAdmin, Password: admin.Password}
		if spec.Password == "" {
			return Bootstrap{}, domain.Invalid("password", "is required: the first admin logs in to the console with it")
		}
		if err := spec.Validate(language.Known, password.Policy{}); err != nil {
			return Bootstrap{}, err
		}
	}
	var b Bootstrap
	err := a.store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if b.Tenant, err = a.store.CreateTenant(ctx, tx, name); err != nil {
			return err
		}
		if b.APIToken, err = a.store.CreateAPIToken(ctx, tx, b.Tenant.ID, "bootstrap"); err != nil {
			return err
		}
		if b.ChatChannel, err = a.store.CreateChatChannel(ctx, tx, b.Tenant.ID, "chat", a.now()); err != nil {
			return err
		}
		if admin == nil {
			return nil
		}
		u, err := a.store.CreateUser(ctx, tx, b.Tenant.ID, spec, a.now())
		b.AdminUser = &u
		return err
	})
	return b, err
}

// CreateAPIToken creates another API token for a tenant.
func (a *Admin) CreateAPIToken(ctx context.Context, tenant uuid.UUID, name string) (APIToken, error) {
	if err := checkName("token", name); err != nil {
		return APIToken{}, err
	}
	var t APIToken
	err := a.store.InTx(ctx, func(tx pgx.Tx) error {
		if err := a.tenantExists(ctx, tx, tenant); err != nil {
			return err
		}
		var err error
		t, err = a.store.CreateAPIToken(ctx, tx, tenant, name)
		return err
	})
	return t, err
}

// CreateChatChannel creates another chat channel for a tenant.
func (a *Admin) CreateChatChannel(ctx context.Context, tenant uuid.UUID, name string) (ChatChannel, error) {
	if err := checkName("chat channel", name); err != nil {
		return ChatChannel{}, err
	}
	var c ChatChannel
	err := a.store.InTx(ctx, func(tx pgx.Tx) error {
		if err := a.tenantExists(ctx, tx, tenant); err != nil {
			return err
		}
		var err error
		c, err = a.store.CreateChatChannel(ctx, tx, tenant, name, a.now())
		return err
	})
	return c, err
}

func (a *Admin) tenantExists(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	err := a.store.TenantExists(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrTenantNotFound, id)
	}
	return err
}

// CreateQueue creates a queue of a tenant.
func (a *Admin) CreateQueue(ctx context.Context, tenant uuid.UUID, name string) (Queue, error) {
	var q Queue
	err := a.store.InTx(ctx, func(tx pgx.Tx) error {
		if err := a.tenantExists(ctx, tx, tenant); err != nil {
			return err
		}
		var err error
		q, err = a.store.CreateQueue(ctx, tx, tenant, name, a.now())
		return err
	})
	return q, err
}

// CreateUser creates a user of a tenant.
func (a *Admin) CreateUser(ctx context.Context, tenant uuid.UUID, spec UserSpec) (User, error) {
	// The bootstrap knows no flags: the default password policy.
	if err := spec.Validate(language.Known, password.Policy{}); err != nil {
		return User{}, err
	}
	var u User
	err := a.store.InTx(ctx, func(tx pgx.Tx) error {
		if err := a.tenantExists(ctx, tx, tenant); err != nil {
			return err
		}
		var err error
		u, err = a.store.CreateUser(ctx, tx, tenant, spec, a.now())
		return err
	})
	return u, err
}

// Resealed counts the secrets ResealSecrets sealed again, by where they
// are; Announced counts the configuration it announced.
type (
	Resealed  = store.Resealed
	Announced = store.Announced
)

// ResealSecrets seals every stored secret (channel accounts' and
// translator API keys) under the keyring's active key, those in clear
// included, and announces the configuration through the outbox: a
// running inbox relays it, and the connectors get the secrets as they are
// now sealed. Secrets already under the active key are left alone, so
// running it again changes nothing. The keyring must hold every key a
// secret is sealed under.
func (a *Admin) ResealSecrets(ctx context.Context) (Resealed, Announced, error) {
	return a.store.ResealSecrets(ctx, a.now())
}
