package api

import (
	"context"
	"net/http"
	"time"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The admin's duties on data, under /v1/admin like the other admin
// actions on messages (the delivery replays): anonymising a message
// ([000]), deleting a message or a conversation ([002]), erasing a
// contact (GDPR art. 17), and the admin audit log that records them
// (ids, never content). All need manage_data. See store/erasure.go.

// sweepBatch bounds the blobs one erasure deletes after its commit; the
// rest wait for the next one.
const sweepBatch = 500

func (a *API) registerErasure(r Router) {
	a.handle(r, "POST /v1/admin/messages/{id}/anonymise", a.anonymiseMessage)
	a.handle(r, "DELETE /v1/admin/messages/{id}", a.deleteMessage)
	a.handle(r, "DELETE /v1/admin/conversations/{id}", a.deleteConversation)
	a.handle(r, "POST /v1/admin/contacts/{id}/erase", a.eraseContact)
	a.handle(r, "GET /v1/admin/audit", a.listAdminAudit)
}

// sweep deletes the blobs erasures left no reference to. The erasure is
// committed already: a failure is logged, and the blobs stay queued for
// the next erasure's sweep.
func (a *API) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := a.Store.SweepBlobs(ctx, a.Blobs, sweepBatch); err != nil {
		a.Log.WarnContext(ctx, "erased blobs not deleted yet; the next erasure retries", "error", err)
	}
}

func (a *API) anonymiseMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageData)
	if err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	m, err := a.Store.AnonymiseMessage(r.Context(), p, tenant, id, a.Clock.Now())
	if err != nil {
		return err
	}
	a.sweep(r.Context())
	a.Log.InfoContext(r.Context(), "message anonymised", "message_id", id, "actor_kind", p.ActorKind(), "actor_id", p.ActorID())
	return ok(w, m)
}

func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageData)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteMessage(r.Context(), p, tenant, id, a.Clock.Now()); err != nil {
		return err
	}
	a.sweep(r.Context())
	a.Log.InfoContext(r.Context(), "message deleted", "message_id", id, "actor_kind", p.ActorKind(), "actor_id", p.ActorID())
	return noContent(w)
}

func (a *API) deleteConversation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageData)
	if err != nil {
		return err
	}
	if err := a.Store.DeleteConversation(r.Context(), p, tenant, id, a.Clock.Now()); err != nil {
		return err
	}
	a.sweep(r.Context())
	a.Log.InfoContext(r.Context(), "conversation deleted", "conversation_id", id, "actor_kind", p.ActorKind(), "actor_id", p.ActorID())
	return noContent(w)
}

func (a *API) eraseContact(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageData)
	if err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	done, err := a.Store.EraseContact(r.Context(), p, tenant, id, a.Clock.Now())
	if err != nil {
		return err
	}
	a.sweep(r.Context())
	a.Log.InfoContext(r.Context(), "contact erased", "contact_id", id, "conversations", done.Conversations, "messages", done.Messages,
		"actor_kind", p.ActorKind(), "actor_id", p.ActorID())
	return ok(w, done)
}

func (a *API) listAdminAudit(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageData)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListAdminAudit, func(e store.AdminAuditEntry) store.Position {
		return store.Position{At: e.At, ID: e.ID}
	})
}
