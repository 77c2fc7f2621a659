package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// Errors callers branch on.
var (
	// ErrUnknownMailbox is returned (wrapped) by a MailboxFunc that has no
	// such mailbox for the tenant. The handler reports the message failed.
	ErrUnknownMailbox = errors.New("unknown mailbox")
	// ErrInvalidCommand is wrapped by Handle's error for a command that
	// cannot even be recorded (no message id or tenant): the caller sends
	// it to the dead-letter topic.
	ErrInvalidCommand = errors.New("invalid send command")
)

// MailboxFunc returns the mailbox of a tenant, as the configuration topic
// last described it. It wraps ErrUnknownMailbox when there is none; any
// other error is taken as temporary and returned by Handle.
type MailboxFunc func(ctx context.Context, tenantID, mailboxID string) (events.Mailbox, error)

// ThreadFunc returns what the inbound side recorded of the message cmd
// answers (cmd.InReplyTo), for References and the subject. It returns a zero
// Thread when it knows nothing of it; an error is taken as temporary.
type ThreadFunc func(ctx context.Context, cmd events.SendMessage) (Thread, error)

// PublishFunc publishes a delivery status and returns once the broker has
// acknowledged it.
type PublishFunc func(ctx context.Context, d events.Delivery) error

// SentAppender stores a copy of a sent message in the mailbox's Sent
// folder (IMAP APPEND). The IMAP side of the connector implements it.
type SentAppender interface {
	// AppendSent appends msg to mb.SentFolder.
	AppendSent(ctx context.Context, mb events.Mailbox, msg Outgoing) error
}

// BlobOpener reads attachments' contents; a blob.Store is one.
type BlobOpener interface {
	// Open returns the content of the blob whose key is key; an error
	// wrapping blob.ErrNotFound when there is none.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// DefaultLease is the Lease of a zero HandlerConfig: Sender's default
// MessageTimeout and a minute.
const DefaultLease = 11 * time.Minute

// HandlerConfig holds what a Handler is built from.
type HandlerConfig struct {
	// Ledger records outcomes. Required.
	Ledger *Ledger
	// Transport submits messages; usually a *Sender. Required.
	Transport Transport
	// Mailboxes finds the sending mailbox. Required.
	Mailboxes MailboxFunc
	// Publish publishes delivery statuses. Required.
	Publish PublishFunc
	// Threads finds the message answered. Optional: without it a reply
	// carries In-Reply-To and References of the parent's id only, and
	// the command's subject.
	Threads ThreadFunc
	// Blobs reads the contents of attachments. Optional: without it a
	// command with attachments fails, saying why.
	Blobs BlobOpener
	// Sent copies sent messages to the Sent folder of mailboxes that have
	// one, after 'sent' is recorded. Optional. A failure is logged, never
	// retried (the message is sent), and a replay does not append again:
	// the copy is best effort, the ledger and the delivery status are the
	// record.
	Sent SentAppender
	// Retry bounds the SMTP attempts of one message, over every delivery
	// of its command (MaxAttempts, 0 for no bound) and spaces them.
	// retry.Default() when zero: 8 attempts over about 30 s, enough for a
	// submission server restarting, not for a long outage, after which
	// the message is reported failed and the agent can send it again.
	Retry retry.Policy
	// Lease is how long an SMTP attempt holds the message against other
	// consumers (a rebalance): longer than the Transport's longest
	// session. After a crash mid-attempt, the replay waits that long
	// before sending again. DefaultLease when zero.
	Lease time.Duration
	// Clock dates records and paces retries; retry.SystemClock when nil.
	Clock retry.Clock
	// Logger receives the handler's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// Handler sends the messages of send commands, once each.
type Handler struct {
	cfg HandlerConfig
	log *slog.Logger
}

// NewHandler checks cfg and returns a handler.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	switch {
	case cfg.Ledger == nil:
		return nil, errors.New("smtpsend: HandlerConfig.Ledger is required")
	case cfg.Transport == nil:
		return nil, errors.New("smtpsend: HandlerConfig.Transport is required")
	case cfg.Mailboxes == nil:
		return nil, errors.New("smtpsend: HandlerConfig.Mailboxes is required")
	case cfg.Publish == nil:
		return nil, errors.New("smtpsend: HandlerConfig.Publish is required")
	}
	log := defaults(&cfg.Retry, &cfg.Lease, &cfg.Clock, cfg.Logger)
	return &Handler{cfg: cfg, log: log.With("component", "email-send")}, nil
}

