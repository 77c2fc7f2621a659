package domain

import "fmt"

// Help from others: help requests ([000] "Demander de l'aide") and
// external agents ([003] "A traiter par agent externe"). Both take a
// conversation out of its agent's hands while it waits (help_requested,
// external): nobody holds it, so that the agent can no longer act on it,
// and it comes back to the agent who handed it over when they are still
// there, else to its queue.

// MaxHelpComment and MaxHelpAnswer bound a help request's comment and its
// answer, in bytes.
const (
	MaxHelpComment = 2000
	MaxHelpAnswer  = 4000
)

// Where an answered help request or a returned external conversation goes.
const (
	BackToRequester = "requester"
	BackToQueue     = "queue"
)

// HelpRequest checks that p may ask for help on c: a user (the answer
// comes back to them) who works on it (its assignee, or a supervisor), on
// an assigned conversation.
func HelpRequest(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user can ask for help: the answer goes back to them", ErrForbidden)
	}
	if err := mustWorkOn(p, c); err != nil {
		return err
	}
	if c.State != StateAssigned {
		return conflict(c, "only an assigned conversation can be handed over for help")
	}
	return nil
}

// AnswerHelp checks that p may answer the help request of c: a user with
// the answer_help_requests permission, on a help_requested conversation.
func AnswerHelp(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user answers a help request", ErrForbidden)
	}
	if !p.Can(PermAnswerHelpRequests) {
		return fmt.Errorf("%w: answering a help request needs the %s permission", ErrForbidden, PermAnswerHelpRequests)
	}
	if c.State != StateHelpRequested {
		return conflict(c, "only a help_requested conversation waits for an answer")
	}
	return nil
}

// BackFromHelp is where a conversation goes when its help request is
// answered or its external agent is done: assigned to agent (the requester,
// the sender) when they are there to take it (available), else new, in its
// queue, for whoever takes it next.
func BackFromHelp(agent string, available bool) (next State, assignee, backTo string) {
	if available && agent != "" {
		return StateAssigned, agent, BackToRequester
	}
	return StateNew, "", BackToQueue
}

// External checks that p may hand c to an external agent: a user (it
// comes back to them) who works on it, on an assigned conversation.
func External(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user can hand a conversation to an external agent: it comes back to them", ErrForbidden)
	}
	if err := mustWorkOn(p, c); err != nil {
		return err
	}
	if c.State != StateAssigned {
		return conflict(c, "only an assigned conversation can be handed to an external agent")
	}
	return nil
}

// ExternalReturn checks that p may record that the external agent is done
// with c: the agent who sent it there (its last agent), or a supervisor,
// on an external conversation.
func ExternalReturn(p Principal, c Conversation) error {
	if !(p.UserID != "" && p.UserID == c.LastAgent) && !p.Can(PermAssignOthers) {
		return fmt.Errorf("%w: only the agent who sent it to the external agent, or a supervisor, can take it back", ErrForbidden)
	}
	if c.State != StateExternal {
		return conflict(c, "only an external conversation can come back from its external agent")
	}
	return nil
}
