package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The reply assistant ([004]): the knowledge base, which admins group and
// maintain (manage_settings, reads included), and the suggestions for a
// conversation, which whoever sees it may ask for.

func (a *API) registerKnowledge(r Router) {
	registerNamed(a, r, namedRoutes[store.KnowledgeGroup]{path: "/v1/admin/knowledge-groups",
		list: a.Store.ListKnowledgeGroups, get: a.Store.GetKnowledgeGroup,
		create: a.Store.CreateKnowledgeGroup, rename: a.Store.RenameKnowledgeGroup,
		remove: func(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, _ time.Time) error {
			return a.Store.DeleteKnowledgeGroup(ctx, tx, tenant, id)
		},
		pos:  func(g store.KnowledgeGroup) store.Position { return store.Position{At: g.CreatedAt, ID: g.ID} },
		read: []domain.Permission{domain.PermManageSettings}})
	a.handle(r, "GET /v1/admin/knowledge-entries", a.listKnowledgeEntries)
	a.handle(r, "POST /v1/admin/knowledge-entries", a.createKnowledgeEntry)
	a.handle(r, "GET /v1/admin/knowledge-entries/{id}", a.getKnowledgeEntry)
	a.handle(r, "PATCH /v1/admin/knowledge-entries/{id}", a.updateKnowledgeEntry)
	a.handle(r, "DELETE /v1/admin/knowledge-entries/{id}", a.deleteKnowledgeEntry)
	a.handle(r, "GET /v1/conversations/{id}/suggestions", a.suggestions)
}

// KnowledgeEntryRequest is the body of POST /v1/admin/knowledge-entries,
// which needs a group, a title and a body, and of PATCH
// /v1/admin/knowledge-entries/{id}, where absent fields stay as they are.
// queue_id null (or absent on POST): for every queue; keywords replace the
// entry's.
type KnowledgeEntryRequest struct {
	GroupID  *string         `json:"group_id"`
	QueueID  json.RawMessage `json:"queue_id"`
	Title    *string         `json:"title"`
	Body     *string         `json:"body"`
	Keywords *[]string       `json:"keywords"`
}

func (in KnowledgeEntryRequest) empty() bool {
	return in.GroupID == nil && in.QueueID == nil && in.Title == nil && in.Body == nil && in.Keywords == nil
}

// apply changes spec with what in gives.
func (in KnowledgeEntryRequest) apply(spec *store.KnowledgeEntrySpec) error {
	if in.GroupID != nil {
		id, err := uuid.Parse(*in.GroupID)
		if err != nil {
			return domain.Invalid("group_id", "is not an id")
		}
		spec.GroupID = id
	}
	given, queue, err := nullableID("queue_id", in.QueueID)
	if err != nil {
		return err
	}
	if given {
		spec.QueueID = queue
	}
	set(&spec.Title, in.Title)
	set(&spec.Body, in.Body)
	if in.Keywords != nil {
		spec.Keywords = *in.Keywords
		if spec.Keywords == nil {
			spec.Keywords = []string{}
		}
	}
	return nil
}

func (a *API) listKnowledgeEntries(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var f store.KnowledgeFilter
	if s := r.URL.Query().Get("group_id"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			return domain.Invalid("group_id", "is not an id")
		}
		f.GroupID = &id
	}
	list := func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]store.KnowledgeEntry, error) {
		return a.Store.ListKnowledgeEntries(ctx, tenant, f, after, limit)
	}
	return servePage(w, r, tenant, list, func(e store.KnowledgeEntry) store.Position {
		return store.Position{At: e.CreatedAt, ID: e.ID}
	})
}

func (a *API) getKnowledgeEntry(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	e, err := a.Store.GetKnowledgeEntry(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, e)
}

func (a *API) createKnowledgeEntry(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in KnowledgeEntryRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.GroupID == nil {
		return domain.Invalid("group_id", "is required: the id of a knowledge group")
	}
	var spec store.KnowledgeEntrySpec
	if err := in.apply(&spec); err != nil {
		return err
	}
	if spec.Keywords == nil {
		spec.Keywords = []string{}
	}
	e, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.KnowledgeEntry, error) {
		return a.Store.CreateKnowledgeEntry(r.Context(), tx, tenant, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, e)
}

func (a *API) updateKnowledgeEntry(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in KnowledgeEntryRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.empty() {
		return domain.Invalid("body", "names nothing to change")
	}
	// What is wrong in the body itself is said before whether the entry
	// exists: the same answer for every id.
	probe := store.KnowledgeEntrySpec{KnowledgeEntrySpec: domain.KnowledgeEntrySpec{Title: "probe", Body: "probe", Keywords: []string{}}}
	if err := in.apply(&probe); err != nil {
		return err
	}
	if _, err := probe.Check(); err != nil {
		return err
	}
	e, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.KnowledgeEntry, error) {
		return a.Store.UpdateKnowledgeEntry(r.Context(), tx, tenant, id, a.settingsNow(), in.apply)
	})
	if err != nil {
		return err
	}
	return ok(w, e)
}

func (a *API) deleteKnowledgeEntry(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.DeleteKnowledgeEntry(r.Context(), tx, tenant, id)
	})
}

// suggestions answers GET /v1/conversations/{id}/suggestions?limit=n.
func (a *API) suggestions(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	limit := domain.DefaultSuggestions
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > domain.MaxSuggestions {
			return domain.Invalid("limit", fmt.Sprintf("must be an integer from 1 to %d", domain.MaxSuggestions))
		}
		limit = n
	}
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	items, err := a.Store.Suggest(r.Context(), p, c, limit)
	if err != nil {
		return err
	}
	return ok(w, List[store.Suggestion]{Items: items})
}
