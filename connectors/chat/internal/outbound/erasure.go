package outbound

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// ErrInvalidErase marks an sb.erase.v1 event that cannot be applied (for
// the dead-letter topic).
var ErrInvalidErase = errors.New("invalid erase event")

// Forget applies an erasure the inbox asks for (sb.erase.v1). What the
// chat connector keeps of a message is its delivery (the exact body every
// attempt sends: text, session, user) and its send ledger row (the
// endpoint's answer, an excerpt of its body); per customer, the user id
// and session of each delivery. So:
//
//   - an erased message's delivery body is blanked; one still open is
//     closed as skipped (it is not delivered any more) and its ledger row
//     failed, so that no worker attempts it;
//   - every delivery of a deleted conversation, or of an erased contact's
//     (state changes carry the session and the user), is blanked the same
//     way, its session and user too;
//   - an erased contact's user ids are removed from every delivery;
//   - the endpoints' answers and errors of those sends are blanked.
//
// Applying it twice changes nothing more.
func (s *Store) Forget(ctx context.Context, e events.Erase, now time.Time) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidErase, err)
	}
	if e.Channel != events.ChannelChat {
		return fmt.Errorf("%w: erasure %s is for channel %s", ErrInvalidErase, e.ID, e.Channel)
	}
	ids := e.MessageIDs()
	convs := make([]string, len(e.Conversations))
	for i, c := range e.Conversations {
		convs[i] = c.ID
	}
	identities := e.Identities
	if identities == nil {
		identities = []string{}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, st := range []struct {
			what string
			sql  string
			args []any
		}{
			{"close and blank the deliveries", `UPDATE chat.deliveries SET body = ''::bytea,
					user_id = CASE WHEN conversation_id = ANY($3) THEN '' ELSE user_id END,
					session_id = CASE WHEN conversation_id = ANY($3) THEN '' ELSE session_id END,
					done = true, outcome = CASE WHEN done THEN outcome ELSE 'skipped' END, done_at = coalesce(done_at, $4)
				WHERE tenant_id = $1 AND (id = ANY($2) OR conversation_id = ANY($3))`, []any{e.TenantID, ids, convs, now}},
			{"forget the users", `UPDATE chat.deliveries SET user_id = '' WHERE tenant_id = $1 AND user_id = ANY($2)`,
				[]any{e.TenantID, identities}},
			{"blank the sends", `UPDATE chat.send_ledger SET answer = '',
					last_error = CASE WHEN state IN ('pending', 'attempting') THEN 'erased before it was delivered' ELSE '' END,
					state = CASE WHEN state IN ('pending', 'attempting') THEN 'failed' ELSE state END,
					claim = '', claimed_until = NULL, next_attempt_at = NULL, in_doubt_since = NULL, updated_at = $4
				WHERE tenant_id = $1 AND (id = ANY($2) OR conversation_id = ANY($3))`, []any{e.TenantID, ids, convs, now}},
		} {
			if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
				return fmt.Errorf("%s: %w", st.what, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply erasure %s: %w", e.ID, err)
	}
	return nil
}
