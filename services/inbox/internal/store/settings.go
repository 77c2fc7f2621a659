package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/password"
)

// This file holds what admins configure: queues, skills, users, tag lists
// and API tokens. Every function is scoped to a tenant, so that an id of
// another tenant behaves exactly like a missing one (ErrNotFound).

// rowQuerier is what both the pool and a transaction offer, so that a
// loader serves reads outside a transaction and re-reads inside one.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Skill is a competence a conversation may require of the agent it goes
// to; it has a queue's shape, so queues and skills share their code.
type Skill struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// namedKind describes a table of named entities announced to routing
// (queues, skills), so that one implementation serves both.
type namedKind struct {
	// table is the qualified table.
	table string
	// members is the membership table, memberCol its reference column.
	members, memberCol string
	// kind is the config key's kind; typ the event type.
	kind, typ string
}

var (
	queueKind = namedKind{table: "inbox.queues", members: "inbox.user_queues", memberCol: "queue_id", kind: "queue", typ: events.TypeQueue}
	skillKind = namedKind{table: "inbox.skills", members: "inbox.user_skills", memberCol: "skill_id", kind: "skill", typ: events.TypeSkill}
)

// record announces the entity; events.Skill is events.Queue. auto and
// routing are a queue's own settings, nil for skills and new or deleted
// queues.
func (k namedKind) record(tenant uuid.UUID, q Queue, auto *events.QueueAutomation, routing *events.QueueRouting, deleted bool, now time.Time) (outbox.Record, error) {
	return configRecord(k.kind, k.typ, tenant, q.ID, events.Queue{ID: q.ID.String(), TenantID: tenant.String(), Name: q.Name, Deleted: deleted,
		Automation: auto, Routing: routing}, now)
}

// queueRecord announces queue q with its current settings.
func queueRecord(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, q Queue, now time.Time) (outbox.Record, error) {
	a, err := queueAutomation(ctx, tx, tenant, q.ID)
	if err != nil {
		return outbox.Record{}, err
	}
	r, err := queueRouting(ctx, tx, tenant, q.ID)
	if err != nil {
		return outbox.Record{}, err
	}
	return queueKind.record(tenant, q, a.event(), r, false, now)
}

func (k namedKind) list(ctx context.Context, db rowQuerier, tenant uuid.UUID, after *Position, limit int) ([]Queue, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (created_at, id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := db.Query(ctx, `SELECT id, name, created_at FROM `+k.table+` WHERE tenant_id = $1`+where+`
		ORDER BY created_at, id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", k.kind, err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Queue])
}

func (k namedKind) get(ctx context.Context, db rowQuerier, tenant, id uuid.UUID) (Queue, error) {
	rows, err := db.Query(ctx, `SELECT id, name, created_at FROM `+k.table+` WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return Queue{}, fmt.Errorf("get %s: %w", k.kind, err)
	}
	q, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[Queue])
	if errors.Is(err, pgx.ErrNoRows) {
		return Queue{}, ErrNotFound
	}
	if err != nil {
		return Queue{}, fmt.Errorf("get %s: %w", k.kind, err)
	}
	return q, nil
}

