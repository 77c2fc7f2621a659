package smtpsend

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

func testMailbox() events.Mailbox {
	return events.Mailbox{
		ID:          "mb-1",
		TenantID:    "t-1",
		Address:     "support@shop.example",
		DisplayName: "Shop Support",
	}
}

func testCommand(id string) events.SendMessage {
	return events.SendMessage{
		MessageID:        id,
		ConversationID:   "8f14e45f-ceea-467f-a0e6-7ab2f1f8c1a1",
		TenantID:         "t-1",
		Channel:          events.ChannelEmail,
		ChannelAccountID: "mb-1",
		ThreadKey:        "root@customer.example",
		To:               "Ann Customer <ann@customer.example>",
		InReplyTo:        "<c3@customer.example>",
		Text:             "Hello Ann,\n\nyour order <#42> & co. shipped.\nRegards",
		CC:               []string{"boss@customer.example"},
	}
}

// parsed is a composed message read back with go-message.
type parsed struct {
	header mail.Header
	parts  map[string]string // content type -> decoded body
}

func parseBack(t *testing.T, raw []byte) parsed {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	require.NoError(t, err)
	p := parsed{header: r.Header, parts: map[string]string{}}
	for {
		part, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		h, ok := part.Header.(*mail.InlineHeader)
		require.True(t, ok, "part %T is not inline", part.Header)
		ct, params, err := h.ContentType()
		require.NoError(t, err)
		require.Equal(t, "utf-8", params["charset"])
		require.Equal(t, "quoted-printable", h.Get("Content-Transfer-Encoding"))
		b, err := io.ReadAll(part.Body)
		require.NoError(t, err)
		p.parts[ct] = string(b)
	}
	return p
}

func TestComposeHeaders(t *testing.T) {
	now := time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC)
	cmd := testCommand("msg-1")
	thread := Thread{ParentReferences: []string{"root@customer.example", "<r2@shop.example>"}, Subject: "Where is my order?"}
	out, err := Compose(cmd, testMailbox(), thread, now, nil)
	require.NoError(t, err)

	require.Equal(t, "sb.msg-1@shop.example", out.MessageID)
	require.Equal(t, "support@shop.example", out.From)
	require.Equal(t, []string{"ann@customer.example", "boss@customer.example"}, out.Recipients)
	require.NotContains(t, string(out.Raw), "\n\n", "lines must end in CRLF")

	p := parseBack(t, out.Raw)
	h := p.header
	from, err := h.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Shop Support", Address: "support@shop.example"}}, from)
	to, err := h.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Ann Customer", Address: "ann@customer.example"}}, to)
	cc, err := h.AddressList("Cc")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Address: "boss@customer.example"}}, cc)
	replyTo, err := h.AddressList("Reply-To")
	require.NoError(t, err)
	require.Equal(t, "support@shop.example", replyTo[0].Address, "without a reply domain, replies go to the shared mailbox")
	subject, err := h.Subject()
	require.NoError(t, err)
	require.Equal(t, "Re: Where is my order?", subject)
	date, err := h.Date()
	require.NoError(t, err)
	require.True(t, date.Equal(now), "Date = %v, want %v", date, now)
	id, err := h.MessageID()
	require.NoError(t, err)
	require.Equal(t, out.MessageID, id)
	irt, err := h.MsgIDList("In-Reply-To")
	require.NoError(t, err)
	require.Equal(t, []string{"c3@customer.example"}, irt)
	refs, err := h.MsgIDList("References")
	require.NoError(t, err)
	require.Equal(t, []string{"root@customer.example", "r2@shop.example", "c3@customer.example"}, refs)
	require.Equal(t, LoopValue("support@shop.example"), h.Get(LoopHeader))
	require.Empty(t, h.Get("Auto-Submitted"), "a human reply is not auto-submitted (RFC 3834)")
	mt, _, err := h.ContentType()
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mt)

	require.Equal(t, cmd.Text, strings.ReplaceAll(p.parts["text/plain"], "\r\n", "\n"))
	html := strings.ReplaceAll(p.parts["text/html"], "\r\n", "\n")
	require.Contains(t, html, "<p>Hello Ann,</p>")
	require.Contains(t, html, "<p>your order &lt;#42&gt; &amp; co. shipped.<br>\nRegards</p>")
	require.NotContains(t, html, "<#42>")

	// A replay, later, keeps the Message-ID.
	again, err := Compose(cmd, testMailbox(), thread, now.Add(time.Hour), nil)
	require.NoError(t, err)
	require.Equal(t, out.MessageID, again.MessageID)
}

