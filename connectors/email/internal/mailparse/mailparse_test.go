package mailparse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// memStore is a blob.Store in memory.
type memStore struct {
	blobs map[string][]byte
	err   error // returned by Put when set
}

func newMemStore() *memStore { return &memStore{blobs: make(map[string][]byte)} }

func (s *memStore) Put(_ context.Context, ns string, r io.Reader, limit int64) (blob.Ref, error) {
	if s.err != nil {
		return blob.Ref{}, s.err
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return blob.Ref{}, err
	}
	if int64(len(b)) > limit {
		return blob.Ref{}, blob.ErrTooLarge
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	key := ns + "/" + h
	if s.blobs != nil {
		s.blobs[key] = b
	}
	return blob.Ref{Key: key, Size: int64(len(b)), SHA256: h}, nil
}

func (s *memStore) Open(_ context.Context, key string) (io.ReadCloser, error) {
	b, ok := s.blobs[key]
	if !ok {
		return nil, blob.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	delete(s.blobs, key)
	return nil
}

func newParser(t testing.TB, opts Options) *Parser {
	t.Helper()
	if opts.BlobNamespace == "" {
		opts.BlobNamespace = "tenant/mailbox"
	}
	p, err := NewParser(opts)
	require.NoError(t, err)
	return p
}

func parseFile(t *testing.T, p *Parser, name string) *Mail {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	m, err := p.Parse(context.Background(), raw)
	require.NoError(t, err)
	checkInvariants(t, m, p.limits)
	return m
}

// checkInvariants asserts what every parsed mail guarantees; the fuzz
// target uses it too.
func checkInvariants(t testing.TB, m *Mail, l Limits) {
	t.Helper()
	strs := map[string]string{
		"MessageID": m.MessageID, "InReplyTo": m.InReplyTo, "From.Name": m.From.Name,
		"From.Address": m.From.Address, "Subject": m.Subject, "Text": m.Text, "HTML": m.HTML,
		"AutomaticReason": m.AutomaticReason, "ThreadIndex": m.ThreadIndex, "ThreadTopic": m.ThreadTopic,
	}
	for i, r := range m.References {
		strs[fmt.Sprintf("References[%d]", i)] = r
	}
	for name, list := range map[string][]Address{"To": m.To, "Cc": m.Cc, "ReplyTo": m.ReplyTo} {
		for i, a := range list {
			strs[fmt.Sprintf("%s[%d].Name", name, i)] = a.Name
			strs[fmt.Sprintf("%s[%d].Address", name, i)] = a.Address
		}
	}
	for name, list := range map[string][]Attachment{"Attachments": m.Attachments, "Inlines": m.Inlines} {
		for i, a := range list {
			strs[fmt.Sprintf("%s[%d].FileName", name, i)] = a.FileName
			strs[fmt.Sprintf("%s[%d].ContentType", name, i)] = a.ContentType
			strs[fmt.Sprintf("%s[%d].ContentID", name, i)] = a.ContentID
			if (a.Blob == nil) == (a.Skipped == "") {
				t.Errorf("%s[%d]: Blob %v and Skipped %q: exactly one must be set", name, i, a.Blob, a.Skipped)
			}
		}
	}
	if m.Bounce != nil {
		strs["Bounce.OriginalMessageID"] = m.Bounce.OriginalMessageID
		for i, r := range m.Bounce.Recipients {
			strs[fmt.Sprintf("Bounce.Recipients[%d]", i)] = r.Address + r.Action + r.Status + r.Diagnostic
		}
	}
	for i, w := range m.Warnings {
		strs[fmt.Sprintf("Warnings[%d]", i)] = w
	}
	for name, s := range strs {
		if !utf8.ValidString(s) {
			t.Errorf("%s = %q is not valid UTF-8", name, s)
		}
		if strings.IndexByte(s, 0) >= 0 {
			t.Errorf("%s = %q holds NUL", name, s)
		}
	}
	if n := len(m.Attachments) + len(m.Inlines); n > events.MaxAttachments {
		t.Errorf("%d attachments and inlines, want at most %d", n, events.MaxAttachments)
	}
	// Whatever the mail, it fits the inbound event.
	if err := toEvent(m).Validate(); err != nil {
		t.Errorf("the event made of the mail is invalid: %v", err)
	}
	if len(m.Text) > l.MaxTextBytes {
		t.Errorf("len(Text) = %d, want at most %d", len(m.Text), l.MaxTextBytes)
	}
	if len(m.HTML) > l.MaxHTMLBytes {
		t.Errorf("len(HTML) = %d, want at most %d", len(m.HTML), l.MaxHTMLBytes)
	}
	if strings.Contains(strings.ToLower(m.HTML), "<script") {
		t.Errorf("HTML holds a script: %q", m.HTML)
	}
	if len(m.ContentHash) != 64 {
		t.Errorf("ContentHash = %q, want 64 hex digits", m.ContentHash)
	}
}

// toEvent builds the inbound event the connector would, filling what a
// mail may lack.
func toEvent(m *Mail) *events.MessageReceived {
	ev := &events.MessageReceived{
		TenantID: "t", Channel: events.ChannelEmail, ChannelAccountID: "mb", ExternalID: "x", ThreadKey: "x",
		From:       events.Party{Identity: m.From.Address, Name: m.From.Name},
		Text:       m.Text,
		ReceivedAt: time.Now(),
		Subject:    m.Subject,
		HTML:       m.HTML,
		Automatic:  m.Automatic,
	}
	if ev.From.Identity == "" {
		ev.From.Identity = "unknown"
	}
	if strings.TrimSpace(ev.Text) == "" {
		ev.Text = "(no text)"
	}
	for _, list := range [][]Attachment{m.Attachments, m.Inlines} {
		for _, a := range list {
			ea := events.Attachment{Name: a.FileName, ContentType: a.ContentType, Size: a.Size, ContentID: a.ContentID, Skipped: string(a.Skipped)}
			if a.Blob != nil {
				ea.BlobKey = a.Blob.Key
			}
			ev.Attachments = append(ev.Attachments, ea)
		}
	}
	return ev
}

func TestReplyWithThreadingAndRFC2047(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "reply_rfc2047.eml")
	require.Equal(t, "CAF=reply-42@mail.example.org", m.MessageID)
	require.Equal(t, "thread-root-1@support.example.com", m.InReplyTo)
	require.Equal(t, []string{"thread-root-1@support.example.com", "second-2@mail.example.org", "third-3@support.example.com"}, m.References)
	require.Equal(t, Address{Name: "José García", Address: "jose.garcia@example.org"}, m.From)
	require.Equal(t, []Address{{Name: "Support", Address: "support@example.com"}, {Name: "François", Address: "francois@example.com"}}, m.To)
	require.Equal(t, []Address{{Name: "Doe, John", Address: "john.doe@example.net"}}, m.Cc, "an encoded comma stays in the name")
	require.Equal(t, []Address{{Address: "jose+replies@example.org"}}, m.ReplyTo)
	require.Equal(t, "Re: Votre commande n°42 — déjà payée", m.Subject)
	require.True(t, m.Date.Equal(time.Date(2026, 3, 3, 9, 15, 0, 0, time.UTC)), "Date = %v", m.Date)
	require.Equal(t, "Bonjour,\n\nMerci, c'est déjà payé.\n\n> Le 2 mars, Support a écrit :\n> Votre commande est en attente.", m.Text)
	require.Empty(t, m.HTML)
	require.False(t, m.Automatic)
	require.Nil(t, m.Bounce)
	require.Empty(t, m.Warnings)
}

func TestHTMLOnlyIsSanitised(t *testing.T) {
	store := newMemStore()
	m := parseFile(t, newParser(t, Options{Store: store}), "html_only_script.eml")
	lower := strings.ToLower(m.HTML)
	for _, bad := range []string{"<script", "alert", "onclick", "onload", "javascript:", "<iframe", "<style"} {
		require.NotContains(t, lower, bad)
	}
	require.Contains(t, m.HTML, `<b>agent</b>`)
	require.Contains(t, m.HTML, `href="https://example.org/offer"`)
	require.Contains(t, m.HTML, `noreferrer`)
	require.Contains(t, m.HTML, `src="cid:logo@evil.example"`, "cid: images survive")
	require.Contains(t, m.Text, "Hello agent,")
	require.Contains(t, m.Text, "https://example.org/offer")
	require.NotContains(t, m.Text, "pwned", "script bodies never become text")
	require.NotContains(t, m.Text, "background")
	require.Len(t, m.Inlines, 1)
	require.Equal(t, "logo@evil.example", m.Inlines[0].ContentID)
	require.Equal(t, "image/png", m.Inlines[0].ContentType)
	require.NotNil(t, m.Inlines[0].Blob)
	require.Empty(t, m.Attachments)
}

func TestTruncatedMultipart(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "truncated_multipart.eml")
	require.Equal(t, "Please find my invoice attached.", m.Text)
	require.Len(t, m.Attachments, 1)
	require.Equal(t, "invoice.pdf", m.Attachments[0].FileName)
	require.Equal(t, SkipNoStore, m.Attachments[0].Skipped)
	require.NotEmpty(t, m.Warnings)
	require.Contains(t, strings.Join(m.Warnings, "\n"), "not closed")
}

