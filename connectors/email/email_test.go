package email

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// The tests below run the whole connector: mailboxes announced on kfake's
// sb.config.v1, go-imap's in-memory IMAP server, go-smtp's server, and a
// fresh PostgreSQL database each.

// richMail has a text and a HTML body, an inline image and an attachment.
func richMail(pdf, png []byte) []byte {
	return rawMail([]string{
		`From: "Ada Lovelace" <Ada.Lovelace@Example.ORG>`,
		"To: Support <support@example.com>",
		"Cc: accounts@example.org",
		"Subject: Invoice question",
		"Message-ID: <rich-1@example.org>",
		"Date: Mon, 09 Mar 2026 10:11:12 +0100",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="mixed"`,
	}, `--mixed
Content-Type: multipart/related; boundary="rel"

--rel
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=utf-8

Hello, my invoice is wrong.
--alt
Content-Type: text/html; charset=utf-8

<p>Hello, my <b>invoice</b> is wrong.<script>alert(1)</script></p><img src="cid:logo@example.org" onerror="steal()">
--alt--
--rel
Content-Type: image/png
Content-ID: <logo@example.org>
Content-Disposition: inline
Content-Transfer-Encoding: base64

`+base64.StdEncoding.EncodeToString(png)+`
--rel--
--mixed
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

`+base64.StdEncoding.EncodeToString(pdf)+`
--mixed--
`)
}

func TestMailIsIngested(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	alice := srv.user(t, "alice")
	pdf := []byte("%PDF-1.4 an invoice, wrong\n%%EOF\n")
	png := []byte("\x89PNG\r\n\x1a\nnot really an image")
	mails := [][]byte{richMail(pdf, png), simpleMail("plain-2@customer.example", "Bob <BOB@customer.example>", "Second question")}
	for _, m := range mails {
		appendMail(t, alice, "INBOX", m)
	}
	mb := srv.mailbox("alice", "", nil)
	e.publishMailbox(mb)

	// The backfill: one inbound message per mail.
	rich := e.received(mb.ID, "rich-1@example.org", 1)
	require.Equal(t, events.TypeMessageReceived, rich.Event.Type)
	require.Equal(t, EventSource, rich.Event.Source)
	require.Equal(t, testTenant, rich.Event.Tenant)
	m := rich.Msg
	require.NoError(t, m.Validate())
	require.Equal(t, testTenant, m.TenantID)
	require.Equal(t, events.ChannelEmail, m.Channel)
	require.Equal(t, mb.ID, m.ChannelAccountID)
	require.Equal(t, "rich-1@example.org", m.ThreadKey, "a new thread is keyed by its first Message-ID")
	require.Equal(t, string(events.ConversationKey(testTenant, events.ChannelEmail, mb.ID, m.ThreadKey)), rich.Key)
	require.Len(t, m.ExternalID, 64)
	require.Equal(t, events.Party{Identity: "ada.lovelace@example.org", Name: "Ada Lovelace"}, m.From)
	require.Equal(t, "Invoice question", m.Subject)
	require.Contains(t, m.Text, "Hello, my invoice is wrong.")
	require.Contains(t, m.HTML, "<b>invoice</b>")
	require.Contains(t, m.HTML, `src="cid:logo@example.org"`)
	for _, bad := range []string{"<script", "alert(1)", "onerror", "steal()"} {
		require.NotContains(t, m.HTML, bad, "the HTML is sanitised")
	}
	require.False(t, m.Automatic)
	require.True(t, m.SentAt.Equal(time.Date(2026, 3, 9, 9, 11, 12, 0, time.UTC)), "sent_at %s", m.SentAt)
	require.Equal(t, "support@example.com", m.Metadata["to"])
	require.Equal(t, "accounts@example.org", m.Metadata["cc"])

	require.Len(t, m.Attachments, 2)
	att, inline := m.Attachments[0], m.Attachments[1]
	require.Equal(t, "invoice.pdf", att.Name)
	require.Equal(t, "application/pdf", att.ContentType)
	require.EqualValues(t, len(pdf), att.Size)
	require.False(t, att.Inline)
	require.Equal(t, "image/png", inline.ContentType)
	require.Equal(t, "logo@example.org", inline.ContentID)
	require.True(t, inline.Inline)
	for _, a := range []struct {
		att  events.Attachment
		want []byte
	}{{att, pdf}, {inline, png}} {
		require.Empty(t, a.att.Skipped)
		require.True(t, strings.HasPrefix(a.att.BlobKey, blobNamespace(mb)+"/"), "blob key %q is in the mailbox's namespace", a.att.BlobKey)
		r, err := e.conn.blobs.Open(context.Background(), a.att.BlobKey)
		require.NoError(t, err, "the blob of %s is stored", a.att.Name)
		got, err := io.ReadAll(r)
		r.Close()
		require.NoError(t, err)
		require.Equal(t, a.want, got)
	}

	plain := e.received(mb.ID, "plain-2@customer.example", 1)
	require.Equal(t, "bob@customer.example", plain.Msg.From.Identity, "addresses are lowercased")
	require.Equal(t, "Second question", plain.Msg.Subject)
	require.Equal(t, "Mail plain-2@customer.example.", strings.TrimSpace(plain.Msg.Text))
	require.Empty(t, plain.Msg.HTML)
	require.Empty(t, plain.Msg.Attachments)
	require.NotEqual(t, rich.Event.ID, plain.Event.ID)

	// Caught up, the connector waits in IDLE (its poll interval is an
	// hour): the server's word is what brings the next mail in.
	testkit.Eventually(t, wait, func() bool { return srv.idling.Load() > 0 }, "the connector never started IDLE")
	idle := simpleMail("idle-3@customer.example", "Carol <carol@customer.example>", "Arrived while idle")
	appendMail(t, alice, "INBOX", idle)
	mails = append(mails, idle)
	e.received(mb.ID, "idle-3@customer.example", 1)
	for _, id := range []string{"rich-1@example.org", "plain-2@customer.example"} {
		require.Len(t, e.inboundOf(mb.ID, id), 1, "mail %s published once", id)
	}

	// The folder is recreated (a new UIDVALIDITY) with the same mails, and
	// the sync restarts with new settings: every mail is offered again,
	// and is the same event.
	require.NoError(t, alice.Delete("INBOX"))
	require.NoError(t, alice.Create("INBOX", nil))
	for _, m := range mails {
		appendMail(t, alice, "INBOX", m)
	}
	mb.Name = "Support desk"
	e.publishMailbox(mb)
	for _, id := range []string{"rich-1@example.org", "plain-2@customer.example", "idle-3@customer.example"} {
		again := e.received(mb.ID, id, 2)
		first := e.inboundOf(mb.ID, id)[0]
		require.Equal(t, first.Event.ID, again.Event.ID, "mail %s offered again is the same event", id)
		require.Equal(t, first.Msg.ExternalID, again.Msg.ExternalID)
		require.Equal(t, first.Msg.ThreadKey, again.Msg.ThreadKey)
		require.Equal(t, first.Key, again.Key)
	}
}

// nestedMail is a mail of depth nested multiparts.
func nestedMail(depth int) []byte {
	var b strings.Builder
	for i := 1; i < depth; i++ {
		b.WriteString("--b" + strconv.Itoa(i-1) + "\nContent-Type: multipart/mixed; boundary=\"b" + strconv.Itoa(i) + "\"\n\n")
	}
	b.WriteString("--b" + strconv.Itoa(depth-1) + "\nContent-Type: text/plain\n\ndeep down\n")
	for i := depth - 1; i >= 0; i-- {
		b.WriteString("--b" + strconv.Itoa(i) + "--\n")
	}
	return rawMail([]string{"From: Mallory <mallory@evil.example>", "Subject: deep", "Message-ID: <deep@evil.example>", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="b0"`}, b.String())
}

