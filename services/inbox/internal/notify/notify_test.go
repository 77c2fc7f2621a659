package notify

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

func TestEveryKindMakesAValidMail(t *testing.T) {
	for _, kind := range []domain.NoticeKind{domain.NoticeAssigned, domain.NoticeHelpRequest, domain.NoticeExpertQuestion,
		domain.NoticeExpertAnswer, domain.NoticeCustomerMessage} {
		n := store.NewNotification{Tenant: uuid.New(), Notification: store.Notification{ID: uuid.New(), Kind: kind, ConversationID: uuid.New()}}
		m := mailOf(n)
		m.To = []string{"ada@example.com"}
		require.NoError(t, m.Validate(), "kind %s", kind)
		require.Equal(t, events.MailNotification, m.Purpose)
		require.Contains(t, m.Text, n.ConversationID.String())
	}
}

func changed(t *testing.T, action domain.Action, actor events.Actor, data any, conv map[string]any) events.Event {
	t.Helper()
	raw, err := json.Marshal(data)
	require.NoError(t, err)
	snap, err := json.Marshal(conv)
	require.NoError(t, err)
	ev, err := events.New(events.TypeConversationChanged, "test", uuid.NewString(), time.Now(), events.ConversationChanged{
		Action: string(action), Actor: actor, Data: raw, Conversation: snap})
	require.NoError(t, err)
	return ev
}

func TestNoticeOfEvents(t *testing.T) {
	conv := uuid.New()
	admin := events.Actor{Kind: "user", ID: "admin"}
	n, actor, ref, ok, err := noticeOf(changed(t, domain.ActionAssignUsers, admin, map[string]any{"user_ids": []string{"a", "b"}},
		map[string]any{"id": conv, "queue_id": "q", "assignee_ids": []string{"a", "b"}, "muted": true}))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, domain.Notice{Kind: domain.NoticeAssigned, Users: []string{"a", "b"}}, n)
	require.Equal(t, admin, actor)
	require.Equal(t, conv, ref.ID)

	// Data of another shape tells nobody, and is no error.
	_, _, _, ok, err = noticeOf(changed(t, domain.ActionTransfer, admin, []string{"x"}, map[string]any{"id": conv}))
	require.NoError(t, err)
	require.False(t, ok)

	// A notified action without its conversation is an error.
	_, _, _, _, err = noticeOf(changed(t, domain.ActionExpertQuestion, admin, map[string]any{"expert_id": "x"}, map[string]any{}))
	require.Error(t, err)

	// A customer's message on a muted conversation tells nobody; an
	// agent's message neither.
	msg := func(direction string, muted bool) events.Event {
		m, _ := json.Marshal(map[string]any{"direction": direction})
		c, _ := json.Marshal(map[string]any{"id": conv, "assignee_ids": []string{"a"}, "muted": muted})
		ev, err := events.New(events.TypeConversationMessage, "test", uuid.NewString(), time.Now(), events.ConversationMessage{Message: m, Conversation: c})
		require.NoError(t, err)
		return ev
	}
	n, actor, _, ok, err = noticeOf(msg("inbound", false))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, domain.Notice{Kind: domain.NoticeCustomerMessage, Users: []string{"a"}}, n)
	require.Equal(t, "customer", actor.Kind)
	_, _, _, ok, _ = noticeOf(msg("inbound", true))
	require.False(t, ok)
	_, _, _, ok, _ = noticeOf(msg("outbound", false))
	require.False(t, ok)
}
