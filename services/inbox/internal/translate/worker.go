package translate

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// ConsumerGroup is the translation worker's consumer group on
// sb.conversations.v1.
const ConsumerGroup = "switchboard-inbox-translate"

// MaxAge is the age past which a customer's message is not translated on
// its own (on demand only).
const MaxAge = 24 * time.Hour

// Defaults of Config, also used for its zero fields.
const (
	DefaultTimeout      = 20 * time.Second
	DefaultReplyTimeout = 5 * time.Second
	DefaultAttempts     = 5
	DefaultBackoff      = 5 * time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultPoll         = time.Second
	DefaultConcurrency  = 4
)

// Config holds the translation settings.
type Config struct {
	// Timeout bounds one call translating a customer's message.
	Timeout time.Duration
	// ReplyTimeout bounds the call translating a reply, which the agent
	// waits for.
	ReplyTimeout time.Duration
	// Attempts is how often a customer's message is tried before its
	// translation fails.
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each next one up to MaxBackoff.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Poll is the longest wait between two looks for due translations.
	Poll time.Duration
	// Concurrency is how many translations one replica runs at once.
	Concurrency int
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.Timeout, prefix+"inbox.translate.timeout", DefaultTimeout, "Longest time one call to a tenant's translator may take to translate a customer's message (in the background: ingestion never waits for it); also bounded by -egress.request-timeout.")
	f.DurationVar(&c.ReplyTimeout, prefix+"inbox.translate.reply-timeout", DefaultReplyTimeout, "Longest time the translation of a reply may take (POST /v1/conversations/{id}/reply with translate or translate_to): past it the reply is refused with 503, or sent as written when the request says fallback original.")
	f.IntVar(&c.Attempts, prefix+"inbox.translate.attempts", DefaultAttempts, "Attempts at translating a customer's message before its translation is marked failed; a translator that refuses the request (4xx) fails it at once.")
	f.DurationVar(&c.Backoff, prefix+"inbox.translate.backoff", DefaultBackoff, "Wait before trying a failed translation again, doubled after each failure up to -inbox.translate.max-backoff.")
	f.DurationVar(&c.MaxBackoff, prefix+"inbox.translate.max-backoff", DefaultMaxBackoff, "Longest wait between two attempts at a translation.")
	f.DurationVar(&c.Poll, prefix+"inbox.translate.poll-interval", DefaultPoll, "Longest wait between two looks for translations due; a message queued by this replica wakes it at once.")
	f.IntVar(&c.Concurrency, prefix+"inbox.translate.concurrency", DefaultConcurrency, "Translations each inbox replica runs at once.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.Positive("inbox.translate.timeout", c.Timeout)
	ck.Positive("inbox.translate.reply-timeout", c.ReplyTimeout)
	ck.AtLeast("inbox.translate.attempts", c.Attempts, 1)
	ck.Positive("inbox.translate.backoff", c.Backoff)
	ck.Check(c.MaxBackoff >= c.Backoff, "inbox.translate.max-backoff", fmt.Sprintf("%s is shorter than -%sinbox.translate.backoff (%s)", c.MaxBackoff, prefix, c.Backoff), "set it at least as long as the backoff")
	ck.Positive("inbox.translate.poll-interval", c.Poll)
	ck.AtLeast("inbox.translate.concurrency", c.Concurrency, 1)
	return ck.Err()
}

// WithDefaults fills the zero fields, for callers that build a Config by
// hand (tests) rather than from flags.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Timeout, DefaultTimeout)
	def(&c.ReplyTimeout, DefaultReplyTimeout)
	def(&c.Backoff, DefaultBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.Poll, DefaultPoll)
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = c.Backoff
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// Worker translates customer messages behind ingestion: Handle (a
// consumer of the inbox's own message events) queues those no reader of
// the conversation reads, and Run translates the queue, trying again with
// backoff, and records each outcome. Ingestion never waits for either.
type Worker struct {
	cfg    Config
	store  *store.Store
	client Doer
	detect func(string) string
	clock  retry.Clock
	log    *slog.Logger
	wake   chan struct{}
}

// NewWorker builds the worker; client makes the calls (an
// *egress.Client), detect tells a text's language.
func NewWorker(cfg Config, s *store.Store, client Doer, detect func(string) string, clock retry.Clock, log *slog.Logger) *Worker {
	return &Worker{cfg: cfg.WithDefaults(), store: s, client: client, detect: detect, clock: clock, log: log, wake: make(chan struct{}, 1)}
}

