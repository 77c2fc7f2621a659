package api

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Ask an expert ([004]): an agent working on a conversation asks a named
// user of the tenant a question, optionally with an excerpt of the
// conversation's last messages; the expert answers inside Switchboard.
func (a *API) registerExpertQuestions(r Router) {
	a.handle(r, "POST /v1/conversations/{id}/expert-questions", a.askExpert)
	a.handle(r, "GET /v1/conversations/{id}/expert-questions", a.conversationExpertQuestions)
	a.handle(r, "GET /v1/expert-questions", a.listExpertQuestions)
	a.handle(r, "GET /v1/expert-questions/{id}", a.getExpertQuestion)
	a.handle(r, "POST /v1/expert-questions/{id}/answer", a.answerExpertQuestion)
	a.handle(r, "GET /v1/expert-questions/{id}/attachments/{message_id}/{index}", a.downloadExpertAttachment)
}

// ExpertQuestionRequest is the body of POST
// /v1/conversations/{id}/expert-questions.
type ExpertQuestionRequest struct {
	ExpertID string `json:"expert_id"`
	Question string `json:"question"`
	// IncludeMessages shares the conversation's last 20 messages, or those
	// of MessageIDs among them.
	IncludeMessages bool      `json:"include_messages"`
	MessageIDs      *[]string `json:"message_ids"`
}

// ExpertQuestion is a question as the API shows it.
type ExpertQuestion struct {
	ID              uuid.UUID `json:"id"`
	ConversationID  uuid.UUID `json:"conversation_id"`
	AskerID         uuid.UUID `json:"asker_id"`
	ExpertID        uuid.UUID `json:"expert_id"`
	Question        string    `json:"question"`
	IncludeMessages bool      `json:"include_messages"`
	// Status is open until the expert answers, then answered.
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	// LinksExpireAt is when the excerpt's attachment links stop working.
	LinksExpireAt time.Time  `json:"links_expire_at"`
	Answer        string     `json:"answer,omitempty"`
	AnsweredAt    *time.Time `json:"answered_at,omitempty"`
	// Messages is the excerpt, on one question (not in lists).
	Messages []ExcerptMessage `json:"messages,omitempty"`
}

// ExcerptMessage is a message shared with a question.
type ExcerptMessage struct {
	MessageID   uuid.UUID           `json:"message_id"`
	Position    int                 `json:"position"`
	Author      string              `json:"author"`
	Text        string              `json:"text"`
	SentAt      time.Time           `json:"sent_at"`
	Attachments []ExcerptAttachment `json:"attachments,omitempty"`
}

// ExcerptAttachment is a file of a shared message; URL downloads it for a
// week, for the question's expert and asker.
type ExcerptAttachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	// URL is absent when the file's content was not kept (too large).
	URL string `json:"url,omitempty"`
}

// Question statuses.
const (
	statusOpen     = "open"
	statusAnswered = "answered"
)

func questionView(q store.ExpertQuestion) ExpertQuestion {
	v := ExpertQuestion{ID: q.ID, ConversationID: q.ConversationID, AskerID: q.AskerID, ExpertID: q.ExpertID, Question: q.Question,
		IncludeMessages: q.IncludeMessages, Status: statusOpen, CreatedAt: q.CreatedAt, LinksExpireAt: q.CreatedAt.Add(domain.ExpertLinkValidity),
		Answer: q.Answer, AnsweredAt: q.AnsweredAt}
	if q.AnsweredAt != nil {
		v.Status = statusAnswered
	}
	return v
}

// withExcerpt is the question with its excerpt.
func (a *API) withExcerpt(r *http.Request, q store.ExpertQuestion) (ExpertQuestion, error) {
	v := questionView(q)
	excerpt, err := a.Store.ExpertExcerpt(r.Context(), q.ID)
	if err != nil {
		return v, err
	}
	for _, m := range excerpt {
		em := ExcerptMessage{MessageID: m.MessageID, Position: m.Position, Author: m.Author, Text: m.Text, SentAt: m.SentAt}
		for i, att := range m.Attachments {
			ea := ExcerptAttachment{Name: att.Name, ContentType: att.ContentType, Size: att.Size}
			if att.BlobKey != "" {
				ea.URL = fmt.Sprintf("/v1/expert-questions/%s/attachments/%s/%d", q.ID, m.MessageID, i)
			}
			em.Attachments = append(em.Attachments, ea)
		}
		v.Messages = append(v.Messages, em)
	}
	return v, nil
}

