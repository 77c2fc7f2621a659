package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// Help requests ([000] "Demander de l'aide", "Envoyer et demander de
// l'aide") and external agents ([003]), through the API.

// helpRequest is what these tests read of a help request.
type helpRequest struct {
	ID             string  `json:"id"`
	RequesterID    string  `json:"requester_id"`
	Comment        string  `json:"comment"`
	ReplyMessageID *string `json:"reply_message_id"`
	AnsweredBy     *string `json:"answered_by"`
	Answer         *string `json:"answer"`
	Outcome        *string `json:"outcome"`
}

func (fx *cmdFixture) helpRequests(t *testing.T, token, conv string) []helpRequest {
	t.Helper()
	var l list[helpRequest]
	require.Equal(t, http.StatusOK, fx.e.do(t, token, http.MethodGet, "/v1/conversations/"+conv+"/help-requests", "", &l))
	return l.Items
}

// held is a chat conversation of the fixture's queue assigned to its agent.
func (fx *cmdFixture) held(t *testing.T, text string) cmdConv {
	t.Helper()
	c := fx.chat(t, text)
	fx.act(t, fx.agent, c.ID, "assign", "")
	return fx.act(t, fx.agent, c.ID, "route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID))
}

// presence sets a user's presence (online: connected; offline: not).
func (fx *cmdFixture) presence(t *testing.T, token, status string) {
	t.Helper()
	require.Equal(t, http.StatusOK, fx.e.do(t, token, http.MethodPut, "/v1/me/presence", fmt.Sprintf(`{"status":%q}`, status), nil))
}

// lastAudit is the conversation's last audit entry, its data decoded.
func (fx *cmdFixture) lastAudit(t *testing.T, conv string) (cmdAudit, map[string]string) {
	t.Helper()
	a := fx.audit(t, conv)
	last := a[len(a)-1]
	var data map[string]string
	require.NoError(t, json.Unmarshal(last.Data, &data), "data of %s: %s", last.Action, last.Data)
	return last, data
}

func (fx *cmdFixture) status(t *testing.T, token, method, path, body string) int {
	t.Helper()
	return fx.e.do(t, token, method, path, body, nil)
}

func TestHelpRequests(t *testing.T) {
	fx := newCmdFixture(t)
	requester := fx.agentUser.ID.String()
	_, mate := fx.e.userToken(t, fx.b, "agent", fx.q)
	expertUser, expert := fx.e.userToken(t, fx.b, "agent", fx.q)
	elsewhere := fx.e.queue(t, fx.b, "Elsewhere")
	farUser, far := fx.e.userToken(t, fx.b, "agent", elsewhere)
	for _, u := range []string{expertUser.ID.String(), farUser.ID.String()} {
		require.Equal(t, http.StatusOK, fx.status(t, fx.admin, http.MethodPatch, "/v1/admin/users/"+u, `{"permissions":["answer_help_requests"]}`))
	}

	c := fx.held(t, "I need a refund")
	p := "/v1/conversations/" + c.ID
	got := fx.act(t, fx.agent, c.ID, "help-requests", `{"comment":"Can we refund after 30 days?"}`)
	require.Equal(t, "help_requested", got.State)
	require.Empty(t, got.AssigneeIDs, "the requester still holds it")
	last, data := fx.lastAudit(t, c.ID)
	require.Equal(t, "help_request", last.Action)
	reqs := fx.helpRequests(t, fx.agent, c.ID)
	require.Len(t, reqs, 1)
	require.Equal(t, helpRequest{ID: reqs[0].ID, RequesterID: requester, Comment: "Can we refund after 30 days?"}, reqs[0])
	require.Equal(t, map[string]string{"help_request_id": reqs[0].ID, "requester_id": requester}, data)
	require.Len(t, fx.messages(t, c.ID), 1, "the help request reached the customer's messages")

	t.Run("the requester can no longer act on it", func(t *testing.T) {
		before := fx.conv(t, c.ID)
		until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		for _, call := range []struct {
			method, action, body string
			status               int
		}{
			{http.MethodPost, "/reply", `{"text":"Yes"}`, http.StatusForbidden},
			{http.MethodPost, "/help-requests", `{}`, http.StatusForbidden},
			{http.MethodPost, "/external", ``, http.StatusForbidden},
			{http.MethodPatch, "", `{"locked":true}`, http.StatusForbidden},
			{http.MethodPost, "/bot", `{"action":"block"}`, http.StatusForbidden},
			{http.MethodPost, "/assign", ``, http.StatusConflict},
			{http.MethodPut, "/assignees", fmt.Sprintf(`{"user_ids":[%q]}`, requester), http.StatusConflict},
			{http.MethodPost, "/release", ``, http.StatusConflict},
			{http.MethodPost, "/archive", ``, http.StatusConflict},
			{http.MethodPost, "/complete", `{"disposition":"solved"}`, http.StatusConflict},
			{http.MethodPost, "/defer", fmt.Sprintf(`{"until":%q}`, until), http.StatusConflict},
			{http.MethodPost, "/transfer", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID), http.StatusConflict},
			{http.MethodPost, "/route", fmt.Sprintf(`{"queue_id":%q}`, fx.q.ID), http.StatusConflict},
			{http.MethodPost, "/resume", ``, http.StatusConflict},
			{http.MethodPost, "/help-requests/" + reqs[0].ID + "/answer", `{"text":"myself"}`, http.StatusForbidden},
		} {
			require.Equal(t, call.status, fx.status(t, fx.agent, call.method, p+call.action, call.body), "%s %s", call.method, call.action)
		}
		require.Equal(t, before, fx.conv(t, c.ID))
	})

	t.Run("those who answer help requests see it in their tab", func(t *testing.T) {
		tab := func(token string) []string {
			var l list[cmdConv]
			require.Equal(t, http.StatusOK, fx.e.get(t, token, "/v1/conversations?tab=help_requested&limit=200", &l))
			var ids []string
			for _, x := range l.Items {
				ids = append(ids, x.ID)
			}
			return ids
		}
		require.Contains(t, tab(expert), c.ID)
		require.Contains(t, tab(fx.admin), c.ID)
		require.NotContains(t, tab(far), c.ID, "a conversation of another queue is in the tab")
		require.Empty(t, fx.helpRequests(t, fx.admin, c.ID)[0].Answer)
		// Out of their sight: like a missing conversation.
		require.Equal(t, http.StatusNotFound, fx.status(t, far, http.MethodPost, p+"/help-requests/"+reqs[0].ID+"/answer", `{"text":"x"}`))
		require.Equal(t, http.StatusNotFound, fx.status(t, far, http.MethodGet, p+"/help-requests", ""))
	})

	t.Run("only those with the permission answer", func(t *testing.T) {
		before := fx.conv(t, c.ID)
		require.Equal(t, http.StatusForbidden, fx.status(t, mate, http.MethodPost, p+"/help-requests/"+reqs[0].ID+"/answer", `{"text":"Sure"}`))
		require.Equal(t, http.StatusForbidden, fx.status(t, fx.b.APIToken.Token, http.MethodPost, p+"/help-requests/"+reqs[0].ID+"/answer", `{"text":"Sure"}`))
		require.Equal(t, before, fx.conv(t, c.ID))
		require.Nil(t, fx.helpRequests(t, fx.admin, c.ID)[0].Answer)
	})

	t.Run("answered while the requester is online: back to them", func(t *testing.T) {
		fx.presence(t, fx.agent, "online")
		got := fx.act(t, expert, c.ID, "help-requests/"+reqs[0].ID+"/answer", `{"text":"Yes, as a gesture."}`)
		require.Equal(t, "assigned", got.State)
		require.Equal(t, []string{requester}, got.AssigneeIDs)
		last, data := fx.lastAudit(t, c.ID)
		require.Equal(t, "help_answer", last.Action)
		require.Equal(t, map[string]string{"help_request_id": reqs[0].ID, "requester_id": requester, "answered_by": expertUser.ID.String(),
			"back_to": "requester"}, data)
		answered := fx.helpRequests(t, fx.agent, c.ID)[0]
		require.Equal(t, "Yes, as a gesture.", *answered.Answer)
		require.Equal(t, expertUser.ID.String(), *answered.AnsweredBy)
		require.Equal(t, "requester", *answered.Outcome)
		// Answered once: again is a conflict.
		require.Equal(t, http.StatusConflict, fx.status(t, fx.admin, http.MethodPost, p+"/help-requests/"+reqs[0].ID+"/answer", `{"text":"again"}`))
		// The requester works on it again.
		fx.act(t, fx.agent, c.ID, "reply", `{"text":"Refunded."}`)
	})

	t.Run("answered while the requester is offline: to the queue, with the tenant's priority", func(t *testing.T) {
		fx.presence(t, fx.agent, "offline")
		keep := fx.held(t, "first")
		fx.act(t, fx.agent, keep.ID, "help-requests", "")
		id := fx.helpRequests(t, fx.agent, keep.ID)[0].ID
		got := fx.act(t, fx.admin, keep.ID, "help-requests/"+id+"/answer", `{"text":"No."}`)
		require.Equal(t, "new", got.State)
		require.Empty(t, got.AssigneeIDs)
		require.Equal(t, 0, fx.priority(t, keep.ID), "without a setting, the conversation keeps its priority")
		_, data := fx.lastAudit(t, keep.ID)
		require.Equal(t, "queue", data["back_to"])
		require.Equal(t, "queue", *fx.helpRequests(t, fx.admin, keep.ID)[0].Outcome)

		var s struct {
			AnsweredPriority *int `json:"answered_priority"`
		}
		require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodGet, "/v1/admin/settings/help", "", &s))
		require.Nil(t, s.AnsweredPriority)
		require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPut, "/v1/admin/settings/help", `{"answered_priority":7}`, &s))
		require.Equal(t, 7, *s.AnsweredPriority)
		require.Equal(t, http.StatusBadRequest, fx.status(t, fx.admin, http.MethodPut, "/v1/admin/settings/help", `{"answered_priority":11}`))
		require.Equal(t, http.StatusForbidden, fx.status(t, fx.agent, http.MethodPut, "/v1/admin/settings/help", `{"answered_priority":1}`))
		require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodGet, "/v1/admin/settings/help", "", &s))
		require.Equal(t, 7, *s.AnsweredPriority)

		urgent := fx.held(t, "second")
		fx.act(t, fx.agent, urgent.ID, "help-requests", `{"comment":"?"}`)
		id = fx.helpRequests(t, fx.agent, urgent.ID)[0].ID
		got = fx.act(t, fx.admin, urgent.ID, "help-requests/"+id+"/answer", `{"text":"Escalate."}`)
		require.Equal(t, "new", got.State)
		require.Equal(t, 7, fx.priority(t, urgent.ID))
	})

	t.Run("send and ask for help: the reply goes out first, in the same transaction", func(t *testing.T) {
		s := fx.held(t, "where is my parcel?")
		bad := fx.conv(t, s.ID)
		var prob struct {
			Errors []struct {
				Field string `json:"field"`
			} `json:"errors"`
		}
		require.Equal(t, http.StatusBadRequest, fx.e.do(t, fx.agent, http.MethodPost, "/v1/conversations/"+s.ID+"/help-requests",
			`{"comment":"x","reply":{"text":"Wait","subject":"Hi"}}`, &prob))
		require.Equal(t, "reply.subject", prob.Errors[0].Field, "a chat reply has no subject")
		require.Equal(t, bad, fx.conv(t, s.ID))
		require.Empty(t, fx.helpRequests(t, fx.admin, s.ID))

		got := fx.act(t, fx.agent, s.ID, "help-requests", `{"comment":"Lost parcel","reply":{"text":"Let me check, please wait."}}`)
		require.Equal(t, "help_requested", got.State)
		require.Equal(t, bad.Version+2, got.Version, "the reply and the request are two changes")
		msgs := fx.messages(t, s.ID)
		require.Equal(t, cmdMessage{Direction: "outbound", Body: "Let me check, please wait."}, msgs[len(msgs)-1])
		a := fx.audit(t, s.ID)
		require.Equal(t, []string{"reply", "help_request"}, []string{a[len(a)-2].Action, a[len(a)-1].Action})
		require.Equal(t, []string{"assigned", "answered"}, []string{a[len(a)-2].From, a[len(a)-2].To})
		require.Equal(t, []string{"answered", "help_requested"}, []string{a[len(a)-1].From, a[len(a)-1].To})
		r := fx.helpRequests(t, fx.agent, s.ID)
		require.Len(t, r, 1)
		require.NotNil(t, r[0].ReplyMessageID)

		// Announced as two changes, in order, then nothing else.
		reader := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: fx.e.brokers, GroupID: testkit.RandomName("help-"), GroupTopics: []string{events.TopicConversations},
			StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
		defer reader.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var actions []string
		for len(actions) == 0 || !strings.HasPrefix(actions[len(actions)-1], "help_request:") {
			m, err := reader.ReadMessage(ctx)
			require.NoError(t, err, "the help request was not announced")
			ev, _, err := events.FromMessage(ctx, m)
			require.NoError(t, err)
			if ev.Subject != s.ID || ev.Type != events.TypeConversationChanged {
				continue
			}
			var ch events.ConversationChanged
			require.NoError(t, ev.Decode(&ch))
			actions = append(actions, ch.Action+":"+ch.From+">"+ch.To)
		}
		require.Equal(t, []string{"reply:assigned>answered", "help_request:answered>help_requested"}, actions[len(actions)-2:])
	})

	t.Run("a customer message keeps it waiting", func(t *testing.T) {
		w := fx.held(t, "hello")
		fx.act(t, fx.agent, w.ID, "help-requests", `{}`)
		fx.write(t, w.ID, "anyone there?")
		got := fx.conv(t, w.ID)
		require.Equal(t, "help_requested", got.State)
		require.Equal(t, "customer", got.LastWriter)
	})
}

