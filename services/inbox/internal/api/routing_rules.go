package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The routes of where new conversations go: the default queue of each
// channel account (mailbox, SMS account or chat channel: all of them, so
// that chat channels, which have no routes of their own, get one too) and
// the tenant's ordered routing rules. Ingestion applies them when it
// creates a conversation. They need manage_settings, reads included: rules
// name customers.

func (a *API) registerRoutingRules(r Router) {
	a.handle(r, "GET /v1/admin/channel-accounts", a.listChannelAccounts)
	a.handle(r, "PUT /v1/admin/channel-accounts/{id}/routing", a.putChannelAccountRouting)
	a.handle(r, "GET /v1/admin/routing-rules", a.listRoutingRules)
	a.handle(r, "POST /v1/admin/routing-rules", a.createRoutingRule)
	a.handle(r, "PUT /v1/admin/routing-rules/order", a.orderRoutingRules)
	a.handle(r, "GET /v1/admin/routing-rules/{id}", a.getRoutingRule)
	a.handle(r, "PATCH /v1/admin/routing-rules/{id}", a.updateRoutingRule)
	a.handle(r, "DELETE /v1/admin/routing-rules/{id}", a.deleteRoutingRule)
}

// ChannelAccountRouting is the body of PUT
// /v1/admin/channel-accounts/{id}/routing.
type ChannelAccountRouting struct {
	// DefaultQueueID is a queue id, or null for none; required.
	DefaultQueueID json.RawMessage `json:"default_queue_id"`
}

func (a *API) listChannelAccounts(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListChannelAccounts, func(c store.ChannelAccount) store.Position {
		return store.Position{At: c.CreatedAt, ID: c.ID}
	})
}