// askInput validates the body of a question.
func askInput(in ExpertQuestionRequest) (store.AskInput, error) {
	var out store.AskInput
	expert, err := uuid.Parse(in.ExpertID)
	if err != nil {
		return out, domain.Invalid("expert_id", "is required: the id of a user of the tenant")
	}
	if strings.TrimSpace(in.Question) == "" || !utf8.ValidString(in.Question) || strings.ContainsRune(in.Question, 0) {
		return out, domain.Invalid("question", fmt.Sprintf("is required: text of 1 to %d characters", domain.MaxExpertQuestion))
	}
	if n := utf8.RuneCountInString(in.Question); n > domain.MaxExpertQuestion {
		return out, domain.Invalid("question", fmt.Sprintf("is %d characters long, more than %d", n, domain.MaxExpertQuestion))
	}
	out = store.AskInput{ExpertID: expert, Question: in.Question, IncludeMessages: in.IncludeMessages}
	if in.MessageIDs == nil {
		return out, nil
	}
	ids := *in.MessageIDs
	switch {
	case !in.IncludeMessages:
		return out, domain.Invalid("message_ids", "needs include_messages: true")
	case len(ids) == 0:
		return out, domain.Invalid("message_ids", "must list at least one message; leave it out to share the last 20")
	case len(ids) > domain.ExpertExcerptMessages:
		return out, domain.Invalid("message_ids", fmt.Sprintf("lists %d messages, more than the last %d that may be shared", len(ids), domain.ExpertExcerptMessages))
	}
	out.MessageIDs = make([]uuid.UUID, 0, len(ids))
	for i, s := range ids {
		id, err := uuid.Parse(s)
		if err != nil {
			return out, domain.Invalid(fmt.Sprintf("message_ids[%d]", i), "must be the id of a message")
		}
		if slices.Contains(out.MessageIDs, id) {
			return out, domain.Invalid(fmt.Sprintf("message_ids[%d]", i), "is listed twice")
		}
		out.MessageIDs = append(out.MessageIDs, id)
	}
	return out, nil
}

// askExpert records a question about the conversation, audited on it
// (expert_question), and answers it with its excerpt.
func (a *API) askExpert(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var body ExpertQuestionRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	in, err := askInput(body)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var q store.ExpertQuestion
	now := a.Clock.Now()
	_, err = a.Store.Act(r.Context(), p, id, now, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		var change store.Change
		var err error
		q, change, err = a.Store.AskExpert(r.Context(), tx, p, c, in, now)
		return change, err
	})
	if err != nil {
		return err
	}
	v, err := a.withExcerpt(r, q)
	if err != nil {
		return err
	}
	return created(w, v)
}

// questionStatus reads the status filter.
func questionStatus(r *http.Request) (*bool, error) {
	switch s := r.URL.Query().Get("status"); s {
	case "":
		return nil, nil
	case statusOpen, statusAnswered:
		open := s == statusOpen
		return &open, nil
	default:
		return nil, domain.Invalid("status", "must be open or answered")
	}
}

func questionPosition(q ExpertQuestion) store.Position {
	return store.Position{At: q.CreatedAt, ID: q.ID}
}

// serveQuestions answers the page r asks for of the questions f selects.
func (a *API) serveQuestions(w http.ResponseWriter, r *http.Request, tenant uuid.UUID, f store.ExpertQuestionFilter) error {
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.Store.ListExpertQuestions(r.Context(), tenant, f, after, limit+1)
	if err != nil {
		return err
	}
	views := make([]ExpertQuestion, len(items))
	for i, q := range items {
		views[i] = questionView(q)
	}
	return ok(w, pageOf(views, limit, questionPosition))
}

