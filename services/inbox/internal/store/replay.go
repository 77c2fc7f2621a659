package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Failed deliveries and their replays, on every channel. A message whose
// delivery failed (the connector gave up, or the channel said so later)
// may be sent again by an admin: it goes back to pending, the one move
// backwards delivery statuses allow, and its send command is published
// again, rebuilt from what is stored, with a higher Replay, which a
// connector whose ledger holds the send as failed takes as the order to
// send it again. Reports the channel makes afterwards of the failed
// attempts (dated at or before the failure replayed) do not move it; the
// replay's own reports do, by DeliveryRank as always.

// MaxReplayBatch bounds the messages one call of ReplayDeliveries sends
// again; a caller with more calls again.
const MaxReplayBatch = 1000

// Delivery is a message's delivery as the admin API lists it.
type Delivery struct {
	MessageID        uuid.UUID `json:"message_id"`
	ConversationID   uuid.UUID `json:"conversation_id"`
	Channel          string    `json:"channel"`
	ChannelAccountID uuid.UUID `json:"channel_account_id"`
	Status           string    `json:"status"`
	// Error is what the channel or the connector said of the failure.
	Error string `json:"error"`
	// FailedAt is when the delivery failed, as the channel reported it.
	FailedAt time.Time `json:"failed_at"`
	// Replays counts the times it was sent again already.
	Replays int `json:"replays"`
}

