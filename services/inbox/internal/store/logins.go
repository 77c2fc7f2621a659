package store

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// LoginAttempt is one attempt to log in, for the login audit.
type LoginAttempt struct {
	TenantID uuid.UUID
	Email    string
	// UserID is the user who logged in; on a failure it is found from the
	// email, when a user of the tenant has it.
	UserID     *uuid.UUID
	ClientAddr netip.Addr
	UserAgent  string
	// Outcome is success or failure; Reason says why a failure failed.
	Outcome, Reason string
	At              time.Time
}

// RecordLogin adds an attempt to the login audit of its tenant. An
// attempt naming no tenant is not kept: no admin could read it, and
// anyone could fill the table with them.
func (s *Store) RecordLogin(ctx context.Context, a LoginAttempt) error {
	var addr *netip.Addr
	if a.ClientAddr.IsValid() {
		addr = &a.ClientAddr
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO inbox.login_audit (id, tenant_id, at, email, user_id, client_addr, user_agent, outcome, reason)
		SELECT $1, t.id, $3, $4,
			coalesce($5, (SELECT u.id FROM inbox.users u WHERE u.tenant_id = t.id AND lower(u.email) = lower($4))),
			$6, $7, $8, $9
		FROM inbox.tenants t WHERE t.id = $2`,
		uuid.New(), a.TenantID, a.At, a.Email, a.UserID, addr, a.UserAgent, a.Outcome, a.Reason)
	if err != nil {
		return fmt.Errorf("record login attempt: %w", err)
	}
	return nil
}

// LoginAuditEntry is one login attempt as admins read it.
type LoginAuditEntry struct {
	ID         uuid.UUID  `json:"id"`
	At         time.Time  `json:"at"`
	Email      string     `json:"email"`
	UserID     *uuid.UUID `json:"user_id,omitempty"`
	ClientAddr string     `json:"client_addr,omitempty"`
	UserAgent  string     `json:"user_agent"`
	Outcome    string     `json:"outcome"`
	Reason     string     `json:"reason,omitempty"`
}

// LoginAuditFilter selects login attempts; zero fields do not filter.
type LoginAuditFilter struct {
	// Outcome is success or failure.
	Outcome string
	// Email matches whatever its case.
	Email string
	// UserID is the user the attempt named.
	UserID *uuid.UUID
}

// ListLoginAudit returns up to limit attempts of tenant's login audit that
// f selects, newest first, after the position (nil: from the newest).
func (s *Store) ListLoginAudit(ctx context.Context, tenant uuid.UUID, f LoginAuditFilter, after *Position, limit int) ([]LoginAuditEntry, error) {
	args := []any{tenant, limit, f.Outcome, f.Email, f.UserID}
	where := ""
	if after != nil {
		where = ` AND (at, id) < ($6, $7)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, email, user_id, coalesce(host(client_addr), ''), user_agent, outcome, reason
		FROM inbox.login_audit
		WHERE tenant_id = $1 AND ($3 = '' OR outcome = $3) AND ($4 = '' OR lower(email) = lower($4)) AND ($5::uuid IS NULL OR user_id = $5)`+where+`
		ORDER BY at DESC, id DESC LIMIT $2`, args...)
	if err != nil {
		return nil, fmt.Errorf("list the login audit: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LoginAuditEntry, error) {
		var e LoginAuditEntry
		return e, r.Scan(&e.ID, &e.At, &e.Email, &e.UserID, &e.ClientAddr, &e.UserAgent, &e.Outcome, &e.Reason)
	})
}

// PruneLoginAudit deletes the login attempts made before cutoff.
func (s *Store) PruneLoginAudit(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM inbox.login_audit WHERE at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune the login audit: %w", err)
	}
	return tag.RowsAffected(), nil
}
