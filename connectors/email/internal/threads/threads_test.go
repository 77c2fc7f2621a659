package threads_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/email/internal/threads"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func newStore(t *testing.T) *threads.Store {
	t.Helper()
	s := threads.New(testkit.Postgres(t))
	require.NoError(t, s.Migrate(testkit.Context(t)))
	return s
}

func TestResolveOrder(t *testing.T) {
	ctx := testkit.Context(t)
	s := newStore(t)

	// A customer's first mail starts a thread keyed by its Message-ID.
	first := threads.Inbound{MailboxID: "mb", MessageID: "a1@customer.example", Subject: "Order 12"}
	key, err := s.Resolve(ctx, first)
	require.NoError(t, err)
	require.Equal(t, "a1@customer.example", key)
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", MessageID: first.MessageID, ThreadKey: key, ExternalID: "x1", Subject: "Order 12"}))

	// Our reply is remembered too.
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", MessageID: "sb.r1@support.example", ThreadKey: key, ExternalID: "m1", Outbound: true, References: []string{"a1@customer.example"}}))

	// A reply from another client that only keeps References.
	got, err := s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "b2@other.example", References: []string{"a1@customer.example", "sb.r1@support.example"}})
	require.NoError(t, err)
	require.Equal(t, key, got)

	// In-Reply-To wins over References.
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", MessageID: "z@else", ThreadKey: "other", ExternalID: "x9"}))
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "c3", InReplyTo: "z@else", References: []string{"a1@customer.example"}})
	require.NoError(t, err)
	require.Equal(t, "other", got)

	// Another mailbox's Message-IDs are not ours.
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb2", MessageID: "d4", InReplyTo: "a1@customer.example"})
	require.NoError(t, err)
	require.Equal(t, "d4", got)

	// Headers dropped: the reply address finds the thread, then the subject token.
	tok, err := s.Token(ctx, "mb", key)
	require.NoError(t, err)
	again, err := s.Token(ctx, "mb", key)
	require.NoError(t, err)
	require.Equal(t, tok, again, "a thread keeps its token")
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "e5", Recipients: []string{"support@support.example", threads.ReplyAddress(tok, "support.example")}})
	require.NoError(t, err)
	require.Equal(t, key, got)
	subject := threads.TagSubject("Re: Order 12", tok)
	require.Equal(t, subject, threads.TagSubject(subject, tok), "tagging twice adds nothing")
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "f6", Subject: "TR: " + strings.ToUpper(subject)})
	require.NoError(t, err)
	require.Equal(t, key, got)

	// Unknown token: a new thread; no Message-ID: the fallback names it.
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", Subject: "[#aaaaaaaaaaaaaaaaaaaa]", Fallback: "hash:1"})
	require.NoError(t, err)
	require.Equal(t, "hash:1", got)

	// The parent of a reply.
	p, ok, err := s.Parent(ctx, "mb", "x1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, threads.Parent{MessageID: "a1@customer.example", References: []string{}, Subject: "Order 12"}, p)
	_, ok, err = s.Parent(ctx, "mb", "unknown")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestKeyBoundsLongMessageIDs(t *testing.T) {
	long := strings.Repeat("x", 400) + "@example"
	k := threads.Key(long)
	require.LessOrEqual(t, len(k), 256)
	require.Equal(t, k, threads.Key(long))
	require.Equal(t, "short@example", threads.Key("short@example"))
}

func TestReplyAddress(t *testing.T) {
	tok := "abcdefghijklmnopqrst"
	addr := threads.ReplyAddress(tok, "reply.example")
	for _, in := range []string{addr, strings.ToUpper(addr), "Shop <" + addr + ">", " " + addr + " "} {
		got, ok := threads.ParseReplyAddress(in)
		require.True(t, ok, in)
		require.Equal(t, tok, got, in)
	}
	for _, bad := range []string{"", "reply@support.example", "reply+short@x", "support@x", "reply+" + tok, "reply+" + tok + "x@x", "reply+" + strings.Repeat("1", 20) + "@x", "@x"} {
		_, ok := threads.ParseReplyAddress(bad)
		require.False(t, ok, bad)
	}
}

func FuzzParseReplyAddress(f *testing.F) {
	f.Add(threads.ReplyAddress("abcdefghijklmnopqrst", "reply.example"))
	f.Add("Name <reply+abc@x>")
	f.Add("\"quoted\"@x")
	f.Fuzz(func(t *testing.T, addr string) {
		token, ok := threads.ParseReplyAddress(addr)
		if !ok {
			return
		}
		if len(token) != 20 || strings.Trim(token, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("ParseReplyAddress(%q) = %q, not a token", addr, token)
		}
	})
}
