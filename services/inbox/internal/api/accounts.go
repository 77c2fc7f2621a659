package api

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The routes of channel accounts (mailboxes, SMS accounts) share one
// implementation, accountRoutes. Every one needs manage_settings, reads
// included: an account shows its servers, logins and numbers, which
// agents have no use for. Secrets are written, never read back: answers
// say whether each is set, and a PATCH that does not name one keeps it.

// accountSpec is a store spec of a kind of account.
type accountSpec interface {
	// Validate checks the spec, naming the field at fault.
	Validate() error
}

// accountRequest is the body creating an account whose spec is S.
type accountRequest[S any] interface {
	// name is the account's name.
	name() string
	// spec checks what the spec cannot tell (a part left out) and builds
	// the spec.
	spec() (S, error)
}

// accountUpdate is the body changing an account whose spec is S; its zero
// value names nothing to change.
type accountUpdate[S any] interface {
	comparable
	// newName is the name the body gives, or nil.
	newName() *string
	// apply changes spec, or refuses the change.
	apply(spec *S) error
}

// accountRoutes serve the routes of a kind of account, whose store spec
// is S, whose answer is I and whose POST and PATCH bodies are Req and
// Upd, with the store's functions of the kind.
type accountRoutes[S accountSpec, I any, Req accountRequest[S], Upd accountUpdate[S]] struct {
	api    *API
	list   func(s *store.Store, ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]I, error)
	get    func(s *store.Store, ctx context.Context, tenant, id uuid.UUID) (I, error)
	create func(s *store.Store, ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec S, now time.Time) (I, error)
	update func(s *store.Store, ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(spec *S) error) (I, error)
	remove func(s *store.Store, ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error
	// position is where an account stands in the list, for cursors.
	position func(I) store.Position
}

// register adds the five routes under base ("/v1/admin/mailboxes").
func (k accountRoutes[S, I, Req, Upd]) register(r Router, base string) {
	k.api.handle(r, "GET "+base, k.serveList)
	k.api.handle(r, "POST "+base, k.serveCreate)
	k.api.handle(r, "GET "+base+"/{id}", k.serveGet)
	k.api.handle(r, "PATCH "+base+"/{id}", k.serveUpdate)
	k.api.handle(r, "DELETE "+base+"/{id}", k.serveDelete)
}

func (k accountRoutes[S, I, Req, Upd]) serveList(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]I, error) {
		return k.list(k.api.Store, ctx, tenant, after, limit)
	}, k.position)
}

func (k accountRoutes[S, I, Req, Upd]) serveGet(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	acct, err := k.get(k.api.Store, r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, acct)
}

func (k accountRoutes[S, I, Req, Upd]) serveCreate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in Req
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := store.CheckName("name", in.name()); err != nil {
		return err
	}
	spec, err := in.spec()
	if err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	acct, err := inTx(r.Context(), k.api.Store, func(tx pgx.Tx) (I, error) {
		return k.create(k.api.Store, r.Context(), tx, tenant, spec, k.api.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, acct)
}

func (k accountRoutes[S, I, Req, Upd]) serveUpdate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in, none Upd
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == none {
		return domain.Invalid("body", "names nothing to change")
	}
	if name := in.newName(); name != nil {
		if err := store.CheckName("name", *name); err != nil {
			return err
		}
	}
	acct, err := inTx(r.Context(), k.api.Store, func(tx pgx.Tx) (I, error) {
		return k.update(k.api.Store, r.Context(), tx, tenant, id, k.api.settingsNow(), in.apply)
	})
	if err != nil {
		return err
	}
	return ok(w, acct)
}

// serveDelete stops the account: its connector no longer receives nor
// sends through it. Its conversations stay.
func (k accountRoutes[S, I, Req, Upd]) serveDelete(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return removeInTx(w, r, k.api.Store, func(tx pgx.Tx) error {
		return k.remove(k.api.Store, r.Context(), tx, tenant, id, k.api.settingsNow())
	})
}
