package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// AssignLease is how long an agent's Redis lease on a conversation lasts
// while the assignment is written.
const AssignLease = 10 * time.Second

func (a *API) registerConversations(r Router) {
	a.handle(r, "GET /v1/conversations", a.listConversations)
	a.handle(r, "POST /v1/conversations/mark-read", a.markAllRead)
	a.handle(r, "GET /v1/conversations/{id}", a.getConversation)
	a.handle(r, "PATCH /v1/conversations/{id}", a.updateConversation)
	a.handle(r, "GET /v1/conversations/{id}/messages", a.listMessages)
	a.handle(r, "GET /v1/conversations/{id}/audit", a.audit)
	a.handle(r, "POST /v1/conversations/{id}/assign", a.assignSelf)
	a.handle(r, "PUT /v1/conversations/{id}/assignees", a.assignUsers)
	a.handle(r, "POST /v1/conversations/{id}/reply", a.reply)
	a.handle(r, "POST /v1/conversations/{id}/archive", a.archive)
	a.handle(r, "POST /v1/conversations/{id}/route", a.route)
	a.handle(r, "POST /v1/conversations/{id}/transfer", a.transfer)
	a.handle(r, "POST /v1/conversations/{id}/release", a.release)
	a.handle(r, "POST /v1/conversations/{id}/complete", a.complete)
	a.handle(r, "POST /v1/conversations/{id}/resume", a.resume)
	a.handle(r, "POST /v1/conversations/{id}/defer", a.deferConversation)
	a.handle(r, "POST /v1/conversations/{id}/bot", a.botControl)
	a.handle(r, "PATCH /v1/messages/{id}", a.updateMessage)
}

// filter reads the list filters from the query string.
func filter(r *http.Request) (store.Filter, error) {
	q := r.URL.Query()
	var f store.Filter
	for name, values := range q {
		for _, v := range values {
			if strings.ContainsRune(v, 0) {
				return f, domain.Invalid(name, "must not contain the NUL character")
			}
		}
	}
	if tab := q.Get("tab"); tab != "" {
		states, ok := domain.TabStates(domain.Tab(tab))
		if !ok {
			return f, domain.Invalid("tab", "must be received, in_progress, answered, deferred, help_requested or done")
		}
		f.States = states
	}
	if s := q.Get("state"); s != "" {
		if !domain.State(s).Valid() {
			return f, domain.Invalid("state", "is not a conversation state")
		}
		f.States = []domain.State{domain.State(s)}
	}
	if ch := q.Get("channel"); ch != "" {
		if ch != events.ChannelChat && ch != events.ChannelEmail && ch != events.ChannelSMS {
			return f, domain.Invalid("channel", "must be chat, email or sms")
		}
		f.Channel = ch
	}
	uuidParam := func(name string) (*uuid.UUID, error) {
		s := q.Get(name)
		if s == "" {
			return nil, nil
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, domain.Invalid(name, "must be an id")
		}
		return &id, nil
	}
	var err error
	if f.ChannelAccount, err = uuidParam("channel_account_id"); err != nil {
		return f, err
	}
	if q.Get("queue_id") == "none" {
		f.NoQueue = true
	} else if f.Queue, err = uuidParam("queue_id"); err != nil {
		return f, err
	}
	if f.Assignee, err = uuidParam("assignee_id"); err != nil {
		return f, err
	}
	if tag := q.Get("tag"); tag != "" {
		list, value, found := strings.Cut(tag, ":")
		if _, err := uuid.Parse(list); err != nil || !found || value == "" {
			return f, domain.Invalid("tag", "must be <tag list id>:<value>")
		}
		f.TagList, f.TagValue = list, value
	}
	if l := q.Get("language"); l != "" {
		if len(l) != 2 {
			return f, domain.Invalid("language", "must be an ISO 639-1 code")
		}
		f.Language = l
	}
	boolParam := func(name string) (*bool, error) {
		s := q.Get(name)
		if s == "" {
			return nil, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, domain.Invalid(name, "must be true or false")
		}
		return &b, nil
	}
	if f.Flagged, err = boolParam("flagged"); err != nil {
		return f, err
	}
	if f.Unread, err = boolParam("unread"); err != nil {
		return f, err
	}
	if lw := q.Get("last_writer"); lw != "" {
		if lw != "customer" && lw != "agent" {
			return f, domain.Invalid("last_writer", "must be customer or agent")
		}
		f.LastWriter = lw
	}
	timeParam := func(name string) (*time.Time, error) {
		s := q.Get(name)
		if s == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, domain.Invalid(name, "must be an RFC 3339 time")
		}
		return &t, nil
	}
	if f.From, err = timeParam("from"); err != nil {
		return f, err
	}
	if f.To, err = timeParam("to"); err != nil {
		return f, err
	}
	if s := strings.TrimSpace(q.Get("q")); s != "" {
		if len(s) > 200 {
			return f, domain.Invalid("q", "must be at most 200 bytes")
		}
		f.Query = s
	}
	return f, nil
}

