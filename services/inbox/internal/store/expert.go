package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// ExpertQuestion is a question an agent asked an expert about a
// conversation ([004]), and the expert's answer.
type ExpertQuestion struct {
	ID              uuid.UUID
	Tenant          uuid.UUID
	ConversationID  uuid.UUID
	AskerID         uuid.UUID
	ExpertID        uuid.UUID
	Question        string
	IncludeMessages bool
	CreatedAt       time.Time
	// Answer and AnsweredAt are empty while the question is open.
	Answer     string
	AnsweredAt *time.Time
}

// Ref is the question as the rules see it.
func (q ExpertQuestion) Ref() domain.ExpertQuestionRef {
	return domain.ExpertQuestionRef{Asker: q.AskerID.String(), Expert: q.ExpertID.String()}
}

// auditData is what the audit entries and events of the question carry.
func (q ExpertQuestion) auditData() map[string]string {
	return map[string]string{"expert_question_id": q.ID.String(), "expert_id": q.ExpertID.String(), "asker_id": q.AskerID.String()}
}

// ExcerptMessage is a message shared with a question, as the expert sees
// it.
type ExcerptMessage struct {
	MessageID uuid.UUID
	Position  int
	// Author is domain.LabelClient or domain.LabelAgent.
	Author      string
	Text        string
	Attachments []events.Attachment
	SentAt      time.Time
}

// AskInput is what an agent asks.
type AskInput struct {
	ExpertID uuid.UUID
	Question string
	// IncludeMessages shares the conversation's latest messages: those of
	// MessageIDs when not nil (among the latest
	// domain.ExpertExcerptMessages), else all of those.
	IncludeMessages bool
	MessageIDs      []uuid.UUID
}

