package inbox_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// TestAutomationIsAnnouncedOnTheConfigTopic: every automation change
// reaches the scheduler on sb.config.v1, with what it needs to decide when
// (never the texts), and a queue keeps its automation when renamed.
func TestAutomationIsAnnouncedOnTheConfigTopic(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token

	var q, wm adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/queues", `{"name":"Support"}`, &q))
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/waiting-messages",
		`{"name":"Slow","subject":"Still on it","body":"Hello {{customer_name}}","hours":{"new":4,"external":0.5}}`, &wm))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/queues/"+q.ID+"/automation",
		fmt.Sprintf(`{"waiting_message_id":%q,"inactivity_minutes":20,"acknowledgement":{"body":"Thanks"}}`, wm.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/queues/"+q.ID, `{"name":"Care"}`, nil))
	var tenant struct {
		WaitingMessageID *string `json:"waiting_message_id"`
		SmartClose       struct {
			FirstWait float64 `json:"first_wait_minutes"`
			Timeout   float64 `json:"timeout_minutes"`
		} `json:"smart_close"`
	}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/automation",
		fmt.Sprintf(`{"channels":{"sms":true},"waiting_message_id":%q,"acknowledgement":{"body":"Thanks"},"smart_close":{"timeout_minutes":30}}`, wm.ID), &tenant))
	require.Equal(t, wm.ID, *tenant.WaitingMessageID)
	require.Equal(t, 15.0, tenant.SmartClose.FirstWait, "the default first wait")
	require.Equal(t, 30.0, tenant.SmartClose.Timeout)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/waiting-messages/"+wm.ID, `{"hours":{"help_requested":2}}`, nil))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/waiting-messages/"+wm.ID, "", nil))

	want := map[string][]string{
		"queue/" + q.ID: {
			"Support",
			"Support wm=" + wm.ID + " ack inactivity=20",
			"Care wm=" + wm.ID + " ack inactivity=20", // renamed: still its automation
			"Care ack inactivity=20",                  // its waiting message deleted
		},
		"waiting_message/" + wm.ID: {"new=4 help=- external=0.5", "new=- help=2 external=-", "deleted"},
		"automation/" + b.Tenant.ID.String(): {
			"wm=" + wm.ID + " ack=true sms=true chat=false close=15/30",
			"wm= ack=true sms=true chat=false close=15/30", // its waiting message deleted
		},
	}
	hours := func(h *float64) string {
		if h == nil {
			return "-"
		}
		return fmt.Sprint(*h)
	}
	got := readConfig(t, e, want, func(key string, ev events.Event) string {
		switch ev.Type {
		case events.TypeQueue:
			var x events.Queue
			require.NoError(t, ev.Decode(&x))
			s := x.Name
			if a := x.Automation; a != nil {
				if a.WaitingMessageID != "" {
					s += " wm=" + a.WaitingMessageID
				}
				if a.Acknowledgement {
					s += " ack"
				}
				if a.InactivityMinutes > 0 {
					s += fmt.Sprintf(" inactivity=%g", a.InactivityMinutes)
				}
			}
			return s
		case events.TypeWaitingMessage:
			var x events.WaitingMessage
			require.NoError(t, ev.Decode(&x))
			if x.Deleted {
				return "deleted"
			}
			return fmt.Sprintf("new=%s help=%s external=%s", hours(x.Hours.New), hours(x.Hours.HelpRequested), hours(x.Hours.External))
		case events.TypeAutomation:
			var x events.Automation
			require.NoError(t, ev.Decode(&x))
			return fmt.Sprintf("wm=%s ack=%v sms=%v chat=%v close=%g/%g", x.WaitingMessageID, x.Acknowledgement, x.SMS, x.Chat,
				x.SmartCloseFirstWaitMinutes, x.SmartCloseTimeoutMinutes)
		}
		t.Fatalf("unexpected event type %s for %s", ev.Type, key)
		return ""
	})
	require.Equal(t, want, got)
}