func (a *API) listConversations(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	f, err := filter(r)
	if err != nil {
		return err
	}
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.Store.ListConversations(r.Context(), p, f, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, func(c store.Conversation) store.Position { return store.Position{At: c.StartedAt, ID: c.ID} }))
}

// MarkReadResult says how many conversations were marked read.
type MarkReadResult struct {
	Updated int64 `json:"updated"`
}

// markAllRead marks read the conversations the query string's filters
// select, like the list would show them.
func (a *API) markAllRead(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	// The filters are the query string's, like the list's; a body is a
	// mistake, refused rather than ignored.
	if err := noBody(r); err != nil {
		return err
	}
	f, err := filter(r)
	if err != nil {
		return err
	}
	n, err := a.Store.MarkRead(r.Context(), p, f, a.Clock.Now())
	if err != nil {
		return err
	}
	return ok(w, MarkReadResult{Updated: n})
}

// visible loads a conversation the principal may see.
func (a *API) visible(ctx context.Context, p domain.Principal, r *http.Request) (store.Conversation, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return store.Conversation{}, err
	}
	tenant, err := uuid.Parse(p.Tenant)
	if err != nil {
		return store.Conversation{}, domain.ErrNotFound
	}
	c, err := a.Store.GetConversation(ctx, tenant, id)
	if err != nil {
		return store.Conversation{}, err
	}
	if !c.VisibleTo(p) {
		return store.Conversation{}, domain.ErrNotFound
	}
	return c, nil
}

func (a *API) getConversation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	return ok(w, c)
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.Store.ListMessages(r.Context(), c.ID, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, func(m store.Message) store.Position { return store.Position{At: m.ReceivedAt, ID: m.ID} }))
}

func (a *API) audit(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	entries, err := a.Store.Audit(r.Context(), c.ID)
	if err != nil {
		return err
	}
	if entries == nil {
		entries = []store.AuditEntry{}
	}
	return ok(w, List[store.AuditEntry]{Items: entries})
}

// act runs an action on the conversation of the path and answers with it.
func (a *API) act(w http.ResponseWriter, r *http.Request, p domain.Principal, fn func(tx pgx.Tx, c *store.Conversation) (store.Change, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := a.Store.Act(r.Context(), p, id, a.Clock.Now(), fn)
	if err != nil {
		return err
	}
	return ok(w, c)
}

// leased runs fn holding the Redis assignment lease of the conversation,
// and passes its fencing token on.
func (a *API) leased(ctx context.Context, p domain.Principal, r *http.Request, fn func(token int64) error) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	// Only those who may see the conversation take its lease: anyone else
	// would block a legitimate assignment, and learn that it exists.
	if _, err := a.visible(ctx, p, r); err != nil {
		return err
	}
	lease, err := a.Locker.Acquire(ctx, "conversation:"+id.String(), p.ActorID(), AssignLease)
	if errors.Is(err, redis.ErrHeld) {
		return &domain.ConflictError{State: "assigned", Reason: "someone else is taking this conversation right now"}
	}
	if err != nil {
		return fmt.Errorf("assignment lease: %w", err)
	}
	defer func() {
		// The lease ends on its own; releasing early lets the next one in.
		_ = a.Locker.Release(context.WithoutCancel(ctx), lease)
	}()
	return fn(lease.Token)
}

