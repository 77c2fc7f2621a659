package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Command is a command to apply (events.InboxCommand), with its id and
// who sent it.
type Command struct {
	// ID is the event id: a command is applied once per id.
	ID string
	// Sender names the service that sent it (scheduler, router); it is the
	// actor of the audit entry.
	Sender string
	events.InboxCommand
	tenant, conversation uuid.UUID
}

// NewCommand checks a command's ids and returns it ready to apply.
func NewCommand(id, sender string, in events.InboxCommand) (Command, error) {
	if err := in.Validate(); err != nil {
		return Command{}, err
	}
	if id == "" || len(id) > 512 {
		return Command{}, fmt.Errorf("command id %q: must be 1 to 512 bytes", id)
	}
	tenant, _ := uuid.Parse(in.TenantID)             // checked by Validate
	conversation, _ := uuid.Parse(in.ConversationID) // checked by Validate
	return Command{ID: id, Sender: sender, InboxCommand: in, tenant: tenant, conversation: conversation}, nil
}

// Outcomes of commands.
const (
	// OutcomeApplied: the command changed the conversation.
	OutcomeApplied = "applied"
	// OutcomeStale: the conversation moved on; the command changed nothing.
	OutcomeStale = "stale"
	// OutcomeMissing: no such conversation in the command's tenant.
	OutcomeMissing = "missing"
	// OutcomeDuplicate: the command was applied before (delivered again).
	OutcomeDuplicate = "duplicate"
)

// Outcome is what became of a command.
type Outcome struct {
	Command Command
	// Result is one of the Outcome constants.
	Result string
	// Reason says why a command was stale.
	Reason string
}

// CommandFunc applies one command to its conversation, locked: it checks
// what the command expects, changes c and returns the change, or a
// *domain.StaleError when the conversation moved on (it may have changed c
// by then: the change is dropped). now is the time of the batch.
type CommandFunc func(ctx context.Context, tx pgx.Tx, c *Conversation, cmd Command, now time.Time) (Change, error)

