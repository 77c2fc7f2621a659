package store

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/password"
)

// Queue is a team conversations are routed to.
type Queue struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// configRecord is a configuration entity for sb.config.v1.
func configRecord(kind, typ string, tenant uuid.UUID, id uuid.UUID, data any, now time.Time) (outbox.Record, error) {
	ev, err := events.New(typ, EventSource, tenant.String(), now, data)
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Topic: events.TopicConfig, Key: events.ConfigKey(kind, id.String()), Event: ev}, nil
}

// uniqueViolation reports whether err is a unique constraint's.
func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// CheckName validates the name of a queue, skill, tag list, user, waiting
// message or channel account. NUL is refused because PostgreSQL text
// cannot hold it, and it would otherwise surface as a server error.
func CheckName(field, name string) error {
	if n := len(strings.TrimSpace(name)); n == 0 || len(name) > 200 {
		return domain.Invalid(field, "must be 1 to 200 bytes, not blank")
	}
	if strings.ContainsRune(name, 0) {
		return domain.Invalid(field, "must not contain NUL")
	}
	return nil
}

// CreateQueue creates a queue of tenant and announces it to routing.
func (s *Store) CreateQueue(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (Queue, error) {
	if err := CheckName("name", name); err != nil {
		return Queue{}, err
	}
	q := Queue{ID: uuid.New(), Name: name, CreatedAt: now}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.queues (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)`, q.ID, tenant, name, now)
	if uniqueViolation(err) {
		return Queue{}, domain.Invalid("name", "another queue has this name")
	}
	if err != nil {
		return Queue{}, fmt.Errorf("create queue: %w", err)
	}
	rec, err := configRecord("queue", events.TypeQueue, tenant, q.ID, events.Queue{ID: q.ID.String(), TenantID: tenant.String(), Name: name}, now)
	if err != nil {
		return Queue{}, err
	}
	return q, s.outbox.Add(ctx, tx, rec)
}

// UserSpec is what defines a user.
type UserSpec struct {
	Email       string
	Name        string
	Role        domain.Role
	Permissions []domain.Permission
	Languages   []string
	Capacity    int
	QueueIDs    []uuid.UUID
	SkillIDs    []uuid.UUID
	// Password, when set, lets the user log in.
	Password string
}

// Validate checks a user spec; languages are checked by validLanguage, a
// new password by passwords.
func (u UserSpec) Validate(validLanguage func(string) bool, passwords password.Policy) error {
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email || len(u.Email) > 320 {
		return domain.Invalid("email", "must be a plain email address")
	}
	if err := CheckName("name", u.Name); err != nil {
		return err
	}
	if !u.Role.Valid() {
		return domain.Invalid("role", "must be agent, supervisor or admin")
	}
	for _, p := range u.Permissions {
		if !p.Valid() {
			return domain.Invalid("permissions", fmt.Sprintf("%q is not a permission", p))
		}
	}
	for _, l := range u.Languages {
		if !validLanguage(l) {
			return domain.Invalid("languages", fmt.Sprintf("%q is not an ISO 639-1 code", l))
		}
	}
	if u.Capacity < 0 || u.Capacity > 100 {
		return domain.Invalid("capacity", "must be from 0 to 100")
	}
	if u.Password != "" {
		if err := passwords.Check(u.Password); err != nil {
			return domain.Invalid("password", err.Error())
		}
	}
	return nil
}

// User is a user as the API shows it; never the password.
type User struct {
	ID          uuid.UUID           `json:"id"`
	Email       string              `json:"email"`
	Name        string              `json:"name"`
	Role        domain.Role         `json:"role"`
	Permissions []domain.Permission `json:"permissions"`
	Languages   []string            `json:"languages"`
	Capacity    int                 `json:"capacity"`
	QueueIDs    []uuid.UUID         `json:"queue_ids"`
	SkillIDs    []uuid.UUID         `json:"skill_ids"`
	CanLogIn    bool                `json:"can_log_in"`
	Disabled    bool                `json:"disabled"`
	CreatedAt   time.Time           `json:"created_at"`
}

// CreateUser creates a user of tenant, with its queues and skills, and
// announces it to routing.
func (s *Store) CreateUser(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, u UserSpec, now time.Time) (User, error) {
	var hash *string
	if u.Password != "" {
		h, err := password.Hash(u.Password)
		if err != nil {
			return User{}, err
		}
		hash = &h
	}
	if u.Capacity == 0 {
		u.Capacity = 5
	}
	perms := make([]string, len(u.Permissions))
	for i, p := range u.Permissions {
		perms[i] = string(p)
	}
	if u.Languages == nil {
		u.Languages = []string{}
	}
	out := User{ID: uuid.New(), Email: u.Email, Name: u.Name, Role: u.Role, Permissions: u.Permissions, Languages: u.Languages,
		Capacity: u.Capacity, QueueIDs: u.QueueIDs, SkillIDs: u.SkillIDs, CanLogIn: hash != nil, CreatedAt: now}
	if out.Permissions == nil {
		out.Permissions = []domain.Permission{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.users (id, tenant_id, email, name, role, permissions, languages, capacity, password_hash, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
		out.ID, tenant, u.Email, u.Name, string(u.Role), perms, u.Languages, u.Capacity, hash, now)
	if uniqueViolation(err) {
		return User{}, domain.Invalid("email", "another user of this tenant has this email")
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if err := s.setMemberships(ctx, tx, tenant, out.ID, u.QueueIDs, u.SkillIDs); err != nil {
		return User{}, err
	}
	if out.QueueIDs == nil {
		out.QueueIDs = []uuid.UUID{}
	}
	if out.SkillIDs == nil {
		out.SkillIDs = []uuid.UUID{}
	}
	rec, err := userRecord(tenant, out, now)
	if err != nil {
		return User{}, err
	}
	return out, s.outbox.Add(ctx, tx, rec)
}

// setMemberships replaces a user's queues and skills, which must be the
// tenant's.
func (s *Store) setMemberships(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID, queues, skills []uuid.UUID) error {
	for i, q := range queues {
		if err := QueueInTenant(ctx, tx, tenant, q); err != nil {
			return domain.Invalid(fmt.Sprintf("queue_ids[%d]", i), "is not a queue of this tenant")
		}
	}
	for i, k := range skills {
		if err := SkillInTenant(ctx, tx, tenant, k); err != nil {
			return domain.Invalid(fmt.Sprintf("skill_ids[%d]", i), "is not a skill of this tenant")
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM inbox.user_queues WHERE user_id = $1`, user); err != nil {
		return fmt.Errorf("set queues: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.user_queues (user_id, queue_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`, user, queues); err != nil {
		return fmt.Errorf("set queues: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM inbox.user_skills WHERE user_id = $1`, user); err != nil {
		return fmt.Errorf("set skills: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.user_skills (user_id, skill_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`, user, skills); err != nil {
		return fmt.Errorf("set skills: %w", err)
	}
	return nil
}

// userRecord announces a user to routing, without credentials.
func userRecord(tenant uuid.UUID, u User, now time.Time) (outbox.Record, error) {
	str := func(ids []uuid.UUID) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = id.String()
		}
		return out
	}
	perms := make([]string, len(u.Permissions))
	for i, p := range u.Permissions {
		perms[i] = string(p)
	}
	slices.Sort(perms)
	return configRecord("user", events.TypeUser, tenant, u.ID, events.User{ID: u.ID.String(), TenantID: tenant.String(), Name: u.Name,
		Role: string(u.Role), Permissions: perms, Languages: u.Languages, Capacity: u.Capacity, QueueIDs: str(u.QueueIDs),
		SkillIDs: str(u.SkillIDs), Disabled: u.Disabled}, now)
}