func (a *API) assignSelf(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	user, err := uuid.Parse(p.UserID)
	if err != nil {
		return fmt.Errorf("%w: only a user can be assigned; use PUT /v1/conversations/{id}/assignees", domain.ErrForbidden)
	}
	return a.leased(r.Context(), p, r, func(token int64) error {
		return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
			if err := domain.AssignSelf(p, c.Domain()); err != nil {
				return store.Change{}, err
			}
			if err := store.Assign(c, user, token); err != nil {
				return store.Change{}, err
			}
			return store.Change{Action: domain.ActionAssign}, nil
		})
	})
}

// AssigneesRequest is the body of PUT /v1/conversations/{id}/assignees.
type AssigneesRequest struct {
	UserIDs []string `json:"user_ids"`
}

func (a *API) assignUsers(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in AssigneesRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.UserIDs) == 0 || len(in.UserIDs) > 20 {
		return domain.Invalid("user_ids", "must name 1 to 20 users")
	}
	users := make([]uuid.UUID, 0, len(in.UserIDs))
	for i, s := range in.UserIDs {
		u, err := uuid.Parse(s)
		if err != nil {
			return domain.Invalid(fmt.Sprintf("user_ids[%d]", i), "must be a user id")
		}
		if !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	tenant, _ := uuid.Parse(p.Tenant)
	return a.leased(r.Context(), p, r, func(token int64) error {
		return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
			if err := domain.AssignUsers(p, c.Domain(), in.UserIDs); err != nil {
				return store.Change{}, err
			}
			for i, u := range users {
				if err := store.UserInTenant(r.Context(), tx, tenant, u); err != nil {
					return store.Change{}, domain.Invalid(fmt.Sprintf("user_ids[%d]", i), "is not a user of this tenant")
				}
			}
			if err := store.Assign(c, users[0], token); err != nil {
				return store.Change{}, err
			}
			c.Assignees = users
			return store.Change{Action: domain.ActionAssignUsers, Data: map[string]any{"user_ids": in.UserIDs}}, nil
		})
	})
}

// ReplyRequest is the body of POST /v1/conversations/{id}/reply.
type ReplyRequest struct {
	// Text is required unless TemplateID is given. With both, Text is the
	// agent's edited version of the template (POST
	// /v1/conversations/{id}/templates/{template_id}/render), sent as it
	// is; the template adds its subject (when Subject is empty) and its
	// files (email).
	Text string `json:"text"`
	// TemplateID sends a template: without Text, its body for the
	// conversation's channel, variables filled (email: subject, text,
	// HTML and files).
	TemplateID string   `json:"template_id,omitempty"`
	Subject    string   `json:"subject,omitempty"`
	CC         []string `json:"cc,omitempty"`
	// Attachments are ids of uploads (POST /v1/attachments) of the
	// tenant; email only.
	Attachments []string `json:"attachments,omitempty"`
	// ReplyTo is where the customer's answer goes: "mailbox" (the
	// default) or "agent", the replying user's own address; email only.
	ReplyTo string `json:"reply_to,omitempty"`
	// Translate sends the reply translated into the customer's language
	// (the conversation's); TranslateTo into the language named. The
	// original is kept beside the translation (ADR 20).
	Translate   bool   `json:"translate,omitempty"`
	TranslateTo string `json:"translate_to,omitempty"`
	// Fallback "original" sends the reply as written when the translator
	// fails; absent, the reply is refused (503).
	Fallback string `json:"fallback,omitempty"`
}

