package api

import (
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

func (a *API) registerAuth(r Router) {
	a.handlePublic(r, "POST /v1/auth/login", a.login)
	a.handlePublic(r, "POST /v1/auth/refresh", a.refresh)
	a.handle(r, "POST /v1/auth/logout", a.logout)
	a.handle(r, "GET /v1/me", a.me)
}

// LoginRequest is the body of POST /v1/auth/login.
type LoginRequest struct {
	TenantID string `json:"tenant_id"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	t, err := a.logIn(w, r)
	if err != nil {
		return err
	}
	return ok(w, t)
}

// logIn checks the credentials of a LoginRequest body and opens a
// session.
func (a *API) logIn(w http.ResponseWriter, r *http.Request) (store.Tokens, error) {
	var in LoginRequest
	if err := decode(r, &in); err != nil {
		return store.Tokens{}, err
	}
	tenant, err := uuid.Parse(in.TenantID)
	if err != nil {
		return store.Tokens{}, domain.Invalid("tenant_id", "must be the tenant's id")
	}
	if in.Email == "" || len(in.Email) > 320 {
		return store.Tokens{}, domain.Invalid("email", "is required")
	}
	if in.Password == "" || len(in.Password) > 1024 {
		return store.Tokens{}, domain.Invalid("password", "is required")
	}
	return a.checkedLogin(w, r, tenant, in.Email, in.Password)
}

// RefreshRequest is the body of POST /v1/auth/refresh.
type RefreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (a *API) refresh(w http.ResponseWriter, r *http.Request) error {
	var in RefreshRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.RefreshToken == "" {
		return domain.Invalid("refresh_token", "is required")
	}
	t, err := a.Store.Refresh(r.Context(), in.RefreshToken, a.Clock.Now())
	if err != nil {
		return err
	}
	return ok(w, t)
}

func (a *API) logout(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !strings.HasPrefix(token, store.AccessTokenPrefix) {
		return domain.Invalid("Authorization", "only a login session can log out; revoke API tokens instead")
	}
	if err := a.Store.Logout(r.Context(), token, a.Clock.Now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Me is who the caller is.
type Me struct {
	TenantID    string              `json:"tenant_id"`
	UserID      string              `json:"user_id,omitempty"`
	TokenID     string              `json:"token_id,omitempty"`
	Role        domain.Role         `json:"role"`
	Permissions []domain.Permission `json:"permissions"`
	QueueIDs    []string            `json:"queue_ids"`
}

func (a *API) me(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	return ok(w, meOf(p))
}

// meOf is p as GET /v1/me shows it.
func meOf(p domain.Principal) Me {
	perms := []domain.Permission{}
	for _, perm := range domain.AllPermissions() {
		if p.Can(perm) {
			perms = append(perms, perm)
		}
	}
	queues := p.Queues
	if queues == nil {
		queues = []string{}
	}
	return Me{TenantID: p.Tenant, UserID: p.UserID, TokenID: p.TokenID, Role: p.Role, Permissions: perms, QueueIDs: queues}
}
