package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twilio/twilio-go"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// Errors callers branch on.
var (
	// ErrUnknownAccount is returned (wrapped) by an AccountFunc that has no
	// such SMS account for the tenant. The handler reports the message
	// failed.
	ErrUnknownAccount = errors.New("unknown SMS account")
	// ErrInvalidCommand is wrapped by Handle's error for a command that is
	// malformed (no message id or tenant, no account, a recipient that is
	// not E.164, an empty or too long text): the caller sends it to the
	// dead-letter topic. When the command has a message id and a tenant,
	// its failure is also recorded and published first, so the agent sees
	// it.
	ErrInvalidCommand = errors.New("invalid SMS send command")
)

// ReasonOptedOut is the delivery error of a message not sent because the
// customer's number opted out of the account's messages.
const ReasonOptedOut = "the customer opted out of SMS (STOP)"

// MaxTextLength is the longest body Twilio accepts, in characters; it
// splits a longer one into segments itself.
const MaxTextLength = 1600

// AccountFunc returns an SMS account of a tenant, as the configuration
// topic last described it. It wraps ErrUnknownAccount when there is none;
// any other error is taken as temporary and returned by Handle.
type AccountFunc func(ctx context.Context, tenantID, accountID string) (events.SMSAccount, error)

// PublishFunc publishes a delivery status and returns once the broker has
// acknowledged it.
type PublishFunc func(ctx context.Context, d events.Delivery) error

// StatusCallbackFunc returns the URL Twilio posts a message's status
// changes to: the inbound side serves
// <public base URL>/v1/webhooks/sms/{account}/status?message_id=<id>.
type StatusCallbackFunc func(accountID, messageID string) string

// ConsentStore says which numbers opted out; *consent.Store is one.
type ConsentStore interface {
	// OptedOut reports whether number opted out of account's messages.
	OptedOut(ctx context.Context, accountID, number string) (bool, error)
	// Set records that number opted out (or back in) at at.
	Set(ctx context.Context, accountID, number string, optedOut bool, at time.Time) error
}

// HandlerConfig holds what a Handler is built from.
type HandlerConfig struct {
	// Ledger records outcomes. Required.
	Ledger *Ledger
	// API reaches Twilio. Required.
	API *API
	// Accounts finds the sending account. Required.
	Accounts AccountFunc
	// Consent refuses numbers that opted out, and learns of those Twilio
	// reports unsubscribed (error 21610). Required.
	Consent ConsentStore
	// Publish publishes delivery statuses. Required.
	Publish PublishFunc
	// StatusCallback gives the status callback URL of each message.
	// Optional: without it Twilio reports no status beyond the one its
	// API answered, and no message is ever marked delivered.
	StatusCallback StatusCallbackFunc
	// Retry bounds the create attempts of one message, over every delivery
	// of its command (MaxAttempts, 0 for no bound), and spaces them; it
	// also bounds, per delivery, the failed looks for an in-doubt attempt.
	// DefaultRetry() when zero.
	Retry retry.Policy
	// Clock dates records and paces retries; retry.SystemClock when nil.
	Clock retry.Clock
	// Logger receives the handler's logs; slog.Default() when nil.
	Logger *slog.Logger
}

// DefaultRetry is the retry policy of a zero HandlerConfig.Retry: 6
// attempts, from 0.5 s doubling to at most 10 s apart (about 15 s in all,
// less with jitter), enough for a burst of 429s or a short Twilio outage,
// not for a long one, after which the message is reported failed and the
// agent can send it again.
func DefaultRetry() retry.Policy {
	return retry.Policy{Initial: 500 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, MaxAttempts: 6}
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
		return nil, errors.New("sms outbound: HandlerConfig.Ledger is required")
	case cfg.API == nil:
		return nil, errors.New("sms outbound: HandlerConfig.API is required")
	case cfg.Accounts == nil:
		return nil, errors.New("sms outbound: HandlerConfig.Accounts is required")
	case cfg.Consent == nil:
		return nil, errors.New("sms outbound: HandlerConfig.Consent is required")
	case cfg.Publish == nil:
		return nil, errors.New("sms outbound: HandlerConfig.Publish is required")
	}
	if cfg.Retry == (retry.Policy{}) {
		cfg.Retry = DefaultRetry()
	}
	if cfg.Clock == nil {
		cfg.Clock = retry.SystemClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{cfg: cfg, log: log.With("component", "sms-send")}, nil
}