func TestCharsets(t *testing.T) {
	tests := []struct {
		file, subject, text string
		warns               bool
	}{
		{"latin1_qp.eml", "Problème de livraison", "Le colis n'est jamais arrivé à destination. Où est-il ?", false},
		{"windows1252.eml", "Refund", "I paid €100 and got “nothing” – please refund.", false},
		{"iso2022jp.eml", "注文について", "お問い合わせありがとうございます。", false},
		{"unknown_charset.eml", "Unknown charset", "Café crème brûlée, s'il vous plaît.", true},
		{"wrong_charset.eml", "Declared utf-8, written in latin-1", "J'ai reçu un article abîmé.", true},
		{"raw_8bit_headers.eml", "Réclamation über Bestellung", "Grüße aus München. Die Bestellung ist kaputt.", true},
	}
	p := newParser(t, Options{})
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m := parseFile(t, p, tt.file)
			if m.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.subject)
			}
			if m.Text != tt.text {
				t.Errorf("Text = %q, want %q", m.Text, tt.text)
			}
			if got := len(m.Warnings) > 0; got != tt.warns {
				t.Errorf("Warnings = %q, want some: %v", m.Warnings, tt.warns)
			}
		})
	}
}

func TestRaw8BitFromName(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "raw_8bit_headers.eml")
	require.Equal(t, Address{Name: "Renée Müller", Address: "renee@example.de"}, m.From)
}

