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
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

func validMailbox() store.MailboxSpec {
	return store.MailboxSpec{Name: "Support", Address: "support@example.com",
		IMAP: events.MailServer{Host: "imap.example.com", Port: 993, TLS: events.TLSImplicit, Username: "support", Password: "pw"},
		SMTP: events.MailServer{Host: "smtp.example.com", Port: 25, TLS: events.TLSNone}}
}

func TestMailboxSpecValidate(t *testing.T) {
	checkValidate(t, validMailbox, []validateCase[store.MailboxSpec]{
		{"valid", func(*store.MailboxSpec) {}, ""},
		{"IPv4 host", func(s *store.MailboxSpec) { s.IMAP.Host = "192.0.2.1" }, ""},
		{"IPv6 host", func(s *store.MailboxSpec) { s.SMTP.Host = "2001:db8::1" }, ""},
		{"single-label host", func(s *store.MailboxSpec) { s.IMAP.Host = "localhost" }, ""},
		{"host with a final dot", func(s *store.MailboxSpec) { s.IMAP.Host = "imap.example.com." }, ""},
		{"OAuth2 instead of a password", func(s *store.MailboxSpec) { s.IMAP.Password, s.IMAP.OAuth2Token = "", "tok" }, ""},
		{"host with a zone", func(s *store.MailboxSpec) { s.IMAP.Host = "fe80::1%eth0" }, "imap.host"},
		{"host with a bracket", func(s *store.MailboxSpec) { s.IMAP.Host = "[2001:db8::1]" }, "imap.host"},
		{"host with an underscore", func(s *store.MailboxSpec) { s.SMTP.Host = "smtp_1.example.com" }, "smtp.host"},
		{"host of digits", func(s *store.MailboxSpec) { s.SMTP.Host = "1.2.3" }, "smtp.host"},
		{"label over 63 bytes", func(s *store.MailboxSpec) { s.IMAP.Host = strings.Repeat("a", 64) + ".com" }, "imap.host"},
		{"move_to INBOX when the folder is empty", func(s *store.MailboxSpec) { s.MoveTo = "Inbox" }, "move_to"},
		{"move_to another folder", func(s *store.MailboxSpec) { s.Folder, s.MoveTo = "Support", "Done" }, ""},
		{"folder blank", func(s *store.MailboxSpec) { s.Folder = "  " }, "folder"},
		{"display name with a tab", func(s *store.MailboxSpec) { s.DisplayName = "a\tb" }, "display_name"},
		{"reply_domain valid", func(s *store.MailboxSpec) { s.ReplyDomain = "reply.example.com" }, ""},
	})
}

// TestAnnounceConfigAnnouncesMailboxes: at start the inbox announces every
// mailbox, live ones with their secrets, deleted ones as deleted.
func TestAnnounceConfigAnnouncesMailboxes(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	keys := testkit.Keyring(t)
	s := store.New(pool, keys)
	require.NoError(t, s.Migrate(ctx))
	now := time.Now()
	var tenant store.Tenant
	var live, gone store.Mailbox
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		if _, err = s.CreateChatChannel(ctx, tx, tenant.ID, "chat", now); err != nil {
			return err
		}
		if live, err = s.CreateMailbox(ctx, tx, tenant.ID, validMailbox(), now); err != nil {
			return err
		}
		other := validMailbox()
		other.Address = "sales@example.com"
		if gone, err = s.CreateMailbox(ctx, tx, tenant.ID, other, now); err != nil {
			return err
		}
		return s.DeleteMailbox(ctx, tx, tenant.ID, gone.ID, now)
	}))
	_, err := pool.Exec(ctx, `DELETE FROM inbox.outbox`)
	require.NoError(t, err)

	n, err := s.AnnounceConfig(ctx, now)
	require.NoError(t, err)
	// Automation: the tenant's settings (it has no queue nor waiting
	// message).
	require.Equal(t, store.Announced{ChatChannels: 1, Mailboxes: 2, Automation: 1}, n)

	// The outbox holds what AnnounceConfig added only: an event a key.
	got := configEvents[events.Mailbox](t, ctx, pool, "mailbox/")
	require.Len(t, got, 2)
	l := got["mailbox/"+live.ID.String()][0]
	require.Equal(t, tenant.ID.String(), l.TenantID)
	require.False(t, l.Deleted)
	require.True(t, seal.IsSealed(l.IMAP.Password), "announced sealed: %q", l.IMAP.Password)
	_, err = keys.OpenFields(l.SecretPlace(), l.SecretFields())
	require.NoError(t, err)
	require.Equal(t, "pw", l.IMAP.Password, "the connector logs in with the announced secrets")
	g := got["mailbox/"+gone.ID.String()][0]
	require.True(t, g.Deleted)
	require.Empty(t, g.IMAP.Password, "a deleted mailbox's secrets are forgotten")

	// Mail of the mailbox is accepted, on the email channel only.
	msg := events.MessageReceived{TenantID: tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: live.ID.String(),
		ExternalID: "<1@x>", ThreadKey: "<1@x>", From: events.Party{Identity: "ada@example.com"}, Text: "hello", ReceivedAt: now}
	_, err = s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: msg}}, now, nil, nil)
	require.NoError(t, err)
	msg.Channel, msg.ExternalID = events.ChannelChat, "<2@x>"
	_, err = s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: msg}}, now, nil, nil)
	require.ErrorIs(t, err, store.ErrUnknownAccount)
}
