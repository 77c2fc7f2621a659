package sms_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestErasuresAreForgotten anonymises a text (Twilio's answer goes), then
// erases its customer: their number leaves the settled sends, an open send
// keeps it until it settles, and their opt-out stays.
func TestErasuresAreForgotten(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	customer := "+33611223344"
	sent, open := uuid.NewString(), uuid.NewString()
	now := time.Now().UTC()
	for _, r := range []struct{ id, state string }{{sent, "sent"}, {open, "pending"}} {
		_, err := e.pool.Exec(ctx, `INSERT INTO sms.send_ledger (id, tenant_id, channel_account_id, conversation_id, state, provider_id, answer, last_error, details, created_at, updated_at)
			VALUES ($1, $2, $3, 'c1', $4, $5, 'queued: Your code is 1234', 'earlier: to '||$6, jsonb_build_object('to', $6::text, 'sender', '+33700000001'), $7, $7)`,
			r.id, tenantID, accountA, r.state, "SM"+r.id[:8], customer, now)
		require.NoError(t, err)
	}
	_, err := e.pool.Exec(ctx, `INSERT INTO sms.consent (account_id, number, opted_out, changed_at) VALUES ($1, $2, true, $3)`, accountA, customer, now)
	require.NoError(t, err)

	publish := func(er events.Erase) {
		er.ID, er.TenantID, er.Channel = uuid.NewString(), tenantID, events.ChannelSMS
		ev, err := events.New(events.TypeErase, "switchboard/inbox", tenantID, time.Now(), er)
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(ctx, events.TopicOutbound(events.ChannelSMS), events.ConversationKey(tenantID, events.ChannelSMS, accountA, customer), ev))
	}
	type row struct{ answer, lastError, to string }
	read := func(id string) row {
		var r row
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT answer, last_error, coalesce(details ->> 'to', '') FROM sms.send_ledger WHERE id = $1`, id).
			Scan(&r.answer, &r.lastError, &r.to))
		return r
	}

	publish(events.Erase{Reason: events.EraseAnonymise, Messages: []events.ErasedMessage{{ID: sent, ChannelAccountID: accountA, ConversationID: "c1", Direction: "outbound"}}})
	testkit.Eventually(t, 20*time.Second, func() bool { return read(sent).answer == "" }, "the answer was not blanked")
	require.Equal(t, row{to: customer}, read(sent), "an anonymised text keeps its recipient")
	require.NotEmpty(t, read(open).answer, "another send is left alone")

	publish(events.Erase{Reason: events.EraseContact, Identities: []string{customer},
		Conversations: []events.ErasedConversation{{ID: "c1", ChannelAccountID: accountA, ThreadKey: customer}}})
	testkit.Eventually(t, 20*time.Second, func() bool { return read(sent).to == "" }, "the settled send kept the number")
	require.Equal(t, customer, read(open).to, "an open send keeps its number until it settles")
	optedOut, err := e.consent.OptedOut(ctx, accountA, customer)
	require.NoError(t, err)
	require.True(t, optedOut, "the opt-out outlives the erasure")
}
