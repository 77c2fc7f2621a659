// Package rules decides, without I/O, which timers a conversation has:
// given what the scheduler knows of it (View) and the automation settings
// that apply to it (Settings), Timers lists each timer it should have now,
// with its due time and the command it sends the inbox when it fires.
//
// A timer's id names what it is for and the occurrence it belongs to (the
// entry into a state, the activity it follows), never its due time: when
// a setting changes, the same timer moves; once fired, the same id is not
// fired again for that occurrence, and the inbox applies a command once
// per id.
package rules

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// Conversation states the rules look at.
const (
	StateNew           = "new"
	StateOffered       = "offered"
	StateAssigned      = "assigned"
	StateDeferred      = "deferred"
	StateHelpRequested = "help_requested"
	StateExternal      = "external"
	StateClosing       = "closing"
	StateDone          = "done"
)

// View is what the scheduler knows of a conversation, from its events.
type View struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	// Key is the Kafka key of everything about the conversation.
	Key     []byte
	Channel string
	QueueID *uuid.UUID
	State   string
	// Version, StateVersion and StateSince are the inbox's (see
	// events.Expectation).
	Version      int64
	StateVersion int64
	StateSince   time.Time
	// DeferredUntil, OfferExpiresAt and ClosingAskedAt belong to the
	// deferred, offered and closing states.
	DeferredUntil  *time.Time
	OfferExpiresAt *time.Time
	ClosingAskedAt *time.Time
	// ActivityVersion and ActivityAt are the version and time of the last
	// event that was activity (everything but an inactivity alert).
	ActivityVersion int64
	ActivityAt      time.Time
	// AckVersion, when not 0, is the state version of the entry into new
	// that created the conversation, when an acknowledgement applied then:
	// it gets one while it is still there. An acknowledgement enabled later
	// does not reach conversations that started before.
	AckVersion int64
	// Answer is the customer's answer to the smart-close question, given
	// during the closing entry AnswerVersion, at AnswerAt.
	Answer        string
	AnswerVersion int64
	AnswerAt      time.Time
}

// Settings are the automation settings that apply to a conversation: its
// tenant's, its queue's, and the waiting messages of the tenant.
type Settings struct {
	Tenant events.Automation
	// Queue is nil for a conversation without a queue, or whose queue the
	// scheduler does not know.
	Queue *events.QueueAutomation
	// WaitingMessages are the tenant's, by id.
	WaitingMessages map[string]events.WaitingHours
}

// Defaults used when the tenant's settings are not known (yet).
const (
	DefaultSmartCloseFirstWait = 15 * time.Minute
	DefaultSmartCloseTimeout   = 60 * time.Minute
)

// Timer is one timer of a conversation.
type Timer struct {
	// ID names the timer (kind, conversation, occurrence); it is the id of
	// the command it sends.
	ID string
	// DueAt is when it fires.
	DueAt time.Time
	// Command is what it sends the inbox, DueAt included.
	Command events.InboxCommand
	// Key is the Kafka key of the command: the conversation's.
	Key []byte
}

// Kind is the kind of command the timer sends.
func (t Timer) Kind() string { return t.Command.Kind }

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }
func hours(h float64) time.Duration   { return time.Duration(h * float64(time.Hour)) }

// WaitingMessage returns the waiting message that applies to a
// conversation of queue: the queue's own, else the tenant's ([003]).
func (s Settings) WaitingMessage() string {
	if s.Queue != nil && s.Queue.WaitingMessageID != "" {
		return s.Queue.WaitingMessageID
	}
	return s.Tenant.WaitingMessageID
}

// Acknowledges reports whether a conversation of channel starting under
// these settings gets an acknowledgement: the tenant or its queue has one,
// and automatic messages go out on the channel.
func (s Settings) Acknowledges(channel string) bool {
	return s.Tenant.AutomaticOn(channel) && (s.Tenant.Acknowledgement || (s.Queue != nil && s.Queue.Acknowledgement))
}