// ListFailedDeliveries returns up to limit messages of tenant whose
// delivery failed, on channel ("" for all), after the position (failure
// time, message id), oldest failure first.
func (s *Store) ListFailedDeliveries(ctx context.Context, tenant uuid.UUID, channel string, after *Position, limit int) ([]Delivery, error) {
	args := []any{tenant, channel, limit}
	where := ""
	if after != nil {
		where = ` AND (m.delivery_updated_at, m.id) > ($4, $5)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.conversation_id, c.channel, m.channel_account_id, m.delivery_status,
			coalesce(m.delivery_error, ''), m.delivery_updated_at, m.replays
		FROM inbox.messages m JOIN inbox.conversations c ON c.id = m.conversation_id
		WHERE m.tenant_id = $1 AND m.delivery_status = 'failed' AND ($2 = '' OR c.channel = $2)`+where+`
		ORDER BY m.delivery_updated_at, m.id LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Delivery])
	if err != nil {
		return nil, fmt.Errorf("list failed deliveries: %w", err)
	}
	return out, nil
}

// Replayed is a message sent again.
type Replayed struct {
	MessageID      uuid.UUID `json:"message_id"`
	ConversationID uuid.UUID `json:"conversation_id"`
	// Replay is the replay count its send command carries.
	Replay int `json:"replay"`
}

// replayCandidate is a failed message with what its send command needs.
type replayCandidate struct {
	id, conversation, account uuid.UUID
	status                    string
	failedAt                  time.Time
	replays                   int
	channel, threadKey        string
	body, subject, author     string
	cc                        []string
	attachments, choices      []byte
	automatic                 bool
	replyTo, html             string
	accountDeleted            bool
	// cust is whom it went to: the customer's last message before it.
	cust customer
}

// replayColumns are read by scanCandidate, for messages m of
// conversations c, their channel accounts a, and cu, the customer's last
// message before m (when there is one).
const replayColumns = `m.id, m.conversation_id, c.channel_account_id, coalesce(m.delivery_status, ''), m.delivery_updated_at, m.replays,
	c.channel, c.thread_key, m.body, coalesce(m.subject, ''), coalesce(m.author_id, ''), m.cc, m.attachments, m.choices, m.automatic,
	coalesce(m.reply_to, ''), coalesce(m.html, ''), a.deleted_at IS NOT NULL,
	coalesce(cu.sender, c.thread_key), coalesce(cu.external_id, ''),
	coalesce((SELECT ci.consent FROM inbox.contact_identities ci
	          WHERE ci.tenant_id = m.tenant_id AND ci.channel = 'sms' AND ci.identity = cu.sender), '')`

// replayFrom joins what replayColumns read; the caller adds a WHERE.
const replayFrom = ` FROM inbox.messages m
	JOIN inbox.conversations c ON c.id = m.conversation_id
	JOIN inbox.channel_accounts a ON a.id = c.channel_account_id
	LEFT JOIN LATERAL (SELECT i.sender, i.external_id FROM inbox.messages i
	                   WHERE i.conversation_id = m.conversation_id AND i.direction = 'inbound'
	                     AND (i.received_at, i.id) < (m.received_at, m.id)
	                   ORDER BY i.received_at DESC, i.id DESC LIMIT 1) cu ON true`

func scanCandidate(row pgx.CollectableRow) (replayCandidate, error) {
	var r replayCandidate
	var failedAt *time.Time
	err := row.Scan(&r.id, &r.conversation, &r.account, &r.status, &failedAt, &r.replays, &r.channel, &r.threadKey,
		&r.body, &r.subject, &r.author, &r.cc, &r.attachments, &r.choices, &r.automatic, &r.replyTo, &r.html, &r.accountDeleted,
		&r.cust.to, &r.cust.inReplyTo, &r.cust.consent)
	if failedAt != nil {
		r.failedAt = *failedAt
	}
	return r, err
}

// refusal says why c cannot be sent again now, or is nil.
func (r replayCandidate) refusal() error {
	switch {
	case r.status != events.DeliveryFailed:
		return fmt.Errorf("%w: the message's delivery is %s; only a failed one is sent again", domain.ErrConflict, r.status)
	case r.accountDeleted:
		return fmt.Errorf("%w: the message's channel account was deleted; nothing is sent through it any more", domain.ErrConflict)
	case r.channel == events.ChannelSMS && r.cust.consent == ConsentOptedOut:
		return &domain.OptedOutError{Field: "to", To: r.cust.to}
	}
	return nil
}

// command is the message's send command, as its reply or automatic
// message built it, with the next replay count.
func (r replayCandidate) command(tenant uuid.UUID, now time.Time) (outbox.Record, error) {
	send := events.SendMessage{MessageID: r.id.String(), ConversationID: r.conversation.String(), TenantID: tenant.String(),
		Channel: r.channel, ChannelAccountID: r.account.String(), ThreadKey: r.threadKey, To: r.cust.to, InReplyTo: r.cust.inReplyTo,
		Text: r.body, HTML: r.html, Subject: r.subject, CC: r.cc, AuthorID: r.author, ReplyTo: r.replyTo, Automatic: r.automatic, Replay: r.replays + 1}
	if len(r.attachments) > 0 {
		if err := json.Unmarshal(r.attachments, &send.Attachments); err != nil {
			return outbox.Record{}, fmt.Errorf("decode attachments of message %s: %w", r.id, err)
		}
	}
	if len(r.choices) > 0 {
		if err := json.Unmarshal(r.choices, &send.Choices); err != nil {
			return outbox.Record{}, fmt.Errorf("decode choices of message %s: %w", r.id, err)
		}
	}
	ev, err := events.New(events.TypeSendMessage, EventSource, tenant.String(), now, send)
	if err != nil {
		return outbox.Record{}, err
	}
	ev.Subject = r.conversation.String()
	key := events.ConversationKey(tenant.String(), r.channel, r.account.String(), r.threadKey)
	return outbox.Record{Topic: events.TopicOutbound(r.channel), Key: key, Event: ev}, nil
}

// ReplayDelivery sends a failed message of tenant again, for p. A message
// that is not an outbound one of the tenant is ErrNotFound; one that did
// not fail, whose channel account was deleted, or whose SMS customer
// opted out is refused (409).
func (s *Store) ReplayDelivery(ctx context.Context, p domain.Principal, tenant, id uuid.UUID, now time.Time) (Replayed, error) {
	var out Replayed
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var conv uuid.UUID
		err := tx.QueryRow(ctx, `SELECT conversation_id FROM inbox.messages
			WHERE tenant_id = $1 AND id = $2 AND direction = 'outbound' AND author_kind IS NULL AND anonymised_at IS NULL`, tenant, id).Scan(&conv)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find message %s: %w", id, err)
		}
		cands, err := lockCandidates(ctx, tx, tenant, []uuid.UUID{conv}, []uuid.UUID{id})
		if err != nil {
			return err
		}
		if len(cands) != 1 {
			return ErrNotFound
		}
		if err := cands[0].refusal(); err != nil {
			return err
		}
		done, err := s.replay(ctx, tx, p, tenant, cands, now)
		if err != nil {
			return err
		}
		out = done[0]
		return nil
	})
	return out, err
}

// ReplayDeliveries sends again, for p, up to MaxReplayBatch failed
// messages of tenant on channel ("" for all), oldest failure first, and
// returns them. Those that cannot be sent now (their channel account was
// deleted, their SMS customer opted out) are left failed.
func (s *Store) ReplayDeliveries(ctx context.Context, p domain.Principal, tenant uuid.UUID, channel string, now time.Time) ([]Replayed, error) {
	var out []Replayed
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT m.id, m.conversation_id
			FROM inbox.messages m JOIN inbox.conversations c ON c.id = m.conversation_id
			WHERE m.tenant_id = $1 AND m.delivery_status = 'failed' AND m.direction = 'outbound' AND m.author_kind IS NULL AND m.anonymised_at IS NULL
			  AND ($2 = '' OR c.channel = $2)
			ORDER BY m.delivery_updated_at, m.id LIMIT $3`, tenant, channel, MaxReplayBatch)
		if err != nil {
			return fmt.Errorf("find failed deliveries: %w", err)
		}
		var ids, convs []uuid.UUID
		for rows.Next() {
			var id, conv uuid.UUID
			if err := rows.Scan(&id, &conv); err != nil {
				rows.Close()
				return fmt.Errorf("find failed deliveries: %w", err)
			}
			ids, convs = append(ids, id), append(convs, conv)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("find failed deliveries: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		cands, err := lockCandidates(ctx, tx, tenant, convs, ids)
		if err != nil {
			return err
		}
		ok := cands[:0]
		for _, c := range cands {
			// Another replay may have taken it meanwhile; a message that
			// cannot be sent now stays failed.
			if c.refusal() == nil {
				ok = append(ok, c)
			}
		}
		if len(ok) == 0 {
			return nil
		}
		out, err = s.replay(ctx, tx, p, tenant, ok, now)
		return err
	})
	return out, err
}

