package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// download fetches an attachment; the answer must match the OpenAPI
// document.
func (e env) download(t *testing.T, token, path string) azResp {
	t.Helper()
	return azCall(t, e, token, http.MethodGet, path, "")
}

// TestAttachmentsOfCustomerEmails serves what a customer attached, by
// message and position, with a type that cannot run in a browser.
func TestAttachmentsOfCustomerEmails(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	mb := e.createMailbox(t, admin, "support@acme.example")

	put := func(content string) string {
		ref, err := e.blobs.Put(context.Background(), b.Tenant.ID.String()+"/mail", bytes.NewReader([]byte(content)), 1<<20)
		require.NoError(t, err)
		return ref.Key
	}
	pdf, html, png := "%PDF-1.4 invoice", "<script>alert(1)</script>", "\x89PNG\r\n\x1a\nlogo"
	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<m1@customer.example>", ThreadKey: "<m1@customer.example>", From: events.Party{Identity: "ada@customer.example"},
		Text: "See attached.", Subject: "Order 42", ReceivedAt: time.Now().UTC(),
		Attachments: []events.Attachment{
			{Name: "facture été.pdf", ContentType: "application/pdf", Size: int64(len(pdf)), BlobKey: put(pdf)},
			{Name: "page.html", ContentType: "text/html; charset=utf-8", Size: int64(len(html)), BlobKey: put(html)},
			{Name: "logo.png", ContentType: "image/png", Size: int64(len(png)), BlobKey: put(png), ContentID: "logo", Inline: true},
			{Name: "video.mp4", ContentType: "video/mp4", Size: 90 << 20, Skipped: "too large"},
			{Name: "lost.txt", ContentType: "text/plain", Size: 4, BlobKey: b.Tenant.ID.String() + "/mail/" + fmt.Sprintf("%064x", 42)},
		}}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	var msgs list[message]
	testkit.Eventually(t, 20*time.Second, func() bool {
		var convs list[conversation]
		e.do(t, admin, http.MethodGet, "/v1/conversations?channel=email", "", &convs)
		if len(convs.Items) == 0 {
			return false
		}
		e.do(t, admin, http.MethodGet, "/v1/conversations/"+convs.Items[0].ID+"/messages", "", &msgs)
		return len(msgs.Items) == 1
	}, "the email was not stored")
	base := "/v1/messages/" + msgs.Items[0].ID + "/attachments/"

	for _, c := range []struct {
		index, contentType, disposition, content string
	}{
		{"0", "application/pdf", "inline; filename*=UTF-8''facture%20%C3%A9t%C3%A9.pdf", pdf},
		{"1", "application/octet-stream", "attachment; filename*=UTF-8''page.html", html},
		{"2", "image/png", "inline; filename*=UTF-8''logo.png", png},
	} {
		r := e.download(t, admin, base+c.index)
		require.Equal(t, http.StatusOK, r.Status, "attachment %s answered %s", c.index, r)
		require.Equal(t, c.contentType, r.Header.Get("Content-Type"), c.index)
		require.Equal(t, c.disposition, r.Header.Get("Content-Disposition"), c.index)
		require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"), c.index)
		require.Equal(t, fmt.Sprint(len(c.content)), r.Header.Get("Content-Length"), c.index)
		require.Equal(t, c.content, string(r.Body), c.index)
	}
	// Skipped, out of range, not an index: nothing to serve, like a
	// message that does not exist.
	ref := azMustProblem(t, e.download(t, admin, "/v1/messages/"+uuid.NewString()+"/attachments/0"), http.StatusNotFound, "a message that does not exist")
	for _, index := range []string{"3", "5", "64", "-1", "01", "x", "99999999999999999999"} {
		p := azMustProblem(t, e.download(t, admin, base+index), http.StatusNotFound, "attachment "+index)
		require.Equal(t, ref, p, index)
	}
	// Content missing from the blob store is the server's fault.
	azMustProblem(t, e.download(t, admin, base+"4"), http.StatusInternalServerError, "an attachment whose blob is missing")
}

