// Package inbound serves Twilio's webhooks to the SMS connector: the
// messaging webhook (a customer's SMS or MMS) and the status callbacks of
// the messages we sent.
//
// Every request is verified first: X-Twilio-Signature is an HMAC-SHA1,
// keyed with the account's auth token, of the URL Twilio called followed by
// the POST parameters sorted by name. Deployments sit behind proxies and
// load balancers, so that URL is rebuilt from the configured public base
// URL and the request's path and query, never from the Host header or
// X-Forwarded-* headers, which a caller chooses.
//
// A message is answered 200 with an empty TwiML document only once it is
// on Kafka (sb.inbound.v1), its media stored and its consent change
// recorded; anything that may work later is answered 503, which makes
// Twilio retry (with the connection overrides rc and rp on the webhook
// URL) or call the Fallback URL. Retries are harmless: the event id is
// derived from (account, MessageSid), so the inbox stores the message once.
//
// Media: a medium over the size limit, or one Twilio no longer has (404,
// 410), is attached as skipped; any other fetch failure (network, timeout,
// Twilio 5xx or 429, credentials refused) answers 503 rather than publish
// the message without its media, since nothing would fetch it later.
//
// Status callbacks are published as they come on sb.delivery.v1, even out
// of order: the inbox ranks statuses (events.DeliveryRank) and never moves
// a message's status backwards. Only the pending ones (queued, sending,
// ...) are not published: the inbox refuses them, and a message it sent
// is pending already.
package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twilio/twilio-go/client"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/retry"
)

// EventSource is the CloudEvents source of the connector's events.
const EventSource = "switchboard/sms"

// Routes of the webhooks; {account} is the SMS account id (the channel
// account id of its messages). Configure them on the Twilio number or
// Messaging Service as the public base URL followed by the path.
const (
	MessagesPath = "POST /v1/webhooks/sms/{account}/messages"
	// StatusPath is the StatusCallback of the messages we send, with
	// ?message_id=<our message id>.
	StatusPath = "POST /v1/webhooks/sms/{account}/status"
)

// HeaderSignature is Twilio's signature header.
const HeaderSignature = "X-Twilio-Signature"

// EmptyTwiML is the answer to an accepted message: no automatic reply.
const EmptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Namespaces of the stable event ids: a message or a callback that Twilio
// delivers twice is the same event.
var (
	messageNamespace = uuid.MustParse("3f6b0d2a-71c4-4e0b-9a8e-4d2c5b1e9f37")
	statusNamespace  = uuid.MustParse("a41c2e7d-5b93-4f18-8c06-1e7f3d9b2a64")
)

// Router is where the routes are registered (an *httpx.Server).
type Router interface {
	HandleFunc(pattern string, h http.HandlerFunc, opts ...httpx.RouteOption)
}

// Publisher hands events to Kafka and returns once Kafka acknowledged them
// (a *bus.Producer).
type Publisher interface {
	Publish(ctx context.Context, topic string, key []byte, evs ...events.Event) error
}

// Consent records opt-outs (a *consent.Store).
type Consent interface {
	Set(ctx context.Context, accountID, number string, optedOut bool, at time.Time) error
}

// Options are what the handlers run on.
type Options struct {
	// PublicBaseURL is the scheme, host, port and optional path prefix
	// Twilio calls, such as https://switchboard.example.com; signatures are
	// checked against it followed by the request's path and query.
	PublicBaseURL string
	// MaxBodyBytes bounds one webhook body.
	MaxBodyBytes int64
	// MaxMediaBytes bounds one stored medium.
	MaxMediaBytes int64
	// MediaTimeout bounds fetching all media of one message.
	MediaTimeout time.Duration
	// Accounts returns the account of an id; false for an unknown or
	// deleted one.
	Accounts func(id string) (events.SMSAccount, bool)
	// Loaded reports whether Accounts knows every account configured when
	// the connector started; until then an unknown account is answered
	// 503 (Twilio retries) rather than refused for good. Nil means loaded.
	Loaded func() bool
	// Publisher publishes messages and deliveries.
	Publisher Publisher
	// Consent records STOP and START.
	Consent Consent
	// Blobs keeps MMS media.
	Blobs blob.Store
	// HTTPClient fetches media; nil means a default client. Its redirect
	// policy is replaced (see package doc).
	HTTPClient *http.Client
	// Clock is the time source; nil means the system clock.
	Clock retry.Clock
	// Logger logs refusals and failures.
	Logger *slog.Logger
	// Meter makes the handlers' metrics.
	Meter metric.Meter
	// Limiter counts each account's webhooks (messages and status
	// callbacks apart) against Rate once their signature verifies; nil
	// counts nothing.
	Limiter *ratelimit.Limiter
	Rate    ratelimit.Rule
}

