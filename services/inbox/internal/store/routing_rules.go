package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// This file holds a tenant's routing rules (what admins configure) and
// the channel accounts' default queues; ingest_routing.go applies them
// when ingestion creates a conversation. Nothing else needs them, so they
// are not announced on the config topic.

// RoutingRule is a tenant's rule, as the API shows it. A then-field that
// is nil is left alone by the rule.
type RoutingRule struct {
	ID uuid.UUID `json:"id"`
	// Position orders the tenant's rules from 1; the first that matches
	// wins.
	Position         int                      `json:"position"`
	Name             string                   `json:"name"`
	Conditions       domain.RoutingConditions `json:"conditions"`
	QueueID          *uuid.UUID               `json:"queue_id"`
	RequiredSkillID  *uuid.UUID               `json:"required_skill_id"`
	RequiredLanguage *string                  `json:"required_language"`
	Priority         *int                     `json:"priority"`
	CreatedAt        time.Time                `json:"created_at"`
	UpdatedAt        time.Time                `json:"updated_at"`
}

// RoutingRuleSpec is what defines a rule.
type RoutingRuleSpec struct {
	Name             string
	Conditions       domain.RoutingConditions
	QueueID          *uuid.UUID
	RequiredSkillID  *uuid.UUID
	RequiredLanguage *string
	Priority         *int
}

// Check validates the spec, naming the field at fault as the API spells
// it, and returns it in its stored form. The ids it names are checked
// against the tenant when it is written.
func (r RoutingRuleSpec) Check(validLanguage func(string) bool) (RoutingRuleSpec, error) {
	if err := CheckName("name", r.Name); err != nil {
		return r, err
	}
	c, err := r.Conditions.Check(validLanguage)
	if err != nil {
		return r, err
	}
	r.Conditions = c
	if r.RequiredLanguage != nil && !validLanguage(*r.RequiredLanguage) {
		return r, domain.Invalid("required_language", "is not an ISO 639-1 language code (two lower-case letters); null for none")
	}
	if r.Priority != nil && (*r.Priority < domain.MinRoutingPriority || *r.Priority > domain.MaxRoutingPriority) {
		return r, domain.Invalid("priority", fmt.Sprintf("must be an integer from %d to %d (higher goes first); null for none",
			domain.MinRoutingPriority, domain.MaxRoutingPriority))
	}
	return r, nil
}

const routingRuleColumns = `id, position, name, conditions, queue_id, required_skill_id, required_language, priority, created_at, updated_at`

func scanRoutingRule(row pgx.CollectableRow) (RoutingRule, error) {
	var (
		r   RoutingRule
		raw []byte
	)
	if err := row.Scan(&r.ID, &r.Position, &r.Name, &raw, &r.QueueID, &r.RequiredSkillID, &r.RequiredLanguage, &r.Priority,
		&r.CreatedAt, &r.UpdatedAt); err != nil {
		return r, err
	}
	return r, decodeConditions(r.ID, raw, &r.Conditions)
}

// decodeConditions reads a rule's conditions; every list comes out
// non-nil, as the API shows them.
func decodeConditions(id uuid.UUID, raw []byte, c *domain.RoutingConditions) error {
	if err := json.Unmarshal(raw, c); err != nil {
		return fmt.Errorf("decode the conditions of routing rule %s: %w", id, err)
	}
	for _, l := range []*[]string{&c.ChannelAccountIDs, &c.Channels, &c.Languages, &c.Keywords, &c.CustomerIdentities, &c.ContactIDs} {
		if *l == nil {
			*l = []string{}
		}
	}
	return nil
}

