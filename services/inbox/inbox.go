// Package inbox is the service that owns conversations: it stores what
// customers send (consumed from sb.inbound.v1), serves the agents' and
// admins' HTTP API, and publishes what changes through its transactional
// outbox. Nobody else writes its state.
package inbox

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/api"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/commands"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/delivery"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/ingest"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/language"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/notify"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/qualify"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/stream"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/translate"
)

// ConsumerGroup is the inbox's Kafka consumer group.
const ConsumerGroup = "switchboard-inbox"

// RedisPrefix starts every Redis key of the inbox.
const RedisPrefix = "switchboard:inbox:"

// Config holds the inbox settings.
type Config struct {
	// OutboxBatch is the most events the relay publishes at once.
	OutboxBatch int
	// OutboxPoll is the longest the relay waits between looks at the outbox.
	OutboxPoll time.Duration
	// OutboxLinger is how long the relay gathers events before publishing.
	OutboxLinger time.Duration
	// Stream configures GET /v1/stream; zero fields take their defaults.
	Stream stream.Config
	// MaxUploadBytes bounds a file agents upload to attach to replies;
	// 0 means api.DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// CommandRetention is how long the ids of applied commands are kept
	// to recognise one delivered again.
	CommandRetention time.Duration
	// Notify configures the notifications; zero fields take their
	// defaults.
	Notify notify.Config
	// Translate configures translation; zero fields take their defaults.
	Translate translate.Config
	// Limits holds the API's request rates (zero: off), the login delays
	// and audit retention (zero: defaults) and the password policy.
	Limits api.Limits
	// SecureCookies marks the browser session's cookies Secure even on
	// requests that did not come over TLS (behind a proxy that ends TLS):
	// -http.secure-cookies, declared by the binary with the HTTP flags.
	SecureCookies bool
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.OutboxBatch, prefix+"inbox.outbox.batch-size", 500, "Most outbox events the relay publishes to Kafka in one go.")
	f.DurationVar(&c.OutboxPoll, prefix+"inbox.outbox.poll-interval", time.Second, "Longest wait between two looks at the outbox; commits wake the relay at once through LISTEN/NOTIFY, this only bounds the delay when a notification is lost.")
	f.DurationVar(&c.OutboxLinger, prefix+"inbox.outbox.linger", 5*time.Millisecond, "How long the relay gathers the events of several commits before publishing them together; 0 publishes each commit's events at once.")
	f.Int64Var(&c.MaxUploadBytes, prefix+"inbox.max-upload-bytes", api.DefaultMaxUploadBytes, "Largest file, in bytes, an agent may upload to attach to a reply (POST /v1/attachments); larger ones get 413. It replaces -http.max-body-bytes for that route only. Keep it within what the mailboxes' SMTP servers accept, base64 making a message a third larger.")
	f.DurationVar(&c.CommandRetention, prefix+"inbox.commands.retention", 7*24*time.Hour, "How long the inbox remembers the ids of the commands it applied (from the scheduler and the router on sb.inbox.commands.v1), so that a command delivered again is not applied twice. Keep it at least as long as the topic's retention.")
	f.DurationVar(&c.Notify.EmailInterval, prefix+"inbox.notify.email-interval", notify.DefaultEmailInterval, "Least time between two notification emails to a user about one conversation (sent while they are not connected); what happens in between is in the app only.")
	f.DurationVar(&c.Notify.MaxAge, prefix+"inbox.notify.max-age", notify.DefaultMaxAge, "Conversation events older than this notify nobody: the notifier's consumer group, when new, reads sb.conversations.v1 from its start.")
	c.Stream.RegisterFlags(prefix, f)
	c.Translate.RegisterFlags(prefix, f)
	c.Limits.RegisterFlags(prefix, f)
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.AtLeast("inbox.outbox.batch-size", c.OutboxBatch, 1)
	ck.Positive("inbox.outbox.poll-interval", c.OutboxPoll)
	ck.Check(c.CommandRetention >= time.Hour, "inbox.commands.retention", fmt.Sprintf("%s is less than an hour", c.CommandRetention), "set at least the retention of sb.inbox.commands.v1, such as 168h")
	ck.Check(c.MaxUploadBytes >= 0, "inbox.max-upload-bytes", fmt.Sprintf("must be at least 0, got %d", c.MaxUploadBytes), "set a size in bytes such as 20971520")
	ck.Positive("inbox.notify.email-interval", c.Notify.EmailInterval)
	ck.Positive("inbox.notify.max-age", c.Notify.MaxAge)
	ck.Check(c.OutboxLinger >= 0 && c.OutboxLinger < c.OutboxPoll, "inbox.outbox.linger", fmt.Sprintf("%s must be at least 0 and below -inbox.outbox.poll-interval", c.OutboxLinger), "set a few milliseconds, such as 5ms")
	return errors.Join(ck.Err(), c.Stream.Validate(prefix), c.Translate.Validate(prefix), c.Limits.Validate(prefix))
}

