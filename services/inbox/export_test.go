package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// poppler returns the paths of pdftotext and pdfinfo. A missing tool
// fails the test: the PDF export is checked by reading the PDF back.
func poppler(t *testing.T) (pdftotext, pdfinfo string) {
	t.Helper()
	var err error
	if pdftotext, err = exec.LookPath("pdftotext"); err != nil {
		t.Fatalf("pdftotext is missing: run scripts/services.sh poppler (Debian: apt-get install poppler-utils): %v", err)
	}
	if pdfinfo, err = exec.LookPath("pdfinfo"); err != nil {
		t.Fatalf("pdfinfo is missing: run scripts/services.sh poppler (Debian: apt-get install poppler-utils): %v", err)
	}
	return pdftotext, pdfinfo
}

// readPDF returns the text of a PDF (pdftotext) and its page count
// (pdfinfo).
func readPDF(t *testing.T, pdf []byte) (string, int) {
	t.Helper()
	pdftotext, pdfinfo := poppler(t)
	path := filepath.Join(t.TempDir(), "export.pdf")
	require.NoError(t, os.WriteFile(path, pdf, 0o600))
	text, err := exec.Command(pdftotext, "-layout", path, "-").CombinedOutput()
	require.NoError(t, err, "pdftotext: %s", text)
	info, err := exec.Command(pdfinfo, path).CombinedOutput()
	require.NoError(t, err, "pdfinfo: %s", info)
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindSubmatch(info)
	require.NotNil(t, m, "pdfinfo shows no page count: %s", info)
	pages, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return string(text), pages
}

// testPNG is a small real PNG.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := 0; x < 40; x++ {
		for y := 0; y < 30; y++ {
			img.Set(x, y, color.RGBA{R: uint8(x * 6), G: uint8(y * 8), B: 180, A: 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// emailThread publishes n emails of Ada on one thread of mailbox, the
// text of the i-th (from 1) being text(i), attachments(i) its files, and
// returns the conversation once all are stored.
func emailThread(t *testing.T, e env, b inbox.Bootstrap, token, mailbox string, n int, text func(int) string, attachments func(int) []events.Attachment) string {
	t.Helper()
	thread := "<" + testkit.RandomName("thread-") + "@customer.example>"
	base := time.Now().UTC().Add(-time.Duration(n) * time.Second)
	for i := 1; i <= n; i++ {
		m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mailbox,
			ExternalID: fmt.Sprintf("<m%d.%s", i, thread[1:]), ThreadKey: thread,
			From: events.Party{Identity: "ada@customer.example", Name: "Ada Lovelace"}, Subject: "Order 42 is late",
			Text: text(i), ReceivedAt: base.Add(time.Duration(i) * time.Second), Attachments: attachments(i)}
		ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	}
	var id string
	testkit.Eventually(t, 60*time.Second, func() bool {
		var convs list[conversation]
		e.do(t, token, http.MethodGet, "/v1/conversations?channel=email&limit=200", "", &convs)
		for _, c := range convs.Items {
			var count int
			require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM inbox.messages WHERE conversation_id = $1`, c.ID).Scan(&count))
			if count == n {
				id = c.ID
				return true
			}
		}
		return false
	}, "the %d emails were not stored", n)
	return id
}

// TestExportPDFHoldsTheLast200Messages exports a conversation of 205
// customer emails and a reply as a PDF, and reads it back with poppler:
// the last 200 messages are in, oldest first, with names, files and
// page numbers; the 201st from the end is not.
func TestExportPDFHoldsTheLast200Messages(t *testing.T) {
	poppler(t) // before anything else: a missing tool fails at once
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	mb := e.createMailbox(t, admin, "support@acme.example")

	put := func(content []byte) string {
		ref, err := e.blobs.Put(context.Background(), b.Tenant.ID.String()+"/mail", bytes.NewReader(content), 1<<20)
		require.NoError(t, err)
		return ref.Key
	}
	photo, contract := testPNG(t), []byte("%PDF-1.4 not drawn, only named")
	const n = 205
	conv := emailThread(t, e, b, admin, mb.ID, n, func(i int) string {
		return fmt.Sprintf("Customer line msg-%03d-end. Καλημέρα, здравствуйте.", i)
	}, func(i int) []events.Attachment {
		if i != 204 {
			return nil
		}
		return []events.Attachment{
			{Name: "photo.png", ContentType: "image/png", Size: int64(len(photo)), BlobKey: put(photo)},
			{Name: "contract-signed.pdf", ContentType: "application/pdf", Size: int64(len(contract)), BlobKey: put(contract)},
		}
	})
	path := "/v1/conversations/" + conv
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/reply", `{"text":"We are on it: reply-from-the-agent."}`, nil))

	// An anonymised message stays anonymised in the export.
	var anonymised string
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT id FROM inbox.messages
		WHERE conversation_id = $1 AND body LIKE '%msg-100-end%'`, conv).Scan(&anonymised))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, "/v1/admin/messages/"+anonymised+"/anonymise", "", nil))

	r := azCall(t, e, admin, http.MethodGet, path+"/export?format=pdf", "")
	require.Equal(t, http.StatusOK, r.Status, "export answered %s", r)
	require.Equal(t, "application/pdf", r.Header.Get("Content-Type"))
	require.Equal(t, fmt.Sprintf(`attachment; filename="conversation-%s-%s.pdf"`, conv, time.Now().UTC().Format("20060102")), r.Header.Get("Content-Disposition"))
	require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))

	text, pages := readPDF(t, r.Body)
	// 206 messages: the reply and customer emails 7 to 205 are in.
	require.Contains(t, text, "msg-007-end", "the first of the last 200 messages is missing")
	require.Contains(t, text, "msg-205-end", "the last customer message is missing")
	require.Contains(t, text, "reply-from-the-agent", "the agent's reply is missing")
	require.NotContains(t, text, "msg-006-end", "the 201st message from the end is in")
	require.NotContains(t, text, "msg-001-end")
	require.NotContains(t, text, "msg-100-end", "the anonymised message is in the PDF")
	require.Contains(t, text, "This message was anonymised")
	require.Less(t, strings.Index(text, "msg-099-end"), strings.Index(text, "This message was anonymised"))
	require.Less(t, strings.Index(text, "This message was anonymised"), strings.Index(text, "msg-101-end"))
	require.Less(t, strings.Index(text, "msg-007-end"), strings.Index(text, "msg-205-end"), "the messages are not oldest first")
	require.Less(t, strings.Index(text, "msg-205-end"), strings.Index(text, "reply-from-the-agent"))
	for _, want := range []string{"Order 42 is late", "Ada Lovelace (Customer)", "Agent admin (Agent)", "Support", "photo.png",
		"contract-signed.pdf", "Καλημέρα, здравствуйте", "The last 200 of 206 messages", "UTC (offset +00:00)", "pending"} {
		require.Contains(t, text, want)
	}
	require.Greater(t, pages, 10, "200 messages on so few pages")
	require.Contains(t, text, fmt.Sprintf("Page 1 of %d", pages))
	require.Contains(t, text, fmt.Sprintf("Page %d of %d", pages, pages))
	require.NotContains(t, text, "{nb}")
}

