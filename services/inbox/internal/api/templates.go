package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/microcosm-cc/bluemonday"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Templates are prepared answers ([002] "modèles de réponse"), of the
// whole tenant or of one queue, with a body per channel, variables filled
// for the conversation they answer, up to 3 files, and an optional keyword
// that agents type to expand them ([004] shortcuts). Admins
// (manage_settings) write them; agents use those of the tenant and of the
// queues they see.

func (a *API) registerTemplates(r Router) {
	a.handle(r, "GET /v1/admin/templates", a.listTemplates)
	a.handle(r, "POST /v1/admin/templates", a.createTemplate)
	a.handle(r, "GET /v1/admin/templates/{id}", a.getTemplate)
	a.handle(r, "PATCH /v1/admin/templates/{id}", a.updateTemplate)
	a.handle(r, "DELETE /v1/admin/templates/{id}", a.deleteTemplate)
	a.handle(r, "GET /v1/templates", a.usableTemplates)
	a.handle(r, "GET /v1/shortcuts", a.shortcuts)
	a.handle(r, "POST /v1/conversations/{id}/templates/{template_id}/render", a.renderTemplate)
}

// MaxReplyAttachments bounds the files of a reply, its template's
// included, and of a template ([002] "jusqu'à 3 pièces jointes").
const MaxReplyAttachments = store.MaxTemplateAttachments

// TemplateRequest is the body of POST /v1/admin/templates, which needs a
// name and bodies, and of PATCH /v1/admin/templates/{id}, where absent
// fields stay as they are. queue_id and keyword may be null (the whole
// tenant; no keyword). Bodies replace the template's; attachments are
// upload ids (POST /v1/attachments), or the ids of the template's own
// attachments to keep them.
type TemplateRequest struct {
	Name        *string               `json:"name"`
	QueueID     json.RawMessage       `json:"queue_id"`
	Keyword     json.RawMessage       `json:"keyword"`
	Bodies      *store.TemplateBodies `json:"bodies"`
	Attachments *[]string             `json:"attachments"`
}

// htmlPolicy is what a template's HTML body may hold: bluemonday's policy
// for user content, as the email connector applies to inbound mail; links
// go without a referrer.
func htmlPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.RequireNoReferrerOnLinks(true)
	return p
}

// apply changes spec with what in gives, checked; tx finds the uploads.
func (in TemplateRequest) apply(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec *store.TemplateSpec) error {
	if in.Name != nil {
		if err := store.CheckName("name", *in.Name); err != nil {
			return err
		}
		spec.Name = strings.TrimSpace(*in.Name)
	}
	given, queue, err := nullableID("queue_id", in.QueueID)
	if err != nil {
		return err
	}
	if given {
		spec.QueueID = queue
	}
	if given, k, err := nullable[string](in.Keyword); err != nil {
		return domain.Invalid("keyword", "must be a string, or null for none")
	} else if given {
		if k != nil && !domain.ValidKeyword(*k) {
			return domain.Invalid("keyword", "must be 1 to 32 lower-case letters, digits, - or _")
		}
		spec.Keyword = k
	}
	if in.Bodies != nil {
		b, err := checkBodies(*in.Bodies)
		if err != nil {
			return err
		}
		spec.Bodies = b
	}
	if in.Attachments != nil {
		ids, err := uploadIDs(*in.Attachments)
		if err != nil {
			return err
		}
		found, err := store.Uploads(ctx, tx, tenant, ids)
		if err != nil {
			return err
		}
		var out []store.TemplateAttachment
		for i, id := range ids {
			if j := slices.IndexFunc(spec.Attachments, func(a store.TemplateAttachment) bool { return a.ID == id }); j >= 0 {
				out = append(out, spec.Attachments[j])
				continue
			}
			u, ok := found[id]
			if !ok {
				return domain.Invalid(fmt.Sprintf("attachments[%d]", i), "is not an upload of this tenant nor an attachment of this template")
			}
			out = append(out, store.TemplateAttachment{ID: u.ID, Name: u.Name, ContentType: u.ContentType, Size: u.Size, BlobKey: u.BlobKey})
		}
		spec.Attachments = out
	}
	if spec.Attachments == nil {
		spec.Attachments = []store.TemplateAttachment{}
	}
	return nil
}