// e164 is a number in E.164 form: +, a country code not starting with 0,
// 15 digits at most in all.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// validate checks what Twilio would refuse anyway, and what the ledger
// needs.
func validate(cmd events.SendMessage) error {
	switch n := utf8.RuneCountInString(cmd.Text); {
	case cmd.ChannelAccountID == "":
		return errors.New("channel_account_id (the SMS account) is required")
	case !e164.MatchString(cmd.To):
		return fmt.Errorf("recipient %q is not an E.164 number", cmd.To)
	case strings.TrimSpace(cmd.Text) == "":
		return errors.New("the text is empty")
	case !utf8.ValidString(cmd.Text):
		return errors.New("the text is not valid UTF-8")
	case n > MaxTextLength:
		return fmt.Errorf("the text has %d characters, more than the %d an SMS may have", n, MaxTextLength)
	}
	return nil
}

// Handle sends the message of cmd unless its outcome is already recorded,
// and publishes its delivery status (sent or failed). It returns nil once
// the status is published; an error means the command must be handled again
// later (PostgreSQL, Kafka or Twilio's message list unavailable, ctx ended,
// an account lookup failed) or, wrapping ErrInvalidCommand, never.
//
// Sequence: a command whose ledger status is final only has its status
// published again. Otherwise, each attempt is preceded, when an earlier one
// is in doubt, by a search of Twilio's messages for the one it may have
// created (adopted if found), then by a consent check (a number that opted
// out fails the message with ReasonOptedOut and no call to Twilio), and is
// recorded (sendledger.Begin: attempting, attempts+1, the message held
// against other consumers for the call's timeout and a margin) before
// Twilio is called; a message another consumer holds is waited for. A 429, 5xx or
// network failure is retried after a backoff until the policy's attempts
// are used up, then the message is failed; another 4xx fails it at once
// with Twilio's code and message ("Twilio error 21211: Invalid 'To' Phone
// Number"), and 21610 also records the number as opted out; success records
// sent with Twilio's SID. The window in which a replay sends again is
// described in the package comment.
func (h *Handler) Handle(ctx context.Context, cmd events.SendMessage) error {
	if cmd.MessageID == "" || cmd.TenantID == "" {
		return fmt.Errorf("%w: message_id and tenant_id are required (message %q)", ErrInvalidCommand, cmd.MessageID)
	}
	log := h.log.With("message_id", cmd.MessageID, "tenant_id", cmd.TenantID, "account_id", cmd.ChannelAccountID)

	prev, ok, err := h.cfg.Ledger.Get(ctx, cmd.MessageID)
	if err != nil {
		return err
	}
	if ok && prev.Final() {
		log.DebugContext(ctx, "message already handled; publishing its status again", "status", prev.State)
		return h.publish(ctx, prev)
	}
	seg := Segment(cmd.Text)
	ref := sendledger.Ref{ID: cmd.MessageID, TenantID: cmd.TenantID, ChannelAccountID: cmd.ChannelAccountID, ConversationID: cmd.ConversationID}
	// The sender of earlier deliveries is kept: an attempt in doubt is
	// looked for from it.
	det := Details{To: cmd.To, Sender: prev.Details.Sender, Encoding: seg.Encoding, Segments: seg.Segments}
	failure := func(reason string) sendledger.Outcome[Details] {
		return sendledger.Outcome[Details]{Ref: ref, Reason: reason, Details: &det}
	}

	if err := validate(cmd); err != nil {
		if ferr := h.fail(ctx, log, failure(err.Error())); ferr != nil {
			return ferr
		}
		return fmt.Errorf("%w: message %s: %v", ErrInvalidCommand, cmd.MessageID, err)
	}
	if len(cmd.Attachments) > 0 {
		return h.fail(ctx, log, failure("attachments cannot be sent by SMS: MMS sending is not supported; send the text alone"))
	}

	acct, err := h.cfg.Accounts(ctx, cmd.TenantID, cmd.ChannelAccountID)
	switch {
	case errors.Is(err, ErrUnknownAccount) || (err == nil && (acct.Deleted || acct.TenantID != cmd.TenantID)):
		return h.fail(ctx, log, failure(fmt.Sprintf("SMS account %s does not exist or was deleted", cmd.ChannelAccountID)))
	case err != nil:
		return fmt.Errorf("look up SMS account %s of message %s: %w", cmd.ChannelAccountID, cmd.MessageID, err)
	}
	sender, err := chooseSender(acct, cmd.ThreadKey)
	if err != nil {
		return h.fail(ctx, log, failure(err.Error()))
	}
	rc, err := h.cfg.API.RestClient(ctx, acct)
	if err != nil {
		return h.fail(ctx, log, failure(err.Error()))
	}
	if !ok {
		prev.Ref = ref
	}
	return h.send(ctx, log, rc, cmd, prev, det, sender)
}