func (k namedKind) create(ctx context.Context, s *Store, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (Queue, error) {
	if err := CheckName("name", name); err != nil {
		return Queue{}, err
	}
	q := Queue{ID: uuid.New(), Name: name, CreatedAt: now}
	_, err := tx.Exec(ctx, `INSERT INTO `+k.table+` (id, tenant_id, name, created_at) VALUES ($1, $2, $3, $4)`, q.ID, tenant, name, now)
	if uniqueViolation(err) {
		return Queue{}, domain.Invalid("name", "another "+k.kind+" has this name")
	}
	if err != nil {
		return Queue{}, fmt.Errorf("create %s: %w", k.kind, err)
	}
	rec, err := k.record(tenant, q, nil, nil, false, now)
	if err != nil {
		return Queue{}, err
	}
	return q, s.outbox.Add(ctx, tx, rec)
}

func (k namedKind) rename(ctx context.Context, s *Store, tx pgx.Tx, tenant, id uuid.UUID, name string, now time.Time) (Queue, error) {
	if err := CheckName("name", name); err != nil {
		return Queue{}, err
	}
	q := Queue{ID: id, Name: name}
	err := tx.QueryRow(ctx, `UPDATE `+k.table+` SET name = $3 WHERE tenant_id = $1 AND id = $2 RETURNING created_at`, tenant, id, name).Scan(&q.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Queue{}, ErrNotFound
	}
	if uniqueViolation(err) {
		return Queue{}, domain.Invalid("name", "another "+k.kind+" has this name")
	}
	if err != nil {
		return Queue{}, fmt.Errorf("rename %s: %w", k.kind, err)
	}
	var rec outbox.Record
	if k.kind == queueKind.kind {
		rec, err = queueRecord(ctx, tx, tenant, q, now)
	} else {
		rec, err = k.record(tenant, q, nil, nil, false, now)
	}
	if err != nil {
		return Queue{}, err
	}
	return q, s.outbox.Add(ctx, tx, rec)
}

// remove deletes the entity. Its members lose it (ON DELETE CASCADE), so
// each of them is announced again: routing must not keep offering work of
// a team that is gone to the people who were in it.
func (k namedKind) remove(ctx context.Context, s *Store, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	// Locking the row first keeps a concurrent membership insert (which
	// takes a key-share lock on it) from slipping past the members read.
	var name string
	err := tx.QueryRow(ctx, `SELECT name FROM `+k.table+` WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", k.kind, err)
	}
	rows, err := tx.Query(ctx, `SELECT user_id FROM `+k.members+` WHERE `+k.memberCol+` = $1`, id)
	if err != nil {
		return fmt.Errorf("read members of %s: %w", k.kind, err)
	}
	members, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("read members of %s: %w", k.kind, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+k.table+` WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
		return fmt.Errorf("delete %s: %w", k.kind, err)
	}
	rec, err := k.record(tenant, Queue{ID: id, Name: name}, nil, nil, true, now)
	if err != nil {
		return err
	}
	recs := []outbox.Record{rec}
	if len(members) > 0 {
		users, err := loadUsers(ctx, tx, `u.tenant_id = $1 AND u.id = ANY($2) ORDER BY u.id`, tenant, members)
		if err != nil {
			return err
		}
		for _, u := range users {
			rec, err := userRecord(tenant, u, now)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
	}
	return s.outbox.Add(ctx, tx, recs...)
}

// ListQueues returns up to limit queues of tenant after the position,
// oldest first.
func (s *Store) ListQueues(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]Queue, error) {
	return queueKind.list(ctx, s.pool, tenant, after, limit)
}

// GetQueue returns a queue of tenant.
func (s *Store) GetQueue(ctx context.Context, tenant, id uuid.UUID) (Queue, error) {
	return queueKind.get(ctx, s.pool, tenant, id)
}

// RenameQueue renames a queue of tenant and announces it to routing.
func (s *Store) RenameQueue(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, name string, now time.Time) (Queue, error) {
	return queueKind.rename(ctx, s, tx, tenant, id, name, now)
}

// DeleteQueue deletes a queue of tenant: its conversations lose their
// queue (ON DELETE SET NULL) and go back to the unrouted pool, its members
// leave it, and routing hears of both.
func (s *Store) DeleteQueue(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	return queueKind.remove(ctx, s, tx, tenant, id, now)
}

// CreateSkill creates a skill of tenant and announces it to routing.
func (s *Store) CreateSkill(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (Skill, error) {
	q, err := skillKind.create(ctx, s, tx, tenant, name, now)
	return Skill(q), err
}

// ListSkills returns up to limit skills of tenant after the position,
// oldest first.
func (s *Store) ListSkills(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]Skill, error) {
	qs, err := skillKind.list(ctx, s.pool, tenant, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Skill, len(qs))
	for i, q := range qs {
		out[i] = Skill(q)
	}
	return out, nil
}

// GetSkill returns a skill of tenant.
func (s *Store) GetSkill(ctx context.Context, tenant, id uuid.UUID) (Skill, error) {
	q, err := skillKind.get(ctx, s.pool, tenant, id)
	return Skill(q), err
}

// RenameSkill renames a skill of tenant and announces it to routing.
func (s *Store) RenameSkill(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, name string, now time.Time) (Skill, error) {
	q, err := skillKind.rename(ctx, s, tx, tenant, id, name, now)
	return Skill(q), err
}

// DeleteSkill deletes a skill of tenant: conversations that required it
// no longer do (ON DELETE SET NULL), its holders lose it, and routing
// hears of both.
func (s *Store) DeleteSkill(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	return skillKind.remove(ctx, s, tx, tenant, id, now)
}

// userColumns read a user as the API shows it, memberships included;
// password_hash is only tested for presence, never read.
const userColumns = `u.id, u.email, u.name, u.role, u.permissions, u.languages, u.capacity, u.password_hash IS NOT NULL,
	u.disabled_at IS NOT NULL, u.created_at,
	coalesce((SELECT array_agg(q.queue_id ORDER BY q.queue_id) FROM inbox.user_queues q WHERE q.user_id = u.id), '{}'),
	coalesce((SELECT array_agg(k.skill_id ORDER BY k.skill_id) FROM inbox.user_skills k WHERE k.user_id = u.id), '{}')`

func scanUser(row pgx.CollectableRow) (User, error) {
	var (
		u     User
		role  string
		perms []string
	)
	err := row.Scan(&u.ID, &u.Email, &u.Name, &role, &perms, &u.Languages, &u.Capacity, &u.CanLogIn, &u.Disabled, &u.CreatedAt,
		&u.QueueIDs, &u.SkillIDs)
	u.Role, u.Permissions = domain.Role(role), toPermissions(perms)
	return u, err
}

// loadUsers reads the users matching clause (a condition, then maybe an
// order and a limit).
func loadUsers(ctx context.Context, db rowQuerier, clause string, args ...any) ([]User, error) {
	rows, err := db.Query(ctx, `SELECT `+userColumns+` FROM inbox.users u WHERE `+clause, args...)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	users, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return users, nil
}

// ListUsers returns up to limit users of tenant after the position,
// oldest first, disabled ones included (they show as disabled).
func (s *Store) ListUsers(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]User, error) {
	if after == nil {
		return loadUsers(ctx, s.pool, `u.tenant_id = $1 ORDER BY u.created_at, u.id LIMIT $2`, tenant, limit)
	}
	return loadUsers(ctx, s.pool, `u.tenant_id = $1 AND (u.created_at, u.id) > ($3, $4) ORDER BY u.created_at, u.id LIMIT $2`,
		tenant, limit, after.At, after.ID)
}

