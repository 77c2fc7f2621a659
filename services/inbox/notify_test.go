package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// ntWait bounds every wait for a notification.
const ntWait = 20 * time.Second

type ntNotification struct {
	ID             string            `json:"id"`
	Kind           string            `json:"kind"`
	ConversationID string            `json:"conversation_id"`
	Actor          events.Actor      `json:"actor"`
	Data           map[string]string `json:"data"`
	ReadAt         *time.Time        `json:"read_at"`
}

// ntList returns token's notifications (query: "", "?unread=true").
func ntList(t *testing.T, e env, token, query string) []ntNotification {
	t.Helper()
	var l list[ntNotification]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/me/notifications"+query, "", &l))
	return l.Items
}

// ntFind returns token's notifications of kind on conv.
func ntFind(t *testing.T, e env, token, kind, conv string) []ntNotification {
	t.Helper()
	var out []ntNotification
	for _, n := range ntList(t, e, token, "?limit=200") {
		if n.Kind == kind && n.ConversationID == conv {
			out = append(out, n)
		}
	}
	return out
}

// ntAwait waits for token's notification of kind on conv.
func ntAwait(t *testing.T, e env, token, kind, conv string) ntNotification {
	t.Helper()
	var got []ntNotification
	testkit.Eventually(t, ntWait, func() bool {
		got = ntFind(t, e, token, kind, conv)
		return len(got) > 0
	}, "no "+kind+" notification on "+conv)
	require.Len(t, got, 1, "one notification per event and user")
	return got[0]
}

// ntConversation sends a customer's chat message on a new thread of b and
// returns the conversation it opened, and its thread.
func ntConversation(t *testing.T, e env, b inbox.Bootstrap) (conv, session string) {
	t.Helper()
	session = testkit.RandomName("nt-s-")
	e.send(t, b, uuid.NewString(), uuid.NewString(), session, "nt-"+session, "hello")
	testkit.Eventually(t, ntWait, func() bool {
		err := e.pool.QueryRow(context.Background(), `SELECT id::text FROM inbox.conversations WHERE tenant_id = $1 AND thread_key = $2`,
			b.Tenant.ID, session).Scan(&conv)
		return err == nil
	}, "the conversation was not stored")
	return conv, session
}

// ntNotified makes token's user, of b, notified once: they take a new
// conversation and the customer writes again. It returns the
// notification's id.
func ntNotified(t *testing.T, e env, b inbox.Bootstrap, token string) string {
	t.Helper()
	conv, session := ntConversation(t, e, b)
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodPost, "/v1/conversations/"+conv+"/assign", "", nil))
	e.send(t, b, uuid.NewString(), uuid.NewString(), session, "nt-"+session, "are you there?")
	return ntAwait(t, e, token, "customer_message", conv).ID
}

// ntPublish publishes a conversation.changed event of action on conv the
// way the inbox does (the help and expert actions come from other parts of
// the inbox): actor is the user who acted.
func ntPublish(t *testing.T, e env, b inbox.Bootstrap, conv, queue, actor string, action domain.Action, data map[string]string) {
	t.Helper()
	rawData, err := json.Marshal(data)
	require.NoError(t, err)
	snap, err := json.Marshal(map[string]any{"id": conv, "queue_id": queue, "assignee_ids": []string{}, "state": "help_requested"})
	require.NoError(t, err)
	ev, err := events.New(events.TypeConversationChanged, "switchboard/inbox", b.Tenant.ID.String(), time.Now(), events.ConversationChanged{
		Action: string(action), Actor: events.Actor{Kind: "user", ID: actor}, To: "help_requested", Data: rawData, Conversation: snap})
	require.NoError(t, err)
	ev.Subject = conv
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicConversations, []byte(conv), ev))
}