// AskExpert records p's question about c, locked in tx, with its excerpt,
// and returns it with the change to audit (expert_question). The expert
// must be an enabled user of the tenant other than p; the excerpt's texts,
// names replaced, must hold at most domain.MaxExpertExcerpt characters.
func (s *Store) AskExpert(ctx context.Context, tx pgx.Tx, p domain.Principal, c *Conversation, in AskInput, now time.Time) (ExpertQuestion, Change, error) {
	if err := domain.AskExpert(p, c.Domain()); err != nil {
		return ExpertQuestion{}, Change{}, err
	}
	asker, err := uuid.Parse(p.UserID)
	if err != nil {
		return ExpertQuestion{}, Change{}, fmt.Errorf("ask an expert: the asker is not a user: %w", err)
	}
	if in.ExpertID == asker {
		return ExpertQuestion{}, Change{}, domain.Invalid("expert_id", "is you: ask someone else")
	}
	if err := UserInTenant(ctx, tx, c.Tenant, in.ExpertID); errors.Is(err, domain.ErrNotFound) {
		return ExpertQuestion{}, Change{}, domain.Invalid("expert_id", "is not an active user of this tenant")
	} else if err != nil {
		return ExpertQuestion{}, Change{}, err
	}
	var excerpt []ExcerptMessage
	if in.IncludeMessages {
		if excerpt, err = s.excerpt(ctx, tx, c, asker, in.MessageIDs); err != nil {
			return ExpertQuestion{}, Change{}, err
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return ExpertQuestion{}, Change{}, fmt.Errorf("expert question id: %w", err)
	}
	q := ExpertQuestion{ID: id, Tenant: c.Tenant, ConversationID: c.ID, AskerID: asker, ExpertID: in.ExpertID, Question: in.Question,
		IncludeMessages: in.IncludeMessages, CreatedAt: now}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.expert_questions (id, tenant_id, conversation_id, asker_id, expert_id, question, include_messages, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, q.ID, q.Tenant, q.ConversationID, q.AskerID, q.ExpertID, q.Question, q.IncludeMessages, q.CreatedAt); err != nil {
		return ExpertQuestion{}, Change{}, fmt.Errorf("store expert question: %w", err)
	}
	for _, m := range excerpt {
		var atts []byte
		if len(m.Attachments) > 0 {
			atts = mustJSON(m.Attachments)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inbox.expert_question_messages (question_id, message_id, position, author, text, attachments, sent_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, q.ID, m.MessageID, m.Position, m.Author, m.Text, atts, m.SentAt); err != nil {
			return ExpertQuestion{}, Change{}, fmt.Errorf("store expert question excerpt: %w", err)
		}
	}
	return q, Change{Action: domain.ActionExpertQuestion, Data: q.auditData()}, nil
}

// excerpt builds the excerpt of c that asker shares: the messages picked
// (nil: all) among the latest domain.ExpertExcerptMessages, oldest first,
// authors and names replaced by "Client" and "Agent".
func (s *Store) excerpt(ctx context.Context, tx pgx.Tx, c *Conversation, asker uuid.UUID, picked []uuid.UUID) ([]ExcerptMessage, error) {
	rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM inbox.messages m
		WHERE m.conversation_id = $1 ORDER BY m.received_at DESC, m.id DESC LIMIT $2`, c.ID, domain.ExpertExcerptMessages)
	if err != nil {
		return nil, fmt.Errorf("read the latest messages: %w", err)
	}
	latest, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("read the latest messages: %w", err)
	}
	slices.Reverse(latest)
	for i, id := range picked {
		if !slices.ContainsFunc(latest, func(m Message) bool { return m.ID == id }) {
			return nil, domain.Invalid(fmt.Sprintf("message_ids[%d]", i),
				fmt.Sprintf("is not one of the conversation's last %d messages", domain.ExpertExcerptMessages))
		}
	}
	aliases, err := expertAliases(ctx, tx, c, asker)
	if err != nil {
		return nil, err
	}
	var out []ExcerptMessage
	total := 0
	for _, m := range latest {
		if picked != nil && !slices.Contains(picked, m.ID) {
			continue
		}
		author := domain.LabelAgent
		if m.Direction == "inbound" {
			author = domain.LabelClient
		}
		text := domain.Pseudonymise(m.Body, aliases)
		total += utf8.RuneCountInString(text)
		sent := m.ReceivedAt
		if m.SentAt != nil {
			sent = *m.SentAt
		}
		em := ExcerptMessage{MessageID: m.ID, Position: len(out), Author: author, Text: text, SentAt: sent}
		if em.Attachments, err = storedAttachments(ctx, tx, m.ID); err != nil {
			return nil, err
		}
		out = append(out, em)
	}
	if total > domain.MaxExpertExcerpt {
		field, how := "include_messages", "leave out the messages the question needs not with message_ids"
		if picked != nil {
			field, how = "message_ids", "pick fewer messages"
		}
		return nil, domain.Invalid(field, fmt.Sprintf("the %d messages shared hold %d characters once names are replaced, more than %d: %s",
			len(out), total, domain.MaxExpertExcerpt, how))
	}
	return out, nil
}

// storedAttachments are a message's attachments as stored, blob keys
// included.
func storedAttachments(ctx context.Context, tx pgx.Tx, message uuid.UUID) ([]events.Attachment, error) {
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT attachments FROM inbox.messages WHERE id = $1`, message).Scan(&raw); err != nil {
		return nil, fmt.Errorf("read attachments of message %s: %w", message, err)
	}
	var atts []events.Attachment
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &atts); err != nil {
			return nil, fmt.Errorf("decode attachments of message %s: %w", message, err)
		}
	}
	return atts, nil
}