// Values of ReplyRequest.ReplyTo.
const (
	ReplyToMailbox = "mailbox"
	ReplyToAgent   = "agent"
)

func (a *API) reply(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in ReplyRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	d, err := checkReply(p, in)
	if err != nil {
		return err
	}
	if err := a.checkReplyTranslation(in); err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := a.translateReply(r.Context(), p, r, &d); err != nil {
		return err
	}
	var sent *store.Message
	c, err := a.Store.Act(r.Context(), p, id, a.Clock.Now(), func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		change, err := a.sendReply(r.Context(), tx, p, c, d)
		sent = change.Message
		return change, err
	})
	if err != nil {
		return err
	}
	return ok(w, replyResult{Conversation: c, Message: sent})
}

// replyDraft is a reply whose body was checked, ready to send.
type replyDraft struct {
	in       ReplyRequest
	uploads  []uuid.UUID
	template *uuid.UUID
	// translation is the reply's translation, made before the
	// transaction (translateReply): in.Text is then the translation.
	translation *store.Translation
}

// checkReply checks the body of a reply (POST /v1/conversations/{id}/reply,
// or the reply of "send and ask for help") before any transaction; its
// errors name the reply's own fields.
func checkReply(p domain.Principal, in ReplyRequest) (replyDraft, error) {
	var template *uuid.UUID
	if in.TemplateID != "" {
		id, err := uuid.Parse(in.TemplateID)
		if err != nil {
			return replyDraft{}, domain.Invalid("template_id", "must be a template id")
		}
		template = &id
	}
	if err := checkText("text", in.Text, template == nil, events.MaxTextBytes); err != nil {
		return replyDraft{}, err
	}
	if template != nil && in.Text == "" && (in.Translate || in.TranslateTo != "") {
		return replyDraft{}, domain.Invalid("translate", "translates the reply's own text: render the template first (POST /v1/conversations/{id}/templates/{template_id}/render) and send its text")
	}
	if len(in.Subject) > 998 || strings.ContainsAny(in.Subject, "\r\n\x00") {
		return replyDraft{}, domain.Invalid("subject", "must be one line of at most 998 bytes")
	}
	if len(in.CC) > 20 {
		return replyDraft{}, domain.Invalid("cc", "must list at most 20 addresses")
	}
	for i, addr := range in.CC {
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr {
			return replyDraft{}, domain.Invalid(fmt.Sprintf("cc[%d]", i), "must be a plain email address")
		}
	}
	uploads, err := uploadIDs(in.Attachments)
	if err != nil {
		return replyDraft{}, err
	}
	switch in.ReplyTo {
	case "", ReplyToMailbox:
	case ReplyToAgent:
		if p.UserID == "" {
			return replyDraft{}, domain.Invalid("reply_to", "agent needs a user: an API token has no address of its own; use mailbox")
		}
	default:
		return replyDraft{}, domain.Invalid("reply_to", "must be mailbox or agent")
	}
	return replyDraft{in: in, uploads: uploads, template: template}, nil
}

