package smtpsend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// ErrNoSender is wrapped by MailHandler.Handle's error for a mail that
// names a mailbox the connector does not know (or one of another tenant,
// or deleted), or no mailbox while no operator SMTP is set: the caller
// sends it to the dead-letter topic, from where it can be replayed once
// the setting is fixed.
var ErrNoSender = errors.New("no SMTP server to send the mail from")

// mailLedgerPrefix starts the ledger ids of mails (events.SendMail), so
// that they never meet the message ids of replies in the shared ledger.
const mailLedgerPrefix = "mail:"

// OperatorSMTP is the operator's SMTP setting: what sends the mails that
// name no mailbox.
type OperatorSMTP struct {
	Server events.MailServer
	// From is the From of those mails.
	From *mail.Address
}

// ComposeMail builds mail m, sent from from, dated now.
//
// Headers: Date, From, To (every address of m.To), Subject (RFC 2047
// encoded when not ASCII), Message-ID (MessageID of m.ID and the domain of
// from) and X-Loop (LoopValue of from). A notification carries
// Auto-Submitted: auto-generated (RFC 3834 section 5: no person wrote it,
// and it answers nothing) and X-Auto-Response-Suppress: All, so that
// out-of-office replies do not answer it; a transcript, which an admin
// sends, carries neither.
//
// The body is multipart/alternative: m.Text as text/plain, then m.HTML as
// text/html when set. With attachments, the message is multipart/mixed of
// that alternative and each attachment, read through content, as Compose
// does.
func ComposeMail(m events.SendMail, from *mail.Address, now time.Time, content ContentFunc) (Outgoing, error) {
	if from == nil || !strings.Contains(from.Address, "@") {
		return Outgoing{}, fmt.Errorf("%w: mail %s has no From address", ErrCompose, m.ID)
	}
	if strings.TrimSpace(m.Text) == "" {
		return Outgoing{}, fmt.Errorf("%w: mail %s has no text", ErrCompose, m.ID)
	}
	to, err := parseRecipients("to", m.To)
	if err != nil {
		return Outgoing{}, err
	}
	if len(m.Attachments) > 0 && content == nil {
		return Outgoing{}, fmt.Errorf("%w: mail %s has attachments, and no blob store to read them from is configured", ErrCompose, m.ID)
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	msgID := MessageID(m.ID, domain)

	// Set from the bottom up: go-message writes the last set first.
	var h mail.Header
	if m.Purpose == events.MailNotification {
		h.Set("X-Auto-Response-Suppress", "All")
		h.Set("Auto-Submitted", "auto-generated")
	}
	h.Set(LoopHeader, LoopValue(from.Address))
	h.SetMessageID(msgID)
	h.SetSubject(m.Subject)
	h.SetAddressList("To", to)
	h.SetAddressList("From", []*mail.Address{from})
	h.SetDate(now)

	parts := []bodyPart{{"text/plain", normaliseLines(m.Text)}}
	if m.HTML != "" {
		parts = append(parts, bodyPart{"text/html", m.HTML})
	}
	var buf bytes.Buffer
	if err := writeBody(&buf, h, msgID, parts, m.Attachments, content); err != nil {
		return Outgoing{}, fmt.Errorf("compose mail %s: %w", m.ID, err)
	}
	return Outgoing{MessageID: msgID, From: from.Address, Recipients: envelope(to, nil), Raw: buf.Bytes()}, nil
}

// MailHandlerConfig holds what a MailHandler is built from.
type MailHandlerConfig struct {
	// Ledger records outcomes. Required.
	Ledger *Ledger
	// Transport submits messages. Required.
	Transport Transport
	// Mailboxes finds the sending mailbox. Required.
	Mailboxes MailboxFunc
	// Operator sends the mails that name no mailbox; nil when the
	// operator set none.
	Operator *OperatorSMTP
	// Blobs reads attachments; optional, as for Handler.
	Blobs BlobOpener
	// Retry, Lease, Clock and Logger are as for Handler.
	Retry  retry.Policy
	Lease  time.Duration
	Clock  retry.Clock
	Logger *slog.Logger
}

// MailHandler sends the mails of events.SendMail, once each.
type MailHandler struct {
	cfg MailHandlerConfig
	log *slog.Logger
}

// NewMailHandler checks cfg and returns a handler.
func NewMailHandler(cfg MailHandlerConfig) (*MailHandler, error) {
	switch {
	case cfg.Ledger == nil:
		return nil, errors.New("smtpsend: MailHandlerConfig.Ledger is required")
	case cfg.Transport == nil:
		return nil, errors.New("smtpsend: MailHandlerConfig.Transport is required")
	case cfg.Mailboxes == nil:
		return nil, errors.New("smtpsend: MailHandlerConfig.Mailboxes is required")
	}
	log := defaults(&cfg.Retry, &cfg.Lease, &cfg.Clock, cfg.Logger)
	return &MailHandler{cfg: cfg, log: log.With("component", "email-mail")}, nil
}

// Handle sends m unless its outcome is already recorded. It returns nil
// once the mail is sent or failed for good (a 5xx, the attempts used up,
// an attachment gone), which is logged and recorded in the ledger: no
// delivery status goes to the inbox, the mail belongs to no conversation.
// An error wrapping ErrInvalidCommand (m does not validate) or ErrNoSender
// is for the dead-letter topic; any other error means m must be handled
// again later. The ledger sequence, retries and the in-doubt window are
// Handler.Handle's.
func (h *MailHandler) Handle(ctx context.Context, m events.SendMail) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: mail %q: %v", ErrInvalidCommand, m.ID, err)
	}
	log := h.log.With("mail_id", m.ID, "tenant_id", m.TenantID, "mailbox_id", m.MailboxID, "purpose", m.Purpose)
	ref := sendledger.Ref{ID: mailLedgerPrefix + m.ID, TenantID: m.TenantID, ChannelAccountID: m.MailboxID}

	prev, ok, err := h.cfg.Ledger.Get(ctx, ref.ID)
	if err != nil {
		return err
	}
	if ok && prev.Final() {
		log.DebugContext(ctx, "mail already handled", "status", prev.State)
		return nil
	}

	server, from, err := h.sender(ctx, m)
	if err != nil {
		if errors.Is(err, ErrNoSender) {
			log.ErrorContext(ctx, "cannot send the mail; sending it to the dead-letter topic", "error", err)
		}
		return err
	}
	var content ContentFunc
	if h.cfg.Blobs != nil {
		content = func(a events.Attachment) (io.ReadCloser, error) { return h.cfg.Blobs.Open(ctx, a.BlobKey) }
	}
	out, err := ComposeMail(m, from, h.cfg.Clock.Now(), content)
	if errors.Is(err, ErrCompose) {
		return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, Reason: err.Error()})
	}
	if err != nil {
		return fmt.Errorf("compose mail %s: %w", m.ID, err)
	}
	if ok && h.cfg.Retry.Exhausted(prev.Attempts) {
		return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, ProviderID: out.MessageID,
			Reason: fmt.Sprintf("gave up after %d attempts: %s", prev.Attempts, prev.LastError)})
	}
	return attempts{ledger: h.cfg.Ledger, retry: h.cfg.Retry, lease: h.cfg.Lease, clock: h.cfg.Clock, log: log, what: "mail",
		send: func(ctx context.Context) error { return h.cfg.Transport.Send(ctx, server, out) },
		sent: func(ctx context.Context, o sendledger.Outcome[Details]) error {
			// The server has it: recording it must not be cut short by the
			// consumer stopping, or the replay would send it again.
			o.At = h.cfg.Clock.Now()
			if _, err := h.cfg.Ledger.Sent(context.WithoutCancel(ctx), o); err != nil {
				return err
			}
			log.InfoContext(ctx, "mail sent", "smtp_message_id", out.MessageID)
			return nil
		},
		fail:    func(ctx context.Context, o sendledger.Outcome[Details]) error { return h.fail(ctx, log, o) },
		settled: func(context.Context, Record) error { return nil },
	}.run(ctx, ref, out.MessageID)
}