// send runs the attempts of a message whose command is valid. rec is the
// message's record as last read (zero but its Ref when it has none), det
// the details of its next attempt, sender what that attempt sends from.
func (h *Handler) send(ctx context.Context, log *slog.Logger, rc *twilio.RestClient, cmd events.SendMessage, rec Record, det Details, sender string) error {
	ref := rec.Ref
	var claim string  // the ledger's claim on the message, while held
	resolved := false // a search of Twilio found that rec's doubt created nothing
	lookFailures := 0 // failed searches of this delivery
	for {
		doubt := rec.InDoubt() && !resolved
		if !doubt {
			if h.cfg.Retry.Exhausted(rec.Attempts) {
				// Earlier attempts used up the policy (this delivery's,
				// or those of one that stopped before recording the
				// failure).
				return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, Claim: claim, Details: &det,
					Reason: fmt.Sprintf("gave up after %d attempts: %s", rec.Attempts, rec.LastError)})
			}
			// Checked before every attempt: a STOP received during the
			// retries is honoured.
			optedOut, err := h.cfg.Consent.OptedOut(ctx, ref.ChannelAccountID, det.To)
			if err != nil {
				return fmt.Errorf("check consent for message %s: %w", cmd.MessageID, err)
			}
			if optedOut {
				return h.fail(ctx, log, sendledger.Outcome[Details]{Ref: ref, Claim: claim, Reason: ReasonOptedOut, Details: &det})
			}
			det.Sender = sender
		}
		a := sendledger.Attempt[Details]{Ref: ref, Claim: claim, Resend: resolved, Lease: h.lease(), At: h.cfg.Clock.Now()}
		if !doubt {
			a.Details = &det
		}
		cur, verdict, err := h.cfg.Ledger.Begin(ctx, a)
		if err != nil {
			return err
		}
		switch verdict {
		case sendledger.Settled:
			// Another consumer finished it meanwhile (a rebalance).
			return h.publish(ctx, cur)
		case sendledger.Busy:
			log.InfoContext(ctx, "another consumer is sending the message; waiting for it", "until", cur.ClaimedUntil)
			if err := sendledger.WaitClaim(ctx, h.cfg.Clock, cur); err != nil {
				return err
			}
			// Decide again on what the other consumer left.
			if rec, _, err = h.cfg.Ledger.Get(ctx, ref.ID); err != nil {
				return err
			}
			rec.Ref, claim, resolved = ref, "", false
			continue
		case sendledger.InDoubt:
			claim, rec, resolved = cur.Claim, cur, false
			if rec.Details.Sender == "" {
				rec.Details.Sender = sender
			}
			look, got, err := h.resolve(ctx, log, rc, cmd, rec, &lookFailures)
			if look == lookDone || err != nil {
				return err
			}
			if look == lookNothing {
				// Nothing was created: the next attempt may send.
				resolved = true
			} else {
				claim, rec = "", got
			}
			continue
		}
		claim, rec, resolved = cur.Claim, cur, false
		o := sendledger.Outcome[Details]{Ref: ref, Claim: claim}
		msg, err := rc.Api.CreateMessage(h.createParams(cmd, rec))
		if err == nil {
			if msg.Sid != nil {
				o.ProviderID = *msg.Sid
			}
			o.Answer = deref(msg.Status)
			if msg.NumSegments != nil && *msg.NumSegments != "0" && *msg.NumSegments != fmt.Sprint(det.Segments) {
				log.InfoContext(ctx, "Twilio counts the segments differently", "twilio_segments", *msg.NumSegments, "segments", det.Segments, "encoding", det.Encoding)
			}
			return h.sent(ctx, log, o)
		}
		if ctx.Err() != nil {
			// The attempt stays in doubt: the next delivery looks for it.
			h.release(ctx, log, o, err)
			return fmt.Errorf("send message %s: %w", cmd.MessageID, err)
		}
		oc := classify(err)
		if oc.unsubscribed {
			// Twilio knows of a STOP we missed: remember it, so that
			// the next message is refused before calling Twilio.
			if err := h.cfg.Consent.Set(ctx, ref.ChannelAccountID, det.To, true, h.cfg.Clock.Now()); err != nil {
				return fmt.Errorf("record opt-out reported by Twilio for message %s: %w", cmd.MessageID, err)
			}
		}
		o.Reason, o.Resolved = oc.reason, oc.resolved
		if oc.resolved || oc.permanent {
			o.Answer = oc.reason
		}
		if oc.permanent {
			log.WarnContext(ctx, "Twilio refused the message", "attempt", rec.Attempts, "reason", oc.reason)
			return h.fail(ctx, log, o)
		}
		delay := h.cfg.Retry.Delay(rec.Attempts)
		o.At = h.cfg.Clock.Now()
		o.NextAttemptAt = o.At.Add(delay)
		if rec, err = h.cfg.Ledger.Retry(ctx, o); err != nil {
			return err
		}
		if rec.Final() {
			return h.publish(ctx, rec)
		}
		claim = ""
		if h.cfg.Retry.Exhausted(rec.Attempts) {
			// Fail at the top of the loop, after looking for the
			// message if this last attempt is in doubt.
			continue
		}
		log.InfoContext(ctx, "Twilio attempt failed; will retry", "attempt", rec.Attempts, "in_doubt", rec.InDoubt(), "reason", oc.reason)
		if err := h.wait(ctx, cmd.MessageID, delay); err != nil {
			return err
		}
	}
}

