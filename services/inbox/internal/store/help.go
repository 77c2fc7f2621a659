package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Help requests ([000]) and external agents ([003]): see domain/help.go
// for the rules. A request and its answer are rows of help_requests, shown
// in a panel of their own (never as messages to the customer); each step
// is also a change of the conversation, audited and announced, whose data
// names the request and the people concerned for the notifications.

// HelpRequest is a help request and, once answered, its answer.
type HelpRequest struct {
	ID             uuid.UUID `json:"id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	RequesterID    uuid.UUID `json:"requester_id"`
	Comment        string    `json:"comment"`
	// ReplyMessageID is the message sent to the customer with the
	// request ("send and ask for help").
	ReplyMessageID *uuid.UUID `json:"reply_message_id,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	AnsweredAt     *time.Time `json:"answered_at,omitempty"`
	AnsweredBy     *uuid.UUID `json:"answered_by,omitempty"`
	Answer         *string    `json:"answer,omitempty"`
	// Outcome is where the answer sent the conversation: requester or
	// queue (domain.BackToRequester, BackToQueue).
	Outcome *string `json:"outcome,omitempty"`
}

const helpRequestColumns = `id, conversation_id, requester_id, comment, reply_message_id, created_at, answered_at, answered_by, answer, outcome`

func scanHelpRequest(row pgx.CollectableRow) (HelpRequest, error) {
	var h HelpRequest
	err := row.Scan(&h.ID, &h.ConversationID, &h.RequesterID, &h.Comment, &h.ReplyMessageID, &h.CreatedAt, &h.AnsweredAt, &h.AnsweredBy,
		&h.Answer, &h.Outcome)
	return h, err
}

