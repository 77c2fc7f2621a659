// Package imapsync synchronises one IMAP folder of one mailbox: it hands
// every message on, in UID order and at least once, and records in
// PostgreSQL how far it got, so that no message is missed after downtime.
//
// A Syncer connects (TLS, STARTTLS or plain; LOGIN or SASL XOAUTH2),
// selects the folder (read-only unless it must mark or move messages),
// compares the folder's UIDVALIDITY with its checkpoint, fetches the
// messages above the checkpoint in batches and calls Deliver for each. The
// checkpoint advances only after Deliver returned nil, and a failing
// Deliver is retried, never skipped. Once caught up it waits for new mail
// with IDLE (RFC 2177), or polls when the server has no IDLE, and starts
// over with backoff whenever the connection fails.
//
// Deliver is at-least-once: after a crash, or when UIDVALIDITY changes, the
// same message may be offered again; the deliverer dedupes downstream.
package imapsync

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// Defaults of Config, taken by its zero fields and by its flags.
const (
	// DefaultBatchSize is the default Config.BatchSize.
	DefaultBatchSize = 200
	// DefaultBatchBytes is the default Config.BatchBytes (32 MiB).
	DefaultBatchBytes = 32 << 20
	// DefaultMaxMessageBytes is the default Config.MaxMessageBytes
	// (25 MiB, the limit of the large mail providers).
	DefaultMaxMessageBytes = 25 << 20
	// DefaultPollInterval is the default Config.PollInterval.
	DefaultPollInterval = 30 * time.Second
	// DefaultIdleRefresh is the default Config.IdleRefresh, below the 29
	// minutes after which RFC 2177 allows a server to drop an idle client.
	DefaultIdleRefresh = 25 * time.Minute
	// DefaultDialTimeout is the default Config.DialTimeout.
	DefaultDialTimeout = 30 * time.Second
)

// Config holds the sync settings shared by every mailbox.
type Config struct {
	// BatchSize is the most UIDs fetched by one FETCH command.
	BatchSize int
	// BatchBytes bounds the message bytes held in memory at once: a batch
	// is fetched in parts of about this size (at least one message each).
	BatchBytes int64
	// MaxMessageBytes is the largest message fetched; a larger one is
	// delivered as a Raw with TooLarge set and no body.
	MaxMessageBytes int64
	// PollInterval is how often the folder is checked for new mail when
	// the server has no IDLE, or when ForcePoll is set.
	PollInterval time.Duration
	// IdleRefresh is how long one IDLE command lasts before it is
	// re-issued (and the folder checked).
	IdleRefresh time.Duration
	// ForcePoll polls even when the server offers IDLE.
	ForcePoll bool
	// DialTimeout bounds connecting, TLS handshake included.
	DialTimeout time.Duration
	// Retry is the backoff between reconnections and between attempts of
	// a failing Deliver or checkpoint write. Its MaxAttempts is ignored:
	// a syncer never gives up. Zero means retry.Default().
	Retry retry.Policy
	// Clock is the time source of every wait; nil means the system clock.
	Clock retry.Clock
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.BatchSize, prefix+"imap.batch-size", DefaultBatchSize, "Most messages fetched from an IMAP folder by one FETCH command. Larger batches need fewer round trips; the checkpoint still advances after every message.")
	f.Int64Var(&c.BatchBytes, prefix+"imap.batch-bytes", DefaultBatchBytes, "Message bytes held in memory at once per mailbox while catching up; a batch is fetched in parts of about this size.")
	f.Int64Var(&c.MaxMessageBytes, prefix+"imap.max-message-bytes", DefaultMaxMessageBytes, "Largest message fetched over IMAP, in bytes (RFC822.SIZE). A larger message is not downloaded: it is reported as too large, to be dead-lettered, and the sync moves on.")
	f.DurationVar(&c.PollInterval, prefix+"imap.poll-interval", DefaultPollInterval, "How often a folder is checked for new mail when the IMAP server does not support IDLE (or -imap.force-poll is set).")
	f.DurationVar(&c.IdleRefresh, prefix+"imap.idle-refresh", DefaultIdleRefresh, "How long one IMAP IDLE lasts before it is re-issued; RFC 2177 lets servers drop clients idle for 30 minutes, so keep it below 29m.")
	f.BoolVar(&c.ForcePoll, prefix+"imap.force-poll", false, "Poll every -imap.poll-interval even when the IMAP server supports IDLE (for servers whose IDLE is unreliable).")
	f.DurationVar(&c.DialTimeout, prefix+"imap.dial-timeout", DefaultDialTimeout, "Longest wait to connect to an IMAP server, TLS handshake included.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.AtLeast("imap.batch-size", c.BatchSize, 1)
	ck.Check(c.BatchBytes >= 1<<10, "imap.batch-bytes", fmt.Sprintf("must be at least 1024, got %d", c.BatchBytes), "set a size such as 33554432 (32 MiB)")
	ck.Check(c.MaxMessageBytes >= 1<<10, "imap.max-message-bytes", fmt.Sprintf("must be at least 1024, got %d", c.MaxMessageBytes), "set a size such as 26214400 (25 MiB)")
	ck.Positive("imap.poll-interval", c.PollInterval)
	ck.Positive("imap.idle-refresh", c.IdleRefresh)
	ck.Check(c.IdleRefresh < 29*time.Minute, "imap.idle-refresh", fmt.Sprintf("%s is not below 29m (RFC 2177)", c.IdleRefresh), "set 25m")
	ck.Positive("imap.dial-timeout", c.DialTimeout)
	return ck.Err()
}

