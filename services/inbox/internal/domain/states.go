package domain

import (
	"fmt"
	"slices"
	"time"
)

// State is where a conversation stands (SPEC.md section 3).
type State string

// States, with the seeds' names.
const (
	// StateNew: waiting for an agent ("Reçus", "A traiter").
	StateNew State = "new"
	// StateOffered: pushed to one agent, waiting for acceptance.
	StateOffered State = "offered"
	// StateAssigned: an agent works on it ("En cours").
	StateAssigned State = "assigned"
	// StateAnswered: the agent replied; waiting for the customer.
	StateAnswered State = "answered"
	// StateDeferred: put aside until a time ("Différé").
	StateDeferred State = "deferred"
	// StateHelpRequested: waiting for a supervisor or expert.
	StateHelpRequested State = "help_requested"
	// StateExternal: waiting for an external agent.
	StateExternal State = "external"
	// StateClosing: smart close, the customer was asked "anything else?".
	StateClosing State = "closing"
	// StateDone: archived without reply, or completed.
	StateDone State = "done"
)

// AllStates lists every state.
func AllStates() []State {
	return []State{StateNew, StateOffered, StateAssigned, StateAnswered, StateDeferred, StateHelpRequested, StateExternal, StateClosing, StateDone}
}

// Valid reports whether s is a known state.
func (s State) Valid() bool { return slices.Contains(AllStates(), s) }

// Tab is a list of the inbox, by state.
type Tab string

// Tabs.
const (
	TabReceived      Tab = "received"
	TabInProgress    Tab = "in_progress"
	TabAnswered      Tab = "answered"
	TabDeferred      Tab = "deferred"
	TabHelpRequested Tab = "help_requested"
	TabDone          Tab = "done"
)

// TabStates returns the states a tab shows; false for an unknown tab.
func TabStates(t Tab) ([]State, bool) {
	switch t {
	case TabReceived:
		return []State{StateNew, StateOffered}, true
	case TabInProgress:
		return []State{StateAssigned, StateClosing}, true
	case TabAnswered:
		return []State{StateAnswered}, true
	case TabDeferred:
		return []State{StateDeferred}, true
	case TabHelpRequested:
		return []State{StateHelpRequested, StateExternal}, true
	case TabDone:
		return []State{StateDone}, true
	}
	return nil, false
}

// Action is something done to a conversation; every one is audited.
type Action string

// Actions.
const (
	ActionCreated         Action = "created"
	ActionCustomerMessage Action = "customer_message"
	ActionAssign          Action = "assign"
	ActionAssignUsers     Action = "assign_users"
	ActionReply           Action = "reply"
	ActionArchive         Action = "archive"
	ActionRoute           Action = "route"
	ActionTransfer        Action = "transfer"
	ActionRelease         Action = "release"
	ActionComplete        Action = "complete"
	ActionResume          Action = "resume"
	ActionDefer           Action = "defer"
	ActionUpdate          Action = "update"
	ActionMarkRead        Action = "mark_read"
	ActionLanguage        Action = "language"
	ActionTags            Action = "tags"

	// The bot controls of a chat conversation.
	ActionBotBlocked   Action = "bot_blocked"
	ActionBotUnblocked Action = "bot_unblocked"
	ActionBotRun       Action = "bot_run"
	// ActionDeliveryReplay: an admin sent a failed message again; the
	// conversation does not change.
	ActionDeliveryReplay Action = "delivery_replay"

	// The actions of commands (see commands.go).
	ActionWake              Action = "wake"
	ActionOffer             Action = "offer"
	ActionOfferExpired      Action = "offer_expired"
	ActionAutomaticMessage  Action = "automatic_message"
	ActionSmartCloseAsk     Action = "smart_close_ask"
	ActionSmartCloseAnswer  Action = "smart_close_answer"
	ActionSmartCloseTimeout Action = "smart_close_timeout"
	ActionInactive          Action = "inactive"
	ActionOfferWithdrawn    Action = "offer_withdrawn"
	ActionRequeue           Action = "requeue"

	// The answers to an offer (push routing).
	ActionAccept        Action = "accept"
	ActionOfferRejected Action = "offer_rejected"

	// Help from others ([000] help requests, [003] external agents, [004]
	// ask an expert). The audit data of each names the help request or
	// question and the people concerned (see the notifications).
	ActionHelpRequest    Action = "help_request"
	ActionHelpAnswer     Action = "help_answer"
	ActionExternal       Action = "external"
	ActionExternalReturn Action = "external_return"
	ActionExpertQuestion Action = "expert_question"
	ActionExpertAnswer   Action = "expert_answer"

	// The admin's duties on data ([000], [002], [004]).
	ActionAnonymise     Action = "anonymise"
	ActionDeleteMessage Action = "delete_message"
	ActionSendByEmail   Action = "send_by_email"
	// ActionDeleteConversation: an admin deleted the conversation; its
	// last event says so, with the conversation done.
	ActionDeleteConversation Action = "delete_conversation"
	// ActionEraseContact: an admin erased the conversation's contact
	// (GDPR art. 17); its messages are anonymised.
	ActionEraseContact Action = "erase_contact"
	// ActionOutbound: an agent started the conversation toward a contact
	// (new conversation, [002]); it is theirs, and their first message
	// follows as a reply.
	ActionOutbound Action = "outbound"
)