func TestAutomaticMailAndDeadLetters(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	alice := srv.user(t, "alice")
	headerless := []byte("\r\nThis mail has no header at all.\r\n")
	deep := nestedMail(200)
	for _, m := range [][]byte{
		simpleMail("human@customer.example", "Bob <bob@customer.example>", "Help"),
		simpleMail("ooo@customer.example", "Bob <bob@customer.example>", "Out of office", "Auto-Submitted: auto-replied"),
		// Our own reply, come back through a forwarding rule.
		simpleMail("loop@customer.example", "Bob <bob@customer.example>", "Fwd: Re: Help", "X-Loop: switchboard "+testAddress),
		deep,       // UID 4
		headerless, // UID 5
		simpleMail("after@customer.example", "Bob <bob@customer.example>", "Still there?"),
	} {
		appendMail(t, alice, "INBOX", m)
	}
	mb := srv.mailbox("alice", "", nil)
	e.publishMailbox(mb)

	human := e.received(mb.ID, "human@customer.example", 1)
	require.False(t, human.Msg.Automatic)
	require.Empty(t, human.Msg.Metadata["automatic_reason"])
	ooo := e.received(mb.ID, "ooo@customer.example", 1)
	require.True(t, ooo.Msg.Automatic, "an auto-reply is automatic")
	require.Equal(t, "Auto-Submitted: auto-replied", ooo.Msg.Metadata["automatic_reason"])
	loop := e.received(mb.ID, "loop@customer.example", 1)
	require.True(t, loop.Msg.Automatic, "our own mail coming back is automatic")
	require.Equal(t, "X-Loop: this mailbox", loop.Msg.Metadata["automatic_reason"])

	// The malformed mails are kept raw in the dead-letter topic, and the
	// sync goes on past them.
	after := e.received(mb.ID, "after@customer.example", 1)
	require.False(t, after.Msg.Automatic)
	testkit.Eventually(t, wait, func() bool { return len(e.dlq.all()) >= 2 }, "the malformed mails were not dead-lettered")
	dead := e.dlq.all()
	require.Len(t, dead, 2)
	validity := strconv.FormatUint(uint64(srv.uidValidity(t, "alice", "INBOX")), 10)
	for i, want := range []struct {
		uid string
		raw []byte
	}{{"4", deep}, {"5", headerless}} {
		d := dead[i]
		require.Equal(t, want.uid, header(d, "imap_uid"), "dead letter %d", i)
		require.True(t, strings.HasPrefix(header(d, bus.HeaderDLQReason), "unparseable: "), "dlq_reason %q", header(d, bus.HeaderDLQReason))
		require.Equal(t, mb.ID, header(d, "mailbox_id"))
		require.Equal(t, testTenant, header(d, "tenant_id"))
		require.Equal(t, validity, header(d, "imap_uidvalidity"))
		require.Equal(t, "false", header(d, "mail_truncated"))
		require.Equal(t, "email/"+mb.ID+"/"+validity+"/"+want.uid, string(d.Key))
		require.Equal(t, want.raw, d.Value, "the raw mail is kept")
	}
	require.Len(t, e.inbound.all(), 4, "nothing else was published")
}

