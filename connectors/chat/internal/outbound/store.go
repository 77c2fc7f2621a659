package outbound

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
)

// Schema is the chat connector's PostgreSQL schema.
const Schema = "chat"

// versionTable keeps these migrations apart from the ledger's and the
// outbox's in the same schema.
const versionTable = "deliveries_version"

//go:embed migrations/*.sql
var migrations embed.FS

// Details is what the ledger records of a chat delivery beyond its
// columns.
type Details struct {
	// Event is the delivery's event (message.created, ...): only
	// messages get delivery statuses.
	Event string `json:"event,omitempty"`
	// HTTPStatus is the endpoint's status of the last attempt; 0 when it
	// did not answer.
	HTTPStatus int `json:"http_status,omitempty"`
}

// Ledger is the chat connector's send ledger, in schema chat.
type Ledger = sendledger.Ledger[Details]

// Outcomes of a delivery in the deliveries table.
const (
	OutcomeSent    = "sent"
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
)

// Store holds the deliveries, their ledger and the outbox of their
// delivery statuses, in schema chat.
type Store struct {
	pool   *pgxpool.Pool
	ledger *Ledger
	outbox *outbox.Outbox
	source string
}

// NewStore returns the store over pool; Migrate must have run. source is
// the CloudEvents source of the statuses it publishes.
func NewStore(pool *pgxpool.Pool, source string) *Store {
	return &Store{pool: pool, ledger: sendledger.New[Details](pool, Schema), outbox: outbox.New(Schema), source: source}
}

// Ledger returns the send ledger.
func (s *Store) Ledger() *Ledger { return s.ledger }

// Outbox returns the outbox of delivery statuses.
func (s *Store) Outbox() *outbox.Outbox { return s.outbox }

// Migrate creates or updates schema chat: the ledger, the outbox, the
// deliveries.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.ledger.Migrate(ctx); err != nil {
		return err
	}
	if err := s.outbox.Migrate(ctx, s.pool); err != nil {
		return fmt.Errorf("chat outbox: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("chat delivery migrations: %w", err)
	}
	return pg.Migrate(ctx, s.pool, Schema, versionTable, sub)
}

// existing is what Record reads of a delivery recorded before.
type existing struct {
	replay int
	done   bool
}