// withDefaults fills the zero fields, so that a Config built in code needs
// only what differs from the defaults.
func (c Config) withDefaults() Config {
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.IdleRefresh <= 0 {
		c.IdleRefresh = DefaultIdleRefresh
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Retry == (retry.Policy{}) {
		c.Retry = retry.Default()
	}
	if c.Clock == nil {
		c.Clock = retry.SystemClock{}
	}
	return c
}

// Raw is one message as the IMAP server holds it.
type Raw struct {
	// MailboxID is the mailbox it was read from (events.Mailbox.ID).
	MailboxID string
	// UIDValidity is the folder's UIDVALIDITY when the message was read.
	UIDValidity uint32
	// UID is the message's UID; with UIDValidity it names the message for
	// the folder's lifetime (RFC 9051 2.3.1.1).
	UID uint32
	// InternalDate is when the server received the message.
	InternalDate time.Time
	// Size is the message size the server reports (RFC822.SIZE).
	Size int64
	// Body is the whole message (RFC 5322), nil when TooLarge.
	Body []byte
	// TooLarge says Size exceeds Config.MaxMessageBytes: the body was not
	// fetched and the caller should dead-letter the message. The sync moves
	// past it once Deliver returns nil.
	TooLarge bool
}

// Deliver hands a message on. It returns nil only once the message is
// durable downstream (Kafka acknowledged it); an error makes the syncer
// retry the same message with backoff. It is called from one goroutine per
// syncer, in UID order.
type Deliver func(ctx context.Context, raw Raw) error

// DeliverBatch hands over the messages of one fetched part, in UID order;
// it returns nil once every one of them is safe (see NewBatched).
type DeliverBatch func(ctx context.Context, raws []Raw) error

// Metrics are callbacks through which the caller counts what a syncer does
// (with OpenTelemetry, say). Every field may be nil. They are called from
// the syncer's goroutine and must not block.
type Metrics struct {
	// Fetched counts message bodies downloaded from the server.
	Fetched func(n int)
	// Delivered counts messages Deliver accepted (too large ones included).
	Delivered func(n int)
	// TooLarge counts messages skipped for their size.
	TooLarge func(n int)
	// Lag reports how many messages known on the server are not delivered
	// yet; 0 once caught up.
	Lag func(n int)
	// DeliverErrors counts failed Deliver calls (each is retried).
	DeliverErrors func(n int)
	// Reconnects counts sessions that ended in an error and are retried.
	Reconnects func(n int)
	// UIDValidityChanges counts resyncs caused by a new UIDVALIDITY.
	UIDValidityChanges func(n int)
}

func count(f func(int), n int) {
	if f != nil {
		f(n)
	}
}