// sender is the server and From of m: its mailbox's, or the operator's.
func (h *MailHandler) sender(ctx context.Context, m events.SendMail) (events.MailServer, *mail.Address, error) {
	if m.MailboxID == "" {
		if h.cfg.Operator == nil {
			return events.MailServer{}, nil, fmt.Errorf("%w: mail %s names no mailbox and no operator SMTP is set (-email.mail.smtp-url)", ErrNoSender, m.ID)
		}
		return h.cfg.Operator.Server, h.cfg.Operator.From, nil
	}
	mb, err := h.cfg.Mailboxes(ctx, m.TenantID, m.MailboxID)
	switch {
	case errors.Is(err, ErrUnknownMailbox) || (err == nil && (mb.Deleted || mb.TenantID != m.TenantID)):
		return events.MailServer{}, nil, fmt.Errorf("%w: mailbox %s of tenant %s does not exist or was deleted", ErrNoSender, m.MailboxID, m.TenantID)
	case err != nil:
		return events.MailServer{}, nil, fmt.Errorf("look up mailbox %s of mail %s: %w", m.MailboxID, m.ID, err)
	}
	from, err := mail.ParseAddress(mb.Address)
	if err != nil {
		return events.MailServer{}, nil, fmt.Errorf("%w: mailbox %s address %q: %v", ErrNoSender, mb.ID, mb.Address, err)
	}
	if mb.DisplayName != "" {
		from.Name = mb.DisplayName
	}
	return mb.SMTP, from, nil
}

// fail records the mail failed with o.Reason.
func (h *MailHandler) fail(ctx context.Context, log *slog.Logger, o sendledger.Outcome[Details]) error {
	o.At = h.cfg.Clock.Now()
	done, err := h.cfg.Ledger.Failed(ctx, o)
	if err != nil {
		return err
	}
	if done.State == sendledger.StateFailed {
		log.WarnContext(ctx, "mail failed", "reason", done.LastError)
	}
	return nil
}