// Conversation is the part of a conversation the rules look at.
type Conversation struct {
	ID            string
	State         State
	PreviousState State
	Queue         string
	Assignees     []string
	Locked        bool
	Ignored       bool
	// Version and StateVersion say which change and which entry into its
	// state the conversation is at (commands check them).
	Version      int64
	StateVersion int64
	// LastWriter is customer or agent.
	LastWriter string
	// LastAgent is the agent who last held it.
	LastAgent string
	// Asked: smart close sent its question (closing).
	Asked bool
	// Channel is chat, email or sms.
	Channel string
	// BotBlocked: an agent blocked the chat channel's bot on it.
	BotBlocked bool
}

// Assigned reports whether user is one of the assignees.
func (c Conversation) Assigned(user string) bool {
	return user != "" && slices.Contains(c.Assignees, user)
}

func conflict(c Conversation, format string, args ...any) error {
	return &ConflictError{State: c.State, Reason: fmt.Sprintf(format, args...)}
}

func in(s State, states ...State) bool { return slices.Contains(states, s) }

// CustomerMessage is the state a conversation moves to when its customer
// writes: answered, deferred and done conversations go back to work (new);
// others stay where they are, and ignored ones stay put.
func CustomerMessage(c Conversation) State {
	if !c.Ignored && in(c.State, StateAnswered, StateDeferred, StateDone) {
		return StateNew
	}
	return c.State
}

// AssignSelf checks that p may take c (pull mode): c must be waiting (new,
// offered) or answered, and visible to p.
func AssignSelf(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user can be assigned", ErrForbidden)
	}
	if !in(c.State, StateNew, StateOffered, StateAnswered) {
		return conflict(c, "only a new, offered or answered conversation can be taken")
	}
	if c.State == StateOffered && !c.Assigned(p.UserID) {
		return conflict(c, "it is offered to another agent; it comes back to the queue if they do not accept it")
	}
	return nil
}

// AnswerOffer checks that p may accept or reject c: it must be offered to
// them.
func AnswerOffer(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user answers an offer", ErrForbidden)
	}
	if c.State != StateOffered {
		return conflict(c, "only an offered conversation can be accepted or rejected")
	}
	if !c.Assigned(p.UserID) {
		return conflict(c, "it is offered to another agent")
	}
	return nil
}

// AssignUsers checks that p may assign c to users.
func AssignUsers(p Principal, c Conversation, users []string) error {
	if !p.Can(PermAssignOthers) && !(len(users) == 1 && users[0] == p.UserID) {
		return fmt.Errorf("%w: assigning others needs the %s permission", ErrForbidden, PermAssignOthers)
	}
	if len(users) == 0 {
		return Invalid("user_ids", "must name at least one user")
	}
	if in(c.State, StateDone, StateClosing, StateHelpRequested, StateExternal) {
		return conflict(c, "a %s conversation cannot be assigned; resume it first", c.State)
	}
	return nil
}

// mustWorkOn checks that p works on c: an assignee, or a supervisor.
func mustWorkOn(p Principal, c Conversation) error {
	if c.Assigned(p.UserID) || p.Can(PermAssignOthers) {
		return nil
	}
	return fmt.Errorf("%w: only an assignee or a supervisor can do this", ErrForbidden)
}

// Reply checks that p may reply on c: assigned to p (or p supervises), in
// a queue, not locked.
func Reply(p Principal, c Conversation) error {
	if err := mustWorkOn(p, c); err != nil {
		return err
	}
	if c.State != StateAssigned {
		return conflict(c, "only an assigned conversation can be answered; assign it first")
	}
	if c.Queue == "" {
		return conflict(c, "a conversation must be routed to a queue before anyone can reply")
	}
	if c.Locked {
		return conflict(c, "the conversation is locked")
	}
	return nil
}

// Archive checks that p may finish c without a reply.
func Archive(p Principal, c Conversation) error {
	if !in(c.State, StateNew, StateOffered, StateAssigned, StateAnswered) {
		return conflict(c, "only a new, offered, assigned or answered conversation can be archived")
	}
	if c.State == StateAssigned {
		return mustWorkOn(p, c)
	}
	return nil
}

// Route checks that c may move to another queue. A conversation waiting
// for help or for an external agent stays where it is until it comes back
// (its answer, its return).
func Route(c Conversation) error {
	if in(c.State, StateDone, StateClosing) {
		return conflict(c, "a %s conversation cannot be routed", c.State)
	}
	if in(c.State, StateHelpRequested, StateExternal) {
		return conflict(c, "a %s conversation cannot be routed until it comes back", c.State)
	}
	return nil
}

// TransferTarget is where a transfer goes: exactly one of the fields.
type TransferTarget struct {
	UserID   string
	QueueID  string
	SkillID  string
	Language string
}

