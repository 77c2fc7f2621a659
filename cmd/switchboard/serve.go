package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/connectors/chat"
	"github.com/switchboard-oss/switchboard/connectors/email"
	"github.com/switchboard-oss/switchboard/connectors/sms"
	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/embedded"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/router"
	"github.com/switchboard-oss/switchboard/services/scheduler"
	"github.com/switchboard-oss/switchboard/web/console"
)

// envAliases are the conventional variables read besides the SB_ ones.
func envAliases() config.Aliases {
	return config.Aliases{
		"database.url":  "DATABASE_URL",
		"redis.url":     "REDIS_URL",
		"kafka.brokers": "KAFKA_BROKERS",
		"otel.endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",

		"blob.s3.access-key": "AWS_ACCESS_KEY_ID",
		"blob.s3.secret-key": "AWS_SECRET_ACCESS_KEY",
		"blob.s3.region":     "AWS_REGION",
	}
}

// Config is every setting of a serving process.
type Config struct {
	Targets            config.StringList
	DataDir            string
	EmbeddedPort       int
	EmbeddedPartitions int
	EmbeddedKeep       int64
	EmbeddedTrim       time.Duration
	StopTimeout        time.Duration

	Telemetry telemetry.Config
	HTTP      httpx.Config
	Database  pg.Config
	Bus       bus.Config
	Redis     redis.Config
	Blob      blob.Config
	// Egress is the operator's policy on tenant-entered URLs: the inbox
	// checks chat endpoints against it when they are saved.
	Egress    egress.Config
	Inbox     inbox.Config
	Scheduler scheduler.Config
	Router    router.Config
	// PresenceWindow is how long an agent's heartbeat keeps them present,
	// for the inbox (which records heartbeats) and the router.
	PresenceWindow time.Duration
	Chat           chat.Config
	Email          email.Config
	SMS            sms.Config
	// Secrets are the keys that seal the channels' secrets (see
	// secrets.go).
	Secrets seal.Config
}

// RegisterFlags declares every flag.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	c.Targets = config.StringList{lifecycle.TargetAll}
	f.Var(&c.Targets, "target", "Components to run, comma-separated: all (everything in one process), or any of inbox, router, scheduler, chat, email, sms. Each target is also a Deployment of its own in the Helm chart.")
	f.StringVar(&c.DataDir, "data-dir", "switchboard-data", "Directory of the process's local data: the embedded Kafka's log and offsets (with -target=all and no -kafka.brokers), and message attachments unless -blob.dir or -blob.s3.endpoint is set.")
	f.IntVar(&c.EmbeddedPort, "kafka.embedded-port", 0, "Loopback port of the embedded Kafka broker, 0 for any free port; set one to inspect the topics with Kafka tools.")
	f.IntVar(&c.EmbeddedPartitions, "kafka.embedded-partitions", 0, "Partitions of each multi-partition topic in the embedded broker, when it creates them; 0 means one per CPU, at least 2. One process has few cores: fewer partitions make bigger batches and fewer database transactions than a cluster's counts would. A real cluster gets the production counts from `switchboard admin create-topics`.")
	f.Int64Var(&c.EmbeddedKeep, "kafka.embedded-keep-records", 1000, "Records the embedded broker keeps in each partition beyond what every consumer reading it has committed. Its log lives in memory: the broker deletes what all consumers have handled every -kafka.embedded-trim-interval, never what one of them has not (a stopped inbox loses nothing), and never touches sb.config.v1 (compacted) or sb.dlq.v1. -1 keeps everything, and memory then grows with every message.")
	f.DurationVar(&c.EmbeddedTrim, "kafka.embedded-trim-interval", 30*time.Second, "How often the embedded broker deletes the records every consumer has handled (see -kafka.embedded-keep-records).")
	f.DurationVar(&c.StopTimeout, "shutdown.component-timeout", 30*time.Second, "At shutdown, longest wait for each component to drain and stop before moving on.")
	c.Telemetry.RegisterFlags("", f)
	c.HTTP.RegisterFlags("", f)
	c.Database.RegisterFlags("", f)
	c.Bus.RegisterFlags("", f)
	c.Redis.RegisterFlags("", f)
	c.Blob.RegisterFlags("", f)
	c.Egress.RegisterFlags("", f)
	c.Inbox.RegisterFlags("", f)
	c.Scheduler.RegisterFlags("", f)
	c.Router.RegisterFlags("", f)
	f.BoolVar(&c.Inbox.SecureCookies, "http.secure-cookies", false, "Mark the web console's session cookies Secure (sent over https only) even on requests that come in plain HTTP, and expect the console's https origin: set it when a proxy or load balancer in front ends TLS. Over TLS they are Secure anyway.")
	f.DurationVar(&c.PresenceWindow, "presence.window", redis.DefaultPresenceWindow, "How long an agent's heartbeat keeps them present. Clients beat every third of it (an open GET /v1/stream beats for them); an agent silent for a window is taken as gone within half a window more, and their pending offers go to someone else. Set the same value on the inbox and the router.")
	c.Chat.RegisterFlags("", f)
	c.Email.RegisterFlags("", f)
	c.SMS.RegisterFlags("", f)
	c.Secrets.RegisterFlags("", f)
}