// Timers lists the timers v should have now.
func Timers(v View, s Settings) []Timer {
	var out []Timer
	add := func(prefix string, occurrence int64, due time.Time, cmd events.InboxCommand) {
		cmd.TenantID, cmd.ConversationID, cmd.DueAt = v.TenantID.String(), v.ID.String(), due.UTC()
		id := prefix + "/" + v.ID.String()
		if occurrence != 0 {
			id += fmt.Sprintf("/%d", occurrence)
		}
		out = append(out, Timer{ID: id, DueAt: due.UTC(), Command: cmd, Key: v.Key})
	}
	entry := events.Expectation{State: v.State, StateVersion: v.StateVersion}
	automaticOn := s.Tenant.AutomaticOn(v.Channel)

	switch v.State {
	case StateDeferred:
		if v.DeferredUntil != nil {
			add("wake", v.StateVersion, *v.DeferredUntil, events.InboxCommand{Kind: events.CommandWake, Expect: entry})
		}
	case StateOffered:
		if v.OfferExpiresAt != nil {
			add("offer", v.StateVersion, *v.OfferExpiresAt, events.InboxCommand{Kind: events.CommandExpireOffer, Expect: entry})
		}
	case StateClosing:
		firstWait, timeout := DefaultSmartCloseFirstWait, DefaultSmartCloseTimeout
		if m := s.Tenant.SmartCloseFirstWaitMinutes; m > 0 {
			firstWait = minutes(m)
		}
		if m := s.Tenant.SmartCloseTimeoutMinutes; m > 0 {
			timeout = minutes(m)
		}
		switch {
		case v.Answer != "" && v.AnswerVersion == v.StateVersion:
			add("answer", v.StateVersion, v.AnswerAt, events.InboxCommand{Kind: events.CommandSmartCloseAnswer, Expect: entry, Answer: v.Answer})
		case v.ClosingAskedAt == nil:
			add("ask", v.StateVersion, v.StateSince.Add(firstWait), events.InboxCommand{Kind: events.CommandSmartCloseAsk, Expect: entry})
		default:
			add("close", v.StateVersion, v.ClosingAskedAt.Add(timeout), events.InboxCommand{Kind: events.CommandSmartCloseTimeout, Expect: entry})
		}
	case StateAssigned:
		if s.Queue != nil && s.Queue.InactivityMinutes > 0 && v.ActivityVersion > 0 {
			add("inactive", v.ActivityVersion, v.ActivityAt.Add(minutes(s.Queue.InactivityMinutes)), events.InboxCommand{
				Kind: events.CommandInactivity, Minutes: s.Queue.InactivityMinutes,
				Expect: events.Expectation{State: StateAssigned, Version: v.ActivityVersion}})
		}
	}

	if !automaticOn {
		return out
	}
	if v.State == StateNew && v.AckVersion != 0 && v.AckVersion == v.StateVersion && s.Acknowledges(v.Channel) {
		add("ack", 0, v.StateSince, events.InboxCommand{Kind: events.CommandSendAutomatic, Expect: entry,
			Automatic: &events.Automatic{Purpose: events.AutomaticAcknowledgement}})
	}
	if wm := s.WaitingMessage(); wm != "" {
		if h := s.WaitingMessages[wm].For(v.State); h != nil && *h > 0 {
			add("waiting", v.StateVersion, v.StateSince.Add(hours(*h)), events.InboxCommand{Kind: events.CommandSendAutomatic, Expect: entry,
				Automatic: &events.Automatic{Purpose: events.AutomaticWaiting, WaitingMessageID: wm}})
		}
	}
	return out
}

// Answer reads a customer's message during smart close: the button they
// pressed (metadata "choice", on chat), or a message that says only yes
// or no, in English or French, on its first line (an email's quote
// follows). Anything else is another question: "other".
func Answer(text string, metadata map[string]string) string {
	switch metadata["choice"] {
	case events.AnswerYes:
		return events.AnswerYes
	case events.AnswerNo:
		return events.AnswerNo
	}
	line := ""
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) != "" {
			line = l
			break
		}
	}
	words := strings.FieldsFunc(strings.ToLower(line), func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' })
	phrase := strings.Join(words, " ")
	switch phrase {
	case "yes", "y", "yeah", "yep", "oui", "o", "ouais", "yes please", "oui merci", "oui s'il vous plaît", "oui svp":
		return events.AnswerYes
	case "no", "n", "nope", "non", "no thanks", "no thank you", "non merci", "nan", "non merci beaucoup", "no thanks bye":
		return events.AnswerNo
	}
	return events.AnswerOther
}
