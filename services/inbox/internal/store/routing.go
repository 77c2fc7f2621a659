package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Presence statuses an agent sets.
const (
	PresenceOnline  = "online"
	PresenceAway    = "away"
	PresenceOffline = "offline"
)

// heldStates are the states in which a conversation counts against its
// assignees' capacity: offered (reserved), assigned, answered (the agent
// still owns the thread) and closing. A deferred conversation is put aside
// and counts for nothing until it wakes.
var heldStates = []string{string(domain.StateOffered), string(domain.StateAssigned), string(domain.StateAnswered), string(domain.StateClosing)}

// queueRouting returns a queue's routing settings; nil when it has none
// (pull).
func queueRouting(ctx context.Context, db queryRower, tenant, queue uuid.UUID) (*events.QueueRouting, error) {
	var r *events.QueueRouting
	err := db.QueryRow(ctx, `SELECT routing FROM inbox.queues WHERE tenant_id = $1 AND id = $2`, tenant, queue).Scan(&r)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read the routing of queue %s: %w", queue, err)
	}
	return r, nil
}

// GetQueueRouting returns a queue's routing settings, the defaults (pull)
// when nobody set them.
func (s *Store) GetQueueRouting(ctx context.Context, tenant, queue uuid.UUID) (events.QueueRouting, error) {
	r, err := queueRouting(ctx, s.pool, tenant, queue)
	if err != nil || r == nil {
		return events.DefaultQueueRouting(), err
	}
	return *r, nil
}

// PutQueueRouting replaces a queue's routing settings and announces the
// queue.
func (s *Store) PutQueueRouting(ctx context.Context, tx pgx.Tx, tenant, queue uuid.UUID, r events.QueueRouting, now time.Time) (events.QueueRouting, error) {
	if err := r.Validate(); err != nil {
		var fe *events.FieldError
		if errors.As(err, &fe) {
			return r, domain.Invalid(fe.Field, fe.Reason)
		}
		return r, err
	}
	q, err := queueKind.get(ctx, tx, tenant, queue)
	if err != nil {
		return r, err
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox.queues SET routing = $3 WHERE tenant_id = $1 AND id = $2`, tenant, queue, r); err != nil {
		return r, fmt.Errorf("write the routing of queue %s: %w", queue, err)
	}
	rec, err := queueRecord(ctx, tx, tenant, q, now)
	if err != nil {
		return r, err
	}
	return r, s.outbox.Add(ctx, tx, rec)
}

// Presence is an agent's presence as they set it.
type Presence struct {
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
	// Reason says why when the agent did not choose it (missed_offer).
	Reason string `json:"reason,omitempty"`
}

// GetPresence returns the presence user set.
func (s *Store) GetPresence(ctx context.Context, tenant, user uuid.UUID) (Presence, error) {
	var p Presence
	err := s.pool.QueryRow(ctx, `SELECT presence, presence_since, presence_reason FROM inbox.users WHERE tenant_id = $1 AND id = $2`,
		tenant, user).Scan(&p.Status, &p.Since, &p.Reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("read the presence of user %s: %w", user, err)
	}
	return p, nil
}

// SetPresence records that user's presence is status (for reason, empty
// when they chose it) and announces it on sb.config.v1 when it changed.
// It returns the presence now in force and whether it changed.
func (s *Store) SetPresence(ctx context.Context, tx pgx.Tx, tenant, user uuid.UUID, status, reason string, now time.Time) (Presence, bool, error) {
	switch status {
	case PresenceOnline, PresenceAway, PresenceOffline:
	default:
		return Presence{}, false, domain.Invalid("status", "must be online, away or offline")
	}
	var p Presence
	err := tx.QueryRow(ctx, `SELECT presence, presence_since, presence_reason FROM inbox.users WHERE tenant_id = $1 AND id = $2 FOR UPDATE`,
		tenant, user).Scan(&p.Status, &p.Since, &p.Reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, ErrNotFound
	}
	if err != nil {
		return p, false, fmt.Errorf("read the presence of user %s: %w", user, err)
	}
	if p.Status == status {
		return p, false, nil
	}
	// To the microsecond, as PostgreSQL keeps it: what is answered and
	// announced is what GetPresence reads back.
	p = Presence{Status: status, Since: now.Truncate(time.Microsecond), Reason: reason}
	if _, err := tx.Exec(ctx, `UPDATE inbox.users SET presence = $3, presence_since = $4, presence_reason = $5 WHERE tenant_id = $1 AND id = $2`,
		tenant, user, p.Status, p.Since, p.Reason); err != nil {
		return p, false, fmt.Errorf("write the presence of user %s: %w", user, err)
	}
	rec, err := presenceRecord(tenant, user, p, now)
	if err != nil {
		return p, false, err
	}
	return p, true, s.outbox.Add(ctx, tx, rec)
}

// AnnouncePresence publishes user's presence again, unchanged: their
// heartbeats reappeared after they were taken as gone or Redis lost its
// data, and routing must hear that they are back.
func (s *Store) AnnouncePresence(ctx context.Context, tenant, user uuid.UUID, now time.Time) (Presence, error) {
	var p Presence
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT presence, presence_since, presence_reason FROM inbox.users WHERE tenant_id = $1 AND id = $2`,
			tenant, user).Scan(&p.Status, &p.Since, &p.Reason)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read the presence of user %s: %w", user, err)
		}
		rec, err := presenceRecord(tenant, user, p, now)
		if err != nil {
			return err
		}
		return s.outbox.Add(ctx, tx, rec)
	})
	return p, err
}

