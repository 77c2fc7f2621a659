package inbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// stWait bounds every wait on a stream.
const stWait = 20 * time.Second

// stEvent is one block of GET /v1/stream.
type stEvent struct {
	ID, Event string
	// Type, Action, Conversation, Queue and Body come from the data.
	Type         string
	Action       string
	Conversation string
	Queue        string
	Body         string
}

type stClient struct {
	blocks chan stEvent
	cancel context.CancelFunc
}

// stOpen connects to the stream with token, resuming from lastEventID when
// not empty, and returns the client and what came before the ready event
// (a replay or a reset).
func stOpen(t *testing.T, e env, token, lastEventID string) (*stClient, []stEvent) {
	t.Helper()
	return stOpenAs(t, e, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) }, lastEventID)
}

// stOpenAs is stOpen with the credentials auth puts on the request.
func stOpenAs(t *testing.T, e env, auth func(*http.Request), lastEventID string) (*stClient, []stEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/v1/stream", nil)
	require.NoError(t, err)
	auth(req)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &stClient{blocks: make(chan stEvent, 1000), cancel: cancel}
	go func() {
		defer close(c.blocks)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var b stEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if b.Event != "" {
					c.blocks <- b
				}
				b = stEvent{}
			case strings.HasPrefix(line, "id: "):
				b.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				b.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Type string `json:"type"`
					Data struct {
						Action       string `json:"action"`
						Conversation struct {
							ID      string  `json:"id"`
							QueueID *string `json:"queue_id"`
						} `json:"conversation"`
						Message struct {
							Body string `json:"body"`
						} `json:"message"`
					} `json:"data"`
				}
				if json.Unmarshal([]byte(line[6:]), &d) == nil {
					b.Type, b.Action, b.Conversation, b.Body = d.Type, d.Data.Action, d.Data.Conversation.ID, d.Data.Message.Body
					if d.Data.Conversation.QueueID != nil {
						b.Queue = *d.Data.Conversation.QueueID
					}
				}
			}
		}
	}()
	before := c.until(t, "the ready event", func(ev stEvent) bool { return ev.Event == "ready" })
	return c, before[:len(before)-1]
}

// until reads events up to the first that matches, which it includes.
func (c *stClient) until(t *testing.T, what string, match func(stEvent) bool) []stEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stWait)
	defer cancel()
	var got []stEvent
	for {
		select {
		case ev, ok := <-c.blocks:
			require.True(t, ok, "the stream ended before %s", what)
			got = append(got, ev)
			if match(ev) {
				return got
			}
		case <-ctx.Done():
			t.Fatalf("no %s on the stream after %s; got %+v", what, stWait, got)
		}
	}
}

// untilAll reads until every matcher matched an event, in any order
// (events of different conversations may come in any order).
func (c *stClient) untilAll(t *testing.T, what string, matches ...func(stEvent) bool) []stEvent {
	t.Helper()
	left := matches
	return c.until(t, what, func(ev stEvent) bool {
		for i, m := range left {
			if m(ev) {
				left = append(left[:i:i], left[i+1:]...)
				break
			}
		}
		return len(left) == 0
	})
}

func stMessage(body string) func(stEvent) bool {
	return func(ev stEvent) bool { return ev.Type == events.TypeConversationMessage && ev.Body == body }
}

func stRouted(conv string) func(stEvent) bool {
	return func(ev stEvent) bool {
		return ev.Type == events.TypeConversationChanged && ev.Action == "route" && ev.Conversation == conv
	}
}