// Handler serves the webhooks.
type Handler struct {
	opts   Options
	base   string
	client *http.Client

	accepted metric.Int64Counter
	rejected metric.Int64Counter
	media    metric.Int64Counter
	consent  metric.Int64Counter
}

// New checks the options and builds the handlers.
func New(o Options) (*Handler, error) {
	base, err := NormalizeBaseURL(o.PublicBaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case o.MaxBodyBytes <= 0 || o.MaxMediaBytes <= 0 || o.MediaTimeout <= 0:
		return nil, errors.New("inbound: body and media limits and the media timeout must be positive")
	case o.Accounts == nil || o.Publisher == nil || o.Consent == nil || o.Blobs == nil || o.Logger == nil || o.Meter == nil:
		return nil, errors.New("inbound: accounts, publisher, consent, blobs, logger and meter are required")
	}
	if o.Clock == nil {
		o.Clock = retry.SystemClock{}
	}
	h := &Handler{opts: o, base: base, client: mediaClient(o.HTTPClient)}
	if h.accepted, err = o.Meter.Int64Counter("switchboard.sms.webhooks.accepted", metric.WithDescription("Twilio webhooks accepted, by kind (message, status).")); err != nil {
		return nil, fmt.Errorf("inbound metrics: %w", err)
	}
	if h.rejected, err = o.Meter.Int64Counter("switchboard.sms.webhooks.rejected", metric.WithDescription("Twilio webhooks refused or not handled, by reason.")); err != nil {
		return nil, fmt.Errorf("inbound metrics: %w", err)
	}
	if h.media, err = o.Meter.Int64Counter("switchboard.sms.media", metric.WithDescription("MMS media fetched from Twilio, by outcome (stored, too_large, gone, unavailable, error).")); err != nil {
		return nil, fmt.Errorf("inbound metrics: %w", err)
	}
	if h.consent, err = o.Meter.Int64Counter("switchboard.sms.consent", metric.WithDescription("Consent keywords and opt-out errors seen, by consent (opted_out, opted_in, help).")); err != nil {
		return nil, fmt.Errorf("inbound metrics: %w", err)
	}
	return h, nil
}