// subjectTokenRE finds the thread token of a reply's subject.
var subjectTokenRE = regexp.MustCompile(`\[#([a-z2-7]{20})\]`)

// dsn is a delivery status notification reporting that the reply with
// Message-ID msgID could not be delivered.
func dsn(msgID string) []byte {
	return rawMail([]string{
		"Return-Path: <>",
		"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.customer.example>",
		"To: " + testAddress,
		"Subject: Undelivered Mail Returned to Sender",
		"Message-ID: <dsn-1@mx.customer.example>",
		"Auto-Submitted: auto-replied",
		"MIME-Version: 1.0",
		`Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"`,
	}, `--dsn
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.
--dsn
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.customer.example

Final-Recipient: rfc822; cust@customer.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--dsn
Content-Type: message/rfc822

From: Example Support <support@example.com>
To: cust@customer.example
Subject: Re: Printer on fire
Message-ID: <`+msgID+`>
Date: Tue, 10 Mar 2026 09:05:00 +0000

We are on it.
--dsn--
`)
}

func TestRepliesThreadWithTheCustomer(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	out := startSMTP(t)
	alice := srv.user(t, "alice")
	mb := srv.mailbox("alice", "", out)
	e.publishMailbox(mb)

	// The customer writes; a colleague's client answers with References
	// only.
	appendMail(t, alice, "INBOX", simpleMail("c1@customer.example", "Cust <cust@customer.example>", "Printer on fire"))
	first := e.received(mb.ID, "c1@customer.example", 1).Msg
	thread := first.ThreadKey
	require.Equal(t, "c1@customer.example", thread)
	appendMail(t, alice, "INBOX", simpleMail("c2@other.example", "Colleague <colleague@customer.example>", "Re: Printer on fire",
		"References: <c1@customer.example> <unknown@elsewhere.example>"))
	require.Equal(t, thread, e.received(mb.ID, "c2@other.example", 1).Msg.ThreadKey, "a reply with References only joins the thread")

	// An agent answers the first mail.
	cmd := events.SendMessage{
		MessageID: uuid.NewString(), ConversationID: uuid.NewString(), TenantID: testTenant, Channel: events.ChannelEmail,
		ChannelAccountID: mb.ID, ThreadKey: thread, To: "cust@customer.example", InReplyTo: first.ExternalID,
		Text: "We are on it.", AuthorID: "agent-1",
	}
	e.publishSend(cmd)
	sent := e.waitDeliveries(cmd.MessageID, 1)
	require.Equal(t, events.DeliverySent, sent[0].Status, "delivery %+v", sent[0])
	require.Equal(t, testTenant, sent[0].TenantID)
	msgs := out.messages()
	require.Len(t, msgs, 1)
	reply, err := mail.ReadMessage(bytes.NewReader(msgs[0]))
	require.NoError(t, err)
	replyID := "sb." + cmd.MessageID + "@example.com"
	require.Equal(t, "<"+replyID+">", reply.Header.Get("Message-Id"))
	require.Equal(t, "<c1@customer.example>", reply.Header.Get("In-Reply-To"))
	require.Equal(t, "<c1@customer.example>", reply.Header.Get("References"))
	require.Equal(t, "switchboard "+testAddress, reply.Header.Get("X-Loop"))
	subject := reply.Header.Get("Subject")
	require.True(t, strings.HasPrefix(subject, "Re: Printer on fire [#"), "subject %q", subject)
	tok := subjectTokenRE.FindStringSubmatch(subject)
	require.NotNil(t, tok, "subject %q carries the thread token", subject)

	// The same command again (a replay): the status again, no second mail.
	e.publishSend(cmd)
	again := e.waitDeliveries(cmd.MessageID, 2)
	require.Equal(t, sent[0], again[1], "the recorded status is published again")
	require.Len(t, out.messages(), 1, "a replayed command sends nothing")

	// The customer answers our reply (In-Reply-To only), then writes from
	// a client that keeps nothing but the subject's token.
	appendMail(t, alice, "INBOX", simpleMail("c3@customer.example", "Cust <cust@customer.example>", "Re: Printer on fire", "In-Reply-To: <"+replyID+">"))
	require.Equal(t, thread, e.received(mb.ID, "c3@customer.example", 1).Msg.ThreadKey, "an answer to our reply joins the thread")
	appendMail(t, alice, "INBOX", simpleMail("c4@customer.example", "Cust <cust@customer.example>", "Still burning "+tok[0]))
	require.Equal(t, thread, e.received(mb.ID, "c4@customer.example", 1).Msg.ThreadKey, "a mail with the thread's token joins the thread")

	// The reply bounces: its delivery is failed, and the bounce itself is
	// an automatic message of the thread.
	appendMail(t, alice, "INBOX", dsn(replyID))
	bounced := e.waitDeliveries(cmd.MessageID, 3)[2]
	require.Equal(t, events.DeliveryFailed, bounced.Status)
	require.Contains(t, bounced.Error, "cust@customer.example")
	require.Contains(t, bounced.Error, "5.1.1")
	b := e.received(mb.ID, "dsn-1@mx.customer.example", 1).Msg
	require.True(t, b.Automatic)
	require.Equal(t, thread, b.ThreadKey, "a bounce joins the thread of the mail it reports on")

	// A reply with an attachment from the blob store, whose answers go to
	// the agent.
	ref, err := e.conn.blobs.Put(context.Background(), testTenant+"/uploads", strings.NewReader("%PDF-1.4 manual"), 1<<10)
	require.NoError(t, err)
	cmd3 := cmd
	cmd3.MessageID, cmd3.Text, cmd3.ReplyTo = uuid.NewString(), "The manual is attached.", "agent-1@example.com"
	cmd3.Attachments = []events.Attachment{{Name: "manual.pdf", ContentType: "application/pdf", Size: ref.Size, BlobKey: ref.Key}}
	e.publishSend(cmd3)
	require.Equal(t, events.DeliverySent, e.waitDeliveries(cmd3.MessageID, 1)[0].Status)
	require.Len(t, out.messages(), 2)
	withFile, err := mail.ReadMessage(bytes.NewReader(out.messages()[1]))
	require.NoError(t, err)
	require.Equal(t, "<agent-1@example.com>", withFile.Header.Get("Reply-To"))
	require.True(t, strings.HasPrefix(withFile.Header.Get("Content-Type"), "multipart/mixed;"), "Content-Type %q", withFile.Header.Get("Content-Type"))
	body, err := io.ReadAll(withFile.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "filename=manual.pdf")
	require.Contains(t, string(body), base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 manual")))

	// The SMTP server refuses the next reply: failed, with its words.
	out.setRefuse(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied"})
	cmd2 := cmd
	cmd2.MessageID, cmd2.Text = uuid.NewString(), "Have you tried turning it off?"
	e.publishSend(cmd2)
	failed := e.waitDeliveries(cmd2.MessageID, 1)[0]
	require.Equal(t, events.DeliveryFailed, failed.Status)
	require.Equal(t, "550 5.7.1 Relaying denied", failed.Error)
	require.Len(t, out.messages(), 2)
}

func TestMailboxSettingsChanges(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	alice := srv.user(t, "alice")
	require.NoError(t, alice.Create("Support", nil))
	appendMail(t, alice, "INBOX", simpleMail("inbox-1@customer.example", "Bob <bob@customer.example>", "In the inbox"))
	appendMail(t, alice, "Support", simpleMail("support-1@customer.example", "Bob <bob@customer.example>", "In the support folder"))
	mb := srv.mailbox("alice", "", nil)
	e.publishMailbox(mb)
	e.received(mb.ID, "inbox-1@customer.example", 1)

	// Another folder: the sync restarts there, from its first mail.
	mb.Folder = "Support"
	e.publishMailbox(mb)
	e.received(mb.ID, "support-1@customer.example", 1)
	appendMail(t, alice, "INBOX", simpleMail("inbox-2@customer.example", "Bob <bob@customer.example>", "In the inbox, later"))
	appendMail(t, alice, "Support", simpleMail("support-2@customer.example", "Bob <bob@customer.example>", "In the support folder, later"))
	e.received(mb.ID, "support-2@customer.example", 1)
	require.Empty(t, e.inboundOf(mb.ID, "inbox-2@customer.example"), "the old folder is no longer read")

	// Deleted: the session ends, and later mail stays on the server.
	mb.Deleted = true
	e.publishMailbox(mb)
	testkit.Eventually(t, wait, func() bool { return srv.open.Load() == 0 }, "the deleted mailbox's IMAP session never ended")
	appendMail(t, alice, "Support", simpleMail("support-3@customer.example", "Bob <bob@customer.example>", "After the deletion"))
	// A mailbox added afterwards syncs; by then the deletion has long
	// been applied.
	bob := srv.user(t, "bob")
	appendMail(t, bob, "INBOX", simpleMail("bob-1@customer.example", "Dan <dan@customer.example>", "To the other mailbox"))
	other := srv.mailbox("bob", "", nil)
	e.publishMailbox(other)
	e.received(other.ID, "bob-1@customer.example", 1)
	require.Empty(t, e.inboundOf(mb.ID, "support-3@customer.example"), "a deleted mailbox is not synchronised")
	_, known := e.conn.mailboxes.get(mb.ID)
	require.False(t, known)
}

// A mailbox moved to another account whose folder happens to have the same
// UIDVALIDITY (small servers number from 1) must not resume at the old
// account's UID: it would skip the new account's first mails.
func TestMailboxMovedToAnotherAccountStartsOver(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	bob, carol := srv.user(t, "bob"), srv.user(t, "carol")
	require.Equal(t, srv.uidValidity(t, "bob", "INBOX"), srv.uidValidity(t, "carol", "INBOX"), "the test needs colliding UIDVALIDITYs")
	appendMail(t, bob, "INBOX", simpleMail("bob-1@customer.example", "Dan <dan@customer.example>", "One"))
	appendMail(t, bob, "INBOX", simpleMail("bob-2@customer.example", "Dan <dan@customer.example>", "Two"))
	appendMail(t, carol, "INBOX", simpleMail("carol-1@customer.example", "Eve <eve@customer.example>", "Three"))
	appendMail(t, carol, "INBOX", simpleMail("carol-2@customer.example", "Eve <eve@customer.example>", "Four"))
	appendMail(t, carol, "INBOX", simpleMail("carol-3@customer.example", "Eve <eve@customer.example>", "Five"))
	mb := srv.mailbox("bob", "", nil)
	e.publishMailbox(mb)
	e.received(mb.ID, "bob-2@customer.example", 1)

	mb.IMAP.Username = "carol"
	e.publishMailbox(mb)
	for _, id := range []string{"carol-1@customer.example", "carol-2@customer.example", "carol-3@customer.example"} {
		e.received(mb.ID, id, 1)
	}
}

// The replica that reads a mailbox holds an advisory lock on a connection
// of its own. When that connection dies, the lock is gone and another
// replica could take the mailbox: the sync stops, takes the lock again, and
// goes on without losing a mail.
func TestLostMailboxLockIsTakenAgain(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	alice := srv.user(t, "alice")
	appendMail(t, alice, "INBOX", simpleMail("lock-1@customer.example", "Bob <bob@customer.example>", "Before"))
	mb := srv.mailbox("alice", "", nil)
	e.publishMailbox(mb)
	e.received(mb.ID, "lock-1@customer.example", 1)

	ctx := testkit.Context(t)
	holder := func() int {
		var pid int
		err := e.pool.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
		require.NoError(t, err)
		return pid
	}
	first := holder()
	require.NotZero(t, first, "the mailbox's lock is held")
	_, err := e.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, first)
	require.NoError(t, err)
	testkit.Eventually(t, wait, func() bool { p := holder(); return p != 0 && p != first }, "the lock was never taken again")

	appendMail(t, alice, "INBOX", simpleMail("lock-2@customer.example", "Bob <bob@customer.example>", "After"))
	e.received(mb.ID, "lock-2@customer.example", 1)
	require.Len(t, e.inboundOf(mb.ID, "lock-1@customer.example"), 1, "nothing published twice")
}
