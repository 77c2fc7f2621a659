package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/connectors/email/internal/imapsync"
	"github.com/switchboard-oss/switchboard/connectors/email/internal/mailparse"
	"github.com/switchboard-oss/switchboard/connectors/email/internal/smtpsend"
	"github.com/switchboard-oss/switchboard/connectors/email/internal/threads"
	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// EventSource is the CloudEvents source of the connector's events.
const EventSource = "switchboard/email"

// SendGroup is the consumer group of sb.outbound.email.v1.
const SendGroup = "switchboard-email-send"

// eventNamespace derives stable event ids from (mailbox, external id), so
// that a mail offered twice (a restart before the checkpoint, a
// UIDVALIDITY resync) is the same event and is stored once.
var eventNamespace = uuid.MustParse("0b6f3a52-8f0e-4d61-9a55-2e4c1f7d9b13")

// maxDeadLetterBytes bounds the raw mail kept in a dead-letter record:
// Kafka refuses records over about a megabyte.
const maxDeadLetterBytes = 900 << 10

// Config holds the connector settings.
type Config struct {
	IMAP imapsync.Config
	// MaxAttachmentBytes bounds one stored attachment.
	MaxAttachmentBytes int64
	// SendAttempts bounds the SMTP attempts of one reply.
	SendAttempts int
	// SMTPTimeout bounds one SMTP session.
	SMTPTimeout time.Duration
	// Mail is the operator's SMTP, for the mails (events.SendMail) that
	// name no mailbox.
	Mail MailConfig
}

// MailConfig is the operator's SMTP setting.
type MailConfig struct {
	// SMTPURL is smtp://host[:port] (STARTTLS, port 587 by default),
	// smtps://host[:port] (TLS, 465) or smtp+plain://host[:port] (no TLS,
	// 25); empty means none.
	SMTPURL  string
	Username string
	Password string
	// From is the From of those mails: an address, with an optional
	// display name.
	From string
}

// operator returns the operator's SMTP setting, nil when none is set.
func (m MailConfig) operator() (*smtpsend.OperatorSMTP, error) {
	if m.SMTPURL == "" {
		return nil, nil
	}
	u, err := url.Parse(m.SMTPURL)
	if err != nil || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, errors.New("must be smtp://host[:port], smtps://host[:port] or smtp+plain://host[:port], without credentials (see -email.mail.smtp-username)")
	}
	server := events.MailServer{Host: u.Hostname(), Username: m.Username, Password: m.Password}
	switch u.Scheme {
	case "smtp":
		server.TLS, server.Port = events.TLSStartTLS, 587
	case "smtps":
		server.TLS, server.Port = events.TLSImplicit, 465
	case "smtp+plain":
		server.TLS, server.Port = events.TLSNone, 25
	default:
		return nil, fmt.Errorf("scheme %q is not smtp, smtps or smtp+plain", u.Scheme)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is not a port", p)
		}
		server.Port = n
	}
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("-email.mail.from %q is not an address", m.From)
	}
	return &smtpsend.OperatorSMTP{Server: server, From: from}, nil
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	c.IMAP.RegisterFlags(prefix+"email.", f)
	f.Int64Var(&c.MaxAttachmentBytes, prefix+"email.max-attachment-bytes", mailparse.DefaultMaxAttachmentBytes, "Largest attachment kept, in bytes; a larger one is listed on the message as skipped.")
	f.IntVar(&c.SendAttempts, prefix+"email.send-attempts", 8, "SMTP attempts of one reply when the server answers 4xx or cannot be reached, with backoff, before it is reported failed.")
	f.DurationVar(&c.SMTPTimeout, prefix+"email.smtp-timeout", 2*time.Minute, "Longest SMTP session of one reply, connection and data included.")
	f.StringVar(&c.Mail.SMTPURL, prefix+"email.mail.smtp-url", "", "The operator's SMTP server, for the mails of the platform that name no mailbox of the tenant (notifications to users of tenants that chose none): smtp://host[:port] (STARTTLS, port 587 by default), smtps://host[:port] (TLS, 465) or smtp+plain://host[:port] (no TLS, 25: a relay on a trusted network only). Empty: such mails are dead-lettered, with the cause logged. Needs -email.mail.from.")
	f.StringVar(&c.Mail.Username, prefix+"email.mail.smtp-username", "", "User name for -email.mail.smtp-url; empty sends without authentication.")
	f.StringVar(&c.Mail.Password, prefix+"email.mail.smtp-password", "", "Password for -email.mail.smtp-url. Prefer the environment (SB_EMAIL_MAIL_SMTP_PASSWORD) to the command line, where other users of the machine can see it. Never logged.")
	f.StringVar(&c.Mail.From, prefix+"email.mail.from", "", "From of the mails sent through -email.mail.smtp-url, such as \"Switchboard <noreply@example.com>\".")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.Check(c.MaxAttachmentBytes >= 1024, "email.max-attachment-bytes", fmt.Sprintf("%d is too small", c.MaxAttachmentBytes), "set at least 1024")
	ck.Check(c.SendAttempts >= 1, "email.send-attempts", fmt.Sprintf("must be at least 1, got %d", c.SendAttempts), "set 8")
	ck.Positive("email.smtp-timeout", c.SMTPTimeout)
	if c.Mail.SMTPURL != "" {
		_, err := c.Mail.operator()
		ck.Check(err == nil, "email.mail.smtp-url", fmt.Sprint(err), "set smtp://host:587 with -email.mail.from \"Name <noreply@example.com>\"")
	} else {
		ck.Check(c.Mail.From == "" && c.Mail.Username == "" && c.Mail.Password == "", "email.mail.smtp-url", "is empty while -email.mail.from or credentials are set", "set the server, or leave the other -email.mail flags out")
	}
	ck.Check(c.Mail.Password == "" || c.Mail.Username != "", "email.mail.smtp-username", "is empty while -email.mail.smtp-password is set", "set the user name")
	return errors.Join(c.IMAP.Validate(prefix+"email."), ck.Err())
}