// What a search for the message of an attempt in doubt came to.
type lookOutcome int

const (
	// lookDone: the message is settled (adopted, or failed) or the
	// command must come back later; Handle returns resolve's error.
	lookDone lookOutcome = iota
	// lookNothing: Twilio has no such message; the caller may send.
	lookNothing
	// lookAgain: the search failed and may be tried again; the message
	// is released (the returned record) and the pause waited.
	lookAgain
)

// resolve looks, holding the claim of rec, for the message an attempt in
// doubt may have created, and adopts it when found. A failed search that
// may be tried again is counted in *lookFailures.
func (h *Handler) resolve(ctx context.Context, log *slog.Logger, rc *twilio.RestClient, cmd events.SendMessage, rec Record, lookFailures *int) (lookOutcome, Record, error) {
	o := sendledger.Outcome[Details]{Ref: rec.Ref, Claim: rec.Claim}
	sid, found, err := h.findCreated(ctx, rc, rec, cmd.Text)
	switch {
	case err == nil && found:
		log.InfoContext(ctx, "an earlier attempt had reached Twilio; adopting its message instead of sending again", "twilio_sid", sid)
		o.ProviderID = sid
		return lookDone, rec, h.sent(ctx, log, o)
	case err == nil:
		return lookNothing, rec, nil
	case ctx.Err() != nil:
		h.release(ctx, log, o, err)
		return lookDone, rec, fmt.Errorf("look for message %s at Twilio: %w", cmd.MessageID, err)
	}
	oc := classify(err)
	if oc.permanent {
		o.Reason = "could not check whether an earlier attempt reached Twilio (it may have): " + oc.reason
		return lookDone, rec, h.fail(ctx, log, o)
	}
	*lookFailures++
	o.Reason = "looking for an earlier attempt: " + oc.reason
	if h.cfg.Retry.Exhausted(*lookFailures) {
		// Neither sending again nor failing is right while the message
		// may exist: let the command come back.
		h.release(ctx, log, o, err)
		return lookDone, rec, fmt.Errorf("message %s: an earlier attempt may have reached Twilio, and its message list cannot be read: %s", cmd.MessageID, oc.reason)
	}
	log.InfoContext(ctx, "could not look for an earlier attempt at Twilio; will retry", "error", oc.reason)
	delay := h.cfg.Retry.Delay(*lookFailures)
	o.At = h.cfg.Clock.Now()
	o.NextAttemptAt = o.At.Add(delay)
	got, err := h.cfg.Ledger.Retry(ctx, o)
	if err != nil {
		return lookDone, rec, err
	}
	if got.Final() {
		return lookDone, got, h.publish(ctx, got)
	}
	return lookAgain, got, h.wait(ctx, cmd.MessageID, delay)
}

