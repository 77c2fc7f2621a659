package outbound

import (
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/sms/internal/consent"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestMigrateKeepsEarlierSends: the rows of the table earlier versions
// kept move to the send ledger with their doubts, and a message whose
// attempt was in doubt is looked for at Twilio before it is sent again.
func TestMigrateKeepsEarlierSends(t *testing.T) {
	pool := testkit.Postgres(t)
	ctx := testkit.Context(t)
	require.NoError(t, consent.New(pool).Migrate(ctx))

	// The schema as the earlier version left it.
	first, err := fs.ReadFile(migrations, "migrations/001_sent_messages.sql")
	require.NoError(t, err)
	require.NoError(t, pg.Migrate(ctx, pool, Schema, versionTable, fstest.MapFS{"001_sent_messages.sql": {Data: first}}))
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	sid := fmt.Sprintf("SM%032x", 99)
	_, err = pool.Exec(ctx, `
		INSERT INTO sms.sent_messages (message_id, tenant_id, account_id, conversation_id, to_number, sender, twilio_sid,
			status, attempts, last_error, encoding, segments, in_doubt_since, created_at, updated_at)
		VALUES ('old-sent', 't-1', 'acct-1', 'c-1', '+33612340001', $2, $3, 'sent', 1, '', 'UCS-2', 2, NULL, $1, $1),
		       ('old-doubt', 't-1', 'acct-1', 'c-2', '+33612340002', $2, '', 'sending', 2, 'Twilio answered HTTP 502', 'GSM-7', 1, $1, $1, $1),
		       ('old-retry', 't-1', 'acct-1', 'c-3', '+33612340003', $2, '', 'sending', 1, 'Twilio error 20429: Too Many Requests', 'GSM-7', 1, NULL, $1, $1)`,
		at, testNumber2, sid)
	require.NoError(t, err)

	require.NoError(t, Migrate(ctx, pool))
	var left *string
	require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass('sms.sent_messages')::text`).Scan(&left))
	require.Nil(t, left, "the earlier table is gone")

	f := newFixture(t, pool, testAccount())
	get := func(id string) Record {
		t.Helper()
		rec, ok, err := f.ledger.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, ok, "send %s was not moved", id)
		return rec
	}
	sent := get("old-sent")
	require.Equal(t, sendledger.StateSent, sent.State)
	require.Equal(t, sid, sent.ProviderID)
	require.Equal(t, Details{To: "+33612340001", Sender: testNumber2, Encoding: EncodingUCS2, Segments: 2}, sent.Details)
	require.Equal(t, sendledger.Ref{ID: "old-sent", TenantID: "t-1", ChannelAccountID: "acct-1", ConversationID: "c-1"}, sent.Ref)
	byTwilio, ok, err := f.ledger.FindByProviderID(ctx, "t-1", sid)
	require.NoError(t, err)
	require.True(t, ok, "a status callback still finds its message")
	require.Equal(t, "old-sent", byTwilio.ID)
	doubt := get("old-doubt")
	require.Equal(t, sendledger.StatePending, doubt.State)
	require.True(t, doubt.InDoubt())
	require.Equal(t, at, doubt.InDoubtSince.UTC())
	retry := get("old-retry")
	require.False(t, retry.InDoubt())
	require.Equal(t, 1, retry.Attempts)

	// Their commands come again.
	cmd := testCommand("old-doubt", "+33612340002")
	require.NoError(t, f.h.Handle(ctx, cmd))
	msgs, creates, lists := f.tw.counts()
	require.Len(t, msgs, 1)
	require.Equal(t, 1, creates)
	require.Equal(t, 1, lists, "the attempt in doubt is looked for first")
	rec := get("old-doubt")
	require.Equal(t, sendledger.StateSent, rec.State)
	require.Equal(t, 3, rec.Attempts)
	require.Equal(t, msgs[0].SID, rec.ProviderID)

	require.NoError(t, f.h.Handle(ctx, testCommand("old-retry", "+33612340003")))
	_, creates, lists = f.tw.counts()
	require.Equal(t, 2, creates)
	require.Equal(t, 1, lists, "nothing else was in doubt")
	require.Equal(t, 2, get("old-retry").Attempts)

	require.NoError(t, f.h.Handle(ctx, testCommand("old-sent", "+33612340001")))
	_, creates, _ = f.tw.counts()
	require.Equal(t, 2, creates, "a message sent before the upgrade is not sent again")
	d := f.deliveries()
	require.Len(t, d, 3)
	require.Equal(t, events.Delivery{MessageID: "old-sent", TenantID: "t-1", Status: events.DeliverySent, At: at}, d[2])
}