// Deps are what the connector runs on.
type Deps struct {
	// Pool holds the connector's schema (checkpoints, threads, sends).
	Pool *pgxpool.Pool
	// Bus configures the send consumer; Brokers is where it and the
	// config topic are read.
	Bus     bus.Config
	Brokers []string
	// Producer publishes inbound mail, deliveries and dead letters.
	Producer *bus.Producer
	// Blobs keeps attachments and inline images.
	Blobs     blob.Store
	Telemetry *telemetry.Telemetry
	// Clock is the system clock when nil.
	Clock retry.Clock
	// Secrets open the mailboxes' credentials, which travel sealed
	// (docs/adr/0022); required.
	Secrets *seal.Keyring
}

// Connector synchronises mailboxes and sends replies.
type Connector struct {
	cfg      Config
	pool     *pgxpool.Pool
	producer *bus.Producer
	clock    retry.Clock
	log      *slog.Logger

	table       *bus.Table
	mailboxes   *mailboxes
	checkpoints *imapsync.Checkpoints
	threads     *threads.Store
	ledger      *smtpsend.Ledger
	blobs       blob.Store
	sender      *smtpsend.Handler
	mails       *smtpsend.MailHandler
	consumer    *bus.Consumer

	ingested     metric.Int64Counter
	deadLettered metric.Int64Counter
	fetched      metric.Int64Counter
	lag          metric.Int64Gauge

	// ownershipCheck is defaultOwnershipCheck; tests shorten it.
	ownershipCheck time.Duration
}

