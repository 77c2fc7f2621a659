package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// TestIngestFollowsTheStateMachine holds the ingestion SQL, which moves
// conversations itself for speed, to domain.CustomerMessage.
func TestIngestFollowsTheStateMachine(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	s := store.New(pool, testkit.Keyring(t))
	require.NoError(t, s.Migrate(ctx))
	var tenant store.Tenant
	var channel store.ChatChannel
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		channel, err = s.CreateChatChannel(ctx, tx, tenant.ID, "chat", time.Now())
		return err
	}))
	n := 0
	ingest := func(thread string) store.IngestResult {
		n++
		res, err := s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: events.MessageReceived{
			TenantID: tenant.ID.String(), Channel: "chat", ChannelAccountID: channel.ID.String(),
			ExternalID: fmt.Sprintf("m-%d", n), ThreadKey: thread, From: events.Party{Identity: "u"}, Text: "hello",
			ReceivedAt: time.Now(),
		}}}, time.Now(), nil, nil)
		require.NoError(t, err)
		return res
	}
	for _, state := range domain.AllStates() {
		for _, ignored := range []bool{false, true} {
			thread := fmt.Sprintf("%s-%v", state, ignored)
			first := ingest(thread)
			require.True(t, first.Touched[0].Created)
			id := first.Touched[0].ID
			_, err := pool.Exec(ctx, `UPDATE inbox.conversations SET state = $2, ignored = $3, unread = false, last_writer = 'agent' WHERE id = $1`, id, string(state), ignored)
			require.NoError(t, err)

			res := ingest(thread)
			require.Len(t, res.Touched, 1)
			got := res.Touched[0]
			want := domain.CustomerMessage(domain.Conversation{State: state, Ignored: ignored})
			require.Equal(t, want, got.State, "state %s, ignored %v", state, ignored)
			require.Equal(t, state, got.From)
			require.Equal(t, want != state, got.Reopened())
			require.Equal(t, !ignored, got.Unread, "unread after a customer message, ignored %v", ignored)
			require.Equal(t, "customer", got.LastWriter)
			if got.Reopened() {
				require.Equal(t, state, got.PreviousState)
				require.Empty(t, got.Assignees)
			}
		}
	}

	// A message delivered again changes nothing.
	res := ingest("redelivery")
	again, err := s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: events.MessageReceived{
		TenantID: tenant.ID.String(), Channel: "chat", ChannelAccountID: channel.ID.String(),
		ExternalID: fmt.Sprintf("m-%d", n), ThreadKey: "redelivery", From: events.Party{Identity: "u"}, Text: "hello",
		ReceivedAt: time.Now(),
	}}}, time.Now(), nil, nil)
	require.NoError(t, err)
	require.Equal(t, 1, again.Duplicates)
	require.Empty(t, again.Stored)
	require.Empty(t, again.Touched, "a duplicate must not touch its conversation")
	require.Len(t, res.Stored, 1)
}

// TestBotMessagesAreTheBots holds ingestion to the rule of a chat bot's
// messages: stored as the bot's, they re-open nothing, leave the unread
// mark and the last writer alone, and are never the customer's last
// message; the customer's in the same batch still count.
func TestBotMessagesAreTheBots(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	s := store.New(pool, testkit.Keyring(t))
	require.NoError(t, s.Migrate(ctx))
	var tenant store.Tenant
	var channel store.ChatChannel
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		channel, err = s.CreateChatChannel(ctx, tx, tenant.ID, "chat", time.Now())
		return err
	}))
	n := 0
	msg := func(thread string, bot bool) store.Inbound {
		n++
		m := events.MessageReceived{TenantID: tenant.ID.String(), Channel: "chat", ChannelAccountID: channel.ID.String(),
			ExternalID: fmt.Sprintf("m-%d", n), ThreadKey: thread, From: events.Party{Identity: "u"}, Text: "hello", ReceivedAt: time.Now()}
		if bot {
			m.Bot = &events.BotAuthor{Name: "Helper"}
		}
		return store.Inbound{EventID: uuid.NewString(), Msg: m}
	}
	ingest := func(in ...store.Inbound) store.IngestResult {
		res, err := s.Ingest(ctx, in, time.Now(), nil, func(res store.IngestResult) ([]outbox.Record, error) {
			return store.IngestEvents(in, res, time.Now())
		})
		require.NoError(t, err)
		return res
	}
	first := ingest(msg("done", false))
	id := first.Touched[0].ID
	_, err := pool.Exec(ctx, `UPDATE inbox.conversations SET state = 'done', unread = false, last_writer = 'agent' WHERE id = $1`, id)
	require.NoError(t, err)

	res := ingest(msg("done", true))
	require.Len(t, res.Stored, 1)
	require.Len(t, res.Touched, 1)
	got := res.Touched[0]
	require.Equal(t, "done", string(got.State), "a bot's message re-opened a done conversation")
	require.False(t, got.Reopened())
	require.False(t, got.Unread)
	require.Equal(t, "agent", got.LastWriter)
	require.Equal(t, first.Touched[0].Version+1, got.Version, "the conversation takes the message as a change")

	msgs, err := s.ListMessages(ctx, id, nil, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.Equal(t, "outbound", msgs[1].Direction)
	require.Equal(t, store.AuthorBot, msgs[1].AuthorKind)
	require.Equal(t, "Helper", msgs[1].AuthorName)
	require.Equal(t, "Helper", msgs[1].Sender)
	require.Empty(t, msgs[1].DeliveryStatus, "Switchboard did not send it")

	// The bot's and the customer's in one batch, on two conversations: the
	// customer's re-opens its own only.
	second := ingest(msg("other", false)).Touched[0].ID
	_, err = pool.Exec(ctx, `UPDATE inbox.conversations SET state = 'done' WHERE id = ANY($1)`, []uuid.UUID{id, second})
	require.NoError(t, err)
	res = ingest(msg("done", true), msg("other", false))
	require.Len(t, res.Touched, 2)
	for _, c := range res.Touched {
		if c.ID == id {
			require.Equal(t, "done", string(c.State))
		} else {
			require.Equal(t, "new", string(c.State))
			require.True(t, c.Reopened())
		}
	}
}
