package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// shiftClock is the system clock moved forward by what the test says: the
// inbox's time source, so that a week can pass in a test.
type shiftClock struct{ offset atomic.Int64 }

func (c *shiftClock) Now() time.Time                         { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *shiftClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (c *shiftClock) shift(d time.Duration)                  { c.offset.Add(int64(d)) }

// exQuestion is a question as the API answers it.
type exQuestion struct {
	ID              string      `json:"id"`
	ConversationID  string      `json:"conversation_id"`
	AskerID         string      `json:"asker_id"`
	ExpertID        string      `json:"expert_id"`
	Question        string      `json:"question"`
	IncludeMessages bool        `json:"include_messages"`
	Status          string      `json:"status"`
	CreatedAt       time.Time   `json:"created_at"`
	LinksExpireAt   time.Time   `json:"links_expire_at"`
	Answer          string      `json:"answer"`
	AnsweredAt      *time.Time  `json:"answered_at"`
	Messages        []exMessage `json:"messages"`
}

// exMessage is a message of an excerpt.
type exMessage struct {
	MessageID   string `json:"message_id"`
	Position    int    `json:"position"`
	Author      string `json:"author"`
	Text        string `json:"text"`
	Attachments []struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"attachments"`
}

// exEnv is an inbox with a tenant and the people of the tests.
type exEnv struct {
	e     env
	clock *shiftClock
	b     inbox.Bootstrap
	q     inbox.Queue
	admin string
	// asker is an agent of q; mate another agent of q; expert an agent
	// of no queue (who sees none of q's conversations); super a
	// supervisor.
	askerUser, mateUser, expertUser, superUser inbox.User
	asker, mate, expert, super                 string
	seq                                        atomic.Int64
}

func exStart(t *testing.T) *exEnv {
	t.Helper()
	clock := &shiftClock{}
	e := startWith(t, clock)
	x := &exEnv{e: e, clock: clock, b: e.tenant(t, "Acme")}
	x.q = e.queue(t, x.b, "Support")
	_, x.admin = e.userToken(t, x.b, "admin")
	x.askerUser, x.asker = x.person(t, "Jean-Pierre Martin", "agent", x.q)
	x.mateUser, x.mate = x.person(t, "Linus Torvalds", "agent", x.q)
	x.expertUser, x.expert = x.person(t, "Grace Hopper", "agent")
	x.superUser, x.super = x.person(t, "Sue Visor", "supervisor")
	return x
}

// person creates a user named name and logs them in.
func (x *exEnv) person(t *testing.T, name, role string, queues ...inbox.Queue) (inbox.User, string) {
	t.Helper()
	spec := inbox.UserSpec{Email: testkit.RandomName("x") + "@example.com", Name: name, Role: domain.Role(role), Password: azPassword}
	for _, q := range queues {
		spec.QueueIDs = append(spec.QueueIDs, q.ID)
	}
	u, err := x.e.admin.CreateUser(context.Background(), x.b.Tenant.ID, spec)
	require.NoError(t, err)
	return u, x.login(t, u)
}

// login opens a session of u, at the inbox's time.
func (x *exEnv) login(t *testing.T, u inbox.User) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, x.b.Tenant.ID, u.Email, azPassword)
	require.Equal(t, http.StatusOK, x.e.do(t, "", http.MethodPost, "/v1/auth/login", body, &tok))
	return tok.AccessToken
}

// say publishes a message of the customer of session (named name).
func (x *exEnv) say(t *testing.T, session, name, text string, atts ...events.Attachment) {
	t.Helper()
	n := x.seq.Add(1)
	m := events.MessageReceived{TenantID: x.b.Tenant.ID.String(), Channel: events.ChannelChat, ChannelAccountID: x.b.ChatChannel.ID.String(),
		ExternalID: fmt.Sprintf("%s-%d", session, n), ThreadKey: session, From: events.Party{Identity: session + "-user", Name: name},
		Text: text, ReceivedAt: time.Now().UTC(), Attachments: atts}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, x.e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
}

// conversation makes a conversation of session with the customer's texts,
// waits for all of them, routes it to the queue and assigns it to the
// asker; it returns its id and its messages.
func (x *exEnv) conversation(t *testing.T, session, name string, texts ...string) (string, []message) {
	t.Helper()
	for _, text := range texts {
		x.say(t, session, name, text)
	}
	id := x.waitConversation(t, session)
	msgs := x.waitMessages(t, id, len(texts))
	p := "/v1/conversations/" + id
	require.Equal(t, http.StatusOK, x.e.do(t, x.admin, http.MethodPost, p+"/route", fmt.Sprintf(`{"queue_id":%q}`, x.q.ID), nil))
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodPost, p+"/assign", "", nil))
	return id, msgs
}

// waitConversation waits for the conversation of a session.
func (x *exEnv) waitConversation(t *testing.T, session string) string {
	t.Helper()
	var id string
	testkit.Eventually(t, 30*time.Second, func() bool {
		var l list[conversation]
		x.e.do(t, x.admin, http.MethodGet, "/v1/conversations?limit=200", "", &l)
		for _, c := range l.Items {
			for _, m := range x.e.messages(t, x.admin, c.ID) {
				if strings.HasPrefix(m.ExternalID, session+"-") {
					id = c.ID
					return true
				}
			}
		}
		return false
	}, "the conversation of %s was not stored", session)
	return id
}

// waitMessages waits until the conversation holds n messages.
func (x *exEnv) waitMessages(t *testing.T, conv string, n int) []message {
	t.Helper()
	var msgs []message
	testkit.Eventually(t, 30*time.Second, func() bool {
		msgs = x.e.messages(t, x.admin, conv)
		return len(msgs) >= n
	}, "the conversation does not hold %d messages", n)
	require.Len(t, msgs, n)
	return msgs
}

// ask posts a question as token and returns the status and the answer.
func (x *exEnv) ask(t *testing.T, token, conv, body string) (int, exQuestion, azProblem) {
	t.Helper()
	r := azCall(t, x.e, token, http.MethodPost, "/v1/conversations/"+conv+"/expert-questions", body)
	var q exQuestion
	var p azProblem
	if r.Status == http.StatusCreated {
		require.NoError(t, json.Unmarshal(r.Body, &q))
	} else {
		require.NoError(t, json.Unmarshal(r.Body, &p), "answered %s", r)
	}
	return r.Status, q, p
}

func (x *exEnv) question(expert, text string, include bool, ids ...string) string {
	v := map[string]any{"expert_id": expert, "question": text, "include_messages": include}
	if ids != nil {
		v["message_ids"] = ids
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

// audited returns the data of the conversation's audit entries of action.
func (x *exEnv) audited(t *testing.T, conv, action string) []map[string]any {
	t.Helper()
	var l list[struct {
		Action  string          `json:"action"`
		ActorID string          `json:"actor_id"`
		Data    json.RawMessage `json:"data"`
	}]
	require.Equal(t, http.StatusOK, x.e.do(t, x.admin, http.MethodGet, "/v1/conversations/"+conv+"/audit", "", &l))
	var out []map[string]any
	for _, e := range l.Items {
		if e.Action == action {
			var d map[string]any
			require.NoError(t, json.Unmarshal(e.Data, &d))
			out = append(out, d)
		}
	}
	return out
}

func TestExpertQuestionLimits(t *testing.T) {
	x := exStart(t)
	expert := x.expertUser.ID.String()

	// The question: 300 characters (not bytes) pass, 301 do not.
	conv, _ := x.conversation(t, "lim-q", "Ada", "hi")
	status, _, p := x.ask(t, x.asker, conv, x.question(expert, strings.Repeat("é", 301), false))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"question"}, p.fields())
	require.Contains(t, p.Errors[0].Reason, "301")
	require.Contains(t, p.Errors[0].Reason, "300")
	status, q, _ := x.ask(t, x.asker, conv, x.question(expert, strings.Repeat("é", 300), false))
	require.Equal(t, http.StatusCreated, status)
	require.Empty(t, q.Messages, "nothing was to be shared")
	require.False(t, q.IncludeMessages)

	// 1,500 characters of shared text pass, 1,501 do not.
	conv, msgs := x.conversation(t, "lim-c", "Ada", strings.Repeat("x", 1500))
	status, q, _ = x.ask(t, x.asker, conv, x.question(expert, "Is this normal?", true))
	require.Equal(t, http.StatusCreated, status)
	require.Len(t, q.Messages, 1)
	x.say(t, "lim-c", "Ada", "!")
	msgs = x.waitMessages(t, conv, 2)
	status, _, p = x.ask(t, x.asker, conv, x.question(expert, "And now?", true))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"include_messages"}, p.fields())
	require.Contains(t, p.Errors[0].Reason, "1501")
	require.Contains(t, p.Errors[0].Reason, "1500")
	status, _, p = x.ask(t, x.asker, conv, x.question(expert, "And now?", true, msgs[0].ID, msgs[1].ID))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"message_ids"}, p.fields())
	require.Contains(t, p.Errors[0].Reason, "1501")
	// The agent leaves out what the question needs not.
	status, q, _ = x.ask(t, x.asker, conv, x.question(expert, "And now?", true, msgs[1].ID))
	require.Equal(t, http.StatusCreated, status)
	require.Len(t, q.Messages, 1)
	require.Equal(t, "!", q.Messages[0].Text)

	// The last 20 messages, not 21.
	texts := make([]string, 21)
	for i := range texts {
		texts[i] = fmt.Sprintf("message %d", i)
	}
	conv, msgs = x.conversation(t, "lim-20", "Ada", texts...)
	status, q, _ = x.ask(t, x.asker, conv, x.question(expert, "Why?", true))
	require.Equal(t, http.StatusCreated, status)
	require.Len(t, q.Messages, 20)
	for i, m := range q.Messages {
		require.Equal(t, i, m.Position)
		require.Equal(t, fmt.Sprintf("message %d", i+1), m.Text, "the excerpt is the last 20 messages, oldest first")
		require.Equal(t, msgs[i+1].ID, m.MessageID)
	}
	ids := make([]string, 0, 21)
	for _, m := range msgs {
		ids = append(ids, m.ID)
	}
	status, _, p = x.ask(t, x.asker, conv, x.question(expert, "Why?", true, ids[0]))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"message_ids[0]"}, p.fields(), "the first message is not among the last 20")
	status, _, p = x.ask(t, x.asker, conv, x.question(expert, "Why?", true, ids...))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"message_ids"}, p.fields())
	require.Contains(t, p.Errors[0].Reason, "21")
	status, q, _ = x.ask(t, x.asker, conv, x.question(expert, "Why?", true, ids[1:]...))
	require.Equal(t, http.StatusCreated, status)
	require.Len(t, q.Messages, 20)

	// The answer: 4,000 bytes pass, 4,001 do not.
	answer := "/v1/expert-questions/" + q.ID + "/answer"
	r := azCall(t, x.e, x.expert, http.MethodPost, answer, fmt.Sprintf(`{"text":%q}`, strings.Repeat("a", 4001)))
	require.Equal(t, []string{"text"}, azMustProblem(t, r, http.StatusBadRequest, "an answer of 4,001 bytes").fields())
	r = azCall(t, x.e, x.expert, http.MethodPost, answer, fmt.Sprintf(`{"text":%q}`, strings.Repeat("é", 2000)))
	require.Equal(t, http.StatusOK, r.Status, "an answer of 4,000 bytes answered %s", r)
}

func TestExpertQuestionReplacesNames(t *testing.T) {
	x := exStart(t)
	conv, _ := x.conversation(t, "names", "Ada Lovelace", "Hello, Ada LOVELACE here; is Jean-Pierre around?")
	p := "/v1/conversations/" + conv
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodPost, p+"/reply", `{"text":"Hi ada, Jean-Pierre Martin speaking. My colleague linus will help."}`, nil))
	x.say(t, "names", "Ada Lovelace", "Thanks Martin! Adamant as ever, lovelace")
	x.waitMessages(t, conv, 3)
	require.Equal(t, http.StatusOK, x.e.do(t, x.mate, http.MethodPost, p+"/assign", "", nil))
	require.Equal(t, http.StatusOK, x.e.do(t, x.mate, http.MethodPost, p+"/reply", `{"text":"Linus TORVALDS here, with Grace"}`, nil))
	x.say(t, "names", "Ada Lovelace", "ok")
	x.waitMessages(t, conv, 5)
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodPost, p+"/assign", "", nil))

	status, q, prob := x.ask(t, x.asker, conv, x.question(x.expertUser.ID.String(), "Can Ada get a refund?", true))
	require.Equal(t, http.StatusCreated, status, "%+v", prob)
	var authors, texts []string
	for _, m := range q.Messages {
		authors = append(authors, m.Author)
		texts = append(texts, m.Text)
	}
	require.Equal(t, []string{"Client", "Agent", "Client", "Agent", "Client"}, authors)
	require.Equal(t, []string{
		"Hello, Client here; is Agent around?",
		"Hi Client, Agent speaking. My colleague Agent will help.",
		"Thanks Agent! Adamant as ever, Client",
		// The expert's own name is theirs to read.
		"Agent here, with Grace",
		"ok",
	}, texts)
	require.Equal(t, "Can Ada get a refund?", q.Question, "the question is the agent's own words")
	// What the expert reads later is what was stored.
	var got exQuestion
	require.Equal(t, http.StatusOK, x.e.do(t, x.expert, http.MethodGet, "/v1/expert-questions/"+q.ID, "", &got))
	require.Equal(t, q.Messages, got.Messages)
	var stored []string
	rows, err := x.e.pool.Query(context.Background(), `SELECT author || ': ' || text FROM inbox.expert_question_messages WHERE question_id = $1 ORDER BY position`, q.ID)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		stored = append(stored, s)
	}
	require.NoError(t, rows.Err())
	require.Len(t, stored, 5)
	require.Equal(t, "Client: Hello, Client here; is Agent around?", stored[0])
}

func TestExpertQuestionAnswerAndRules(t *testing.T) {
	x := exStart(t)
	expert := x.expertUser.ID.String()
	conv, _ := x.conversation(t, "rules", "Ada", "My parcel is lost")
	p := "/v1/conversations/" + conv

	// Who may ask: the assignee and a supervisor; not a teammate who sees
	// the conversation, not an API token; the expert is someone else, an
	// active user of the tenant.
	status, _, prob := x.ask(t, x.mate, conv, x.question(expert, "Lost?", false))
	require.Equal(t, http.StatusForbidden, status, "%+v", prob)
	status, _, _ = x.ask(t, x.b.APIToken.Token, conv, x.question(expert, "Lost?", false))
	require.Equal(t, http.StatusForbidden, status)
	status, _, prob = x.ask(t, x.asker, conv, x.question(x.askerUser.ID.String(), "Lost?", false))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"expert_id"}, prob.fields())
	status, _, prob = x.ask(t, x.asker, conv, x.question(uuid.NewString(), "Lost?", false))
	require.Equal(t, []string{"expert_id"}, prob.fields())
	gone, _ := x.person(t, "Gone Away", "agent")
	require.Equal(t, http.StatusNoContent, x.e.do(t, x.admin, http.MethodDelete, "/v1/admin/users/"+gone.ID.String(), "", nil))
	status, _, prob = x.ask(t, x.asker, conv, x.question(gone.ID.String(), "Lost?", false))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, []string{"expert_id"}, prob.fields(), "a disabled user is no expert")
	status, _, _ = x.ask(t, x.super, conv, x.question(expert, "Lost, says the supervisor?", false))
	require.Equal(t, http.StatusCreated, status)

	status, q, _ := x.ask(t, x.asker, conv, x.question(expert, "Is the parcel lost?", true))
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, "open", q.Status)
	require.Equal(t, x.askerUser.ID.String(), q.AskerID)
	require.Equal(t, q.CreatedAt.Add(7*24*time.Hour), q.LinksExpireAt)
	want := map[string]any{"expert_question_id": q.ID, "expert_id": expert, "asker_id": x.askerUser.ID.String()}
	require.Contains(t, x.audited(t, conv, "expert_question"), want)

	// The expert sees it among theirs, open; the asker among theirs.
	byRole := func(token, query string) []string {
		var l list[exQuestion]
		require.Equal(t, http.StatusOK, x.e.do(t, token, http.MethodGet, "/v1/expert-questions"+query, "", &l))
		var ids []string
		for _, it := range l.Items {
			ids = append(ids, it.ID)
		}
		return ids
	}
	require.Contains(t, byRole(x.expert, "?role=expert&status=open"), q.ID)
	require.NotContains(t, byRole(x.expert, "?role=asker"), q.ID)
	require.Contains(t, byRole(x.asker, "?role=asker"), q.ID)
	require.NotContains(t, byRole(x.asker, "?role=expert"), q.ID)
	require.NotContains(t, byRole(x.mate, ""), q.ID)

	// Reading it: the expert (who does not see the conversation), the
	// asker, a supervisor; not the teammate.
	path := "/v1/expert-questions/" + q.ID
	require.Equal(t, http.StatusNotFound, x.e.do(t, x.expert, http.MethodGet, p, "", nil), "the expert does not see the conversation")
	for _, tok := range []string{x.expert, x.asker, x.super, x.admin} {
		require.Equal(t, http.StatusOK, x.e.do(t, tok, http.MethodGet, path, "", nil))
	}
	require.Equal(t, http.StatusNotFound, x.e.do(t, x.mate, http.MethodGet, path, "", nil))

	// Only the expert answers, once.
	answer := path + "/answer"
	for _, tok := range []string{x.asker, x.super, x.admin} {
		azMustProblem(t, azCall(t, x.e, tok, http.MethodPost, answer, `{"text":"Yes"}`), http.StatusForbidden, "answering as another")
	}
	azMustProblem(t, azCall(t, x.e, x.mate, http.MethodPost, answer, `{"text":"Yes"}`), http.StatusNotFound, "answering what one cannot read")
	var answered exQuestion
	require.Equal(t, http.StatusOK, x.e.do(t, x.expert, http.MethodPost, answer, `{"text":"Probably: open an inquiry with the carrier."}`, &answered))
	require.Equal(t, "answered", answered.Status)
	require.NotNil(t, answered.AnsweredAt)
	azMustProblem(t, azCall(t, x.e, x.expert, http.MethodPost, answer, `{"text":"Again"}`), http.StatusConflict, "answering twice")
	require.Equal(t, []map[string]any{want}, x.audited(t, conv, "expert_answer"))

	// The asker sees the answer on the conversation.
	var l list[exQuestion]
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodGet, p+"/expert-questions?status=answered", "", &l))
	require.Len(t, l.Items, 1)
	require.Equal(t, q.ID, l.Items[0].ID)
	require.Equal(t, "Probably: open an inquiry with the carrier.", l.Items[0].Answer)
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodGet, p+"/expert-questions", "", &l))
	require.Len(t, l.Items, 2, "the supervisor's and the agent's")
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodGet, p+"/expert-questions?limit=1", "", &l))
	require.Len(t, l.Items, 1)
	require.NotEmpty(t, l.NextCursor)
	require.Contains(t, byRole(x.expert, "?status=answered"), q.ID)
	require.NotContains(t, byRole(x.expert, "?status=open"), q.ID)

	// A done conversation needs resuming first.
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodPost, p+"/archive", "", nil))
	status, _, prob = x.ask(t, x.asker, conv, x.question(expert, "Still lost?", false))
	require.Equal(t, http.StatusForbidden, status, "the agent no longer works on it: %+v", prob)
	status, _, prob = x.ask(t, x.super, conv, x.question(expert, "Still lost?", false))
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "done", prob.State)
}

func TestExpertQuestionAttachmentLinks(t *testing.T) {
	x := exStart(t)
	ref, err := x.e.blobs.Put(context.Background(), x.b.Tenant.ID.String()+"/chat", strings.NewReader("Order 42"), 1<<10)
	require.NoError(t, err)
	x.say(t, "links", "Ada", "Here is my receipt", events.Attachment{Name: "receipt.txt", ContentType: "text/plain", Size: ref.Size, BlobKey: ref.Key})
	conv := x.waitConversation(t, "links")
	p := "/v1/conversations/" + conv
	require.Equal(t, http.StatusOK, x.e.do(t, x.admin, http.MethodPost, p+"/route", fmt.Sprintf(`{"queue_id":%q}`, x.q.ID), nil))
	require.Equal(t, http.StatusOK, x.e.do(t, x.asker, http.MethodPost, p+"/assign", "", nil))
	status, q, prob := x.ask(t, x.asker, conv, x.question(x.expertUser.ID.String(), "Is it valid?", true))
	require.Equal(t, http.StatusCreated, status, "%+v", prob)
	require.Len(t, q.Messages, 1)
	require.Len(t, q.Messages[0].Attachments, 1)
	link := q.Messages[0].Attachments[0].URL
	require.Equal(t, fmt.Sprintf("/v1/expert-questions/%s/attachments/%s/0", q.ID, q.Messages[0].MessageID), link)

	download := func(token, path string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, x.e.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		oaCheck(t, req, resp.StatusCode, resp.Header, raw)
		return resp.StatusCode, string(raw)
	}
	for _, tok := range []string{x.expert, x.asker} {
		status, body := download(tok, link)
		require.Equal(t, http.StatusOK, status, body)
		require.Equal(t, "Order 42", body)
	}
	// Only the expert and the asker: a supervisor who reads the question,
	// the teammate, and another index or message are told nothing exists.
	for _, tok := range []string{x.super, x.mate, x.admin} {
		status, _ := download(tok, link)
		require.Equal(t, http.StatusNotFound, status)
	}
	for _, other := range []string{strings.TrimSuffix(link, "0") + "1", strings.Replace(link, q.Messages[0].MessageID, uuid.NewString(), 1),
		strings.Replace(link, q.ID, uuid.NewString(), 1), strings.TrimSuffix(link, "0") + "00"} {
		status, _ := download(x.expert, other)
		require.Equal(t, http.StatusNotFound, status, other)
	}

	// A week later, the link is gone; the question stays readable. The
	// sessions of a week ago expired: everyone logs in again.
	x.clock.shift(7*24*time.Hour - time.Minute)
	expert, asker, mate := x.login(t, x.expertUser), x.login(t, x.askerUser), x.login(t, x.mateUser)
	status, _ = download(expert, link)
	require.Equal(t, http.StatusOK, status, "the link is valid for a week")
	x.clock.shift(time.Minute)
	for _, tok := range []string{expert, asker} {
		status, body := download(tok, link)
		require.Equal(t, http.StatusGone, status, body)
		require.Contains(t, body, "week")
	}
	status, _ = download(mate, link)
	require.Equal(t, http.StatusNotFound, status, "to anyone else, the link never existed")
	var got exQuestion
	require.Equal(t, http.StatusOK, x.e.do(t, expert, http.MethodGet, "/v1/expert-questions/"+q.ID, "", &got))
	require.True(t, slices.ContainsFunc(got.Messages, func(m exMessage) bool { return m.Text == "Here is my receipt" }))
}