// Handle queues the translation of the inbound messages among msgs that
// need one.
func (w *Worker) Handle(ctx context.Context, msgs []bus.Message) error {
	var ids []uuid.UUID
	oldest := w.clock.Now().Add(-MaxAge)
	for _, m := range msgs {
		// A new consumer group reads the topic from its start: old
		// messages were read long ago, without a translation.
		if m.Event.Type != events.TypeConversationMessage || m.Event.Time.Before(oldest) {
			continue
		}
		var data events.ConversationMessage
		if err := m.Event.Decode(&data); err != nil {
			return bus.Permanent(err)
		}
		var msg struct {
			ID        uuid.UUID `json:"id"`
			Direction string    `json:"direction"`
			Automatic bool      `json:"automatic"`
		}
		if err := json.Unmarshal(data.Message, &msg); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: decode message: %w", m.Event.ID, err))
		}
		if msg.Direction == "inbound" && !msg.Automatic {
			ids = append(ids, msg.ID)
		}
	}
	targets, err := w.store.TranslationTargets(ctx, ids)
	if err != nil {
		return transient(err)
	}
	var reqs []store.TranslationRequest
	for _, t := range targets {
		if t.Translated {
			continue
		}
		lang := t.Language
		if lang == "" {
			// Not qualified yet (the qualifier runs beside): detect it
			// here, only for tenants that translate.
			lang = w.detect(t.Body)
		}
		target, ok := domain.TranslationTarget(lang, t.Audience)
		if !ok {
			continue
		}
		reqs = append(reqs, store.TranslationRequest{MessageID: t.MessageID, Tenant: t.Tenant, ConversationID: t.ConversationID,
			Source: lang, Target: target, RequestedBy: "system"})
	}
	n, err := w.store.EnqueueTranslations(ctx, reqs, w.clock.Now())
	if err != nil {
		return transient(err)
	}
	if n > 0 {
		w.Wake()
	}
	return nil
}

func transient(err error) error {
	if pg.IsTransient(err) {
		return bus.Transient(err)
	}
	return err
}

// Wake makes Run look for due translations at once.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run translates due translations until ctx is cancelled.
func (w *Worker) Run(ctx context.Context) error {
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("cannot translate messages; trying again later", "error", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if n > 0 && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-w.clock.After(w.cfg.Poll):
		}
	}
}

// RunOnce claims the translations due and translates them; it returns how
// many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	// A claim outlives the call, so that no other replica takes the job
	// while it runs; a worker that dies leaves it to another after that.
	jobs, err := w.store.ClaimTranslations(ctx, w.clock.Now(), w.cfg.Timeout+30*time.Second, w.cfg.Concurrency)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.store.FinishTranslation(context.WithoutCancel(ctx), j, w.attempt(ctx, j), w.clock.Now())
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return len(jobs), err
		}
	}
	return len(jobs), nil
}

// attempt translates j once and says what became of it.
func (w *Worker) attempt(ctx context.Context, j store.TranslationJob) store.TranslationOutcome {
	if !j.Settings.Enabled {
		return store.TranslationOutcome{Failed: true, Reason: "translation was turned off for the tenant"}
	}
	if j.Text == "" {
		return store.TranslationOutcome{Failed: true, Reason: "the message has no text to translate"}
	}
	tr, err := New(Settings{Provider: j.Settings.Provider, URL: j.Settings.URL, APIKey: j.Settings.APIKey}, w.client)
	if err != nil {
		return store.TranslationOutcome{Failed: true, Reason: err.Error()}
	}
	var res Result
	if j.KeyErr != nil {
		// The keyring lacks the key the API key is sealed under: tried
		// again, like a translator's outage, until the operator adds it
		// or the attempts run out. Agents see the reason; the log says
		// which key.
		w.log.Warn("cannot open the translator's API key", "tenant", j.Tenant, "error", j.KeyErr)
		err = &Error{Reason: "the translator's API key cannot be opened: the operator's keys lack the one it was sealed under"}
	} else {
		cctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
		res, err = tr.Translate(cctx, j.Text, j.Source, j.Target)
		cancel()
	}
	if err == nil {
		return store.TranslationOutcome{Done: true, Text: res.Text, Source: res.Source}
	}
	reason := Reason(err)
	if ctx.Err() != nil {
		// Shutting down: the next run tries again at once.
		return store.TranslationOutcome{Reason: reason, RetryAt: w.clock.Now()}
	}
	if Permanent(err) || j.Attempts >= w.cfg.Attempts {
		w.log.Info("translation failed", "message", j.MessageID, "tenant", j.Tenant, "attempts", j.Attempts, "error", err)
		return store.TranslationOutcome{Failed: true, Reason: reason}
	}
	wait := w.cfg.Backoff
	for i := 1; i < j.Attempts && wait < w.cfg.MaxBackoff; i++ {
		wait *= 2
	}
	wait = min(wait, w.cfg.MaxBackoff)
	return store.TranslationOutcome{Reason: reason, RetryAt: w.clock.Now().Add(wait)}
}