// embedded reports whether the embedded Kafka and Redis may stand in.
func (c *Config) allInOne() bool { return slices.Contains(c.Targets, lifecycle.TargetAll) }

// Validate checks every setting.
func (c *Config) Validate() error {
	errs := []error{
		c.Telemetry.Validate(""),
		c.HTTP.Validate(""),
		c.Database.Validate(""),
		c.Bus.Validate(""),
		c.Redis.Validate(""),
		c.Blob.Validate(""),
		c.Egress.Validate(""),
		c.Inbox.Validate(""),
		c.Scheduler.Validate(""),
		c.Router.Validate(""),
		c.Chat.Validate(""),
		c.Email.Validate(""),
		c.SMS.Validate(""),
		c.Secrets.Validate(""),
	}
	if !c.allInOne() && len(c.Bus.Brokers) == 0 {
		errs = append(errs, config.Invalid("kafka.brokers", "is empty, and the embedded broker only runs with -target=all", "set KAFKA_BROKERS to your Kafka cluster, such as kafka-0:9092,kafka-1:9092"))
	}
	if len(c.Bus.Brokers) == 0 && (c.Bus.TLS.Enabled || c.Bus.SASL.Mechanism != "") {
		name := "kafka.tls.enabled"
		if !c.Bus.TLS.Enabled {
			name = "kafka.sasl.mechanism"
		}
		errs = append(errs, config.Invalid(name, "is set without -kafka.brokers, and the embedded broker speaks plaintext on the loopback only",
			"set KAFKA_BROKERS to the secured cluster, or remove the -kafka.tls and -kafka.sasl settings"))
	}
	if !c.allInOne() && c.Redis.URL == "" {
		errs = append(errs, config.Invalid("redis.url", "is empty, and the embedded Redis only runs with -target=all", "set REDIS_URL, such as redis://redis:6379/0"))
	}
	if c.PresenceWindow < time.Second || c.PresenceWindow > 10*time.Minute {
		errs = append(errs, config.Invalid("presence.window", fmt.Sprintf("%s is outside 1s to 10m", c.PresenceWindow), "set 30s"))
	}
	if c.EmbeddedPartitions < 0 {
		errs = append(errs, config.Invalid("kafka.embedded-partitions", fmt.Sprintf("must not be negative, got %d", c.EmbeddedPartitions), "set 0 for one per CPU"))
	}
	if c.EmbeddedKeep < -1 {
		errs = append(errs, config.Invalid("kafka.embedded-keep-records", fmt.Sprintf("must be -1 or more, got %d", c.EmbeddedKeep), "set 1000, or -1 to keep every record"))
	}
	if c.EmbeddedTrim < time.Second {
		errs = append(errs, config.Invalid("kafka.embedded-trim-interval", fmt.Sprintf("%s is shorter than 1s", c.EmbeddedTrim), "set 30s"))
	}
	if slices.Contains(c.Targets, modSMS) && c.SMS.PublicBaseURL == "" {
		errs = append(errs, config.Invalid("sms.public-base-url", "is empty, and Twilio's webhooks are signed for the URL Twilio calls", "set SB_SMS_PUBLIC_BASE_URL to the https URL of this service as Twilio reaches it, such as https://switchboard.example.com"))
	}
	if c.allInOne() && len(c.Targets) > 1 {
		errs = append(errs, config.Invalid("target", "all cannot be combined with other targets", "set -target=all, or list the targets you want"))
	}
	return errors.Join(errs...)
}