// release lets go of a message whose attempt or search was cut short
// (cause, unless o says why), leaving it in doubt, so that the next
// delivery need not wait for the claim to run out. A failure is only
// logged: the claim then runs out by itself.
func (h *Handler) release(ctx context.Context, log *slog.Logger, o sendledger.Outcome[Details], cause error) {
	if o.Reason == "" {
		o.Reason = "interrupted: " + cause.Error()
	}
	o.At = h.cfg.Clock.Now()
	if _, err := h.cfg.Ledger.Retry(context.WithoutCancel(ctx), o); err != nil {
		log.WarnContext(ctx, "could not release the interrupted message", "error", err)
	}
}

// wait pauses for delay before the next try of message id.
func (h *Handler) wait(ctx context.Context, id string, delay time.Duration) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait to retry message %s: %w", id, ctx.Err())
	case <-h.cfg.Clock.After(delay):
		return nil
	}
}

// lease is how long an attempt or a search holds a message against other
// consumers: longer than one call to Twilio.
func (h *Handler) lease() time.Duration { return h.cfg.API.timeout + leaseMargin }

// leaseMargin is what a lease adds to the longest call to Twilio.
const leaseMargin = 30 * time.Second

// createParams are those of Twilio's create-message call for rec.
func (h *Handler) createParams(cmd events.SendMessage, rec Record) *openapi.CreateMessageParams {
	p := &openapi.CreateMessageParams{}
	p.SetTo(rec.Details.To)
	p.SetBody(cmd.Text)
	if isMessagingService(rec.Details.Sender) {
		p.SetMessagingServiceSid(rec.Details.Sender)
	} else {
		p.SetFrom(rec.Details.Sender)
	}
	if h.cfg.StatusCallback != nil {
		if u := h.cfg.StatusCallback(rec.ChannelAccountID, rec.ID); u != "" {
			p.SetStatusCallback(u)
		}
	}
	return p
}

// chooseSender returns what to send from: the thread's own number (the
// part of the thread key "<our number>:<customer number>" before the colon)
// if it is one of the account's numbers or Messaging Services, so that the
// customer's answer lands in the same thread; else the account's first
// number; else, for an account that receives through a Messaging Service
// only, its first Messaging Service.
func chooseSender(acct events.SMSAccount, threadKey string) (string, error) {
	if ours, _, ok := strings.Cut(threadKey, ":"); ok && ours != "" {
		if slices.Contains(acct.Numbers, ours) || slices.Contains(acct.MessagingServiceSIDs, ours) {
			return ours, nil
		}
	}
	if len(acct.Numbers) > 0 {
		return acct.Numbers[0], nil
	}
	if len(acct.MessagingServiceSIDs) > 0 {
		return acct.MessagingServiceSIDs[0], nil
	}
	return "", fmt.Errorf("SMS account %s has no number nor Messaging Service to send from", acct.ID)
}

// isMessagingService reports whether sender is a Messaging Service SID
// rather than a number.
func isMessagingService(sender string) bool { return strings.HasPrefix(sender, "MG") }

