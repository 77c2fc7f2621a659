package main_test

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// routedAgent is an agent of the router tests, logged in.
type routedAgent struct {
	id, token string
}

// beater keeps the heartbeats of the agents it is told to, every half
// second, until the test ends.
type beater struct {
	mu  sync.Mutex
	on  map[string]bool
	who map[string]routedAgent
}

func startBeater(t *testing.T, base string) *beater {
	b := &beater{on: map[string]bool{}, who: map[string]routedAgent{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			b.mu.Lock()
			var tokens []string
			for id, on := range b.on {
				if on {
					tokens = append(tokens, b.who[id].token)
				}
			}
			b.mu.Unlock()
			for _, tok := range tokens {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/me/heartbeat", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return b
}

func (b *beater) set(a routedAgent, on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.who[a.id], b.on[a.id] = a, on
}

// TestOfferLifecycleEndToEnd runs push routing through the binary: offers
// accepted, rejected, missed (re-offered excluding who missed it, counted
// once), and withdrawn when an agent's heartbeats stop.
func TestOfferLifecycleEndToEnd(t *testing.T) {
	rt := startRouted(t, []string{"-presence.window=3s"}, map[string]any{"mode": "push", "offer_seconds": 5})
	base, b, admin, client, beats, agents := rt.base, rt.b, rt.admin, rt.client, rt.beats, rt.agents
	other := func(id string) routedAgent {
		for k, a := range agents {
			if k != id {
				return a
			}
		}
		t.Fatal("no other agent")
		return routedAgent{}
	}
	get := func(id string) scConversation {
		var c scConversation
		mustAPI(t, http.StatusOK, http.MethodGet, base+"/v1/conversations/"+id, admin, nil, &c)
		return c
	}
	// offeredTo waits until conversation id is offered, and returns to whom.
	offeredTo := func(id, not string) routedAgent {
		t.Helper()
		var c scConversation
		testkit.Eventually(t, 30*time.Second, func() bool {
			c = get(id)
			return c.State == "offered" && len(c.AssigneeIDs) == 1 && c.AssigneeIDs[0] != not
		}, "conversation %s was not offered (now %+v)", id, c)
		return agents[c.AssigneeIDs[0]]
	}
	arrive := func(session string) string {
		chatSay(t, client, base, b, "m-"+session, session, "Bonjour "+session+"customer", nil)
		id := sessionConversation(t, base, admin, session+"customer")
		mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+id+"/route", admin, map[string]string{"queue_id": rt.queueID}, nil)
		return id
	}
	missed := func() map[string]int {
		var l struct {
			Items []struct {
				ID           string `json:"id"`
				MissedOffers int    `json:"missed_offers"`
			} `json:"items"`
		}
		mustAPI(t, http.StatusOK, http.MethodGet, base+"/v1/routing/agents", admin, nil, &l)
		out := map[string]int{}
		for _, a := range l.Items {
			out[a.ID] = a.MissedOffers
		}
		return out
	}

	// Accept.
	c1 := arrive("one")
	x := offeredTo(c1, "")
	y := other(x.id)
	mustAPI(t, http.StatusConflict, http.MethodPost, base+"/v1/conversations/"+c1+"/accept", y.token, nil, nil)
	var c scConversation
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+c1+"/accept", x.token, nil, &c)
	require.Equal(t, "assigned", c.State)

	// y's stream: offers arrive on it with their countdown.
	streamed := make(chan string, 100)
	sctx, stopStream := context.WithCancel(context.Background())
	t.Cleanup(stopStream)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, base+"/v1/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+y.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				streamed <- line
			}
		}
	}()

	// Longest idle first: the next goes to y, who rejects it; it goes to x,
	// who lets it lapse; then back to y (both excluded, y idle longest).
	c2 := arrive("two")
	require.Equal(t, y.id, offeredTo(c2, "").id)
	testkit.Eventually(t, 10*time.Second, func() bool {
		for {
			select {
			case line := <-streamed:
				if strings.Contains(line, `"action":"offer"`) && strings.Contains(line, c2) && strings.Contains(line, `"offer_expires_at"`) {
					return true
				}
			default:
				return false
			}
		}
	}, "the offer of %s never reached y's stream", c2)
	stopStream()
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+c2+"/reject", y.token, nil, nil)
	require.Equal(t, x.id, offeredTo(c2, y.id).id, "re-offered to someone else than who rejected it")
	require.Equal(t, y.id, offeredTo(c2, x.id).id, "after x's offer lapsed")
	m := missed()
	require.Equal(t, 1, m[x.id], "x missed one offer")
	require.Equal(t, 0, m[y.id], "a rejection is not a missed offer")
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+c2+"/accept", y.token, nil, nil)

	// x goes silent with an offer pending: it is withdrawn and re-offered.
	c3 := arrive("three")
	holder := offeredTo(c3, "")
	beats.set(holder, false)
	next := offeredTo(c3, holder.id)
	require.NotEqual(t, holder.id, next.id)
	var audit struct {
		Items []struct {
			Action string `json:"action"`
		} `json:"items"`
	}
	mustAPI(t, http.StatusOK, http.MethodGet, base+"/v1/conversations/"+c3+"/audit", admin, nil, &audit)
	actions := make([]string, len(audit.Items))
	for i, e := range audit.Items {
		actions[i] = e.Action
	}
	require.True(t, slices.Contains(actions, "offer_withdrawn"), "audit %v", actions)
	require.Equal(t, 1, missed()[x.id], "a withdrawal is not a missed offer")
}

