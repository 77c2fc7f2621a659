package domain

import (
	"errors"
	"fmt"
)

// The rules of commands: what the scheduler and the router ask of the
// inbox (events.InboxCommand). A command carries what its sender saw of
// the conversation; when that no longer holds, the conversation moved on
// and the command changes nothing (ErrStale), which is not a failure.

// ErrStale: the conversation is no longer as the command expects it.
var ErrStale = errors.New("stale command")

// StaleError is ErrStale with the reason, for logs and metrics.
type StaleError struct{ Reason string }

func (e *StaleError) Error() string { return "stale command: " + e.Reason }
func (e *StaleError) Unwrap() error { return ErrStale }

func stale(format string, args ...any) error {
	return &StaleError{Reason: fmt.Sprintf(format, args...)}
}

// Expect checks what a command expects of c: its state, and when not zero
// the version at which it entered that state and its current version.
func Expect(c Conversation, state State, stateVersion, version int64) error {
	switch {
	case c.State != state:
		return stale("the conversation is %s, not %s", c.State, state)
	case stateVersion != 0 && c.StateVersion != stateVersion:
		return stale("the conversation left %s and came back since (entry %d, expected %d)", state, c.StateVersion, stateVersion)
	case version != 0 && c.Version != version:
		return stale("the conversation changed since (version %d, expected %d)", c.Version, version)
	}
	return nil
}

// BackToAgent is where a conversation goes when it comes back to work on
// its own (a deferral ends, the customer answers smart close): to the
// agent who last held it when they can still take it (available), else to
// new, for whoever takes it next in its queue.
func BackToAgent(c Conversation, available bool) (State, string) {
	if available && c.LastAgent != "" {
		return StateAssigned, c.LastAgent
	}
	return StateNew, ""
}

// SmartCloseAsk checks that smart close may ask its question now: it is
// still waiting before asking.
func SmartCloseAsk(c Conversation) error {
	if c.Asked {
		return stale("the smart-close question was already asked")
	}
	return nil
}

// SmartCloseTimeout checks that smart close may close c for want of an
// answer: the question went out and the customer has not written since.
func SmartCloseTimeout(c Conversation) error {
	if !c.Asked {
		return stale("the smart-close question was not asked yet")
	}
	if c.LastWriter == "customer" {
		return stale("the customer wrote after the smart-close question")
	}
	return nil
}

// Answer is the customer's answer to the smart-close question.
type Answer string

// Answers.
const (
	AnswerYes   Answer = "yes"
	AnswerNo    Answer = "no"
	AnswerOther Answer = "other"
)

// SmartCloseAnswered applies the customer's answer ([004]): no closes the
// conversation; yes, or anything else they wrote, sends it back to its
// agent (or to new when they cannot take it). followUp says whether to ask
// the customer for details (after a yes: their message says nothing yet).
func SmartCloseAnswered(c Conversation, a Answer, available bool) (next State, assignee string, followUp bool) {
	if a == AnswerNo {
		return StateDone, "", false
	}
	next, assignee = BackToAgent(c, available)
	return next, assignee, a == AnswerYes
}

// Why an automatic message is not sent.
const (
	SkipAutomaticCustomer = "the customer's last message was sent by a machine (RFC 3834)"
	SkipOptedOut          = "the customer opted out of SMS"
	SkipChannelOff        = "automatic messages are off for this channel"
	SkipNoText            = "no text is configured"
)

// AutomaticMessage decides whether an automatic message (an
// acknowledgement, a waiting message, the smart-close question) may go to
// the customer: never in answer to a machine's mail, never to an SMS
// number that opted out, on SMS and chat only where the tenant enabled
// them. It returns why not, or "" when it may.
func AutomaticMessage(channel string, channelOn, lastCustomerAutomatic, optedOut bool) string {
	switch {
	case !channelOn:
		return SkipChannelOff
	case lastCustomerAutomatic:
		return SkipAutomaticCustomer
	case optedOut && channel == "sms":
		return SkipOptedOut
	}
	return ""
}
