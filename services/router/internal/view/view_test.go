package view_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/router/internal/view"
)

// A change delivered again returns the conversation as the view holds it:
// a router killed after folding a change into the view and before its
// Redis state heard of it leaves the next consumer only the redelivery to
// learn of the conversation from (it waited in new, unrouted, forever).
func TestApplyAllReturnsRedeliveredChanges(t *testing.T) {
	ctx := testkit.Context(t)
	v := view.New(testkit.Postgres(t))
	require.NoError(t, v.Migrate(ctx))
	queue := uuid.New()
	change := func(version int64, state string) view.Change {
		return view.Change{Conversation: view.Conversation{ID: uuid.MustParse("0e0ec6d3-78ff-4af6-8a29-3f74ac6cbe7c"), TenantID: uuid.MustParse("74b7c9ed-1be9-4875-8145-11a5b7ae26e7"),
			Key: []byte("t/chat/a/s-1"), Channel: "chat", QueueID: &queue, State: state, Version: version, StateVersion: version,
			StateSince: time.Date(2026, 12, 6, 23, 10, 33, 0, time.UTC)}}
	}

	got, err := v.ApplyAll(ctx, []view.Change{change(1, "new")})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "new", got[0].State)

	// Delivered again: the same conversation, unchanged.
	got, err = v.ApplyAll(ctx, []view.Change{change(1, "new")})
	require.NoError(t, err)
	require.Len(t, got, 1, "a change delivered again returns its conversation")
	require.Equal(t, int64(1), got[0].Version)
	require.Equal(t, "new", got[0].State)

	// A newer change, then the older one again in the same batch: each
	// returns the conversation as it now is, at the newer version.
	got, err = v.ApplyAll(ctx, []view.Change{change(2, "offered"), change(1, "new")})
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, c := range got {
		require.Equal(t, int64(2), c.Version)
		require.Equal(t, "offered", c.State)
	}
}
