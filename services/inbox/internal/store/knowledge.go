package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// The knowledge base: groups of entries that admins maintain, which the
// reply assistant suggests (suggest.go).

// KnowledgeGroup groups knowledge-base entries.
type KnowledgeGroup struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// KnowledgeEntry is a prepared answer of the knowledge base.
type KnowledgeEntry struct {
	ID        uuid.UUID  `json:"id"`
	GroupID   uuid.UUID  `json:"group_id"`
	GroupName string     `json:"group_name"`
	QueueID   *uuid.UUID `json:"queue_id"`
	Title     string     `json:"title"`
	Body      string     `json:"body"`
	Keywords  []string   `json:"keywords"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// KnowledgeEntrySpec is what is written of an entry.
type KnowledgeEntrySpec struct {
	domain.KnowledgeEntrySpec
	GroupID uuid.UUID
	QueueID *uuid.UUID
}

const knowledgeGroupColumns = `g.id, g.name, g.created_at, g.updated_at`

// ListKnowledgeGroups returns up to limit groups of tenant after the
// position (nil: from the start), oldest first.
func (s *Store) ListKnowledgeGroups(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]KnowledgeGroup, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (g.created_at, g.id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+knowledgeGroupColumns+` FROM inbox.knowledge_groups g
		WHERE g.tenant_id = $1`+where+` ORDER BY g.created_at, g.id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list knowledge groups: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[KnowledgeGroup])
	if err != nil {
		return nil, fmt.Errorf("list knowledge groups: %w", err)
	}
	return out, nil
}

// GetKnowledgeGroup returns a group of tenant.
func (s *Store) GetKnowledgeGroup(ctx context.Context, tenant, id uuid.UUID) (KnowledgeGroup, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+knowledgeGroupColumns+` FROM inbox.knowledge_groups g WHERE g.tenant_id = $1 AND g.id = $2`, tenant, id)
	if err != nil {
		return KnowledgeGroup{}, fmt.Errorf("read knowledge group: %w", err)
	}
	g, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[KnowledgeGroup])
	if errors.Is(err, pgx.ErrNoRows) {
		return KnowledgeGroup{}, ErrNotFound
	}
	if err != nil {
		return KnowledgeGroup{}, fmt.Errorf("read knowledge group: %w", err)
	}
	return g, nil
}

// CreateKnowledgeGroup creates a group of tenant.
func (s *Store) CreateKnowledgeGroup(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, name string, now time.Time) (KnowledgeGroup, error) {
	if err := CheckName("name", name); err != nil {
		return KnowledgeGroup{}, err
	}
	g := KnowledgeGroup{ID: uuid.New(), Name: name, CreatedAt: now, UpdatedAt: now}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.knowledge_groups (id, tenant_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
		g.ID, tenant, name, now)
	if uniqueViolation(err) {
		return KnowledgeGroup{}, domain.Invalid("name", "another knowledge group has this name")
	}
	if err != nil {
		return KnowledgeGroup{}, fmt.Errorf("create knowledge group: %w", err)
	}
	return g, nil
}

// RenameKnowledgeGroup renames a group of tenant.
func (s *Store) RenameKnowledgeGroup(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, name string, now time.Time) (KnowledgeGroup, error) {
	if err := CheckName("name", name); err != nil {
		return KnowledgeGroup{}, err
	}
	rows, err := tx.Query(ctx, `UPDATE inbox.knowledge_groups g SET name = $3, updated_at = $4 WHERE g.tenant_id = $1 AND g.id = $2
		RETURNING `+knowledgeGroupColumns, tenant, id, name, now)
	if err != nil {
		return KnowledgeGroup{}, fmt.Errorf("rename knowledge group: %w", err)
	}
	g, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[KnowledgeGroup])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return KnowledgeGroup{}, ErrNotFound
	case uniqueViolation(err):
		return KnowledgeGroup{}, domain.Invalid("name", "another knowledge group has this name")
	case err != nil:
		return KnowledgeGroup{}, fmt.Errorf("rename knowledge group: %w", err)
	}
	return g, nil
}

