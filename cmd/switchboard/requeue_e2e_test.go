package main_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestRequeueAfterAgentGoneEndToEnd runs the router's requeue through the
// binary: a conversation accepted by an agent whose heartbeats then stop
// goes back to its queue once they have been gone for the queue's
// requeue_offline_seconds, and is offered to the other agent.
func TestRequeueAfterAgentGoneEndToEnd(t *testing.T) {
	rt := startRouted(t, []string{"-presence.window=2s", "-router.requeue-interval=1s"}, map[string]any{"mode": "push", "offer_seconds": 30, "aging_seconds": 600, "requeue_offline_seconds": 2})
	base, b, admin, client, beats, agents := rt.base, rt.b, rt.admin, rt.client, rt.beats, rt.agents
	get := func(id string) scConversation {
		var c scConversation
		mustAPI(t, http.StatusOK, http.MethodGet, base+"/v1/conversations/"+id, admin, nil, &c)
		return c
	}
	offeredTo := func(id, not string) routedAgent {
		t.Helper()
		var c scConversation
		testkit.Eventually(t, 30*time.Second, func() bool {
			c = get(id)
			return c.State == "offered" && len(c.AssigneeIDs) == 1 && c.AssigneeIDs[0] != not
		}, "conversation %s was not offered (now %+v)", id, c)
		return agents[c.AssigneeIDs[0]]
	}

	chatSay(t, client, base, b, "m-requeue", "requeue", "Bonjour requeuecustomer", nil)
	conv := sessionConversation(t, base, admin, "requeuecustomer")
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+conv+"/route", admin, map[string]string{"queue_id": rt.queueID}, nil)

	// x accepts, then goes silent (heartbeats stop, no stream open).
	x := offeredTo(conv, "")
	var c scConversation
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+conv+"/accept", x.token, nil, &c)
	require.Equal(t, "assigned", c.State)
	require.Equal(t, []string{x.id}, c.AssigneeIDs)
	beats.set(x, false)

	// Gone for the queue's limit: requeued, and offered to the other agent.
	y := offeredTo(conv, x.id)
	require.NotEqual(t, x.id, y.id)
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/conversations/"+conv+"/accept", y.token, nil, &c)
	require.Equal(t, "assigned", c.State)
	require.Equal(t, []string{y.id}, c.AssigneeIDs, "x no longer holds it")
	c = get(conv)
	require.Equal(t, []string{y.id}, c.AssigneeIDs)

	var audit struct {
		Items []struct {
			ActorKind string          `json:"actor_kind"`
			ActorID   string          `json:"actor_id"`
			Action    string          `json:"action"`
			From      string          `json:"from_state"`
			To        string          `json:"to_state"`
			Data      json.RawMessage `json:"data"`
		} `json:"items"`
	}
	mustAPI(t, http.StatusOK, http.MethodGet, base+"/v1/conversations/"+conv+"/audit", admin, nil, &audit)
	var requeues int
	for _, e := range audit.Items {
		if e.Action != "requeue" {
			continue
		}
		requeues++
		require.Equal(t, "system", e.ActorKind, "requeue entry %+v", e)
		require.Equal(t, "router", e.ActorID, "requeue entry %+v", e)
		require.Equal(t, "assigned", e.From)
		require.Equal(t, "new", e.To)
		var data struct {
			AssigneeIDs []string `json:"assignee_ids"`
		}
		require.NoError(t, json.Unmarshal(e.Data, &data))
		require.Equal(t, []string{x.id}, data.AssigneeIDs, "the requeue names who held it")
	}
	require.Equal(t, 1, requeues, "audit %+v", audit.Items)
}