func TestInvalidUTF8AndNUL(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "invalid_utf8_nul.eml")
	require.Equal(t, "Naïve text with a NUL  here, an invalid \uFFFD byte pair and an \uFFFD cut rune.", m.Text)
	require.NotContains(t, m.Subject, "\x00")
	require.True(t, strings.HasPrefix(m.Subject, "nulbyte and bad"), "Subject = %q", m.Subject)
}

func TestMalformedBase64(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "malformed_base64.eml")
	require.Equal(t, "Hello, this is a testmessage.", m.Text)
	require.NotEmpty(t, m.Warnings)
}

func TestMultipartWithoutBoundary(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "no_boundary.eml")
	require.Equal(t, "Just some text, the boundary parameter is missing.", m.Text)
	require.Empty(t, m.Attachments)
}

func TestDeeplyNested(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "deeply_nested.eml")
	require.Equal(t, "Deep inside.", m.Text)

	// Far deeper than the limit: refused before enmime recurses.
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nSubject: deep\r\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	_, err := newParser(t, Options{}).Parse(context.Background(), []byte(b.String()))
	require.ErrorIs(t, err, ErrUnparseable)
	require.ErrorContains(t, err, "multipart")
}

func TestDSNBounce(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "dsn_bounce.eml")
	require.True(t, m.Automatic)
	require.Equal(t, "delivery status notification", m.AutomaticReason)
	require.Equal(t, &Bounce{
		OriginalMessageID: "sb-reply-7f3a@support.example.com",
		Recipients: []BounceRecipient{{
			Address:    "nobody@example.net",
			Action:     "failed",
			Status:     "5.1.1",
			Diagnostic: "smtp; 550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown",
		}},
	}, m.Bounce)
	require.Contains(t, m.Text, "could not be delivered")
}

func TestLegacyBounce(t *testing.T) {
	m := parseFile(t, newParser(t, Options{}), "bounce_legacy.eml")
	require.True(t, m.Automatic)
	require.NotNil(t, m.Bounce)
	require.Equal(t, "sb-legacy-99@support.example.com", m.Bounce.OriginalMessageID)
	require.Empty(t, m.Bounce.Recipients)
	require.Empty(t, m.MessageID)
}

func TestAutoReplyAndListFiles(t *testing.T) {
	p := newParser(t, Options{})
	m := parseFile(t, p, "auto_reply.eml")
	require.True(t, m.Automatic)
	require.Equal(t, "Auto-Submitted: auto-replied", m.AutomaticReason)
	require.Nil(t, m.Bounce)
	require.Equal(t, "sb-reply-1@support.example.com", m.InReplyTo)

	m = parseFile(t, p, "list_mail.eml")
	require.True(t, m.Automatic)
	require.Equal(t, "List-Id", m.AutomaticReason)

	m = parseFile(t, p, "mdn_read_receipt.eml")
	require.True(t, m.Automatic)
	require.Equal(t, "multipart/report; report-type=disposition-notification", m.AutomaticReason)
	require.Nil(t, m.Bounce, "a read receipt is not a bounce")
}

