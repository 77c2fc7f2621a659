package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// validateCase is a change to a valid spec, and the field Validate then
// names: "" when the spec stays valid.
type validateCase[S any] struct {
	name   string
	change func(s *S)
	field  string
}

// checkValidate runs Validate on valid() changed by each case.
func checkValidate[S interface{ Validate() error }](t *testing.T, valid func() S, cases []validateCase[S]) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := valid()
			c.change(&s)
			err := s.Validate()
			if c.field == "" {
				require.NoError(t, err)
				return
			}
			var fe *domain.FieldError
			require.True(t, errors.As(err, &fe), "Validate() = %v, want a field error on %s", err, c.field)
			require.Equal(t, c.field, fe.Field)
		})
	}
}

// configEvents reads the config events in the outbox whose keys start
// with prefix ("mailbox/"), by key, oldest first.
func configEvents[T any](t *testing.T, ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, prefix string) map[string][]T {
	t.Helper()
	rows, err := q.Query(ctx, `SELECT key, value FROM inbox.outbox WHERE topic = $1 ORDER BY seq`, events.TopicConfig)
	require.NoError(t, err)
	defer rows.Close()
	got := map[string][]T{}
	for rows.Next() {
		var key, value []byte
		require.NoError(t, rows.Scan(&key, &value))
		if !strings.HasPrefix(string(key), prefix) {
			continue
		}
		var ev T
		require.NoError(t, json.Unmarshal(value, &ev))
		got[string(key)] = append(got[string(key)], ev)
	}
	require.NoError(t, rows.Err())
	return got
}