// New migrates the connector's schema and builds it.
func New(ctx context.Context, cfg Config, d Deps) (*Connector, error) {
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	c := &Connector{
		cfg: cfg, pool: d.Pool, producer: d.Producer, clock: d.Clock, log: d.Telemetry.Component("email"),
		checkpoints: imapsync.NewCheckpoints(d.Pool), threads: threads.New(d.Pool), ledger: smtpsend.NewLedger(d.Pool),
		ownershipCheck: defaultOwnershipCheck,
	}
	for _, migrate := range []func(context.Context, *pgxpool.Pool) error{imapsync.Migrate, smtpsend.Migrate, func(ctx context.Context, _ *pgxpool.Pool) error { return c.threads.Migrate(ctx) }} {
		if err := migrate(ctx, d.Pool); err != nil {
			return nil, err
		}
	}
	if d.Blobs == nil {
		return nil, errors.New("email: no blob store given")
	}
	if d.Secrets == nil {
		return nil, errors.New("email: no keyring given: the mailboxes' secrets travel sealed")
	}
	c.blobs = d.Blobs
	var err error
	c.mailboxes = newMailboxes(c.log, d.Secrets, c.syncMailbox)
	busCfg := d.Bus
	busCfg.Brokers = d.Brokers
	c.table = bus.NewTable(busCfg, events.TopicConfig, c.mailboxes.apply, d.Telemetry)

	policy := retry.Default()
	policy.MaxAttempts = cfg.SendAttempts
	c.sender, err = smtpsend.NewHandler(smtpsend.HandlerConfig{
		Ledger:    c.ledger,
		Transport: &smtpsend.Sender{MessageTimeout: cfg.SMTPTimeout, Logger: c.log},
		Mailboxes: c.mailbox,
		Publish:   c.publishDelivery,
		Threads:   c.thread,
		Blobs:     c.blobs,
		Sent:      sentFolder{dialTimeout: cfg.IMAP.DialTimeout},
		Retry:     policy,
		Lease:     cfg.SMTPTimeout + time.Minute, // longer than any SMTP session
		Clock:     d.Clock,
		Logger:    c.log,
	})
	if err != nil {
		return nil, err
	}
	operator, err := cfg.Mail.operator()
	if err != nil {
		return nil, fmt.Errorf("email: -email.mail.smtp-url: %w", err)
	}
	c.mails, err = smtpsend.NewMailHandler(smtpsend.MailHandlerConfig{
		Ledger:    c.ledger,
		Transport: &smtpsend.Sender{MessageTimeout: cfg.SMTPTimeout, Logger: c.log},
		Mailboxes: c.mailbox,
		Operator:  operator,
		Blobs:     c.blobs,
		Retry:     policy,
		Lease:     cfg.SMTPTimeout + time.Minute,
		Clock:     d.Clock,
		Logger:    c.log,
	})
	if err != nil {
		return nil, err
	}
	c.consumer, err = bus.NewConsumer(busCfg, bus.ConsumerOptions{Group: SendGroup, Topics: []string{events.TopicOutbound(events.ChannelEmail)}, Clock: d.Clock},
		bus.ByType(map[string]bus.Handler{
			events.TypeErase:    bus.Each(c.forget, ErrInvalidErase),
			events.TypeSendMail: bus.Each(c.mails.Handle, smtpsend.ErrInvalidCommand, smtpsend.ErrNoSender),
		}, bus.Each(c.sender.Handle, smtpsend.ErrInvalidCommand)), d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}

	m := d.Telemetry.Meter.Meter("switchboard/email")
	if c.ingested, err = m.Int64Counter("switchboard.email.ingested", metric.WithDescription("Mails published to the inbox, by mailbox.")); err != nil {
		return nil, err
	}
	if c.deadLettered, err = m.Int64Counter("switchboard.email.dead_lettered", metric.WithDescription("Mails kept raw in the dead-letter topic instead (unparseable, too large), by reason.")); err != nil {
		return nil, err
	}
	if c.fetched, err = m.Int64Counter("switchboard.email.imap.fetched", metric.WithDescription("Mails fetched over IMAP, by mailbox.")); err != nil {
		return nil, err
	}
	if c.lag, err = m.Int64Gauge("switchboard.email.imap.backlog", metric.WithDescription("Mails of a mailbox found on the server and not yet ingested, as of the last search.")); err != nil {
		return nil, err
	}
	return c, nil
}

// Run follows the mailbox configuration, synchronises every mailbox and
// sends replies until ctx is cancelled.
func (c *Connector) Run(ctx context.Context) error {
	return lifecycle.RunAll(ctx, lifecycle.ServiceFunc(c.table.Run), lifecycle.ServiceFunc(c.mailboxes.run), c.consumer)
}

// Ready reports whether the connector knows the mailboxes configured when
// it started and its send consumer runs.
func (c *Connector) Ready(ctx context.Context) error {
	if err := c.table.Ready(ctx); err != nil {
		return err
	}
	return c.consumer.Ready(ctx)
}