// sendReply sends the checked reply d on c, in tx: what depends on the
// conversation is checked, and store.Reply stores and sends it.
func (a *API) sendReply(ctx context.Context, tx pgx.Tx, p domain.Principal, c *store.Conversation, d replyDraft) (store.Change, error) {
	in := d.in
	if c.Channel != events.ChannelEmail && len(in.CC) > 0 {
		return store.Change{}, domain.Invalid("cc", "applies to email conversations only")
	}
	if c.Channel != events.ChannelEmail && in.Subject != "" {
		return store.Change{}, domain.Invalid("subject", "applies to email conversations only")
	}
	// Chat and SMS connectors send text only: refusing beats dropping
	// the files silently.
	if c.Channel != events.ChannelEmail && len(d.uploads) > 0 {
		return store.Change{}, domain.Invalid("attachments", "applies to email conversations only")
	}
	if c.Channel != events.ChannelEmail && in.ReplyTo != "" {
		return store.Change{}, domain.Invalid("reply_to", "applies to email conversations only")
	}
	found, err := store.Uploads(ctx, tx, c.Tenant, d.uploads)
	if err != nil {
		return store.Change{}, err
	}
	var atts []events.Attachment
	for i, id := range d.uploads {
		u, ok := found[id]
		if !ok {
			return store.Change{}, domain.Invalid(fmt.Sprintf("attachments[%d]", i), "is not an upload of this tenant")
		}
		atts = append(atts, events.Attachment{Name: u.Name, ContentType: u.ContentType, Size: u.Size, BlobKey: u.BlobKey})
	}
	text, subject, body := in.Text, in.Subject, ""
	if d.template != nil {
		t, err := replyTemplate(ctx, tx, p, c, *d.template)
		if err != nil {
			return store.Change{}, err
		}
		if text == "" {
			text, body = t.Text, t.HTML
		}
		if subject == "" {
			subject = t.Subject
		}
		if len(t.Attachments)+len(atts) > MaxReplyAttachments {
			return store.Change{}, domain.Invalid("attachments", fmt.Sprintf("with the template's %d files, the reply would carry %d, more than %d",
				len(t.Attachments), len(t.Attachments)+len(atts), MaxReplyAttachments))
		}
		tatts := make([]events.Attachment, 0, len(t.Attachments)+len(atts))
		for _, f := range t.Attachments {
			tatts = append(tatts, f.Event())
		}
		atts = append(tatts, atts...)
	}
	return a.Store.Reply(ctx, tx, p, c, store.ReplyInput{Text: text, HTML: body, Subject: subject, CC: in.CC,
		Attachments: atts, ReplyToAgent: in.ReplyTo == ReplyToAgent, Translation: d.translation}, a.Clock.Now())
}

// uploadIDs reads the attachments of a reply or a template: at most
// MaxReplyAttachments ([002] "jusqu'à 3 pièces jointes") distinct upload
// ids. Inbound mail keeps its own limit (events.MaxAttachments).
func uploadIDs(in []string) ([]uuid.UUID, error) {
	if len(in) > MaxReplyAttachments {
		return nil, domain.Invalid("attachments", fmt.Sprintf("must list at most %d files, %d given", MaxReplyAttachments, len(in)))
	}
	ids := make([]uuid.UUID, 0, len(in))
	for i, s := range in {
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, domain.Invalid(fmt.Sprintf("attachments[%d]", i), "must be the id of an upload (POST /v1/attachments)")
		}
		if slices.Contains(ids, id) {
			return nil, domain.Invalid(fmt.Sprintf("attachments[%d]", i), "is listed twice")
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ReasonRequest is the body of actions that only take a reason.
type ReasonRequest struct {
	Reason string `json:"reason,omitempty"`
}

func reason(r *http.Request) (string, error) {
	var in ReasonRequest
	if r.ContentLength == 0 { // -1, unknown, is read
		return "", nil
	}
	if err := decode(r, &in); err != nil {
		return "", err
	}
	if len(in.Reason) > 2000 {
		return "", domain.Invalid("reason", "must be at most 2000 bytes")
	}
	return in.Reason, nil
}

// noBody refuses a body on an action that takes none.
func noBody(r *http.Request) error {
	if r.ContentLength != 0 { // -1, unknown, is read
		var in struct{}
		return decode(r, &in)
	}
	return nil
}

func (a *API) archive(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	why, err := reason(r)
	if err != nil {
		return err
	}
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.Archive(p, c.Domain()); err != nil {
			return store.Change{}, err
		}
		c.PreviousState, c.State = c.State, domain.StateDone
		c.Assignees = []uuid.UUID{}
		c.Disposition = "archived"
		return store.Change{Action: domain.ActionArchive, Reason: why}, nil
	})
}

// RouteRequest is the body of POST /v1/conversations/{id}/route.
type RouteRequest struct {
	QueueID string `json:"queue_id"`
}