// expertAliases are the names an excerpt of c hides: the contact's, as
// "Client", then those of the users who wrote in the conversation, work on
// it or ask, as "Agent".
func expertAliases(ctx context.Context, tx pgx.Tx, c *Conversation, asker uuid.UUID) ([]domain.Alias, error) {
	aliases := []domain.Alias{{Name: c.ContactName, Label: domain.LabelClient}}
	people := append([]uuid.UUID{asker}, c.Assignees...)
	if c.LastAgentID != nil {
		people = append(people, *c.LastAgentID)
	}
	rows, err := tx.Query(ctx, `SELECT u.name FROM inbox.users u WHERE u.tenant_id = $1 AND (u.id = ANY($2)
		OR u.id::text IN (SELECT m.author_id FROM inbox.messages m WHERE m.conversation_id = $3 AND m.direction = 'outbound' AND m.author_id IS NOT NULL))
		ORDER BY u.name`, c.Tenant, people, c.ID)
	if err != nil {
		return nil, fmt.Errorf("read the agents' names: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the agents' names: %w", err)
	}
	for _, n := range names {
		aliases = append(aliases, domain.Alias{Name: n, Label: domain.LabelAgent})
	}
	return aliases, nil
}

const expertQuestionColumns = `q.id, q.tenant_id, q.conversation_id, q.asker_id, q.expert_id, q.question, q.include_messages, q.created_at,
	coalesce(q.answer, ''), q.answered_at`

func scanExpertQuestion(row pgx.CollectableRow) (ExpertQuestion, error) {
	var q ExpertQuestion
	err := row.Scan(&q.ID, &q.Tenant, &q.ConversationID, &q.AskerID, &q.ExpertID, &q.Question, &q.IncludeMessages, &q.CreatedAt,
		&q.Answer, &q.AnsweredAt)
	return q, err
}

// getExpertQuestion reads a question of tenant, locked for the rest of
// the transaction when lock is set.
func getExpertQuestion(ctx context.Context, db interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, tenant string, id uuid.UUID, lock bool) (ExpertQuestion, error) {
	sql := `SELECT ` + expertQuestionColumns + ` FROM inbox.expert_questions q WHERE q.tenant_id = $1 AND q.id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	rows, err := db.Query(ctx, sql, tenant, id)
	if err != nil {
		return ExpertQuestion{}, fmt.Errorf("get expert question: %w", err)
	}
	q, err := pgx.CollectExactlyOneRow(rows, scanExpertQuestion)
	if errors.Is(err, pgx.ErrNoRows) {
		return ExpertQuestion{}, domain.ErrNotFound
	}
	if err != nil {
		return ExpertQuestion{}, fmt.Errorf("get expert question: %w", err)
	}
	return q, nil
}

// GetExpertQuestion returns a question of tenant.
func (s *Store) GetExpertQuestion(ctx context.Context, tenant, id uuid.UUID) (ExpertQuestion, error) {
	return getExpertQuestion(ctx, s.pool, tenant.String(), id, false)
}

// ExpertExcerpt returns the messages shared with a question, in order.
func (s *Store) ExpertExcerpt(ctx context.Context, question uuid.UUID) ([]ExcerptMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT message_id, position, author, text, attachments, sent_at
		FROM inbox.expert_question_messages WHERE question_id = $1 ORDER BY position`, question)
	if err != nil {
		return nil, fmt.Errorf("read expert question excerpt: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExcerptMessage, error) {
		var m ExcerptMessage
		var raw []byte
		if err := row.Scan(&m.MessageID, &m.Position, &m.Author, &m.Text, &raw, &m.SentAt); err != nil {
			return m, err
		}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &m.Attachments); err != nil {
				return m, fmt.Errorf("decode excerpt attachments of message %s: %w", m.MessageID, err)
			}
		}
		return m, nil
	})
}

// ExpertRole selects the questions of a user.
type ExpertRole string

// Roles of a user in questions; "" is both.
const (
	ExpertRoleExpert ExpertRole = "expert"
	ExpertRoleAsker  ExpertRole = "asker"
)

// ExpertQuestionFilter selects questions; zero values do not filter.
type ExpertQuestionFilter struct {
	// User and Role: the questions user was asked (expert), asked (asker),
	// or both (Role ""). Conversation: the questions about it.
	User         *uuid.UUID
	Role         ExpertRole
	Conversation *uuid.UUID
	// Open: nil for all, true for those without an answer, false for the
	// answered ones.
	Open *bool
}

