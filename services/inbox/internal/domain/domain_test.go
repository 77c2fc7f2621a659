package domain

import (
	"errors"
	"testing"
	"time"
)

func TestCustomerMessage(t *testing.T) {
	for _, s := range AllStates() {
		for _, ignored := range []bool{false, true} {
			got := CustomerMessage(Conversation{State: s, Ignored: ignored})
			want := s
			if !ignored && (s == StateAnswered || s == StateDeferred || s == StateDone) {
				want = StateNew
			}
			if got != want {
				t.Errorf("CustomerMessage(%s, ignored=%v) = %s, want %s", s, ignored, got, want)
			}
		}
	}
}

func TestTabsCoverEveryStateOnce(t *testing.T) {
	seen := map[State]Tab{}
	for _, tab := range []Tab{TabReceived, TabInProgress, TabAnswered, TabDeferred, TabHelpRequested, TabDone} {
		states, ok := TabStates(tab)
		if !ok {
			t.Fatalf("TabStates(%s) unknown", tab)
		}
		for _, s := range states {
			if other, dup := seen[s]; dup {
				t.Errorf("state %s is in tabs %s and %s", s, other, tab)
			}
			seen[s] = tab
		}
	}
	if len(seen) != len(AllStates()) {
		t.Errorf("tabs cover %d states of %d", len(seen), len(AllStates()))
	}
	if _, ok := TabStates("inbox"); ok {
		t.Error("an unknown tab is accepted")
	}
}

var (
	agent      = Principal{Tenant: "t", UserID: "a", Role: RoleAgent, Queues: []string{"q1"}}
	other      = Principal{Tenant: "t", UserID: "b", Role: RoleAgent, Queues: []string{"q1"}}
	supervisor = Principal{Tenant: "t", UserID: "s", Role: RoleSupervisor}
	token      = Principal{Tenant: "t", TokenID: "k", Role: RoleAdmin}
)

func TestSees(t *testing.T) {
	cases := []struct {
		p         Principal
		queue     string
		assignees []string
		want      bool
	}{
		{agent, "", nil, true},
		{agent, "q1", nil, true},
		{agent, "q2", nil, false},
		{agent, "q2", []string{"a"}, true},
		{supervisor, "q2", nil, true},
		{token, "q2", nil, true},
	}
	for _, c := range cases {
		if got := c.p.Sees(c.queue, c.assignees); got != c.want {
			t.Errorf("%s.Sees(%q, %v) = %v, want %v", c.p.UserID, c.queue, c.assignees, got, c.want)
		}
	}
}

func TestCan(t *testing.T) {
	if agent.Can(PermBypassQueue) || !supervisor.Can(PermBypassQueue) || !token.Can(PermManageUsers) {
		t.Error("role permissions are wrong")
	}
	granted := agent
	granted.Permissions = []Permission{PermModerate}
	if !granted.Can(PermModerate) || granted.Can(PermSeeAll) {
		t.Error("granted permissions are wrong")
	}
}

func wantErr(t *testing.T, name string, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", name, err, want)
	}
}

