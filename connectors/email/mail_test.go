package email

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// publishMail publishes a SendMail, as the inbox does (keyed by its id).
func (e *env) publishMail(m events.SendMail) {
	e.t.Helper()
	ev, err := events.NewWithID(m.ID, events.TypeSendMail, "switchboard/inbox", m.TenantID, time.Now(), m)
	require.NoError(e.t, err)
	require.NoError(e.t, e.producer.Publish(context.Background(), events.TopicOutbound(events.ChannelEmail), []byte(m.ID), ev))
}

// deadLetter waits for the dead letter of the event with id and returns
// its reason.
func (e *env) deadLetter(id string) string {
	e.t.Helper()
	var reason string
	testkit.Eventually(e.t, wait, func() bool {
		for _, d := range e.dlq.all() {
			if ev, _, err := events.FromMessage(context.Background(), d); err == nil && ev.ID == id {
				reason = header(d, bus.HeaderDLQReason)
				return true
			}
		}
		return false
	}, "event %s was not dead-lettered", id)
	return reason
}

// waitSent waits until srv holds n messages and returns the last, parsed.
func waitSent(t *testing.T, srv *smtpServer, n int) *mail.Message {
	t.Helper()
	testkit.Eventually(t, wait, func() bool { return len(srv.messages()) >= n }, "%d mails were not sent", n)
	msgs := srv.messages()
	require.Len(t, msgs, n)
	m, err := mail.ReadMessage(bytes.NewReader(msgs[n-1]))
	require.NoError(t, err)
	return m
}

// parts reads the parts of a multipart body by content type (without
// parameters), decoded.
func parts(t *testing.T, contentType string, body io.Reader) map[string]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	require.NoError(t, err)
	out := map[string]string{}
	if !strings.HasPrefix(mt, "multipart/") {
		b, err := io.ReadAll(body)
		require.NoError(t, err)
		out[mt] = string(b)
		return out
	}
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		ct := p.Header.Get("Content-Type")
		if strings.HasPrefix(ct, "multipart/") {
			for k, v := range parts(t, ct, p) {
				out[k] = v
			}
			continue
		}
		var rd io.Reader = p
		switch p.Header.Get("Content-Transfer-Encoding") {
		case "quoted-printable":
			rd = quotedprintable.NewReader(p)
		case "base64":
			rd = base64.NewDecoder(base64.StdEncoding, p)
		}
		b, err := io.ReadAll(rd)
		require.NoError(t, err)
		pmt, _, _ := mime.ParseMediaType(ct)
		out[pmt] = string(b)
	}
}

func TestNotificationMailsAreSentOnceFromTheTenantsMailbox(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	out := startSMTP(t)
	srv.user(t, "alice")
	mb := srv.mailbox("alice", "", out)
	e.publishMailbox(mb)

	m := events.SendMail{ID: "notification-" + uuid.NewString(), TenantID: testTenant, MailboxID: mb.ID, Purpose: events.MailNotification,
		To: []string{"ada@example.com"}, Subject: "[Switchboard] A conversation was assigned to you", Text: "A conversation was assigned to you.",
		HTML: "<p>A conversation was <b>assigned</b> to you.</p>"}
	e.publishMail(m)
	got := waitSent(t, out, 1)
	require.Equal(t, "auto-generated", got.Header.Get("Auto-Submitted"))
	require.Equal(t, "All", got.Header.Get("X-Auto-Response-Suppress"))
	require.Equal(t, `"Example Support" <support@example.com>`, got.Header.Get("From"))
	require.Equal(t, "<ada@example.com>", got.Header.Get("To"))
	require.Equal(t, m.Subject, got.Header.Get("Subject"))
	require.Equal(t, "<sb."+m.ID+"@example.com>", got.Header.Get("Message-Id"))
	body := parts(t, got.Header.Get("Content-Type"), got.Body)
	require.Equal(t, m.Text, body["text/plain"])
	require.Equal(t, m.HTML, body["text/html"])

	// The same mail again, then another: the other is the second mail
	// sent, the replay sent nothing.
	e.publishMail(m)
	next := m
	next.ID = "notification-" + uuid.NewString()
	e.publishMail(next)
	require.Equal(t, "<sb."+next.ID+"@example.com>", waitSent(t, out, 2).Header.Get("Message-Id"))
	require.Empty(t, e.deliveries(m.ID), "a mail has no delivery status")

	// What cannot be sent is dead-lettered: a mail that does not
	// validate, one of a mailbox the connector does not know, and one
	// without a mailbox while no operator SMTP is set.
	bad := m
	bad.ID, bad.To = uuid.NewString(), []string{"Ada <ada@example.com>"}
	e.publishMail(bad)
	require.Contains(t, e.deadLetter(bad.ID), "permanent")
	unknown := m
	unknown.ID, unknown.MailboxID = uuid.NewString(), uuid.NewString()
	e.publishMail(unknown)
	e.deadLetter(unknown.ID)
	operator := m
	operator.ID, operator.MailboxID = uuid.NewString(), ""
	e.publishMail(operator)
	e.deadLetter(operator.ID)
	require.Len(t, out.messages(), 2)
}