// ApplyCommands applies a batch of commands in one transaction, in order,
// each once: a command whose id was applied (or found stale) before is
// skipped. The conversations are locked first, in id order, so that
// batches and agents' actions wait for each other instead of deadlocking.
// Each applied command is audited and announced like an agent's action,
// with its sender as the actor.
func (s *Store) ApplyCommands(ctx context.Context, cmds []Command, now time.Time, apply CommandFunc) ([]Outcome, error) {
	out := make([]Outcome, 0, len(cmds))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = out[:0]
		ids := make([]uuid.UUID, 0, len(cmds))
		cmdIDs := make([]string, 0, len(cmds))
		for _, c := range cmds {
			ids = append(ids, c.conversation)
			cmdIDs = append(cmdIDs, c.ID)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
		ids = slices.Compact(ids)
		rows, err := tx.Query(ctx, `SELECT `+conversationColumns+` FROM inbox.conversations c
			WHERE c.id = ANY($1) ORDER BY c.id FOR UPDATE OF c`, ids)
		if err != nil {
			return fmt.Errorf("lock conversations: %w", err)
		}
		locked, err := pgx.CollectRows(rows, scanConversation)
		if err != nil {
			return fmt.Errorf("lock conversations: %w", err)
		}
		convs := make(map[uuid.UUID]*Conversation, len(locked))
		for i := range locked {
			convs[locked[i].ID] = &locked[i]
		}
		// The agents offered conversations are locked next, in id order
		// too: an offer checks the agent's load under that lock, and
		// batches of different partitions offering to the same agents
		// must not wait on each other in a cycle.
		var agents []uuid.UUID
		for _, c := range cmds {
			if c.Kind == events.CommandOffer && c.Offer != nil {
				if id, err := uuid.Parse(c.Offer.UserID); err == nil {
					agents = append(agents, id)
				}
			}
		}
		if len(agents) > 0 {
			slices.SortFunc(agents, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
			agents = slices.Compact(agents)
			if _, err := tx.Exec(ctx, `SELECT 1 FROM (SELECT id FROM inbox.users WHERE id = ANY($1) ORDER BY id FOR UPDATE) AS u`, agents); err != nil {
				return fmt.Errorf("lock offered agents: %w", err)
			}
		}
		// Read once the conversations are locked: a transaction applying
		// the same command concurrently (a rebalance) has committed by
		// now, and its record is seen.
		rows, err = tx.Query(ctx, `SELECT id FROM inbox.applied_commands WHERE id = ANY($1)`, cmdIDs)
		if err != nil {
			return fmt.Errorf("read applied commands: %w", err)
		}
		seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("read applied commands: %w", err)
		}
		done := make(map[string]bool, len(seen)+len(cmds))
		for _, id := range seen {
			done[id] = true
		}

		var (
			audit []auditEntry
			recs  []outbox.Record
			dirty []*Conversation
		)
		for _, cmd := range cmds {
			if done[cmd.ID] {
				out = append(out, Outcome{Command: cmd, Result: OutcomeDuplicate})
				continue
			}
			done[cmd.ID] = true
			c, ok := convs[cmd.conversation]
			if !ok || c.Tenant != cmd.tenant {
				out = append(out, Outcome{Command: cmd, Result: OutcomeMissing, Reason: "no such conversation in the tenant"})
				continue
			}
			before := *c
			change, err := apply(ctx, tx, c, cmd, now)
			var st *domain.StaleError
			if errors.As(err, &st) {
				*c = before
				out = append(out, Outcome{Command: cmd, Result: OutcomeStale, Reason: st.Reason})
				continue
			}
			if err != nil {
				return fmt.Errorf("apply %s command %s to conversation %s: %w", cmd.Kind, cmd.ID, cmd.ConversationID, err)
			}
			from := before.State
			settle(c, from, now)
			audit = append(audit, auditOf(*c, from, "system", cmd.Sender, change, now))
			crecs, err := changeRecords(change, events.Actor{Kind: "system", ID: cmd.Sender}, from, *c, now)
			if err != nil {
				return err
			}
			recs = append(recs, crecs...)
			if !slices.Contains(dirty, c) {
				dirty = append(dirty, c)
			}
			out = append(out, Outcome{Command: cmd, Result: OutcomeApplied})
		}

		b := &pgx.Batch{}
		for _, c := range dirty {
			sql, args, err := conversationUpdate(*c)
			if err != nil {
				return err
			}
			b.Queue(sql, args...)
		}
		queueAudit(b, audit)
		if err := s.outbox.Queue(ctx, b, recs...); err != nil {
			return err
		}
		queueApplied(b, out, now)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write applied commands: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queueApplied records the outcomes, but duplicates, in b.
func queueApplied(b *pgx.Batch, outs []Outcome, now time.Time) {
	var (
		ids, kinds, results, reasons []string
		tenants, convs               [][16]byte
		dues                         []*time.Time
	)
	for _, o := range outs {
		if o.Result == OutcomeDuplicate {
			continue
		}
		c := o.Command
		ids, kinds, results, reasons = append(ids, c.ID), append(kinds, c.Kind), append(results, o.Result), append(reasons, o.Reason)
		tenants, convs = append(tenants, c.tenant), append(convs, c.conversation)
		var due *time.Time
		if !c.DueAt.IsZero() {
			d := c.DueAt
			due = &d
		}
		dues = append(dues, due)
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(`INSERT INTO inbox.applied_commands (id, tenant_id, conversation_id, kind, outcome, reason, due_at, applied_at)
		SELECT u.*, $8::timestamptz FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS u`,
		ids, tenants, convs, kinds, results, reasons, dues, now)
}

// PruneAppliedCommands forgets the commands applied before cutoff: a
// command is delivered again within minutes of its first delivery, not
// weeks after.
func (s *Store) PruneAppliedCommands(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM inbox.applied_commands WHERE applied_at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune applied commands: %w", err)
	}
	return tag.RowsAffected(), nil
}

// AgentAvailable reports whether agent can take c back (a deferral ends,
// the customer answered smart close): an enabled user of its tenant, in
// its queue when it has one, holding fewer assigned conversations than
// their capacity.
func AgentAvailable(ctx context.Context, tx pgx.Tx, c *Conversation, agent uuid.UUID) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (
			SELECT 1 FROM inbox.users u
			WHERE u.id = $1 AND u.tenant_id = $2 AND u.disabled_at IS NULL
			  AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM inbox.user_queues q WHERE q.user_id = u.id AND q.queue_id = $3))
			  AND u.capacity > (SELECT count(*) FROM inbox.conversations x
			                    WHERE x.tenant_id = u.tenant_id AND x.state = 'assigned' AND x.assignee_ids @> ARRAY[u.id]))`,
		agent, c.Tenant, c.QueueID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check whether agent %s can take conversation %s: %w", agent, c.ID, err)
	}
	return ok, nil
}

// Purposes of automatic messages beyond events.Automatic's.
const (
	PurposeSmartCloseQuestion = "smart_close_question"
	PurposeSmartCloseFollowUp = "smart_close_follow_up"
)

// automationContext is what automatic messages need of a conversation's
// tenant, queue and agent.
type automationContext struct {
	tenantName, queueName, agentName string
	tenant                           TenantAutomation
	queue                            QueueAutomation
}

func loadAutomationContext(ctx context.Context, tx pgx.Tx, c *Conversation) (automationContext, error) {
	var (
		ac                 automationContext
		traw, qraw         []byte
		twm, qwm           *uuid.UUID
		queueName, agentNm *string
	)
	err := tx.QueryRow(ctx, `SELECT t.name, t.automation, t.waiting_message_id, q.name, coalesce(q.automation, '{}'), q.waiting_message_id, u.name
		FROM inbox.tenants t
		LEFT JOIN inbox.queues q ON q.id = $2 AND q.tenant_id = t.id
		LEFT JOIN inbox.users u ON u.id = $3 AND u.tenant_id = t.id
		WHERE t.id = $1`, c.Tenant, c.QueueID, c.LastAgentID).Scan(&ac.tenantName, &traw, &twm, &queueName, &qraw, &qwm, &agentNm)
	if err != nil {
		return ac, fmt.Errorf("read automation settings: %w", err)
	}
	if queueName != nil {
		ac.queueName = *queueName
	}
	if agentNm != nil {
		ac.agentName = *agentNm
	}
	if err := decodeSettings(traw, twm, &ac.tenant); err != nil {
		return ac, err
	}
	return ac, decodeSettings(qraw, qwm, &ac.queue)
}

// vars are the values of the variables of an automatic text on c.
func (ac automationContext) vars(c *Conversation, now time.Time) map[string]string {
	v := map[string]string{
		domain.VarCustomerName:    c.ContactName,
		domain.VarConversationRef: strings.ToUpper(c.ID.String()[:8]),
		domain.VarQueueName:       ac.queueName,
		domain.VarHoursWaited:     strconv.Itoa(int(math.Max(0, now.Sub(c.StateSince).Hours()))),
		domain.VarTenantName:      ac.tenantName,
		domain.VarAgentName:       ac.agentName,
	}
	if d := ac.tenant.AnnouncedDelayHours; d != nil {
		v[domain.VarAnnouncedDelay] = strconv.FormatFloat(*d, 'f', -1, 64)
	}
	return v
}

// automaticTarget loads what an automatic message on c needs (the
// settings, the customer) and says why one may not go out, "" when it may.
func automaticTarget(ctx context.Context, tx pgx.Tx, c *Conversation) (automationContext, customer, string, error) {
	ac, err := loadAutomationContext(ctx, tx, c)
	if err != nil {
		return ac, customer{}, "", err
	}
	cu, err := lastCustomer(ctx, tx, c)
	if err != nil {
		return ac, cu, "", err
	}
	channelOn := events.Automation{SMS: ac.tenant.Channels.SMS, Chat: ac.tenant.Channels.Chat}.AutomaticOn(c.Channel)
	return ac, cu, domain.AutomaticMessage(c.Channel, channelOn, cu.automatic, cu.consent == ConsentOptedOut), nil
}

// SendAutomatic sends an automatic message on c, locked in tx: an
// acknowledgement, a waiting message (waitingMessage), the smart-close
// question or its follow-up. It renders the text configured now, and
// refuses, with a *domain.StaleError saying why, what the rules forbid:
// an answer to a machine's mail, a text to an SMS number that opted out,
// a channel the tenant did not enable, a waiting message no longer
// assigned or without hours for the state, a text not configured, a
// message already sent for the same reason (key).
func (s *Store) SendAutomatic(ctx context.Context, tx pgx.Tx, c *Conversation, purpose string, waitingMessage *uuid.UUID, key string, now time.Time) (Change, error) {
	ac, cu, why, err := automaticTarget(ctx, tx, c)
	if err != nil {
		return Change{}, err
	}
	if why != "" {
		return Change{}, &domain.StaleError{Reason: why}
	}
	var (
		text    AutomaticText
		choices []events.Choice
	)
	switch purpose {
	case events.AutomaticAcknowledgement:
		t := ac.queue.Acknowledgement
		if t == nil {
			t = ac.tenant.Acknowledgement
		}
		if t == nil {
			return Change{}, &domain.StaleError{Reason: domain.SkipNoText}
		}
		text = *t
	case events.AutomaticWaiting:
		effective := ac.queue.WaitingMessageID
		if effective == nil {
			effective = ac.tenant.WaitingMessageID
		}
		if waitingMessage == nil || effective == nil || *effective != *waitingMessage {
			return Change{}, &domain.StaleError{Reason: "the waiting message is no longer assigned to the conversation's queue or tenant"}
		}
		w, err := waitingMessages.one(ctx, tx, c.Tenant, *waitingMessage, false)
		if errors.Is(err, ErrNotFound) {
			return Change{}, &domain.StaleError{Reason: "the waiting message was deleted"}
		}
		if err != nil {
			return Change{}, err
		}
		if (events.WaitingHours{New: w.Hours.New, HelpRequested: w.Hours.HelpRequested, External: w.Hours.External}).For(string(c.State)) == nil {
			return Change{}, &domain.StaleError{Reason: "the waiting message has no hours for " + string(c.State)}
		}
		text = AutomaticText{Subject: w.Subject, Body: w.Body}
	case PurposeSmartCloseQuestion, PurposeSmartCloseFollowUp:
		t, ok := ac.tenant.SmartClose.Texts[c.Channel]
		body := t.Question
		if purpose == PurposeSmartCloseFollowUp {
			body = t.FollowUp
		}
		if !ok || strings.TrimSpace(body) == "" {
			return Change{}, &domain.StaleError{Reason: domain.SkipNoText}
		}
		text = AutomaticText{Body: body}
		if purpose == PurposeSmartCloseQuestion && c.Channel == events.ChannelChat {
			yes, no := t.YesLabel, t.NoLabel
			if yes == "" {
				yes = "Yes"
			}
			if no == "" {
				no = "No"
			}
			choices = []events.Choice{{ID: events.AnswerYes, Label: yes}, {ID: events.AnswerNo, Label: no}}
		}
	default:
		return Change{}, fmt.Errorf("unknown automatic message purpose %q", purpose)
	}
	external := "auto:" + purpose + ":" + c.ID.String() + ":" + key
	var sent bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.messages WHERE channel_account_id = $1 AND external_id = $2)`,
		c.ChannelAccountID, external).Scan(&sent); err != nil {
		return Change{}, fmt.Errorf("look for the automatic message: %w", err)
	}
	if sent {
		return Change{}, &domain.StaleError{Reason: "this automatic message was sent already"}
	}
	vars := ac.vars(c, now)
	subject := ""
	if c.Channel == events.ChannelEmail {
		subject = strings.Join(strings.Fields(domain.Render(text.Subject, vars)), " ")
		if subject == "" {
			subject = replySubject(cu.subject)
		}
	}
	m, rec, err := s.compose(ctx, tx, c, cu, draft{text: domain.Render(text.Body, vars), subject: subject, author: "switchboard",
		automatic: true, choices: choices, externalID: external}, now)
	if err != nil {
		return Change{}, err
	}
	data := map[string]string{"purpose": purpose, "message_id": m.ID.String()}
	if waitingMessage != nil {
		data["waiting_message_id"] = waitingMessage.String()
	}
	return Change{Action: domain.ActionAutomaticMessage, Data: data, Records: []outbox.Record{rec}, Message: &m}, nil
}

// SmartCloseAvailable checks, when an agent completes c with smart close,
// that the tenant has a question for its channel and that it may be sent
// there (the same rules as every automatic message).
func (s *Store) SmartCloseAvailable(ctx context.Context, tx pgx.Tx, c *Conversation) error {
	ac, cu, why, err := automaticTarget(ctx, tx, c)
	if err != nil {
		return err
	}
	if t, ok := ac.tenant.SmartClose.Texts[c.Channel]; !ok || strings.TrimSpace(t.Question) == "" {
		return domain.Invalid("smart_close", "the tenant has no smart-close question for "+c.Channel+" (PUT /v1/admin/automation)")
	}
	switch why {
	case domain.SkipOptedOut:
		return &domain.OptedOutError{Field: "smart_close", To: cu.to}
	case domain.SkipChannelOff:
		return domain.Invalid("smart_close", "automatic messages are off for "+c.Channel+" (channels in PUT /v1/admin/automation)")
	case domain.SkipAutomaticCustomer:
		return domain.Invalid("smart_close", "the customer's last message was sent by a machine: nobody would answer the question")
	}
	return nil
}