func (fx *cmdFixture) priority(t *testing.T, conv string) int {
	t.Helper()
	var c struct {
		Priority int `json:"priority"`
	}
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodGet, "/v1/conversations/"+conv, "", &c))
	return c.Priority
}

func TestExternalAgents(t *testing.T) {
	fx := newCmdFixture(t)
	sender := fx.agentUser.ID.String()
	_, mate := fx.e.userToken(t, fx.b, "agent", fx.q)

	c := fx.held(t, "my contract")
	p := "/v1/conversations/" + c.ID
	got := fx.act(t, fx.agent, c.ID, "external", `{"comment":"Legal must sign"}`)
	require.Equal(t, "external", got.State)
	require.Empty(t, got.AssigneeIDs)
	last, data := fx.lastAudit(t, c.ID)
	require.Equal(t, "external", last.Action)
	require.Equal(t, map[string]string{"comment": "Legal must sign"}, data)
	// Its agent holds it no more; nobody else can take it meanwhile.
	require.Equal(t, http.StatusForbidden, fx.status(t, fx.agent, http.MethodPost, p+"/reply", `{"text":"x"}`))
	require.Equal(t, http.StatusConflict, fx.status(t, mate, http.MethodPost, p+"/assign", ""))
	require.Equal(t, http.StatusConflict, fx.status(t, fx.admin, http.MethodPost, p+"/external", ""))
	require.Equal(t, http.StatusForbidden, fx.status(t, mate, http.MethodPost, p+"/external/return", ""), "a teammate took it back")
	// The customer writing keeps it waiting.
	fx.write(t, c.ID, "any news?")
	require.Equal(t, "external", fx.conv(t, c.ID).State)

	// Back while its agent is online: theirs again.
	fx.presence(t, fx.agent, "online")
	got = fx.act(t, fx.agent, c.ID, "external/return", `{"comment":"signed"}`)
	require.Equal(t, "assigned", got.State)
	require.Equal(t, []string{sender}, got.AssigneeIDs)
	_, data = fx.lastAudit(t, c.ID)
	require.Equal(t, map[string]string{"back_to": "requester"}, data)
	require.Equal(t, http.StatusConflict, fx.status(t, fx.agent, http.MethodPost, p+"/external/return", ""))

	// Back while its agent is offline, by a supervisor: to the queue.
	fx.act(t, fx.agent, c.ID, "external", "")
	fx.presence(t, fx.agent, "offline")
	got = fx.act(t, fx.admin, c.ID, "external/return", "")
	require.Equal(t, "new", got.State)
	require.Empty(t, got.AssigneeIDs)
	_, data = fx.lastAudit(t, c.ID)
	require.Equal(t, map[string]string{"back_to": "queue"}, data)
}