// TestExportHTML serves the printable page: escaped, self-contained,
// with a policy that lets nothing run; a bad format names format.
func TestExportHTML(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	_, admin := e.userToken(t, b, "admin")
	e.send(t, b, "ev-x", "m-x", "s-x", "u-x", `<script>alert("x")</script> & <img src=x onerror=alert(1)>`)
	var convs []conversation
	testkit.Eventually(t, 20*time.Second, func() bool { convs = e.conversations(t, admin); return len(convs) == 1 }, "the message was not stored")
	path := "/v1/conversations/" + convs[0].ID + "/export"

	for _, q := range []string{"", "?format=html"} {
		r := azCall(t, e, admin, http.MethodGet, path+q, "")
		require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
		require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
		require.Equal(t, fmt.Sprintf(`inline; filename="conversation-%s-%s.html"`, convs[0].ID, time.Now().UTC().Format("20060102")), r.Header.Get("Content-Disposition"))
		require.Contains(t, r.Header.Get("Content-Security-Policy"), "default-src 'none'")
		body := string(r.Body)
		require.NotContains(t, body, "<script>")
		require.NotContains(t, body, "<img src=x")
		require.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;")
		require.Contains(t, body, "Ada (Customer)")
		require.Contains(t, body, "1 message.")
		require.Contains(t, body, "@media print")
		require.NotRegexp(t, `(src|href)="https?:`, body, "the page loads something")
	}
	for _, c := range []struct{ query, field string }{
		{"?format=docx", "format"}, {"?format=", "format"}, {"?format=pdf&format=html", "format"}, {"?download=1", "download"},
	} {
		p := azMustProblem(t, azCall(t, e, admin, http.MethodGet, path+c.query, ""), http.StatusBadRequest, "export"+c.query)
		require.Equal(t, []string{c.field}, p.fields(), c.query)
	}
}

// sendMails reads the SendMail events published so far.
func sendMails(t *testing.T, e env, want int) []events.SendMail {
	t.Helper()
	rd := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{events.TopicOutbound(events.ChannelEmail)}, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []events.SendMail
	for len(out) < want {
		km, err := rd.FetchMessage(ctx)
		require.NoError(t, err, "%d of %d mails read", len(out), want)
		ev, _, err := events.FromMessage(ctx, km)
		require.NoError(t, err)
		if ev.Type != events.TypeSendMail {
			continue
		}
		var m events.SendMail
		require.NoError(t, ev.Decode(&m))
		require.Equal(t, m.ID, string(km.Key), "a SendMail is keyed by its id")
		out = append(out, m)
	}
	return out
}

