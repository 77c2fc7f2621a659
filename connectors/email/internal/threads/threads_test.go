package threads_test

import (
	"encoding/base64"
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

// outlookIndex is a Thread-Index: a root (a reserved byte, a FILETIME's
// five high bytes, a GUID) and one 5-byte block per reply.
func outlookIndex(guid byte, replies int) string {
	b := []byte{0x01, 0xd3, 0xed, 0x70, 0x2d, 0x4c}
	for i := 0; i < 16; i++ {
		b = append(b, guid+byte(i))
	}
	for i := 0; i < replies; i++ {
		b = append(b, 0x00, 0x00, 0x00, 0x58, byte(i))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestOutlookRoot(t *testing.T) {
	first, ok := threads.OutlookRoot(outlookIndex(0x40, 0))
	require.True(t, ok)
	require.Len(t, first, 44)
	reply, ok := threads.OutlookRoot(outlookIndex(0x40, 3))
	require.True(t, ok)
	require.Equal(t, first, reply, "a reply's Thread-Index starts with its conversation's root")
	other, ok := threads.OutlookRoot(outlookIndex(0x41, 0))
	require.True(t, ok)
	require.NotEqual(t, first, other)
	// Real headers, folded and without padding.
	for _, v := range []string{"AdPtcC1MSE5c0pkYThyTQ9zM6/ir+w==", "AQHXl+LPt2gZg1ctnJZSwldsza9BF6OZ\r\n neDAgAAAWBE", "AQHTVoX48qQf/rL9R02Db7+QqglAPw=="} {
		_, ok := threads.OutlookRoot(v)
		require.True(t, ok, v)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 21)), base64.StdEncoding.EncodeToString(append([]byte{1, 2, 3, 4, 5, 6}, make([]byte, 16)...))} {
		_, ok := threads.OutlookRoot(bad)
		require.False(t, ok, bad)
	}
}

func TestResolveByThreadIndex(t *testing.T) {
	ctx := testkit.Context(t)
	s := newStore(t)

	// An Outlook customer's first mail starts a thread and records its
	// conversation's root.
	first := threads.Inbound{MailboxID: "mb", MessageID: "o1@customer.example", Subject: "Bestellung 42",
		ThreadIndex: outlookIndex(0x10, 0), ThreadTopic: "Bestellung 42"}
	key, err := s.Resolve(ctx, first)
	require.NoError(t, err)
	require.Equal(t, "o1@customer.example", key)
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", MessageID: first.MessageID, ThreadKey: key, ExternalID: "x1",
		Subject: first.Subject, ThreadIndex: first.ThreadIndex, ThreadTopic: first.ThreadTopic}))

	// A colleague's Outlook answers through a relay that dropped
	// In-Reply-To and References: the Thread-Index finds the thread,
	// whatever the prefixes of the subject.
	reply := threads.Inbound{MailboxID: "mb", MessageID: "o2@customer.example", Subject: "AW: WG: Bestellung 42",
		ThreadIndex: outlookIndex(0x10, 2), ThreadTopic: "Bestellung 42"}
	got, err := s.Resolve(ctx, reply)
	require.NoError(t, err)
	require.Equal(t, key, got)
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "o2b", Subject: "RE: [Support] bestellung  42",
		ThreadIndex: outlookIndex(0x10, 1), ThreadTopic: "[Support] Bestellung 42"})
	require.NoError(t, err)
	require.Equal(t, key, got, "list tags, case and spaces aside")

	// False joins are refused: another mailbox, a topic that is not the
	// subject, a topic that is not the thread's, another root, no topic.
	for _, in := range []threads.Inbound{
		{MailboxID: "mb2", MessageID: "n1", Subject: "AW: Bestellung 42", ThreadIndex: reply.ThreadIndex, ThreadTopic: "Bestellung 42"},
		{MailboxID: "mb", MessageID: "n2", Subject: "Invoice 7", ThreadIndex: reply.ThreadIndex, ThreadTopic: "Bestellung 42"},
		{MailboxID: "mb", MessageID: "n3", Subject: "Invoice 7", ThreadIndex: reply.ThreadIndex, ThreadTopic: "Invoice 7"},
		{MailboxID: "mb", MessageID: "n4", Subject: "AW: Bestellung 42", ThreadIndex: outlookIndex(0x20, 1), ThreadTopic: "Bestellung 42"},
		{MailboxID: "mb", MessageID: "n5", Subject: "AW: Bestellung 42", ThreadIndex: reply.ThreadIndex},
		{MailboxID: "mb", MessageID: "n6", Subject: "Re:", ThreadIndex: reply.ThreadIndex, ThreadTopic: ""},
	} {
		got, err := s.Resolve(ctx, in)
		require.NoError(t, err)
		require.Equal(t, in.MessageID, got, "%+v starts its own thread", in)
	}

	// References still win over the Thread-Index.
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", MessageID: "z@else", ThreadKey: "other", ExternalID: "x9"}))
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "o3", References: []string{"z@else"}, Subject: "AW: Bestellung 42",
		ThreadIndex: reply.ThreadIndex, ThreadTopic: "Bestellung 42"})
	require.NoError(t, err)
	require.Equal(t, "other", got)

	// A mail recorded again keeps its conversation's first thread, and a
	// mail without a Message-ID still records its root.
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", MessageID: "o9", ThreadKey: "elsewhere", ExternalID: "x10",
		Subject: "Bestellung 42", ThreadIndex: first.ThreadIndex, ThreadTopic: "Bestellung 42"}))
	require.NoError(t, s.Record(ctx, threads.Message{MailboxID: "mb", ThreadKey: "hash:1", ExternalID: "x11",
		Subject: "Re: Lieferung", ThreadIndex: outlookIndex(0x30, 1), ThreadTopic: "Lieferung"}))
	got, err = s.Resolve(ctx, reply)
	require.NoError(t, err)
	require.Equal(t, key, got)
	got, err = s.Resolve(ctx, threads.Inbound{MailboxID: "mb", MessageID: "o4", Subject: "RE: Lieferung", ThreadIndex: outlookIndex(0x30, 2), ThreadTopic: "Lieferung"})
	require.NoError(t, err)
	require.Equal(t, "hash:1", got)
}
