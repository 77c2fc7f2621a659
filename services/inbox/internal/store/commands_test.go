package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// TestAppliedCommandsArePruned: command ids are remembered for the
// retention, then forgotten; a missing conversation's command is recorded
// too, so that it is not looked up again.
func TestAppliedCommandsArePruned(t *testing.T) {
	ctx := context.Background()
	s := store.New(testkit.Postgres(t), testkit.Keyring(t))
	require.NoError(t, s.Migrate(ctx))
	cmd := func(id string) store.Command {
		c, err := store.NewCommand(id, "scheduler", events.InboxCommand{TenantID: uuid.NewString(), ConversationID: uuid.NewString(),
			Kind: events.CommandWake, Expect: events.Expectation{State: "deferred"}})
		require.NoError(t, err)
		return c
	}
	never := func(context.Context, pgx.Tx, *store.Conversation, store.Command, time.Time) (store.Change, error) {
		t.Fatal("a command of no conversation was applied")
		return store.Change{}, nil
	}
	old := time.Now().Add(-10 * 24 * time.Hour)
	outs, err := s.ApplyCommands(ctx, []store.Command{cmd("old-1"), cmd("old-2")}, old, never)
	require.NoError(t, err)
	require.Equal(t, store.OutcomeMissing, outs[0].Result)
	outs, err = s.ApplyCommands(ctx, []store.Command{cmd("new-1"), cmd("old-1")}, time.Now(), never)
	require.NoError(t, err)
	require.Equal(t, []string{store.OutcomeMissing, store.OutcomeDuplicate}, []string{outs[0].Result, outs[1].Result})

	n, err := s.PruneAppliedCommands(ctx, time.Now().Add(-7*24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	outs, err = s.ApplyCommands(ctx, []store.Command{cmd("new-1"), cmd("old-1")}, time.Now(), never)
	require.NoError(t, err)
	require.Equal(t, []string{store.OutcomeDuplicate, store.OutcomeMissing}, []string{outs[0].Result, outs[1].Result},
		"the recent id is remembered, the pruned one forgotten")
}

// TestAnnounceConfigAnnouncesAutomation: at start the inbox announces the
// automation of every tenant, its waiting messages and its queues with
// their own, so that the scheduler's view converges.
func TestAnnounceConfigAnnouncesAutomation(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	s := store.New(pool, testkit.Keyring(t))
	require.NoError(t, s.Migrate(ctx))
	now := time.Now()
	four := 4.0
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		tenant, err := s.CreateTenant(ctx, tx, "t")
		if err != nil {
			return err
		}
		q, err := s.CreateQueue(ctx, tx, tenant.ID, "Support", now)
		if err != nil {
			return err
		}
		w, err := s.CreateWaitingMessage(ctx, tx, tenant.ID, store.WaitingMessageSpec{Name: "Slow", Subject: "s", Body: "b",
			Hours: store.WaitingHours{New: &four}}, now)
		if err != nil {
			return err
		}
		_, err = s.PutQueueAutomation(ctx, tx, tenant.ID, q.ID, store.QueueAutomation{WaitingMessageID: &w.ID}, now)
		return err
	}))
	_, err := pool.Exec(ctx, `DELETE FROM inbox.outbox`)
	require.NoError(t, err)
	n, err := s.AnnounceConfig(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 3, n.Automation, "the waiting message, the tenant's settings, the queue")
	var types []string
	rows, err := pool.Query(ctx, `SELECT convert_from(key, 'UTF8') FROM inbox.outbox ORDER BY seq`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		require.NoError(t, rows.Scan(&k))
		types = append(types, k[:strings.Index(k, "/")])
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"waiting_message", "automation", "queue"}, types)
}