func TestAutomaticHeaders(t *testing.T) {
	tests := []struct {
		headers string
		reason  string
	}{
		{"", ""},
		{"Auto-Submitted: no\r\n", ""},
		{"Auto-Submitted: No (a human)\r\n", ""},
		{"Auto-Submitted: auto-generated\r\n", "Auto-Submitted: auto-generated"},
		{"Auto-Submitted: Auto-Notified; owner=x\r\n", "Auto-Submitted: auto-notified"},
		{"Precedence: bulk\r\n", "Precedence: bulk"},
		{"Precedence: JUNK\r\n", "Precedence: junk"},
		{"Precedence: list\r\n", "Precedence: list"},
		{"Precedence: first-class\r\n", ""},
		{"X-Autoreply: yes\r\n", "X-Autoreply"},
		{"X-Autorespond: vacation\r\n", "X-Autorespond"},
		{"X-Loop: Support@Example.com\r\n", "X-Loop: this mailbox"},
		{"X-Loop: someone-else@example.org\r\n", "X-Loop"},
		{"X-Loop: yes\r\n", "X-Loop"},
		{"X-Precedence: auto_reply\r\n", "Precedence: auto_reply"},
		{"X-Auto-Response-Suppress: All\r\n", "X-Auto-Response-Suppress: all"},
		{"X-Auto-Response-Suppress: DR, OOF, AutoReply\r\n", "X-Auto-Response-Suppress: dr, oof, autoreply"},
		{"X-Auto-Response-Suppress: OOF\r\n", "X-Auto-Response-Suppress: oof"},
		{"X-Auto-Response-Suppress: RN, NRN\r\n", ""},
		{"X-Auto-Response-Suppress: None\r\n", ""},
		{"X-MS-Exchange-Generated-Message-Source: Mailbox Rules Agent\r\n", "X-MS-Exchange-Generated-Message-Source: mailbox rules agent"},
		{"X-MS-Exchange-Organization-OOF-Reply: 1\r\n", "X-Ms-Exchange-Organization-Oof-Reply"},
		{"X-MS-Exchange-Inbox-Rules-Loop: bob@example.org\r\n", ""},
		{"X-Auto-Reply-From: bob@example.org\r\n", "X-Auto-Reply-From"},
		{"X-Mail-Autoreply: yes\r\n", "X-Mail-Autoreply"},
		{"X-Autogenerated: Reply\r\n", "X-Autogenerated"},
		{"X-Autoreply: no\r\n", ""},
		{"Precedence: auto_reply\r\n", "Precedence: auto_reply"},
		{"List-Id: <a.list.example>\r\n", "List-Id"},
		{"List-Unsubscribe: <https://x.example/u>\r\n", "List-Unsubscribe"},
		{"Return-Path: <>\r\n", "Return-Path: <>"},
		{"Return-Path: <bob@example.org>\r\n", ""},
		{"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n", "delivery status notification"},
		{"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n", "feedback report (ARF)"},
		// The tenant's own domains, and their subdomains.
		{"Message-ID: <sb.1@Example.COM>\r\n", "Message-ID on own domain example.com"},
		{"Message-ID: <a1@mail.example.com>\r\n", "Message-ID on own domain mail.example.com"},
		{"Message-ID: <a1@notexample.com>\r\n", ""},
		{"Message-ID: <a1@example.com.evil.example>\r\n", ""},
	}
	p := newParser(t, Options{LoopValues: []string{"support@example.com"}, OwnDomains: []string{"@Example.com"}})
	for _, tt := range tests {
		raw := "From: Bob <bob@example.org>\r\nTo: support@example.com\r\nSubject: hi\r\n" + tt.headers + "\r\nHello\r\n"
		m, err := p.Parse(context.Background(), []byte(raw))
		require.NoError(t, err, tt.headers)
		if m.AutomaticReason != tt.reason || m.Automatic != (tt.reason != "") {
			t.Errorf("headers %q: Automatic, AutomaticReason = %v, %q, want %v, %q", tt.headers, m.Automatic, m.AutomaticReason, tt.reason != "", tt.reason)
		}
	}
}

