// Package sendledger records, in PostgreSQL, what became of each message a
// channel connector (email, SMS, chat) was asked to send: a send is recorded
// before every attempt and checked before the next, so that a command
// handled again (a replay after a crash, a rebalance, an HTTP retry) does
// not send what was sent.
//
// # A send's life
//
// A send is named by its id, the command's message id. Begin records, in
// its own transaction and before the attempt, that an attempt starts: the
// row goes to state attempting, its attempts grow by one, and the caller
// holds the send (a claim, until Attempt.Lease has passed) against other
// workers. The caller then makes the attempt and records its outcome:
//
//   - Sent: the provider has the message (with its id and answer). Final.
//   - Failed: it will not be sent (a refusal, the attempts used up). Final,
//     until Replay sets it pending again.
//   - Retry: the attempt failed and another may follow at NextAttemptAt;
//     the claim is released.
//
// Begin checks the row first and answers with a Verdict: Proceed (attempt
// it), Settled (it has its outcome: report it, never send again), Busy
// (another worker holds it right now) or InDoubt.
//
// # In doubt
//
// An attempt is in doubt from its start until its outcome is recorded, or
// until a Retry says the provider refused it (Resolved). A crash between
// the provider's answer and the commit of Sent, a timeout, a 5xx from a
// gateway all leave the attempt in doubt: the provider may have the
// message. No rule fits every channel, so the ledger does not choose:
// Begin on a send in doubt takes the claim without counting an attempt and
// answers InDoubt, and the caller resolves it its channel's way. Email
// sends again (the same Message-ID, which receivers collapse); SMS looks
// for the message in Twilio's list and adopts it (Sent with its SID) or,
// finding none, attempts again; a chat endpoint that dedupes on the
// message id may simply be called again. To attempt again, the caller
// calls Begin with Resend and the claim it holds.
//
// # Storage
//
// The table send_ledger lives in the connector's own schema (New takes its
// name; Migrate creates it there, with its own version table). What the
// ledger reasons about or looks up is a typed column: state, attempts,
// doubt, claim, next attempt, the provider's id (unique per tenant, indexed
// for bounces, status callbacks and adoption), its answer, the last error.
// What only a channel knows and nobody queries (an SMS's sender, encoding
// and segments, a chat endpoint's HTTP status) is the jsonb column details,
// typed on the Go side by the ledger's type parameter D. Typed columns for
// each channel's fields would make this shared table, in every connector's
// schema, carry every channel's columns, and change with each new channel;
// jsonb lets a channel add a field without a migration, at the cost of not
// being queryable efficiently, which none of these fields needs to be.
//
// Times are passed in by the caller, whose clock the tests control; claims
// compare them, so replicas' clocks must agree to well within a lease.
package sendledger

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
)

//go:embed migrations/*.sql
var migrations embed.FS

// versionTable keeps the ledger's migrations apart from those of the
// connector's other packages in the same schema.
const versionTable = "send_ledger_version"

// State is where a send is in its life.
type State string

// States of a send.
const (
	// StatePending: no attempt runs. Either none was made yet, or the last
	// one failed and another may follow (at NextAttemptAt).
	StatePending State = "pending"
	// StateAttempting: a worker holds the send (Claim) until ClaimedUntil
	// and its attempt's outcome is not recorded yet. Once the claim ran
	// out, the attempt is taken as interrupted and is in doubt.
	StateAttempting State = "attempting"
	// StateSent: the provider has the message. Final.
	StateSent State = "sent"
	// StateFailed: the message will not be sent. Final, until Replay.
	StateFailed State = "failed"
)

// Errors callers branch on.
var (
	// ErrNotFound: no send has that id (for the tenant).
	ErrNotFound = errors.New("no such send")
	// ErrClaimed: another worker holds the send; nothing was changed.
	ErrClaimed = errors.New("the send is held by another worker")
	// ErrNotFailed: Replay of a send that is not failed.
	ErrNotFailed = errors.New("the send is not failed")
	// ErrProviderIDTaken: another send of the tenant already has that
	// provider id.
	ErrProviderIDTaken = errors.New("the provider id belongs to another send")
)

// Ref names a send and says whose it is: a row is created with it.
type Ref struct {
	// ID is the send's id: the command's message id. Required.
	ID string
	// TenantID owns the send. Required.
	TenantID string
	// ChannelAccountID is the mailbox, SMS account or chat channel it is
	// sent from.
	ChannelAccountID string
	// ConversationID is the conversation it belongs to.
	ConversationID string
}