func TestComposeAutomaticMessage(t *testing.T) {
	cmd := testCommand("msg-auto")
	cmd.Automatic = true
	thread := Thread{Subject: "Where is my order?"}
	out, err := Compose(cmd, testMailbox(), thread, time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC), nil)
	require.NoError(t, err)
	h := parseBack(t, out.Raw).header
	require.Equal(t, "auto-replied", h.Get("Auto-Submitted"), "an automatic message is marked (RFC 3834 section 5)")
	require.Equal(t, "All", h.Get("X-Auto-Response-Suppress"))
	irt, err := h.MsgIDList("In-Reply-To")
	require.NoError(t, err)
	require.Equal(t, []string{"c3@customer.example"}, irt, "it is threaded like a reply")
}

func TestComposeReferences(t *testing.T) {
	tests := []struct {
		name   string
		thread Thread
		want   []string
	}{
		{"no history", Thread{}, []string{"p@c.example"}},
		{"parent references", Thread{ParentReferences: []string{"a@x", "b@x"}, ParentInReplyTo: []string{"b@x"}}, []string{"a@x", "b@x", "p@c.example"}},
		{"parent in-reply-to only", Thread{ParentInReplyTo: []string{"<b@x>"}}, []string{"b@x", "p@c.example"}},
		{"ambiguous in-reply-to is ignored", Thread{ParentInReplyTo: []string{"a@x", "b@x"}}, []string{"p@c.example"}},
		{"invalid and repeated ids dropped", Thread{ParentReferences: []string{"a@x", "bad id@x", "a@x", "p@c.example"}}, []string{"a@x", "p@c.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := testCommand("m")
			cmd.InReplyTo = "p@c.example"
			out, err := Compose(cmd, testMailbox(), tt.thread, time.Now(), nil)
			require.NoError(t, err)
			h := parseBack(t, out.Raw).header
			got, err := h.MsgIDList("References")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("new message has neither", func(t *testing.T) {
		cmd := testCommand("m")
		cmd.InReplyTo = ""
		out, err := Compose(cmd, testMailbox(), Thread{}, time.Now(), nil)
		require.NoError(t, err)
		h := parseBack(t, out.Raw).header
		require.Empty(t, h.Get("In-Reply-To"))
		require.Empty(t, h.Get("References"))
	})
}

func TestReplySubject(t *testing.T) {
	tests := []struct{ subject, thread, want string }{
		{"", "Order", "Re: Order"},
		{"", "Re: Order", "Re: Order"},
		{"", "RE: re:Re : Order", "Re: Order"},
		{"", "Re[2]: Order", "Re: Order"},
		{"", "AW: WG: Bestellung", "Re: Bestellung"},
		{"", "TR: [Ticket#12] Commande", "Re: [Ticket#12] Commande"},
		{"", "Regarding the order", "Re: Regarding the order"},
		{"", "", ""},
		{"New subject", "Order", "New subject"},
		{"Re: mine", "Order", "Re: mine"},
	}
	for _, tt := range tests {
		if got := replySubject(tt.subject, tt.thread); got != tt.want {
			t.Errorf("replySubject(%q, %q) = %q, want %q", tt.subject, tt.thread, got, tt.want)
		}
	}
}

func TestComposeEncodedSubjectAndNames(t *testing.T) {
	cmd := testCommand("m-utf8")
	cmd.Subject = "Votre commande n°42 est expédiée ✓\r\nBcc: evil@x.example"
	mb := testMailbox()
	mb.DisplayName = "Service client Élodie"
	out, err := Compose(cmd, mb, Thread{}, time.Now(), nil)
	require.NoError(t, err)

	head := string(out.Raw[:bytes.Index(out.Raw, []byte("\r\n\r\n"))])
	for _, line := range strings.Split(head, "\r\n") {
		for _, r := range line {
			require.Less(t, r, rune(128), "header line %q is not ASCII", line)
		}
		require.False(t, strings.HasPrefix(line, "Bcc:"), "a subject must not inject a header")
	}
	require.Contains(t, head, "=?utf-8?")

	h := parseBack(t, out.Raw).header
	subject, err := h.Subject()
	require.NoError(t, err)
	require.Equal(t, cmd.Subject, subject)
	from, err := h.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, "Service client Élodie", from[0].Name)
}

func TestComposeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(*events.SendMessage, *events.Mailbox)
	}{
		{"no message id", func(c *events.SendMessage, _ *events.Mailbox) { c.MessageID = "" }},
		{"no text", func(c *events.SendMessage, _ *events.Mailbox) { c.Text = " \n" }},
		{"bad recipient", func(c *events.SendMessage, _ *events.Mailbox) { c.To = "not an address" }},
		{"bad cc", func(c *events.SendMessage, _ *events.Mailbox) { c.CC = []string{"x@y", "nope"} }},
		{"injected in-reply-to", func(c *events.SendMessage, _ *events.Mailbox) { c.InReplyTo = "a@b>\r\nBcc: evil@x" }},
		{"bad mailbox address", func(_ *events.SendMessage, m *events.Mailbox) { m.Address = "support" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, mb := testCommand("m"), testMailbox()
			tt.change(&cmd, &mb)
			_, err := Compose(cmd, mb, Thread{}, time.Now(), nil)
			require.ErrorIs(t, err, ErrCompose)
		})
	}
}

