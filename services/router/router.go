// Package router is the service that pushes waiting conversations to
// agents (push mode, beside pull): it offers each conversation of a push
// queue to one available agent, the one idle longest among those who can
// take it, at once when something lets it go (a conversation waits, an
// agent comes online or has room again). It decides; the inbox applies
// (sb.inbox.commands.v1), checking each offer against the conversation's
// state, the fencing token and the agent's capacity. Presence comes from
// the heartbeats the inbox records in Redis; the router's working state is
// in Redis too, and its view in its own PostgreSQL schema, from which
// that state is rebuilt after Redis loses it. See docs/adr/0010-router.md.
package router

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/services/router/internal/follow"
	"github.com/switchboard-oss/switchboard/services/router/internal/state"
	"github.com/switchboard-oss/switchboard/services/router/internal/view"
)

// Consumer groups of the router.
const (
	ConversationsGroup = follow.ConversationsGroup
	ConfigGroup        = follow.ConfigGroup
)

// EventSource is the CloudEvents source of the router's commands.
const EventSource = follow.EventSource

// RedisPrefix starts every Redis key of the router.
const RedisPrefix = "switchboard:router:"

// Config holds the router settings.
type Config struct {
	// DecisionGrace is how long a decision waits for the event confirming
	// its offer before it is taken back.
	DecisionGrace time.Duration
	// RequeueInterval is how often the conversations of agents gone
	// longer than their queue's limit are looked for.
	RequeueInterval time.Duration
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.DecisionGrace, prefix+"router.decision-grace", time.Minute, "How long a routing decision waits for the inbox's event confirming its offer before the router takes it back and offers the conversation again (the router died before sending it, or the inbox refused it). Keep it well above the time a command takes through Kafka and the inbox.")
	f.DurationVar(&c.RequeueInterval, prefix+"router.requeue-interval", 10*time.Second, "How often the router looks for conversations held by agents gone longer than their queue's requeue_offline_seconds.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.Check(c.DecisionGrace >= time.Second && c.DecisionGrace <= 10*time.Minute, "router.decision-grace",
		fmt.Sprintf("%s is outside 1s to 10m", c.DecisionGrace), "set 1m")
	ck.Check(c.RequeueInterval >= 100*time.Millisecond && c.RequeueInterval <= time.Hour, "router.requeue-interval",
		fmt.Sprintf("%s is outside 100ms to 1h", c.RequeueInterval), "set 10s")
	return ck.Err()
}

// Deps are what the router runs on.
type Deps struct {
	// Pool holds the router's schema.
	Pool *pgxpool.Pool
	// Redis holds the working state.
	Redis *goredis.Client
	// RedisPrefix starts the router's keys; empty means RedisPrefix.
	RedisPrefix string
	// Presence is where the inbox records agents' heartbeats.
	Presence *redis.Presence
	// Bus configures the consumers.
	Bus bus.Config
	// Producer publishes commands and dead letters.
	Producer *bus.Producer
	// Telemetry gives logs, traces and metrics.
	Telemetry *telemetry.Telemetry
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
}

// Service is the running router.
type Service struct {
	view          *view.Store
	redis         *goredis.Client
	conversations *bus.Consumer
	config        *bus.Consumer
	loops         []lifecycle.Service
}

// New migrates the schema and builds the router; Run starts it.
func New(ctx context.Context, cfg Config, d Deps) (*Service, error) {
	switch {
	case d.Pool == nil:
		return nil, errors.New("router: no database pool given")
	case d.Redis == nil:
		return nil, errors.New("router: no Redis client given")
	case d.Presence == nil:
		return nil, errors.New("router: no presence given")
	case d.Producer == nil:
		return nil, errors.New("router: no producer given")
	}
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	if d.RedisPrefix == "" {
		d.RedisPrefix = RedisPrefix
	}
	if err := cfg.Validate(""); err != nil {
		return nil, err
	}
	v := view.New(d.Pool)
	if err := v.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	log := d.Telemetry.Component("router")
	st := state.New(d.Redis, d.RedisPrefix, d.Presence, d.Clock, cfg.DecisionGrace)
	r, err := follow.New(v, st, d.Presence, d.Producer, d.Clock, log, d.Telemetry.Meter.Meter("switchboard/router"))
	if err != nil {
		return nil, err
	}
	conversations, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: ConversationsGroup, Topics: []string{events.TopicConversations}, Clock: d.Clock},
		r.HandleConversations, d.Producer, d.Telemetry)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	configs, err := bus.NewConsumer(d.Bus, bus.ConsumerOptions{Group: ConfigGroup, Topics: []string{events.TopicConfig}, Clock: d.Clock},
		r.HandleConfig, d.Producer, d.Telemetry)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	window := d.Presence.Window()
	loops := []lifecycle.Service{
		lifecycle.ServiceFunc(func(ctx context.Context) error { return r.WatchPresence(ctx, window/2) }),
		lifecycle.ServiceFunc(func(ctx context.Context) error { return r.Reap(ctx, time.Second) }),
		lifecycle.ServiceFunc(func(ctx context.Context) error { return r.Requeue(ctx, cfg.RequeueInterval) }),
	}
	return &Service{view: v, redis: d.Redis, conversations: conversations, config: configs, loops: loops}, nil
}

// Run follows events and routes until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	return lifecycle.RunAll(ctx, append([]lifecycle.Service{s.config, s.conversations}, s.loops...)...)
}

// Ready reports whether the router consumes and reaches its database and
// Redis.
func (s *Service) Ready(ctx context.Context) error {
	for _, r := range []interface{ Ready(context.Context) error }{s.conversations, s.config} {
		if err := r.Ready(ctx); err != nil {
			return err
		}
	}
	if err := s.view.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := s.redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