// Deps are what the inbox runs on.
type Deps struct {
	// Pool is the PostgreSQL pool; the inbox uses the inbox schema.
	Pool *pgxpool.Pool
	// Bus configures the consumer.
	Bus bus.Config
	// Brokers are the Kafka brokers the stream hub reads
	// sb.conversations.v1 from, outside any consumer group.
	Brokers []string
	// Producer publishes outbox events and dead letters.
	Producer *bus.Producer
	// Redis holds assignment locks and presence.
	Redis *goredis.Client
	// RedisPrefix starts the inbox's Redis keys; empty means RedisPrefix.
	RedisPrefix string
	// Presence keeps agents' heartbeats, shared with the router; nil
	// means one under RedisPrefix with redis.DefaultPresenceWindow.
	Presence *redis.Presence
	// Router receives the API routes.
	Router api.Router
	// Console serves the web console at "/" on the Router, beside the
	// API; nil serves none.
	Console http.Handler
	// Blobs keeps message attachments.
	Blobs blob.Store
	// Telemetry gives logs, traces and metrics.
	Telemetry *telemetry.Telemetry
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
	// Egress decides which tenant-entered URLs (chat channels' endpoints)
	// the admin API accepts: the operator's allow-list (-egress.allow,
	// -egress.allow-http). nil accepts public https URLs only.
	Egress *egress.Policy
	// EgressClient calls tenant-entered URLs (the tenants' translators),
	// refusing addresses inside the network the operator did not allow;
	// nil means one with the default limits that reaches public https
	// URLs only. Its policy stands for Egress when that is nil.
	EgressClient *egress.Client
	// Secrets seal the secrets the inbox stores and announces (channel
	// credentials, translator API keys) and open the translators' keys;
	// required (docs/adr/0022).
	Secrets *seal.Keyring
}

// Service is the running inbox.
type Service struct {
	store     *store.Store
	consumer  *bus.Consumer
	qualifier *bus.Consumer
	// deliveries applies what channels say of sent messages.
	deliveries *bus.Consumer
	// commands applies what the scheduler and the router ask.
	commands *bus.Consumer
	// notifier tells users of what awaits them.
	notifier *bus.Consumer
	// translations queues the translation of customer messages, and
	// translator translates them.
	translations *bus.Consumer
	translator   *translate.Worker
	// prune forgets applied command ids past their retention.
	prune lifecycle.Service
	relay *outbox.Relay
	// stream serves GET /v1/stream from sb.conversations.v1.
	stream *stream.Hub
	redis  *goredis.Client
	log    *slog.Logger
}