// syncMailbox synchronises one mailbox while this replica owns it: a
// session advisory lock makes sure that one replica at a time reads a
// mailbox, whatever the number of replicas.
func (c *Connector) syncMailbox(ctx context.Context, mb events.Mailbox) error {
	log := c.log.With("mailbox_id", mb.ID, "tenant_id", mb.TenantID)
	parsers := &mailParsers{opts: mailparse.Options{
		Limits:        mailparse.Limits{MaxRawBytes: c.cfg.IMAP.MaxMessageBytes, MaxAttachmentBytes: c.cfg.MaxAttachmentBytes},
		Store:         c.blobs,
		BlobNamespace: blobNamespace(mb),
		LoopValues:    []string{smtpsend.LoopValue(mb.Address)},
	}}
	if _, err := parsers.get(c.mailboxes.ownDomains(mb.TenantID)); err != nil {
		return err
	}
	attrs := metric.WithAttributes(attribute.String("mailbox_id", mb.ID))
	metrics := imapsync.Metrics{
		Fetched: func(n int) { c.fetched.Add(context.Background(), int64(n), attrs) },
		Lag:     func(n int) { c.lag.Record(context.Background(), int64(n), attrs) },
	}
	deliver := func(ctx context.Context, raws []imapsync.Raw) error {
		parser, err := parsers.get(c.mailboxes.ownDomains(mb.TenantID))
		if err != nil {
			return err
		}
		return c.deliver(ctx, mb, parser, raws)
	}
	s, err := imapsync.NewBatched(c.cfg.IMAP, mb, deliver, c.checkpoints, log, metrics)
	if err != nil {
		// Settings the inbox accepted but the syncer refuses: wait for
		// new ones rather than retry in a loop.
		log.Error("mailbox cannot be synchronised with its settings", "error", err)
		<-ctx.Done()
		return nil
	}
	for {
		err := c.whileOwned(ctx, mb.ID, log, s.Run)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("mailbox sync interrupted; taking the mailbox again", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(time.Second):
		}
	}
}

// defaultOwnershipCheck is how often the session holding a mailbox's lock
// is checked: if it is gone, so is the lock, and another replica may take
// the mailbox.
const defaultOwnershipCheck = 10 * time.Second

// whileOwned takes the mailbox's advisory lock on a connection of its own,
// waiting while another replica holds it, and runs run until ctx ends or
// the lock is lost (its connection broke), then releases it.
func (c *Connector) whileOwned(ctx context.Context, mailboxID string, log *slog.Logger, run func(context.Context) error) error {
	key := "switchboard-email-mailbox:" + mailboxID
	policy := retry.Default()
	waiting := false
	for n := 1; ; n++ {
		conn, err := c.pool.Acquire(ctx)
		if err == nil {
			var ok bool
			err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok)
			if err == nil && ok {
				defer func() {
					uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer cancel()
					if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
						// The lock ends with the session: drop it.
						_ = conn.Conn().Close(uctx)
					}
					conn.Release()
				}()
				rctx, cancel := context.WithCancelCause(ctx)
				checked := make(chan struct{})
				defer func() {
					// The check is done with the connection before the
					// deferred unlock above uses it.
					cancel(nil)
					<-checked
				}()
				go func() {
					defer close(checked)
					for {
						select {
						case <-rctx.Done():
							return
						case <-c.clock.After(c.ownershipCheck):
						}
						pctx, pcancel := context.WithTimeout(rctx, 5*time.Second)
						err := conn.Ping(pctx)
						pcancel()
						if err != nil && rctx.Err() == nil {
							cancel(fmt.Errorf("lost the mailbox's lock: %w", err))
							return
						}
					}
				}()
				err := run(rctx)
				if cause := context.Cause(rctx); cause != nil && ctx.Err() == nil {
					return cause
				}
				return err
			}
			conn.Release()
			if err == nil && !waiting {
				waiting = true
				log.Info("another replica synchronises this mailbox; standing by")
			}
		}
		if err != nil {
			log.Warn("cannot take the mailbox's lock; retrying", "error", err)
		}
		if err := policy.Sleep(ctx, c.clock, min(n, 5)); err != nil {
			return err
		}
	}
}

