package api

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The push-routing routes: an agent's presence and heartbeat, the answers
// to an offer, what supervisors see of agents in routing, and each queue's
// routing settings. Presence as the agent set it lives in PostgreSQL and
// is announced on sb.config.v1; whether the agent is still connected is
// their heartbeats in Redis (an open GET /v1/stream beats for them).

func (a *API) registerPresence(r Router) {
	a.handle(r, "GET /v1/me/presence", a.getPresence)
	a.handle(r, "PUT /v1/me/presence", a.putPresence)
	a.handle(r, "POST /v1/me/heartbeat", a.heartbeat)
	a.handle(r, "POST /v1/conversations/{id}/accept", a.accept)
	a.handle(r, "POST /v1/conversations/{id}/reject", a.reject)
	a.handle(r, "GET /v1/routing/agents", a.routingAgents)
	a.handle(r, "GET /v1/admin/queues/{id}/routing", a.getQueueRouting)
	a.handle(r, "PUT /v1/admin/queues/{id}/routing", a.putQueueRouting)
}

// PresenceView is an agent's presence: what they set, and whether their
// heartbeats are fresh.
type PresenceView struct {
	store.Presence
	Connected bool `json:"connected"`
}

// PresenceRequest is the body of PUT /v1/me/presence.
type PresenceRequest struct {
	Status string `json:"status"`
}

// me returns the principal's user and tenant ids; API tokens have no
// presence.
func me(p domain.Principal) (tenant, user uuid.UUID, err error) {
	user, err = uuid.Parse(p.UserID)
	if err != nil {
		return uuid.Nil, uuid.Nil, fmt.Errorf("%w: only a user has a presence", domain.ErrForbidden)
	}
	tenant, _ = uuid.Parse(p.Tenant)
	return tenant, user, nil
}

func (a *API) connected(ctx context.Context, tenant, user uuid.UUID) (bool, error) {
	status, _, err := a.Presence.Status(ctx, tenant.String(), user.String())
	return status != "offline", err
}

func (a *API) getPresence(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, user, err := me(p)
	if err != nil {
		return err
	}
	pr, err := a.Store.GetPresence(r.Context(), tenant, user)
	if err != nil {
		return err
	}
	c, err := a.connected(r.Context(), tenant, user)
	if err != nil {
		return err
	}
	return ok(w, PresenceView{Presence: pr, Connected: c})
}

// putPresence sets the agent's presence. Online and away count as a
// heartbeat; offline ends their heartbeats at once.
func (a *API) putPresence(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, user, err := me(p)
	if err != nil {
		return err
	}
	var in PresenceRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	pr, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.Presence, error) {
		pr, _, err := a.Store.SetPresence(r.Context(), tx, tenant, user, in.Status, "", a.Clock.Now())
		return pr, err
	})
	if err != nil {
		return err
	}
	if pr.Status == store.PresenceOffline {
		err = a.Presence.Leave(r.Context(), tenant.String(), user.String())
	} else {
		err = a.Presence.Heartbeat(r.Context(), tenant.String(), user.String(), pr.Status)
	}
	if err != nil {
		return err
	}
	return ok(w, PresenceView{Presence: pr, Connected: pr.Status != store.PresenceOffline})
}

func (a *API) heartbeat(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	tenant, user, err := me(p)
	if err != nil {
		return err
	}
	if err := a.Beat(r.Context(), tenant, user); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Beat records a heartbeat of user. When the agent was not present (first
// beat, taken as gone by the router, Redis lost its data), their presence
// is announced again so that routing hears they are back.
func (a *API) Beat(ctx context.Context, tenant, user uuid.UUID) error {
	appeared, err := a.Presence.Beat(ctx, tenant.String(), user.String())
	if err != nil || !appeared {
		return err
	}
	pr, err := a.Store.AnnouncePresence(ctx, tenant, user, a.Clock.Now())
	if err != nil {
		return err
	}
	if pr.Status == store.PresenceOffline {
		return nil
	}
	return a.Presence.Heartbeat(ctx, tenant.String(), user.String(), pr.Status)
}

// accept takes an offered conversation: it becomes the agent's.
func (a *API) accept(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	user, err := uuid.Parse(p.UserID)
	if err != nil {
		return fmt.Errorf("%w: only a user answers an offer", domain.ErrForbidden)
	}
	return a.leased(r.Context(), p, r, func(token int64) error {
		return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
			if err := domain.AnswerOffer(p, c.Domain()); err != nil {
				return store.Change{}, err
			}
			c.OfferExpiresAt = nil
			if err := store.Assign(c, user, token); err != nil {
				return store.Change{}, err
			}
			return store.Change{Action: domain.ActionAccept}, nil
		})
	})
}

// reject declines an offered conversation: it goes back to its queue and
// is offered to someone else. A rejection is not a missed offer.
func (a *API) reject(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.AnswerOffer(p, c.Domain()); err != nil {
			return store.Change{}, err
		}
		c.PreviousState, c.State = c.State, domain.StateNew
		c.Assignees = []uuid.UUID{}
		c.OfferExpiresAt = nil
		return store.Change{Action: domain.ActionOfferRejected, Data: map[string]string{"user_id": p.UserID}}, nil
	})
}

// routingAgents lists the tenant's agents with their presence, whether
// they are connected, their load and the offers they missed.
func (a *API) routingAgents(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermSeeAll)
	if err != nil {
		return err
	}
	agents, err := a.Store.RoutingAgents(r.Context(), tenant)
	if err != nil {
		return err
	}
	online, err := a.Presence.Online(r.Context(), tenant.String())
	if err != nil {
		return err
	}
	fresh := make(map[string]bool, len(online))
	for _, o := range online {
		fresh[o.ID] = true
	}
	for i := range agents {
		agents[i].Connected = fresh[agents[i].ID.String()]
	}
	return ok(w, map[string]any{"items": agents})
}

func (a *API) getQueueRouting(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	s, err := a.Store.GetQueueRouting(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, s)
}

// putQueueRouting replaces the queue's routing settings; fields left out
// take their defaults.
func (a *API) putQueueRouting(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	in := events.DefaultQueueRouting()
	if err := decode(r, &in); err != nil {
		return err
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (events.QueueRouting, error) {
		return a.Store.PutQueueRouting(r.Context(), tx, tenant, id, in, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}

// beatWhile beats for user every third of the presence window until ctx
// ends (the agent's stream is open).
func (a *API) beatWhile(ctx context.Context, tenant, user uuid.UUID) {
	for {
		if err := a.Beat(ctx, tenant, user); err != nil && ctx.Err() == nil {
			a.Log.Warn("cannot record the heartbeat of a connected agent", "user", user, "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.Clock.After(a.Presence.Window() / 3):
		}
	}
}