// TestWaitingMessagesWhileWaitingForHelp: the waiting message's hours for
// help_requested and external apply while a conversation waits there
// ([003]): the scheduler arms its timer on the entry into the state, and
// the inbox sends it while the conversation is still in that entry; once
// it came back, the timer of that entry is stale.
func TestWaitingMessagesWhileWaitingForHelp(t *testing.T) {
	fx := newCmdFixture(t)
	var wm struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, fx.e.do(t, fx.admin, http.MethodPost, "/v1/admin/waiting-messages",
		`{"name":"Help","subject":"Still on it","body":"We are checking with a colleague.","hours":{"help_requested":2,"external":24}}`, &wm))
	require.Equal(t, http.StatusOK, fx.e.do(t, fx.admin, http.MethodPut, "/v1/admin/automation",
		fmt.Sprintf(`{"channels":{"chat":true},"waiting_message_id":%q}`, wm.ID), nil))
	waiting := events.InboxCommand{Kind: events.CommandSendAutomatic, Automatic: &events.Automatic{Purpose: events.AutomaticWaiting, WaitingMessageID: wm.ID}}

	for _, step := range []struct{ state, action, back string }{
		{"external", "external", "external/return"},
		{"help_requested", "help-requests", ""},
	} {
		t.Run(step.state, func(t *testing.T) {
			c := fx.held(t, "waiting in "+step.state)
			// Assigned: no waiting message applies.
			outcome, reason := fx.run(t, c, waiting)
			require.Equal(t, "stale", outcome)
			require.Contains(t, reason, "no hours for assigned")

			entered := fx.act(t, fx.agent, c.ID, step.action, "")
			require.Equal(t, step.state, entered.State)
			outcome, reason = fx.run(t, entered, waiting)
			require.Equal(t, "applied", outcome, reason)
			require.Len(t, fx.automatic(t, c.ID), 1)
			require.Equal(t, "We are checking with a colleague.", fx.automatic(t, c.ID)[0].Body)

			// Back from waiting: the timer of that entry no longer fires.
			if step.back != "" {
				fx.act(t, fx.admin, c.ID, step.back, "")
			} else {
				id := fx.helpRequests(t, fx.admin, c.ID)[0].ID
				fx.act(t, fx.admin, c.ID, "help-requests/"+id+"/answer", `{"text":"done"}`)
			}
			id := "cmd-late-" + step.state
			waiting.Expect = entry(entered)
			fx.send(t, id, entered, waiting)
			outcome, reason = fx.outcome(t, id)
			require.Equal(t, "stale", outcome)
			require.Contains(t, reason, "is new, not "+step.state)
			require.Len(t, fx.automatic(t, c.ID), 1)
		})
	}
}
