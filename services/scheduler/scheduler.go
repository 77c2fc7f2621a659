// Package scheduler is the service that holds what waits for a time:
// deferred conversations waking, offers lapsing, acknowledgements and
// waiting messages going out, smart close asking and closing, inactivity
// alerts. It derives its timers from the inbox's events
// (sb.conversations.v1) and the automation settings (sb.config.v1), keeps
// them in its own PostgreSQL schema, and when one comes due it sends the
// inbox a command (sb.inbox.commands.v1); the inbox alone changes
// conversations. See docs/adr/0008-scheduler.md.
package scheduler

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/fire"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/follow"
	"github.com/switchboard-oss/switchboard/services/scheduler/internal/store"
)

// Consumer groups of the scheduler.
const (
	ConversationsGroup = follow.ConversationsGroup
	ConfigGroup        = follow.ConfigGroup
)

// EventSource is the CloudEvents source of the scheduler's commands.
const EventSource = fire.EventSource

// Config holds the scheduler settings.
type Config struct {
	// FireBatch is the most timers fired in one transaction.
	FireBatch int
	// MaxSleep is the longest the fire loop sleeps without looking.
	MaxSleep time.Duration
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.FireBatch, prefix+"scheduler.fire-batch", 500, "Most due timers fired in one transaction (their commands published to Kafka in one call). A burst of timers due at once goes out in rounds of this many.")
	f.DurationVar(&c.MaxSleep, prefix+"scheduler.max-sleep", time.Second, "Longest the fire loop sleeps without looking at the timer table. It sleeps until the earliest timer is due, and a timer set earlier wakes it at once (LISTEN/NOTIFY); this only bounds the delay should a notification be lost across a reconnection.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.AtLeast("scheduler.fire-batch", c.FireBatch, 1)
	ck.Check(c.MaxSleep >= 10*time.Millisecond && c.MaxSleep <= time.Minute, "scheduler.max-sleep",
		fmt.Sprintf("%s is outside 10ms to 1m", c.MaxSleep), "set a second or so, such as 1s")
	return ck.Err()
}

// Deps are what the scheduler runs on.
type Deps struct {
	// Pool holds the scheduler's schema.
	Pool *pgxpool.Pool
	// Bus configures the consumers.
	Bus bus.Config
	// Producer publishes commands and dead letters.
	Producer *bus.Producer
	// Telemetry gives logs, traces and metrics.
	Telemetry *telemetry.Telemetry
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
}

// Service is the running scheduler.
type Service struct {
	store         *store.Store
	conversations *bus.Consumer
	config        *bus.Consumer
	loop          *fire.Loop
}

// New migrates the schema and builds the scheduler; Run starts it.
func New(ctx context.Context, cfg Config, d Deps) (*Service, error) {
	switch {
	case d.Pool == nil:
		return nil, errors.New("scheduler: no database pool given")
	case d.Producer == nil:
		return nil, errors.New("scheduler: no producer given")
	}
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	if err := cfg.Validate(""); err != nil {
		return nil, err
	}
	s := store.New(d.Pool)
	if err := s.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	log := d.Telemetry.Component("scheduler")
	f, err := follow.New(s, d.Clock, log, d.Telemetry.Meter.Meter("switchboard/scheduler"), cfg.MaxSleep)
	if err != nil {
		return nil, err
	}
	conversations, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: ConversationsGroup, Topics: []string{events.TopicConversations}, Clock: d.Clock},
		f.HandleConversations, d.Producer, d.Telemetry)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	configs, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: ConfigGroup, Topics: []string{events.TopicConfig}, Clock: d.Clock},
		f.HandleConfig, d.Producer, d.Telemetry)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	loop, err := fire.New(s, d.Producer, d.Telemetry, fire.Options{Batch: cfg.FireBatch, MaxSleep: cfg.MaxSleep, Clock: d.Clock})
	if err != nil {
		return nil, err
	}
	return &Service{store: s, conversations: conversations, config: configs, loop: loop}, nil
}

// Run follows events and fires timers until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	return lifecycle.RunAll(ctx, s.config, s.conversations, s.loop)
}

// Ready reports whether the scheduler consumes, fires and reaches its
// database.
func (s *Service) Ready(ctx context.Context) error {
	for _, r := range []interface{ Ready(context.Context) error }{s.conversations, s.config, s.loop} {
		if err := r.Ready(ctx); err != nil {
			return err
		}
	}
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}
