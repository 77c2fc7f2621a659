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
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// TestOffersOfOneBatchCountEachOther: offers to the same agent applied in
// one transaction see each other: an agent of capacity 2 offered three
// conversations in one batch gets two, the third is stale.
func TestOffersOfOneBatchCountEachOther(t *testing.T) {
	ctx := context.Background()
	s := store.New(testkit.Postgres(t), testkit.Keyring(t))
	require.NoError(t, s.Migrate(ctx))
	now := time.Now()
	var (
		tenant  store.Tenant
		channel store.ChatChannel
		agent   store.User
	)
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		if channel, err = s.CreateChatChannel(ctx, tx, tenant.ID, "chat", now); err != nil {
			return err
		}
		agent, err = s.CreateUser(ctx, tx, tenant.ID, store.UserSpec{Email: "ada@t.test", Name: "Ada", Role: domain.RoleAgent, Capacity: 2}, now)
		return err
	}))
	var cmds []store.Command
	for i := range 3 {
		res, err := s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: events.MessageReceived{
			TenantID: tenant.ID.String(), Channel: "chat", ChannelAccountID: channel.ID.String(),
			ExternalID: fmt.Sprintf("m-%d", i), ThreadKey: fmt.Sprintf("s-%d", i), From: events.Party{Identity: "u"}, Text: "hello", ReceivedAt: now,
		}}}, now, nil, nil)
		require.NoError(t, err)
		c := res.Touched[0]
		cmd, err := store.NewCommand(uuid.NewString(), "router", events.InboxCommand{TenantID: tenant.ID.String(), ConversationID: c.ID.String(),
			Kind: events.CommandOffer, Expect: events.Expectation{State: "new", StateVersion: c.StateVersion},
			Offer: &events.Offer{UserID: agent.ID.String(), ExpiresAt: now.Add(time.Minute)}})
		require.NoError(t, err)
		cmds = append(cmds, cmd)
	}
	offer := func(ctx context.Context, tx pgx.Tx, c *store.Conversation, cmd store.Command, _ time.Time) (store.Change, error) {
		return store.Offer(ctx, tx, c, agent.ID, cmd.Offer.ExpiresAt, cmd.Offer.Fence)
	}
	outs, err := s.ApplyCommands(ctx, cmds, now, offer)
	require.NoError(t, err)
	var results []string
	for _, o := range outs {
		results = append(results, o.Result)
	}
	require.Equal(t, []string{store.OutcomeApplied, store.OutcomeApplied, store.OutcomeStale}, results)
	require.Contains(t, outs[2].Reason, "no room")
}
