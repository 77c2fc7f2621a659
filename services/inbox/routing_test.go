package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// The inbox's side of push routing: agents' presence and heartbeats, the
// answers to an offer, what supervisors see of agents in routing, and
// each queue's routing settings; the offers themselves come as commands
// from the router (see commands_test.go).

// azPresence is what GET /v1/me/presence answers.
type azPresence struct {
	Status    string    `json:"status"`
	Since     time.Time `json:"since"`
	Reason    string    `json:"reason"`
	Connected bool      `json:"connected"`
}

// chosen is the presence as it was set, without whether the user is
// connected, which heartbeats (an open stream) change on their own.
func (p azPresence) chosen() string {
	return fmt.Sprintf("%s (%s) since %s", p.Status, p.Reason, p.Since.Format(time.RFC3339Nano))
}

// rtAgent is what GET /v1/routing/agents shows of an agent.
type rtAgent struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Presence     azPresence `json:"presence"`
	Connected    bool       `json:"connected"`
	Capacity     int        `json:"capacity"`
	Load         float64    `json:"load"`
	Held         int        `json:"held"`
	MissedOffers int64      `json:"missed_offers"`
}

// rtRouting is a queue's routing settings.
type rtRouting struct {
	Mode                  string             `json:"mode"`
	OfferSeconds          int                `json:"offer_seconds"`
	MissedOfferAway       bool               `json:"missed_offer_away"`
	Weights               map[string]float64 `json:"weights"`
	AgingSeconds          int                `json:"aging_seconds"`
	RequeueOfflineSeconds int                `json:"requeue_offline_seconds"`
}

// offer makes conversation id, new in queue q, offered to A's admin by an
// offer command as the router sends it. A's admin is made a member of q
// with room to spare first, as the inbox checks both.
func (fx *azFixture) offer(t *testing.T, q inbox.Queue, id string) {
	t.Helper()
	path := "/v1/admin/users/" + fx.adminUser.ID.String()
	var u struct {
		QueueIDs []string `json:"queue_ids"`
		Capacity int      `json:"capacity"`
	}
	require.NoError(t, json.Unmarshal(fx.ok(t, fx.admin, http.MethodGet, path, "").Body, &u))
	if !slices.Contains(u.QueueIDs, q.ID.String()) || u.Capacity < 100 {
		if !slices.Contains(u.QueueIDs, q.ID.String()) {
			u.QueueIDs = append(u.QueueIDs, q.ID.String())
		}
		body, err := json.Marshal(map[string]any{"queue_ids": u.QueueIDs, "capacity": 100})
		require.NoError(t, err)
		fx.ok(t, fx.admin, http.MethodPatch, path, string(body))
	}
	cmds := &cmdFixture{e: fx.e, b: fx.a, admin: fx.admin}
	outcome, reason := cmds.run(t, cmdConv{ID: id}, events.InboxCommand{Kind: events.CommandOffer,
		Offer: &events.Offer{UserID: fx.adminUser.ID.String(), ExpiresAt: time.Now().Add(time.Hour)}})
	require.Equal(t, "applied", outcome, "the offer to A's admin: %s", reason)
}

// rtPresence reads token's presence.
func rtPresence(t *testing.T, e env, token string) azPresence {
	t.Helper()
	var p azPresence
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/me/presence", "", &p))
	return p
}

// rtSetPresence sets token's presence and returns what the API answered.
func rtSetPresence(t *testing.T, e env, token, status string) azPresence {
	t.Helper()
	var p azPresence
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodPut, "/v1/me/presence", fmt.Sprintf(`{"status":%q}`, status), &p))
	return p
}

func rtBeat(t *testing.T, e env, token string) {
	t.Helper()
	require.Equal(t, http.StatusNoContent, e.do(t, token, http.MethodPost, "/v1/me/heartbeat", "", nil))
}

