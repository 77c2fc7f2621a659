package sms

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/connectors/sms/internal/consent"
	"github.com/switchboard-oss/switchboard/connectors/sms/internal/inbound"
	"github.com/switchboard-oss/switchboard/connectors/sms/internal/outbound"
	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// EventSource is the CloudEvents source of the connector's events.
const EventSource = inbound.EventSource

// Webhook routes, to configure on Twilio as the public base URL followed by
// the path, with {account} the SMS account id.
const (
	// MessagesPath is the messaging webhook ("A message comes in") of the
	// account's numbers or Messaging Services.
	MessagesPath = inbound.MessagesPath
	// StatusPath is the StatusCallback of the messages the connector sends,
	// with ?message_id=<Switchboard message id>.
	StatusPath = inbound.StatusPath
)

// SendGroup is the consumer group of sb.outbound.sms.v1 (the send side).
const SendGroup = "switchboard-sms-send"

// Config holds the connector settings.
type Config struct {
	// PublicBaseURL is the URL Twilio calls, scheme, host, port and
	// optional path prefix; required when the sms target runs.
	PublicBaseURL string
	// MaxBodyBytes bounds one webhook body.
	MaxBodyBytes int64
	// MaxMediaBytes bounds one stored MMS medium.
	MaxMediaBytes int64
	// MediaFetchTimeout bounds fetching all media of one MMS.
	MediaFetchTimeout time.Duration
	// API reaches Twilio's REST API to send.
	API outbound.APIConfig
	// Webhook is the request rate of each account's webhooks (messages
	// and status callbacks apart), so that one account's flood does not
	// starve the others; off when its rate is 0.
	Webhook ratelimit.Rule
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.PublicBaseURL, prefix+"sms.public-base-url", "", "Public URL Twilio reaches this service at, such as https://switchboard.example.com (a path prefix is allowed when the proxy strips it). Required when the sms target runs. Twilio's X-Twilio-Signature is checked against this URL followed by the request's path and query, never against the Host or X-Forwarded-* headers, so it must be exactly the start of the webhook URLs configured on Twilio: <base>/v1/webhooks/sms/<account id>/messages for incoming messages, <base>/v1/webhooks/sms/<account id>/status for status callbacks.")
	f.Int64Var(&c.MaxBodyBytes, prefix+"sms.max-body-bytes", 64<<10, "Largest Twilio webhook body accepted, in bytes; larger ones get 413. A 1600-character message with ten media URLs takes about 25 KiB.")
	f.Int64Var(&c.MaxMediaBytes, prefix+"sms.max-media-bytes", 5<<20, "Largest MMS medium kept, in bytes; a larger one is listed on the message as skipped. Twilio accepts MMS of up to 5 MB.")
	c.API.RegisterFlags(prefix+"sms.", f)
	f.DurationVar(&c.MediaFetchTimeout, prefix+"sms.media-fetch-timeout", 8*time.Second, "Longest time to fetch all media of one MMS from Twilio (they are fetched at once). Twilio waits at most 15s for the webhook's answer; past this timeout the webhook answers 503 and Twilio retries or calls the fallback URL.")
	c.Webhook.Name = "account"
	c.Webhook.RegisterFlags(f, prefix+"sms.webhook", 100, 500, "one SMS account (its signed Twilio webhooks, messages and status callbacks counted apart)",
		"Counted once the signature verifies; it keeps one account's flood from starving the others. Twilio does not retry a 429 by itself: keep the rate above the account's real peaks.")
}

// Validate checks the settings. An empty public base URL is accepted here,
// since the flag is declared for every target; New refuses it.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	if c.PublicBaseURL != "" {
		_, err := inbound.NormalizeBaseURL(c.PublicBaseURL)
		ck.Check(err == nil, "sms.public-base-url", fmt.Sprint(err), "set the https URL Twilio calls, such as https://switchboard.example.com")
	}
	ck.Check(c.MaxBodyBytes >= 4096, "sms.max-body-bytes", fmt.Sprintf("%d is too small for a Twilio webhook", c.MaxBodyBytes), "set at least 4096")
	ck.Check(c.MaxMediaBytes >= 1024, "sms.max-media-bytes", fmt.Sprintf("%d is too small for a medium", c.MaxMediaBytes), "set at least 1024")
	ck.Positive("sms.media-fetch-timeout", c.MediaFetchTimeout)
	c.Webhook.Check(ck, "sms.webhook")
	return errors.Join(ck.Err(), c.API.Validate(prefix+"sms."))
}