func presenceRecord(tenant, user uuid.UUID, p Presence, now time.Time) (outbox.Record, error) {
	return configRecord("presence", events.TypePresence, tenant, user,
		events.Presence{TenantID: tenant.String(), UserID: user.String(), Status: p.Status, Since: p.Since, Reason: p.Reason}, now)
}

// AgentRouting is what supervisors see of an agent's part in routing.
type AgentRouting struct {
	ID       uuid.UUID `json:"id"`
	Name     string    `json:"name"`
	Presence Presence  `json:"presence"`
	// Connected: the agent's heartbeats are fresh (filled by the API from
	// Redis).
	Connected bool `json:"connected"`
	Capacity  int  `json:"capacity"`
	// Load is the weighted count of the conversations the agent holds.
	Load float64 `json:"load"`
	// Held is how many conversations the agent holds.
	Held         int   `json:"held"`
	MissedOffers int64 `json:"missed_offers"`
}

// loadSQL is the weighted load of user $1 in tenant $2: each conversation
// the agent holds counts its queue's weight for its channel (1 without a
// queue or weight).
const loadSQL = `SELECT coalesce(sum(coalesce((q.routing -> 'weights' ->> c.channel)::float8, 1)), 0), count(*)
	FROM inbox.conversations c LEFT JOIN inbox.queues q ON q.id = c.queue_id
	WHERE c.tenant_id = $2 AND c.assignee_ids @> ARRAY[$1::uuid] AND c.state = ANY($3)`

// RoutingAgents lists the enabled agents of tenant with their presence,
// load and missed offers, by name.
func (s *Store) RoutingAgents(ctx context.Context, tenant uuid.UUID) ([]AgentRouting, error) {
	// Each user's load: loadSQL with u.id for the user (a NULL $1 would
	// match no conversation); $1 is the tenant here too.
	rows, err := s.pool.Query(ctx, `SELECT u.id, u.name, u.presence, u.presence_since, u.presence_reason, u.capacity, u.missed_offers, l.load, l.held
		FROM inbox.users u, LATERAL (`+strings.Replace(loadSQL, "$1::uuid", "u.id", 1)+`) AS l(load, held)
		WHERE u.tenant_id = $1 AND u.disabled_at IS NULL
		ORDER BY lower(u.name), u.id`, tenant, tenant, heldStates)
	if err != nil {
		return nil, fmt.Errorf("list agents' routing: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AgentRouting, error) {
		var a AgentRouting
		err := row.Scan(&a.ID, &a.Name, &a.Presence.Status, &a.Presence.Since, &a.Presence.Reason, &a.Capacity, &a.MissedOffers, &a.Load, &a.Held)
		return a, err
	})
}

