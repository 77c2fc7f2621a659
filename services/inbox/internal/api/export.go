package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/export"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Limits of POST /v1/conversations/{id}/send-by-email.
const (
	// MaxSendByEmailRecipients bounds its to.
	MaxSendByEmailRecipients = 5
	// MaxSendByEmailNoteBytes bounds its note.
	MaxSendByEmailNoteBytes = 2000
	// maxExportPDFBytes bounds the PDF kept in the blob store.
	maxExportPDFBytes = 256 << 20
)

func (a *API) registerExport(r Router) {
	a.handle(r, "GET /v1/conversations/{id}/export", a.exportConversation)
	a.handle(r, "POST /v1/conversations/{id}/send-by-email", a.sendByEmail)
	a.handle(r, "GET /v1/admin/settings/export", a.getExportSettings)
	a.handle(r, "PUT /v1/admin/settings/export", a.putExportSettings)
}

// exportNamespace is the blob store namespace of a tenant's exports.
func exportNamespace(tenant string) string { return tenant + "/exports" }

// exportConversation serves the conversation as a printable HTML page or
// a PDF, to whoever may see it: it shows nothing that GET .../messages
// does not.
func (a *API) exportConversation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	format, err := exportFormat(r)
	if err != nil {
		return err
	}
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	model, err := a.exportOf(r.Context(), c)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	contentType, disposition := "text/html; charset=utf-8", "inline"
	if format == "pdf" {
		contentType, disposition = "application/pdf", "attachment"
		err = export.PDF(&out, model)
	} else {
		err = export.HTML(&out, model, export.HTMLOptions{Images: true})
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", disposition+`; filename="`+model.FileName(format)+`"`)
	h.Set("Content-Length", strconv.Itoa(out.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-store")
	// The page is the tenant's data on the API's origin: nothing in it
	// may run or load anything, whatever a message holds.
	h.Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox")
	w.WriteHeader(http.StatusOK)
	if _, err := out.WriteTo(w); err != nil {
		a.Log.ErrorContext(r.Context(), "export write failed", "conversation", c.ID, "format", format, "error", err)
	}
	return nil
}

// exportFormat reads the query string: format, html (the default) or
// pdf, and nothing else.
func exportFormat(r *http.Request) (string, error) {
	q := r.URL.Query()
	for k := range q {
		if k != "format" {
			return "", domain.Invalid(k, "is not a known parameter; only format is")
		}
	}
	switch f := q["format"]; {
	case len(f) == 0:
		return "html", nil
	case len(f) > 1:
		return "", domain.Invalid("format", "must be given once")
	case f[0] == "html" || f[0] == "pdf":
		return f[0], nil
	}
	return "", domain.Invalid("format", "must be html or pdf")
}

// exportOf builds the export model of a conversation the caller may see:
// its last messages read as GET .../messages reads them, names for ids,
// and the images to show, from the blob store.
func (a *API) exportOf(ctx context.Context, c store.Conversation) (export.Conversation, error) {
	msgs, total, err := a.Store.LastMessages(ctx, c.ID, export.MaxMessages)
	if err != nil {
		return export.Conversation{}, err
	}
	subject, err := a.Store.ConversationSubject(ctx, c.ID)
	if err != nil {
		return export.Conversation{}, err
	}
	ids := append([]uuid.UUID{}, c.Assignees...)
	for _, m := range msgs {
		if id, err := uuid.Parse(m.AuthorID); err == nil {
			ids = append(ids, id)
		}
	}
	names, err := a.Store.ActorNames(ctx, c.Tenant, ids)
	if err != nil {
		return export.Conversation{}, err
	}
	queue := ""
	if c.QueueID != nil {
		q, err := a.Store.GetQueue(ctx, c.Tenant, *c.QueueID)
		switch {
		case err == nil:
			queue = q.Name
		case !errors.Is(err, store.ErrNotFound):
			return export.Conversation{}, err
		}
	}
	out := export.Conversation{ID: c.ID.String(), Subject: subject, Channel: c.Channel, State: string(c.State), Queue: queue,
		Contact: c.ContactName, Unread: c.Unread, StartedAt: c.StartedAt, Total: total, GeneratedAt: a.Clock.Now()}
	for _, id := range c.Assignees {
		out.Assignees = append(out.Assignees, nameOr(names[id], "a removed user"))
	}
	budget := int64(export.MaxImagesBytes)
	for _, m := range msgs {
		em := export.Message{At: m.ReceivedAt, Direction: m.Direction, Subject: m.Subject, Text: m.Body, Anonymised: m.Anonymised}
		switch {
		case m.Direction == export.Inbound:
			em.Author, em.Role, em.Status = nameOr(c.ContactName, m.Sender), "Customer", "received"
			if m.Automatic {
				em.Status = "received, sent by a machine"
			}
		case m.AuthorKind == store.AuthorBot:
			em.Author, em.Role = m.AuthorName, "Bot"
		case m.AuthorID != "":
			id, _ := uuid.Parse(m.AuthorID)
			em.Author, em.Role = nameOr(names[id], "a removed user"), "Agent"
		default:
			em.Role = "Automatic message"
		}
		if m.DeliveryStatus != "" {
			em.Status = m.DeliveryStatus
			if m.DeliveryError != "" {
				em.Status += ": " + m.DeliveryError
			}
		}
		if !m.Anonymised {
			for _, att := range m.Attachments {
				em.Attachments = append(em.Attachments, a.exportAttachment(ctx, m.ID, att, &budget))
			}
		}
		out.Messages = append(out.Messages, em)
	}
	return out, nil
}

func nameOr(name, otherwise string) string {
	if strings.TrimSpace(name) == "" {
		return otherwise
	}
	return name
}

// exportAttachment is a file of a message as an export shows it: a
// PNG, JPEG or GIF within the bounds (and what is left of budget) with
// its image, anything else as a file.
func (a *API) exportAttachment(ctx context.Context, message uuid.UUID, att store.Attachment, budget *int64) export.Attachment {
	out := export.Attachment{Name: fileName(att.Name), ContentType: att.ContentType, Size: att.Size}
	switch {
	case att.Skipped != "":
		out.Note = "not kept: " + att.Skipped
		return out
	case !export.ImageType(att.ContentType) || att.BlobKey == "":
		return out
	case att.Size > export.MaxImageBytes || att.Size > *budget:
		out.Note = "too large to show"
		return out
	}
	content, err := a.Blobs.Open(ctx, att.BlobKey)
	if err != nil {
		a.Log.ErrorContext(ctx, "export: attachment content unreadable", "message", message, "key", att.BlobKey, "error", err)
		out.Note = "content missing"
		return out
	}
	defer content.Close()
	data, err := io.ReadAll(io.LimitReader(content, export.MaxImageBytes+1))
	if err != nil {
		a.Log.ErrorContext(ctx, "export: attachment content unreadable", "message", message, "key", att.BlobKey, "error", err)
		out.Note = "content missing"
		return out
	}
	img, err := export.NewImage(data)
	if err != nil {
		out.Note = "not shown: " + err.Error()
		return out
	}
	*budget -= int64(len(data))
	out.Image = img
	return out
}

// SendByEmailRequest is the body of POST .../send-by-email. To is one
// address or a list of them.
type SendByEmailRequest struct {
	// To is a plain address or a list of 1 to 5 (see recipients).
	To json.RawMessage `json:"to"`
	// Note is shown to the recipients above the conversation.
	Note string `json:"note"`
}

// recipients reads to: one plain address, or a list of 1 to 5.
func (b SendByEmailRequest) recipients() ([]string, error) {
	var list []string
	raw := bytes.TrimSpace(b.To)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return nil, domain.Invalid("to", "is required: an email address, or a list of 1 to 5")
	case raw[0] == '"':
		var one string
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, domain.Invalid("to", "must be an email address, or a list of 1 to 5")
		}
		list = []string{one}
	default:
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, domain.Invalid("to", "must be an email address, or a list of 1 to 5")
		}
	}
	if len(list) == 0 || len(list) > MaxSendByEmailRecipients {
		return nil, domain.Invalid("to", fmt.Sprintf("must list 1 to %d addresses", MaxSendByEmailRecipients))
	}
	seen := map[string]bool{}
	for i, to := range list {
		field := fmt.Sprintf("to[%d]", i)
		if len(raw) > 0 && raw[0] == '"' {
			field = "to"
		}
		if addr, err := mail.ParseAddress(to); err != nil || addr.Address != to || len(to) > 254 {
			return nil, domain.Invalid(field, "must be a plain email address (name@example.com)")
		}
		if seen[strings.ToLower(to)] {
			return nil, domain.Invalid(field, "is listed twice")
		}
		seen[strings.ToLower(to)] = true
	}
	return list, nil
}