func TestOutOfOfficeSubjectNeedsAHint(t *testing.T) {
	tests := []struct {
		headers string
		reason  string
	}{
		{"From: Bob <bob@example.org>\r\nSubject: Automatic reply: Order 42\r\n", ""},
		{"From: Bob <bob@example.org>\r\nSubject: Out of office supplies\r\n", ""},
		{"From: Bob <bob@example.org>\r\nSubject: Automatic reply: Order 42\r\nX-MS-Exchange-Inbox-Rules-Loop: bob@example.org\r\n",
			"out-of-office subject and X-MS-Exchange-Inbox-Rules-Loop"},
		{"From: Bob <bob@example.org>\r\nSubject: =?utf-8?q?R=C3=A9ponse_automatique=C2=A0:_Commande?=\r\nX-Auto-Response-Suppress: DR\r\n",
			"out-of-office subject and X-Auto-Response-Suppress"},
		{"From: <no-reply@example.org>\r\nSubject: Abwesenheitsnotiz: Bestellung\r\n", "out-of-office subject and sender no-reply@example.org"},
		{"From: Bob <bob@example.org>\r\nSubject: Bob is out of the office\r\nX-Mailer: Vacation 1.2\r\n", "out-of-office subject and X-Mailer"},
		{"From: Bob <bob@example.org>\r\nSubject: Re: Order 42\r\nX-MS-Exchange-Inbox-Rules-Loop: bob@example.org\r\n", ""},
	}
	p := newParser(t, Options{})
	for _, tt := range tests {
		m, err := p.Parse(context.Background(), []byte(tt.headers+"\r\nHello\r\n"))
		require.NoError(t, err, tt.headers)
		if m.AutomaticReason != tt.reason || m.Automatic != (tt.reason != "") {
			t.Errorf("headers %q: Automatic, AutomaticReason = %v, %q, want %v, %q", tt.headers, m.Automatic, m.AutomaticReason, tt.reason != "", tt.reason)
		}
	}
}

func TestSenderFallback(t *testing.T) {
	tests := []struct {
		headers, from, name, warning string
	}{
		{"From: Bob <bob@example.org>\r\nReply-To: r@example.org\r\n", "bob@example.org", "Bob", ""},
		{"From: <>\r\nReply-To: Rob <Rob@example.org>\r\nSender: s@example.org\r\n", "rob@example.org", "Rob", "no From address: the sender is taken from Reply-To"},
		{"To: support@example.com\r\nSender: Sam <s@example.org>\r\nReturn-Path: <rp@example.org>\r\n", "s@example.org", "Sam", "no From address: the sender is taken from Sender"},
		{"From: Mystery\r\nReturn-Path: <rp@example.org>\r\n", "rp@example.org", "", "no From address: the sender is taken from Return-Path"},
		{"From: <>\r\nReturn-Path: <>\r\nSubject: x\r\n", "", "", ""},
	}
	p := newParser(t, Options{})
	for _, tt := range tests {
		m, err := p.Parse(context.Background(), []byte(tt.headers+"Subject: hi\r\n\r\nHello\r\n"))
		require.NoError(t, err, tt.headers)
		if m.From.Address != tt.from || m.From.Name != tt.name {
			t.Errorf("headers %q: From = %+v, want %q %q", tt.headers, m.From, tt.name, tt.from)
		}
		if tt.warning != "" {
			require.Contains(t, m.Warnings, tt.warning, tt.headers)
		} else {
			for _, w := range m.Warnings {
				require.NotContains(t, w, "no From address", tt.headers)
			}
		}
	}
}

func TestOutlookThreadHeaders(t *testing.T) {
	p := newParser(t, Options{})
	raw := "From: Bob <bob@example.org>\r\nSubject: AW: Bestellung =?utf-8?q?f=C3=BCr?= 42\r\n" +
		"Thread-Topic: Bestellung =?utf-8?q?f=C3=BCr?= 42\r\nThread-Index: AQHXl+LPt2gZg1ctnJZSwldsza9BF6OZ\r\n neDAgAAAWBE=\r\n\r\nHallo\r\n"
	m, err := p.Parse(context.Background(), []byte(raw))
	require.NoError(t, err)
	require.Equal(t, "AQHXl+LPt2gZg1ctnJZSwldsza9BF6OZneDAgAAAWBE=", m.ThreadIndex)
	require.Equal(t, "Bestellung für 42", m.ThreadTopic)

	long := "Thread-Index: AQ" + strings.Repeat("A", 3000) + "\r\n"
	m, err = p.Parse(context.Background(), []byte("From: bob@example.org\r\n"+long+"\r\nHi\r\n"))
	require.NoError(t, err)
	require.Len(t, m.ThreadIndex, maxThreadIndexBytes)
	require.Empty(t, m.ThreadTopic)
}

