package outbound_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/chat/internal/outbound"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestForgetBlanksWhatAnErasureNames anonymises a delivered reply and an
// open one (which is not delivered any more), then erases a contact: the
// deliveries of their conversation lose body, session and user, and their
// user id leaves every other delivery.
func TestForgetBlanksWhatAnErasureNames(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	store := outbound.NewStore(pool, "test")
	require.NoError(t, store.Migrate(ctx))
	mk := func(id, conv, user string) outbound.Delivery {
		d, err := outbound.MessageDelivery(events.SendMessage{MessageID: id, ConversationID: conv, TenantID: "t-1", ChannelAccountID: "ch-1",
			ThreadKey: "s-" + conv, To: user, Text: "secret text of " + id}, now)
		require.NoError(t, err)
		return d
	}
	_, err := store.Record(ctx, []outbound.Delivery{mk("a1", "a", "ada"), mk("a2", "a", "ada"), mk("b1", "b", "ada"), mk("c1", "c", "bob")}, now)
	require.NoError(t, err)
	heads, err := store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	closed, err := store.Finish(ctx, heads[0], outbound.OutcomeSkipped, "", now) // a1 done
	require.NoError(t, err)
	require.True(t, closed)

	type row struct {
		body, user, session, outcome string
		done                         bool
	}
	read := func(id string) row {
		var r row
		require.NoError(t, pool.QueryRow(ctx, `SELECT convert_from(body, 'UTF8'), user_id, session_id, outcome, done FROM chat.deliveries WHERE id = $1`, id).
			Scan(&r.body, &r.user, &r.session, &r.outcome, &r.done))
		return r
	}
	require.Contains(t, read("a2").body, "secret text")

	erase := func(e events.Erase) {
		e.ID, e.TenantID, e.Channel = "e-"+e.Reason, "t-1", events.ChannelChat
		require.NoError(t, store.Forget(ctx, e, now))
	}
	erase(events.Erase{Reason: events.EraseAnonymise, Messages: []events.ErasedMessage{
		{ID: "a1", ChannelAccountID: "ch-1", ConversationID: "a", Direction: "outbound"},
		{ID: "a2", ChannelAccountID: "ch-1", ConversationID: "a", Direction: "outbound"}}})
	a1, a2 := read("a1"), read("a2")
	require.Equal(t, "", a1.body)
	require.Equal(t, row{user: a2.user, session: a2.session, outcome: outbound.OutcomeSkipped, done: true}, a2, "the open one is closed, not delivered")
	heads, err = store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	for _, h := range heads {
		require.NotContains(t, []string{"a1", "a2"}, h.ID, "an erased delivery is offered again")
	}
	require.Contains(t, read("b1").body, "secret text", "other messages are left alone")

	erase(events.Erase{Reason: events.EraseContact, Identities: []string{"ada"},
		Conversations: []events.ErasedConversation{{ID: "b", ChannelAccountID: "ch-1", ThreadKey: "s-b"}}})
	b1 := read("b1")
	require.Equal(t, row{outcome: outbound.OutcomeSkipped, done: true}, b1)
	require.Equal(t, "", read("a1").user, "the erased user leaves every delivery")
	require.Contains(t, read("c1").body, "secret text")
	require.Equal(t, "bob", read("c1").user)
	var failed int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM chat.send_ledger WHERE answer <> '' OR last_error LIKE '%secret%'`).Scan(&failed))
	require.Zero(t, failed)

	e := events.Erase{ID: "bad", TenantID: "t-1", Channel: events.ChannelEmail, Reason: events.EraseDelete, Identities: []string{"x"}}
	require.ErrorIs(t, store.Forget(ctx, e, now), outbound.ErrInvalidErase)
}