func (a *API) route(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in RouteRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	queue, err := uuid.Parse(in.QueueID)
	if err != nil {
		return domain.Invalid("queue_id", "must be a queue id")
	}
	tenant, _ := uuid.Parse(p.Tenant)
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.Route(c.Domain()); err != nil {
			return store.Change{}, err
		}
		if err := store.QueueInTenant(r.Context(), tx, tenant, queue); err != nil {
			return store.Change{}, domain.Invalid("queue_id", "is not a queue of this tenant")
		}
		c.QueueID = &queue
		// Routed to a team the agent is not in: it leaves their hands.
		if c.State == domain.StateAssigned && !p.Can(domain.PermSeeAll) && !slices.Contains(p.Queues, queue.String()) {
			c.PreviousState, c.State = c.State, domain.StateNew
			c.Assignees = []uuid.UUID{}
		}
		return store.Change{Action: domain.ActionRoute, Data: map[string]string{"queue_id": queue.String()}}, nil
	})
}

// TransferRequest is the body of POST /v1/conversations/{id}/transfer:
// exactly one of user_id, queue_id, skill_id, language.
type TransferRequest struct {
	UserID      string `json:"user_id,omitempty"`
	QueueID     string `json:"queue_id,omitempty"`
	SkillID     string `json:"skill_id,omitempty"`
	Language    string `json:"language,omitempty"`
	Comment     string `json:"comment,omitempty"`
	BypassQueue bool   `json:"bypass_queue,omitempty"`
}

func (a *API) transfer(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in TransferRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Comment) > 2000 {
		return domain.Invalid("comment", "must be at most 2000 bytes")
	}
	var ids [3]*uuid.UUID
	for i, f := range []struct{ name, value string }{{"user_id", in.UserID}, {"queue_id", in.QueueID}, {"skill_id", in.SkillID}} {
		if f.value == "" {
			continue
		}
		id, err := uuid.Parse(f.value)
		if err != nil {
			return domain.Invalid(f.name, "must be an id")
		}
		ids[i] = &id
	}
	if in.Language != "" && !a.Languages.Valid(in.Language) {
		return domain.Invalid("language", "must be an ISO 639-1 code")
	}
	tenant, _ := uuid.Parse(p.Tenant)
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		target := domain.TransferTarget{UserID: in.UserID, QueueID: in.QueueID, SkillID: in.SkillID, Language: in.Language}
		if err := domain.Transfer(p, c.Domain(), target, in.BypassQueue); err != nil {
			return store.Change{}, err
		}
		from := c.State
		c.Assignees = []uuid.UUID{}
		c.State = domain.StateNew
		switch {
		case ids[0] != nil:
			if err := store.UserInTenant(r.Context(), tx, tenant, *ids[0]); err != nil {
				return store.Change{}, domain.Invalid("user_id", "is not a user of this tenant")
			}
			c.State = domain.StateAssigned
			c.Assignees = []uuid.UUID{*ids[0]}
			c.LastAgentID = ids[0]
		case ids[1] != nil:
			if err := store.QueueInTenant(r.Context(), tx, tenant, *ids[1]); err != nil {
				return store.Change{}, domain.Invalid("queue_id", "is not a queue of this tenant")
			}
			c.QueueID = ids[1]
		case ids[2] != nil:
			if err := store.SkillInTenant(r.Context(), tx, tenant, *ids[2]); err != nil {
				return store.Change{}, domain.Invalid("skill_id", "is not a skill of this tenant")
			}
			c.RequiredSkillID = ids[2]
		default:
			c.RequiredLanguage = in.Language
		}
		if in.BypassQueue {
			c.Priority = 1
		}
		if from != c.State {
			c.PreviousState = from
		}
		return store.Change{Action: domain.ActionTransfer, Reason: in.Comment, Data: in}, nil
	})
}

// ReleaseRequest is the body of POST /v1/conversations/{id}/release.
type ReleaseRequest struct {
	// To is received (the default) or previous.
	To string `json:"to,omitempty"`
}

