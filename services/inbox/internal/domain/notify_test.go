package domain_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

func TestNoticeOfAction(t *testing.T) {
	cases := []struct {
		name   string
		action domain.Action
		data   domain.ActionNoticeData
		want   domain.Notice
		ok     bool
	}{
		{"assign users", domain.ActionAssignUsers, domain.ActionNoticeData{UserIDs: []string{"a", "b"}}, domain.Notice{Kind: domain.NoticeAssigned, Users: []string{"a", "b"}}, true},
		{"transfer to a user", domain.ActionTransfer, domain.ActionNoticeData{UserID: "a"}, domain.Notice{Kind: domain.NoticeAssigned, Users: []string{"a"}}, true},
		{"transfer to a queue", domain.ActionTransfer, domain.ActionNoticeData{}, domain.Notice{}, false},
		{"help answer back to the requester", domain.ActionHelpAnswer, domain.ActionNoticeData{BackTo: "requester", RequesterID: "r"}, domain.Notice{Kind: domain.NoticeAssigned, Users: []string{"r"}}, true},
		{"help answer back to received", domain.ActionHelpAnswer, domain.ActionNoticeData{BackTo: "received", RequesterID: "r"}, domain.Notice{}, false},
		{"help request", domain.ActionHelpRequest, domain.ActionNoticeData{RequesterID: "r"}, domain.Notice{Kind: domain.NoticeHelpRequest, HelpAnswerers: true, Except: []string{"r"}}, true},
		{"expert question", domain.ActionExpertQuestion, domain.ActionNoticeData{ExpertID: "x", AskerID: "a"}, domain.Notice{Kind: domain.NoticeExpertQuestion, Users: []string{"x"}}, true},
		{"expert answer", domain.ActionExpertAnswer, domain.ActionNoticeData{ExpertID: "x", AskerID: "a"}, domain.Notice{Kind: domain.NoticeExpertAnswer, Users: []string{"a"}}, true},
		{"expert question without expert", domain.ActionExpertQuestion, domain.ActionNoticeData{}, domain.Notice{}, false},
		{"reply", domain.ActionReply, domain.ActionNoticeData{UserID: "a"}, domain.Notice{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := domain.NoticeOfAction(c.action, c.data)
			require.Equal(t, c.ok, ok)
			if c.ok {
				require.Equal(t, c.want, got)
			}
		})
	}
}

func TestNoticeOfCustomerMessage(t *testing.T) {
	n, ok := domain.NoticeOfCustomerMessage([]string{"a", "b"}, false)
	require.True(t, ok)
	require.Equal(t, domain.Notice{Kind: domain.NoticeCustomerMessage, Users: []string{"a", "b"}}, n)
	_, ok = domain.NoticeOfCustomerMessage([]string{"a"}, true)
	require.False(t, ok, "a muted conversation tells nobody")
	_, ok = domain.NoticeOfCustomerMessage(nil, false)
	require.False(t, ok, "nobody holds it")
}

func TestRecipientsLeaveTheActorOut(t *testing.T) {
	require.Equal(t, []string{"b", "c"}, domain.Recipients([]string{"a", "b", "", "b", "c"}, "a"))
	require.Empty(t, domain.Recipients([]string{"a"}, "a"))
}

func TestAnswersHelp(t *testing.T) {
	agent := domain.Principal{Tenant: "t", UserID: "u", Role: domain.RoleAgent, Queues: []string{"q1"}}
	require.False(t, domain.AnswersHelp(agent, "q1", nil), "an agent without the permission")
	agent.Permissions = []domain.Permission{domain.PermAnswerHelpRequests}
	require.True(t, domain.AnswersHelp(agent, "q1", nil))
	require.False(t, domain.AnswersHelp(agent, "q2", nil), "out of their queues")
	sup := domain.Principal{Tenant: "t", UserID: "s", Role: domain.RoleSupervisor}
	require.True(t, domain.AnswersHelp(sup, "q2", nil), "see_all")
}