func serve(ctx context.Context, args []string, env func(string) (string, bool), stderr io.Writer) int {
	f := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	f.SetOutput(stderr)
	var cfg Config
	cfg.RegisterFlags(f)
	f.Usage = func() {
		fmt.Fprintf(stderr, "Usage: switchboard [flags]\n       switchboard admin <command> [flags]\n\nEvery flag can also be set with the SB_ environment variable named after it\n(-kafka.brokers: SB_KAFKA_BROKERS).\n\nFlags:\n")
		f.PrintDefaults()
	}
	if err := config.Load(f, args, env, envAliases()); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return usageError(stderr, err)
	}
	if err := cfg.Validate(); err != nil {
		return usageError(stderr, err)
	}

	tel, err := telemetry.New(ctx, cfg.Telemetry, "switchboard", version(), stderr)
	if err != nil {
		return usageError(stderr, err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()
	log := tel.Component("main")
	keys, err := serveKeyring(cfg, log)
	if err != nil {
		return usageError(stderr, err)
	}

	m := lifecycle.New(tel.Component("lifecycle"), cfg.StopTimeout)
	srv := httpx.NewServer(cfg.HTTP, tel, m.Ready)
	a := &app{cfg: cfg, tel: tel, server: srv, keys: keys}
	if err := a.register(m); err != nil {
		log.Error("cannot assemble the components", "error", err)
		return exitFailed
	}
	if _, err := m.Resolve(cfg.Targets); err != nil {
		return usageError(stderr, err)
	}
	if err := m.Run(ctx, cfg.Targets); err != nil {
		log.Error("switchboard stopped with an error", "error", err)
		// Also as plain text, last, for the person at the terminal.
		fmt.Fprintf(stderr, "switchboard: %v\n", err)
		return exitFailed
	}
	log.Info("switchboard stopped")
	return exitOK
}

// app holds what the modules build, for the modules that need it. Only
// this package imports every service and connector.
type app struct {
	cfg    Config
	tel    *telemetry.Telemetry
	server *httpx.Server
	// keys seal and open the channels' secrets; nil when no target run
	// uses them.
	keys *seal.Keyring

	pool     *pgxpool.Pool
	brokers  []string
	producer *bus.Producer
	redis    *goredis.Client
	blobs    blob.Store
}

// Module names.
const (
	modServer   = "server"
	modDatabase = "database"
	modKafka    = "kafka"
	modProducer = "producer"
	modRedis    = "redis"
	modInbox    = "inbox"
	modSched    = "scheduler"
	modRouter   = "router"
	modChat     = "chat"
	modEmail    = "email"
	modBlobs    = "blobs"
	modSMS      = "sms"
)

func (a *app) register(m *lifecycle.Manager) error {
	mods := []lifecycle.Module{
		{Name: modServer, Ingress: true, Init: a.initServer},
		{Name: modDatabase, Init: a.initDatabase},
		{Name: modKafka, Init: a.initKafka},
		{Name: modProducer, Deps: []string{modKafka}, Init: a.initProducer},
		{Name: modRedis, Init: a.initRedis},
		// The database first: when it is unreachable, nothing else starts.
		{Name: modInbox, Target: true, Deps: []string{modDatabase, modRedis, modProducer, modServer, modBlobs}, Init: a.initInbox},
		{Name: modSched, Target: true, Deps: []string{modDatabase, modProducer, modServer}, Init: a.initScheduler},
		{Name: modRouter, Target: true, Deps: []string{modDatabase, modRedis, modProducer, modServer}, Init: a.initRouter},
		{Name: modChat, Target: true, Deps: []string{modDatabase, modRedis, modServer, modProducer}, Init: a.initChat},
		{Name: modBlobs, Init: a.initBlobs},
		{Name: modEmail, Target: true, Deps: []string{modDatabase, modProducer, modBlobs, modServer}, Init: a.initEmail},
		{Name: modSMS, Target: true, Deps: []string{modDatabase, modRedis, modProducer, modBlobs, modServer}, Init: a.initSMS},
	}
	for _, mod := range mods {
		if err := m.Register(mod); err != nil {
			return err
		}
	}
	return nil
}

func (a *app) initServer(context.Context) (lifecycle.Service, error) {
	if err := a.server.Listen(); err != nil {
		return nil, err
	}
	return a.server, nil
}

func (a *app) initDatabase(ctx context.Context) (lifecycle.Service, error) {
	pool, err := pg.Connect(ctx, a.cfg.Database)
	if err != nil {
		return nil, err
	}
	a.pool = pool
	return lifecycle.Idle(func() error { pool.Close(); return nil }), nil
}

func (a *app) initKafka(ctx context.Context) (lifecycle.Service, error) {
	if len(a.cfg.Bus.Brokers) > 0 {
		a.brokers = a.cfg.Bus.Brokers
		return nil, a.checkKafka(ctx)
	}
	dir := filepath.Join(a.cfg.DataDir, "kafka")
	partitions := a.cfg.EmbeddedPartitions
	if partitions == 0 {
		partitions = max(2, runtime.NumCPU())
	}
	topics := events.Topics()
	for i := range topics {
		if topics[i].Partitions > 1 {
			topics[i].Partitions = partitions
		}
	}
	k, err := embedded.StartKafka(dir, a.cfg.EmbeddedPort, topics, a.tel.Component("kafka"))
	if err != nil {
		return nil, err
	}
	a.brokers = k.Brokers()
	log := a.tel.Component("kafka")
	if a.cfg.EmbeddedKeep < 0 {
		log.Info("embedded Kafka started; it keeps every record in memory (-kafka.embedded-keep-records=-1): for trying only, for production set KAFKA_BROKERS", "addr", strings.Join(a.brokers, ","), "data_dir", dir)
		return lifecycle.Idle(func() error { k.Close(); return nil }), nil
	}
	log.Info("embedded Kafka started; it deletes what every consumer has handled, keeping the last records of each partition: for trying, for production set KAFKA_BROKERS",
		"addr", strings.Join(a.brokers, ","), "data_dir", dir, "keep_records", a.cfg.EmbeddedKeep, "trim_interval", a.cfg.EmbeddedTrim)
	return lifecycle.ServiceFunc(func(ctx context.Context) error {
		k.TrimLoop(ctx, topics, a.cfg.EmbeddedKeep, a.cfg.EmbeddedTrim)
		k.Close()
		return nil
	}), nil
}

// checkKafka connects to the brokers once, as every component will. A
// setting that cannot work (an untrusted certificate, a refused password)
// stops the start with an error naming it, rather than leaving every
// consumer to retry it forever; brokers that do not answer yet only get a
// warning, as the components wait for them.
func (a *app) checkKafka(ctx context.Context) error {
	log := a.tel.Component("kafka")
	cfg := a.cfg.Bus
	if strings.EqualFold(cfg.SASL.Mechanism, bus.MechanismPlain) && !cfg.TLS.Enabled {
		log.Warn("SASL plain without TLS sends the Kafka password unencrypted; set -kafka.tls.enabled=true")
	}
	ctx, cancel := context.WithTimeout(ctx, kafkaCheckTimeout)
	defer cancel()
	err := cfg.Check(ctx)
	var invalid *config.Error
	switch {
	case errors.As(err, &invalid):
		return err
	case err != nil:
		log.Warn("Kafka does not answer yet; the components keep trying", "brokers", strings.Join(cfg.Brokers, ","), "error", err)
	default:
		log.Info("Kafka answered", "brokers", strings.Join(cfg.Brokers, ","), "tls", cfg.TLS.Enabled, "sasl", strings.ToLower(cfg.SASL.Mechanism))
	}
	return nil
}

// kafkaCheckTimeout bounds checkKafka.
const kafkaCheckTimeout = 15 * time.Second

func (a *app) initProducer(context.Context) (lifecycle.Service, error) {
	cfg := a.cfg.Bus
	cfg.Brokers = a.brokers
	a.cfg.Bus = cfg
	p, err := bus.NewProducer(cfg, a.tel)
	if err != nil {
		return nil, err
	}
	a.producer = p
	return lifecycle.Idle(p.Close), nil
}

func (a *app) initRedis(ctx context.Context) (lifecycle.Service, error) {
	cfg := a.cfg.Redis
	var closeEmbedded func()
	if cfg.URL == "" {
		r, err := embedded.StartRedis()
		if err != nil {
			return nil, err
		}
		cfg.URL, closeEmbedded = r.URL(), r.Close
		a.tel.Component("redis").Info("embedded Redis started; for production set REDIS_URL", "url", cfg.URL)
	}
	rdb, err := redis.Connect(ctx, cfg)
	if err != nil {
		if closeEmbedded != nil {
			closeEmbedded()
		}
		return nil, err
	}
	a.redis = rdb
	return lifecycle.Idle(func() error {
		err := rdb.Close()
		if closeEmbedded != nil {
			closeEmbedded()
		}
		return err
	}), nil
}

func (a *app) initInbox(ctx context.Context) (lifecycle.Service, error) {
	policy, err := egress.NewPolicy(a.cfg.Egress)
	if err != nil {
		return nil, err
	}
	// Translators are tenant-entered URLs too.
	client, err := egress.New(a.cfg.Egress, egress.Deps{})
	if err != nil {
		return nil, err
	}
	ui := console.Handler(console.Options{})
	if !console.Built(ui) {
		a.tel.Component("inbox").Warn("the web console is not built: / serves a page saying so; run make console, then build again")
	}
	return inbox.New(ctx, a.cfg.Inbox, inbox.Deps{
		Console:      ui,
		Pool:         a.pool,
		Bus:          a.cfg.Bus,
		Brokers:      a.brokers,
		Producer:     a.producer,
		Redis:        a.redis,
		Presence:     a.presence(),
		Router:       a.server,
		Blobs:        a.blobs,
		Telemetry:    a.tel,
		Egress:       policy,
		EgressClient: client,
		Secrets:      a.keys,
	})
}

// presence is where agents' heartbeats live, for the inbox and the router.
func (a *app) presence() *redis.Presence {
	return redis.NewPresence(a.redis, redis.PresencePrefix, a.cfg.PresenceWindow, nil)
}

func (a *app) initRouter(ctx context.Context) (lifecycle.Service, error) {
	return router.New(ctx, a.cfg.Router, router.Deps{
		Pool:      a.pool,
		Redis:     a.redis,
		Presence:  a.presence(),
		Bus:       a.cfg.Bus,
		Producer:  a.producer,
		Telemetry: a.tel,
	})
}

func (a *app) initScheduler(ctx context.Context) (lifecycle.Service, error) {
	return scheduler.New(ctx, a.cfg.Scheduler, scheduler.Deps{
		Pool:      a.pool,
		Bus:       a.cfg.Bus,
		Producer:  a.producer,
		Telemetry: a.tel,
	})
}

func (a *app) initChat(ctx context.Context) (lifecycle.Service, error) {
	// Deliveries go to tenant-entered URLs: through the client that
	// refuses private and metadata addresses the operator did not allow.
	client, err := egress.New(a.cfg.Egress, egress.Deps{})
	if err != nil {
		return nil, err
	}
	limiter, err := ratelimit.NewLimiter(a.redis, "switchboard:chat:", "chat", a.tel, nil)
	if err != nil {
		return nil, err
	}
	return chat.New(ctx, a.cfg.Chat, chat.Deps{
		Pool:      a.pool,
		Bus:       a.cfg.Bus,
		Brokers:   a.brokers,
		Producer:  a.producer,
		Router:    a.server,
		Telemetry: a.tel,
		Client:    client,
		Limiter:   limiter,
		Secrets:   a.keys,
	})
}

func (a *app) initEmail(ctx context.Context) (lifecycle.Service, error) {
	return email.New(ctx, a.cfg.Email, email.Deps{
		Pool:      a.pool,
		Bus:       a.cfg.Bus,
		Brokers:   a.brokers,
		Producer:  a.producer,
		Blobs:     a.blobs,
		Telemetry: a.tel,
		Secrets:   a.keys,
	})
}

func (a *app) initBlobs(ctx context.Context) (lifecycle.Service, error) {
	s, closeFn, err := blob.Open(ctx, a.cfg.Blob, filepath.Join(a.cfg.DataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	a.blobs = s
	return lifecycle.Idle(closeFn), nil
}

func (a *app) initSMS(ctx context.Context) (lifecycle.Service, error) {
	cfg := a.cfg.SMS
	if cfg.PublicBaseURL == "" && a.cfg.allInOne() {
		// One process on a laptop: Twilio cannot reach it anyway, and the
		// webhooks are signed for the address it listens on.
		host, port, err := net.SplitHostPort(a.cfg.HTTP.Addr)
		if err != nil {
			return nil, fmt.Errorf("sms: -http.addr %q: %w", a.cfg.HTTP.Addr, err)
		}
		if host == "" {
			host = "localhost"
		}
		cfg.PublicBaseURL = "http://" + net.JoinHostPort(host, port)
		a.tel.Component("sms").Info("no -sms.public-base-url: Twilio webhooks are checked against the local address; set it to the URL Twilio calls", "url", cfg.PublicBaseURL)
	}
	limiter, err := ratelimit.NewLimiter(a.redis, "switchboard:sms:", "sms", a.tel, nil)
	if err != nil {
		return nil, err
	}
	return sms.New(ctx, cfg, sms.Deps{
		Pool:      a.pool,
		Bus:       a.cfg.Bus,
		Brokers:   a.brokers,
		Producer:  a.producer,
		Router:    a.server,
		Blobs:     a.blobs,
		Telemetry: a.tel,
		Limiter:   limiter,
		Secrets:   a.keys,
	})
}