func TestMailsWithoutAMailboxGoThroughTheOperatorsSMTP(t *testing.T) {
	operator := startSMTP(t)
	e := startConnector(t, func(c *Config) {
		c.Mail = MailConfig{SMTPURL: fmt.Sprintf("smtp+plain://%s:%d", operator.host, operator.port), From: "Switchboard <noreply@switchboard.example>"}
	})
	ref, err := e.conn.blobs.Put(context.Background(), testTenant+"/transcripts", strings.NewReader("%PDF-1.4 transcript"), 1<<10)
	require.NoError(t, err)
	m := events.SendMail{ID: uuid.NewString(), TenantID: testTenant, Purpose: events.MailTranscript,
		To: []string{"auditor@example.org", "legal@example.org"}, Subject: "Conversation transcript", Text: "The conversation is attached.",
		Attachments: []events.Attachment{{Name: "transcript.pdf", ContentType: "application/pdf", Size: ref.Size, BlobKey: ref.Key}}}
	e.publishMail(m)
	got := waitSent(t, operator, 1)
	require.Empty(t, got.Header.Get("Auto-Submitted"), "an admin sends a transcript")
	require.Equal(t, `"Switchboard" <noreply@switchboard.example>`, got.Header.Get("From"))
	require.Equal(t, "<auditor@example.org>, <legal@example.org>", got.Header.Get("To"))
	body := parts(t, got.Header.Get("Content-Type"), got.Body)
	require.Equal(t, m.Text, body["text/plain"])
	require.NotContains(t, body, "text/html", "no HTML was given")
	require.Equal(t, "%PDF-1.4 transcript", body["application/pdf"])
}

func TestOperatorSMTPSettings(t *testing.T) {
	for _, c := range []struct {
		cfg  MailConfig
		ok   bool
		tls  string
		port int
	}{
		{MailConfig{}, true, "", 0},
		{MailConfig{SMTPURL: "smtp://mail.example.com", From: "a@example.com"}, true, events.TLSStartTLS, 587},
		{MailConfig{SMTPURL: "smtps://mail.example.com", From: "a@example.com", Username: "u", Password: "p"}, true, events.TLSImplicit, 465},
		{MailConfig{SMTPURL: "smtp+plain://relay:2525", From: "Ops <a@example.com>"}, true, events.TLSNone, 2525},
		{MailConfig{SMTPURL: "smtp://mail.example.com"}, false, "", 0},
		{MailConfig{SMTPURL: "http://mail.example.com", From: "a@example.com"}, false, "", 0},
		{MailConfig{SMTPURL: "smtp://u:p@mail.example.com", From: "a@example.com"}, false, "", 0},
		{MailConfig{SMTPURL: "smtp://mail.example.com:99999", From: "a@example.com"}, false, "", 0},
		{MailConfig{From: "a@example.com"}, false, "", 0},
		{MailConfig{SMTPURL: "smtp://mail.example.com", From: "a@example.com", Password: "p"}, false, "", 0},
	} {
		cfg := Config{MaxAttachmentBytes: 1 << 20, SendAttempts: 1, SMTPTimeout: time.Minute, Mail: c.cfg}
		cfg.IMAP.PollInterval, cfg.IMAP.DialTimeout = time.Minute, time.Second
		err := cfg.Validate("")
		mailErr := err != nil && strings.Contains(err.Error(), "email.mail")
		require.Equal(t, c.ok, !mailErr, "%+v: %v", c.cfg, err)
		if c.ok && c.cfg.SMTPURL != "" {
			op, err := c.cfg.operator()
			require.NoError(t, err)
			require.Equal(t, c.tls, op.Server.TLS)
			require.Equal(t, c.port, op.Server.Port)
		}
	}
}
