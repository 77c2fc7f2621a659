package main_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// chatSay posts a customer's chat message to the node at base and
// requires it accepted (202), retrying while the node is away.
func chatSay(t *testing.T, client *http.Client, base string, b testkit.Bootstrap, messageID, session, text string, metadata map[string]string) {
	t.Helper()
	body := map[string]any{"message_id": messageID, "session_id": session, "user": map[string]string{"id": "user-" + session, "name": "Ada"}, "text": text}
	if metadata != nil {
		body["metadata"] = metadata
	}
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, err := testkit.ChatRequest(base, b, raw, time.Now())
		require.NoError(t, err)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				return
			}
		}
		require.True(t, time.Now().Before(deadline), "message %s never accepted (last: %v)", messageID, err)
		time.Sleep(100 * time.Millisecond)
	}
}

type scConversation struct {
	ID          string   `json:"id"`
	State       string   `json:"state"`
	AssigneeIDs []string `json:"assignee_ids"`
}

// sessionConversation waits for the conversation of a chat session (its
// customer is "user-<session>", named after the session).
func sessionConversation(t *testing.T, base, token, text string) string {
	t.Helper()
	var id string
	testkit.Eventually(t, 30*time.Second, func() bool {
		var l struct {
			Items []conversation `json:"items"`
		}
		api(t, http.MethodGet, base+"/v1/conversations?limit=200&q="+text, token, nil, &l)
		if len(l.Items) == 1 {
			id = l.Items[0].ID
			return true
		}
		return false
	}, "no conversation with %q", text)
	return id
}

// TestSmartCloseEndToEnd runs smart close through the binary: four
// conversations completed with smart close, whose customers answer yes
// (the chat button), no, something else, or nothing.
func TestSmartCloseEndToEnd(t *testing.T) {
	dbURL := testkit.DatabaseURL(t)
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	base := "http://" + addr
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	startNode(t, dbURL, t.TempDir(), addr)
	admin := b.APIToken.Token
	client := &http.Client{Timeout: 10 * time.Second}

	require.Equal(t, http.StatusOK, api(t, http.MethodPut, base+"/v1/admin/automation", admin, map[string]any{
		"channels": map[string]bool{"chat": true},
		"smart_close": map[string]any{"timeout_minutes": 0.05, "texts": map[string]any{
			"chat": map[string]string{"question": "Avez-vous besoin d'autre chose, {{customer_name}} ?", "follow_up": "Dites-nous en plus.", "yes_label": "Oui", "no_label": "Non"}}},
	}, nil))
	var queue struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, base+"/v1/admin/queues", admin, map[string]string{"name": "Support"}, &queue))
	var agent struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, base+"/v1/admin/users", admin, map[string]any{
		"email": "ada@acme.test", "name": "Ada", "role": "agent", "queue_ids": []string{queue.ID}, "password": "correct horse battery"}, &agent))
	var login struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, http.StatusOK, api(t, http.MethodPost, base+"/v1/auth/login", "", map[string]string{
		"tenant_id": b.Tenant.ID, "email": "ada@acme.test", "password": "correct horse battery"}, &login))
	token := login.AccessToken

	convs := map[string]string{}
	for _, who := range []string{"yes", "no", "other", "silent"} {
		chatSay(t, client, base, b, "first-"+who, who, "Bonjour "+who+"customer", nil)
		id := sessionConversation(t, base, token, who+"customer")
		convs[who] = id
		p := base + "/v1/conversations/" + id
		require.Equal(t, http.StatusOK, api(t, http.MethodPost, p+"/assign", token, nil, nil))
		require.Equal(t, http.StatusOK, api(t, http.MethodPost, p+"/route", token, map[string]string{"queue_id": queue.ID}, nil))
		require.Equal(t, http.StatusOK, api(t, http.MethodPost, p+"/reply", token, map[string]string{"text": "C'est réglé."}, nil))
		var c scConversation
		require.Equal(t, http.StatusOK, api(t, http.MethodPost, p+"/complete", token, map[string]any{"disposition": "solved", "smart_close": true}, &c))
		require.Equal(t, "closing", c.State)
		var msgs struct {
			Items []message `json:"items"`
		}
		api(t, http.MethodGet, p+"/messages", token, nil, &msgs)
		last := msgs.Items[len(msgs.Items)-1]
		require.True(t, last.Automatic, "the question was not sent")
		require.Equal(t, "Avez-vous besoin d'autre chose, Ada ?", last.Body)
	}
	chatSay(t, client, base, b, "answer-yes", "yes", "Oui", map[string]string{"choice": "yes"})
	chatSay(t, client, base, b, "answer-no", "no", "non merci", nil)
	chatSay(t, client, base, b, "answer-other", "other", "Et ma facture de novembre ?", nil)

	state := func(who string) scConversation {
		var c scConversation
		require.Equal(t, http.StatusOK, api(t, http.MethodGet, base+"/v1/conversations/"+convs[who], admin, nil, &c))
		return c
	}
	want := map[string]string{"yes": "assigned", "no": "done", "other": "assigned", "silent": "done"}
	testkit.Eventually(t, 60*time.Second, func() bool {
		for who, s := range want {
			if state(who).State != s {
				return false
			}
		}
		return true
	}, "smart close did not end as it should")
	for _, who := range []string{"yes", "other"} {
		require.Equal(t, []string{agent.ID}, state(who).AssigneeIDs, "%s: back to its agent", who)
	}
	automatic := func(who string) []string {
		var msgs struct {
			Items []message `json:"items"`
		}
		api(t, http.MethodGet, base+"/v1/conversations/"+convs[who]+"/messages", admin, nil, &msgs)
		var out []string
		for _, m := range msgs.Items {
			if m.Automatic && m.Direction == "outbound" {
				out = append(out, m.Body)
			}
		}
		return out
	}
	require.Equal(t, []string{"Avez-vous besoin d'autre chose, Ada ?", "Dites-nous en plus."}, automatic("yes"), "a yes asks for details")
	require.Len(t, automatic("other"), 1, "another question needs no follow-up")
	audit := func(who string) []string {
		var l struct {
			Items []struct {
				ActorID string `json:"actor_id"`
				Action  string `json:"action"`
			} `json:"items"`
		}
		api(t, http.MethodGet, base+"/v1/conversations/"+convs[who]+"/audit", admin, nil, &l)
		var out []string
		for _, e := range l.Items {
			if e.ActorID == "scheduler" {
				out = append(out, e.Action)
			}
		}
		return out
	}
	require.Equal(t, []string{"smart_close_timeout"}, audit("silent"))
	require.Equal(t, []string{"smart_close_answer"}, audit("no"))
	require.Equal(t, []string{"smart_close_answer"}, audit("yes"))
	require.Equal(t, []string{"smart_close_answer"}, audit("other"))
}
