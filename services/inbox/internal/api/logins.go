package api

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The login audit: every attempt to log in to an account of the tenant,
// with its outcome, client address and user agent (see checkedLogin). It
// needs manage_users, who can reset the passwords it may show attacked.

func (a *API) registerLogins(r Router) {
	a.handle(r, "GET /v1/admin/login-audit", a.listLoginAudit)
}

func (a *API) listLoginAudit(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageUsers)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var f store.LoginAuditFilter
	switch f.Outcome = q.Get("outcome"); f.Outcome {
	case "", loginSuccess, loginFailure:
	default:
		return domain.Invalid("outcome", "must be success or failure")
	}
	f.Email = q.Get("email")
	if err := checkText("email", f.Email, false, 320); err != nil {
		return err
	}
	if s := q.Get("user_id"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return domain.Invalid("user_id", "must be a user's id")
		}
		f.UserID = &id
	}
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.Store.ListLoginAudit(r.Context(), tenant, f, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, func(e store.LoginAuditEntry) store.Position { return store.Position{At: e.At, ID: e.ID} }))
}