func (b SendByEmailRequest) note() (string, error) {
	if err := checkText("note", b.Note, false, MaxSendByEmailNoteBytes); err != nil {
		return "", err
	}
	return strings.TrimSpace(b.Note), nil
}

// sendByEmail sends the conversation to outsiders ([000]): admins only
// (manage_data), when the tenant turned it on. The mail's HTML body is
// the printable page (its images as files: they are in the PDF), with a
// text part, and the PDF attached; the email connector sends it from the
// setting's mailbox. The SendMail event and the audit entry are written
// in one transaction; the audit keeps the recipients and the mail's id,
// nothing of the content.
func (a *API) sendByEmail(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageData)
	if err != nil {
		return err
	}
	var body SendByEmailRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	to, err := body.recipients()
	if err != nil {
		return err
	}
	note, err := body.note()
	if err != nil {
		return err
	}
	c, err := a.visible(r.Context(), p, r)
	if err != nil {
		return err
	}
	set, err := a.Store.GetExportSettings(r.Context(), tenant)
	if err != nil {
		return err
	}
	if err := sendable(set); err != nil {
		return err
	}
	model, err := a.exportOf(r.Context(), c)
	if err != nil {
		return err
	}
	mailID, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("mail id: %w", err)
	}
	m, err := a.transcript(r.Context(), p, tenant, model, to, note)
	if err != nil {
		return err
	}
	m.ID = mailID.String()
	return a.act(w, r, p, func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
		// The setting and its mailbox again, under lock: an admin may have
		// turned it off, or deleted the mailbox, meanwhile.
		set, err := store.ExportSettingsIn(r.Context(), tx, tenant)
		if err != nil {
			return store.Change{}, err
		}
		if err := sendable(set); err != nil {
			return store.Change{}, err
		}
		live, err := store.LiveMailbox(r.Context(), tx, tenant, *set.MailboxID)
		if err != nil {
			return store.Change{}, err
		}
		if !live {
			return store.Change{}, &httpx.Problem{Type: "about:blank", Title: "Conflict", Status: http.StatusConflict,
				Detail: "the mailbox that sends conversations by email was deleted: an admin chooses another with PUT /v1/admin/settings/export"}
		}
		m.MailboxID = set.MailboxID.String()
		if err := m.Validate(); err != nil {
			return store.Change{}, fmt.Errorf("send by email: the mail is invalid: %w", err)
		}
		ev, err := events.New(events.TypeSendMail, store.EventSource, tenant.String(), a.Clock.Now(), m)
		if err != nil {
			return store.Change{}, err
		}
		ev.Subject = c.ID.String()
		if err := store.RecordTranscript(r.Context(), tx, tenant, c.ID, mailID, m.Attachments[0].BlobKey, a.Clock.Now()); err != nil {
			return store.Change{}, err
		}
		return store.Change{Action: domain.ActionSendByEmail, Data: map[string]any{"to": to, "mail_id": m.ID},
			Records: []outbox.Record{{Topic: events.TopicOutbound(events.ChannelEmail), Key: []byte(m.ID), Event: ev}}}, nil
	})
}

