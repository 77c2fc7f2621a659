package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The admin routes: a tenant's queues, skills, users, tag lists, API
// tokens, mailboxes, SMS accounts and chat channels (mailboxes.go,
// sms_accounts.go, chat_channels.go), failed deliveries and their replays
// (deliveries.go), and where new conversations go (routing_rules.go). Queues, skills and tag
// lists are read by every user of the tenant (agents pick from them) and
// written with manage_settings; mailboxes, SMS accounts, default queues
// and routing rules need manage_settings to read too; users
// and API tokens need manage_users. Nobody grants more than they hold, so
// an admin with some rights cannot mint a more powerful user or token and
// act through it.

func (a *API) registerAdmin(r Router) {
	registerNamed(a, r, namedRoutes[store.Queue]{
		path:   "/v1/admin/queues",
		list:   a.Store.ListQueues,
		get:    a.Store.GetQueue,
		create: a.Store.CreateQueue,
		rename: a.Store.RenameQueue,
		remove: a.Store.DeleteQueue,
		pos:    func(q store.Queue) store.Position { return store.Position{At: q.CreatedAt, ID: q.ID} },
	})
	registerNamed(a, r, namedRoutes[store.Skill]{
		path:   "/v1/admin/skills",
		list:   a.Store.ListSkills,
		get:    a.Store.GetSkill,
		create: a.Store.CreateSkill,
		rename: a.Store.RenameSkill,
		remove: a.Store.DeleteSkill,
		pos:    func(k store.Skill) store.Position { return store.Position{At: k.CreatedAt, ID: k.ID} },
	})

	a.handle(r, "GET /v1/admin/users", a.listUsers)
	a.handle(r, "POST /v1/admin/users", a.createUser)
	a.handle(r, "GET /v1/admin/users/{id}", a.getUser)
	a.handle(r, "PATCH /v1/admin/users/{id}", a.updateUser)
	a.handle(r, "DELETE /v1/admin/users/{id}", a.disableUser)

	a.handle(r, "GET /v1/admin/tag-lists", a.listTagLists)
	a.handle(r, "POST /v1/admin/tag-lists", a.createTagList)
	a.handle(r, "GET /v1/admin/tag-lists/{id}", a.getTagList)
	a.handle(r, "PATCH /v1/admin/tag-lists/{id}", a.updateTagList)
	a.handle(r, "DELETE /v1/admin/tag-lists/{id}", a.deleteTagList)

	a.handle(r, "GET /v1/admin/api-tokens", a.listAPITokens)
	a.handle(r, "POST /v1/admin/api-tokens", a.createAPIToken)
	a.handle(r, "DELETE /v1/admin/api-tokens/{id}", a.revokeAPIToken)

	a.registerMailboxes(r)
	a.registerSMSAccounts(r)
	a.registerChatChannels(r)
	a.registerDeliveries(r)
	a.registerRoutingRules(r)
}

// settingsNow is the time of a write, cut to PostgreSQL's microseconds so
// that the answer to a write shows the times later reads will.
func (a *API) settingsNow() time.Time { return a.Clock.Now().Truncate(time.Microsecond) }

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// roleRank orders roles by what they hold.
func roleRank(r domain.Role) int {
	switch r {
	case domain.RoleAgent:
		return 1
	case domain.RoleSupervisor:
		return 2
	case domain.RoleAdmin:
		return 3
	}
	return 0
}

// mayGrant refuses a role above p's own, or a permission (granted or that
// comes with the role) that p does not have: otherwise anyone with
// manage_users could create an account more powerful than theirs and use
// it.
func mayGrant(p domain.Principal, role domain.Role, perms []domain.Permission) error {
	if roleRank(role) > roleRank(p.Role) {
		return fmt.Errorf("%w: you cannot grant the %s role, which is above your own", domain.ErrForbidden, role)
	}
	for _, perm := range append(domain.RolePermissions(role), perms...) {
		if !p.Can(perm) {
			return fmt.Errorf("%w: you cannot grant the %s permission, which you do not have", domain.ErrForbidden, perm)
		}
	}
	return nil
}