// offerable checks, for an offer of c to user, that the user is an enabled
// member of c's queue with room for c: their capacity minus the weighted
// load of what they hold. It locks the user's row, so that offers to one
// agent from different partitions are checked one after the other.
func offerable(ctx context.Context, tx pgx.Tx, c *Conversation, user uuid.UUID) error {
	var (
		capacity int
		member   bool
		load     float64
		held     int
		weight   float64
	)
	err := tx.QueryRow(ctx, `SELECT u.capacity,
			($3::uuid IS NULL OR EXISTS (SELECT 1 FROM inbox.user_queues m WHERE m.user_id = u.id AND m.queue_id = $3))
		FROM inbox.users u WHERE u.id = $1 AND u.tenant_id = $2 AND u.disabled_at IS NULL FOR UPDATE`,
		user, c.Tenant, c.QueueID).Scan(&capacity, &member)
	if errors.Is(err, pgx.ErrNoRows) {
		return &domain.StaleError{Reason: "the agent offered it is not an enabled user of the tenant"}
	}
	if err != nil {
		return fmt.Errorf("read agent %s: %w", user, err)
	}
	if !member {
		return &domain.StaleError{Reason: "the agent offered it is not a member of its queue"}
	}
	if err := tx.QueryRow(ctx, loadSQL, user, c.Tenant, heldStates).Scan(&load, &held); err != nil {
		return fmt.Errorf("read the load of agent %s: %w", user, err)
	}
	weight = 1
	if c.QueueID != nil {
		r, err := queueRouting(ctx, tx, c.Tenant, *c.QueueID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if r != nil {
			weight = r.Weight(c.Channel)
		}
	}
	// A small tolerance: weights are decimals summed as floats.
	if load+weight > float64(capacity)+1e-9 {
		return &domain.StaleError{Reason: fmt.Sprintf("the agent has no room for it (load %g of capacity %d)", load, capacity)}
	}
	return nil
}

// Offer offers c to user until expires with fencing token fence (push
// routing); the caller applies it as a command.
func Offer(ctx context.Context, tx pgx.Tx, c *Conversation, user uuid.UUID, expires time.Time, fence int64) (Change, error) {
	if c.State != domain.StateNew {
		return Change{}, &domain.StaleError{Reason: "only a new conversation can be offered"}
	}
	if fence != 0 && fence < c.Fence {
		return Change{}, &domain.StaleError{Reason: "another assignment happened meanwhile (stale fencing token)"}
	}
	if err := offerable(ctx, tx, c, user); err != nil {
		return Change{}, err
	}
	expires = expires.UTC()
	c.PreviousState, c.State = c.State, domain.StateOffered
	c.Assignees = []uuid.UUID{user}
	c.OfferExpiresAt = &expires
	if fence != 0 {
		c.Fence = fence
	}
	// Written now, not with the rest of the batch, so that the next offer
	// of the batch to this agent counts it.
	if _, err := tx.Exec(ctx, `UPDATE inbox.conversations SET state = $2, assignee_ids = $3 WHERE id = $1`, c.ID, c.State, c.Assignees); err != nil {
		return Change{}, fmt.Errorf("offer conversation %s: %w", c.ID, err)
	}
	return Change{Action: domain.ActionOffer, Data: map[string]any{"user_id": user, "expires_at": expires}}, nil
}

// MissedOffer counts a lapsed offer against user and, when the queue says
// so, makes them away. It returns whether their presence changed.
func (s *Store) MissedOffer(ctx context.Context, tx pgx.Tx, c *Conversation, user uuid.UUID, now time.Time) (bool, error) {
	if _, err := tx.Exec(ctx, `UPDATE inbox.users SET missed_offers = missed_offers + 1 WHERE tenant_id = $1 AND id = $2`, c.Tenant, user); err != nil {
		return false, fmt.Errorf("count the missed offer of user %s: %w", user, err)
	}
	if c.QueueID == nil {
		return false, nil
	}
	r, err := queueRouting(ctx, tx, c.Tenant, *c.QueueID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if r == nil || !r.MissedOfferAway {
		return false, nil
	}
	_, changed, err := s.SetPresence(ctx, tx, c.Tenant, user, PresenceAway, "missed_offer", now)
	return changed, err
}