// NormalizeBaseURL checks a public base URL (absolute http or https, with
// a host, no query, no fragment, no credentials) and returns it without a
// trailing slash.
func NormalizeBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", errors.New("the public base URL is empty")
	case err != nil:
		return "", fmt.Errorf("the public base URL %q does not parse: %w", raw, err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return "", fmt.Errorf("the public base URL %q must be an absolute https URL such as https://switchboard.example.com", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("the public base URL %q must have no query, fragment or credentials", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// Register adds the webhook routes to r.
func (h *Handler) Register(r Router) {
	r.HandleFunc(MessagesPath, h.messages, httpx.WithBodyLimit(h.opts.MaxBodyBytes))
	r.HandleFunc(StatusPath, h.status, httpx.WithBodyLimit(h.opts.MaxBodyBytes))
}

// reject counts a refusal and writes its problem.
func (h *Handler) reject(ctx context.Context, w http.ResponseWriter, reason string, p *httpx.Problem) {
	h.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
	httpx.WriteProblem(w, p)
}

// unavailable answers 503: Twilio retries, or calls the fallback URL.
func (h *Handler) unavailable(ctx context.Context, w http.ResponseWriter, reason, detail string) {
	w.Header().Set("Retry-After", "5")
	h.reject(ctx, w, reason, httpx.NewProblem(http.StatusServiceUnavailable, detail))
}

// forbidden is the one answer to every request that does not verify, so an
// unsigned caller learns nothing about which accounts exist.
func forbidden() *httpx.Problem {
	return httpx.NewProblem(http.StatusForbidden, "the "+HeaderSignature+" signature does not verify for this account and URL")
}

// verify finds the account, reads the body within its limit and checks
// Twilio's signature over the public URL and the POST parameters. On
// false the answer is written.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) (events.SMSAccount, url.Values, bool) {
	ctx := r.Context()
	id := r.PathValue("account")
	acct, known := h.opts.Accounts(id)
	if !known && h.opts.Loaded != nil && !h.opts.Loaded() {
		h.opts.Logger.WarnContext(ctx, "Twilio webhook before the SMS accounts are known; answered 503", "account_id", id)
		h.unavailable(ctx, w, "starting", "the connector is starting and does not know its accounts yet; retry")
		return acct, nil, false
	}
	if !known {
		h.opts.Logger.WarnContext(ctx, "Twilio webhook for an unknown or deleted SMS account", "account_id", id)
		h.reject(ctx, w, "unknown_account", forbidden())
		return acct, nil, false
	}
	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		h.opts.Logger.WarnContext(ctx, "Twilio webhook without a signature", "account_id", id)
		h.reject(ctx, w, "missing_signature", forbidden())
		return acct, nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		h.reject(ctx, w, "content_type", httpx.NewProblem(http.StatusUnsupportedMediaType, "Twilio webhooks are application/x-www-form-urlencoded"))
		return acct, nil, false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			h.reject(ctx, w, "too_large", httpx.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxErr.Limit)))
			return acct, nil, false
		}
		h.reject(ctx, w, "read", httpx.NewProblem(http.StatusBadRequest, "the body could not be read"))
		return acct, nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		h.reject(ctx, w, "invalid", httpx.Invalid("body", "is not a valid application/x-www-form-urlencoded form"))
		return acct, nil, false
	}
	params := make(map[string]string, len(form))
	for k, v := range form {
		params[k] = v[0]
	}
	signed := h.signedURL(r)
	validator := client.NewRequestValidator(acct.AuthToken)
	if !validator.Validate(signed, params, sig) {
		h.opts.Logger.WarnContext(ctx, "Twilio webhook with a signature that does not verify", "account_id", id, "url", signed)
		h.reject(ctx, w, "bad_signature", forbidden())
		return acct, nil, false
	}
	// Counted once signed, so that an unsigned flood naming the account
	// cannot use up its rate. Twilio does not retry a 429 by itself (only
	// with its connection overrides, or through the fallback URL): keep
	// the rate above the account's real peaks.
	if h.opts.Limiter != nil {
		d := h.opts.Limiter.Allow(ctx, ratelimit.Limit{Key: "sms:" + id + ":" + path.Base(r.URL.Path), Rule: h.opts.Rate})
		ratelimit.SetHeaders(w.Header(), d, h.opts.Rate)
		if !d.Allowed {
			h.opts.Logger.WarnContext(ctx, "Twilio webhook over the account's rate; answered 429", "account_id", id, "path", r.URL.Path)
			h.reject(ctx, w, "rate_limited", ratelimit.TooMany(w.Header(), d, "webhooks of this account"))
			return acct, nil, false
		}
	}
	return acct, form, true
}

// signedURL is the URL Twilio signed: the public base URL, then the path
// and query as the request carries them (escaped as sent).
func (h *Handler) signedURL(r *http.Request) string {
	u := h.base + r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return u
}

// invalid answers 400 with the problem err carries.
func (h *Handler) invalid(ctx context.Context, w http.ResponseWriter, err error) {
	var p *httpx.Problem
	if !errors.As(err, &p) {
		p = httpx.Invalid("body", err.Error())
	}
	h.reject(ctx, w, "invalid", p)
}