func loadRoutingRules(ctx context.Context, db rowQuerier, where string, args ...any) ([]RoutingRule, error) {
	rows, err := db.Query(ctx, `SELECT `+routingRuleColumns+` FROM inbox.routing_rules WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read routing rules: %w", err)
	}
	rules, err := pgx.CollectRows(rows, scanRoutingRule)
	if err != nil {
		return nil, fmt.Errorf("read routing rules: %w", err)
	}
	return rules, nil
}

// ListRoutingRules returns every rule of tenant (at most
// domain.MaxRoutingRules), in the order they are tried.
func (s *Store) ListRoutingRules(ctx context.Context, tenant uuid.UUID) ([]RoutingRule, error) {
	return loadRoutingRules(ctx, s.pool, `tenant_id = $1 ORDER BY position`, tenant)
}

// GetRoutingRule returns a rule of tenant.
func (s *Store) GetRoutingRule(ctx context.Context, tenant, id uuid.UUID) (RoutingRule, error) {
	return oneRoutingRule(ctx, s.pool, tenant, id, false)
}

func oneRoutingRule(ctx context.Context, db rowQuerier, tenant, id uuid.UUID, lock bool) (RoutingRule, error) {
	where := `tenant_id = $1 AND id = $2`
	if lock {
		where += ` FOR UPDATE`
	}
	rules, err := loadRoutingRules(ctx, db, where, tenant, id)
	if err != nil {
		return RoutingRule{}, err
	}
	if len(rules) == 0 {
		return RoutingRule{}, ErrNotFound
	}
	return rules[0], nil
}

// lockRoutingRules serialises the writes of tenant's rules, which keep
// their positions dense: the tenant's row is locked until the transaction
// ends. NO KEY UPDATE does not conflict with the key-share locks that
// inserts referencing the tenant take, so ingestion does not wait.
func lockRoutingRules(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM inbox.tenants WHERE id = $1 FOR NO KEY UPDATE`, tenant).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("lock the routing rules of tenant %s: %w", tenant, err)
	}
	return nil
}

