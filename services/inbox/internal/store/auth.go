package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/password"
)

// Token prefixes: integration API tokens, and a login session's access and
// refresh tokens.
const (
	AccessTokenPrefix  = "sba_"
	RefreshTokenPrefix = "sbr_"
)

// Token lifetimes.
const (
	AccessTTL  = 15 * time.Minute
	RefreshTTL = 30 * 24 * time.Hour
	// RefreshRace is how long after a refresh the refresh token it
	// rotated away is taken for a second request of the same client
	// refreshing at the same time (two tabs of the console sharing their
	// cookies), refused without ending the session.
	RefreshRace = 10 * time.Second
)

// ErrBadCredentials: the login or the token is wrong, expired or revoked.
// It never says which.
var ErrBadCredentials = errors.New("bad credentials")

// ErrRefreshRaced: the refresh token was rotated away by a refresh less
// than RefreshRace ago. It is ErrBadCredentials too, told apart only to
// the session's own client (the browser holding its cookies).
var ErrRefreshRaced = fmt.Errorf("%w: the session was refreshed by another request at the same time", ErrBadCredentials)

// dummyHash is verified when the email is unknown, so that a login takes
// as long whether the user exists or not.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$c3dpdGNoYm9hcmRzYWx0$2h7iY6nZ9o0tH3xg1Sxv4qKqf5w6jR3eQmY3b7l6Y0E"

// Authenticate resolves a bearer token to its principal: an integration's
// API token, or a session's access token.
func (s *Store) Authenticate(ctx context.Context, token string, now time.Time) (domain.Principal, error) {
	switch {
	case strings.HasPrefix(token, TokenPrefix):
		var p domain.Principal
		var role string
		var perms []string
		err := s.pool.QueryRow(ctx, `SELECT tenant_id::text, id::text, role, permissions FROM inbox.api_tokens
			WHERE token_hash = $1 AND revoked_at IS NULL`, HashToken(token)).Scan(&p.Tenant, &p.TokenID, &role, &perms)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.Principal{}, ErrBadCredentials
		}
		if err != nil {
			return domain.Principal{}, fmt.Errorf("look up API token: %w", err)
		}
		p.Role, p.Permissions = domain.Role(role), toPermissions(perms)
		return p, nil
	case strings.HasPrefix(token, AccessTokenPrefix):
		var user uuid.UUID
		err := s.pool.QueryRow(ctx, `SELECT user_id FROM inbox.sessions
			WHERE access_hash = $1 AND revoked_at IS NULL AND access_expires_at > $2`, HashToken(token), now).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.Principal{}, ErrBadCredentials
		}
		if err != nil {
			return domain.Principal{}, fmt.Errorf("look up access token: %w", err)
		}
		p, err := s.principalOf(ctx, user)
		if errors.Is(err, ErrNotFound) {
			return domain.Principal{}, ErrBadCredentials
		}
		return p, err
	}
	return domain.Principal{}, ErrBadCredentials
}

// principalOf loads an enabled user as a principal.
func (s *Store) principalOf(ctx context.Context, user uuid.UUID) (domain.Principal, error) {
	var p domain.Principal
	var role string
	var perms, queues []string
	err := s.pool.QueryRow(ctx, `SELECT u.tenant_id::text, u.id::text, u.role, u.permissions,
			coalesce((SELECT array_agg(q.queue_id::text) FROM inbox.user_queues q WHERE q.user_id = u.id), '{}')
		FROM inbox.users u WHERE u.id = $1 AND u.disabled_at IS NULL`, user).Scan(&p.Tenant, &p.UserID, &role, &perms, &queues)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.Principal{}, ErrNotFound
	}
	if err != nil {
		return domain.Principal{}, fmt.Errorf("load user: %w", err)
	}
	p.Role, p.Permissions, p.Queues = domain.Role(role), toPermissions(perms), queues
	return p, nil
}

func toPermissions(ss []string) []domain.Permission {
	out := make([]domain.Permission, len(ss))
	for i, s := range ss {
		out[i] = domain.Permission(s)
	}
	return out
}

// Tokens are what a login or a refresh returns.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int       `json:"expires_in"`
	ExpiresAt    time.Time `json:"expires_at"`
	RefreshToken string    `json:"refresh_token"`
	UserID       uuid.UUID `json:"user_id"`
}

func newTokens(user uuid.UUID, now time.Time) (Tokens, error) {
	access, err := RandomSecret(AccessTokenPrefix)
	if err != nil {
		return Tokens{}, err
	}
	refresh, err := RandomSecret(RefreshTokenPrefix)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(AccessTTL / time.Second), ExpiresAt: now.Add(AccessTTL),
		RefreshToken: refresh, UserID: user}, nil
}