func TestStreamTellsEachAgentWhatTheyMaySee(t *testing.T) {
	e := start(t)
	acme := e.tenant(t, "Acme")
	bravo := e.tenant(t, "Bravo")
	support := e.queue(t, acme, "Support")
	billing := e.queue(t, acme, "Billing")
	_, agentTok := e.userToken(t, acme, "agent", support)
	_, supTok := e.userToken(t, acme, "supervisor")
	_, strangerTok := e.userToken(t, bravo, "agent")

	// The supervisor sees all of Acme: once their stream shows an event,
	// the hub has handed it to every client, in the same order.
	sup, _ := stOpen(t, e, supTok, "")

	e.send(t, acme, "ev-1", "m-1", "s-support", "u-1", "for support")
	e.send(t, acme, "ev-2", "m-2", "s-billing", "u-2", "for billing")
	convOf := map[string]string{}
	testkit.Eventually(t, stWait, func() bool {
		for _, c := range e.conversations(t, supTok) {
			if msgs := e.messages(t, supTok, c.ID); len(msgs) > 0 {
				convOf[msgs[0].Body] = c.ID
			}
		}
		return len(convOf) == 2
	}, "the conversations were not stored")
	supportConv, billingConv := convOf["for support"], convOf["for billing"]
	for conv, queue := range map[string]string{supportConv: support.ID.String(), billingConv: billing.ID.String()} {
		require.Equal(t, http.StatusOK, e.do(t, supTok, http.MethodPost, "/v1/conversations/"+conv+"/route", fmt.Sprintf(`{"queue_id":%q}`, queue), nil))
	}
	sup.untilAll(t, "both routings", stRouted(supportConv), stRouted(billingConv))

	agent, _ := stOpen(t, e, agentTok, "")
	stranger, _ := stOpen(t, e, strangerTok, "")

	// Billing's message first, and handled, before Support's: had the
	// agent been given it, it would come before Support's.
	e.send(t, acme, "ev-3", "m-3", "s-billing", "u-2", "billing again")
	sup.until(t, "billing's message", stMessage("billing again"))
	e.send(t, acme, "ev-4", "m-4", "s-support", "u-1", "support again")
	got := agent.until(t, "support's message", stMessage("support again"))
	for _, ev := range got {
		require.NotEqual(t, billingConv, ev.Conversation, "the agent got an event of another team's conversation: %+v", ev)
	}
	last := got[len(got)-1]
	require.Equal(t, supportConv, last.Conversation)
	require.Equal(t, support.ID.String(), last.Queue)
	require.NotEmpty(t, last.ID)

	// Another tenant's agent got none of it: Bravo's own message comes
	// first on their stream, though sent after.
	e.send(t, bravo, "ev-5", "m-5", "s-bravo", "u-9", "for bravo")
	got = stranger.until(t, "Bravo's message", stMessage("for bravo"))
	for _, ev := range got {
		require.NotContains(t, []string{supportConv, billingConv}, ev.Conversation, "a Bravo agent got an Acme event: %+v", ev)
	}

	// The agent drops off; what happens meanwhile is replayed when they
	// come back with the last id they got.
	agent.cancel()
	e.send(t, acme, "ev-6", "m-6", "s-support", "u-1", "while away")
	e.send(t, acme, "ev-7", "m-7", "s-billing", "u-2", "billing while away")
	sup.untilAll(t, "the messages sent while the agent was away", stMessage("while away"), stMessage("billing while away"))

	back, replay := stOpen(t, e, agentTok, last.ID)
	var bodies []string
	for _, ev := range replay {
		require.NotEqual(t, "reset", ev.Event, "the hub keeps far more than this")
		require.NotEqual(t, billingConv, ev.Conversation, "replayed an event of another team's conversation: %+v", ev)
		if ev.Type == events.TypeConversationMessage {
			bodies = append(bodies, ev.Body)
		}
	}
	require.Equal(t, []string{"while away"}, bodies, "exactly what was missed")

	// And it goes on live.
	e.send(t, acme, "ev-8", "m-8", "s-support", "u-1", "welcome back")
	back.until(t, "the next message", stMessage("welcome back"))
}

func TestStreamNeedsAToken(t *testing.T) {
	e := start(t)
	require.Equal(t, http.StatusUnauthorized, e.get(t, "", "/v1/stream", nil))
	require.Equal(t, http.StatusUnauthorized, e.get(t, "sbt_not-a-token", "/v1/stream", nil))
}
