package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

var (
	t0      = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	tenant  = uuid.MustParse("00000000-0000-0000-0000-00000000000a")
	conv    = uuid.MustParse("00000000-0000-0000-0000-0000000000c1")
	queue   = uuid.MustParse("00000000-0000-0000-0000-0000000000f1")
	wmT     = "00000000-0000-0000-0000-000000000001" // the tenant's waiting message
	wmQ     = "00000000-0000-0000-0000-000000000002" // the queue's
	noQueue *uuid.UUID
)

func h(v float64) *float64 { return &v }

func view(state string, stateVersion int64, q *uuid.UUID, channel string) View {
	return View{ID: conv, TenantID: tenant, Key: []byte("k"), Channel: channel, QueueID: q, State: state,
		Version: stateVersion + 2, StateVersion: stateVersion, StateSince: t0, ActivityVersion: stateVersion + 2, ActivityAt: t0}
}

// waiting returns the waiting-message timer among ts, if any.
func waiting(ts []Timer) *Timer {
	for _, t := range ts {
		if t.Command.Kind == events.CommandSendAutomatic && t.Command.Automatic.Purpose == events.AutomaticWaiting {
			return &t
		}
	}
	return nil
}

// TestWaitingMessageRules holds the rules of [003]: hours per state
// (empty: not sent in that state), the queue's message winning over the
// tenant's, an edit moving what waits, a deletion cancelling it, once per
// entry into a state, and on SMS and chat only where the tenant enabled
// them. (0 and "none set" are refused by the inbox's API before they can
// reach here; see its bad-input table. Automatic mail and opted-out
// numbers are refused by the inbox when the command arrives, where the
// messages and consent are; see its command tests.)
func TestWaitingMessageRules(t *testing.T) {
	both := map[string]events.WaitingHours{
		wmT: {New: h(4), HelpRequested: h(24)},
		wmQ: {New: h(1), External: h(2)},
	}
	tenantOnly := events.Automation{WaitingMessageID: wmT}
	cases := []struct {
		name     string
		v        View
		s        Settings
		wantWM   string // "" for no waiting message
		wantDue  time.Time
		wantHint string
	}{
		{name: "tenant's, new, 4 h", v: view(StateNew, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: both}, wantWM: wmT, wantDue: t0.Add(4 * time.Hour)},
		{name: "tenant's, help requested, 24 h", v: view(StateHelpRequested, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: both}, wantWM: wmT, wantDue: t0.Add(24 * time.Hour)},
		{name: "tenant's, external: empty, not sent", v: view(StateExternal, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: both}},
		{name: "queue's wins over the tenant's", v: view(StateNew, 3, &queue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, Queue: &events.QueueAutomation{WaitingMessageID: wmQ}, WaitingMessages: both}, wantWM: wmQ, wantDue: t0.Add(time.Hour)},
		{name: "queue's wins even where it has no hours for the state", v: view(StateHelpRequested, 3, &queue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, Queue: &events.QueueAutomation{WaitingMessageID: wmQ}, WaitingMessages: both}},
		{name: "queue without its own: the tenant's", v: view(StateNew, 3, &queue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, Queue: &events.QueueAutomation{InactivityMinutes: 5}, WaitingMessages: both}, wantWM: wmT, wantDue: t0.Add(4 * time.Hour)},
		{name: "only the queue has one", v: view(StateExternal, 3, &queue, events.ChannelEmail),
			s: Settings{Queue: &events.QueueAutomation{WaitingMessageID: wmQ}, WaitingMessages: both}, wantWM: wmQ, wantDue: t0.Add(2 * time.Hour)},
		{name: "not assigned anywhere: never sent", v: view(StateNew, 3, noQueue, events.ChannelEmail),
			s: Settings{WaitingMessages: both}},
		{name: "edited: the same timer moves", v: view(StateNew, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: map[string]events.WaitingHours{wmT: {New: h(0.5)}}}, wantWM: wmT, wantDue: t0.Add(30 * time.Minute)},
		{name: "deleted: cancelled", v: view(StateNew, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: map[string]events.WaitingHours{}}},
		{name: "0 hours, should one slip through: not sent", v: view(StateNew, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: map[string]events.WaitingHours{wmT: {New: h(0)}}}},
		{name: "assigned: not a waiting state", v: view(StateAssigned, 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: both}},
		{name: "answered: not a waiting state", v: view("answered", 3, noQueue, events.ChannelEmail),
			s: Settings{Tenant: tenantOnly, WaitingMessages: both}},
		{name: "SMS not enabled", v: view(StateNew, 3, noQueue, events.ChannelSMS),
			s: Settings{Tenant: tenantOnly, WaitingMessages: both}},
		{name: "SMS enabled", v: view(StateNew, 3, noQueue, events.ChannelSMS),
			s: Settings{Tenant: events.Automation{WaitingMessageID: wmT, SMS: true}, WaitingMessages: both}, wantWM: wmT, wantDue: t0.Add(4 * time.Hour)},
		{name: "chat not enabled", v: view(StateNew, 3, noQueue, events.ChannelChat),
			s: Settings{Tenant: events.Automation{WaitingMessageID: wmT, SMS: true}, WaitingMessages: both}},
		{name: "chat enabled", v: view(StateNew, 3, noQueue, events.ChannelChat),
			s: Settings{Tenant: events.Automation{WaitingMessageID: wmT, Chat: true}, WaitingMessages: both}, wantWM: wmT, wantDue: t0.Add(4 * time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := waiting(Timers(c.v, c.s))
			if c.wantWM == "" {
				require.Nil(t, w, "a waiting message would go out")
				return
			}
			require.NotNil(t, w, "no waiting message")
			require.Equal(t, c.wantWM, w.Command.Automatic.WaitingMessageID)
			require.True(t, c.wantDue.Equal(w.DueAt), "due at %s, want %s", w.DueAt, c.wantDue)
			require.Equal(t, events.Expectation{State: c.v.State, StateVersion: c.v.StateVersion}, w.Command.Expect,
				"it must expect the entry into the state it waits in")
			require.Equal(t, fmt.Sprintf("waiting/%s/%d", conv, c.v.StateVersion), w.ID)
		})
	}
}