// lockCandidates locks the conversations (in id order, as every writer of
// several does, and first: writers of a conversation's events serialise
// on it) and then the messages, and reads the messages with what their
// send commands need, in failure order.
func lockCandidates(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, convs, ids []uuid.UUID) ([]replayCandidate, error) {
	if _, err := tx.Exec(ctx, `SELECT id FROM inbox.conversations WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE`, tenant, convs); err != nil {
		return nil, fmt.Errorf("lock conversations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+replayColumns+replayFrom+`
		WHERE m.tenant_id = $1 AND m.id = ANY($2) AND m.direction = 'outbound' AND m.author_kind IS NULL AND m.anonymised_at IS NULL
		ORDER BY m.delivery_updated_at, m.id
		FOR UPDATE OF m`, tenant, ids)
	if err != nil {
		return nil, fmt.Errorf("read failed deliveries: %w", err)
	}
	cands, err := pgx.CollectRows(rows, scanCandidate)
	if err != nil {
		return nil, fmt.Errorf("read failed deliveries: %w", err)
	}
	return cands, nil
}

// replay moves cands back to pending, one replay more, and adds their
// send commands and audit entries (delivery_replay, by p).
func (s *Store) replay(ctx context.Context, tx pgx.Tx, p domain.Principal, tenant uuid.UUID, cands []replayCandidate, now time.Time) ([]Replayed, error) {
	ids := make([]uuid.UUID, len(cands))
	recs := make([]outbox.Record, 0, len(cands))
	audit := make([]auditEntry, 0, len(cands))
	out := make([]Replayed, 0, len(cands))
	for i, c := range cands {
		ids[i] = c.id
		rec, err := c.command(tenant, now)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
		r := Replayed{MessageID: c.id, ConversationID: c.conversation, Replay: c.replays + 1}
		out = append(out, r)
		audit = append(audit, auditEntry{tenant: tenant, conversation: c.conversation, actorKind: p.ActorKind(), actorID: p.ActorID(),
			action: domain.ActionDeliveryReplay, data: map[string]any{"message_id": c.id.String(), "replay": r.Replay, "failed_at": c.failedAt},
			at: now})
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox.messages SET delivery_status = 'pending', delivery_error = NULL,
			replayed_after = delivery_updated_at, delivery_updated_at = $2, replays = replays + 1
		WHERE id = ANY($1)`, ids, now); err != nil {
		return nil, fmt.Errorf("replay failed deliveries: %w", err)
	}
	if err := writeAudit(ctx, tx, audit...); err != nil {
		return nil, err
	}
	if err := s.outbox.Add(ctx, tx, recs...); err != nil {
		return nil, err
	}
	return out, nil
}