// sendable refuses when the tenant has not turned sending by email on.
func sendable(set store.ExportSettings) error {
	if !set.SendByEmail || set.MailboxID == nil {
		return &httpx.Problem{Type: "about:blank", Title: "Conflict", Status: http.StatusConflict,
			Detail: "sending conversations by email is turned off for this tenant: an admin turns it on with PUT /v1/admin/settings/export"}
	}
	return nil
}

// transcript renders the mail (its MailboxID and ID left to the caller)
// and keeps its PDF in the blob store.
func (a *API) transcript(ctx context.Context, p domain.Principal, tenant uuid.UUID, model export.Conversation, to []string, note string) (events.SendMail, error) {
	sender := "An administrator"
	if id, err := uuid.Parse(p.ActorID()); err == nil {
		names, err := a.Store.ActorNames(ctx, tenant, []uuid.UUID{id})
		if err != nil {
			return events.SendMail{}, err
		}
		sender = nameOr(names[id], sender)
	}
	intro := sender + " sent you this conversation."
	if note != "" {
		intro += "\n\n" + note
	}
	var pdf bytes.Buffer
	if err := export.PDF(&pdf, model); err != nil {
		return events.SendMail{}, err
	}
	ref, err := a.Blobs.Put(ctx, exportNamespace(tenant.String()), bytes.NewReader(pdf.Bytes()), maxExportPDFBytes)
	if err != nil {
		return events.SendMail{}, fmt.Errorf("store the PDF of conversation %s: %w", model.ID, err)
	}
	var html bytes.Buffer
	if err := export.HTML(&html, model, export.HTMLOptions{Note: intro}); err != nil {
		return events.SendMail{}, err
	}
	text := export.Text(model, intro)
	if len(text) > events.MaxTextBytes {
		// Too long for a mail's text part: the PDF holds it all.
		short := model
		short.Messages = nil
		text = export.Text(short, intro) + fmt.Sprintf("\nThe %d messages are in the attached PDF.\n", len(model.Messages))
	}
	m := events.SendMail{TenantID: tenant.String(), Purpose: events.MailTranscript, To: to,
		Subject: mailSubject(model.Title()), Text: text,
		Attachments: []events.Attachment{{Name: model.FileName("pdf"), ContentType: "application/pdf", Size: ref.Size, BlobKey: ref.Key}}}
	if html.Len() <= events.MaxHTMLBytes {
		m.HTML = html.String()
	}
	return m, nil
}

