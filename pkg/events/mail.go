package events

import (
	"fmt"
	"net/mail"
	"strings"
)

// TypeSendMail: the inbox asks the email connector to send a mail that is
// no message of a conversation: a notification to one of the tenant's
// users, or a conversation sent to an outside address by an admin. It
// travels on TopicOutbound(ChannelEmail), keyed by its ID.
const TypeSendMail = "sb.mail.send.v1"

// Purposes of a SendMail.
const (
	// MailNotification tells a user of something waiting for them; it
	// carries Auto-Submitted: auto-generated (RFC 3834).
	MailNotification = "notification"
	// MailTranscript is a conversation sent by email to an outsider.
	MailTranscript = "transcript"
)

// MaxMailRecipients bounds the To of a SendMail.
const MaxMailRecipients = 20

// SendMail is the data of TypeSendMail. It never goes to a conversation's
// customer and never joins a thread: the connector sends it once (its ID
// is the idempotency key) and reports no delivery status to the inbox.
type SendMail struct {
	// ID is unique per mail; sending the same ID twice sends one mail.
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	// MailboxID is the tenant's mailbox whose SMTP server and address
	// send it; empty means the operator's SMTP setting of the email
	// connector.
	MailboxID string `json:"mailbox_id,omitempty"`
	// Purpose is MailNotification or MailTranscript.
	Purpose string   `json:"purpose"`
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	// Text is the plain body; HTML, when set, is its alternative.
	Text string `json:"text"`
	HTML string `json:"html,omitempty"`
	// Attachments are files in the blob store (a transcript's PDF).
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Validate checks the payload; the error is a *FieldError.
func (m *SendMail) Validate() error {
	checks := []struct {
		ok            bool
		field, reason string
	}{
		{idOK(m.ID), "id", "is required, at most 256 bytes of valid UTF-8"},
		{m.TenantID != "", "tenant_id", "is required"},
		{m.Purpose == MailNotification || m.Purpose == MailTranscript, "purpose", fmt.Sprintf("must be %s or %s, got %q", MailNotification, MailTranscript, m.Purpose)},
		{len(m.To) > 0 && len(m.To) <= MaxMailRecipients, "to", fmt.Sprintf("must list 1 to %d addresses", MaxMailRecipients)},
		{strings.TrimSpace(m.Subject) != "" && len(m.Subject) <= MaxSubjectBytes && textOK(m.Subject) && !strings.ContainsAny(m.Subject, "\r\n"), "subject", "is required, one line of at most 1024 bytes"},
		{strings.TrimSpace(m.Text) != "" && len(m.Text) <= MaxTextBytes && textOK(m.Text), "text", "is required, at most 65536 bytes of valid UTF-8 without NUL"},
		{len(m.HTML) <= MaxHTMLBytes && textOK(m.HTML), "html", "must be at most 262144 bytes of valid UTF-8 without NUL"},
		{len(m.Attachments) <= MaxAttachments, "attachments", "must list at most 64 files"},
	}
	for _, c := range checks {
		if !c.ok {
			return &FieldError{Field: c.field, Reason: c.reason}
		}
	}
	for i, to := range m.To {
		if a, err := mail.ParseAddress(to); err != nil || a.Address != to {
			return &FieldError{Field: fmt.Sprintf("to[%d]", i), Reason: "must be a plain email address"}
		}
	}
	for i, a := range m.Attachments {
		if a.BlobKey == "" || len(a.BlobKey) > MaxBlobKeyBytes || a.Name == "" {
			return &FieldError{Field: fmt.Sprintf("attachments[%d]", i), Reason: "needs a name and a blob key"}
		}
	}
	return nil
}