func TestMailerDaemonNeedsNullReturnPath(t *testing.T) {
	p := newParser(t, Options{})
	raw := "From: MAILER-DAEMON@example.org\r\nSubject: hi\r\n\r\nnot a bounce\r\n"
	m, err := p.Parse(context.Background(), []byte(raw))
	require.NoError(t, err)
	require.Nil(t, m.Bounce)

	m, err = p.Parse(context.Background(), []byte("Return-Path: <>\r\n"+raw))
	require.NoError(t, err)
	require.NotNil(t, m.Bounce)
}

func TestAttachmentsStored(t *testing.T) {
	dir, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = dir.Close() })
	p := newParser(t, Options{Store: dir, BlobNamespace: "t1/mb1"})

	m := parseFile(t, p, "attachments.eml")
	require.Equal(t, "See the photo and the invoice.", m.Text)
	require.Contains(t, m.HTML, `src="cid:photo1@example.org"`)
	require.Len(t, m.Attachments, 2)
	pdf := m.Attachments[0]
	require.Equal(t, "facture.pdf", pdf.FileName, "the directory of a Windows path is dropped")
	require.Equal(t, "application/pdf", pdf.ContentType)
	require.Equal(t, int64(1033), pdf.Size)
	require.NotNil(t, pdf.Blob)
	require.True(t, strings.HasPrefix(pdf.Blob.Key, "t1/mb1/"))
	rc, err := dir.Open(context.Background(), pdf.Blob.Key)
	require.NoError(t, err)
	content, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(content, []byte("%PDF-1.4\n")))
	require.Len(t, content, 1033)

	require.Equal(t, "passwd", m.Attachments[1].FileName, "no path traversal through file names")

	require.Len(t, m.Inlines, 1, "the inline text and HTML bodies are not inlines")
	require.Equal(t, Attachment{FileName: "photo.png", ContentType: "image/png", Size: 70, ContentID: "photo1@example.org", Blob: m.Inlines[0].Blob}, m.Inlines[0])

	// Parsing again stores nothing new: the keys are content addresses.
	again := parseFile(t, p, "attachments.eml")
	require.Equal(t, m, again)
}

// bigMail builds a mail with attachments of the given sizes.
func bigMail(sizes ...int) []byte {
	var b bytes.Buffer
	b.WriteString("From: big@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n")
	b.WriteString("--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n")
	for i, n := range sizes {
		fmt.Fprintf(&b, "--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f%d.bin\"\r\n\r\n", i)
		// Distinct content per attachment, 8bit, lines of 100 bytes.
		line := strings.Repeat(string(rune('a'+i%26)), 98) + "\r\n"
		for range n / len(line) {
			b.WriteString(line)
		}
	}
	b.WriteString("--B--\r\n")
	return b.Bytes()
}

func TestHugeAttachmentIsSkipped(t *testing.T) {
	store := newMemStore()
	p := newParser(t, Options{Store: store, Limits: Limits{MaxAttachmentBytes: 1 << 20}})
	m, err := p.Parse(context.Background(), bigMail(8<<20, 10_000))
	require.NoError(t, err)
	checkInvariants(t, m, p.limits)
	require.Len(t, m.Attachments, 2)
	require.Equal(t, SkipTooLarge, m.Attachments[0].Skipped)
	require.Nil(t, m.Attachments[0].Blob)
	require.Greater(t, m.Attachments[0].Size, int64(1<<20))
	require.Equal(t, "f0.bin", m.Attachments[0].FileName)
	require.NotNil(t, m.Attachments[1].Blob)
	require.Len(t, store.blobs, 1)
}

func TestTooManyAttachments(t *testing.T) {
	p := newParser(t, Options{Store: newMemStore(), Limits: Limits{MaxAttachments: 2}})
	m, err := p.Parse(context.Background(), bigMail(100, 100, 100, 100))
	require.NoError(t, err)
	require.Len(t, m.Attachments, 4)
	var skipped []SkipReason
	for _, a := range m.Attachments {
		skipped = append(skipped, a.Skipped)
	}
	require.Equal(t, []SkipReason{"", "", SkipTooMany, SkipTooMany}, skipped)
}

func TestStoreFailureIsNotUnparseable(t *testing.T) {
	p := newParser(t, Options{Store: &memStore{err: errors.New("disk full")}})
	_, err := p.Parse(context.Background(), bigMail(100))
	require.ErrorContains(t, err, "disk full")
	require.NotErrorIs(t, err, ErrUnparseable)
}