// ListExpertQuestions returns a tenant's questions that f selects, oldest
// first, after the position after.
func (s *Store) ListExpertQuestions(ctx context.Context, tenant uuid.UUID, f ExpertQuestionFilter, after *Position, limit int) ([]ExpertQuestion, error) {
	args := []any{tenant, limit}
	where := ""
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.User != nil {
		switch f.Role {
		case ExpertRoleExpert:
			where += ` AND q.expert_id = ` + arg(*f.User)
		case ExpertRoleAsker:
			where += ` AND q.asker_id = ` + arg(*f.User)
		default:
			u := arg(*f.User)
			where += ` AND (q.expert_id = ` + u + ` OR q.asker_id = ` + u + `)`
		}
	}
	if f.Conversation != nil {
		where += ` AND q.conversation_id = ` + arg(*f.Conversation)
	}
	if f.Open != nil {
		if *f.Open {
			where += ` AND q.answer IS NULL`
		} else {
			where += ` AND q.answer IS NOT NULL`
		}
	}
	if after != nil {
		where += ` AND (q.created_at, q.id) > (` + arg(after.At) + `, ` + arg(after.ID) + `)`
	}
	rows, err := s.pool.Query(ctx, `SELECT `+expertQuestionColumns+` FROM inbox.expert_questions q
		WHERE q.tenant_id = $1`+where+` ORDER BY q.created_at, q.id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list expert questions: %w", err)
	}
	return pgx.CollectRows(rows, scanExpertQuestion)
}

// AnswerExpertQuestion records the answer of p, the question's expert, in
// one transaction with the audit entry (expert_answer) and the event on
// its conversation. The expert need not see the conversation: the
// question authorises them. Whoever may not read the question is told it
// does not exist; whoever may but is not its expert is refused.
func (s *Store) AnswerExpertQuestion(ctx context.Context, p domain.Principal, id uuid.UUID, text string, now time.Time) (ExpertQuestion, error) {
	var out ExpertQuestion
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q, err := getExpertQuestion(ctx, tx, p.Tenant, id, false)
		if err != nil {
			return err
		}
		// The conversation first, as every action locks it, then the
		// question, read again under the lock.
		c, err := lockConversation(ctx, tx, p.Tenant, q.ConversationID)
		if err != nil {
			return err
		}
		if q, err = getExpertQuestion(ctx, tx, p.Tenant, id, true); err != nil {
			return err
		}
		if !domain.SeesExpertQuestion(p, q.Ref(), c.VisibleTo(p)) {
			return domain.ErrNotFound
		}
		_, err = s.apply(ctx, tx, p, c, now, func(tx pgx.Tx, _ *Conversation) (Change, error) {
			if err := domain.AnswerExpertQuestion(p, q.Ref(), q.AnsweredAt != nil); err != nil {
				return Change{}, err
			}
			if _, err := tx.Exec(ctx, `UPDATE inbox.expert_questions SET answer = $2, answered_at = $3 WHERE id = $1`, q.ID, text, now); err != nil {
				return Change{}, fmt.Errorf("store expert answer: %w", err)
			}
			q.Answer, q.AnsweredAt = text, &now
			return Change{Action: domain.ActionExpertAnswer, Data: q.auditData()}, nil
		})
		out = q
		return err
	})
	return out, err
}

// ExcerptAttachments returns the attachments of a message as shared with
// a question; ErrNotFound when the question did not share it.
func (s *Store) ExcerptAttachments(ctx context.Context, question, message uuid.UUID) ([]events.Attachment, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT attachments FROM inbox.expert_question_messages WHERE question_id = $1 AND message_id = $2`,
		question, message).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read excerpt attachments: %w", err)
	}
	var atts []events.Attachment
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &atts); err != nil {
			return nil, fmt.Errorf("decode excerpt attachments: %w", err)
		}
	}
	return atts, nil
}