// AskHelp hands c over for help: a request of p's, with comment, is
// stored, and c waits, held by nobody, in help_requested. reply, when not
// nil, is the change of the reply p sent first ("send and ask for help"),
// made on c in the same transaction; it is audited and announced first.
// The caller checked domain.HelpRequest before the reply.
func (s *Store) AskHelp(ctx context.Context, tx pgx.Tx, p domain.Principal, c *Conversation, comment string, reply *Change, now time.Time) (Change, error) {
	requester, err := uuid.Parse(p.UserID)
	if err != nil {
		return Change{}, fmt.Errorf("%w: only a user can ask for help", domain.ErrForbidden)
	}
	h := HelpRequest{ID: uuid.New(), ConversationID: c.ID, RequesterID: requester, Comment: comment, CreatedAt: now}
	var earlier *Earlier
	if reply != nil {
		earlier = &Earlier{Change: *reply, Conversation: *c}
		if reply.Message != nil {
			h.ReplyMessageID = &reply.Message.ID
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO inbox.help_requests (id, tenant_id, conversation_id, requester_id, comment, reply_message_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, h.ID, c.Tenant, c.ID, h.RequesterID, h.Comment, h.ReplyMessageID, h.CreatedAt)
	if err != nil {
		return Change{}, fmt.Errorf("store the help request on conversation %s: %w", c.ID, err)
	}
	if c.State != domain.StateAnswered { // answered: the reply recorded where it came from
		c.PreviousState = c.State
	}
	c.State = domain.StateHelpRequested
	c.Assignees = []uuid.UUID{}
	c.LastAgentID = &requester
	return Change{Action: domain.ActionHelpRequest, Reason: comment, Earlier: earlier,
		Data: map[string]string{"help_request_id": h.ID.String(), "requester_id": h.RequesterID.String()}}, nil
}

// HelpRequests lists the help requests of a conversation and their
// answers, oldest first.
func (s *Store) HelpRequests(ctx context.Context, conversation uuid.UUID) ([]HelpRequest, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+helpRequestColumns+` FROM inbox.help_requests
		WHERE conversation_id = $1 ORDER BY created_at, id`, conversation)
	if err != nil {
		return nil, fmt.Errorf("list help requests: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanHelpRequest)
	if err != nil {
		return nil, fmt.Errorf("list help requests: %w", err)
	}
	if out == nil {
		out = []HelpRequest{}
	}
	return out, nil
}

// AnswerHelp answers the help request id of c with text, by p: c goes
// back to the requester when online says they are connected and they can
// still take it (store.AgentAvailable), else to new in its queue, with the
// tenant's priority for answered help requests when it has one. The
// caller checked domain.AnswerHelp.
func (s *Store) AnswerHelp(ctx context.Context, tx pgx.Tx, p domain.Principal, c *Conversation, id uuid.UUID, text string,
	online func(user uuid.UUID) (bool, error), now time.Time) (Change, error) {
	rows, err := tx.Query(ctx, `SELECT `+helpRequestColumns+` FROM inbox.help_requests
		WHERE id = $1 AND conversation_id = $2 FOR UPDATE`, id, c.ID)
	if err != nil {
		return Change{}, fmt.Errorf("find help request %s: %w", id, err)
	}
	h, err := pgx.CollectExactlyOneRow(rows, scanHelpRequest)
	if errors.Is(err, pgx.ErrNoRows) {
		return Change{}, domain.ErrNotFound
	}
	if err != nil {
		return Change{}, fmt.Errorf("find help request %s: %w", id, err)
	}
	if h.AnsweredAt != nil {
		return Change{}, &domain.ConflictError{State: c.State, Reason: "this help request was answered already"}
	}
	answeredBy, err := uuid.Parse(p.UserID)
	if err != nil {
		return Change{}, fmt.Errorf("%w: only a user answers a help request", domain.ErrForbidden)
	}
	available, err := backAvailable(ctx, tx, c, h.RequesterID, online)
	if err != nil {
		return Change{}, err
	}
	var priority *int
	if available {
		// Back in the requester's hands: the queue's order does not apply.
	} else if priority, err = helpPriority(ctx, tx, c.Tenant); err != nil {
		return Change{}, err
	}
	backTo := backFrom(c, h.RequesterID, available, priority)
	if _, err := tx.Exec(ctx, `UPDATE inbox.help_requests SET answered_at = $2, answered_by = $3, answer = $4, outcome = $5 WHERE id = $1`,
		h.ID, now, answeredBy, text, backTo); err != nil {
		return Change{}, fmt.Errorf("store the answer to help request %s: %w", h.ID, err)
	}
	return Change{Action: domain.ActionHelpAnswer, Reason: text, Data: map[string]string{
		"help_request_id": h.ID.String(), "requester_id": h.RequesterID.String(), "answered_by": answeredBy.String(), "back_to": backTo}}, nil
}

// SendExternal hands c to an external agent, by p (the caller checked
// domain.External): it waits in external, held by nobody, and p is
// recorded as its last agent, to whom it comes back.
func SendExternal(p domain.Principal, c *Conversation, comment string) (Change, error) {
	sender, err := uuid.Parse(p.UserID)
	if err != nil {
		return Change{}, fmt.Errorf("%w: only a user can hand a conversation to an external agent", domain.ErrForbidden)
	}
	c.PreviousState, c.State = c.State, domain.StateExternal
	c.Assignees = []uuid.UUID{}
	c.LastAgentID = &sender
	return Change{Action: domain.ActionExternal, Reason: comment, Data: map[string]string{"comment": comment}}, nil
}

// ReturnExternal brings c back from its external agent (the caller
// checked domain.ExternalReturn): to the agent who sent it when online
// says they are connected and they can still take it, else to new in its
// queue.
func ReturnExternal(ctx context.Context, tx pgx.Tx, c *Conversation, comment string, online func(user uuid.UUID) (bool, error)) (Change, error) {
	var sender uuid.UUID
	if c.LastAgentID != nil {
		sender = *c.LastAgentID
	}
	available := false
	if sender != uuid.Nil {
		var err error
		if available, err = backAvailable(ctx, tx, c, sender, online); err != nil {
			return Change{}, err
		}
	}
	backTo := backFrom(c, sender, available, nil)
	return Change{Action: domain.ActionExternalReturn, Reason: comment, Data: map[string]string{"back_to": backTo}}, nil
}

// backAvailable reports whether agent can take c back: connected, and
// able to take it (AgentAvailable: enabled, in its queue, under capacity).
func backAvailable(ctx context.Context, tx pgx.Tx, c *Conversation, agent uuid.UUID, online func(user uuid.UUID) (bool, error)) (bool, error) {
	connected, err := online(agent)
	if err != nil {
		return false, fmt.Errorf("presence of agent %s: %w", agent, err)
	}
	if !connected {
		return false, nil
	}
	return AgentAvailable(ctx, tx, c, agent)
}

// backFrom moves c back from help_requested or external: to agent when
// available, else to new with priority when not nil. It returns where it
// went (domain.BackToRequester, BackToQueue).
func backFrom(c *Conversation, agent uuid.UUID, available bool, priority *int) string {
	next, assignee, backTo := domain.BackFromHelp(agent.String(), available && agent != uuid.Nil)
	c.PreviousState, c.State = c.State, next
	c.Assignees = []uuid.UUID{}
	if assignee != "" {
		c.Assignees = []uuid.UUID{agent}
		c.LastAgentID = &agent
	}
	if priority != nil {
		c.Priority = *priority
	}
	return backTo
}

// HelpSettings are a tenant's settings of help requests.
type HelpSettings struct {
	// AnsweredPriority is the priority a conversation takes when an
	// answered help request sends it back to its queue; null keeps its
	// own.
	AnsweredPriority *int `json:"answered_priority"`
}

// Validate checks the settings.
func (h HelpSettings) Validate() error {
	if v := h.AnsweredPriority; v != nil && (*v < domain.MinRoutingPriority || *v > domain.MaxRoutingPriority) {
		return domain.Invalid("answered_priority", fmt.Sprintf("must be an integer from %d to %d (higher goes first), or null to keep the conversation's",
			domain.MinRoutingPriority, domain.MaxRoutingPriority))
	}
	return nil
}

// GetHelpSettings returns the tenant's help settings (the defaults when it
// has none).
func (s *Store) GetHelpSettings(ctx context.Context, tenant uuid.UUID) (HelpSettings, error) {
	var h HelpSettings
	err := s.pool.QueryRow(ctx, `SELECT answered_priority FROM inbox.help_settings WHERE tenant_id = $1`, tenant).Scan(&h.AnsweredPriority)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return h, fmt.Errorf("read the help settings: %w", err)
	}
	return h, nil
}

// PutHelpSettings replaces the tenant's help settings.
func (s *Store) PutHelpSettings(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, h HelpSettings, now time.Time) (HelpSettings, error) {
	if err := h.Validate(); err != nil {
		return h, err
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.help_settings (tenant_id, answered_priority, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET answered_priority = excluded.answered_priority, updated_at = excluded.updated_at`,
		tenant, h.AnsweredPriority, now)
	if err != nil {
		return h, fmt.Errorf("write the help settings: %w", err)
	}
	return h, nil
}

func helpPriority(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) (*int, error) {
	var p *int
	err := tx.QueryRow(ctx, `SELECT answered_priority FROM inbox.help_settings WHERE tenant_id = $1`, tenant).Scan(&p)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read the help settings: %w", err)
	}
	return p, nil
}