func TestTooLarge(t *testing.T) {
	p := newParser(t, Options{Limits: Limits{MaxRawBytes: 1000}})
	_, err := p.Parse(context.Background(), bigMail(2000))
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestUnparseable(t *testing.T) {
	p := newParser(t, Options{})
	for _, raw := range []string{
		"",
		"\r\n\r\n",
		"just some words\r\nand more words\r\n",
		"X-Custom: only a header nobody knows\r\n\r\nbody\r\n",
		"\x00\x01\x02\xff\xfe",
	} {
		_, err := p.Parse(context.Background(), []byte(raw))
		if !errors.Is(err, ErrUnparseable) {
			t.Errorf("Parse(%q) error = %v, want ErrUnparseable", raw, err)
		}
	}
}

func TestTextTruncation(t *testing.T) {
	p := newParser(t, Options{})
	// Three-byte runes, so the cut falls inside one unless it is careful.
	body := strings.Repeat("€", events.MaxTextBytes)
	raw := "From: a@example.org\r\nSubject: long\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
	m, err := p.Parse(context.Background(), []byte(raw))
	require.NoError(t, err)
	checkInvariants(t, m, p.limits)
	require.True(t, m.TextTruncated)
	require.True(t, strings.HasSuffix(m.Text, TruncationMarker))
	require.LessOrEqual(t, len(m.Text), events.MaxTextBytes)
	require.Greater(t, len(m.Text), events.MaxTextBytes-len(TruncationMarker)-3)
	require.Contains(t, m.Warnings, "text body truncated")

}

func TestContentHash(t *testing.T) {
	p := newParser(t, Options{})
	base := "From: A <A@Example.org>\r\nSubject: hello\r\nDate: Tue, 3 Mar 2026 10:15:00 +0100\r\n\r\nbody\r\n"
	parse := func(raw string) string {
		m, err := p.Parse(context.Background(), []byte(raw))
		require.NoError(t, err)
		return m.ContentHash
	}
	h := parse(base)
	// Delivery headers differ between two fetches of the same mail.
	require.Equal(t, h, parse("Received: from x by y; Tue, 3 Mar 2026 10:16:00 +0100\r\nX-UID: 7\r\n"+base))
	require.Equal(t, h, parse(strings.ReplaceAll(base, "\r\n", "\n")), "line ends do not matter")
	require.Equal(t, h, parse(strings.Replace(base, "10:15:00 +0100", "09:15:00 +0000", 1)), "the same instant")
	require.NotEqual(t, h, parse(strings.Replace(base, "body", "other body", 1)))
	require.NotEqual(t, h, parse(strings.Replace(base, "hello", "hello!", 1)))
}

func TestIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"<a@b>", []string{"a@b"}},
		{"  <a@b>  <c@d>", []string{"a@b", "c@d"}},
		{"<a@b>,<c@d>", []string{"a@b", "c@d"}},
		{"<a@\r\n b>", []string{"a@b"}},
		{"a@b", []string{"a@b"}},
		{"no-brackets-no-at", []string{"no-brackets-no-at"}},
		{"Your message of Mon, 2 Mar 2026 <x@y>", []string{"x@y"}},
		{"Your message of Mon a@b", []string{"a@b"}},
		{"<>", nil},
		{"", nil},
		{"<unclosed@x", []string{"unclosed@x"}},
		{"<" + strings.Repeat("x", 300) + "@y>", []string{strings.Repeat("x", events.MaxIDBytes)}},
	}
	for _, tt := range tests {
		if got := allIDs(tt.in); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("allIDs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCapReferences(t *testing.T) {
	var ids []string
	for i := range 150 {
		ids = append(ids, fmt.Sprintf("id%d@x", i))
	}
	got := capReferences(ids)
	require.Len(t, got, maxReferences)
	require.Equal(t, "id0@x", got[0])
	require.Equal(t, "id51@x", got[1])
	require.Equal(t, "id149@x", got[len(got)-1])
}

func TestFixBytes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"caf\xe9", "café"},
		{"caf\xc3\xa9 \xff", "café \uFFFD"},
		{"a\x00b", "ab"},
		{"\x1b$B$3$s$K$A$O\x1b(B", "こんにちは"},
	}
	for _, tt := range tests {
		if got := fixBytes(tt.in); got != tt.want {
			t.Errorf("fixBytes(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewParserRejectsBadNamespace(t *testing.T) {
	_, err := NewParser(Options{BlobNamespace: "../other-tenant"})
	require.ErrorIs(t, err, blob.ErrInvalidKey)
}

func TestCountFold(t *testing.T) {
	require.Equal(t, 3, countFold([]byte("multipart/ MULTIPART/x Multipart/multipart"), "multipart/"))
	require.Equal(t, 0, countFold([]byte("multipart"), "multipart/"))
}

// unterminated builds a mail of depth nested multiparts, none closed.
func unterminated(depth int) []byte {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nSubject: deep\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nbottom\r\n")
	return []byte(b.String())
}

func TestUnterminatedNesting(t *testing.T) {
	p := newParser(t, Options{})
	m, err := p.Parse(context.Background(), unterminated(3))
	require.NoError(t, err, "a truncated mail still parses")
	require.Equal(t, "bottom", m.Text)
	require.NotEmpty(t, m.Warnings)

	// enmime's work doubles with each unterminated level; without the read
	// budget this would run for hours.
	_, err = p.Parse(context.Background(), unterminated(40))
	require.ErrorIs(t, err, ErrUnparseable)
	require.ErrorContains(t, err, "too costly")
}

func TestParseHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newParser(t, Options{}).Parse(ctx, bigMail(4<<20))
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrUnparseable)
}