// rtAgents lists the agents in routing as token, by id.
func rtAgents(t *testing.T, e env, token string) map[string]rtAgent {
	t.Helper()
	var l list[rtAgent]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/routing/agents", "", &l))
	out := map[string]rtAgent{}
	for _, a := range l.Items {
		out[a.ID] = a
	}
	return out
}

// rtProblem sends a request that must be refused with status and returns
// the problem.
func rtProblem(t *testing.T, e env, token, method, path, body string, status int) azProblem {
	t.Helper()
	return azMustProblem(t, azCall(t, e, token, method, path, body), status, method+" "+path)
}

// TestPresenceAndHeartbeats: an agent sets their presence, announced on
// sb.config.v1; a heartbeat makes them connected, offline disconnects them
// at once; an API token has no presence.
func TestPresenceAndHeartbeats(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	user, agent := e.userToken(t, b, "agent")
	started := time.Now().Add(-time.Second)

	p := rtPresence(t, e, agent)
	require.Equal(t, "offline", p.Status, "a new agent is offline")
	require.False(t, p.Connected)

	// A heartbeat connects the agent without changing what they chose; as
	// they were not present, their presence is announced again.
	rtBeat(t, e, agent)
	p = rtPresence(t, e, agent)
	require.Equal(t, "offline", p.Status)
	require.True(t, p.Connected, "a heartbeat did not make the agent connected")

	set := rtSetPresence(t, e, agent, "online")
	require.Equal(t, "online", set.Status)
	require.True(t, set.Connected)
	require.Empty(t, set.Reason)
	require.True(t, set.Since.After(started), "since %s", set.Since)
	got := rtPresence(t, e, agent)
	require.Equal(t, set.chosen(), got.chosen())
	require.True(t, got.Connected)

	// The same again changes nothing, not even since.
	require.Equal(t, set.chosen(), rtSetPresence(t, e, agent, "online").chosen())

	away := rtSetPresence(t, e, agent, "away")
	require.Equal(t, "away", away.Status)
	require.True(t, away.Connected, "away still counts as connected")
	require.False(t, away.Since.Before(set.Since))

	off := rtSetPresence(t, e, agent, "offline")
	require.Equal(t, "offline", off.Status)
	require.False(t, off.Connected, "offline did not end the heartbeats")
	require.False(t, rtPresence(t, e, agent).Connected)

	// The list of agents shows the same.
	a := rtAgents(t, e, b.APIToken.Token)[user.ID.String()]
	require.Equal(t, "offline", a.Presence.Status)
	require.False(t, a.Connected)
	rtSetPresence(t, e, agent, "online")
	a = rtAgents(t, e, b.APIToken.Token)[user.ID.String()]
	require.Equal(t, "online", a.Presence.Status)
	require.True(t, a.Connected)

	// An API token has no presence.
	tok := b.APIToken.Token
	rtProblem(t, e, tok, http.MethodGet, "/v1/me/presence", "", http.StatusForbidden)
	rtProblem(t, e, tok, http.MethodPut, "/v1/me/presence", `{"status":"online"}`, http.StatusForbidden)
	rtProblem(t, e, tok, http.MethodPost, "/v1/me/heartbeat", "", http.StatusForbidden)
	require.Equal(t, []string{"status"}, rtProblem(t, e, agent, http.MethodPut, "/v1/me/presence", `{"status":"busy"}`, http.StatusBadRequest).fields())

	key := string(events.ConfigKey("presence", user.ID.String()))
	want := map[string][]string{key: {
		"offline", // the first heartbeat: announced again, unchanged
		"online",
		"away",
		"offline",
		"online",
	}}
	require.Equal(t, want, readConfig(t, e, want, func(_ string, ev events.Event) string {
		require.Equal(t, events.TypePresence, ev.Type)
		var x events.Presence
		require.NoError(t, ev.Decode(&x))
		require.Equal(t, b.Tenant.ID.String(), x.TenantID)
		require.Equal(t, user.ID.String(), x.UserID)
		return x.Status + x.Reason
	}))
}

