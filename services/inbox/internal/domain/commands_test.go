package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestExpect(t *testing.T) {
	c := Conversation{State: StateDeferred, StateVersion: 4, Version: 6}
	cases := []struct {
		state         State
		stateVersion  int64
		version       int64
		wantStale     bool
		reasonSnippet string
	}{
		{StateDeferred, 4, 6, false, ""},
		{StateDeferred, 0, 0, false, ""},
		{StateDeferred, 4, 0, false, ""},
		{StateNew, 4, 6, true, "is deferred, not new"},
		{StateDeferred, 3, 0, true, "came back since"},
		{StateDeferred, 4, 5, true, "changed since"},
	}
	for _, tc := range cases {
		err := Expect(c, tc.state, tc.stateVersion, tc.version)
		if tc.wantStale != errors.Is(err, ErrStale) {
			t.Errorf("Expect(%s, %d, %d) = %v, want stale %v", tc.state, tc.stateVersion, tc.version, err, tc.wantStale)
			continue
		}
		var st *StaleError
		if tc.wantStale && (!errors.As(err, &st) || !strings.Contains(st.Reason, tc.reasonSnippet)) {
			t.Errorf("Expect(%s, %d, %d) = %v, want a reason with %q", tc.state, tc.stateVersion, tc.version, err, tc.reasonSnippet)
		}
	}
}

func TestBackToAgentAndSmartCloseAnswers(t *testing.T) {
	c := Conversation{State: StateClosing, LastAgent: "u1"}
	cases := []struct {
		answer    Answer
		available bool
		state     State
		agent     string
		followUp  bool
	}{
		{AnswerNo, true, StateDone, "", false},
		{AnswerYes, true, StateAssigned, "u1", true},
		{AnswerYes, false, StateNew, "", true},
		{AnswerOther, true, StateAssigned, "u1", false},
		{AnswerOther, false, StateNew, "", false},
	}
	for _, tc := range cases {
		s, a, f := SmartCloseAnswered(c, tc.answer, tc.available)
		if s != tc.state || a != tc.agent || f != tc.followUp {
			t.Errorf("SmartCloseAnswered(%s, available %v) = %s, %q, %v; want %s, %q, %v", tc.answer, tc.available, s, a, f, tc.state, tc.agent, tc.followUp)
		}
	}
	if s, a := BackToAgent(Conversation{State: StateDeferred}, true); s != StateNew || a != "" {
		t.Errorf("BackToAgent without a last agent = %s, %q; want new", s, a)
	}
}

func TestSmartCloseSteps(t *testing.T) {
	if err := SmartCloseAsk(Conversation{Asked: true}); !errors.Is(err, ErrStale) {
		t.Errorf("asking twice: %v, want stale", err)
	}
	if err := SmartCloseTimeout(Conversation{Asked: false}); !errors.Is(err, ErrStale) {
		t.Errorf("closing before asking: %v, want stale", err)
	}
	if err := SmartCloseTimeout(Conversation{Asked: true, LastWriter: "customer"}); !errors.Is(err, ErrStale) {
		t.Errorf("closing after the customer wrote: %v, want stale", err)
	}
	if err := SmartCloseTimeout(Conversation{Asked: true, LastWriter: "agent"}); err != nil {
		t.Errorf("closing after the question, unanswered: %v", err)
	}
}

func TestAutomaticMessage(t *testing.T) {
	cases := []struct {
		channel                        string
		on, customerAutomatic, stopped bool
		want                           string
	}{
		{"email", true, false, false, ""},
		{"email", true, true, false, SkipAutomaticCustomer},
		{"sms", true, false, true, SkipOptedOut},
		{"sms", false, false, false, SkipChannelOff},
		{"chat", true, false, false, ""},
		{"chat", true, false, true, ""}, // consent is an SMS matter
	}
	for _, tc := range cases {
		if got := AutomaticMessage(tc.channel, tc.on, tc.customerAutomatic, tc.stopped); got != tc.want {
			t.Errorf("AutomaticMessage(%s, on %v, automatic %v, opted out %v) = %q, want %q", tc.channel, tc.on, tc.customerAutomatic, tc.stopped, got, tc.want)
		}
	}
}

func TestTemplates(t *testing.T) {
	vars := map[string]string{VarCustomerName: "Ada", VarHoursWaited: "5"}
	for _, tc := range []struct{ in, out string }{
		{"Hello {{customer_name}}", "Hello Ada"},
		{"{{ customer_name }}, {{hours_waited}} h", "Ada, 5 h"},
		{"no variables", "no variables"},
		{"{{queue_name}}|", "|"},
	} {
		if err := CheckTemplate("body", tc.in); err != nil {
			t.Errorf("CheckTemplate(%q) = %v", tc.in, err)
		}
		if got := Render(tc.in, vars); got != tc.out {
			t.Errorf("Render(%q) = %q, want %q", tc.in, got, tc.out)
		}
	}
	for _, bad := range []string{"Hello {{name}}", "{{customer_name", "{{}}", "ok {{customer_name}} then {{oops}}"} {
		var fe *FieldError
		if err := CheckTemplate("body", bad); !errors.As(err, &fe) || fe.Field != "body" {
			t.Errorf("CheckTemplate(%q) = %v, want an error naming body", bad, err)
		}
	}
}