// Router is where routes are registered (an *httpx.Server).
type Router interface {
	HandleFunc(pattern string, h http.HandlerFunc, opts ...httpx.RouteOption)
}

// Deps are what the connector runs on.
type Deps struct {
	// Pool holds the connector's schema (sms: consent).
	Pool *pgxpool.Pool
	// Bus configures the send consumer; Brokers is where it and the
	// config topic are read.
	Bus     bus.Config
	Brokers []string
	// Producer publishes inbound messages and delivery reports.
	Producer *bus.Producer
	// Router receives the webhook routes.
	Router Router
	// Blobs keeps MMS media.
	Blobs blob.Store
	// Telemetry gives logs, traces and metrics.
	Telemetry *telemetry.Telemetry
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
	// MediaClient fetches MMS media from Twilio; nil means a default
	// client. Tests pass one that trusts their TLS server.
	MediaClient *http.Client
	// Limiter counts each account's webhooks against Config.Webhook; nil
	// counts nothing.
	Limiter *ratelimit.Limiter
	// Secrets open the accounts' auth tokens and API key secrets, which
	// travel sealed (docs/adr/0022); required.
	Secrets *seal.Keyring
}

// Connector is the running SMS connector.
type Connector struct {
	cfg     Config
	log     *slog.Logger
	table   *bus.Table
	consent *consent.Store
	inbound *inbound.Handler
	sender  *outbound.Handler
	sends   *bus.Consumer
	pool    *pgxpool.Pool
	// keys open the accounts' secrets.
	keys *seal.Keyring

	mu       sync.RWMutex
	accounts map[string]events.SMSAccount
}

// New migrates the connector's schema, builds it and registers its
// webhooks.
func New(ctx context.Context, cfg Config, d Deps) (*Connector, error) {
	if cfg.PublicBaseURL == "" {
		return nil, config.Invalid("sms.public-base-url", "is required by the sms target", "set the https URL Twilio calls, such as https://switchboard.example.com")
	}
	switch {
	case d.Pool == nil:
		return nil, errors.New("sms: no database pool given")
	case d.Producer == nil:
		return nil, errors.New("sms: no producer given")
	case d.Blobs == nil:
		return nil, errors.New("sms: no blob store given")
	case d.Router == nil:
		return nil, errors.New("sms: no router given")
	case d.Secrets == nil:
		return nil, errors.New("sms: no keyring given: the accounts' secrets travel sealed")
	}
	if d.Clock == nil {
		d.Clock = retry.SystemClock{}
	}
	c := &Connector{cfg: cfg, log: d.Telemetry.Component("sms"), consent: consent.New(d.Pool), pool: d.Pool, keys: d.Secrets, accounts: map[string]events.SMSAccount{}}
	if err := c.consent.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("sms: migrate: %w", err)
	}
	busCfg := d.Bus
	busCfg.Brokers = d.Brokers
	c.table = bus.NewTable(busCfg, events.TopicConfig, c.applyConfig, d.Telemetry)
	var err error
	c.inbound, err = inbound.New(inbound.Options{
		PublicBaseURL: cfg.PublicBaseURL,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		MaxMediaBytes: cfg.MaxMediaBytes,
		MediaTimeout:  cfg.MediaFetchTimeout,
		Accounts:      c.Account,
		Loaded:        func() bool { return c.table.Ready(context.Background()) == nil },
		Publisher:     d.Producer,
		Consent:       c.consent,
		Blobs:         d.Blobs,
		HTTPClient:    d.MediaClient,
		Clock:         d.Clock,
		Logger:        c.log,
		Meter:         d.Telemetry.Meter.Meter("switchboard/sms"),
		Limiter:       d.Limiter,
		Rate:          ratelimit.Rule{Name: "account", Rate: cfg.Webhook.Rate, Burst: cfg.Webhook.Burst},
	})
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	c.inbound.Register(d.Router)

	if err := outbound.Migrate(ctx, d.Pool); err != nil {
		return nil, fmt.Errorf("sms: migrate: %w", err)
	}
	api, err := outbound.NewAPI(cfg.API)
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	base, err := inbound.NormalizeBaseURL(cfg.PublicBaseURL)
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	producer := d.Producer
	c.sender, err = outbound.NewHandler(outbound.HandlerConfig{
		Ledger: outbound.NewLedger(d.Pool),
		API:    api,
		Accounts: func(_ context.Context, tenantID, accountID string) (events.SMSAccount, error) {
			a, ok := c.Account(accountID)
			if !ok || a.TenantID != tenantID {
				return events.SMSAccount{}, outbound.ErrUnknownAccount
			}
			return a, nil
		},
		Consent: c.consent,
		Publish: func(ctx context.Context, dl events.Delivery) error {
			ev, err := events.New(events.TypeDelivery, EventSource, dl.TenantID, dl.At, dl)
			if err != nil {
				return err
			}
			return producer.Publish(ctx, events.TopicDelivery, []byte(dl.MessageID), ev)
		},
		StatusCallback: func(accountID, messageID string) string {
			return base + strings.Replace(strings.TrimPrefix(StatusPath, "POST "), "{account}", url.PathEscape(accountID), 1) + "?message_id=" + url.QueryEscape(messageID)
		},
		Clock:  d.Clock,
		Logger: c.log,
	})
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	c.sends, err = bus.NewConsumer(busCfg, bus.ConsumerOptions{Group: SendGroup, Topics: []string{events.TopicOutbound(events.ChannelSMS)}, Clock: d.Clock},
		bus.ByType(map[string]bus.Handler{events.TypeErase: bus.Each(c.forget, ErrInvalidErase)},
			bus.Each(c.sender.Handle, outbound.ErrInvalidCommand)), d.Producer, d.Telemetry)
	if err != nil {
		return nil, fmt.Errorf("sms: %w", err)
	}
	return c, nil
}