// Record writes deliveries in one transaction, and returns the channels
// they are for. A delivery already recorded is left alone, unless it is a
// message's replay (a higher Replay than recorded): a failed one is then
// opened again at the end of its conversation's queue, with a new retry
// window; one the ledger holds as sent stays done, and its status is
// published again.
func (s *Store) Record(ctx context.Context, ds []Delivery, now time.Time) ([]string, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	alreadySent, err := s.prepareReplays(ctx, ds, now)
	if err != nil {
		return nil, err
	}
	channels := map[string]bool{}
	var out []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		var statuses []outbox.Record
		for _, d := range ds {
			sent, ok := alreadySent[d.ID]
			outcome, doneAt := "", (*time.Time)(nil)
			if ok {
				outcome, doneAt = OutcomeSent, &now
				st, err := s.status(d.TenantID, d.ID, events.DeliverySent, "", sent.UpdatedAt)
				if err != nil {
					return err
				}
				statuses = append(statuses, st)
			}
			b.Queue(`
				INSERT INTO chat.deliveries AS d (id, tenant_id, channel_id, conversation_id, session_id, user_id, event, body, replay,
					recorded_at, done, outcome, done_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
				ON CONFLICT (id) DO UPDATE
				SET replay = EXCLUDED.replay,
				    seq = CASE WHEN d.done AND NOT EXCLUDED.done THEN nextval('chat.delivery_seq') ELSE d.seq END,
				    window_start = CASE WHEN d.done AND NOT EXCLUDED.done THEN NULL ELSE d.window_start END,
				    done = d.done AND EXCLUDED.done,
				    outcome = CASE WHEN d.done AND EXCLUDED.done THEN d.outcome ELSE '' END,
				    done_at = CASE WHEN d.done AND EXCLUDED.done THEN d.done_at END
				WHERE d.replay < EXCLUDED.replay`,
				d.ID, d.TenantID, d.ChannelID, d.ConversationID, d.SessionID, d.UserID, d.Event, d.Body, d.Replay,
				now, ok, outcome, doneAt)
			if !channels[d.ChannelID] {
				channels[d.ChannelID] = true
				out = append(out, d.ChannelID)
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record %d chat deliveries: %w", len(ds), err)
		}
		return s.outbox.Add(ctx, tx, statuses...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prepareReplays sets the ledger's failed sends of replayed messages
// pending again, and returns the replayed ones it holds as sent.
func (s *Store) prepareReplays(ctx context.Context, ds []Delivery, now time.Time) (map[string]sendledger.Send[Details], error) {
	var ids []string
	for _, d := range ds {
		if d.Replay > 0 {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, replay, done FROM chat.deliveries WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read replayed deliveries: %w", err)
	}
	known := map[string]existing{}
	for rows.Next() {
		var id string
		var e existing
		if err := rows.Scan(&id, &e.replay, &e.done); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read replayed deliveries: %w", err)
		}
		known[id] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read replayed deliveries: %w", err)
	}
	sent := map[string]sendledger.Send[Details]{}
	for _, d := range ds {
		if e, ok := known[d.ID]; d.Replay == 0 || (ok && e.replay >= d.Replay) {
			continue // not a replay, or one recorded already
		}
		cur, ok, err := s.ledger.Get(ctx, d.ID)
		switch {
		case err != nil:
			return nil, err
		case !ok:
			continue // never attempted: it is delivered like a new one
		case cur.State == sendledger.StateSent:
			sent[d.ID] = cur
		case cur.State == sendledger.StateFailed:
			if _, err := s.ledger.Replay(ctx, d.TenantID, d.ID, now); err != nil && !errors.Is(err, sendledger.ErrNotFailed) {
				return nil, err
			}
		}
	}
	return sent, nil
}

// status is the outbox record of a message's delivery status.
func (s *Store) status(tenantID, messageID, status, reason string, at time.Time) (outbox.Record, error) {
	d := events.Delivery{MessageID: messageID, TenantID: tenantID, Status: status, Error: reason, At: at.UTC()}
	ev, err := events.New(events.TypeDelivery, s.source, tenantID, d.At, d)
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Topic: events.TopicDelivery, Key: []byte(messageID), Event: ev}, nil
}

// Head is the first open delivery of one conversation of an endpoint,
// with what the ledger says of it.
type Head struct {
	ID             string
	Seq            int64
	TenantID       string
	ChannelID      string
	ConversationID string
	Event          string
	Replay         int
	// WindowStart is when its first attempt started; zero before.
	WindowStart time.Time
	// State is the ledger's state; "" when it has no row yet.
	State     sendledger.State
	Attempts  int
	LastError string
	// UpdatedAt is the ledger row's; for a final state, when the outcome
	// was known.
	UpdatedAt time.Time
	// Body is what to send.
	Body []byte
}

// Ref is the ledger's name for the delivery.
func (h Head) Ref() sendledger.Ref {
	return sendledger.Ref{ID: h.ID, TenantID: h.TenantID, ChannelAccountID: h.ChannelID, ConversationID: h.ConversationID}
}

// Heads returns up to limit deliveries of channel due at now, in the order
// they were recorded: each the first open delivery of its conversation,
// not yet attempted, due for another attempt, whose claim ran out (its
// worker stopped), or whose outcome the ledger has though the delivery
// is still open (the process stopped in between). Those in skip (the
// caller's attempts in flight) are left out.
func (s *Store) Heads(ctx context.Context, channel string, now time.Time, limit int, skip []string) ([]Head, error) {
	if skip == nil {
		skip = []string{}
	}
	// The heads first (an ordered walk of the open deliveries' index),
	// then what the ledger says of them.
	rows, err := s.pool.Query(ctx, `
		SELECT d.id, d.seq, d.tenant_id, d.conversation_id, d.event, d.replay, d.window_start,
			coalesce(l.state, ''), coalesce(l.attempts, 0), coalesce(l.last_error, ''), l.updated_at, d.body
		FROM (
			SELECT DISTINCT ON (conversation_id) id, seq, tenant_id, conversation_id, event, replay, window_start, body
			FROM chat.deliveries
			WHERE channel_id = $1 AND NOT done
			ORDER BY conversation_id, seq
		) d
		LEFT JOIN chat.send_ledger l ON l.id = d.id
		WHERE d.id <> ALL($4)
		  AND (l.id IS NULL OR l.state IN ('sent', 'failed')
		       OR (l.state = 'pending' AND (l.next_attempt_at IS NULL OR l.next_attempt_at <= $2))
		       OR (l.state = 'attempting' AND l.claimed_until <= $2))
		ORDER BY d.seq
		LIMIT $3`, channel, now, limit, skip)
	if err != nil {
		return nil, fmt.Errorf("read the deliveries due to channel %s: %w", channel, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Head, error) {
		h := Head{ChannelID: channel}
		var window, updated *time.Time
		err := row.Scan(&h.ID, &h.Seq, &h.TenantID, &h.ConversationID, &h.Event, &h.Replay, &window,
			&h.State, &h.Attempts, &h.LastError, &updated, &h.Body)
		h.WindowStart, h.UpdatedAt = deref(window), deref(updated)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the deliveries due to channel %s: %w", channel, err)
	}
	return out, nil
}

// NextDue returns when the next of channel's deliveries held by the
// ledger (retrying, or claimed) is due; zero when none is.
func (s *Store) NextDue(ctx context.Context, channel string) (time.Time, error) {
	var next *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT min(CASE WHEN state = 'attempting' THEN claimed_until ELSE next_attempt_at END)
		FROM chat.send_ledger WHERE state IN ('pending', 'attempting') AND channel_account_id = $1`, channel).Scan(&next)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the next delivery due to channel %s: %w", channel, err)
	}
	return deref(next), nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// StartWindow records at as the start of the delivery's retry window,
// unless one is recorded, and returns the window's start.
func (s *Store) StartWindow(ctx context.Context, id string, at time.Time) (time.Time, error) {
	var start time.Time
	err := s.pool.QueryRow(ctx, `UPDATE chat.deliveries SET window_start = coalesce(window_start, $2) WHERE id = $1 RETURNING window_start`, id, at).Scan(&start)
	if err != nil {
		return time.Time{}, fmt.Errorf("start the retry window of delivery %s: %w", id, err)
	}
	return start, nil
}

// Finish closes the delivery h with outcome (sent, failed, skipped) and,
// for a message sent or failed, puts its delivery status in the outbox, in
// one transaction. A delivery closed already, or opened again by a replay
// since h was read, is left alone: it reports false.
func (s *Store) Finish(ctx context.Context, h Head, outcome, reason string, at time.Time) (bool, error) {
	var closed bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE chat.deliveries SET done = true, outcome = $2, done_at = $3 WHERE id = $1 AND NOT done AND replay = $4`,
			h.ID, outcome, at, h.Replay)
		if err != nil {
			return err
		}
		closed = tag.RowsAffected() == 1
		if !closed || h.Event != events.ChatEventMessage || outcome == OutcomeSkipped {
			return nil
		}
		status := events.DeliverySent
		if outcome == OutcomeFailed {
			status = events.DeliveryFailed
		} else {
			reason = ""
		}
		rec, err := s.status(h.TenantID, h.ID, status, reason, at)
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, rec)
	})
	if err != nil {
		return false, fmt.Errorf("close delivery %s as %s: %w", h.ID, outcome, err)
	}
	return closed, nil
}