// ntMailed reports whether a notification email to user about conv was
// queued (written in the transaction of the notification).
func ntMailed(t *testing.T, e env, user uuid.UUID, conv string) bool {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM inbox.notification_emails WHERE user_id = $1 AND conversation_id = $2`,
		user, conv).Scan(&n))
	return n > 0
}

// ntUser creates a user of b with role, extra permissions and queues, and
// logs them in.
func ntUser(t *testing.T, e env, b inbox.Bootstrap, role string, perms []domain.Permission, queues ...inbox.Queue) (inbox.User, string) {
	t.Helper()
	spec := inbox.UserSpec{Email: testkit.RandomName("u") + "@example.com", Name: "Helper", Role: domain.Role(role), Permissions: perms, Password: azPassword}
	for _, q := range queues {
		spec.QueueIDs = append(spec.QueueIDs, q.ID)
	}
	u, err := e.admin.CreateUser(context.Background(), b.Tenant.ID, spec)
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, b.Tenant.ID, spec.Email, azPassword)
	require.Equal(t, http.StatusOK, e.do(t, "", http.MethodPost, "/v1/auth/login", body, &tok))
	return u, tok.AccessToken
}

func TestNotificationsOfAssignmentsAndCustomers(t *testing.T) {
	e := start(t)
	acme := e.tenant(t, "Acme")
	support := e.queue(t, acme, "Support")
	admin, adminTok := e.userToken(t, acme, "admin")
	ada, adaTok := e.userToken(t, acme, "agent", support)
	bob, bobTok := e.userToken(t, acme, "agent", support)
	emailOutbound := topicReader(t, e, events.TopicOutbound(events.ChannelEmail))

	// Ada is connected (her stream beats for her); Bob is not, and keeps
	// the default: he is mailed. A supervisor, who sees everything, is
	// connected too, and is told nothing.
	ada0, _ := stOpen(t, e, adaTok, "")
	_, supTok := e.userToken(t, acme, "supervisor")
	sup, _ := stOpen(t, e, supTok, "")
	var prefs struct {
		EmailWhenOffline bool `json:"email_when_offline"`
	}
	require.Equal(t, http.StatusOK, e.do(t, bobTok, http.MethodGet, "/v1/me/notification-settings", "", &prefs))
	require.True(t, prefs.EmailWhenOffline, "the default")

	// The admin assigns a conversation to Ada, Bob and themself.
	conv, session := ntConversation(t, e, acme)
	body := fmt.Sprintf(`{"user_ids":[%q,%q,%q]}`, ada.ID, admin.ID, bob.ID)
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodPut, "/v1/conversations/"+conv+"/assignees", body, nil))
	n := ntAwait(t, e, adaTok, "assigned", conv)
	require.Equal(t, events.Actor{Kind: "user", ID: admin.ID.String()}, n.Actor)
	bobs := ntAwait(t, e, bobTok, "assigned", conv)

	// Ada got it on her stream, and hers only.
	got := ada0.until(t, "Ada's notification", func(ev stEvent) bool { return ev.Type == events.TypeNotification })
	require.Equal(t, conv, got[len(got)-1].Conversation)

	// The customer answers: every assignee is told, the admin too. The
	// admin's assignment came first on the conversation: they were not
	// told of their own action.
	e.send(t, acme, uuid.NewString(), uuid.NewString(), session, "nt-"+session, "thanks")
	ntAwait(t, e, adminTok, "customer_message", conv)
	require.Empty(t, ntFind(t, e, adminTok, "assigned", conv), "the actor was told of their own action")
	ntAwait(t, e, adaTok, "customer_message", conv)
	ntAwait(t, e, bobTok, "customer_message", conv)

	// Bob, offline, was mailed once about the conversation (the second
	// notification is within the interval); Ada, connected, was not.
	mail := nextEvent(t, emailOutbound, func(ev events.Event) bool {
		return ev.Type == events.TypeSendMail && ev.ID == "notification-"+bobs.ID
	})
	var m events.SendMail
	require.NoError(t, mail.Decode(&m))
	require.NoError(t, m.Validate())
	require.Equal(t, events.MailNotification, m.Purpose)
	require.Equal(t, acme.Tenant.ID.String(), m.TenantID)
	require.Empty(t, m.MailboxID, "no notification mailbox: the operator's SMTP")
	var bobEmail string
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT email FROM inbox.users WHERE id = $1`, bob.ID).Scan(&bobEmail))
	require.Equal(t, []string{bobEmail}, m.To)
	require.Contains(t, m.Text, conv)
	require.False(t, ntMailed(t, e, ada.ID, conv), "a connected user was mailed")

	// Muted, the conversation tells nobody of the customer's messages.
	// The transfer that follows, on the same conversation, is the fence.
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodPatch, "/v1/conversations/"+conv, `{"muted":true}`, nil))
	e.send(t, acme, uuid.NewString(), uuid.NewString(), session, "nt-"+session, "hello again?")
	testkit.Eventually(t, ntWait, func() bool {
		return slices.ContainsFunc(e.messages(t, adminTok, conv), func(m message) bool { return m.Body == "hello again?" })
	}, "the customer's message was not stored")
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodPost, "/v1/conversations/"+conv+"/transfer", fmt.Sprintf(`{"user_id":%q}`, bob.ID), nil))
	testkit.Eventually(t, ntWait, func() bool { return len(ntFind(t, e, bobTok, "assigned", conv)) == 2 }, "no notification of the transfer to Bob")
	require.Len(t, ntFind(t, e, adaTok, "customer_message", conv), 1, "a muted conversation notified")
	// Ada's notification was on the topic before the transfer: had the
	// supervisor's stream been handed it, it would have come before.
	for _, ev := range sup.until(t, "the transfer", func(ev stEvent) bool { return ev.Action == "transfer" && ev.Conversation == conv }) {
		require.NotEqual(t, events.TypeNotification, ev.Type, "another user's notification reached the supervisor's stream")
	}
	require.Len(t, ntFind(t, e, bobTok, "customer_message", conv), 1, "a muted conversation notified")

	// Read: one, then all.
	unread := ntList(t, e, bobTok, "?unread=true")
	require.Len(t, unread, 3)
	var marked struct {
		Marked int `json:"marked"`
	}
	require.Equal(t, http.StatusOK, e.do(t, bobTok, http.MethodPost, "/v1/me/notifications/read", fmt.Sprintf(`{"ids":[%q]}`, unread[0].ID), &marked))
	require.Equal(t, 1, marked.Marked)
	require.Len(t, ntList(t, e, bobTok, "?unread=true"), 2)
	// Another user's id changes nothing.
	require.Equal(t, http.StatusOK, e.do(t, adaTok, http.MethodPost, "/v1/me/notifications/read", fmt.Sprintf(`{"ids":[%q]}`, unread[1].ID), &marked))
	require.Equal(t, 0, marked.Marked)
	require.Equal(t, http.StatusOK, e.do(t, bobTok, http.MethodPost, "/v1/me/notifications/read", `{"all":true}`, &marked))
	require.Equal(t, 2, marked.Marked)
	require.Empty(t, ntList(t, e, bobTok, "?unread=true"))
	require.Len(t, ntList(t, e, bobTok, ""), 3)

	// Pages, newest first.
	var page list[ntNotification]
	require.Equal(t, http.StatusOK, e.do(t, bobTok, http.MethodGet, "/v1/me/notifications?limit=2", "", &page))
	require.Len(t, page.Items, 2)
	require.NotEmpty(t, page.NextCursor)
	var rest list[ntNotification]
	require.Equal(t, http.StatusOK, e.do(t, bobTok, http.MethodGet, "/v1/me/notifications?limit=2&cursor="+page.NextCursor, "", &rest))
	require.Len(t, rest.Items, 1)
	require.Empty(t, rest.NextCursor)
	require.Equal(t, "customer_message", page.Items[1].Kind)
}

