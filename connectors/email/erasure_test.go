package email

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// publishErase publishes an erasure, as the inbox does, keyed by the
// conversation.
func (e *env) publishErase(er events.Erase, threadKey, mailbox string) {
	e.t.Helper()
	er.ID, er.TenantID, er.Channel = uuid.NewString(), testTenant, events.ChannelEmail
	ev, err := events.New(events.TypeErase, "switchboard/inbox", er.TenantID, time.Now(), er)
	require.NoError(e.t, err)
	key := events.ConversationKey(er.TenantID, events.ChannelEmail, mailbox, threadKey)
	require.NoError(e.t, e.producer.Publish(context.Background(), events.TopicOutbound(events.ChannelEmail), key, ev))
}

// TestErasuresAreForgotten anonymises a reply (its subject and the SMTP
// answer go), then erases the customer (the thread goes: their next mail
// in it starts a new thread).
func TestErasuresAreForgotten(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	out := startSMTP(t)
	alice := srv.user(t, "alice")
	mb := srv.mailbox("alice", "", out)
	e.publishMailbox(mb)
	ctx := context.Background()

	appendMail(t, alice, "INBOX", simpleMail("e1@customer.example", "Cust <cust@customer.example>", "My secret subject"))
	first := e.received(mb.ID, "e1@customer.example", 1).Msg
	cmd := events.SendMessage{MessageID: uuid.NewString(), ConversationID: uuid.NewString(), TenantID: testTenant, Channel: events.ChannelEmail,
		ChannelAccountID: mb.ID, ThreadKey: first.ThreadKey, To: "cust@customer.example", InReplyTo: first.ExternalID, Text: "On it."}
	e.publishSend(cmd)
	require.Equal(t, events.DeliverySent, e.waitDeliveries(cmd.MessageID, 1)[0].Status)
	subjects := func() []string {
		rows, err := e.pool.Query(ctx, `SELECT subject FROM email.messages WHERE mailbox_id = $1 ORDER BY created_at, message_id`, mb.ID)
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.Len(t, subjects(), 2)
	// What a server may answer quotes the recipient.
	_, err := e.pool.Exec(ctx, `UPDATE email.send_ledger SET answer = '250 2.0.0 queued for cust@customer.example' WHERE id = $1`, cmd.MessageID)
	require.NoError(t, err)
	var answer string

	// The reply is anonymised.
	e.publishErase(events.Erase{Reason: events.EraseAnonymise, Messages: []events.ErasedMessage{{ID: cmd.MessageID, ChannelAccountID: mb.ID,
		ConversationID: cmd.ConversationID, Direction: "outbound"}}}, first.ThreadKey, mb.ID)
	testkit.Eventually(t, 20*time.Second, func() bool {
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT answer FROM email.send_ledger WHERE id = $1`, cmd.MessageID).Scan(&answer))
		return answer == ""
	}, "the send's answer was not blanked")
	s := subjects()
	require.Contains(t, s, "", "the reply's subject is blanked")
	require.Contains(t, s, "My secret subject", "the customer's mail was not anonymised")

	// The customer is erased: the thread is forgotten.
	e.publishErase(events.Erase{Reason: events.EraseContact, Identities: []string{"cust@customer.example"},
		Messages:      []events.ErasedMessage{{ID: uuid.NewString(), ExternalID: first.ExternalID, ChannelAccountID: mb.ID, ConversationID: cmd.ConversationID, Direction: "inbound"}},
		Conversations: []events.ErasedConversation{{ID: cmd.ConversationID, ChannelAccountID: mb.ID, ThreadKey: first.ThreadKey}}}, first.ThreadKey, mb.ID)
	testkit.Eventually(t, 20*time.Second, func() bool { return len(subjects()) == 0 }, "the thread's records were not forgotten")
	var tokens int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM email.threads WHERE mailbox_id = $1`, mb.ID).Scan(&tokens))
	require.Zero(t, tokens)
	appendMail(t, alice, "INBOX", simpleMail("e2@customer.example", "Cust <cust@customer.example>", "Re: My secret subject",
		"In-Reply-To: <sb."+cmd.MessageID+"@example.com>"))
	require.NotEqual(t, first.ThreadKey, e.received(mb.ID, "e2@customer.example", 1).Msg.ThreadKey, "an answer in a forgotten thread starts a new one")
}