// dedupe drops repeated values, keeping the first of each in place.
func dedupe[T comparable](xs []T) []T {
	if xs == nil {
		return nil
	}
	out := make([]T, 0, len(xs))
	seen := make(map[T]bool, len(xs))
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// parseIDs reads a list of ids, naming the element that is not one.
func parseIDs(field string, ss []string) ([]uuid.UUID, error) {
	out := make([]uuid.UUID, 0, len(ss))
	for i, s := range ss {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, domain.Invalid(fmt.Sprintf("%s[%d]", field, i), "must be an id")
		}
		out = append(out, id)
	}
	return dedupe(out), nil
}

// NameRequest is the body that creates or renames a queue or a skill.
type NameRequest struct {
	Name string `json:"name"`
}

// decodeName reads a NameRequest and checks its name.
func decodeName(r *http.Request) (string, error) {
	var in NameRequest
	if err := decode(r, &in); err != nil {
		return "", err
	}
	return in.Name, store.CheckName("name", in.Name)
}

// namedRoutes are the store operations behind the routes of queues and
// skills, which have the same shape: named entities routing hears of.
type namedRoutes[T any] struct {
	path   string
	list   func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]T, error)
	get    func(ctx context.Context, tenant, id uuid.UUID) (T, error)
	create func(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (T, error)
	rename func(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, name string, now time.Time) (T, error)
	remove func(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error
	pos    func(T) store.Position
	// read are the permissions reading needs: none for queues and skills
	// (agents transfer to them).
	read []domain.Permission
}

// registerNamed adds the five routes of a named entity. Reading needs
// n.read; writing needs manage_settings.
func registerNamed[T any](a *API, r Router, n namedRoutes[T]) {
	a.handle(r, "GET "+n.path, func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
		tenant, err := tenantFor(p, n.read...)
		if err != nil {
			return err
		}
		return servePage(w, r, tenant, n.list, n.pos)
	})
	a.handle(r, "POST "+n.path, func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
		tenant, err := tenantFor(p, domain.PermManageSettings)
		if err != nil {
			return err
		}
		name, err := decodeName(r)
		if err != nil {
			return err
		}
		out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (T, error) {
			return n.create(r.Context(), tx, tenant, name, a.settingsNow())
		})
		if err != nil {
			return err
		}
		return created(w, out)
	})
	a.handle(r, "GET "+n.path+"/{id}", func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
		tenant, id, err := targetFor(r, p, n.read...)
		if err != nil {
			return err
		}
		out, err := n.get(r.Context(), tenant, id)
		if err != nil {
			return err
		}
		return ok(w, out)
	})
	a.handle(r, "PATCH "+n.path+"/{id}", func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
		tenant, id, err := targetFor(r, p, domain.PermManageSettings)
		if err != nil {
			return err
		}
		name, err := decodeName(r)
		if err != nil {
			return err
		}
		out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (T, error) {
			return n.rename(r.Context(), tx, tenant, id, name, a.settingsNow())
		})
		if err != nil {
			return err
		}
		return ok(w, out)
	})
	a.handle(r, "DELETE "+n.path+"/{id}", func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
		tenant, id, err := targetFor(r, p, domain.PermManageSettings)
		if err != nil {
			return err
		}
		return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
			return n.remove(r.Context(), tx, tenant, id, a.settingsNow())
		})
	})
}

// UserRequest is the body of POST /v1/admin/users. Role defaults to
// agent, the least one; capacity (conversations at once, 0 to 100) to 5.
// Without a password the user cannot log in until one is set.
type UserRequest struct {
	Email       string              `json:"email"`
	Name        string              `json:"name"`
	Role        domain.Role         `json:"role,omitempty"`
	Permissions []domain.Permission `json:"permissions,omitempty"`
	Languages   []string            `json:"languages,omitempty"`
	Capacity    *int                `json:"capacity,omitempty"`
	QueueIDs    []string            `json:"queue_ids,omitempty"`
	SkillIDs    []string            `json:"skill_ids,omitempty"`
	Password    string              `json:"password,omitempty"`
}