// Looking for a message an attempt in doubt may have created.
const (
	// lookPageSize messages, the most recent, are searched: more than an
	// agent sends one customer from one number while an attempt is in
	// doubt.
	lookPageSize = 50
	// clockSkew widens the search before the attempt started: Twilio
	// dates its messages by its own clock, to the second.
	clockSkew = 2 * time.Minute
	// directionOutboundAPI is the direction of messages created through
	// the REST API.
	directionOutboundAPI = "outbound-api"
)

// findCreated looks among Twilio's latest messages to rec's number for the
// one an attempt in doubt may have created: from its sender, with body, created
// through the API no earlier than rec.InDoubtSince (less clockSkew), and
// whose SID no other message of the ledger holds. The earliest such one is
// returned. Date filters are not used: Twilio filters on date_sent, which a
// message still queued does not have.
func (h *Handler) findCreated(ctx context.Context, rc *twilio.RestClient, rec Record, body string) (sid string, found bool, err error) {
	p := &openapi.ListMessageParams{}
	p.SetTo(rec.Details.To)
	viaService := isMessagingService(rec.Details.Sender)
	if !viaService {
		// A Messaging Service picks the number itself.
		p.SetFrom(rec.Details.Sender)
	}
	p.SetPageSize(lookPageSize)
	page, err := rc.Api.PageMessage(p, "", "")
	if err != nil {
		return "", false, fmt.Errorf("list Twilio messages: %w", err)
	}
	since := rec.InDoubtSince.Add(-clockSkew)
	type candidate struct {
		sid     string
		created time.Time
	}
	var cands []candidate
	var sids []string
	for _, m := range page.Messages {
		if m.Sid == nil || deref(m.Body) != body || deref(m.Direction) != directionOutboundAPI {
			continue
		}
		if viaService && deref(m.MessagingServiceSid) != rec.Details.Sender {
			continue
		}
		created, err := time.Parse(time.RFC1123Z, deref(m.DateCreated))
		if err != nil || created.Before(since) {
			continue
		}
		cands = append(cands, candidate{*m.Sid, created})
		sids = append(sids, *m.Sid)
	}
	if len(cands) == 0 {
		return "", false, nil
	}
	claimed, err := h.cfg.Ledger.Claimed(ctx, rec.TenantID, rec.ID, sids)
	if err != nil {
		return "", false, err
	}
	best := -1
	for i, c := range cands {
		if !claimed[c.sid] && (best < 0 || c.created.Before(cands[best].created)) {
			best = i
		}
	}
	if best < 0 {
		return "", false, nil
	}
	return cands[best].sid, true, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sent records success and publishes the status.
func (h *Handler) sent(ctx context.Context, log *slog.Logger, o sendledger.Outcome[Details]) error {
	// Twilio has the message: recording it must not be cut short by the
	// consumer stopping, or the replay would have to look for it.
	o.At = h.cfg.Clock.Now()
	done, err := h.cfg.Ledger.Sent(context.WithoutCancel(ctx), o)
	if err != nil {
		return err
	}
	log.InfoContext(ctx, "message sent", "twilio_sid", done.ProviderID, "attempts", done.Attempts,
		"segments", done.Details.Segments, "encoding", done.Details.Encoding)
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
		log.WarnContext(ctx, "message failed", "reason", done.LastError, "segments", done.Details.Segments, "encoding", done.Details.Encoding)
	}
	return h.publish(ctx, done)
}

// publish publishes the recorded final status of a message. The time is
// the recorded one, so that a status published again is the same event.
func (h *Handler) publish(ctx context.Context, rec Record) error {
	d := events.Delivery{MessageID: rec.ID, TenantID: rec.TenantID, Status: events.DeliverySent, At: rec.UpdatedAt.UTC()}
	if rec.State == sendledger.StateFailed {
		d.Status, d.Error = events.DeliveryFailed, rec.LastError
		// Derived from the record, so that a status published again says
		// the same: the customer opted out (we knew, or Twilio told us).
		d.OptedOut = rec.LastError == ReasonOptedOut || strings.HasPrefix(rec.LastError, fmt.Sprintf("Twilio error %d:", codeUnsubscribed))
	}
	if err := h.cfg.Publish(ctx, d); err != nil {
		return fmt.Errorf("publish %s delivery of message %s: %w", rec.State, rec.ID, err)
	}
	return nil
}