// TestWaitingMessageOncePerEntry: within one stay in a state the timer
// keeps its id, whatever else changes (so once fired it does not fire
// again); a new entry into the state gets a new one.
func TestWaitingMessageOncePerEntry(t *testing.T) {
	s := Settings{Tenant: events.Automation{WaitingMessageID: wmT}, WaitingMessages: map[string]events.WaitingHours{wmT: {New: h(4)}}}
	v := view(StateNew, 3, noQueue, events.ChannelEmail)
	first := waiting(Timers(v, s))
	v.Version, v.ActivityVersion = 9, 9 // messages came, the state stayed
	v.QueueID = &queue                  // routed, still new
	same := waiting(Timers(v, s))
	require.Equal(t, first.ID, same.ID)
	v.StateVersion, v.Version, v.StateSince = 12, 12, t0.Add(time.Hour) // left new and came back
	again := waiting(Timers(v, s))
	require.NotEqual(t, first.ID, again.ID)
	require.True(t, t0.Add(5*time.Hour).Equal(again.DueAt), "hours count from the new entry")
}

func TestTimersOfEachState(t *testing.T) {
	until := t0.Add(2 * time.Hour)
	asked := t0.Add(time.Minute)
	cases := []struct {
		name   string
		v      func(v *View)
		s      Settings
		want   []string // kinds
		due    []time.Time
		expect []events.Expectation
	}{
		{name: "deferred wakes at its time", v: func(v *View) { v.State, v.DeferredUntil = StateDeferred, &until },
			want: []string{events.CommandWake}, due: []time.Time{until}, expect: []events.Expectation{{State: StateDeferred, StateVersion: 3}}},
		{name: "offered lapses at its expiry", v: func(v *View) { v.State, v.OfferExpiresAt = StateOffered, &until },
			want: []string{events.CommandExpireOffer}, due: []time.Time{until}, expect: []events.Expectation{{State: StateOffered, StateVersion: 3}}},
		{name: "closing, not asked: asks after the first wait", v: func(v *View) { v.State = StateClosing },
			s:    Settings{Tenant: events.Automation{SmartCloseFirstWaitMinutes: 10, SmartCloseTimeoutMinutes: 30}},
			want: []string{events.CommandSmartCloseAsk}, due: []time.Time{t0.Add(10 * time.Minute)}, expect: []events.Expectation{{State: StateClosing, StateVersion: 3}}},
		{name: "closing, asked: closes after the timeout", v: func(v *View) { v.State, v.ClosingAskedAt = StateClosing, &asked },
			s:    Settings{Tenant: events.Automation{SmartCloseFirstWaitMinutes: 10, SmartCloseTimeoutMinutes: 30}},
			want: []string{events.CommandSmartCloseTimeout}, due: []time.Time{asked.Add(30 * time.Minute)}, expect: []events.Expectation{{State: StateClosing, StateVersion: 3}}},
		{name: "closing, settings unknown: the defaults", v: func(v *View) { v.State, v.ClosingAskedAt = StateClosing, &asked },
			want: []string{events.CommandSmartCloseTimeout}, due: []time.Time{asked.Add(DefaultSmartCloseTimeout)}, expect: []events.Expectation{{State: StateClosing, StateVersion: 3}}},
		{name: "closing, answered: the answer at once, no timeout", v: func(v *View) {
			v.State, v.ClosingAskedAt, v.Answer, v.AnswerVersion, v.AnswerAt = StateClosing, &asked, events.AnswerNo, 3, asked.Add(time.Second)
		}, want: []string{events.CommandSmartCloseAnswer}, due: []time.Time{asked.Add(time.Second)}, expect: []events.Expectation{{State: StateClosing, StateVersion: 3}}},
		{name: "closing, an answer of an earlier stay: ignored", v: func(v *View) {
			v.State, v.ClosingAskedAt, v.Answer, v.AnswerVersion, v.AnswerAt = StateClosing, &asked, events.AnswerNo, 1, asked
		}, want: []string{events.CommandSmartCloseTimeout}, due: []time.Time{asked.Add(DefaultSmartCloseTimeout)}, expect: []events.Expectation{{State: StateClosing, StateVersion: 3}}},
		{name: "assigned in a queue with an inactivity limit", v: func(v *View) { v.State, v.QueueID = StateAssigned, &queue },
			s:    Settings{Queue: &events.QueueAutomation{InactivityMinutes: 20}},
			want: []string{events.CommandInactivity}, due: []time.Time{t0.Add(20 * time.Minute)}, expect: []events.Expectation{{State: StateAssigned, Version: 5}}},
		{name: "assigned without a limit", v: func(v *View) { v.State, v.QueueID = StateAssigned, &queue },
			s: Settings{Queue: &events.QueueAutomation{}}},
		{name: "new with an acknowledgement due", v: func(v *View) { v.AckVersion = 3 },
			s:    Settings{Tenant: events.Automation{Acknowledgement: true}},
			want: []string{events.CommandSendAutomatic}, due: []time.Time{t0}, expect: []events.Expectation{{State: StateNew, StateVersion: 3}}},
		{name: "the queue's acknowledgement", v: func(v *View) { v.AckVersion, v.QueueID = 3, &queue },
			s:    Settings{Queue: &events.QueueAutomation{Acknowledgement: true}},
			want: []string{events.CommandSendAutomatic}, due: []time.Time{t0}, expect: []events.Expectation{{State: StateNew, StateVersion: 3}}},
		{name: "new again later: no second acknowledgement", v: func(v *View) { v.AckVersion = 1 },
			s: Settings{Tenant: events.Automation{Acknowledgement: true}}},
		{name: "done: nothing", v: func(v *View) { v.State = StateDone },
			s: Settings{Tenant: events.Automation{Acknowledgement: true, WaitingMessageID: wmT}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := view(StateNew, 3, noQueue, events.ChannelEmail)
			c.v(&v)
			ts := Timers(v, c.s)
			require.Len(t, ts, len(c.want), "timers %+v", ts)
			for i, tm := range ts {
				require.Equal(t, c.want[i], tm.Command.Kind)
				require.True(t, c.due[i].Equal(tm.DueAt), "due at %s, want %s", tm.DueAt, c.due[i])
				require.Equal(t, c.expect[i], tm.Command.Expect)
				require.Equal(t, conv.String(), tm.Command.ConversationID)
				require.Equal(t, tenant.String(), tm.Command.TenantID)
				require.True(t, tm.DueAt.Equal(tm.Command.DueAt))
				require.Equal(t, []byte("k"), tm.Key)
				require.NoError(t, tm.Command.Validate())
			}
		})
	}
}

func TestAnswer(t *testing.T) {
	cases := []struct {
		text     string
		metadata map[string]string
		want     string
	}{
		{"Non", nil, events.AnswerNo},
		{"non merci !", nil, events.AnswerNo},
		{"No thanks.", nil, events.AnswerNo},
		{"  \n\nNON\n\nLe 3 déc., Support a écrit :\n> Avez-vous besoin d'autre chose ?", nil, events.AnswerNo},
		{"Oui", nil, events.AnswerYes},
		{"yes please", nil, events.AnswerYes},
		{"Y", nil, events.AnswerYes},
		{"Oui, ma facture est fausse", nil, events.AnswerOther},
		{"Non, le colis n'est toujours pas arrivé", nil, events.AnswerOther},
		{"Quand arrive ma commande ?", nil, events.AnswerOther},
		{"", map[string]string{"choice": "no"}, events.AnswerNo},
		{"Yes", map[string]string{"choice": "yes"}, events.AnswerYes},
		{"whatever", map[string]string{"choice": "maybe"}, events.AnswerOther},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Answer(c.text, c.metadata), "Answer(%q, %v)", c.text, c.metadata)
	}
}
