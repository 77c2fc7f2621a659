package inbox_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

type fullConversation struct {
	ID            string            `json:"id"`
	State         string            `json:"state"`
	PreviousState string            `json:"previous_state"`
	QueueID       *string           `json:"queue_id"`
	Assignees     []string          `json:"assignee_ids"`
	Unread        bool              `json:"unread"`
	LastWriter    string            `json:"last_writer"`
	Locked        bool              `json:"locked"`
	Flagged       bool              `json:"flagged"`
	Tags          map[string]string `json:"tags"`
	Disposition   string            `json:"disposition"`
}

type problemBody struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	State  string `json:"state"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func TestAnAgentsDay(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	agent, tok := e.userToken(t, b, "agent", support)

	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "Bonjour, ma commande n'est pas arrivée")
	var list struct {
		Items []fullConversation `json:"items"`
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, "/v1/conversations?tab=received", "", &list)
		return len(list.Items) == 1
	}, "the agent does not see the new conversation")
	conv := list.Items[0]
	require.Equal(t, "new", conv.State)
	require.True(t, conv.Unread)
	require.Equal(t, "customer", conv.LastWriter)
	path := "/v1/conversations/" + conv.ID

	var c fullConversation
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/assign", "", &c))
	require.Equal(t, "assigned", c.State)
	require.Equal(t, []string{agent.ID.String()}, c.Assignees)

	// No queue yet: no reply.
	var prob problemBody
	require.Equal(t, http.StatusConflict, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Bonjour"}`, &prob))
	require.Equal(t, "assigned", prob.State)
	require.Contains(t, prob.Detail, "routed to a queue")

	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), &c))
	require.Equal(t, "assigned", c.State, "routed to the agent's own team, it stays with them")

	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Nous regardons, un instant."}`, &c))
	require.Equal(t, "answered", c.State)
	require.Empty(t, c.Assignees)
	require.Equal(t, "agent", c.LastWriter)

	// The reply became a send command for the chat connector.
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: "t", GroupTopics: []string{events.TopicOutbound("chat")}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	require.NoError(t, err)
	ev, _, err := events.FromMessage(ctx, m)
	require.NoError(t, err)
	require.Equal(t, events.TypeSendMessage, ev.Type)
	var send events.SendMessage
	require.NoError(t, ev.Decode(&send))
	require.Equal(t, "u-1", send.To)
	require.Equal(t, "m-1", send.InReplyTo)
	require.Equal(t, "Nous regardons, un instant.", send.Text)
	require.Equal(t, conv.ID, send.ConversationID)

	// The customer writes again: back to received.
	e.send(t, b, "ev-2", "m-2", "s-1", "u-1", "Merci, j'attends")
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, path, "", &c)
		return c.State == "new"
	}, "the customer's message did not re-open the conversation (state %s)", c.State)
	require.Equal(t, "answered", c.PreviousState)
	require.Equal(t, "customer", c.LastWriter)

	// Take it again and complete it.
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/assign", "", &c))
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPost, path+"/complete", `{"disposition":""}`, &prob))
	require.Equal(t, "disposition", prob.Errors[0].Field)
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/complete", `{"disposition":"delivered late","notes":"sent a voucher"}`, &c))
	require.Equal(t, "done", c.State)
	require.Equal(t, "delivered late", c.Disposition)

	// Illegal now: 409 naming the state.
	require.Equal(t, http.StatusConflict, e.do(t, tok, http.MethodPost, path+"/release", "", &prob))
	require.Equal(t, "done", prob.State)

	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/resume", "", &c))
	require.Equal(t, "assigned", c.State)

	var audit struct {
		Items []struct {
			Action    string `json:"action"`
			From      string `json:"from_state"`
			To        string `json:"to_state"`
			ActorKind string `json:"actor_kind"`
			ActorID   string `json:"actor_id"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/audit", "", &audit))
	var steps []string
	for _, a := range audit.Items {
		steps = append(steps, fmt.Sprintf("%s:%s>%s", a.Action, a.From, a.To))
	}
	require.Equal(t, []string{
		"created:>new", "assign:new>assigned", "route:>", "reply:assigned>answered", "customer_message:answered>new",
		"assign:new>assigned", "complete:assigned>done", "resume:done>assigned",
	}, steps)
	require.Equal(t, agent.ID.String(), audit.Items[1].ActorID)
	require.Equal(t, "customer", audit.Items[4].ActorKind)
}
