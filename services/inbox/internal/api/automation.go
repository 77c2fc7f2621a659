package api

import (
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The automation routes: waiting messages ([003]), the tenant's settings
// (acknowledgement, smart close, the channels automatic messages go out
// on, its waiting message) and each queue's own (acknowledgement, waiting
// message, inactivity limit). They need manage_automation, which
// supervisors and admins hold; the scheduler hears of every change on
// sb.config.v1 and applies it to what already waits.

func (a *API) registerAutomation(r Router) {
	a.handle(r, "GET /v1/admin/waiting-messages", a.listWaitingMessages)
	a.handle(r, "POST /v1/admin/waiting-messages", a.createWaitingMessage)
	a.handle(r, "GET /v1/admin/waiting-messages/{id}", a.getWaitingMessage)
	a.handle(r, "PATCH /v1/admin/waiting-messages/{id}", a.updateWaitingMessage)
	a.handle(r, "DELETE /v1/admin/waiting-messages/{id}", a.deleteWaitingMessage)
	a.handle(r, "GET /v1/admin/automation", a.getTenantAutomation)
	a.handle(r, "PUT /v1/admin/automation", a.putTenantAutomation)
	a.handle(r, "GET /v1/admin/queues/{id}/automation", a.getQueueAutomation)
	a.handle(r, "PUT /v1/admin/queues/{id}/automation", a.putQueueAutomation)
}

// WaitingMessageRequest is the body of POST /v1/admin/waiting-messages.
// Hours per state: absent or null means not sent in that state; at least
// one is required and 0 is refused.
type WaitingMessageRequest struct {
	Name    string             `json:"name"`
	Subject string             `json:"subject"`
	Body    string             `json:"body"`
	Hours   store.WaitingHours `json:"hours"`
}

// WaitingMessageUpdate is the body of PATCH
// /v1/admin/waiting-messages/{id}: absent fields stay as they are; hours
// replace the message's three values.
type WaitingMessageUpdate struct {
	Name    *string             `json:"name,omitempty"`
	Subject *string             `json:"subject,omitempty"`
	Body    *string             `json:"body,omitempty"`
	Hours   *store.WaitingHours `json:"hours,omitempty"`
}

func (a *API) listWaitingMessages(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListWaitingMessages, func(m store.WaitingMessage) store.Position { return store.Position{At: m.CreatedAt, ID: m.ID} })
}

func (a *API) getWaitingMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	m, err := a.Store.GetWaitingMessage(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, m)
}

func (a *API) createWaitingMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	var in WaitingMessageRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	spec := store.WaitingMessageSpec{Name: in.Name, Subject: in.Subject, Body: in.Body, Hours: in.Hours}
	if err := spec.Validate(); err != nil {
		return err
	}
	m, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.WaitingMessage, error) {
		return a.Store.CreateWaitingMessage(r.Context(), tx, tenant, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, m)
}

func (a *API) updateWaitingMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	var in WaitingMessageUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == (WaitingMessageUpdate{}) {
		return domain.Invalid("body", "names nothing to change")
	}
	m, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.WaitingMessage, error) {
		return a.Store.UpdateWaitingMessage(r.Context(), tx, tenant, id, a.settingsNow(), func(spec *store.WaitingMessageSpec) {
			set(&spec.Name, in.Name)
			set(&spec.Subject, in.Subject)
			set(&spec.Body, in.Body)
			set(&spec.Hours, in.Hours)
		})
	})
	if err != nil {
		return err
	}
	return ok(w, m)
}

func (a *API) deleteWaitingMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.DeleteWaitingMessage(r.Context(), tx, tenant, id, a.settingsNow())
	})
}

func (a *API) getTenantAutomation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	s, err := a.Store.GetTenantAutomation(r.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(w, s)
}

// putTenantAutomation replaces the tenant's settings; what the body leaves
// out takes its default (no acknowledgement, no waiting message, automatic
// messages on email only, smart close without texts).
func (a *API) putTenantAutomation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	var in store.TenantAutomation
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.Validate(); err != nil {
		return err
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.TenantAutomation, error) {
		return a.Store.PutTenantAutomation(r.Context(), tx, tenant, in, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}

func (a *API) getQueueAutomation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	s, err := a.Store.GetQueueAutomation(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, s)
}

// putQueueAutomation replaces the queue's own settings; what the body
// leaves out comes from the tenant's.
func (a *API) putQueueAutomation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageAutomation)
	if err != nil {
		return err
	}
	var in store.QueueAutomation
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.Validate(); err != nil {
		return err
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.QueueAutomation, error) {
		return a.Store.PutQueueAutomation(r.Context(), tx, tenant, id, in, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}