// GetUser returns a user of tenant.
func (s *Store) GetUser(ctx context.Context, tenant, id uuid.UUID) (User, error) {
	users, err := loadUsers(ctx, s.pool, `u.tenant_id = $1 AND u.id = $2`, tenant, id)
	if err != nil {
		return User{}, err
	}
	if len(users) == 0 {
		return User{}, ErrNotFound
	}
	return users[0], nil
}

// lockUser reads a user of tenant inside tx and locks its row until the
// transaction ends, so that concurrent updates apply one after the other.
func lockUser(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) (User, error) {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM inbox.users WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("lock user: %w", err)
	}
	users, err := loadUsers(ctx, tx, `u.id = $1`, id)
	if err != nil {
		return User{}, err
	}
	return users[0], nil
}

// UpdateUser changes a user of tenant, its row locked meanwhile. fn
// receives the user as it is and its spec (without password); it changes
// the spec, validates it, and refuses with an error what the caller may
// not do: it sees the state the change applies to, so that a check cannot
// race a concurrent update. The spec is then written with its
// memberships and announced to routing; a non-empty password replaces the
// user's.
func (s *Store) UpdateUser(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(current User, spec *UserSpec) error) (User, error) {
	cur, err := lockUser(ctx, tx, tenant, id)
	if err != nil {
		return User{}, err
	}
	spec := UserSpec{Email: cur.Email, Name: cur.Name, Role: cur.Role, Permissions: slices.Clone(cur.Permissions), Languages: slices.Clone(cur.Languages),
		Capacity: cur.Capacity, QueueIDs: slices.Clone(cur.QueueIDs), SkillIDs: slices.Clone(cur.SkillIDs)}
	if err := fn(cur, &spec); err != nil {
		return User{}, err
	}
	var hash *string
	if spec.Password != "" {
		h, err := password.Hash(spec.Password)
		if err != nil {
			return User{}, err
		}
		hash = &h
	}
	perms := make([]string, len(spec.Permissions))
	for i, p := range spec.Permissions {
		perms[i] = string(p)
	}
	if spec.Languages == nil {
		spec.Languages = []string{}
	}
	_, err = tx.Exec(ctx, `UPDATE inbox.users SET email = $2, name = $3, role = $4, permissions = $5, languages = $6, capacity = $7,
			password_hash = coalesce($8, password_hash), updated_at = $9
		WHERE id = $1`, id, spec.Email, spec.Name, string(spec.Role), perms, spec.Languages, spec.Capacity, hash, now)
	if uniqueViolation(err) {
		return User{}, domain.Invalid("email", "another user of this tenant has this email")
	}
	if err != nil {
		return User{}, fmt.Errorf("update user: %w", err)
	}
	if err := s.setMemberships(ctx, tx, tenant, id, spec.QueueIDs, spec.SkillIDs); err != nil {
		return User{}, err
	}
	users, err := loadUsers(ctx, tx, `u.id = $1`, id)
	if err != nil {
		return User{}, err
	}
	rec, err := userRecord(tenant, users[0], now)
	if err != nil {
		return User{}, err
	}
	return users[0], s.outbox.Add(ctx, tx, rec)
}