func TestMessageIDIsAlwaysValid(t *testing.T) {
	for _, id := range []string{"0195a7c2-7d1e-7c3a-9f00-1a2b3c4d5e6f", "with space", "a..b", "<x>", strings.Repeat("a", 300)} {
		got := MessageID(id, "Shop.Example")
		require.True(t, validMsgID(got), "MessageID(%q) = %q", id, got)
		require.True(t, strings.HasSuffix(got, "@shop.example"), "MessageID(%q) = %q", id, got)
		require.Equal(t, got, MessageID(id, "shop.example"), "MessageID must be stable")
	}
	require.NotEqual(t, MessageID("with space", "d"), MessageID("with  space", "d"))
}

func TestReplyToAndSubjectTag(t *testing.T) {
	cmd := testCommand("m-reply")
	cmd.Subject = "Re: Order 12"
	thread := Thread{ReplyAddress: "reply+abcdefghijklmnopqrst@reply.shop.example", SubjectTag: "[#abcdefghijklmnopqrst]"}
	out, err := Compose(cmd, testMailbox(), thread, time.Now(), nil)
	require.NoError(t, err)
	h := parseBack(t, out.Raw).header
	replyTo, err := h.AddressList("Reply-To")
	require.NoError(t, err)
	require.Len(t, replyTo, 1)
	require.Equal(t, "Shop Support", replyTo[0].Name)
	require.Equal(t, thread.ReplyAddress, replyTo[0].Address)
	subject, err := (&h).Subject()
	require.NoError(t, err)
	require.Equal(t, "Re: Order 12 [#abcdefghijklmnopqrst]", subject)

	// A subject that has the tag already keeps one.
	cmd.Subject = "Re: Order 12 [#ABCDEFGHIJKLMNOPQRST]"
	out, err = Compose(cmd, testMailbox(), thread, time.Now(), nil)
	require.NoError(t, err)
	h = parseBack(t, out.Raw).header
	subject, err = (&h).Subject()
	require.NoError(t, err)
	require.Equal(t, cmd.Subject, subject)

	// A reply address that is not an address is refused.
	_, err = Compose(cmd, testMailbox(), Thread{ReplyAddress: "not an address"}, time.Now(), nil)
	require.ErrorIs(t, err, ErrCompose)
}

func TestIsLoop(t *testing.T) {
	v := LoopValue("Support@Shop.Example")
	require.True(t, IsLoop([]string{"other", strings.ToUpper(v)}, "support@shop.example"))
	require.False(t, IsLoop([]string{v}, "sales@shop.example"), "another mailbox's mail is not a loop")
	require.False(t, IsLoop(nil, "support@shop.example"))
}

// A command with its own HTML (a template's body) sends it as the
// text/html alternative, the text staying text/plain.
func TestComposeCommandHTML(t *testing.T) {
	cmd := testCommand("msg-html")
	cmd.HTML = `<p>Hello <b>Ann</b></p>`
	out, err := Compose(cmd, testMailbox(), Thread{}, time.Now(), nil)
	require.NoError(t, err)
	p := parseBack(t, out.Raw)
	require.Equal(t, `<p>Hello <b>Ann</b></p>`, strings.TrimSpace(p.parts["text/html"]))
	require.Contains(t, p.parts["text/plain"], "Hello Ann,")
}