// checkRoutingReferences checks that the ids spec names are tenant's:
// queue, skill, live channel accounts and contacts. An id of another
// tenant is refused like one naming nothing.
func checkRoutingReferences(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec RoutingRuleSpec) error {
	if spec.QueueID != nil {
		if err := QueueInTenant(ctx, tx, tenant, *spec.QueueID); err != nil {
			return refused(err, "queue_id", "is not a queue of this tenant")
		}
	}
	if spec.RequiredSkillID != nil {
		if err := SkillInTenant(ctx, tx, tenant, *spec.RequiredSkillID); err != nil {
			return refused(err, "required_skill_id", "is not a skill of this tenant")
		}
	}
	for _, c := range []struct {
		field, what, sql string
		ids              []string
	}{
		{"conditions.channel_account_ids", "is not a channel account (mailbox, SMS account or chat channel) of this tenant",
			`SELECT id::text FROM inbox.channel_accounts WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND deleted_at IS NULL`, spec.Conditions.ChannelAccountIDs},
		{"conditions.contact_ids", "is not a contact of this tenant",
			`SELECT id::text FROM inbox.contacts WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, spec.Conditions.ContactIDs},
	} {
		if len(c.ids) == 0 {
			continue
		}
		rows, err := tx.Query(ctx, c.sql, tenant, c.ids)
		if err != nil {
			return fmt.Errorf("check %s: %w", c.field, err)
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("check %s: %w", c.field, err)
		}
		known := make(map[string]bool, len(found))
		for _, id := range found {
			known[id] = true
		}
		for i, id := range c.ids {
			if !known[id] {
				return domain.Invalid(fmt.Sprintf("%s[%d]", c.field, i), c.what)
			}
		}
	}
	return nil
}

// refused turns ErrNotFound into a field error; other errors stay.
func refused(err error, field, reason string) error {
	if errors.Is(err, domain.ErrNotFound) || errors.Is(err, ErrNotFound) {
		return domain.Invalid(field, reason)
	}
	return err
}

// writeRoutingRule maps the error of an insert or update of a rule.
func writeRoutingRule(err error, op string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "routing_rules_name" {
		return domain.Invalid("name", "another routing rule has this name")
	}
	if err != nil {
		return fmt.Errorf("%s routing rule: %w", op, err)
	}
	return nil
}

// CreateRoutingRule adds a rule after tenant's others (PUT
// /v1/admin/routing-rules/order moves it). The spec must have passed
// Check.
func (s *Store) CreateRoutingRule(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec RoutingRuleSpec, now time.Time) (RoutingRule, error) {
	if err := lockRoutingRules(ctx, tx, tenant); err != nil {
		return RoutingRule{}, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM inbox.routing_rules WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
		return RoutingRule{}, fmt.Errorf("count routing rules: %w", err)
	}
	if n >= domain.MaxRoutingRules {
		return RoutingRule{}, domain.Invalid("body", fmt.Sprintf("the tenant has %d routing rules, the most it may have; delete one first", n))
	}
	if err := checkRoutingReferences(ctx, tx, tenant, spec); err != nil {
		return RoutingRule{}, err
	}
	r := RoutingRule{ID: uuid.New(), Position: n + 1, Name: spec.Name, Conditions: spec.Conditions, QueueID: spec.QueueID,
		RequiredSkillID: spec.RequiredSkillID, RequiredLanguage: spec.RequiredLanguage, Priority: spec.Priority, CreatedAt: now, UpdatedAt: now}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.routing_rules (id, tenant_id, position, name, conditions, queue_id, required_skill_id,
			required_language, priority, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
		r.ID, tenant, r.Position, r.Name, mustJSON(r.Conditions), r.QueueID, r.RequiredSkillID, r.RequiredLanguage, r.Priority, now)
	if err := writeRoutingRule(err, "create"); err != nil {
		return RoutingRule{}, err
	}
	return r, nil
}

// UpdateRoutingRule changes a rule of tenant: fn receives its spec,
// changes it and checks it (returning it in its stored form).
func (s *Store) UpdateRoutingRule(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(RoutingRuleSpec) (RoutingRuleSpec, error)) (RoutingRule, error) {
	r, err := oneRoutingRule(ctx, tx, tenant, id, true)
	if err != nil {
		return RoutingRule{}, err
	}
	spec, err := fn(RoutingRuleSpec{Name: r.Name, Conditions: r.Conditions, QueueID: r.QueueID, RequiredSkillID: r.RequiredSkillID,
		RequiredLanguage: r.RequiredLanguage, Priority: r.Priority})
	if err != nil {
		return RoutingRule{}, err
	}
	if err := checkRoutingReferences(ctx, tx, tenant, spec); err != nil {
		return RoutingRule{}, err
	}
	_, err = tx.Exec(ctx, `UPDATE inbox.routing_rules SET name = $2, conditions = $3, queue_id = $4, required_skill_id = $5,
			required_language = $6, priority = $7, updated_at = $8
		WHERE id = $1`, id, spec.Name, mustJSON(spec.Conditions), spec.QueueID, spec.RequiredSkillID, spec.RequiredLanguage, spec.Priority, now)
	if err := writeRoutingRule(err, "update"); err != nil {
		return RoutingRule{}, err
	}
	r.Name, r.Conditions, r.QueueID, r.RequiredSkillID = spec.Name, spec.Conditions, spec.QueueID, spec.RequiredSkillID
	r.RequiredLanguage, r.Priority, r.UpdatedAt = spec.RequiredLanguage, spec.Priority, now
	return r, nil
}

// DeleteRoutingRule deletes a rule of tenant; the rules after it move up.
func (s *Store) DeleteRoutingRule(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) error {
	if err := lockRoutingRules(ctx, tx, tenant); err != nil {
		return err
	}
	var position int
	err := tx.QueryRow(ctx, `DELETE FROM inbox.routing_rules WHERE tenant_id = $1 AND id = $2 RETURNING position`, tenant, id).Scan(&position)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete routing rule: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox.routing_rules SET position = position - 1 WHERE tenant_id = $1 AND position > $2`, tenant, position); err != nil {
		return fmt.Errorf("renumber routing rules: %w", err)
	}
	return nil
}

// ReorderRoutingRules puts tenant's rules in the order of ids, which must
// name each of them once (field ids), and returns them in that order.
func (s *Store) ReorderRoutingRules(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, ids []uuid.UUID, now time.Time) ([]RoutingRule, error) {
	if err := lockRoutingRules(ctx, tx, tenant); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT id FROM inbox.routing_rules WHERE tenant_id = $1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read routing rules: %w", err)
	}
	current, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("read routing rules: %w", err)
	}
	known := make(map[uuid.UUID]bool, len(current))
	for _, id := range current {
		known[id] = true
	}
	seen := make(map[uuid.UUID]bool, len(ids))
	for i, id := range ids {
		switch {
		case seen[id]:
			return nil, domain.Invalid(fmt.Sprintf("ids[%d]", i), "appears twice")
		case !known[id]:
			return nil, domain.Invalid(fmt.Sprintf("ids[%d]", i), "is not a routing rule of this tenant")
		}
		seen[id] = true
	}
	if len(ids) != len(current) {
		return nil, domain.Invalid("ids", fmt.Sprintf("must list every routing rule of the tenant, each once: %d of %d are missing",
			len(current)-len(ids), len(current)))
	}
	// Only the rules that move are written (and get a new updated_at).
	if _, err := tx.Exec(ctx, `UPDATE inbox.routing_rules r SET position = o.position, updated_at = $3
		FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, position)
		WHERE r.tenant_id = $1 AND r.id = o.id AND r.position <> o.position`, tenant, ids, now); err != nil {
		return nil, fmt.Errorf("reorder routing rules: %w", err)
	}
	return loadRoutingRules(ctx, tx, `tenant_id = $1 ORDER BY position`, tenant)
}