// TestSendByEmail: admins only, when the tenant turned it on; the mail
// (HTML, text, the PDF in the blob store) goes to the email connector
// with the audit entry, which keeps no content.
func TestSendByEmail(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	_, supervisor := e.userToken(t, b, "supervisor", support)
	mb := e.createMailbox(t, admin, "support@acme.example")
	conv := emailThread(t, e, b, admin, mb.ID, 3, func(i int) string { return fmt.Sprintf("secret-content-%d", i) },
		func(int) []events.Attachment { return nil })
	path := "/v1/conversations/" + conv + "/send-by-email"
	body := `{"to":["boss@partner.example","legal@partner.example"],"note":"private-note: please check"}`

	// A supervisor sees the conversation but may not send it.
	p := azMustProblem(t, azCall(t, e, supervisor, http.MethodPost, path, body), http.StatusForbidden, "a supervisor sending by email")
	require.Contains(t, p.Detail, "manage_data")
	// Off until turned on.
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPost, path, body), http.StatusConflict, "sending while turned off")
	require.Contains(t, p.Detail, "turned off")

	var set struct {
		SendByEmail bool    `json:"send_by_email"`
		MailboxID   *string `json:"mailbox_id"`
	}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/settings/export", "", &set))
	require.False(t, set.SendByEmail)
	require.Nil(t, set.MailboxID)
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPut, "/v1/admin/settings/export", `{"send_by_email":true}`), http.StatusBadRequest, "enabling without a mailbox")
	require.Equal(t, []string{"mailbox_id"}, p.fields())
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/settings/export", fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, mb.ID), &set))
	require.True(t, set.SendByEmail)
	require.Equal(t, mb.ID, *set.MailboxID)

	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path, body, nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path, `{"to":"one@partner.example"}`, nil))
	mails := sendMails(t, e, 2)
	// Keyed by their ids, the two may come in either order.
	if len(mails[0].To) == 1 {
		mails[0], mails[1] = mails[1], mails[0]
	}
	m := mails[0]
	require.Equal(t, events.MailTranscript, m.Purpose)
	require.Equal(t, b.Tenant.ID.String(), m.TenantID)
	require.Equal(t, mb.ID, m.MailboxID)
	require.Equal(t, []string{"boss@partner.example", "legal@partner.example"}, m.To)
	require.Equal(t, "Conversation: Order 42 is late", m.Subject)
	require.NoError(t, m.Validate())
	for _, part := range []string{m.Text, m.HTML} {
		require.Contains(t, part, "private-note: please check")
		require.Contains(t, part, "Agent admin sent you this conversation.")
		require.Contains(t, part, "secret-content-3")
	}
	require.Contains(t, m.HTML, "<!DOCTYPE html>")
	require.Len(t, m.Attachments, 1)
	att := m.Attachments[0]
	require.Equal(t, "application/pdf", att.ContentType)
	require.Regexp(t, "^"+b.Tenant.ID.String()+"/exports/", att.BlobKey)
	rc, err := e.blobs.Open(context.Background(), att.BlobKey)
	require.NoError(t, err)
	pdf, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	require.Equal(t, att.Size, int64(len(pdf)))
	text, _ := readPDF(t, pdf)
	require.Contains(t, text, "secret-content-1")
	require.Equal(t, []string{"one@partner.example"}, mails[1].To)

	// The audit keeps the recipients and the mail's id, no content.
	var audit list[struct {
		Action string          `json:"action"`
		Data   json.RawMessage `json:"data"`
	}]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+conv+"/audit", "", &audit))
	type sentData struct {
		MailID string   `json:"mail_id"`
		To     []string `json:"to"`
	}
	var sent []sentData
	for _, a := range audit.Items {
		if a.Action != "send_by_email" {
			continue
		}
		require.NotContains(t, string(a.Data), "secret-content")
		require.NotContains(t, string(a.Data), "private-note")
		var keys map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(a.Data, &keys))
		require.Len(t, keys, 2, "the audit data holds more than the recipients and the mail's id: %s", a.Data)
		var d sentData
		require.NoError(t, json.Unmarshal(a.Data, &d))
		sent = append(sent, d)
	}
	require.Equal(t, []sentData{{MailID: m.ID, To: m.To}, {MailID: mails[1].ID, To: mails[1].To}}, sent)

	// Turned off again: refused, and nothing more is sent.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/settings/export", `{"send_by_email":false}`, &set))
	azMustProblem(t, azCall(t, e, admin, http.MethodPost, path, body), http.StatusConflict, "sending once turned off")
	// The mailbox deleted: refused until another is chosen.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/settings/export", fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, mb.ID), &set))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/mailboxes/"+mb.ID, "", nil))
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPost, path, body), http.StatusConflict, "sending from a deleted mailbox")
	require.Contains(t, p.Detail, "deleted")
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPut, "/v1/admin/settings/export", fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, mb.ID)), http.StatusBadRequest, "a deleted mailbox")
	require.Equal(t, []string{"mailbox_id"}, p.fields())
}