// TestReplyWithAttachments uploads a file, attaches it to a reply that
// asks the customer to answer the agent, and finds both in the send
// command and in the stored message.
func TestReplyWithAttachments(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Bravo")
	support := e.queue(t, b, "Support")
	user, admin := e.userToken(t, b, "admin", support)
	_, otherAdmin := e.userToken(t, other, "admin")
	mb := e.createMailbox(t, admin, "support@acme.example")

	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<m1@customer.example>", ThreadKey: "<m1@customer.example>", From: events.Party{Identity: "ada@customer.example"},
		Text: "Where is my invoice?", Subject: "Invoice", ReceivedAt: time.Now().UTC()}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	var convs list[conversation]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, admin, http.MethodGet, "/v1/conversations?channel=email", "", &convs)
		return len(convs.Items) == 1
	}, "the email was not stored")
	path := "/v1/conversations/" + convs.Items[0].ID
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/assign", "", nil))

	upload := func(token, name, contentType, content string) azResp {
		return azCallAs(t, e, token, http.MethodPost, "/v1/attachments?filename="+url.QueryEscape(name), contentType, content)
	}
	invoice := "%PDF-1.4 the invoice"
	r := upload(admin, "facture été.pdf", "application/pdf", invoice)
	require.Equal(t, http.StatusCreated, r.Status, "upload answered %s", r)
	var up struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		ContentType string `json:"content_type"`
		Size        int64  `json:"size"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &up))
	require.Equal(t, "facture été.pdf", up.Name)
	require.Equal(t, "application/pdf", up.ContentType)
	require.Equal(t, int64(len(invoice)), up.Size)
	require.NotContains(t, string(r.Body), "blob", "the blob store's keys are not the API's")
	notes := upload(b.APIToken.Token, "notes.txt", "", "plain notes")
	require.Equal(t, http.StatusCreated, notes.Status, "an API token uploads too: %s", notes)
	notesID := azID(t, notes)

	// Over the limit: 413, and nothing stored.
	var before int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM inbox.uploads`).Scan(&before))
	azMustProblem(t, upload(admin, "big.bin", "application/octet-stream", string(make([]byte, biLimit+1))), http.StatusRequestEntityTooLarge, "an upload over the limit")
	var after int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM inbox.uploads`).Scan(&after))
	require.Equal(t, before, after)

	// Another tenant's upload names nothing here; an API token has no
	// address of its own to reply from.
	theirs := azID(t, upload(otherAdmin, "theirs.txt", "text/plain", "not yours"))
	p := azMustProblem(t, azCall(t, e, admin, http.MethodPost, path+"/reply", fmt.Sprintf(`{"text":"x","attachments":[%q,%q]}`, up.ID, theirs)), http.StatusBadRequest, "another tenant's upload")
	require.Equal(t, []string{"attachments[1]"}, p.fields())
	p = azMustProblem(t, azCall(t, e, b.APIToken.Token, http.MethodPost, path+"/reply", `{"text":"x","reply_to":"agent"}`), http.StatusBadRequest, "reply_to agent with an API token")
	require.Equal(t, []string{"reply_to"}, p.fields())

	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/reply",
		fmt.Sprintf(`{"text":"Here it is.","attachments":[%q,%q],"reply_to":"agent"}`, up.ID, notesID), nil))

	rd := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{events.TopicOutbound(events.ChannelEmail)}, MaxWait: 50 * time.Millisecond})
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	km, err := rd.FetchMessage(ctx)
	require.NoError(t, err)
	sent, _, err := events.FromMessage(ctx, km)
	require.NoError(t, err)
	var cmd events.SendMessage
	require.NoError(t, sent.Decode(&cmd))
	require.Equal(t, user.Email, cmd.ReplyTo)
	require.Len(t, cmd.Attachments, 2)
	for i, want := range []struct{ name, contentType, content string }{
		{"facture été.pdf", "application/pdf", invoice},
		{"notes.txt", "application/octet-stream", "plain notes"},
	} {
		a := cmd.Attachments[i]
		require.Equal(t, want.name, a.Name)
		require.Equal(t, want.contentType, a.ContentType)
		require.Equal(t, int64(len(want.content)), a.Size)
		require.Regexp(t, "^"+b.Tenant.ID.String()+"/uploads/", a.BlobKey)
		rc, err := e.blobs.Open(ctx, a.BlobKey)
		require.NoError(t, err)
		got, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err)
		require.Equal(t, want.content, string(got))
	}

	// The stored reply lists them, and serves them like a customer's.
	var msgs list[struct {
		ID          string `json:"id"`
		Direction   string `json:"direction"`
		Attachments []struct {
			Name string `json:"name"`
		} `json:"attachments"`
	}]
	raw := azCall(t, e, admin, http.MethodGet, path+"/messages", "")
	require.NotContains(t, string(raw.Body), "blob")
	require.NoError(t, json.Unmarshal(raw.Body, &msgs))
	require.Len(t, msgs.Items, 2)
	reply := msgs.Items[1]
	require.Equal(t, "outbound", reply.Direction)
	require.Equal(t, cmd.MessageID, reply.ID)
	require.Len(t, reply.Attachments, 2)
	require.Equal(t, "facture été.pdf", reply.Attachments[0].Name)
	got := e.download(t, admin, "/v1/messages/"+reply.ID+"/attachments/0")
	require.Equal(t, http.StatusOK, got.Status, "answered %s", got)
	require.Equal(t, invoice, string(got.Body))
	require.Equal(t, httpx.ContentTypeProblem, e.download(t, otherAdmin, "/v1/messages/"+reply.ID+"/attachments/0").Header.Get("Content-Type"))
}