// Run follows the account configuration and sends replies until ctx is
// cancelled; the webhooks are served by the router.
func (c *Connector) Run(ctx context.Context) error {
	return lifecycle.RunAll(ctx, lifecycle.ServiceFunc(c.table.Run), c.sends)
}

// Ready reports whether the connector knows the accounts configured when
// it started; before that, a valid webhook could be refused.
func (c *Connector) Ready(ctx context.Context) error {
	if err := c.table.Ready(ctx); err != nil {
		return err
	}
	return c.sends.Ready(ctx)
}

// Account returns the settings of an SMS account; false for an account
// never configured, deleted, or without an auth token.
func (c *Connector) Account(id string) (events.SMSAccount, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.accounts[id]
	return a, ok
}

// Consent returns the store of opt-outs, which the send side consults
// before every message.
func (c *Connector) Consent() *consent.Store { return c.consent }

// applyConfig updates the account view from one config event, opening
// its secrets. One that does not open (a key missing from the keyring)
// leaves the account as it was known: the error names the key.
func (c *Connector) applyConfig(_ context.Context, ev events.Event) error {
	if ev.Type != events.TypeSMSAccount {
		return nil // other connectors' configuration
	}
	var a events.SMSAccount
	if err := ev.Decode(&a); err != nil {
		return fmt.Errorf("sms account event %s: %w", ev.ID, err)
	}
	if a.ID == "" || a.TenantID == "" {
		return fmt.Errorf("sms account event %s lacks id or tenant", ev.ID)
	}
	plain, err := c.keys.OpenFields(a.SecretPlace(), a.SecretFields())
	if err != nil {
		return fmt.Errorf("sms account event %s: %w", ev.ID, err)
	}
	if plain > 0 {
		c.log.Warn("SMS account secrets arrived in clear, from an inbox that did not seal them; the inbox seals them at its next start", "account_id", a.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Without an auth token no webhook can be verified: the account is
	// as good as deleted.
	if a.Deleted || a.AuthToken == "" {
		delete(c.accounts, a.ID)
		return nil
	}
	c.accounts[a.ID] = a
	return nil
}
