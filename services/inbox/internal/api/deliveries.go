package api

import (
	"net/http"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The delivery routes: the messages of a tenant whose delivery failed, on
// every channel, and sending them again (a replay: see
// store.ReplayDelivery). They need manage_settings, like the channel
// accounts the messages go through.

func (a *API) registerDeliveries(r Router) {
	a.handle(r, "GET /v1/admin/deliveries", a.listDeliveries)
	a.handle(r, "POST /v1/admin/deliveries/replay", a.replayDeliveries)
	a.handle(r, "POST /v1/admin/deliveries/{id}/replay", a.replayDelivery)
}

// ReplayRequest is the body of POST /v1/admin/deliveries/replay; without
// one, every channel's failed messages are sent again.
type ReplayRequest struct {
	// Channel is chat, email or sms; empty for all.
	Channel string `json:"channel,omitempty"`
}

// ReplayResult says how many failed messages were sent again.
type ReplayResult struct {
	Replayed int `json:"replayed"`
	// Limit is the most one call sends again; when Replayed reaches it,
	// call again for the rest.
	Limit int `json:"limit"`
}

func validChannel(ch string) bool {
	return ch == events.ChannelChat || ch == events.ChannelEmail || ch == events.ChannelSMS
}

// listDeliveries lists failed deliveries, the one status listed: status
// may be given, as failed only.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if s := q.Get("status"); s != "" && s != events.DeliveryFailed {
		return domain.Invalid("status", "must be failed: failed deliveries are the ones listed")
	}
	channel := q.Get("channel")
	if channel != "" && !validChannel(channel) {
		return domain.Invalid("channel", "must be chat, email or sms")
	}
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.Store.ListFailedDeliveries(r.Context(), tenant, channel, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, func(d store.Delivery) store.Position { return store.Position{At: d.FailedAt, ID: d.MessageID} }))
}

// replayDelivery sends a failed message again: 202, its send command is
// on its way.
func (a *API) replayDelivery(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	done, err := a.Store.ReplayDelivery(r.Context(), p, tenant, id, a.Clock.Now())
	if err != nil {
		return err
	}
	a.Log.InfoContext(r.Context(), "failed delivery sent again", "message_id", done.MessageID, "replay", done.Replay,
		"actor_kind", p.ActorKind(), "actor_id", p.ActorID())
	httpx.WriteJSON(w, http.StatusAccepted, done)
	return nil
}

// replayDeliveries sends again up to store.MaxReplayBatch failed messages
// of the tenant, oldest failure first: 202 with how many.
func (a *API) replayDeliveries(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in ReplayRequest
	if r.ContentLength != 0 { // -1, unknown, is read
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	if in.Channel != "" && !validChannel(in.Channel) {
		return domain.Invalid("channel", "must be chat, email or sms, or absent for all")
	}
	done, err := a.Store.ReplayDeliveries(r.Context(), p, tenant, in.Channel, a.Clock.Now())
	if err != nil {
		return err
	}
	a.Log.InfoContext(r.Context(), "failed deliveries sent again", "count", len(done), "channel", in.Channel,
		"actor_kind", p.ActorKind(), "actor_id", p.ActorID())
	httpx.WriteJSON(w, http.StatusAccepted, ReplayResult{Replayed: len(done), Limit: store.MaxReplayBatch})
	return nil
}