// conversationExpertQuestions lists the questions asked about a
// conversation, with their answers, for whoever may see it.
func (a *API) conversationExpertQuestions(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	open, err := questionStatus(r)
	if err != nil {
		return err
	}
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	return a.serveQuestions(w, r, c.Tenant, store.ExpertQuestionFilter{Conversation: &c.ID, Open: open})
}

// listExpertQuestions lists the caller's questions: asked of them
// (role=expert), asked by them (role=asker), or both.
func (a *API) listExpertQuestions(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	user, err := uuid.Parse(p.UserID)
	if err != nil {
		return fmt.Errorf("%w: only a user asks and answers expert questions", domain.ErrForbidden)
	}
	f := store.ExpertQuestionFilter{User: &user}
	switch role := store.ExpertRole(r.URL.Query().Get("role")); role {
	case "", store.ExpertRoleExpert, store.ExpertRoleAsker:
		f.Role = role
	default:
		return domain.Invalid("role", "must be expert or asker")
	}
	if f.Open, err = questionStatus(r); err != nil {
		return err
	}
	return a.serveQuestions(w, r, tenant, f)
}

// readableQuestion loads the question of the path, for a caller who may
// read it (its expert, its asker, a supervisor who sees its
// conversation); anyone else is told it does not exist.
func (a *API) readableQuestion(r *http.Request, p domain.Principal) (store.ExpertQuestion, error) {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return store.ExpertQuestion{}, err
	}
	q, err := a.Store.GetExpertQuestion(r.Context(), tenant, id)
	if err != nil {
		return store.ExpertQuestion{}, err
	}
	sees := false
	if p.Can(domain.PermAssignOthers) {
		c, err := a.Store.GetConversation(r.Context(), tenant, q.ConversationID)
		if err != nil {
			return store.ExpertQuestion{}, err
		}
		sees = c.VisibleTo(p)
	}
	if !domain.SeesExpertQuestion(p, q.Ref(), sees) {
		return store.ExpertQuestion{}, domain.ErrNotFound
	}
	return q, nil
}

func (a *API) getExpertQuestion(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	q, err := a.readableQuestion(r, p)
	if err != nil {
		return err
	}
	v, err := a.withExcerpt(r, q)
	if err != nil {
		return err
	}
	return ok(w, v)
}

// ExpertAnswerRequest is the body of POST /v1/expert-questions/{id}/answer.
type ExpertAnswerRequest struct {
	Text string `json:"text"`
}

// answerExpertQuestion records the expert's answer, once, audited on the
// question's conversation (expert_answer).
func (a *API) answerExpertQuestion(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in ExpertAnswerRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkText("text", in.Text, true, domain.MaxExpertAnswer); err != nil {
		return err
	}
	_, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	q, err := a.Store.AnswerExpertQuestion(r.Context(), p, id, in.Text, a.Clock.Now())
	if err != nil {
		return err
	}
	v, err := a.withExcerpt(r, q)
	if err != nil {
		return err
	}
	return ok(w, v)
}

// downloadExpertAttachment serves a file of a message shared with a
// question, to its expert and its asker only, for a week from the
// question (410 Gone after).
func (a *API) downloadExpertAttachment(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	message, err := pathID(r, "message_id")
	if err != nil {
		return err
	}
	raw := r.PathValue("index")
	index, err := strconv.Atoi(raw)
	if err != nil || index < 0 || strconv.Itoa(index) != raw {
		return domain.ErrNotFound
	}
	q, err := a.Store.GetExpertQuestion(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	if p.UserID == "" || (p.UserID != q.AskerID.String() && p.UserID != q.ExpertID.String()) {
		return domain.ErrNotFound
	}
	atts, err := a.Store.ExcerptAttachments(r.Context(), q.ID, message)
	if err != nil {
		return err
	}
	if index >= len(atts) || atts[index].BlobKey == "" {
		return domain.ErrNotFound
	}
	if expires := q.CreatedAt.Add(domain.ExpertLinkValidity); !a.Clock.Now().Before(expires) {
		return httpx.NewProblem(http.StatusGone, "the link expired at "+expires.UTC().Format(time.RFC3339)+": an excerpt's files are shared for a week")
	}
	return a.serveAttachment(w, r, atts[index], "expert_question", q.ID, "message", message, "index", index)
}