// ChannelAccount is a mailbox, SMS account or chat channel as routing
// sees it.
type ChannelAccount struct {
	ID      uuid.UUID `json:"id"`
	Channel string    `json:"channel"`
	Name    string    `json:"name"`
	// DefaultQueueID is the queue of its new conversations that no
	// routing rule puts in one; nil for none.
	DefaultQueueID *uuid.UUID `json:"default_queue_id"`
	CreatedAt      time.Time  `json:"created_at"`
}

const channelAccountColumns = `id, channel, name, default_queue_id, created_at`

// ListChannelAccounts returns up to limit live channel accounts of tenant
// after the position, oldest first.
func (s *Store) ListChannelAccounts(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]ChannelAccount, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (created_at, id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+channelAccountColumns+` FROM inbox.channel_accounts
		WHERE tenant_id = $1 AND deleted_at IS NULL`+where+` ORDER BY created_at, id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list channel accounts: %w", err)
	}
	accounts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ChannelAccount])
	if err != nil {
		return nil, fmt.Errorf("list channel accounts: %w", err)
	}
	return accounts, nil
}

// SetDefaultQueue sets the default queue of a live channel account of
// tenant (nil: none). A queue of another tenant is refused like one that
// does not exist.
func (s *Store) SetDefaultQueue(ctx context.Context, tx pgx.Tx, tenant, account uuid.UUID, queue *uuid.UUID) (ChannelAccount, error) {
	rows, err := tx.Query(ctx, `SELECT `+channelAccountColumns+` FROM inbox.channel_accounts
		WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE`, tenant, account)
	if err != nil {
		return ChannelAccount{}, fmt.Errorf("read channel account: %w", err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[ChannelAccount])
	if errors.Is(err, pgx.ErrNoRows) {
		return ChannelAccount{}, ErrNotFound
	}
	if err != nil {
		return ChannelAccount{}, fmt.Errorf("read channel account: %w", err)
	}
	if queue != nil {
		if err := QueueInTenant(ctx, tx, tenant, *queue); err != nil {
			return ChannelAccount{}, refused(err, "default_queue_id", "is not a queue of this tenant")
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox.channel_accounts SET default_queue_id = $2 WHERE id = $1`, account, queue); err != nil {
		return ChannelAccount{}, fmt.Errorf("set the default queue of channel account %s: %w", account, err)
	}
	a.DefaultQueueID = queue
	return a, nil
}