func (a *API) release(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in ReleaseRequest
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		next, err := domain.ReleaseTo(p, c.Domain(), domain.Release(in.To))
		if err != nil {
			return store.Change{}, err
		}
		c.PreviousState, c.State = c.State, next
		c.Assignees = []uuid.UUID{}
		return store.Change{Action: domain.ActionRelease, Data: map[string]string{"to": string(next)}}, nil
	})
}

// CompleteRequest is the body of POST /v1/conversations/{id}/complete.
type CompleteRequest struct {
	Disposition string `json:"disposition"`
	Notes       string `json:"notes,omitempty"`
	// SmartClose asks the customer whether they need anything else before
	// the conversation is done ([004]); it waits for their answer.
	SmartClose bool `json:"smart_close,omitempty"`
	// SmartCloseWait waits the tenant's first period for the customer to
	// write before asking (smart close only).
	SmartCloseWait bool `json:"smart_close_wait,omitempty"`
}

func (a *API) complete(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in CompleteRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Disposition) > 200 {
		return domain.Invalid("disposition", "must be at most 200 bytes")
	}
	if len(in.Notes) > 5000 {
		return domain.Invalid("notes", "must be at most 5000 bytes")
	}
	if in.SmartCloseWait && !in.SmartClose {
		return domain.Invalid("smart_close_wait", "applies with smart_close only")
	}
	now := a.Clock.Now()
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		next, err := domain.Complete(p, c.Domain(), strings.TrimSpace(in.Disposition), in.SmartClose)
		if err != nil {
			return store.Change{}, err
		}
		if in.SmartClose {
			if err := a.Store.SmartCloseAvailable(r.Context(), tx, c); err != nil {
				return store.Change{}, err
			}
		}
		c.PreviousState, c.State = c.State, next
		c.Assignees = []uuid.UUID{}
		c.Disposition, c.CompletionNotes = strings.TrimSpace(in.Disposition), in.Notes
		change := store.Change{Action: domain.ActionComplete, Reason: in.Notes,
			Data: map[string]any{"disposition": c.Disposition, "smart_close": in.SmartClose, "smart_close_wait": in.SmartCloseWait}}
		if in.SmartClose && !in.SmartCloseWait {
			// The question goes out now; the scheduler waits for the
			// answer. Its key is the closing entry's, as when the
			// scheduler asks after a wait: it is sent once either way.
			q, err := a.Store.SendAutomatic(r.Context(), tx, c, store.PurposeSmartCloseQuestion, nil, strconv.FormatInt(c.Version+1, 10), now)
			if err != nil {
				return store.Change{}, err
			}
			c.ClosingAskedAt = &now
			c.LastWriter = "agent"
			change.Records, change.Message = q.Records, q.Message
		}
		return change, nil
	})
}

func (a *API) resume(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	user, err := uuid.Parse(p.UserID)
	if err != nil {
		return fmt.Errorf("%w: only a user can resume a conversation", domain.ErrForbidden)
	}
	return a.leased(r.Context(), p, r, func(token int64) error {
		return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
			if err := domain.Resume(p, c.Domain()); err != nil {
				return store.Change{}, err
			}
			if err := store.Assign(c, user, token); err != nil {
				return store.Change{}, err
			}
			c.Disposition, c.CompletionNotes = "", ""
			return store.Change{Action: domain.ActionResume}, nil
		})
	})
}

// DeferRequest is the body of POST /v1/conversations/{id}/defer.
type DeferRequest struct {
	// Until is an RFC 3339 time; a string here, so that a bad one is
	// reported against this field.
	Until  string `json:"until"`
	Reason string `json:"reason,omitempty"`
}