// checkBodies checks a template's bodies, at least one, and returns them
// with the email HTML sanitised.
func checkBodies(b store.TemplateBodies) (store.TemplateBodies, error) {
	if b.Chat == nil && b.SMS == nil && b.Email == nil {
		return b, domain.Invalid("bodies", "needs at least one of chat, sms and email")
	}
	for _, f := range []struct {
		name string
		body *store.TextBody
	}{{"bodies.chat.text", b.Chat}, {"bodies.sms.text", b.SMS}} {
		if f.body == nil {
			continue
		}
		if err := checkText(f.name, f.body.Text, true, events.MaxTextBytes); err != nil {
			return b, err
		}
		if err := domain.CheckReplyTemplate(f.name, f.body.Text); err != nil {
			return b, err
		}
	}
	if e := b.Email; e != nil {
		if len(e.Subject) > 998 || strings.ContainsAny(e.Subject, "\r\n\x00") {
			return b, domain.Invalid("bodies.email.subject", "must be one line of at most 998 bytes")
		}
		if err := checkText("bodies.email.text", e.Text, false, events.MaxTextBytes); err != nil {
			return b, err
		}
		if err := checkText("bodies.email.html", e.HTML, false, events.MaxHTMLBytes); err != nil {
			return b, err
		}
		clean := strings.TrimSpace(htmlPolicy().Sanitize(e.HTML))
		if strings.TrimSpace(e.Text) == "" && htmlText(clean) == "" {
			return b, domain.Invalid("bodies.email", "needs a text or an html body that says something")
		}
		b.Email = &store.EmailBody{Subject: e.Subject, Text: e.Text, HTML: clean}
		for _, f := range []struct{ name, value string }{
			{"bodies.email.subject", e.Subject}, {"bodies.email.text", e.Text}, {"bodies.email.html", clean},
		} {
			if err := domain.CheckReplyTemplate(f.name, f.value); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}

var (
	blockEnd   = regexp.MustCompile(`(?i)<br\s*/?>|</(p|div|li|h[1-6]|tr|blockquote)>`)
	blankLines = regexp.MustCompile(`\n{3,}`)
)

// htmlText is the plain text of sanitised HTML: tags dropped, line breaks
// at the ends of blocks, entities decoded; the plain alternative of an
// email whose template has only HTML.
func htmlText(h string) string {
	s := blockEnd.ReplaceAllString(h, "$0\n")
	s = html.UnescapeString(bluemonday.StrictPolicy().Sanitize(s))
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n"))
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return servePage(w, r, tenant, a.Store.ListTemplates, func(t store.Template) store.Position {
		return store.Position{At: t.CreatedAt, ID: t.ID}
	})
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	t, err := a.Store.GetTemplate(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, t)
}

func (a *API) createTemplate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in TemplateRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil {
		return domain.Invalid("name", "is required")
	}
	if in.Bodies == nil {
		return domain.Invalid("bodies", "is required: at least one of chat, sms and email")
	}
	t, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.Template, error) {
		var spec store.TemplateSpec
		if err := in.apply(r.Context(), tx, tenant, &spec); err != nil {
			return store.Template{}, err
		}
		return a.Store.CreateTemplate(r.Context(), tx, tenant, spec, p.ActorID(), a.settingsNow())
	})
	if err != nil {
		return err
	}
	return created(w, t)
}