// TestQueueRoutingSettings: a queue is pull until set; PUT replaces the
// settings, fields left out taking their defaults; invalid values are
// refused naming the field; each change announces the queue with its
// routing on sb.config.v1.
func TestQueueRoutingSettings(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	var q adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/queues", `{"name":"Support"}`, &q))
	path := "/v1/admin/queues/" + q.ID + "/routing"

	var r rtRouting
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &r))
	require.Equal(t, rtRouting{Mode: "pull", OfferSeconds: 30, AgingSeconds: 600}, r, "the defaults")

	push := rtRouting{Mode: "push", OfferSeconds: 20, MissedOfferAway: true, Weights: map[string]float64{"email": 0.5, "chat": 1.5},
		AgingSeconds: 600, RequeueOfflineSeconds: 300}
	r = rtRouting{}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path,
		`{"mode":"push","offer_seconds":20,"missed_offer_away":true,"weights":{"email":0.5,"chat":1.5},"requeue_offline_seconds":300}`, &r))
	require.Equal(t, push, r, "aging_seconds takes its default")
	r = rtRouting{}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &r))
	require.Equal(t, push, r)

	// Invalid: refused, naming the field, and nothing changes.
	for _, c := range []struct{ body, field string }{
		{`{"mode":"fast"}`, "mode"},
		{`{"mode":"push","weights":{"fax":1}}`, "weights.fax"},
		{`{"mode":"push","weights":{"chat":0}}`, "weights.chat"},
		{`{"mode":"push","offer_seconds":4}`, "offer_seconds"},
		{`{"mode":"push","aging_seconds":0}`, "aging_seconds"},
		{`{"mode":"push","requeue_offline_seconds":-1}`, "requeue_offline_seconds"},
	} {
		p := rtProblem(t, e, admin, http.MethodPut, path, c.body, http.StatusBadRequest)
		require.Equal(t, []string{c.field}, p.fields(), c.body)
	}
	r = rtRouting{}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &r))
	require.Equal(t, push, r, "a refused change changed the settings")

	// Everything left out: the defaults, but the mode given.
	r = rtRouting{}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path, `{"mode":"both"}`, &r))
	require.Equal(t, rtRouting{Mode: "both", OfferSeconds: 30, AgingSeconds: 600}, r)

	// A rename keeps the routing; no such queue is a 404.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/queues/"+q.ID, `{"name":"Care"}`, nil))
	missing := "/v1/admin/queues/" + uuid.NewString() + "/routing"
	rtProblem(t, e, admin, http.MethodGet, missing, "", http.StatusNotFound)
	rtProblem(t, e, admin, http.MethodPut, missing, `{"mode":"push"}`, http.StatusNotFound)

	// An agent may not read them.
	_, agent := e.userToken(t, b, "agent")
	rtProblem(t, e, agent, http.MethodGet, path, "", http.StatusForbidden)
	rtProblem(t, e, agent, http.MethodPut, path, `{"mode":"push"}`, http.StatusForbidden)

	want := map[string][]string{"queue/" + q.ID: {
		"Support",
		"Support push offer=20 away weights=map[chat:1.5 email:0.5] aging=600 requeue=300",
		"Support both offer=30 aging=600",
		"Care both offer=30 aging=600",
	}}
	require.Equal(t, want, readConfig(t, e, want, func(_ string, ev events.Event) string {
		require.Equal(t, events.TypeQueue, ev.Type)
		var x events.Queue
		require.NoError(t, ev.Decode(&x))
		s := x.Name
		if r := x.Routing; r != nil {
			s += fmt.Sprintf(" %s offer=%d", r.Mode, r.OfferSeconds)
			if r.MissedOfferAway {
				s += " away"
			}
			if len(r.Weights) > 0 {
				s += fmt.Sprintf(" weights=%v", r.Weights)
			}
			s += fmt.Sprintf(" aging=%d", r.AgingSeconds)
			if r.RequeueOfflineSeconds > 0 {
				s += fmt.Sprintf(" requeue=%d", r.RequeueOfflineSeconds)
			}
		}
		return s
	}))
}