func (a *API) deferConversation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in DeferRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Reason) > 2000 {
		return domain.Invalid("reason", "must be at most 2000 bytes")
	}
	until, err := time.Parse(time.RFC3339, in.Until)
	if err != nil {
		return domain.Invalid("until", "must be an RFC 3339 time, such as 2026-12-01T09:00:00Z")
	}
	until = until.UTC()
	now := a.Clock.Now()
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if err := domain.Defer(p, c.Domain(), until, now); err != nil {
			return store.Change{}, err
		}
		c.PreviousState, c.State = c.State, domain.StateDeferred
		c.DeferredUntil = &until
		c.Assignees = []uuid.UUID{}
		return store.Change{Action: domain.ActionDefer, Reason: in.Reason, Data: map[string]time.Time{"until": until}}, nil
	})
}

// BotRequest is the body of POST /v1/conversations/{id}/bot.
type BotRequest struct {
	// Action is block, unblock or run.
	Action string `json:"action"`
}

// botControl blocks, unblocks or runs the chat channel's bot on the
// conversation, by the rule of a reply (its assignee, or a supervisor).
// Blocking a blocked bot, or unblocking one that is not, answers the
// conversation as it is and sends nothing.
func (a *API) botControl(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in BotRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	switch in.Action {
	case domain.BotBlock, domain.BotUnblock, domain.BotRun:
	default:
		return domain.Invalid("action", "must be block, unblock or run")
	}
	now := a.Clock.Now()
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		return a.Store.BotControl(r.Context(), tx, p, c, in.Action, now)
	})
}

// ConversationUpdate is the body of PATCH /v1/conversations/{id}; absent
// fields stay as they are.
type ConversationUpdate struct {
	Flagged  *bool   `json:"flagged,omitempty"`
	Locked   *bool   `json:"locked,omitempty"`
	Ignored  *bool   `json:"ignored,omitempty"`
	Muted    *bool   `json:"muted,omitempty"`
	Unread   *bool   `json:"unread,omitempty"`
	Language *string `json:"language,omitempty"`
}

func (a *API) updateConversation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	var in ConversationUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == (ConversationUpdate{}) {
		return domain.Invalid("body", "names nothing to change")
	}
	if in.Language != nil && *in.Language != "" && !a.Languages.Valid(*in.Language) {
		return domain.Invalid("language", "must be an ISO 639-1 code")
	}
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		if in.Locked != nil && *in.Locked != c.Locked {
			if err := domain.Lock(p, c.Domain()); err != nil {
				return store.Change{}, err
			}
			c.Locked = *in.Locked
		}
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&c.Flagged, in.Flagged)
		set(&c.Ignored, in.Ignored)
		set(&c.Muted, in.Muted)
		set(&c.Unread, in.Unread)
		if in.Language != nil {
			c.Language = *in.Language
		}
		return store.Change{Action: domain.ActionUpdate, Data: in}, nil
	})
}

// MessageUpdate is the body of PATCH /v1/messages/{id}.
type MessageUpdate struct {
	// Language corrects the detected language ("" clears it).
	Language *string `json:"language,omitempty"`
	// Tags qualify the message: tag list id to one of its values. They
	// replace the message's tags and carry over to the next message.
	Tags map[string]string `json:"tags,omitempty"`
}

func (a *API) updateMessage(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in MessageUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Language == nil && in.Tags == nil {
		return domain.Invalid("body", "names nothing to change")
	}
	if in.Language != nil && *in.Language != "" && !a.Languages.Valid(*in.Language) {
		return domain.Invalid("language", "must be an ISO 639-1 code")
	}
	if len(in.Tags) > 50 {
		return domain.Invalid("tags", "must hold at most 50 tags")
	}
	tenant, err := uuid.Parse(p.Tenant)
	if err != nil {
		return domain.ErrNotFound
	}
	m, err := a.Store.GetMessage(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	c, err := a.Store.Act(r.Context(), p, m.ConversationID, a.Clock.Now(), func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		return a.Store.QualifyMessage(r.Context(), tx, c, m.ID, in.Language, in.Tags)
	})
	if err != nil {
		return err
	}
	return ok(w, c)
}
