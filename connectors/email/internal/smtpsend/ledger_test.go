package smtpsend

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestMigrateKeepsEarlierSends: the rows of the table earlier versions
// kept move to the send ledger, and a message that was still sending is
// sent once more, as before, with its Message-ID.
func TestMigrateKeepsEarlierSends(t *testing.T) {
	pool := testkit.Postgres(t)
	ctx := testkit.Context(t)

	// The schema as the earlier version left it.
	first, err := fs.ReadFile(migrations, "migrations/001_sent_messages.sql")
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(ctx, pool, Schema, versionTable, fstest.MapFS{"001_sent_messages.sql": {Data: first}}))
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	_, err = pool.Exec(ctx, `
		INSERT INTO email.sent_messages (message_id, tenant_id, mailbox_id, conversation_id, smtp_message_id, status, attempts, last_error, created_at, updated_at)
		VALUES ('old-sent', 't-1', 'mb-1', 'c-1', 'sb.old-sent@shop.example', 'sent', 2, '421 busy', $1, $1),
		       ('old-failed', 't-1', 'mb-1', 'c-1', '', 'failed', 0, 'mailbox mb-1 does not exist or was deleted', $1, $1),
		       ('old-sending', 't-1', 'mb-1', 'c-2', 'sb.old-sending@shop.example', 'sending', 1, '', $1, $1)`, at)
	require.NoError(t, err)

	require.NoError(t, Migrate(ctx, pool))
	var left *string
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('email.sent_messages')::text`).Scan(&left))
	require.Nil(t, left, "the earlier table is gone")

	ledger := NewLedger(pool)
	get := func(id string) Record {
		t.Helper()
		rec, ok, err := ledger.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, ok, "send %s was not moved", id)
		return rec
	}
	sent := get("old-sent")
	require.Equal(t, sendledger.StateSent, sent.State)
	require.Equal(t, 2, sent.Attempts)
	require.Equal(t, "421 busy", sent.LastError)
	require.Equal(t, sendledger.Ref{ID: "old-sent", TenantID: "t-1", ChannelAccountID: "mb-1", ConversationID: "c-1"}, sent.Ref)
	require.Equal(t, at, sent.UpdatedAt.UTC())
	bounced, ok, err := ledger.FindByProviderID(ctx, "t-1", "sb.old-sent@shop.example")
	require.NoError(t, err)
	require.True(t, ok, "a bounce still finds the message it reports on")
	require.Equal(t, "old-sent", bounced.ID)
	require.Equal(t, sendledger.StateFailed, get("old-failed").State)
	sending := get("old-sending")
	require.Equal(t, sendledger.StatePending, sending.State)
	require.True(t, sending.InDoubt())

	// The command of the message that was sending comes again.
	f := newFixture(t, ledger)
	cmd := testCommand("old-sending")
	cmd.ConversationID = "c-2"
	require.NoError(t, f.h.Handle(ctx, cmd))
	msgs := f.ts.messages()
	require.Len(t, msgs, 1)
	rec := get("old-sending")
	require.Equal(t, sendledger.StateSent, rec.State)
	require.Equal(t, 2, rec.Attempts)
	require.Equal(t, "sb.old-sending@shop.example", rec.ProviderID)
	require.Equal(t, []events.Delivery{{MessageID: "old-sending", TenantID: "t-1", Status: events.DeliverySent, At: rec.UpdatedAt.UTC()}}, f.deliveries())

	// Handling the old sent one publishes its status again, sends nothing.
	require.NoError(t, f.h.Handle(ctx, testCommand("old-sent")))
	require.Len(t, f.ts.messages(), 1)
}