// Send is the ledger's row of one send. D is the channel's details.
type Send[D any] struct {
	Ref
	// State is where the send is.
	State State
	// Attempts counts the attempts started, over every delivery of the
	// command (Replay sets it back to 0).
	Attempts int
	// ProviderID is the provider's id of the message: Message-ID for
	// email, the Twilio SID for SMS, the id a chat endpoint answers with.
	ProviderID string
	// Answer is what the provider answered to the attempt that settled
	// the send, or to the last one.
	Answer string
	// LastError is the last failure: a retried one while pending, the
	// reason when failed. A send sent after retries keeps it.
	LastError string
	// InDoubtSince is the start of the earliest attempt that may have
	// reached the provider without our learning its outcome; zero when
	// none is in doubt.
	InDoubtSince time.Time
	// Claim is the token of the worker holding the send while attempting;
	// ClaimedUntil is when its hold ends.
	Claim        string
	ClaimedUntil time.Time
	// NextAttemptAt is when a pending send is due for its next attempt;
	// zero for at once.
	NextAttemptAt time.Time
	// Details is what the channel records of the send.
	Details D
	// CreatedAt is when the send was first recorded; UpdatedAt when its
	// state or attempts last changed, for an outcome when it was known.
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Final reports whether the send has its outcome.
func (s Send[D]) Final() bool { return s.State == StateSent || s.State == StateFailed }

// InDoubt reports whether an attempt of the send may have reached the
// provider without our learning its outcome.
func (s Send[D]) InDoubt() bool { return !s.Final() && !s.InDoubtSince.IsZero() }

// heldByOther reports whether a worker other than the holder of claim
// holds the send at at.
func (s Send[D]) heldByOther(claim string, at time.Time) bool {
	return s.State == StateAttempting && s.Claim != claim && s.ClaimedUntil.After(at)
}

// Cursor is where a page of ListFailed ends.
func (s Send[D]) Cursor() Cursor { return Cursor{UpdatedAt: s.UpdatedAt, ID: s.ID} }

// Verdict is Begin's answer.
type Verdict int

// Begin's verdicts.
const (
	// Proceed: the attempt is recorded and the caller holds the send: it
	// makes the attempt, then records its outcome (Sent, Failed, Retry).
	Proceed Verdict = iota + 1
	// Settled: the send has its outcome. The caller must not attempt it
	// and reports the recorded outcome.
	Settled
	// Busy: another worker holds the send, until Send.ClaimedUntil. The
	// caller must not attempt it now; WaitClaim waits, then Begin again.
	Busy
	// InDoubt: an earlier attempt may have reached the provider
	// (Send.InDoubtSince). The caller holds the send, no attempt is
	// counted, and it resolves the doubt its channel's way: Sent with the
	// message found, Failed, Retry, or Begin again with Resend (and the
	// claim) to attempt anyway.
	InDoubt
)

func (v Verdict) String() string {
	switch v {
	case Proceed:
		return "proceed"
	case Settled:
		return "settled"
	case Busy:
		return "busy"
	case InDoubt:
		return "in doubt"
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Attempt is what Begin records.
type Attempt[D any] struct {
	Ref
	// Claim is the token of the claim the caller holds (Send.Claim of an
	// earlier InDoubt), "" when it holds none.
	Claim string
	// Resend attempts a send in doubt anyway: the caller ruled out that
	// the provider has the message, or accepts that it may get it twice.
	Resend bool
	// Lease is how long the caller holds the send: longer than the
	// attempt can take, or another worker may attempt it meanwhile. After
	// a crash, the send waits that long before it is attempted again.
	// Required.
	Lease time.Duration
	// ProviderID, when known before sending (email's Message-ID), is
	// recorded with the attempt.
	ProviderID string
	// Details, when set, replace the recorded ones.
	Details *D
	// At is when the attempt starts; now when zero.
	At time.Time
}

// Outcome is what Sent, Failed and Retry record.
type Outcome[D any] struct {
	Ref
	// Claim is the token of the claim the caller holds, "" when none.
	Claim string
	// ProviderID is the provider's id of the message, when it gave one;
	// "" keeps the recorded one.
	ProviderID string
	// Answer is what the provider answered ("250 2.0.0 Ok: queued as
	// 4F2A", "Twilio error 21211: ...", "HTTP 503: ..."), "" when it
	// answered nothing.
	Answer string
	// Reason is why the send failed (Failed), or why the attempt did
	// (Retry).
	Reason string
	// Resolved (Retry) says the failure proves the provider does not have
	// the message (it refused it), which ends the doubt; otherwise (no
	// answer, a 5xx) the attempt stays in doubt.
	Resolved bool
	// NextAttemptAt (Retry) is when the next attempt is due; zero for at
	// once.
	NextAttemptAt time.Time
	// Details, when set, replace the recorded ones.
	Details *D
	// At is when the outcome was known; now when zero.
	At time.Time
}

// Ledger is the send ledger of one schema. D is the type of the channel's
// details, stored as JSON; struct{} for none.
type Ledger[D any] struct {
	pool   *pgxpool.Pool
	schema string
	table  string
}

// New returns the ledger in schema (the connector's own) over pool.
// Migrate must have run.
func New[D any](pool *pgxpool.Pool, schema string) *Ledger[D] {
	return &Ledger[D]{pool: pool, schema: schema, table: pgx.Identifier{schema, "send_ledger"}.Sanitize()}
}

// Migrate creates or updates the ledger's table in the schema. A connector
// whose own migrations move rows into it runs this first.
func (l *Ledger[D]) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("send ledger migrations: %w", err)
	}
	return pg.Migrate(ctx, l.pool, l.schema, versionTable, sub)
}

const columns = `id, tenant_id, channel_account_id, conversation_id, state, attempts, provider_id, answer, last_error,
	in_doubt_since, claim, claimed_until, next_attempt_at, details, created_at, updated_at`

func (l *Ledger[D]) scan(row pgx.Row) (Send[D], error) {
	var s Send[D]
	var doubt, until, next *time.Time
	var details []byte
	err := row.Scan(&s.ID, &s.TenantID, &s.ChannelAccountID, &s.ConversationID, &s.State, &s.Attempts, &s.ProviderID, &s.Answer, &s.LastError,
		&doubt, &s.Claim, &until, &next, &details, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return Send[D]{}, err
	}
	s.InDoubtSince, s.ClaimedUntil, s.NextAttemptAt = deref(doubt), deref(until), deref(next)
	if err := json.Unmarshal(details, &s.Details); err != nil {
		return Send[D]{}, fmt.Errorf("decode details of send %s: %w", s.ID, err)
	}
	return s, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// orNull is t, or NULL when t is zero.
func orNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// encode is the JSON of details, nil (NULL: keep the recorded ones) when
// there are none.
func encode[D any](id string, details *D) (*string, error) {
	if details == nil {
		return nil, nil
	}
	b, err := json.Marshal(details)
	if err != nil {
		return nil, fmt.Errorf("encode details of send %s: %w", id, err)
	}
	s := string(b)
	return &s, nil
}

func orNow(at time.Time) time.Time {
	if at.IsZero() {
		return time.Now()
	}
	return at
}

func check(op string, r Ref) error {
	if r.ID == "" || r.TenantID == "" {
		return fmt.Errorf("send ledger %s: a send needs an id and a tenant (id %q)", op, r.ID)
	}
	return nil
}

// wrap adds context to a statement's error, telling a provider id taken
// by another send.
func wrap(err error, op, id string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "send_ledger_provider_id" {
		return fmt.Errorf("%s send %s: %w", op, id, ErrProviderIDTaken)
	}
	return fmt.Errorf("%s send %s: %w", op, id, err)
}

// newClaim returns a claim token.
func newClaim() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("draw a claim token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Get returns the send id; ok is false when there is none.
func (l *Ledger[D]) Get(ctx context.Context, id string) (s Send[D], ok bool, err error) {
	s, err = l.scan(l.pool.QueryRow(ctx, `SELECT `+columns+` FROM `+l.table+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Send[D]{}, false, nil
	}
	if err != nil {
		return Send[D]{}, false, fmt.Errorf("read send %s: %w", id, err)
	}
	return s, true, nil
}

// Begin checks the send a.ID and, unless it has its outcome, is held by
// another worker or is in doubt, records that an attempt starts: the row
// is created, or set attempting with one more attempt, in doubt from a.At,
// and held by the caller (Send.Claim) for a.Lease. It answers what the
// caller may do (see Verdict) with the row as it is after Begin. Of
// workers beginning the same send at once, one proceeds and the others
// find it busy. Begin does not wait for NextAttemptAt: it is for workers
// that poll Due.
func (l *Ledger[D]) Begin(ctx context.Context, a Attempt[D]) (Send[D], Verdict, error) {
	if err := check("begin", a.Ref); err != nil {
		return Send[D]{}, 0, err
	}
	if a.Lease <= 0 {
		return Send[D]{}, 0, fmt.Errorf("begin send %s: the lease must be positive, got %v", a.ID, a.Lease)
	}
	at := orNow(a.At)
	claim, err := newClaim()
	if err != nil {
		return Send[D]{}, 0, err
	}
	details, err := encode(a.ID, a.Details)
	if err != nil {
		return Send[D]{}, 0, err
	}
	until := at.Add(a.Lease)
	var s Send[D]
	var v Verdict
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		created, err := l.scan(tx.QueryRow(ctx, `
			INSERT INTO `+l.table+` (id, tenant_id, channel_account_id, conversation_id, state, attempts, provider_id,
				in_doubt_since, claim, claimed_until, details, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'attempting', 1, $5, $6, $7, $8, coalesce($9::jsonb, '{}'), $6, $6)
			ON CONFLICT (id) DO NOTHING
			RETURNING `+columns,
			a.ID, a.TenantID, a.ChannelAccountID, a.ConversationID, a.ProviderID, at, claim, until, details))
		if err == nil {
			s, v = created, Proceed
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// The row exists: read it locked, so that of two workers the
		// second decides on what the first wrote.
		cur, err := l.scan(tx.QueryRow(ctx, `SELECT `+columns+` FROM `+l.table+` WHERE id = $1 FOR UPDATE`, a.ID))
		if err != nil {
			return err
		}
		switch {
		case cur.TenantID != a.TenantID:
			return fmt.Errorf("send %s belongs to tenant %s, not %s", a.ID, cur.TenantID, a.TenantID)
		case cur.Final():
			s, v = cur, Settled
			return nil
		case cur.heldByOther(a.Claim, at):
			s, v = cur, Busy
			return nil
		case cur.InDoubt() && !a.Resend:
			// Held while the caller resolves the doubt; no attempt yet.
			s, err = l.scan(tx.QueryRow(ctx, `
				UPDATE `+l.table+` SET state = 'attempting', claim = $2, claimed_until = $3, updated_at = $4
				WHERE id = $1
				RETURNING `+columns, a.ID, claim, until, at))
			v = InDoubt
			return err
		}
		// Any earlier doubt was ruled out or accepted (Resend): the doubt
		// is this attempt's from now on.
		s, err = l.scan(tx.QueryRow(ctx, `
			UPDATE `+l.table+`
			SET state = 'attempting', attempts = attempts + 1, in_doubt_since = $2, claim = $3, claimed_until = $4,
			    next_attempt_at = NULL, provider_id = CASE WHEN $5::text <> '' THEN $5::text ELSE provider_id END,
			    details = coalesce($6::jsonb, details), updated_at = $2
			WHERE id = $1
			RETURNING `+columns, a.ID, at, claim, until, a.ProviderID, details))
		v = Proceed
		return err
	})
	if err != nil {
		return Send[D]{}, 0, wrap(err, "begin", a.ID)
	}
	return s, v, nil
}

// Sent records that the provider has the message, with its id and
// answer, and returns the row. It is recorded whoever holds the send:
// it is the truth, and the caller must record it even if its claim ran
// out. A send that already has its outcome is left as it is and returned:
// the caller reports that one. A send with no row yet gets one. A send
// sent after retries keeps its last error.
func (l *Ledger[D]) Sent(ctx context.Context, o Outcome[D]) (Send[D], error) {
	o.Reason = ""
	return l.finish(ctx, StateSent, o)
}

// Failed records that the message will not be sent, with o.Reason, and
// returns the row. A send that already has its outcome is left as it is
// and returned. A send with no row yet (it failed before any attempt)
// gets one. A send held by another worker is not changed: ErrClaimed.
func (l *Ledger[D]) Failed(ctx context.Context, o Outcome[D]) (Send[D], error) {
	return l.finish(ctx, StateFailed, o)
}

// finish records the outcome state of a send: see Sent and Failed.
func (l *Ledger[D]) finish(ctx context.Context, state State, o Outcome[D]) (Send[D], error) {
	op := "record " + string(state)
	if err := check(op, o.Ref); err != nil {
		return Send[D]{}, err
	}
	details, err := encode(o.ID, o.Details)
	if err != nil {
		return Send[D]{}, err
	}
	s, err := l.scan(l.pool.QueryRow(ctx, `
		INSERT INTO `+l.table+` AS s (id, tenant_id, channel_account_id, conversation_id, state, provider_id, answer, last_error, details, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::jsonb, '{}'), $10, $10)
		ON CONFLICT (id) DO UPDATE
		SET state = EXCLUDED.state,
		    provider_id = CASE WHEN EXCLUDED.provider_id <> '' THEN EXCLUDED.provider_id ELSE s.provider_id END,
		    answer = EXCLUDED.answer,
		    last_error = CASE WHEN EXCLUDED.state = 'failed' THEN EXCLUDED.last_error ELSE s.last_error END,
		    details = coalesce($9::jsonb, s.details),
		    in_doubt_since = NULL, claim = '', claimed_until = NULL, next_attempt_at = NULL,
		    updated_at = EXCLUDED.updated_at
		WHERE s.state IN ('pending', 'attempting')
		  AND (EXCLUDED.state = 'sent' OR s.claim IN ('', $11::text) OR s.claimed_until <= EXCLUDED.updated_at)
		RETURNING `+columns,
		o.ID, o.TenantID, o.ChannelAccountID, o.ConversationID, state, o.ProviderID, o.Answer, o.Reason, details, orNow(o.At), o.Claim))
	if errors.Is(err, pgx.ErrNoRows) {
		return l.settled(ctx, op, o.ID)
	}
	if err != nil {
		return Send[D]{}, wrap(err, op, o.ID)
	}
	return s, nil
}

// Retry records that an attempt failed and another may follow at
// o.NextAttemptAt: the send is pending again and its claim released, with
// o.Reason as its last error; the doubt ends if o.Resolved. It returns the
// row: one that already has its outcome is returned as it is. A send held
// by another worker is not changed (ErrClaimed); one with no row is
// ErrNotFound.
func (l *Ledger[D]) Retry(ctx context.Context, o Outcome[D]) (Send[D], error) {
	details, err := encode(o.ID, o.Details)
	if err != nil {
		return Send[D]{}, err
	}
	at := orNow(o.At)
	s, err := l.scan(l.pool.QueryRow(ctx, `
		UPDATE `+l.table+`
		SET state = 'pending', claim = '', claimed_until = NULL, last_error = $2, answer = $3, next_attempt_at = $4,
		    in_doubt_since = CASE WHEN $5::boolean THEN NULL ELSE in_doubt_since END,
		    details = coalesce($6::jsonb, details), updated_at = $7
		WHERE id = $1 AND state IN ('pending', 'attempting') AND (claim IN ('', $8::text) OR claimed_until <= $7)
		RETURNING `+columns,
		o.ID, o.Reason, o.Answer, orNull(o.NextAttemptAt), o.Resolved, details, at, o.Claim))
	if errors.Is(err, pgx.ErrNoRows) {
		return l.settled(ctx, "record retry of", o.ID)
	}
	if err != nil {
		return Send[D]{}, wrap(err, "record retry of", o.ID)
	}
	return s, nil
}

// settled reads the row an update of op did not apply to: it has its
// outcome (returned), is held by another worker (ErrClaimed) or is
// missing (ErrNotFound).
func (l *Ledger[D]) settled(ctx context.Context, op, id string) (Send[D], error) {
	s, ok, err := l.Get(ctx, id)
	switch {
	case err != nil:
		return Send[D]{}, err
	case !ok:
		return Send[D]{}, fmt.Errorf("%s send %s: %w", op, id, ErrNotFound)
	case !s.Final():
		return s, fmt.Errorf("%s send %s: %w (until %s)", op, id, ErrClaimed, s.ClaimedUntil.Format(time.RFC3339))
	}
	return s, nil
}

// Replay sets the failed send id of tenantID pending again, due at at,
// with its attempts back to 0 and its last error kept, and returns it: the
// next Begin attempts it afresh. It does not send anything: a worker that
// polls Due picks it up; a connector driven by commands needs the command
// again. A send that is not failed is ErrNotFailed; one that is not the
// tenant's, ErrNotFound.
func (l *Ledger[D]) Replay(ctx context.Context, tenantID, id string, at time.Time) (Send[D], error) {
	at = orNow(at)
	s, err := l.scan(l.pool.QueryRow(ctx, `
		UPDATE `+l.table+`
		SET state = 'pending', attempts = 0, next_attempt_at = $3, updated_at = $3
		WHERE id = $1 AND tenant_id = $2 AND state = 'failed'
		RETURNING `+columns, id, tenantID, at))
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Send[D]{}, fmt.Errorf("replay send %s: %w", id, err)
	}
	cur, ok, err := l.Get(ctx, id)
	switch {
	case err != nil:
		return Send[D]{}, err
	case !ok || cur.TenantID != tenantID:
		return Send[D]{}, fmt.Errorf("replay send %s: %w", id, ErrNotFound)
	}
	return cur, fmt.Errorf("replay send %s (%s): %w", id, cur.State, ErrNotFailed)
}

// Cursor is the position after which a page of ListFailed starts.
type Cursor struct {
	UpdatedAt time.Time
	ID        string
}

// Page selects a page of a listing.
type Page struct {
	// Limit is the most sends returned: 100 when 0, at most 1,000.
	Limit int
	// After is the Cursor of the last send of the previous page; zero for
	// the first page.
	After Cursor
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 100
	case p.Limit > 1000:
		return 1000
	}
	return p.Limit
}

// ListFailed returns the failed sends of tenantID, the latest failure
// first.
func (l *Ledger[D]) ListFailed(ctx context.Context, tenantID string, p Page) ([]Send[D], error) {
	return l.list(ctx, "list failed sends of tenant "+tenantID, `
		SELECT `+columns+` FROM `+l.table+`
		WHERE tenant_id = $1 AND state = 'failed' AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3))
		ORDER BY updated_at DESC, id DESC
		LIMIT $4`, tenantID, orNull(p.After.UpdatedAt), p.After.ID, p.limit())
}

// Due returns at most limit sends due for an attempt at at, the longest
// due first: pending ones whose next attempt is due, and those whose
// claim ran out (their worker stopped mid-attempt). A worker that polls
// Begins each; another worker polling at the same time finds it busy.
func (l *Ledger[D]) Due(ctx context.Context, at time.Time, limit int) ([]Send[D], error) {
	const due = `(CASE state WHEN 'attempting' THEN claimed_until ELSE coalesce(next_attempt_at, updated_at) END)`
	return l.list(ctx, "list due sends", `
		SELECT `+columns+` FROM `+l.table+`
		WHERE state IN ('pending', 'attempting') AND `+due+` <= $1
		ORDER BY `+due+`, id
		LIMIT $2`, orNow(at), Page{Limit: limit}.limit())
}

func (l *Ledger[D]) list(ctx context.Context, what, sql string, args ...any) ([]Send[D], error) {
	rows, err := l.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []Send[D]
	for rows.Next() {
		s, err := l.scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// FindByProviderID returns the send of tenantID that the provider knows as
// providerID (a bounce's Message-ID, a status callback's SID); ok is false
// when there is none.
func (l *Ledger[D]) FindByProviderID(ctx context.Context, tenantID, providerID string) (s Send[D], ok bool, err error) {
	if providerID == "" {
		return Send[D]{}, false, nil
	}
	s, err = l.scan(l.pool.QueryRow(ctx, `SELECT `+columns+` FROM `+l.table+` WHERE tenant_id = $1 AND provider_id = $2`, tenantID, providerID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Send[D]{}, false, nil
	}
	if err != nil {
		return Send[D]{}, false, fmt.Errorf("find the send of provider id %s: %w", providerID, err)
	}
	return s, true, nil
}

// Claimed returns which of providerIDs another send of tenantID than id
// already has: a message found while resolving a doubt is adopted only if
// it is nobody else's.
func (l *Ledger[D]) Claimed(ctx context.Context, tenantID, id string, providerIDs []string) (map[string]bool, error) {
	claimed := map[string]bool{}
	if len(providerIDs) == 0 {
		return claimed, nil
	}
	rows, err := l.pool.Query(ctx, `SELECT provider_id FROM `+l.table+` WHERE tenant_id = $1 AND provider_id = ANY($2) AND id <> $3`,
		tenantID, providerIDs, id)
	if err != nil {
		return nil, fmt.Errorf("check provider ids for send %s: %w", id, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check provider ids for send %s: %w", id, err)
	}
	for _, p := range got {
		claimed[p] = true
	}
	return claimed, nil
}

// Polling bounds of WaitClaim.
const (
	minClaimWait = 50 * time.Millisecond
	maxClaimWait = 5 * time.Second
)

// WaitClaim waits, after a Busy verdict, until the claim of s may have
// ended (at most a few seconds, so that a holder that finishes early is
// noticed soon), or until ctx ends. The caller then calls Begin again.
func WaitClaim[D any](ctx context.Context, clock retry.Clock, s Send[D]) error {
	d := min(max(s.ClaimedUntil.Sub(clock.Now()), minClaimWait), maxClaimWait)
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait for the claim on send %s: %w", s.ID, ctx.Err())
	case <-clock.After(d):
		return nil
	}
}