// messages handles POST /v1/webhooks/sms/{account}/messages.
func (h *Handler) messages(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	acct, form, ok := h.verify(w, r)
	if !ok {
		return
	}
	log := h.opts.Logger.With("account_id", acct.ID)
	msg, err := ParseMessage(form, acct.AccountSID)
	if err != nil {
		log.WarnContext(ctx, "Twilio message webhook refused", "message_sid", form.Get("MessageSid"), "error", err)
		h.invalid(ctx, w, err)
		return
	}
	log = log.With("message_sid", msg.SID)
	now := h.opts.Clock.Now()
	consent := Keyword(msg.Body, msg.OptOutType)
	// Everything that can refuse the message is checked before anything
	// changes: an invalid message neither opts anyone out nor stores media.
	p, err := payload(acct, msg, consent, nil, now)
	if err != nil {
		h.invalid(ctx, w, err)
		return
	}
	if !ownNumber(acct, msg.To) && !ownService(acct, msg.Metadata["messaging_service_sid"]) {
		// Still accepted: the signature proves the account sent it, and
		// refusing would lose it; the account's number list is stale.
		log.WarnContext(ctx, "SMS to a number not listed on its account", "to", msg.To)
	}

	if p.Attachments, err = h.fetchMedia(ctx, acct, msg.Media); err != nil {
		log.ErrorContext(ctx, "could not fetch the media of an MMS; Twilio is asked to retry", "error", err)
		h.unavailable(ctx, w, "media_unavailable", "the message's media could not be fetched from Twilio yet; retry it")
		return
	}
	if consent == ConsentOptedOut || consent == ConsentOptedIn {
		if err := h.opts.Consent.Set(ctx, acct.ID, msg.From, consent == ConsentOptedOut, now); err != nil {
			log.ErrorContext(ctx, "could not record an opt-out keyword", "consent", consent, "error", err)
			h.unavailable(ctx, w, "consent_unavailable", "the consent change could not be recorded yet; retry it")
			return
		}
	}
	if consent != "" {
		h.consent.Add(ctx, 1, metric.WithAttributes(attribute.String("consent", consent)))
		log.InfoContext(ctx, "consent keyword received", "consent", consent)
	}
	ev, key, err := messageEvent(acct, msg, p, now)
	if err != nil {
		h.invalid(ctx, w, err)
		return
	}
	if err := h.opts.Publisher.Publish(ctx, events.TopicInbound, key, ev); err != nil {
		// Not acknowledged: Twilio must retry; the stable event id makes a
		// retry of a message that did land harmless.
		log.ErrorContext(ctx, "could not hand an SMS to Kafka", "error", err)
		h.unavailable(ctx, w, "unavailable", "the message could not be stored yet; retry it")
		return
	}
	h.accepted.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", "message")))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, EmptyTwiML)
}

// ownNumber reports whether number is one of the account's.
func ownNumber(acct events.SMSAccount, number string) bool {
	for _, n := range acct.Numbers {
		if n == number {
			return true
		}
	}
	return false
}

// ownService reports whether sid is one of the account's Messaging
// Services.
func ownService(acct events.SMSAccount, sid string) bool {
	for _, s := range acct.MessagingServiceSIDs {
		if sid != "" && s == sid {
			return true
		}
	}
	return false
}

// payload builds and validates the event data of a message, attachments
// aside; the error is a 400 problem naming the webhook's field.
func payload(acct events.SMSAccount, m Message, consent string, atts []events.Attachment, now time.Time) (events.MessageReceived, error) {
	text := m.Body
	if strings.TrimSpace(text) == "" {
		text = "(media)"
	}
	md := make(map[string]string, len(m.Metadata)+1)
	for k, v := range m.Metadata {
		md[k] = v
	}
	if consent != "" {
		md["consent"] = consent
	}
	if len(md) == 0 {
		md = nil
	}
	p := events.MessageReceived{
		TenantID:         acct.TenantID,
		Channel:          events.ChannelSMS,
		ChannelAccountID: acct.ID,
		ExternalID:       m.SID,
		// Our number first: one conversation per (our number, customer).
		ThreadKey:   m.To + ":" + m.From,
		From:        events.Party{Identity: m.From},
		Text:        text,
		ReceivedAt:  now.UTC(),
		Metadata:    md,
		Attachments: atts,
	}
	if err := p.Validate(); err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return p, httpx.Invalid(formField(fe.Field), fe.Reason)
		}
		return p, err
	}
	return p, nil
}

// messageEvent wraps a message's data in its event: its id derives from
// (account, MessageSid), its key is the conversation's.
func messageEvent(acct events.SMSAccount, m Message, p events.MessageReceived, now time.Time) (events.Event, []byte, error) {
	if err := p.Validate(); err != nil {
		return events.Event{}, nil, fmt.Errorf("message %s: %w", m.SID, err)
	}
	id := MessageEventID(acct.ID, m.SID)
	ev, err := events.NewWithID(id, events.TypeMessageReceived, EventSource, acct.TenantID, now, p)
	if err != nil {
		return events.Event{}, nil, fmt.Errorf("message %s: %w", m.SID, err)
	}
	return ev, events.ConversationKey(acct.TenantID, events.ChannelSMS, acct.ID, p.ThreadKey), nil
}