func TestNotificationsOfHelpAndExperts(t *testing.T) {
	e := start(t)
	acme := e.tenant(t, "Acme")
	support := e.queue(t, acme, "Support")
	billing := e.queue(t, acme, "Billing")
	requester, reqTok := ntUser(t, e, acme, "agent", []domain.Permission{domain.PermAnswerHelpRequests}, support)
	_, plainTok := e.userToken(t, acme, "agent", support)
	_, helperTok := ntUser(t, e, acme, "agent", []domain.Permission{domain.PermAnswerHelpRequests}, support)
	_, farTok := ntUser(t, e, acme, "agent", []domain.Permission{domain.PermAnswerHelpRequests}, billing)
	_, supTok := e.userToken(t, acme, "supervisor")
	expert, expertTok := e.userToken(t, acme, "agent", billing)

	// A help request on a conversation of Support: the supervisor and the
	// helper of Support are told; not the requester, an agent without the
	// permission, nor one who cannot see the conversation.
	conv, _ := ntConversation(t, e, acme)
	hr := uuid.NewString()
	ntPublish(t, e, acme, conv, support.ID.String(), requester.ID.String(), domain.ActionHelpRequest,
		map[string]string{"help_request_id": hr, "requester_id": requester.ID.String()})
	n := ntAwait(t, e, helperTok, "help_request", conv)
	require.Equal(t, hr, n.Data["help_request_id"])
	ntAwait(t, e, supTok, "help_request", conv)

	// The expert's question and answer follow on the same conversation:
	// once the asker is told of the answer, the help request was handled
	// long before.
	q := uuid.NewString()
	ntPublish(t, e, acme, conv, support.ID.String(), requester.ID.String(), domain.ActionExpertQuestion,
		map[string]string{"expert_question_id": q, "expert_id": expert.ID.String(), "asker_id": requester.ID.String()})
	n = ntAwait(t, e, expertTok, "expert_question", conv)
	require.Equal(t, q, n.Data["expert_question_id"])
	ntPublish(t, e, acme, conv, support.ID.String(), expert.ID.String(), domain.ActionExpertAnswer,
		map[string]string{"expert_question_id": q, "expert_id": expert.ID.String(), "asker_id": requester.ID.String()})
	ntAwait(t, e, reqTok, "expert_answer", conv)
	require.Empty(t, ntFind(t, e, expertTok, "expert_answer", conv), "the expert was told of their own answer")
	for name, tok := range map[string]string{"the requester": reqTok, "an agent without the permission": plainTok, "an agent of another queue": farTok} {
		require.Empty(t, ntFind(t, e, tok, "help_request", conv), "%s was told of the help request", name)
	}

	// A help answer that gives the conversation back to the requester.
	ntPublish(t, e, acme, conv, support.ID.String(), expert.ID.String(), domain.ActionHelpAnswer,
		map[string]string{"help_request_id": hr, "requester_id": requester.ID.String(), "back_to": "requester"})
	ntAwait(t, e, reqTok, "assigned", conv)

	// The same event delivered again notifies nobody twice (ntAwait checks
	// there is one).
	var dup int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) - count(DISTINCT (event_id, user_id)) FROM inbox.notifications`).Scan(&dup))
	require.Zero(t, dup)
}

func TestNotificationEmailsFollowThePreferenceAndTheTenantsMailbox(t *testing.T) {
	e := start(t)
	acme := e.tenant(t, "Acme")
	_, adminTok := e.userToken(t, acme, "admin")
	quiet, quietTok := e.userToken(t, acme, "agent")
	loud, loudTok := e.userToken(t, acme, "agent")
	emailOutbound := topicReader(t, e, events.TopicOutbound(events.ChannelEmail))

	// The tenant sends from its own mailbox.
	box := e.createMailbox(t, adminTok, testkit.RandomName("notify-")+"@acme.example").ID
	var settings struct {
		MailboxID *string `json:"mailbox_id"`
	}
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodGet, "/v1/admin/settings/notifications", "", &settings))
	require.Nil(t, settings.MailboxID)
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodPut, "/v1/admin/settings/notifications", fmt.Sprintf(`{"mailbox_id":%q}`, box), &settings))
	require.Equal(t, box, *settings.MailboxID)

	require.Equal(t, http.StatusOK, e.do(t, quietTok, http.MethodPut, "/v1/me/notification-settings", `{"email_when_offline":false}`, nil))
	var prefs struct {
		EmailWhenOffline bool `json:"email_when_offline"`
	}
	require.Equal(t, http.StatusOK, e.do(t, quietTok, http.MethodGet, "/v1/me/notification-settings", "", &prefs))
	require.False(t, prefs.EmailWhenOffline)

	// Both are offline; the customer writes on a conversation each holds.
	quietConv, _ := ntConversation(t, e, acme)
	loudConv, _ := ntConversation(t, e, acme)
	for conv, user := range map[string]string{quietConv: quiet.ID.String(), loudConv: loud.ID.String()} {
		require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodPut, "/v1/conversations/"+conv+"/assignees", fmt.Sprintf(`{"user_ids":[%q]}`, user), nil))
	}
	ntAwait(t, e, quietTok, "assigned", quietConv)
	n := ntAwait(t, e, loudTok, "assigned", loudConv)
	require.False(t, ntMailed(t, e, quiet.ID, quietConv), "a user who turned emails off was mailed")
	mail := nextEvent(t, emailOutbound, func(ev events.Event) bool { return ev.ID == "notification-"+n.ID })
	var m events.SendMail
	require.NoError(t, mail.Decode(&m))
	require.Equal(t, box, m.MailboxID)
	require.Equal(t, events.MailNotification, m.Purpose)
}

// ntAzCases are the notification routes of the authorisation matrix
// (azMatrix); fx may be empty when only the routes are wanted.
func ntAzCases(fx *azFixture) []azCase {
	const get, post, put = http.MethodGet, http.MethodPost, http.MethodPut
	const listPath = "/v1/me/notifications?limit=200"
	// notified makes token's user (of b) notified once more.
	notified := func(t *testing.T, b inbox.Bootstrap, token string) string { return ntNotified(t, fx.e, b, token) }
	unread := func(t *testing.T, token, id string) bool {
		var l list[ntNotification]
		require.NoError(t, json.Unmarshal(fx.ok(t, token, get, listPath, "").Body, &l))
		for _, n := range l.Items {
			if n.ID == id {
				return n.ReadAt == nil
			}
		}
		t.Fatalf("notification %s is not in the list", id)
		return false
	}
	read := func(t *testing.T, token, body string, want int) {
		var out struct {
			Marked int `json:"marked"`
		}
		require.NoError(t, json.Unmarshal(fx.ok(t, token, post, "/v1/me/notifications/read", body).Body, &out))
		require.Equal(t, want, out.Marked, "POST /v1/me/notifications/read %s", body)
	}
	prefs := func(t *testing.T, token string) string {
		return string(fx.ok(t, token, get, "/v1/me/notification-settings", "").Body)
	}
	setPrefs := func(t *testing.T, token string, on bool, others ...string) {
		before := make([]string, len(others))
		for i, o := range others {
			before[i] = prefs(t, o)
		}
		fx.ok(t, token, put, "/v1/me/notification-settings", fmt.Sprintf(`{"email_when_offline":%t}`, on))
		require.JSONEq(t, fmt.Sprintf(`{"email_when_offline":%t}`, on), prefs(t, token))
		for i, o := range others {
			require.Equal(t, before[i], prefs(t, o), "setting one's notification settings changed another's")
		}
	}
	const settings = "/v1/admin/settings/notifications"
	newMailbox := func(t *testing.T, token string) string {
		return fx.create(t, token, "/v1/admin/mailboxes", mailboxBody(testkit.RandomName("nt-")+"@example.com", "imap-pass-s3cret"))
	}
	return []azCase{
		{route: "GET /v1/me/notifications", calls: &azCalls{path: "/v1/me/notifications",
			other: func(t *testing.T) {
				mine := notified(t, fx.b, fx.other)
				notified(t, fx.a, fx.admin)
				fx.separate(t, listPath, mine)
			},
			agent: func(t *testing.T) {
				theirs := notified(t, fx.a, fx.admin)
				mine := notified(t, fx.a, fx.agent)
				ids := azIDs(t, fx.ok(t, fx.agent, get, listPath, ""))
				require.Contains(t, ids, mine)
				require.NotContains(t, ids, theirs, "the agent lists the admin's notifications")
			},
			right: func(t *testing.T) {
				mine := notified(t, fx.a, fx.admin)
				require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, listPath, "")), mine)
			},
		}},
		{route: "POST /v1/me/notifications/read", calls: &azCalls{path: "/v1/me/notifications/read", body: `{"all":true}`,
			other: func(t *testing.T) {
				theirs := notified(t, fx.a, fx.admin)
				read(t, fx.other, fmt.Sprintf(`{"ids":[%q]}`, theirs), 0)
				read(t, fx.other, `{"all":true}`, countUnread(t, fx, fx.other))
				require.True(t, unread(t, fx.admin, theirs), "B's admin marked A's admin's notification read")
			},
			agent: func(t *testing.T) {
				theirs := notified(t, fx.a, fx.admin)
				read(t, fx.agent, fmt.Sprintf(`{"ids":[%q]}`, theirs), 0)
				read(t, fx.agent, `{"all":true}`, countUnread(t, fx, fx.agent))
				require.True(t, unread(t, fx.admin, theirs), "the agent marked the admin's notification read")
			},
			right: func(t *testing.T) {
				mine := notified(t, fx.a, fx.admin)
				read(t, fx.admin, fmt.Sprintf(`{"ids":[%q]}`, mine), 1)
				require.False(t, unread(t, fx.admin, mine))
			},
		}},
		{route: "GET /v1/me/notification-settings", calls: &azCalls{path: "/v1/me/notification-settings",
			other: func(t *testing.T) {
				setPrefs(t, fx.admin, true)
				setPrefs(t, fx.other, false, fx.admin)
				require.JSONEq(t, `{"email_when_offline":true}`, prefs(t, fx.admin), "B's admin's settings show as A's")
			},
			agent: func(t *testing.T) { prefs(t, fx.agent) },
			right: func(t *testing.T) { prefs(t, fx.admin) },
		}},
		{route: "PUT /v1/me/notification-settings", calls: &azCalls{path: "/v1/me/notification-settings", body: `{"email_when_offline":false}`,
			other: func(t *testing.T) { setPrefs(t, fx.other, false, fx.admin, fx.agent) },
			agent: func(t *testing.T) { setPrefs(t, fx.agent, false, fx.admin, fx.mate) },
			right: func(t *testing.T) { setPrefs(t, fx.admin, true, fx.agent, fx.mate) },
		}},
		{route: "GET " + settings, calls: &azCalls{path: settings,
			other: func(t *testing.T) {
				box := newMailbox(t, fx.admin)
				fx.ok(t, fx.admin, put, settings, fmt.Sprintf(`{"mailbox_id":%q}`, box))
				own := fx.ok(t, fx.other, get, settings, "")
				require.NotContains(t, string(own.Body), box, "B's admin sees A's notification mailbox")
			},
			agent: func(t *testing.T) {
				azMustProblem(t, azCall(t, fx.e, fx.agent, get, settings, ""), http.StatusForbidden, "an agent reading the notification settings")
			},
			right: func(t *testing.T) { fx.ok(t, fx.admin, get, settings, "") },
		}},
		{route: "PUT " + settings, calls: &azCalls{path: settings, body: `{"mailbox_id":null}`,
			other: func(t *testing.T) {
				// A's mailbox in B's request: not a mailbox of B's, like an
				// id naming nothing; A's settings do not change.
				box := newMailbox(t, fx.admin)
				fx.ok(t, fx.admin, put, settings, fmt.Sprintf(`{"mailbox_id":%q}`, box))
				before := fx.snap(settings)(t)
				foreign := azCall(t, fx.e, fx.other, put, settings, fmt.Sprintf(`{"mailbox_id":%q}`, box))
				missing := azCall(t, fx.e, fx.other, put, settings, fmt.Sprintf(`{"mailbox_id":%q}`, uuid.NewString()))
				require.Equal(t, http.StatusBadRequest, foreign.Status, "answered %s", foreign)
				require.Equal(t, string(missing.Body), string(foreign.Body))
				fx.ok(t, fx.other, put, settings, `{"mailbox_id":null}`)
				require.Equal(t, before, fx.snap(settings)(t))
			},
			agent: func(t *testing.T) {
				before := fx.snap(settings)(t)
				azMustProblem(t, azCall(t, fx.e, fx.agent, put, settings, `{"mailbox_id":null}`), http.StatusForbidden, "an agent setting the notification mailbox")
				require.Equal(t, before, fx.snap(settings)(t))
			},
			right: func(t *testing.T) {
				box := newMailbox(t, fx.admin)
				fx.ok(t, fx.admin, put, settings, fmt.Sprintf(`{"mailbox_id":%q}`, box))
				require.Contains(t, fx.snap(settings)(t), box)
				fx.ok(t, fx.admin, put, settings, `{"mailbox_id":null}`)
			},
		}},
	}
}

// countUnread is how many unread notifications token has.
func countUnread(t *testing.T, fx *azFixture, token string) int {
	t.Helper()
	var l list[ntNotification]
	require.NoError(t, json.Unmarshal(fx.ok(t, token, http.MethodGet, "/v1/me/notifications?unread=true&limit=200", "").Body, &l))
	return len(l.Items)
}

// ntBiRoutes are the notification routes of the bad-input table
// (biRoutes); fx may be empty when only the routes are wanted.
func ntBiRoutes(fx *azFixture) []biRoute {
	var notification string
	var box string
	tooMany := `{"ids":[` + strings.TrimSuffix(strings.Repeat(`"`+uuid.NewString()+`",`, 201), ",") + `]}`
	return []biRoute{
		{route: "POST /v1/me/notifications/read",
			target: func(t *testing.T, _ string) biTarget {
				if notification == "" {
					notification = ntNotified(t, fx.e, fx.a, fx.admin)
				}
				return biTarget{path: "/v1/me/notifications/read", token: fx.admin, snap: fx.snap("/v1/me/notifications?limit=200"),
					vars: map[string]string{"ID": notification}}
			},
			cases: []biCase{
				biUnknown(`{"all":true,"every":true}`, "every"),
				biWrongType(`{"ids":"{{ID}}"}`, "ids"),
				biWrongType(`{"all":"yes"}`, "all"),
				biWrongType(`[]`, "body"),
				biOversized("ids"),
				biInvalid("neither ids nor all", `{}`, "ids"),
				biInvalid("ids empty", `{"ids":[]}`, "ids"),
				biInvalid("both ids and all", `{"all":true,"ids":["{{ID}}"]}`, "ids"),
				biInvalid("an id that is no id", `{"ids":["{{ID}}","x"]}`, "ids[1]"),
				biInvalid("too many ids", tooMany, "ids"),
			}},
		{route: "PUT /v1/me/notification-settings",
			target: func(t *testing.T, _ string) biTarget {
				return biTarget{path: "/v1/me/notification-settings", token: fx.admin, snap: fx.snap("/v1/me/notification-settings")}
			},
			cases: []biCase{
				biUnknown(`{"email_when_offline":false,"sms":true}`, "sms"),
				biWrongType(`{"email_when_offline":"no"}`, "email_when_offline"),
				biWrongType(`[]`, "body"),
				biOversized("email_when_offline"),
				biInvalid("email_when_offline absent", `{}`, "email_when_offline"),
				biInvalid("email_when_offline null", `{"email_when_offline":null}`, "email_when_offline"),
			}},
		{route: "PUT /v1/admin/settings/notifications",
			target: func(t *testing.T, _ string) biTarget {
				if box == "" {
					// A mailbox set, so that a wrongly accepted change shows.
					box = fx.create(t, fx.admin, "/v1/admin/mailboxes", mailboxBody(testkit.RandomName("nt-bi-")+"@example.com", "imap-pass-s3cret"))
					fx.ok(t, fx.admin, http.MethodPut, "/v1/admin/settings/notifications", fmt.Sprintf(`{"mailbox_id":%q}`, box))
				}
				return biTarget{path: "/v1/admin/settings/notifications", token: fx.admin, snap: fx.snap("/v1/admin/settings/notifications"),
					vars: map[string]string{"CHAT": fx.a.ChatChannel.ID.String()}}
			},
			cases: []biCase{
				biUnknown(`{"mailbox_id":null,"from":"x"}`, "from"),
				biWrongType(`{"mailbox_id":5}`, "mailbox_id"),
				biWrongType(`[]`, "body"),
				biOversized("mailbox_id"),
				biInvalid("mailbox_id no id", `{"mailbox_id":"support"}`, "mailbox_id"),
				biInvalid("mailbox_id naming nothing", `{"mailbox_id":"`+uuid.NewString()+`"}`, "mailbox_id"),
				biInvalid("mailbox_id a chat channel", `{"mailbox_id":"{{CHAT}}"}`, "mailbox_id"),
			}},
	}
}