// Login checks a user's email and password in a tenant and opens a session.
func (s *Store) Login(ctx context.Context, tenant uuid.UUID, email, pw string, now time.Time) (Tokens, error) {
	var user uuid.UUID
	var hash *string
	err := s.pool.QueryRow(ctx, `SELECT id, password_hash FROM inbox.users
		WHERE tenant_id = $1 AND lower(email) = lower($2) AND disabled_at IS NULL`, tenant, email).Scan(&user, &hash)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && hash == nil {
		_ = password.Verify(pw, dummyHash)
		return Tokens{}, ErrBadCredentials
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("look up user: %w", err)
	}
	if err := password.Verify(pw, *hash); err != nil {
		if errors.Is(err, password.ErrMismatch) {
			return Tokens{}, ErrBadCredentials
		}
		return Tokens{}, fmt.Errorf("verify password of user %s: %w", user, err)
	}
	t, err := newTokens(user, now)
	if err != nil {
		return Tokens{}, err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO inbox.sessions (id, tenant_id, user_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, uuid.New(), tenant, user, HashToken(t.AccessToken), t.ExpiresAt, HashToken(t.RefreshToken), now.Add(RefreshTTL))
	if err != nil {
		return Tokens{}, fmt.Errorf("open session: %w", err)
	}
	return t, nil
}

// Refresh trades a refresh token for new tokens; the old ones stop
// working. A refresh token used twice revokes its session: one of the two
// holders is not its owner. Used again within RefreshRace of its
// rotation, it is ErrRefreshRaced and the session goes on.
func (s *Store) Refresh(ctx context.Context, refresh string, now time.Time) (Tokens, error) {
	if !strings.HasPrefix(refresh, RefreshTokenPrefix) {
		return Tokens{}, ErrBadCredentials
	}
	hash := HashToken(refresh)
	// A rotated-away token: revoke the session it belonged to, for good.
	// A session's access token expires AccessTTL after its last rotation.
	tag, err := s.pool.Exec(ctx, `UPDATE inbox.sessions SET revoked_at = $2 WHERE previous_refresh = $1 AND revoked_at IS NULL
		AND access_expires_at <= $3`, hash, now, now.Add(AccessTTL-RefreshRace))
	if err != nil {
		return Tokens{}, fmt.Errorf("revoke replayed session: %w", err)
	}
	if tag.RowsAffected() > 0 {
		return Tokens{}, ErrBadCredentials
	}
	var out Tokens
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var id, user uuid.UUID
		err := tx.QueryRow(ctx, `SELECT s.id, s.user_id FROM inbox.sessions s
			JOIN inbox.users u ON u.id = s.user_id AND u.disabled_at IS NULL
			WHERE s.refresh_hash = $1 AND s.revoked_at IS NULL AND s.refresh_expires_at > $2
			FOR UPDATE OF s`, hash, now).Scan(&id, &user)
		if errors.Is(err, pgx.ErrNoRows) {
			// Rotated away moments ago (the revocation above spared it),
			// or while this request waited for the row.
			var raced bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.sessions WHERE previous_refresh = $1 AND revoked_at IS NULL)`,
				hash).Scan(&raced); err != nil {
				return fmt.Errorf("look up rotated refresh token: %w", err)
			}
			if raced {
				return ErrRefreshRaced
			}
			return ErrBadCredentials
		}
		if err != nil {
			return fmt.Errorf("look up refresh token: %w", err)
		}
		if out, err = newTokens(user, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE inbox.sessions SET access_hash = $2, access_expires_at = $3, refresh_hash = $4,
			previous_refresh = refresh_hash, refresh_expires_at = $5 WHERE id = $1`,
			id, HashToken(out.AccessToken), out.ExpiresAt, HashToken(out.RefreshToken), now.Add(RefreshTTL))
		if err != nil {
			return fmt.Errorf("rotate session: %w", err)
		}
		return nil
	})
	if err != nil {
		return Tokens{}, err
	}
	return out, nil
}

// EndSession revokes the session of an access token or of a refresh
// token, either of which may be empty: a browser logs out with whichever
// of its cookies it still holds.
func (s *Store) EndSession(ctx context.Context, access, refresh string, now time.Time) error {
	if access == "" && refresh == "" {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE inbox.sessions SET revoked_at = $3
		WHERE (access_hash = $1 OR refresh_hash = $2) AND revoked_at IS NULL`, HashToken(access), HashToken(refresh), now)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// Logout revokes the session of an access token.
func (s *Store) Logout(ctx context.Context, access string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE inbox.sessions SET revoked_at = $2 WHERE access_hash = $1 AND revoked_at IS NULL`, HashToken(access), now)
	if err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	return nil
}