// MessageEventID is the event id of the message Twilio calls MessageSid on
// the account accountID: the same message posted twice is one event.
func MessageEventID(accountID, messageSid string) string {
	return uuid.NewSHA1(messageNamespace, []byte(accountID+"\x00"+messageSid)).String()
}

// formField maps a field of the event back to the webhook's name for it.
func formField(eventField string) string {
	switch eventField {
	case "external_id":
		return "MessageSid"
	case "thread_key":
		return "To"
	case "from.identity":
		return "From"
	case "text":
		return "Body"
	}
	if strings.HasPrefix(eventField, "attachments") {
		return "NumMedia"
	}
	return eventField
}

// status handles POST /v1/webhooks/sms/{account}/status?message_id=...
func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	acct, form, ok := h.verify(w, r)
	if !ok {
		return
	}
	log := h.opts.Logger.With("account_id", acct.ID)
	s, err := ParseStatus(form, acct.AccountSID, r.URL.Query().Get("message_id"))
	if err != nil {
		log.WarnContext(ctx, "Twilio status callback refused", "message_sid", form.Get("MessageSid"), "error", err)
		h.invalid(ctx, w, err)
		return
	}
	log = log.With("message_id", s.MessageID, "message_sid", s.SID, "twilio_status", s.TwilioStatus)
	now := h.opts.Clock.Now()
	if s.ErrorCode == ErrorUnsubscribed {
		// Twilio refused to write to a number that replied STOP, maybe
		// before this connector existed: record it, so that the next
		// reply is refused before calling Twilio.
		if err := h.opts.Consent.Set(ctx, acct.ID, s.To, true, now); err != nil {
			log.ErrorContext(ctx, "could not record an opt-out from error 21610", "error", err)
			h.unavailable(ctx, w, "consent_unavailable", "the consent change could not be recorded yet; retry it")
			return
		}
		h.consent.Add(ctx, 1, metric.WithAttributes(attribute.String("consent", ConsentOptedOut)))
		log.InfoContext(ctx, "number opted out (Twilio error 21610)")
	}
	st, known := DeliveryStatus(s.TwilioStatus)
	if !known || st == events.DeliveryPending {
		// Nothing the inbox records: answered, counted, not published.
		reason := "pending_status"
		if !known {
			reason = "unknown_status"
			log.WarnContext(ctx, "Twilio status callback with a status this connector does not know")
		}
		h.rejected.Add(ctx, 1, metric.WithAttributes(attribute.String("reason", reason)))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ev, err := deliveryEvent(acct, s, st, now)
	if err != nil {
		h.invalid(ctx, w, err)
		return
	}
	if err := h.opts.Publisher.Publish(ctx, events.TopicDelivery, []byte(s.MessageID), ev); err != nil {
		log.ErrorContext(ctx, "could not hand a delivery status to Kafka", "error", err)
		h.unavailable(ctx, w, "unavailable", "the status could not be stored yet; retry it")
		return
	}
	h.accepted.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", "status")))
	w.WriteHeader(http.StatusNoContent)
}

// deliveryEvent is the event of a status callback; the same callback
// twice is the same event.
func deliveryEvent(acct events.SMSAccount, s Status, status string, now time.Time) (events.Event, error) {
	d := events.Delivery{MessageID: s.MessageID, TenantID: acct.TenantID, Status: status, At: now.UTC()}
	if status == events.DeliveryFailed {
		d.Error = deliveryError(s)
	}
	id := uuid.NewSHA1(statusNamespace, []byte(acct.ID+"\x00"+s.MessageID+"\x00"+s.SID+"\x00"+s.TwilioStatus)).String()
	ev, err := events.NewWithID(id, events.TypeDelivery, EventSource, acct.TenantID, now, d)
	if err != nil {
		return events.Event{}, fmt.Errorf("delivery of %s: %w", s.MessageID, err)
	}
	return ev, nil
}