// Open returns the number of open deliveries per channel.
func (s *Store) Open(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT channel_id, count(*) FROM chat.deliveries WHERE NOT done GROUP BY channel_id`)
	if err != nil {
		return nil, fmt.Errorf("count open deliveries: %w", err)
	}
	out := map[string]int64{}
	var ch string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&ch, &n}, func() error { out[ch] = n; return nil })
	if err != nil {
		return nil, fmt.Errorf("count open deliveries: %w", err)
	}
	return out, nil
}

// Prune removes up to limit deliveries sent or skipped before before:
// their ledger rows stay. Failed ones are kept for a replay.
func (s *Store) Prune(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM chat.deliveries WHERE id IN (
		SELECT id FROM chat.deliveries WHERE done AND outcome <> 'failed' AND done_at < $1 ORDER BY done_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("prune delivered deliveries: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Users returns, of each conversation, the user id its latest delivery
// named.
func (s *Store) Users(ctx context.Context, conversations []string) (map[string]string, error) {
	out := map[string]string{}
	if len(conversations) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (conversation_id) conversation_id, user_id FROM chat.deliveries
		WHERE conversation_id = ANY($1) AND user_id <> '' ORDER BY conversation_id, seq DESC`, conversations)
	if err != nil {
		return nil, fmt.Errorf("read the users of %d conversations: %w", len(conversations), err)
	}
	var conv, user string
	_, err = pgx.ForEachRow(rows, []any{&conv, &user}, func() error { out[conv] = user; return nil })
	if err != nil {
		return nil, fmt.Errorf("read the users of %d conversations: %w", len(conversations), err)
	}
	return out, nil
}

// MessageChannel returns the tenant and the channel of message id, as the
// ledger holds it once an attempt to deliver it began; ok is false for an
// id that is not a message the ledger knows.
func (s *Store) MessageChannel(ctx context.Context, id string) (tenantID, channelID string, ok bool, err error) {
	send, found, err := s.ledger.Get(ctx, id)
	if err != nil || !found || send.Details.Event != events.ChatEventMessage {
		return "", "", false, err
	}
	return send.TenantID, send.ChannelAccountID, true, nil
}