func (a *API) updateTemplate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var in TemplateRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil && in.QueueID == nil && in.Keyword == nil && in.Bodies == nil && in.Attachments == nil {
		return domain.Invalid("body", "names nothing to change")
	}
	t, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.Template, error) {
		cur, err := store.LockTemplate(r.Context(), tx, tenant, id)
		if err != nil {
			return store.Template{}, err
		}
		spec := store.TemplateSpec{QueueID: cur.QueueID, Name: cur.Name, Keyword: cur.Keyword, Bodies: cur.Bodies, Attachments: cur.Attachments}
		if err := in.apply(r.Context(), tx, tenant, &spec); err != nil {
			return store.Template{}, err
		}
		return a.Store.UpdateTemplate(r.Context(), tx, tenant, id, spec, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return ok(w, t)
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	return removeInTx(w, r, a.Store, func(tx pgx.Tx) error {
		return a.Store.DeleteTemplate(r.Context(), tx, tenant, id)
	})
}

// scopeOf is the templates p may use: the tenant's and those of the
// queues p sees (all with see_all).
func scopeOf(p domain.Principal, tenant uuid.UUID) store.TemplateScope {
	sc := store.TemplateScope{Tenant: tenant, AllQueues: p.Can(domain.PermSeeAll), Queues: []uuid.UUID{}}
	for _, q := range p.Queues {
		if id, err := uuid.Parse(q); err == nil {
			sc.Queues = append(sc.Queues, id)
		}
	}
	return sc
}

// conversationScope narrows sc to what applies to the conversation named
// by the query's conversation_id, when there is one: the tenant's
// templates and its queue's, with a body for its channel.
func (a *API) conversationScope(ctx context.Context, r *http.Request, p domain.Principal, sc store.TemplateScope) (*store.Conversation, store.TemplateScope, error) {
	s := r.URL.Query().Get("conversation_id")
	if s == "" {
		return nil, sc, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return nil, sc, domain.Invalid("conversation_id", "must be a conversation id")
	}
	c, err := a.Store.GetConversation(ctx, sc.Tenant, id)
	if err == nil && !c.VisibleTo(p) {
		err = domain.ErrNotFound
	}
	if err != nil {
		return nil, sc, err
	}
	sc.AllQueues, sc.Queues, sc.Channel = false, []uuid.UUID{}, c.Channel
	if c.QueueID != nil {
		sc.Queues = []uuid.UUID{*c.QueueID}
	}
	return &c, sc, nil
}

func (a *API) usableTemplates(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p)
	if err != nil {
		return err
	}
	_, sc, err := a.conversationScope(r.Context(), r, p, scopeOf(p, tenant))
	if err != nil {
		return err
	}
	list := func(ctx context.Context, _ uuid.UUID, after *store.Position, limit int) ([]store.Template, error) {
		return a.Store.UsableTemplates(ctx, sc, after, limit)
	}
	return servePage(w, r, tenant, list, func(t store.Template) store.Position { return store.Position{At: t.CreatedAt, ID: t.ID} })
}

// Rendered is a template's body for a conversation's channel, its
// variables filled: what a reply by the template sends.
type Rendered struct {
	TemplateID uuid.UUID `json:"template_id"`
	Channel    string    `json:"channel"`
	Text       string    `json:"text"`
	// Subject and HTML are email's; HTML's variables are HTML-escaped.
	Subject string `json:"subject,omitempty"`
	HTML    string `json:"html,omitempty"`
	// Attachments go with an email; other channels send text only.
	Attachments []store.TemplateAttachment `json:"attachments"`
}

// render fills t's body for channel with vars. Every variable without a
// value is named in one *domain.MissingVariablesError.
func render(t store.Template, channel string, vars map[string]string) (Rendered, error) {
	out := Rendered{TemplateID: t.ID, Channel: channel, Attachments: []store.TemplateAttachment{}}
	var missing []string
	fill := func(text string, escape func(string) string) string {
		s, err := domain.RenderReply(text, vars, escape)
		var mv *domain.MissingVariablesError
		if errors.As(err, &mv) {
			for _, v := range mv.Variables {
				if !slices.Contains(missing, v) {
					missing = append(missing, v)
				}
			}
		}
		return s
	}
	switch {
	case channel == events.ChannelChat && t.Bodies.Chat != nil:
		out.Text = fill(t.Bodies.Chat.Text, nil)
	case channel == events.ChannelSMS && t.Bodies.SMS != nil:
		out.Text = fill(t.Bodies.SMS.Text, nil)
	case channel == events.ChannelEmail && t.Bodies.Email != nil:
		e := t.Bodies.Email
		out.Subject = strings.Join(strings.Fields(fill(e.Subject, nil)), " ")
		out.HTML = fill(e.HTML, html.EscapeString)
		out.Text = fill(e.Text, nil)
		if strings.TrimSpace(e.Text) == "" {
			out.Text = htmlText(out.HTML)
		}
		out.Attachments = t.Attachments
	default:
		return out, domain.Invalid("template_id", "has no body for the conversation's channel ("+channel+")")
	}
	if len(missing) > 0 {
		return out, &domain.MissingVariablesError{Variables: missing}
	}
	return out, nil
}