// UserUpdate is the body of PATCH /v1/admin/users/{id}: absent fields stay
// as they are; lists replace the user's. A password sets or resets it, and
// ends the user's sessions unless they change their own.
type UserUpdate struct {
	Email       *string              `json:"email,omitempty"`
	Name        *string              `json:"name,omitempty"`
	Role        *domain.Role         `json:"role,omitempty"`
	Permissions *[]domain.Permission `json:"permissions,omitempty"`
	Languages   *[]string            `json:"languages,omitempty"`
	Capacity    *int                 `json:"capacity,omitempty"`
	QueueIDs    *[]string            `json:"queue_ids,omitempty"`
	SkillIDs    *[]string            `json:"skill_ids,omitempty"`
	Password    *string              `json:"password,omitempty"`
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListUsers, func(u store.User) store.Position { return store.Position{At: u.CreatedAt, ID: u.ID} })
}

// getUser serves admins, and any user asking about themselves.
func (a *API) getUser(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if p.UserID != id.String() {
		if err := need(p, domain.PermManageUsers); err != nil {
			return err
		}
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	u, err := a.Store.GetUser(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, u)
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	var in UserRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	queues, err := parseIDs("queue_ids", in.QueueIDs)
	if err != nil {
		return err
	}
	skills, err := parseIDs("skill_ids", in.SkillIDs)
	if err != nil {
		return err
	}
	spec := store.UserSpec{Email: in.Email, Name: in.Name, Role: in.Role, Permissions: dedupe(in.Permissions), Languages: dedupe(in.Languages),
		QueueIDs: queues, SkillIDs: skills, Password: in.Password}
	if spec.Role == "" {
		spec.Role = domain.RoleAgent
	}
	if in.Capacity != nil {
		spec.Capacity = *in.Capacity
	}
	if err := spec.Validate(a.Languages.Valid, a.Limits.Passwords); err != nil {
		return err
	}
	if err := store.CheckName("name", spec.Name); err != nil {
		return err
	}
	if err := mayGrant(p, spec.Role, spec.Permissions); err != nil {
		return err
	}
	now := a.settingsNow()
	u, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.User, error) {
		u, err := a.Store.CreateUser(r.Context(), tx, tenant, spec, now)
		if err != nil || in.Capacity == nil || *in.Capacity != 0 {
			return u, err
		}
		// CreateUser reads 0 as "the default"; an explicit 0 (a user who
		// takes no conversations) is set right after, in the same
		// transaction, and announced again.
		return a.Store.UpdateUser(r.Context(), tx, tenant, u.ID, now, func(_ store.User, s *store.UserSpec) error {
			s.Capacity = 0
			return nil
		})
	})
	if err != nil {
		return err
	}
	return created(w, u)
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	var in UserUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == (UserUpdate{}) {
		return domain.Invalid("body", "names nothing to change")
	}
	var queues, skills []uuid.UUID
	if in.QueueIDs != nil {
		if queues, err = parseIDs("queue_ids", *in.QueueIDs); err != nil {
			return err
		}
	}
	if in.SkillIDs != nil {
		if skills, err = parseIDs("skill_ids", *in.SkillIDs); err != nil {
			return err
		}
	}
	if in.Password != nil && *in.Password == "" {
		return domain.Invalid("password", "must not be empty")
	}
	u, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.User, error) {
		u, err := a.Store.UpdateUser(r.Context(), tx, tenant, id, a.settingsNow(), func(cur store.User, spec *store.UserSpec) error {
			if err := mayGrant(p, cur.Role, cur.Permissions); err != nil {
				return fmt.Errorf("%w: this user holds more than you do", domain.ErrForbidden)
			}
			set(&spec.Email, in.Email)
			set(&spec.Name, in.Name)
			set(&spec.Role, in.Role)
			if in.Permissions != nil {
				spec.Permissions = dedupe(*in.Permissions)
			}
			if in.Languages != nil {
				spec.Languages = dedupe(*in.Languages)
			}
			set(&spec.Capacity, in.Capacity)
			if in.QueueIDs != nil {
				spec.QueueIDs = queues
			}
			if in.SkillIDs != nil {
				spec.SkillIDs = skills
			}
			set(&spec.Password, in.Password)
			if err := spec.Validate(a.Languages.Valid, a.Limits.Passwords); err != nil {
				return err
			}
			if err := store.CheckName("name", spec.Name); err != nil {
				return err
			}
			return mayGrant(p, spec.Role, spec.Permissions)
		})
		if err != nil || in.Password == nil || id.String() == p.UserID {
			return u, err
		}
		// A reset password is often a compromised account: whoever held
		// its sessions is let out with the old password.
		return u, a.Store.RevokeSessions(r.Context(), tx, tenant, id, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, u)
}