// mailSubject is the mail's subject: one line, at most 200 characters.
func mailSubject(title string) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(title, "")), " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:199]) + "…"
	}
	if s == "" {
		s = "a conversation"
	}
	return "Conversation: " + s
}

// ExportSettingsRequest is the body of PUT /v1/admin/settings/export.
type ExportSettingsRequest struct {
	// SendByEmail is required: absent is not false.
	SendByEmail *bool `json:"send_by_email"`
	// MailboxID is the mailbox's id, null or absent for none.
	MailboxID *string `json:"mailbox_id"`
}

func (a *API) getExportSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	set, err := a.Store.GetExportSettings(r.Context(), tenant)
	if err != nil {
		return err
	}
	return ok(w, set)
}

func (a *API) putExportSettings(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p, domain.PermManageSettings)
	if err != nil {
		return err
	}
	var body ExportSettingsRequest
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.SendByEmail == nil {
		return domain.Invalid("send_by_email", "is required: true or false")
	}
	set := store.ExportSettings{SendByEmail: *body.SendByEmail}
	if body.MailboxID != nil {
		id, err := uuid.Parse(*body.MailboxID)
		if err != nil {
			return domain.Invalid("mailbox_id", "must be the id of one of the tenant's mailboxes")
		}
		set.MailboxID = &id
	}
	out, err := inTx(r.Context(), a.Store, func(tx pgx.Tx) (store.ExportSettings, error) {
		return a.Store.PutExportSettings(r.Context(), tx, tenant, set, a.Clock.Now())
	})
	if err != nil {
		return err
	}
	return ok(w, out)
}