func TestActions(t *testing.T) {
	assigned := Conversation{State: StateAssigned, Queue: "q1", Assignees: []string{"a"}}
	wantErr(t, "AssignSelf(new)", AssignSelf(agent, Conversation{State: StateNew}), nil)
	wantErr(t, "AssignSelf(assigned)", AssignSelf(other, assigned), ErrConflict)
	wantErr(t, "AssignSelf(token)", AssignSelf(token, Conversation{State: StateNew}), ErrForbidden)

	wantErr(t, "Reply(assignee)", Reply(agent, assigned), nil)
	wantErr(t, "Reply(not assignee)", Reply(other, assigned), ErrForbidden)
	wantErr(t, "Reply(supervisor)", Reply(supervisor, assigned), nil)
	noQueue := assigned
	noQueue.Queue = ""
	wantErr(t, "Reply(no queue)", Reply(agent, noQueue), ErrConflict)
	locked := assigned
	locked.Locked = true
	wantErr(t, "Reply(locked)", Reply(agent, locked), ErrConflict)
	wantErr(t, "Reply(new)", Reply(agent, Conversation{State: StateNew, Queue: "q1"}), ErrForbidden)

	wantErr(t, "Archive(new)", Archive(other, Conversation{State: StateNew}), nil)
	wantErr(t, "Archive(done)", Archive(agent, Conversation{State: StateDone}), ErrConflict)

	wantErr(t, "Transfer(two targets)", Transfer(agent, assigned, TransferTarget{UserID: "b", QueueID: "q2"}, false), ErrInvalid)
	wantErr(t, "Transfer(bypass, agent)", Transfer(agent, assigned, TransferTarget{QueueID: "q2"}, true), ErrForbidden)
	wantErr(t, "Transfer(bypass, supervisor)", Transfer(supervisor, assigned, TransferTarget{QueueID: "q2"}, true), nil)

	if s, err := ReleaseTo(agent, Conversation{State: StateAssigned, PreviousState: StateOffered, Assignees: []string{"a"}}, ReleasePrevious); err != nil || s != StateNew {
		t.Errorf("ReleaseTo(previous) of an accepted offer = %s, %v; want new", s, err)
	}
	if s, err := ReleaseTo(agent, Conversation{State: StateAssigned, PreviousState: StateAnswered, Assignees: []string{"a"}}, ReleasePrevious); err != nil || s != StateAnswered {
		t.Errorf("ReleaseTo(previous) = %s, %v; want answered", s, err)
	}
	if s, err := ReleaseTo(agent, assigned, ReleaseReceived); err != nil || s != StateNew {
		t.Errorf("ReleaseTo(received) = %s, %v; want new", s, err)
	}
	_, err := ReleaseTo(agent, assigned, "elsewhere")
	wantErr(t, "ReleaseTo(elsewhere)", err, ErrInvalid)

	if s, err := Complete(agent, assigned, "solved", true); err != nil || s != StateClosing {
		t.Errorf("Complete(smart close) = %s, %v; want closing", s, err)
	}
	_, err = Complete(agent, assigned, "", false)
	wantErr(t, "Complete(no disposition)", err, ErrInvalid)

	now := time.Now()
	wantErr(t, "Defer(past)", Defer(agent, assigned, now.Add(-time.Minute), now), ErrInvalid)
	wantErr(t, "Defer(future)", Defer(agent, assigned, now.Add(time.Hour), now), nil)
	wantErr(t, "Resume(done)", Resume(agent, Conversation{State: StateDone}), nil)
	wantErr(t, "Resume(deferred)", Resume(agent, Conversation{State: StateDeferred}), nil)
	wantErr(t, "Resume(new)", Resume(agent, Conversation{State: StateNew}), ErrConflict)
}

func TestConflictNamesTheState(t *testing.T) {
	err := AssignSelf(agent, Conversation{State: StateDone})
	var c *ConflictError
	if !errors.As(err, &c) || c.State != StateDone {
		t.Fatalf("AssignSelf(done) = %v, want a ConflictError with state done", err)
	}
}

func TestBotControl(t *testing.T) {
	chat := Conversation{State: StateAssigned, Assignees: []string{"a"}, Queue: "q1", Channel: "chat"}
	blocked := chat
	blocked.BotBlocked = true
	for _, c := range []struct {
		name         string
		p            Principal
		c            Conversation
		action       string
		want         error
		blocked, nop bool
	}{
		{"block", agent, chat, BotBlock, nil, true, false},
		{"block a blocked bot", agent, blocked, BotBlock, nil, true, true},
		{"unblock", agent, blocked, BotUnblock, nil, false, false},
		{"unblock a bot that is not", agent, chat, BotUnblock, nil, false, true},
		{"run", agent, chat, BotRun, nil, false, false},
		{"run a blocked bot", agent, blocked, BotRun, ErrConflict, false, false},
		{"run on a done conversation", supervisor, Conversation{State: StateDone, Channel: "chat"}, BotRun, ErrConflict, false, false},
		{"run on a locked conversation", agent, Conversation{State: StateAssigned, Assignees: []string{"a"}, Locked: true, Channel: "chat"}, BotRun, ErrConflict, false, false},
		{"block on a done conversation", supervisor, Conversation{State: StateDone, Channel: "chat"}, BotBlock, nil, true, false},
		{"not the assignee", other, chat, BotBlock, ErrForbidden, false, false},
		{"a supervisor", supervisor, chat, BotRun, nil, false, false},
		{"an email", agent, Conversation{State: StateAssigned, Assignees: []string{"a"}, Channel: "email"}, BotBlock, ErrUnprocessable, false, false},
		{"an unknown action", agent, chat, "pause", ErrInvalid, false, false},
	} {
		blockedAfter, nop, err := BotControl(c.p, c.c, c.action)
		wantErr(t, "BotControl("+c.name+")", err, c.want)
		if err == nil && (blockedAfter != c.blocked || nop != c.nop) {
			t.Errorf("BotControl(%s) = blocked %v, no-op %v; want %v, %v", c.name, blockedAfter, nop, c.blocked, c.nop)
		}
	}
}
