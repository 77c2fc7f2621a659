package domain

import (
	"errors"
	"testing"
	"time"
)

// assignedTo is an assigned conversation of q1 held by user.
func assignedTo(user string) Conversation {
	return Conversation{ID: "c", State: StateAssigned, Queue: "q1", Assignees: []string{user}, LastAgent: user}
}

func TestHelpRequest(t *testing.T) {
	cases := []struct {
		name string
		p    Principal
		c    Conversation
		want error
	}{
		{"its assignee", agent, assignedTo("a"), nil},
		{"a supervisor", supervisor, assignedTo("a"), nil},
		{"a teammate", other, assignedTo("a"), ErrForbidden},
		{"an API token", token, assignedTo("a"), ErrForbidden},
		{"a new one", supervisor, Conversation{State: StateNew, Queue: "q1"}, ErrConflict},
		{"help requested already", supervisor, Conversation{State: StateHelpRequested, Queue: "q1"}, ErrConflict},
		{"external", supervisor, Conversation{State: StateExternal, Queue: "q1"}, ErrConflict},
	}
	for _, c := range cases {
		if err := HelpRequest(c.p, c.c); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s: HelpRequest = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestAnswerHelp(t *testing.T) {
	waiting := Conversation{State: StateHelpRequested, Queue: "q1", LastAgent: "a"}
	expert := Principal{Tenant: "t", UserID: "e", Role: RoleAgent, Queues: []string{"q1"}, Permissions: []Permission{PermAnswerHelpRequests}}
	cases := []struct {
		name string
		p    Principal
		c    Conversation
		want error
	}{
		{"a supervisor", supervisor, waiting, nil},
		{"an agent granted the permission", expert, waiting, nil},
		{"an agent without it", other, waiting, ErrForbidden},
		{"the requester without it", agent, waiting, ErrForbidden},
		{"an API token", token, waiting, ErrForbidden},
		{"not waiting for help", supervisor, assignedTo("a"), ErrConflict},
		{"external", supervisor, Conversation{State: StateExternal, Queue: "q1"}, ErrConflict},
	}
	for _, c := range cases {
		if err := AnswerHelp(c.p, c.c); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s: AnswerHelp = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestBackFromHelp(t *testing.T) {
	if s, a, to := BackFromHelp("a", true); s != StateAssigned || a != "a" || to != BackToRequester {
		t.Errorf("available: %s %s %s", s, a, to)
	}
	if s, a, to := BackFromHelp("a", false); s != StateNew || a != "" || to != BackToQueue {
		t.Errorf("gone: %s %s %s", s, a, to)
	}
	if s, a, to := BackFromHelp("", true); s != StateNew || a != "" || to != BackToQueue {
		t.Errorf("nobody: %s %s %s", s, a, to)
	}
}

// TestReleaseDoesNotGoBackToWaiting: a conversation that came back from
// help or from an external agent is released to new, never back to a
// wait that ended.
func TestReleaseDoesNotGoBackToWaiting(t *testing.T) {
	for _, prev := range []State{StateHelpRequested, StateExternal} {
		c := assignedTo("a")
		c.PreviousState = prev
		if next, err := ReleaseTo(agent, c, ReleasePrevious); err != nil || next != StateNew {
			t.Errorf("released to previous after %s: %s, %v", prev, next, err)
		}
	}
}

func TestExternal(t *testing.T) {
	if err := External(agent, assignedTo("a")); err != nil {
		t.Errorf("its assignee: %v", err)
	}
	if err := External(supervisor, assignedTo("a")); err != nil {
		t.Errorf("a supervisor: %v", err)
	}
	if err := External(other, assignedTo("a")); !errors.Is(err, ErrForbidden) {
		t.Errorf("a teammate: %v", err)
	}
	if err := External(token, assignedTo("a")); !errors.Is(err, ErrForbidden) {
		t.Errorf("an API token: %v", err)
	}
	if err := External(supervisor, Conversation{State: StateHelpRequested}); !errors.Is(err, ErrConflict) {
		t.Errorf("help requested: %v", err)
	}
	away := Conversation{State: StateExternal, Queue: "q1", LastAgent: "a"}
	if err := ExternalReturn(agent, away); err != nil {
		t.Errorf("its sender: %v", err)
	}
	if err := ExternalReturn(supervisor, away); err != nil {
		t.Errorf("a supervisor: %v", err)
	}
	if err := ExternalReturn(other, away); !errors.Is(err, ErrForbidden) {
		t.Errorf("a teammate: %v", err)
	}
	if err := ExternalReturn(agent, assignedTo("a")); !errors.Is(err, ErrConflict) {
		t.Errorf("not external: %v", err)
	}
}

// TestWaitingForHelpRefusesItsAgent: once an agent asked for help or
// handed the conversation to an external agent, they hold it no more and
// no action of theirs applies to it ([000] "vous ne pourrez plus le
// traiter") until it comes back.
func TestWaitingForHelpRefusesItsAgent(t *testing.T) {
	now := time.Now()
	for _, state := range []State{StateHelpRequested, StateExternal} {
		c := Conversation{ID: "c", State: state, Queue: "q1", LastAgent: "a", PreviousState: StateAssigned}
		_, releaseErr := ReleaseTo(agent, c, ReleaseReceived)
		_, completeErr := Complete(agent, c, "solved", false)
		_, _, botErr := BotControl(agent, Conversation{ID: "c", State: state, Queue: "q1", Channel: "chat"}, BotBlock)
		for name, err := range map[string]error{
			"assign":       AssignSelf(agent, c),
			"assign users": AssignUsers(agent, c, []string{"a"}),
			"accept":       AnswerOffer(agent, c),
			"reply":        Reply(agent, c),
			"archive":      Archive(agent, c),
			"route":        Route(c),
			"transfer":     Transfer(agent, c, TransferTarget{QueueID: "q2"}, false),
			"release":      releaseErr,
			"complete":     completeErr,
			"resume":       Resume(agent, c),
			"defer":        Defer(agent, c, now.Add(time.Hour), now),
			"lock":         Lock(agent, c),
			"bot":          botErr,
			"help request": HelpRequest(agent, c),
			"external":     External(agent, c),
		} {
			if err == nil {
				t.Errorf("%s: %s is allowed to the agent who handed it over", state, name)
			}
		}
	}
	// The customer writing keeps it waiting.
	for _, state := range []State{StateHelpRequested, StateExternal} {
		if got := CustomerMessage(Conversation{State: state}); got != state {
			t.Errorf("a customer message moved a %s conversation to %s", state, got)
		}
	}
}