// Handle sends the message of cmd unless its outcome is already recorded,
// and publishes its delivery status (sent or failed). It returns nil once
// the status is published; an error means the command must be handled again
// later (PostgreSQL or Kafka unavailable, ctx ended, a mailbox or thread
// lookup failed) or, wrapping ErrInvalidCommand, never.
//
// Sequence: a command whose ledger status is final only has its status
// published again, so a replay after a crash never sends twice. Otherwise
// each SMTP attempt is recorded first (sendledger.Begin: attempting,
// attempts+1, the message held against other consumers); a temporary
// failure is recorded (Retry) and retried after a backoff until the
// policy's attempts are used up, then the message is failed; a permanent
// failure (5xx, bad settings, unknown or deleted mailbox, message that
// cannot be composed, an attachment missing from the blob store) fails it
// at once with the reason; a blob store that cannot be read right now is
// an error, so the command is handled again later; success records sent.
// An attempt in doubt (the process stopped before its outcome was
// recorded) is made again, with the same Message-ID: the one window in
// which a replay sends twice, described in the package comment. A message
// another consumer is attempting is waited for.
func (h *Handler) Handle(ctx context.Context, cmd events.SendMessage) error {
	if cmd.MessageID == "" || cmd.TenantID == "" {
		return fmt.Errorf("%w: message_id and tenant_id are required (message %q)", ErrInvalidCommand, cmd.MessageID)
	}
	log := h.log.With("message_id", cmd.MessageID, "tenant_id", cmd.TenantID, "mailbox_id", cmd.ChannelAccountID)
	ref := sendledger.Ref{ID: cmd.MessageID, TenantID: cmd.TenantID, ChannelAccountID: cmd.ChannelAccountID, ConversationID: cmd.ConversationID}

	prev, ok, err := h.cfg.Ledger.Get(ctx, cmd.MessageID)
	if err != nil {
		return err
	}
	if ok && prev.Final() {
		log.DebugContext(ctx, "message already handled; publishing its status again", "status", prev.State)
		return h.publish(ctx, prev)
	}

	mb, err := h.cfg.Mailboxes(ctx, cmd.TenantID, cmd.ChannelAccountID)
	switch {
	case errors.Is(err, ErrUnknownMailbox) || (err == nil && (mb.Deleted || mb.TenantID != cmd.TenantID)):
		return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, Reason: fmt.Sprintf("mailbox %s does not exist or was deleted", cmd.ChannelAccountID)})
	case err != nil:
		return fmt.Errorf("look up mailbox %s of message %s: %w", cmd.ChannelAccountID, cmd.MessageID, err)
	}

	var thread Thread
	if h.cfg.Threads != nil {
		if thread, err = h.cfg.Threads(ctx, cmd); err != nil {
			return fmt.Errorf("look up the thread of message %s: %w", cmd.MessageID, err)
		}
	}
	var content ContentFunc
	if h.cfg.Blobs != nil {
		content = func(a events.Attachment) (io.ReadCloser, error) { return h.cfg.Blobs.Open(ctx, a.BlobKey) }
	}
	out, err := Compose(cmd, mb, thread, h.cfg.Clock.Now(), content)
	if errors.Is(err, ErrCompose) {
		// Composing again gives the same answer (an attachment whose
		// content is gone stays gone): failed now, not retried.
		return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, Reason: err.Error()})
	}
	if err != nil {
		return fmt.Errorf("compose message %s: %w", cmd.MessageID, err)
	}

	if ok && h.cfg.Retry.Exhausted(prev.Attempts) {
		// Earlier deliveries of this command used up the attempts and
		// the process stopped before recording the failure.
		return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, ProviderID: out.MessageID,
			Reason: fmt.Sprintf("gave up after %d attempts: %s", prev.Attempts, prev.LastError)})
	}
	return attempts{ledger: h.cfg.Ledger, retry: h.cfg.Retry, lease: h.cfg.Lease, clock: h.cfg.Clock, log: log, what: "message",
		send:    func(ctx context.Context) error { return h.cfg.Transport.Send(ctx, mb.SMTP, out) },
		sent:    func(ctx context.Context, o sendledger.Outcome[Details]) error { return h.sent(ctx, log, o, mb, out) },
		fail:    func(ctx context.Context, o sendledger.Outcome[Details]) error { return h.fail(ctx, log, o) },
		settled: h.publish,
	}.run(ctx, ref, out.MessageID)
}

// sent records success, copies the message to the Sent folder and
// publishes the status.
func (h *Handler) sent(ctx context.Context, log *slog.Logger, o sendledger.Outcome[Details], mb events.Mailbox, out Outgoing) error {
	// The server has the message: recording it must not be cut short by
	// the consumer stopping, or the replay would send it again.
	o.At = h.cfg.Clock.Now()
	done, err := h.cfg.Ledger.Sent(context.WithoutCancel(ctx), o)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "message sent", "smtp_message_id", out.MessageID, "attempts", done.Attempts)
	if h.cfg.Sent != nil && mb.SentFolder != "" {
		if err := h.cfg.Sent.AppendSent(ctx, mb, out); err != nil {
			log.WarnContext(ctx, "could not copy the sent message to the Sent folder", "folder", mb.SentFolder, "error", err)
		}
	}
	return h.publish(ctx, done)
}

// fail records the message failed with o.Reason and publishes the status.
func (h *Handler) fail(ctx context.Context, log *slog.Logger, o sendledger.Outcome[Details]) error {
	o.At = h.cfg.Clock.Now()
	done, err := h.cfg.Ledger.Failed(ctx, o)
	if err != nil {
		return err
	}
	if done.State == sendledger.StateFailed {
		log.WarnContext(ctx, "message failed", "reason", done.LastError)
	}
	return h.publish(ctx, done)
}

// publish publishes the recorded final status of a message. The time is
// the recorded one, so that a status published again is the same event.
func (h *Handler) publish(ctx context.Context, rec Record) error {
	d := events.Delivery{MessageID: rec.ID, TenantID: rec.TenantID, Status: events.DeliverySent, At: rec.UpdatedAt.UTC()}
	if rec.State == sendledger.StateFailed {
		d.Status, d.Error = events.DeliveryFailed, rec.LastError
	}
	if err := h.cfg.Publish(ctx, d); err != nil {
		return fmt.Errorf("publish %s delivery of message %s: %w", rec.State, rec.ID, err)
	}
	return nil
}