// DisableUser disables a user of tenant: they can no longer log in or
// refresh, their open sessions are revoked so that their tokens stop
// working at once, and routing hears that they take no more work. check
// sees the user first and may refuse. Disabling a disabled user changes
// nothing but announces them again, which is harmless.
func (s *Store) DisableUser(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, check func(User) error) (User, error) {
	u, err := lockUser(ctx, tx, tenant, id)
	if err != nil {
		return User{}, err
	}
	if err := check(u); err != nil {
		return User{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox.users SET disabled_at = coalesce(disabled_at, $2), updated_at = $2 WHERE id = $1`, id, now); err != nil {
		return User{}, fmt.Errorf("disable user: %w", err)
	}
	if err := s.RevokeSessions(ctx, tx, tenant, id, now); err != nil {
		return User{}, err
	}
	u.Disabled = true
	rec, err := userRecord(tenant, u, now)
	if err != nil {
		return User{}, err
	}
	return u, s.outbox.Add(ctx, tx, rec)
}

// RevokeSessions ends every open session of a user of tenant: their access
// and refresh tokens stop working.
func (s *Store) RevokeSessions(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE inbox.sessions SET revoked_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL`,
		tenant, user, now); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	return nil
}

// Tag list limits.
const (
	MaxTagValues     = 500
	MaxTagValueBytes = 200
)

// TagList is a list of values agents pick one of to qualify a message.
type TagList struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Values []string  `json:"values"`
	// Mandatory lists must have a value on the customer's latest message
	// before an agent may reply.
	Mandatory bool      `json:"mandatory"`
	CreatedAt time.Time `json:"created_at"`
}

// TagListSpec is what defines a tag list.
type TagListSpec struct {
	Name      string
	Values    []string
	Mandatory bool
}

// Validate checks a tag list spec: a name, and 1 to 500 distinct
// non-blank values of at most 200 bytes. NUL is refused because
// PostgreSQL text cannot hold it.
func (t TagListSpec) Validate() error {
	if err := CheckName("name", t.Name); err != nil {
		return err
	}
	if len(t.Values) == 0 || len(t.Values) > MaxTagValues {
		return domain.Invalid("values", fmt.Sprintf("must hold 1 to %d values", MaxTagValues))
	}
	seen := make(map[string]bool, len(t.Values))
	for i, v := range t.Values {
		field := fmt.Sprintf("values[%d]", i)
		if strings.TrimSpace(v) == "" || len(v) > MaxTagValueBytes || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return domain.Invalid(field, fmt.Sprintf("must be 1 to %d bytes of text, not blank", MaxTagValueBytes))
		}
		if seen[v] {
			return domain.Invalid(field, "appears twice")
		}
		seen[v] = true
	}
	return nil
}