// routed is a binary with a push queue and two agents, ada and bob, online
// in it with heartbeats.
type routed struct {
	base, admin, queueID string
	b                    testkit.Bootstrap
	n                    *testkit.Node
	client               *http.Client
	beats                *beater
	agents               map[string]routedAgent
}

// startRouted starts the binary with args, makes a push queue with the
// routing settings given, and two agents of capacity 2 in it, online.
func startRouted(t *testing.T, args []string, routing map[string]any) routed {
	t.Helper()
	dbURL := testkit.DatabaseURL(t)
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	rt := routed{base: "http://" + addr, client: &http.Client{Timeout: 10 * time.Second}, agents: map[string]routedAgent{}}
	rt.b, err = testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt.n, err = testkit.StartNode(ctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(), Addr: addr, Args: args})
	require.NoError(t, err)
	t.Cleanup(func() {
		rt.n.Kill()
		if t.Failed() {
			t.Logf("switchboard output:\n%s", rt.n.Logs())
		}
	})
	rt.admin = rt.b.APIToken.Token

	var queue struct {
		ID string `json:"id"`
	}
	mustAPI(t, http.StatusCreated, http.MethodPost, rt.base+"/v1/admin/queues", rt.admin, map[string]string{"name": "Chat"}, &queue)
	rt.queueID = queue.ID
	mustAPI(t, http.StatusOK, http.MethodPut, rt.base+"/v1/admin/queues/"+queue.ID+"/routing", rt.admin, routing, nil)
	rt.beats = startBeater(t, rt.base)
	for _, name := range []string{"ada", "bob"} {
		var u struct {
			ID string `json:"id"`
		}
		mustAPI(t, http.StatusCreated, http.MethodPost, rt.base+"/v1/admin/users", rt.admin, map[string]any{
			"email": name + "@acme.test", "name": name, "role": "agent", "queue_ids": []string{queue.ID}, "capacity": 2,
			"password": "correct horse battery"}, &u)
		var login struct {
			AccessToken string `json:"access_token"`
		}
		mustAPI(t, http.StatusOK, http.MethodPost, rt.base+"/v1/auth/login", "", map[string]string{
			"tenant_id": rt.b.Tenant.ID, "email": name + "@acme.test", "password": "correct horse battery"}, &login)
		a := routedAgent{id: u.ID, token: login.AccessToken}
		rt.agents[u.ID] = a
		mustAPI(t, http.StatusOK, http.MethodPut, rt.base+"/v1/me/presence", a.token, map[string]string{"status": "online"}, nil)
		rt.beats.set(a, true)
	}
	return rt
}