// usable reports whether t applies to c: the tenant's, or c's queue's.
func usable(t store.Template, c *store.Conversation) bool {
	return t.QueueID == nil || (c.QueueID != nil && *t.QueueID == *c.QueueID)
}

func (a *API) renderTemplate(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := noBody(r); err != nil {
		return err
	}
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	tid, err := pathID(r, "template_id")
	if err != nil {
		return err
	}
	t, err := a.Store.GetTemplate(r.Context(), c.Tenant, tid)
	if err != nil {
		return err
	}
	if !usable(t, &c) {
		return domain.ErrNotFound
	}
	vars, err := a.Store.ReplyVariables(r.Context(), &c, p.UserID)
	if err != nil {
		return err
	}
	out, err := render(t, c.Channel, vars)
	if err != nil {
		return err
	}
	return ok(w, out)
}

// Shortcut is a template whose keyword starts with what the agent typed.
type Shortcut struct {
	TemplateID uuid.UUID  `json:"template_id"`
	Keyword    string     `json:"keyword"`
	Name       string     `json:"name"`
	QueueID    *uuid.UUID `json:"queue_id"`
	// Expansion is the template rendered for the query's conversation;
	// nil without one, or when variables have no value (then named in
	// MissingVariables).
	Expansion        *Rendered `json:"expansion"`
	MissingVariables []string  `json:"missing_variables,omitempty"`
}

// shortcuts answers the templates whose keyword starts with prefix
// (case-insensitive), among those p may use, or, with conversation_id,
// those that apply to the conversation, each rendered for it: the exact
// match first, then by keyword, at most store.MaxShortcuts. One query for
// the templates, one for the variables.
func (a *API) shortcuts(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p)
	if err != nil {
		return err
	}
	prefix := strings.ToLower(r.URL.Query().Get("prefix"))
	if prefix != "" && !domain.ValidKeyword(prefix) {
		return domain.Invalid("prefix", "must be at most 32 letters, digits, - or _, as keywords are")
	}
	c, sc, err := a.conversationScope(r.Context(), r, p, scopeOf(p, tenant))
	if err != nil {
		return err
	}
	ts, err := a.Store.Shortcuts(r.Context(), sc, prefix)
	if err != nil {
		return err
	}
	var vars map[string]string
	if c != nil && len(ts) > 0 {
		if vars, err = a.Store.ReplyVariables(r.Context(), c, p.UserID); err != nil {
			return err
		}
	}
	out := make([]Shortcut, 0, len(ts))
	for _, t := range ts {
		s := Shortcut{TemplateID: t.ID, Keyword: *t.Keyword, Name: t.Name, QueueID: t.QueueID}
		if c != nil {
			e, err := render(t, c.Channel, vars)
			var mv *domain.MissingVariablesError
			if errors.As(err, &mv) {
				s.MissingVariables = mv.Variables
			} else if err == nil {
				s.Expansion = &e
			}
		}
		out = append(out, s)
	}
	return ok(w, List[Shortcut]{Items: out})
}

// replyTemplate resolves the template of a reply on c, in tx: the
// rendered body of c's channel. A template of another tenant, or of a
// queue other than c's, is refused as if it did not exist.
func replyTemplate(ctx context.Context, tx pgx.Tx, p domain.Principal, c *store.Conversation, id uuid.UUID) (Rendered, error) {
	t, err := store.TemplateIn(ctx, tx, c.Tenant, id)
	if err == nil && !usable(t, c) {
		err = store.ErrNotFound
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Rendered{}, domain.Invalid("template_id", "is not a template of this conversation's tenant or queue")
		}
		return Rendered{}, err
	}
	vars, err := store.ReplyVariables(ctx, tx, c, p.UserID)
	if err != nil {
		return Rendered{}, err
	}
	return render(t, c.Channel, vars)
}