// DeleteKnowledgeGroup deletes an empty group of tenant; a group that
// still has entries is a conflict: its entries are moved or deleted
// first, never lost with it.
func (s *Store) DeleteKnowledgeGroup(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) error {
	var entries int
	err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM inbox.knowledge_entries e WHERE e.group_id = g.id)
		FROM inbox.knowledge_groups g WHERE g.tenant_id = $1 AND g.id = $2 FOR UPDATE`, tenant, id).Scan(&entries)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read knowledge group: %w", err)
	}
	if entries > 0 {
		return fmt.Errorf("%w: the group has %d entries; move or delete them first", domain.ErrConflict, entries)
	}
	_, err = tx.Exec(ctx, `DELETE FROM inbox.knowledge_groups WHERE id = $1`, id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		// An entry was added to it meanwhile.
		return fmt.Errorf("%w: the group has entries; move or delete them first", domain.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("delete knowledge group: %w", err)
	}
	return nil
}

const knowledgeEntryColumns = `e.id, e.group_id, g.name, e.queue_id, e.title, e.body, e.keywords, e.created_at, e.updated_at`

// KnowledgeFilter narrows a list of entries; zero values do not filter.
type KnowledgeFilter struct {
	GroupID *uuid.UUID
}

// ListKnowledgeEntries returns up to limit entries of tenant matching f
// after the position (nil: from the start), oldest first.
func (s *Store) ListKnowledgeEntries(ctx context.Context, tenant uuid.UUID, f KnowledgeFilter, after *Position, limit int) ([]KnowledgeEntry, error) {
	args := []any{tenant, limit}
	where := ""
	if f.GroupID != nil {
		args = append(args, *f.GroupID)
		where += fmt.Sprintf(` AND e.group_id = $%d`, len(args))
	}
	if after != nil {
		args = append(args, after.At, after.ID)
		where += fmt.Sprintf(` AND (e.created_at, e.id) > ($%d, $%d)`, len(args)-1, len(args))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+knowledgeEntryColumns+` FROM inbox.knowledge_entries e
		JOIN inbox.knowledge_groups g ON g.id = e.group_id
		WHERE e.tenant_id = $1`+where+` ORDER BY e.created_at, e.id LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list knowledge entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[KnowledgeEntry])
	if err != nil {
		return nil, fmt.Errorf("list knowledge entries: %w", err)
	}
	return out, nil
}

// GetKnowledgeEntry returns an entry of tenant.
func (s *Store) GetKnowledgeEntry(ctx context.Context, tenant, id uuid.UUID) (KnowledgeEntry, error) {
	return oneKnowledgeEntry(ctx, s.pool, tenant, id, false)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func oneKnowledgeEntry(ctx context.Context, q querier, tenant, id uuid.UUID, lock bool) (KnowledgeEntry, error) {
	sql := `SELECT ` + knowledgeEntryColumns + ` FROM inbox.knowledge_entries e JOIN inbox.knowledge_groups g ON g.id = e.group_id
		WHERE e.tenant_id = $1 AND e.id = $2`
	if lock {
		sql += ` FOR UPDATE OF e`
	}
	rows, err := q.Query(ctx, sql, tenant, id)
	if err != nil {
		return KnowledgeEntry{}, fmt.Errorf("read knowledge entry: %w", err)
	}
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[KnowledgeEntry])
	if errors.Is(err, pgx.ErrNoRows) {
		return KnowledgeEntry{}, ErrNotFound
	}
	if err != nil {
		return KnowledgeEntry{}, fmt.Errorf("read knowledge entry: %w", err)
	}
	return e, nil
}