// blobNamespace scopes a mailbox's attachments.
func blobNamespace(mb events.Mailbox) string {
	return safeSegment(mb.TenantID) + "/" + safeSegment(mb.ID)
}

// safeSegment keeps what a blob namespace segment may hold.
func safeSegment(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// deliver turns fetched mails into inbound messages, or dead letters when
// they cannot be ones, and returns once Kafka acknowledged all of them: one
// wait per fetched part, not per mail.
func (c *Connector) deliver(ctx context.Context, mb events.Mailbox, parser *mailparse.Parser, raws []imapsync.Raw) error {
	var (
		recs []kafka.Message
		done []func()
	)
	for _, raw := range raws {
		r, d, err := c.prepare(ctx, mb, parser, raw)
		if err != nil {
			return err
		}
		recs, done = append(recs, r...), append(done, d)
	}
	if err := c.producer.PublishRecords(ctx, recs...); err != nil {
		return fmt.Errorf("publish %d mail(s) of mailbox %s: %w", len(raws), mb.ID, err)
	}
	for _, d := range done {
		d()
	}
	return nil
}

// prepare makes the records one mail becomes, and what to count once they
// are published. An error (the database or the blob store failing) means
// the mail must be offered again.
func (c *Connector) prepare(ctx context.Context, mb events.Mailbox, parser *mailparse.Parser, raw imapsync.Raw) ([]kafka.Message, func(), error) {
	if raw.TooLarge {
		return c.deadLetter(mb, raw, "too_large", fmt.Sprintf("mail of %d bytes is larger than -email.imap.max-message-bytes", raw.Size))
	}
	m, err := parser.Parse(ctx, raw.Body)
	switch {
	case errors.Is(err, mailparse.ErrTooLarge):
		return c.deadLetter(mb, raw, "too_large", err.Error())
	case errors.Is(err, mailparse.ErrUnparseable):
		return c.deadLetter(mb, raw, "unparseable", err.Error())
	case err != nil:
		return nil, nil, fmt.Errorf("parse mail uid %d: %w", raw.UID, err) // the blob store failed: retry
	}
	if m.From.Address == "" {
		return c.deadLetter(mb, raw, "no_sender", "the mail has no readable From address")
	}
	if len(m.Warnings) > 0 {
		c.log.Warn("mail parsed with problems", "mailbox_id", mb.ID, "uid", raw.UID, "message_id", m.MessageID, "warnings", len(m.Warnings), "first", m.Warnings[0])
	}
	var recs []kafka.Message
	if m.Bounce != nil && m.Bounce.OriginalMessageID != "" {
		rec, ok, err := c.bounced(ctx, mb, m)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			recs = append(recs, rec)
		}
	}

	in := threads.Inbound{MailboxID: mb.ID, MessageID: m.MessageID, InReplyTo: m.InReplyTo, References: m.References, Subject: m.Subject,
		ThreadIndex: m.ThreadIndex, ThreadTopic: m.ThreadTopic, Fallback: "hash:" + m.ContentHash}
	if in.InReplyTo == "" && m.Bounce != nil {
		// A bounce joins the conversation of the mail it reports on.
		in.InReplyTo = m.Bounce.OriginalMessageID
	}
	for _, a := range append(append([]mailparse.Address{}, m.To...), m.Cc...) {
		in.Recipients = append(in.Recipients, a.Address)
	}
	thread, err := c.threads.Resolve(ctx, in)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256([]byte(m.MessageID + "\n" + m.ContentHash))
	external := hex.EncodeToString(sum[:])
	// Recorded before it is published: the next mail of the same part may
	// answer this one. A mail offered again records nothing new.
	if err := c.threads.Record(ctx, threads.Message{MailboxID: mb.ID, MessageID: m.MessageID, ThreadKey: thread, ExternalID: external, Subject: m.Subject, References: m.References,
		ThreadIndex: m.ThreadIndex, ThreadTopic: m.ThreadTopic}); err != nil {
		return nil, nil, err
	}

	msg := events.MessageReceived{
		TenantID: mb.TenantID, Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: external, ThreadKey: thread,
		From:    events.Party{Identity: m.From.Address, Name: truncate(m.From.Name, events.MaxNameBytes)},
		Text:    m.Text,
		SentAt:  m.Date,
		Subject: m.Subject, HTML: m.HTML, Automatic: m.Automatic,
		ReceivedAt: c.clock.Now().UTC(),
		Metadata:   metadata(m),
	}
	if strings.TrimSpace(msg.Text) == "" {
		msg.Text = "(no text)"
	}
	for _, a := range append(append([]mailparse.Attachment{}, m.Attachments...), m.Inlines...) {
		ea := events.Attachment{Name: truncate(a.FileName, events.MaxNameBytes), ContentType: a.ContentType, Size: a.Size, ContentID: a.ContentID, Skipped: string(a.Skipped)}
		if a.Blob != nil {
			ea.BlobKey = a.Blob.Key
		}
		msg.Attachments = append(msg.Attachments, ea)
	}
	for i := len(m.Attachments); i < len(msg.Attachments); i++ {
		msg.Attachments[i].Inline = true
	}
	if err := msg.Validate(); err != nil {
		return c.deadLetter(mb, raw, "invalid", err.Error())
	}
	ev, err := events.New(events.TypeMessageReceived, EventSource, mb.TenantID, msg.ReceivedAt, msg)
	if err != nil {
		return nil, nil, err
	}
	ev.ID = uuid.NewSHA1(eventNamespace, []byte(mb.ID+"\x00"+external)).String()
	recs = append(recs, ev.Message(ctx, events.TopicInbound, events.ConversationKey(mb.TenantID, events.ChannelEmail, mb.ID, thread)))
	return recs, func() { c.ingested.Add(ctx, 1, metric.WithAttributes(attribute.String("mailbox_id", mb.ID))) }, nil
}