// Transfer checks that p may transfer c to t; bypass needs its permission.
func Transfer(p Principal, c Conversation, t TransferTarget, bypass bool) error {
	n := 0
	for _, v := range []string{t.UserID, t.QueueID, t.SkillID, t.Language} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return Invalid("body", "must name exactly one of user_id, queue_id, skill_id, language")
	}
	if bypass && !p.Can(PermBypassQueue) {
		return fmt.Errorf("%w: bypassing the queue needs the %s permission", ErrForbidden, PermBypassQueue)
	}
	if !in(c.State, StateNew, StateOffered, StateAssigned) {
		return conflict(c, "only a new, offered or assigned conversation can be transferred")
	}
	if c.State == StateAssigned {
		return mustWorkOn(p, c)
	}
	return nil
}

// Release is where "finish and release" sends a conversation.
type Release string

// Releases.
const (
	ReleaseReceived Release = "received"
	ReleasePrevious Release = "previous"
)

// ReleaseTo checks that p may release c and returns its next state: back
// to received (new), or to the state it was in before it was taken.
func ReleaseTo(p Principal, c Conversation, to Release) (State, error) {
	if c.State != StateAssigned {
		return "", conflict(c, "only an assigned conversation can be released")
	}
	if err := mustWorkOn(p, c); err != nil {
		return "", err
	}
	switch to {
	case ReleaseReceived, "":
		return StateNew, nil
	case ReleasePrevious:
		// Offered (accepted) is no place to go back to: the offer ended;
		// nor is waiting for help or an external agent: that wait ended
		// with its answer or return.
		if c.PreviousState == "" || in(c.PreviousState, StateAssigned, StateOffered, StateHelpRequested, StateExternal) {
			return StateNew, nil
		}
		return c.PreviousState, nil
	}
	return "", Invalid("to", "must be received or previous")
}

// Complete checks that p may complete c; smart close moves it to closing
// instead of done.
func Complete(p Principal, c Conversation, disposition string, smartClose bool) (State, error) {
	if disposition == "" {
		return "", Invalid("disposition", "is required")
	}
	if c.Locked && smartClose {
		return "", conflict(c, "the conversation is locked: smart close would write to the customer")
	}
	if !in(c.State, StateAssigned, StateAnswered) {
		return "", conflict(c, "only an assigned or answered conversation can be completed")
	}
	if c.State == StateAssigned {
		if err := mustWorkOn(p, c); err != nil {
			return "", err
		}
	}
	if smartClose {
		return StateClosing, nil
	}
	return StateDone, nil
}

// Resume checks that p may take back a done, closing or deferred
// conversation ([004] "Reprendre"), which is assigned to p. Resuming a
// deferred one before its time cancels its wake-up.
func Resume(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user can resume a conversation", ErrForbidden)
	}
	if !in(c.State, StateDone, StateClosing, StateDeferred) {
		return conflict(c, "only a done, closing or deferred conversation can be resumed")
	}
	return nil
}

// Defer checks that p may put c aside until a later time.
func Defer(p Principal, c Conversation, until, now time.Time) error {
	if !until.After(now) {
		return Invalid("until", "must be in the future")
	}
	if until.After(now.AddDate(1, 0, 0)) {
		return Invalid("until", "must be within a year")
	}
	if c.State != StateAssigned {
		return conflict(c, "only an assigned conversation can be deferred")
	}
	return mustWorkOn(p, c)
}

// Lock checks that p may lock or unlock c: its assignee or a supervisor.
func Lock(p Principal, c Conversation) error { return mustWorkOn(p, c) }

// Bot control actions ([002]: block or unblock a chat bot on a
// conversation, force a bot run).
const (
	BotBlock   = "block"
	BotUnblock = "unblock"
	BotRun     = "run"
)

// BotControl checks that p may do action (BotBlock, BotUnblock, BotRun)
// to the bot of c, by the rule of a reply (its assignee, or a
// supervisor), and returns what the action changes: whether the bot is
// blocked after it, and whether it changes nothing at all (blocking a
// blocked bot, unblocking one that is not: accepted, and a no-op). Only a
// chat conversation has a bot (ErrUnprocessable). A bot run writes to the
// customer: it is refused on a done or locked conversation, and while the
// bot is blocked.
func BotControl(p Principal, c Conversation, action string) (blocked, noop bool, err error) {
	if action != BotBlock && action != BotUnblock && action != BotRun {
		return false, false, Invalid("action", "must be block, unblock or run")
	}
	if err := mustWorkOn(p, c); err != nil {
		return false, false, err
	}
	if c.Channel != "chat" {
		return false, false, fmt.Errorf("%w: only a chat conversation has a bot to control; this one is %s", ErrUnprocessable, c.Channel)
	}
	switch action {
	case BotBlock:
		return true, c.BotBlocked, nil
	case BotUnblock:
		return false, !c.BotBlocked, nil
	}
	switch {
	case c.State == StateDone:
		return false, false, conflict(c, "the bot cannot run on a done conversation; resume it first")
	case c.Locked:
		return false, false, conflict(c, "the conversation is locked: a bot run would write to the customer")
	case c.BotBlocked:
		return false, false, conflict(c, "the bot is blocked on this conversation; unblock it first")
	}
	return false, false, nil
}