// checkKnowledgeRefs refuses a group or a queue that is not tenant's,
// naming the field.
func checkKnowledgeRefs(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec KnowledgeEntrySpec) error {
	var group, queue bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.knowledge_groups WHERE tenant_id = $1 AND id = $2 FOR SHARE),
		$3::uuid IS NULL OR EXISTS (SELECT 1 FROM inbox.queues WHERE tenant_id = $1 AND id = $3)`, tenant, spec.GroupID, spec.QueueID).Scan(&group, &queue)
	if err != nil {
		return fmt.Errorf("check knowledge entry's group and queue: %w", err)
	}
	if !group {
		return domain.Invalid("group_id", "names no knowledge group of the tenant")
	}
	if !queue {
		return domain.Invalid("queue_id", "names no queue of the tenant")
	}
	return nil
}

// knowledgeSearch is the vector an entry is matched by (016): its folded
// title and keywords weigh A, its folded body B.
const knowledgeSearch = `setweight(to_tsvector('simple', $6), 'A') || setweight(to_tsvector('simple', $7), 'B')`

func knowledgeSearchArgs(spec KnowledgeEntrySpec) (head, body string) {
	return domain.Fold(spec.Title + " " + strings.Join(spec.Keywords, " ")), domain.Fold(spec.Body)
}

// CreateKnowledgeEntry creates an entry of tenant.
func (s *Store) CreateKnowledgeEntry(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec KnowledgeEntrySpec, now time.Time) (KnowledgeEntry, error) {
	checked, err := spec.Check()
	if err != nil {
		return KnowledgeEntry{}, err
	}
	spec.KnowledgeEntrySpec = checked
	if err := checkKnowledgeRefs(ctx, tx, tenant, spec); err != nil {
		return KnowledgeEntry{}, err
	}
	id := uuid.New()
	head, body := knowledgeSearchArgs(spec)
	_, err = tx.Exec(ctx, `INSERT INTO inbox.knowledge_entries (id, tenant_id, group_id, queue_id, title, body, keywords, search, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $8, $9, `+knowledgeSearch+`, $10, $10)`,
		id, tenant, spec.GroupID, spec.QueueID, spec.Title, head, body, spec.Body, spec.Keywords, now)
	if err != nil {
		return KnowledgeEntry{}, fmt.Errorf("create knowledge entry: %w", err)
	}
	return oneKnowledgeEntry(ctx, tx, tenant, id, false)
}

// UpdateKnowledgeEntry changes an entry of tenant: fn changes its spec,
// which is then checked and written.
func (s *Store) UpdateKnowledgeEntry(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(*KnowledgeEntrySpec) error) (KnowledgeEntry, error) {
	e, err := oneKnowledgeEntry(ctx, tx, tenant, id, true)
	if err != nil {
		return KnowledgeEntry{}, err
	}
	spec := KnowledgeEntrySpec{KnowledgeEntrySpec: domain.KnowledgeEntrySpec{Title: e.Title, Body: e.Body, Keywords: e.Keywords},
		GroupID: e.GroupID, QueueID: e.QueueID}
	if err := fn(&spec); err != nil {
		return KnowledgeEntry{}, err
	}
	checked, err := spec.Check()
	if err != nil {
		return KnowledgeEntry{}, err
	}
	spec.KnowledgeEntrySpec = checked
	if err := checkKnowledgeRefs(ctx, tx, tenant, spec); err != nil {
		return KnowledgeEntry{}, err
	}
	head, body := knowledgeSearchArgs(spec)
	_, err = tx.Exec(ctx, `UPDATE inbox.knowledge_entries SET group_id = $3, queue_id = $4, title = $5, body = $8, keywords = $9,
		search = `+knowledgeSearch+`, updated_at = $10 WHERE tenant_id = $1 AND id = $2`,
		tenant, id, spec.GroupID, spec.QueueID, spec.Title, head, body, spec.Body, spec.Keywords, now)
	if err != nil {
		return KnowledgeEntry{}, fmt.Errorf("update knowledge entry: %w", err)
	}
	return oneKnowledgeEntry(ctx, tx, tenant, id, false)
}

// DeleteKnowledgeEntry deletes an entry of tenant.
func (s *Store) DeleteKnowledgeEntry(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) error {
	tag, err := tx.Exec(ctx, `DELETE FROM inbox.knowledge_entries WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return fmt.Errorf("delete knowledge entry: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
