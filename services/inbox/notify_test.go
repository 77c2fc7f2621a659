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
	// the default: he is mailed.
	ada0, _ := stOpen(t, e, adaTok, "")
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