// disableUser disables a user rather than deleting them: their name stays
// on the conversations and audit entries they worked on.
func (a *API) disableUser(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		_, err := a.Store.DisableUser(r.Context(), tx, tenant, id, a.settingsNow(), func(u store.User) error {
			if u.ID.String() == p.UserID {
				// Checked once the user is known to exist, so that the
				// answer says nothing about ids of other tenants.
				return fmt.Errorf("%w: you cannot disable yourself; another admin can", domain.ErrConflict)
			}
			if err := mayGrant(p, u.Role, u.Permissions); err != nil {
				return fmt.Errorf("%w: this user holds more than you do", domain.ErrForbidden)
			}
			return nil
		})
		return err
	})
}

// TagListRequest is the body of POST /v1/admin/tag-lists.
type TagListRequest struct {
	Name      string   `json:"name"`
	Values    []string `json:"values"`
	Mandatory bool     `json:"mandatory,omitempty"`
}

// TagListUpdate is the body of PATCH /v1/admin/tag-lists/{id}: absent
// fields stay as they are; values replace the list's.
type TagListUpdate struct {
	Name      *string   `json:"name,omitempty"`
	Values    *[]string `json:"values,omitempty"`
	Mandatory *bool     `json:"mandatory,omitempty"`
}

func (a *API) listTagLists(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListTagLists, func(t store.TagList) store.Position { return store.Position{At: t.CreatedAt, ID: t.ID} })
}

func (a *API) getTagList(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	t, err := a.Store.GetTagList(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, t)
}

func (a *API) createTagList(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in TagListRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	spec := store.TagListSpec{Name: in.Name, Values: in.Values, Mandatory: in.Mandatory}
	if err := spec.Validate(); err != nil {
		return err
	}
	t, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.TagList, error) {
		return a.Store.CreateTagList(r.Context(), tx, tenant, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, t)
}

func (a *API) updateTagList(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in TagListUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == (TagListUpdate{}) {
		return domain.Invalid("body", "names nothing to change")
	}
	t, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.TagList, error) {
		return a.Store.UpdateTagList(r.Context(), tx, tenant, id, func(spec *store.TagListSpec) {
			set(&spec.Name, in.Name)
			set(&spec.Values, in.Values)
			set(&spec.Mandatory, in.Mandatory)
		})
	})
	if err != nil {
		return err
	}
	return ok(w, t)
}

func (a *API) deleteTagList(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.DeleteTagList(r.Context(), tx, tenant, id)
	})
}

// APITokenRequest is the body of POST /v1/admin/api-tokens. Role defaults
// to agent, the least one: an integration gets what it is given.
type APITokenRequest struct {
	Name        string              `json:"name"`
	Role        domain.Role         `json:"role,omitempty"`
	Permissions []domain.Permission `json:"permissions,omitempty"`
}

func (a *API) listAPITokens(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListAPITokens, func(t store.APITokenInfo) store.Position { return store.Position{At: t.CreatedAt, ID: t.ID} })
}

// createAPIToken answers with the token itself, this once: only its hash
// is kept.
func (a *API) createAPIToken(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	var in APITokenRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	spec := store.APITokenSpec{Name: in.Name, Role: in.Role, Permissions: dedupe(in.Permissions)}
	if spec.Role == "" {
		spec.Role = domain.RoleAgent
	}
	if err := store.CheckName("name", spec.Name); err != nil {
		return err
	}
	if !spec.Role.Valid() {
		return domain.Invalid("role", "must be agent, supervisor or admin")
	}
	for _, perm := range spec.Permissions {
		if !perm.Valid() {
			return domain.Invalid("permissions", fmt.Sprintf("%q is not a permission", perm))
		}
	}
	if err := mayGrant(p, spec.Role, spec.Permissions); err != nil {
		return err
	}
	t, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.IssuedAPIToken, error) {
		return a.Store.IssueAPIToken(r.Context(), tx, tenant, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, t)
}

func (a *API) revokeAPIToken(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.RevokeAPIToken(r.Context(), tx, tenant, id, a.settingsNow())
	})
}