func TestHTMLLimit(t *testing.T) {
	p := newParser(t, Options{Limits: Limits{MaxHTMLBytes: 1000}})
	// Sanitising adds rel and target to every link: the output outgrows
	// the input.
	html := strings.Repeat(`<a href="https://example.org/x">link</a> `, 100)
	raw := "From: a@example.org\r\nSubject: links\r\nContent-Type: text/html\r\n\r\n" + html
	m, err := p.Parse(context.Background(), []byte(raw))
	require.NoError(t, err)
	checkInvariants(t, m, p.limits)
	require.NotEmpty(t, m.HTML)
	require.True(t, strings.HasSuffix(m.HTML, ">") || strings.HasSuffix(m.HTML, "link") || strings.HasSuffix(m.HTML, " "), "HTML ends mid-tag: %q", m.HTML[len(m.HTML)-40:])
	require.Contains(t, m.Warnings, "HTML body cut before sanitising")
	require.Contains(t, m.Warnings, "sanitised HTML body cut")
}

func TestCutHTML(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"<p>hello</p>", 100, "<p>hello</p>"},
		{"<p>hello</p>", 9, "<p>hello"},
		{"<p>hello</p>", 10, "<p>hello"},
		{`<p>a</p><a href="https://x">`, 20, "<p>a</p>"},
		{"<p>&lt;script&gt;</p>", 12, "<p>&lt;scrip"},
		{"<p>été</p>", 5, "<p>é"},
	}
	for _, tt := range tests {
		if got := cutHTML(tt.in, tt.n); got != tt.want {
			t.Errorf("cutHTML(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestAttachmentListIsBounded(t *testing.T) {
	store := newMemStore()
	p := newParser(t, Options{Store: store})
	sizes := make([]int, events.MaxAttachments+6)
	for i := range sizes {
		sizes[i] = 100
	}
	m, err := p.Parse(context.Background(), bigMail(sizes...))
	require.NoError(t, err)
	checkInvariants(t, m, p.limits)
	require.Len(t, m.Attachments, events.MaxAttachments)
	require.Equal(t, 6, m.OmittedAttachments)
	require.NotNil(t, m.Attachments[DefaultMaxAttachments-1].Blob)
	require.Equal(t, SkipTooMany, m.Attachments[DefaultMaxAttachments].Skipped)
	require.Contains(t, m.Warnings, "6 attachments neither stored nor listed")
}

func TestNamespaceMustFitAnEventKey(t *testing.T) {
	ns := strings.Repeat("a", 100) + "/" + strings.Repeat("b", 100) + "/" + strings.Repeat("c", 100) + "/" + strings.Repeat("d", 100) + "/" + strings.Repeat("e", 100)
	require.NoError(t, blob.ValidateNamespace(ns))
	_, err := NewParser(Options{BlobNamespace: ns})
	require.ErrorContains(t, err, "at most")
}

func TestHTMLEmphasisIsNotMarkedUpInText(t *testing.T) {
	p := newParser(t, Options{})
	raw := "From: a@example.org\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<h2 class=t>Order</h2><p>Code <strong>SPRING</STRONG> and <b>X</b>.</p>"
	m, err := p.Parse(context.Background(), []byte(raw))
	require.NoError(t, err)
	require.Equal(t, "Order\n\nCode SPRING and X.", m.Text)
	require.Contains(t, m.HTML, "<strong>SPRING</strong>", "the HTML keeps its emphasis")
}