// TestOffersAreAnswered: an offer comes from the router as a command and
// is checked (the agent is an enabled member of the queue with room for
// it, the fencing token is not older than the conversation's); only its
// agent accepts or rejects it, nobody else takes it; a lapsed offer counts
// against its agent (and makes them away where the queue says so), a
// withdrawn one does not.
func TestOffersAreAnswered(t *testing.T) {
	fx := newCmdFixture(t)
	e := fx.e
	_, mate := e.userToken(t, fx.b, "agent", fx.q)
	routed := func(t *testing.T, text string) cmdConv {
		t.Helper()
		c := fx.chat(t, text)
		c = fx.act(t, fx.admin, c.ID, "route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID))
		require.Equal(t, "new", c.State)
		return c
	}
	offer := func(t *testing.T, c cmdConv, user uuid.UUID, fence int64) (string, string) {
		t.Helper()
		return fx.run(t, c, events.InboxCommand{Kind: events.CommandOffer,
			Offer: &events.Offer{UserID: user.String(), ExpiresAt: time.Now().Add(time.Minute), Fence: fence}})
	}
	offered := func(t *testing.T, text string, user uuid.UUID) cmdConv {
		t.Helper()
		c := routed(t, text)
		outcome, reason := offer(t, c, user, 0)
		require.Equal(t, "applied", outcome, reason)
		c = fx.conv(t, c.ID)
		require.Equal(t, "offered", c.State)
		require.Equal(t, []string{user.String()}, c.AssigneeIDs)
		require.NotNil(t, c.OfferExpiresAt)
		return c
	}
	last := func(t *testing.T, id string) cmdAudit {
		t.Helper()
		a := fx.audit(t, id)
		return a[len(a)-1]
	}
	userID := func(t *testing.T, data json.RawMessage) string {
		t.Helper()
		var d struct {
			UserID string `json:"user_id"`
		}
		require.NoError(t, json.Unmarshal(data, &d), "%s", data)
		return d.UserID
	}
	agentID := fx.agentUser.ID
	agents := func(t *testing.T) map[string]rtAgent { return rtAgents(t, e, fx.admin) }
	convPath := func(c cmdConv) string { return "/v1/conversations/" + c.ID }

	t.Run("accept: only the offered agent", func(t *testing.T) {
		c := offered(t, "accept me", agentID)
		p := rtProblem(t, e, mate, http.MethodPost, convPath(c)+"/accept", "", http.StatusConflict)
		require.Equal(t, "offered", p.State)
		p = rtProblem(t, e, mate, http.MethodPost, convPath(c)+"/assign", "", http.StatusConflict)
		require.Equal(t, "offered", p.State, "another agent took a conversation offered to someone else")
		rtProblem(t, e, fx.b.APIToken.Token, http.MethodPost, convPath(c)+"/accept", "", http.StatusForbidden)
		require.Equal(t, "offered", fx.conv(t, c.ID).State)

		got := fx.act(t, fx.agent, c.ID, "accept", "")
		require.Equal(t, "assigned", got.State)
		require.Equal(t, []string{agentID.String()}, got.AssigneeIDs)
		require.Nil(t, got.OfferExpiresAt)
		a := last(t, c.ID)
		require.Equal(t, cmdAudit{ActorKind: "user", ActorID: agentID.String(), Action: "accept", From: "offered", To: "assigned"},
			cmdAudit{ActorKind: a.ActorKind, ActorID: a.ActorID, Action: a.Action, From: a.From, To: a.To})

		p = rtProblem(t, e, fx.agent, http.MethodPost, convPath(c)+"/accept", "", http.StatusConflict)
		require.Equal(t, "assigned", p.State, "accepted twice")
	})

	t.Run("the offered agent may also take it with assign", func(t *testing.T) {
		c := offered(t, "take me", agentID)
		got := fx.act(t, fx.agent, c.ID, "assign", "")
		require.Equal(t, "assigned", got.State)
	})

	t.Run("reject: back to new, audited", func(t *testing.T) {
		c := offered(t, "reject me", agentID)
		rtProblem(t, e, mate, http.MethodPost, convPath(c)+"/reject", "", http.StatusConflict)
		rtProblem(t, e, fx.b.APIToken.Token, http.MethodPost, convPath(c)+"/reject", "", http.StatusForbidden)
		before := agents(t)[agentID.String()].MissedOffers
		got := fx.act(t, fx.agent, c.ID, "reject", "")
		require.Equal(t, "new", got.State)
		require.Empty(t, got.AssigneeIDs)
		require.Nil(t, got.OfferExpiresAt)
		a := last(t, c.ID)
		require.Equal(t, "offer_rejected", a.Action)
		require.Equal(t, "user", a.ActorKind)
		require.Equal(t, agentID.String(), userID(t, a.Data))
		require.Equal(t, before, agents(t)[agentID.String()].MissedOffers, "a rejection counted as a missed offer")
		rtProblem(t, e, fx.agent, http.MethodPost, convPath(c)+"/reject", "", http.StatusConflict)
	})

	// The agent is online: a missed offer makes them away only where the
	// queue says so.
	rtSetPresence(t, e, fx.agent, "online")
	t.Run("expire: a missed offer, counted", func(t *testing.T) {
		require.Zero(t, agents(t)[agentID.String()].MissedOffers)
		c := offered(t, "let me lapse", agentID)
		outcome, reason := fx.run(t, c, events.InboxCommand{Kind: events.CommandExpireOffer, DueAt: *c.OfferExpiresAt})
		require.Equal(t, "applied", outcome, reason)
		got := fx.conv(t, c.ID)
		require.Equal(t, "new", got.State)
		require.Empty(t, got.AssigneeIDs)
		require.Nil(t, got.OfferExpiresAt)
		a := last(t, c.ID)
		require.Equal(t, "offer_expired", a.Action)
		require.Equal(t, agentID.String(), userID(t, a.Data))
		ag := agents(t)[agentID.String()]
		require.EqualValues(t, 1, ag.MissedOffers)
		require.Equal(t, "online", ag.Presence.Status, "made away by a queue that does not say so")

		// Where the queue says so, the agent is made away.
		require.Equal(t, http.StatusOK, e.do(t, fx.admin, http.MethodPut, "/v1/admin/queues/"+fx.q.ID.String()+"/routing",
			`{"mode":"push","missed_offer_away":true}`, nil))
		c = offered(t, "let me lapse again", agentID)
		outcome, reason = fx.run(t, c, events.InboxCommand{Kind: events.CommandExpireOffer})
		require.Equal(t, "applied", outcome, reason)
		ag = agents(t)[agentID.String()]
		require.EqualValues(t, 2, ag.MissedOffers)
		require.Equal(t, "away", ag.Presence.Status)
		require.Equal(t, "missed_offer", ag.Presence.Reason)
		p := rtPresence(t, e, fx.agent)
		require.Equal(t, "away", p.Status)
		require.Equal(t, "missed_offer", p.Reason)
		require.Contains(t, string(last(t, c.ID).Data), `"made_away":true`)

		// An expiry of an offer taken meanwhile is stale and counts nothing.
		c = offered(t, "accepted in time", agentID)
		fx.act(t, fx.agent, c.ID, "accept", "")
		outcome, _ = fx.run(t, c, events.InboxCommand{Kind: events.CommandExpireOffer})
		require.Equal(t, "stale", outcome)
		require.EqualValues(t, 2, agents(t)[agentID.String()].MissedOffers)

		// Back online by their own choice: no reason any more.
		p = rtSetPresence(t, e, fx.agent, "online")
		require.Empty(t, p.Reason)
	})

	t.Run("withdraw: back to new, not counted", func(t *testing.T) {
		before := agents(t)[agentID.String()].MissedOffers
		c := offered(t, "withdraw me", agentID)
		outcome, reason := fx.run(t, c, events.InboxCommand{Kind: events.CommandWithdrawOffer})
		require.Equal(t, "applied", outcome, reason)
		got := fx.conv(t, c.ID)
		require.Equal(t, "new", got.State)
		require.Empty(t, got.AssigneeIDs)
		require.Nil(t, got.OfferExpiresAt)
		a := last(t, c.ID)
		require.Equal(t, "offer_withdrawn", a.Action)
		require.Equal(t, "system", a.ActorKind)
		require.Equal(t, agentID.String(), userID(t, a.Data))
		require.Equal(t, before, agents(t)[agentID.String()].MissedOffers, "a withdrawn offer counted as missed")
		outcome, _ = fx.run(t, got, events.InboxCommand{Kind: events.CommandWithdrawOffer})
		require.Equal(t, "stale", outcome, "withdrew an offer that is not there")
	})

	t.Run("no room: stale; the queue's weights count", func(t *testing.T) {
		small, err := e.admin.CreateUser(context.Background(), fx.b.Tenant.ID, inbox.UserSpec{Email: testkit.RandomName("small-") + "@example.com",
			Name: "Small", Role: domain.Role("agent"), Capacity: 1, QueueIDs: []uuid.UUID{fx.q.ID}})
		require.NoError(t, err)
		first := offered(t, "the one it holds", small.ID)
		ag := agents(t)[small.ID.String()]
		require.Equal(t, 1, ag.Capacity)
		require.Equal(t, 1, ag.Held, "an offered conversation is held")
		require.InDelta(t, 1.0, ag.Load, 1e-9)

		c := routed(t, "no room for me")
		outcome, reason := offer(t, c, small.ID, 0)
		require.Equal(t, "stale", outcome)
		require.Contains(t, reason, "no room")
		got := fx.conv(t, c.ID)
		require.Equal(t, "new", got.State)
		require.Empty(t, got.AssigneeIDs)

		// A chat counts half in the queue now: room for a second.
		require.Equal(t, http.StatusOK, e.do(t, fx.admin, http.MethodPut, "/v1/admin/queues/"+fx.q.ID.String()+"/routing",
			`{"mode":"push","weights":{"chat":0.5}}`, nil))
		require.InDelta(t, 0.5, agents(t)[small.ID.String()].Load, 1e-9)
		outcome, reason = offer(t, c, small.ID, 0)
		require.Equal(t, "applied", outcome, reason)
		ag = agents(t)[small.ID.String()]
		require.Equal(t, 2, ag.Held)
		require.InDelta(t, 1.0, ag.Load, 1e-9)
		require.Equal(t, "offered", fx.conv(t, first.ID).State)
	})

	t.Run("not a member of the queue: stale", func(t *testing.T) {
		other := e.queue(t, fx.b, "Elsewhere")
		outsider, _ := e.userToken(t, fx.b, "agent", other)
		c := routed(t, "not for outsiders")
		outcome, reason := offer(t, c, outsider.ID, 0)
		require.Equal(t, "stale", outcome)
		require.Contains(t, reason, "not a member")
		require.Equal(t, "new", fx.conv(t, c.ID).State)
	})

	t.Run("fencing: an older token is stale", func(t *testing.T) {
		c := routed(t, "fence me")
		fx.act(t, fx.admin, c.ID, "assign", "")
		c = fx.act(t, fx.admin, c.ID, "release", "")
		require.Equal(t, "new", c.State)
		outcome, reason := offer(t, c, agentID, 1)
		require.Equal(t, "stale", outcome)
		require.Contains(t, reason, "fencing token")
		require.Equal(t, "new", fx.conv(t, c.ID).State)

		// A newer one is applied, and its agent accepts.
		outcome, reason = offer(t, c, agentID, time.Now().UnixMicro())
		require.Equal(t, "applied", outcome, reason)
		require.Equal(t, "assigned", fx.act(t, fx.agent, c.ID, "accept", "").State)
	})

}