// New migrates the schema, announces the configuration to the connectors
// and registers the API. Run starts consuming.
func New(ctx context.Context, cfg Config, d Deps) (*Service, error) {
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	if d.RedisPrefix == "" {
		d.RedisPrefix = RedisPrefix
	}
	if d.Blobs == nil {
		return nil, errors.New("inbox: Deps.Blobs is required: attachments are served from and uploaded to it")
	}
	if d.Secrets == nil {
		return nil, errors.New("inbox: Deps.Secrets is required: channel secrets are stored and announced sealed")
	}
	if d.Presence == nil {
		d.Presence = redis.NewPresence(d.Redis, d.RedisPrefix, redis.DefaultPresenceWindow, d.Clock)
	}
	log := d.Telemetry.Component("inbox")
	s := store.New(d.Pool, d.Secrets)
	if err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	n, err := s.AnnounceConfig(ctx, d.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("announce configuration: %w", err)
	}
	if n.Sealed > 0 {
		log.Warn("secrets stored in clear by an earlier version were sealed; they may still be on sb.config.v1 in clear until the broker compacts it, and in older database backups: change them at their providers",
			"secrets", n.Sealed, "key", d.Secrets.Active())
	}
	log.Info("configuration announced", "chat_channels", n.ChatChannels, "mailboxes", n.Mailboxes, "sms_accounts", n.SMSAccounts, "automation", n.Automation)

	languages := language.New()
	h, err := ingest.New(s, log, d.Telemetry.Tracer.Tracer("switchboard/inbox"), d.Telemetry.Meter.Meter("switchboard/inbox"), d.Clock, languages.Detect)
	if err != nil {
		return nil, err
	}
	consumer, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: ConsumerGroup, Topics: []string{events.TopicInbound}, Clock: d.Clock}, h.Handle, d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}
	qualifier, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: qualify.ConsumerGroup, Topics: []string{events.TopicConversations}, Clock: d.Clock},
		qualify.New(s, languages, d.Clock, func() bool { return consumer.Busy(250 * time.Millisecond) }).Handle, d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}
	deliveries, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: delivery.ConsumerGroup, Topics: []string{events.TopicDelivery}, Clock: d.Clock},
		delivery.New(s).Handle, d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}
	ch, err := commands.New(s, d.Clock, log, d.Telemetry.Meter.Meter("switchboard/inbox"))
	if err != nil {
		return nil, err
	}
	cmds, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: commands.ConsumerGroup, Topics: []string{events.TopicCommands}, Clock: d.Clock},
		ch.Handle, d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}
	notifier, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: notify.ConsumerGroup, Topics: []string{events.TopicConversations}, Clock: d.Clock},
		notify.New(cfg.Notify, s, d.Presence, d.Clock, d.Telemetry.Component("notify")).Handle, d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}
	if d.Egress == nil && d.EgressClient != nil {
		d.Egress = d.EgressClient.Policy()
	}
	if d.EgressClient == nil {
		if d.EgressClient, err = egress.New(defaultEgress(), egress.Deps{}); err != nil {
			return nil, err
		}
	}
	translator := translate.NewWorker(cfg.Translate, s, d.EgressClient, languages.Detect, d.Clock, d.Telemetry.Component("translate"))
	translations, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: translate.ConsumerGroup, Topics: []string{events.TopicConversations}, Clock: d.Clock},
		translator.Handle, d.Producer, d.Telemetry)
	if err != nil {
		return nil, err
	}
	retention := cfg.CommandRetention
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	limits := cfg.Limits.WithDefaults()
	prune := lifecycle.ServiceFunc(func(ctx context.Context) error {
		for {
			if n, err := s.PruneAppliedCommands(ctx, d.Clock.Now().Add(-retention)); err != nil {
				if ctx.Err() == nil {
					log.Warn("cannot prune applied commands; trying again later", "error", err)
				}
			} else if n > 0 {
				log.Info("pruned applied commands", "count", n)
			}
			if n, err := s.PruneLoginAudit(ctx, d.Clock.Now().Add(-limits.AuditRetention)); err != nil {
				if ctx.Err() == nil {
					log.Warn("cannot prune the login audit; trying again later", "error", err)
				}
			} else if n > 0 {
				log.Info("pruned the login audit", "count", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-d.Clock.After(time.Hour):
			}
		}
	})
	relay, err := s.Outbox().Relay(d.Pool, d.Producer, d.Telemetry, outbox.RelayOptions{BatchSize: cfg.OutboxBatch, PollInterval: cfg.OutboxPoll, Linger: cfg.OutboxLinger, Clock: d.Clock})
	if err != nil {
		return nil, err
	}
	hubKafka := d.Bus
	hubKafka.Brokers = d.Brokers
	hub, err := stream.New(hubKafka, cfg.Stream, d.Telemetry, d.Clock)
	if err != nil {
		return nil, err
	}
	var rates *ratelimit.Limiter
	var logins *ratelimit.Backoff
	if d.Redis != nil {
		if rates, err = ratelimit.NewLimiter(d.Redis, d.RedisPrefix, "api", d.Telemetry, d.Clock); err != nil {
			return nil, err
		}
		if logins, err = ratelimit.NewBackoff(d.Redis, d.RedisPrefix, "login", d.Telemetry, d.Clock); err != nil {
			return nil, err
		}
	}
	api.New(api.Deps{
		Store:             s,
		Locker:            redis.NewLocker(d.Redis, d.RedisPrefix, d.Clock),
		Presence:          d.Presence,
		Languages:         languages,
		Clock:             d.Clock,
		Log:               log,
		Stream:            hub,
		Blobs:             d.Blobs,
		MaxUploadBytes:    cfg.MaxUploadBytes,
		Egress:            d.Egress,
		TranslationClient: d.EgressClient,
		Translation:       cfg.Translate,
		WakeTranslations:  translator.Wake,
		Rates:             rates,
		Logins:            logins,
		Limits:            limits,
		SecureCookies:     cfg.SecureCookies,
	}).Register(d.Router)
	if d.Console != nil {
		// The most general GET pattern: every route of the API, and of
		// the connectors on the same server, is more specific.
		d.Router.HandleFunc("GET /", d.Console.ServeHTTP)
	}
	return &Service{store: s, consumer: consumer, qualifier: qualifier, deliveries: deliveries, commands: cmds, notifier: notifier, translations: translations, translator: translator, prune: prune,
		relay: relay, stream: hub, redis: d.Redis, log: log}, nil
}

// Run consumes inbound messages, delivery reports and commands, notifies
// users, and relays the outbox until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	return lifecycle.RunAll(ctx, s.consumer, s.qualifier, s.deliveries, s.commands, s.notifier, s.translations, s.translator, s.prune, s.relay, s.stream)
}

// defaultEgress is the egress client's setting when the caller gives
// none: the flags' defaults, public https URLs only.
func defaultEgress() egress.Config {
	var c egress.Config
	f := flag.NewFlagSet("egress", flag.ContinueOnError)
	c.RegisterFlags("", f)
	return c
}

// Ready reports whether the inbox consumes and reaches its database and
// Redis.
func (s *Service) Ready(ctx context.Context) error {
	if err := s.consumer.Ready(ctx); err != nil {
		return err
	}
	if err := s.commands.Ready(ctx); err != nil {
		return err
	}
	if err := s.stream.Ready(ctx); err != nil {
		return err
	}
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if s.redis != nil {
		if err := s.redis.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}