func (a *API) putChannelAccountRouting(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in ChannelAccountRouting
	if err := decode(r, &in); err != nil {
		return err
	}
	given, queue, err := nullableID("default_queue_id", in.DefaultQueueID)
	if err != nil {
		return err
	}
	if !given {
		return domain.Invalid("default_queue_id", "is required: a queue id, or null for none")
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.ChannelAccount, error) {
		return a.Store.SetDefaultQueue(r.Context(), tx, tenant, id, queue)
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}

// RoutingRuleRequest is the body of POST /v1/admin/routing-rules, which
// needs a name, and of PATCH /v1/admin/routing-rules/{id}, where absent
// fields stay as they are. Conditions replace the rule's (absent on POST:
// none, the rule matches every conversation). The then-fields are null or
// absent for "leave it alone"; on PATCH, null clears one.
type RoutingRuleRequest struct {
	Name             *string                   `json:"name"`
	Conditions       *domain.RoutingConditions `json:"conditions"`
	QueueID          json.RawMessage           `json:"queue_id"`
	RequiredSkillID  json.RawMessage           `json:"required_skill_id"`
	RequiredLanguage json.RawMessage           `json:"required_language"`
	Priority         json.RawMessage           `json:"priority"`
}

// apply changes spec with what in gives.
func (in RoutingRuleRequest) apply(spec *store.RoutingRuleSpec) error {
	set(&spec.Name, in.Name)
	set(&spec.Conditions, in.Conditions)
	for _, f := range []struct {
		field string
		raw   json.RawMessage
		dst   **uuid.UUID
	}{{"queue_id", in.QueueID, &spec.QueueID}, {"required_skill_id", in.RequiredSkillID, &spec.RequiredSkillID}} {
		given, id, err := nullableID(f.field, f.raw)
		if err != nil {
			return err
		}
		if given {
			*f.dst = id
		}
	}
	if given, v, err := nullable[string](in.RequiredLanguage); err != nil {
		return domain.Invalid("required_language", "must be an ISO 639-1 language code, or null for none")
	} else if given {
		spec.RequiredLanguage = v
	}
	if given, v, err := nullable[int](in.Priority); err != nil {
		return domain.Invalid("priority", fmt.Sprintf("must be an integer from %d to %d, or null for none", domain.MinRoutingPriority, domain.MaxRoutingPriority))
	} else if given {
		spec.Priority = v
	}
	return nil
}

// nullable reads an optional field that may be null: given is false when
// it is absent; v is nil when it is null.
func nullable[T any](raw json.RawMessage) (given bool, v *T, err error) {
	if len(raw) == 0 {
		return false, nil, nil
	}
	if bytes.Equal(raw, []byte("null")) {
		return true, nil, nil
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		return true, nil, err
	}
	return true, &out, nil
}

// nullableID is nullable for an id.
func nullableID(field string, raw json.RawMessage) (bool, *uuid.UUID, error) {
	given, s, err := nullable[string](raw)
	if err != nil || !given || s == nil {
		if err != nil {
			err = domain.Invalid(field, "must be an id, or null for none")
		}
		return given, nil, err
	}
	id, err := uuid.Parse(*s)
	if err != nil {
		return true, nil, domain.Invalid(field, "is not an id")
	}
	return true, &id, nil
}

func (a *API) listRoutingRules(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	rules, err := a.Store.ListRoutingRules(r.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(w, pageOf(rules, len(rules), nil))
}

func (a *API) getRoutingRule(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	rule, err := a.Store.GetRoutingRule(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, rule)
}

// createRoutingRule adds a rule after the tenant's others.
func (a *API) createRoutingRule(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in RoutingRuleRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return domain.Invalid("name", "is required")
	}
	var spec store.RoutingRuleSpec
	if err := in.apply(&spec); err != nil {
		return err
	}
	spec, err = spec.Check(a.Languages.Valid)
	if err != nil {
		return err
	}
	rule, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.RoutingRule, error) {
		return a.Store.CreateRoutingRule(r.Context(), tx, tenant, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, rule)
}

func (a *API) updateRoutingRule(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in RoutingRuleRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil && in.Conditions == nil && in.QueueID == nil && in.RequiredSkillID == nil && in.RequiredLanguage == nil && in.Priority == nil {
		return domain.Invalid("body", "names nothing to change")
	}
	// What is wrong in the body itself is said before whether the rule
	// exists: the same answer for every id.
	probe := store.RoutingRuleSpec{Name: "probe"}
	if err := in.apply(&probe); err != nil {
		return err
	}
	if _, err := probe.Check(a.Languages.Valid); err != nil {
		return err
	}
	rule, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.RoutingRule, error) {
		return a.Store.UpdateRoutingRule(r.Context(), tx, tenant, id, a.settingsNow(), func(spec store.RoutingRuleSpec) (store.RoutingRuleSpec, error) {
			if err := in.apply(&spec); err != nil {
				return spec, err
			}
			return spec.Check(a.Languages.Valid)
		})
	})
	if err != nil {
		return err
	}
	return ok(w, rule)
}

func (a *API) deleteRoutingRule(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.DeleteRoutingRule(r.Context(), tx, tenant, id)
	})
}

// RoutingRuleOrder is the body of PUT /v1/admin/routing-rules/order:
// every rule of the tenant, each once, in the order they are to be tried.
type RoutingRuleOrder struct {
	IDs *[]string `json:"ids"`
}

func (a *API) orderRoutingRules(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in RoutingRuleOrder
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.IDs == nil {
		return domain.Invalid("ids", "is required: every routing rule of the tenant, in the order they are to be tried")
	}
	if len(*in.IDs) > domain.MaxRoutingRules {
		return domain.Invalid("ids", fmt.Sprintf("must hold at most %d ids", domain.MaxRoutingRules))
	}
	ids := make([]uuid.UUID, len(*in.IDs))
	for i, s := range *in.IDs {
		if ids[i], err = uuid.Parse(s); err != nil {
			return domain.Invalid(fmt.Sprintf("ids[%d]", i), "is not an id")
		}
	}
	rules, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) ([]store.RoutingRule, error) {
		return a.Store.ReorderRoutingRules(r.Context(), tx, tenant, ids, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, pageOf(rules, len(rules), nil))
}