// metadata is what agents see of a mail's headers besides its body.
func metadata(m *mailparse.Mail) map[string]string {
	md := map[string]string{}
	put := func(k, v string) {
		if v != "" {
			md[k] = truncate(v, events.MaxMetadataValueBytes)
		}
	}
	put("message_id", m.MessageID)
	put("to", joinAddresses(m.To))
	put("cc", joinAddresses(m.Cc))
	put("reply_to", joinAddresses(m.ReplyTo))
	put("automatic_reason", m.AutomaticReason)
	if m.TextTruncated {
		md["text_truncated"] = "true"
	}
	if m.OmittedAttachments > 0 {
		md["omitted_attachments"] = strconv.Itoa(m.OmittedAttachments)
	}
	return md
}

func joinAddresses(as []mailparse.Address) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Address
	}
	return strings.Join(parts, ", ")
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// bounced is the record marking the reply a delivery status notification
// reports on as failed; ok is false when the reply is not one of ours.
func (c *Connector) bounced(ctx context.Context, mb events.Mailbox, m *mailparse.Mail) (kafka.Message, bool, error) {
	rec, ok, err := c.ledger.FindByProviderID(ctx, mb.TenantID, m.Bounce.OriginalMessageID)
	if err != nil || !ok {
		return kafka.Message{}, false, err
	}
	reason := "bounced"
	for _, r := range m.Bounce.Recipients {
		if r.Action == "failed" || strings.HasPrefix(r.Status, "5") {
			reason = strings.TrimSpace(fmt.Sprintf("bounced by %s: %s %s", r.Address, r.Status, r.Diagnostic))
			break
		}
	}
	d := events.Delivery{MessageID: rec.ID, TenantID: rec.TenantID, Status: events.DeliveryFailed, Error: truncate(reason, 1024), At: c.clock.Now().UTC()}
	ev, err := events.New(events.TypeDelivery, EventSource, d.TenantID, d.At, d)
	if err != nil {
		return kafka.Message{}, false, err
	}
	return ev.Message(ctx, events.TopicDelivery, []byte(d.MessageID)), true, nil
}