// tenantRows reads a table of entities of a tenant (tag lists, waiting
// messages), one implementation for their pages and lookups.
type tenantRows[T any] struct {
	// table is qualified; columns are read by scan; what names the
	// entities in errors.
	table, columns, what string
	scan                 pgx.RowToFunc[T]
}

// load reads the rows matching where (a condition, then maybe an order, a
// limit or FOR UPDATE).
func (r tenantRows[T]) load(ctx context.Context, db rowQuerier, where string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, `SELECT `+r.columns+` FROM `+r.table+` WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.what, err)
	}
	out, err := pgx.CollectRows(rows, r.scan)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.what, err)
	}
	return out, nil
}

// page returns up to limit rows of tenant after the position, oldest
// first.
func (r tenantRows[T]) page(ctx context.Context, db rowQuerier, tenant uuid.UUID, after *Position, limit int) ([]T, error) {
	if after == nil {
		return r.load(ctx, db, `tenant_id = $1 ORDER BY created_at, id LIMIT $2`, tenant, limit)
	}
	return r.load(ctx, db, `tenant_id = $1 AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`, tenant, limit, after.At, after.ID)
}

// one returns the row id of tenant, locked when lock is set; ErrNotFound
// when there is none.
func (r tenantRows[T]) one(ctx context.Context, db rowQuerier, tenant, id uuid.UUID, lock bool) (T, error) {
	where := `tenant_id = $1 AND id = $2`
	if lock {
		where += ` FOR UPDATE`
	}
	out, err := r.load(ctx, db, where, tenant, id)
	if err != nil {
		var zero T
		return zero, err
	}
	if len(out) == 0 {
		var zero T
		return zero, ErrNotFound
	}
	return out[0], nil
}

var tagLists = tenantRows[TagList]{table: "inbox.tag_lists", columns: `id, name, "values", mandatory, created_at`, what: "tag lists",
	scan: pgx.RowToStructByPos[TagList]}

// ListTagLists returns up to limit tag lists of tenant after the
// position, oldest first.
func (s *Store) ListTagLists(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]TagList, error) {
	return tagLists.page(ctx, s.pool, tenant, after, limit)
}

// GetTagList returns a tag list of tenant.
func (s *Store) GetTagList(ctx context.Context, tenant, id uuid.UUID) (TagList, error) {
	return tagLists.one(ctx, s.pool, tenant, id, false)
}

// CreateTagList creates a tag list of tenant.
func (s *Store) CreateTagList(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec TagListSpec, now time.Time) (TagList, error) {
	if err := spec.Validate(); err != nil {
		return TagList{}, err
	}
	t := TagList{ID: uuid.New(), Name: spec.Name, Values: spec.Values, Mandatory: spec.Mandatory, CreatedAt: now}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.tag_lists (id, tenant_id, name, "values", mandatory, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, tenant, t.Name, t.Values, t.Mandatory, now)
	if uniqueViolation(err) {
		return TagList{}, domain.Invalid("name", "another tag list has this name")
	}
	if err != nil {
		return TagList{}, fmt.Errorf("create tag list: %w", err)
	}
	return t, nil
}

// UpdateTagList changes a tag list of tenant: fn changes its spec, which
// is then validated and written. Tags already given keep their values,
// even one the list no longer offers: they record what an agent chose.
func (s *Store) UpdateTagList(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, fn func(spec *TagListSpec)) (TagList, error) {
	t, err := tagLists.one(ctx, tx, tenant, id, true)
	if err != nil {
		return TagList{}, err
	}
	spec := TagListSpec{Name: t.Name, Values: t.Values, Mandatory: t.Mandatory}
	fn(&spec)
	if err := spec.Validate(); err != nil {
		return TagList{}, err
	}
	_, err = tx.Exec(ctx, `UPDATE inbox.tag_lists SET name = $2, "values" = $3, mandatory = $4 WHERE id = $1`, id, spec.Name, spec.Values, spec.Mandatory)
	if uniqueViolation(err) {
		return TagList{}, domain.Invalid("name", "another tag list has this name")
	}
	if err != nil {
		return TagList{}, fmt.Errorf("update tag list: %w", err)
	}
	t.Name, t.Values, t.Mandatory = spec.Name, spec.Values, spec.Mandatory
	return t, nil
}

// DeleteTagList deletes a tag list of tenant. Tags given from it stay on
// messages and conversations as a record; a deleted list is no longer
// mandatory.
func (s *Store) DeleteTagList(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) error {
	tag, err := tx.Exec(ctx, `DELETE FROM inbox.tag_lists WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return fmt.Errorf("delete tag list: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// APITokenInfo is an API token as lists show it: never the token itself
// (only its hash is stored) nor the hash.
type APITokenInfo struct {
	ID          uuid.UUID           `json:"id"`
	Name        string              `json:"name"`
	Role        domain.Role         `json:"role"`
	Permissions []domain.Permission `json:"permissions"`
	CreatedAt   time.Time           `json:"created_at"`
	Revoked     bool                `json:"revoked"`
}

// IssuedAPIToken is a new API token with its value, shown this once.
type IssuedAPIToken struct {
	APITokenInfo
	Token string `json:"token"`
}

// APITokenSpec is what defines an API token.
type APITokenSpec struct {
	Name        string
	Role        domain.Role
	Permissions []domain.Permission
}

// IssueAPIToken creates an API token of tenant acting with a role and
// permissions. Only its hash is stored: the value is in the result alone.
func (s *Store) IssueAPIToken(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec APITokenSpec, now time.Time) (IssuedAPIToken, error) {
	if err := CheckName("name", spec.Name); err != nil {
		return IssuedAPIToken{}, err
	}
	if !spec.Role.Valid() {
		return IssuedAPIToken{}, domain.Invalid("role", "must be agent, supervisor or admin")
	}
	perms := make([]string, len(spec.Permissions))
	for i, p := range spec.Permissions {
		if !p.Valid() {
			return IssuedAPIToken{}, domain.Invalid("permissions", fmt.Sprintf("%q is not a permission", p))
		}
		perms[i] = string(p)
	}
	token, err := RandomSecret(TokenPrefix)
	if err != nil {
		return IssuedAPIToken{}, err
	}
	t := IssuedAPIToken{APITokenInfo: APITokenInfo{ID: uuid.New(), Name: spec.Name, Role: spec.Role, Permissions: toPermissions(perms), CreatedAt: now}, Token: token}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.api_tokens (id, tenant_id, name, token_hash, role, permissions, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.ID, tenant, spec.Name, HashToken(token), string(spec.Role), perms, now); err != nil {
		return IssuedAPIToken{}, fmt.Errorf("create API token: %w", err)
	}
	return t, nil
}

// ListAPITokens returns up to limit API tokens of tenant after the
// position, oldest first, revoked ones included (they show as revoked).
func (s *Store) ListAPITokens(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]APITokenInfo, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (created_at, id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, name, role, permissions, created_at, revoked_at IS NOT NULL FROM inbox.api_tokens
		WHERE tenant_id = $1`+where+` ORDER BY created_at, id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (APITokenInfo, error) {
		var (
			t     APITokenInfo
			role  string
			perms []string
		)
		err := row.Scan(&t.ID, &t.Name, &role, &perms, &t.CreatedAt, &t.Revoked)
		t.Role, t.Permissions = domain.Role(role), toPermissions(perms)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	return tokens, nil
}

// RevokeAPIToken revokes an API token of tenant: it stops working at once.
// Revoking a revoked token changes nothing.
func (s *Store) RevokeAPIToken(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE inbox.api_tokens SET revoked_at = coalesce(revoked_at, $3) WHERE tenant_id = $1 AND id = $2`, tenant, id, now)
	if err != nil {
		return fmt.Errorf("revoke API token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