// deadLetter is the record that keeps a mail that cannot become a message
// in sb.dlq.v1, raw, with the reason and where it came from; the sync goes
// on.
func (c *Connector) deadLetter(mb events.Mailbox, raw imapsync.Raw, reason, detail string) ([]kafka.Message, func(), error) {
	body := raw.Body
	truncated := len(body) > maxDeadLetterBytes
	if truncated {
		body = body[:maxDeadLetterBytes]
	}
	rec := kafka.Message{
		Topic: events.TopicDLQ,
		Key:   []byte("email/" + mb.ID + "/" + strconv.FormatUint(uint64(raw.UIDValidity), 10) + "/" + strconv.FormatUint(uint64(raw.UID), 10)),
		Value: body,
		Headers: []kafka.Header{
			{Key: bus.HeaderDLQReason, Value: []byte(reason + ": " + detail)},
			{Key: bus.HeaderDLQHandler, Value: []byte("email-imap")},
			{Key: bus.HeaderDLQTime, Value: []byte(c.clock.Now().UTC().Format(time.RFC3339Nano))},
			{Key: "tenant_id", Value: []byte(mb.TenantID)},
			{Key: "mailbox_id", Value: []byte(mb.ID)},
			{Key: "imap_uidvalidity", Value: []byte(strconv.FormatUint(uint64(raw.UIDValidity), 10))},
			{Key: "imap_uid", Value: []byte(strconv.FormatUint(uint64(raw.UID), 10))},
			{Key: "mail_bytes", Value: []byte(strconv.FormatInt(raw.Size, 10))},
			{Key: "mail_truncated", Value: []byte(strconv.FormatBool(truncated))},
		},
	}
	return []kafka.Message{rec}, func() {
		c.deadLettered.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
		c.log.Warn("mail kept in the dead-letter topic", "mailbox_id", mb.ID, "uid", raw.UID, "reason", reason, "detail", detail)
	}, nil
}

// mailbox is the sender's view of a mailbox.
func (c *Connector) mailbox(_ context.Context, tenantID, mailboxID string) (events.Mailbox, error) {
	mb, ok := c.mailboxes.get(mailboxID)
	if !ok || mb.TenantID != tenantID {
		return events.Mailbox{}, smtpsend.ErrUnknownMailbox
	}
	return mb, nil
}

// thread is what a reply needs to join the customer's thread: the mail it
// answers, and the thread's token for clients that drop the references.
// It also records the reply's own Message-ID, so that the customer's
// answer to it finds the thread.
func (c *Connector) thread(ctx context.Context, cmd events.SendMessage) (smtpsend.Thread, error) {
	mb, err := c.mailbox(ctx, cmd.TenantID, cmd.ChannelAccountID)
	if err != nil {
		return smtpsend.Thread{}, err
	}
	var t smtpsend.Thread
	if cmd.InReplyTo != "" {
		p, ok, err := c.threads.Parent(ctx, mb.ID, cmd.InReplyTo)
		if err != nil {
			return t, err
		}
		if ok {
			t.ParentMessageID, t.ParentReferences, t.Subject = p.MessageID, p.References, p.Subject
		}
	}
	token, err := c.threads.Token(ctx, mb.ID, cmd.ThreadKey)
	if err != nil {
		return t, err
	}
	t.SubjectTag = "[#" + token + "]"
	if mb.ReplyDomain != "" {
		t.ReplyAddress = threads.ReplyAddress(token, strings.ToLower(mb.ReplyDomain))
	}
	domain := mb.Address[strings.LastIndexByte(mb.Address, '@')+1:]
	refs := append(append([]string{}, t.ParentReferences...), t.ParentMessageID)
	err = c.threads.Record(ctx, threads.Message{MailboxID: mb.ID, MessageID: smtpsend.MessageID(cmd.MessageID, domain), ThreadKey: cmd.ThreadKey, ExternalID: cmd.MessageID, Outbound: true, Subject: cmd.Subject, References: refs})
	return t, err
}

// publishDelivery tells the inbox what became of a reply.
func (c *Connector) publishDelivery(ctx context.Context, d events.Delivery) error {
	ev, err := events.New(events.TypeDelivery, EventSource, d.TenantID, d.At, d)
	if err != nil {
		return err
	}
	return c.producer.Publish(ctx, events.TopicDelivery, []byte(d.MessageID), ev)
}

// sentFolder copies replies to the mailbox's Sent folder over IMAP.
type sentFolder struct{ dialTimeout time.Duration }

func (s sentFolder) AppendSent(ctx context.Context, mb events.Mailbox, msg smtpsend.Outgoing) error {
	return imapsync.AppendSent(ctx, mb, mb.SentFolder, msg.Raw, s.dialTimeout)
}
