package inbox_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// erFindInDB lists the columns of every table of the test database, in
// every schema, whose value holds marker: each text, varchar, char, json,
// jsonb and array column cast to text, each bytea column as bytes.
func erFindInDB(t *testing.T, e env, marker string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := e.pool.Query(ctx, `SELECT c.table_schema, c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
		  AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY', 'USER-DEFINED')`)
	require.NoError(t, err)
	type column struct{ schema, table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.schema, &c.table, &c.name, &c.typ)
	})
	require.NoError(t, err)
	require.NotEmpty(t, cols)
	var found []string
	tables := map[string]bool{}
	for _, c := range cols {
		tables[c.schema+"."+c.table] = true
		col := pgx.Identifier{c.name}.Sanitize()
		cond := col + `::text ILIKE '%' || $1 || '%'`
		if c.typ == "bytea" {
			cond = `position(convert_to($1, 'UTF8') IN ` + col + `) > 0`
		}
		var n int
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{c.schema, c.table}.Sanitize()+` WHERE `+cond, marker).Scan(&n))
		if n > 0 {
			found = append(found, fmt.Sprintf("%s.%s.%s (%d rows)", c.schema, c.table, c.name, n))
		}
	}
	require.True(t, tables["inbox.messages"] && tables["inbox.outbox"], "the search covers the inbox's tables")
	return found
}

// erFindInBlobs lists the blobs (every file of the blob store's
// directory) whose content or name holds marker, and how many files it
// read.
func erFindInBlobs(t *testing.T, e env, marker string) (found []string, read int) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(e.blobDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		read++
		if bytes.Contains(b, []byte(marker)) || strings.Contains(path, marker) {
			found = append(found, path)
		}
		return nil
	}))
	return found, read
}

// erReplay resumes the stream from lastEventID and returns, raw, what it
// replays before the ready event.
func erReplay(t *testing.T, e env, token, lastEventID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/v1/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Last-Event-ID", lastEventID)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out strings.Builder
	for sc.Scan() {
		if sc.Text() == "event: ready" {
			return out.String()
		}
		out.WriteString(sc.Text() + "\n")
	}
	t.Fatalf("the stream ended before its ready event: %v; got %s", sc.Err(), out.String())
	return ""
}

// erMessages reads every message of conv through the API.
func erMessages(t *testing.T, e env, token, conv string) []map[string]any {
	t.Helper()
	var l list[map[string]any]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/conversations/"+conv+"/messages?limit=200", "", &l))
	return l.Items
}

// erEmail publishes a customer's email with what it holds.
func erEmail(t *testing.T, e env, m events.MessageReceived) {
	t.Helper()
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
}

// TestAnonymisedContentIsGoneEverywhere puts a unique marker in a
// customer's email (text, HTML, subject, metadata, an attachment's name
// and content) and in an agent's reply (text, subject, an uploaded
// attachment), anonymises both, and finds the marker nowhere: in no
// column of any table of the database, in no blob, in the stream's
// replay, in the messages served, in search. The messages stay, as facts.
func TestAnonymisedContentIsGoneEverywhere(t *testing.T) {
	poppler(t)
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	mb := e.createMailbox(t, admin, "support@acme.example")
	marker := "zqxmark" + strings.ToLower(testkit.RandomName(""))
	ctx := context.Background()

	live, _ := stOpen(t, e, admin, "")
	attachment := "the secret " + marker + " inside"
	ref, err := e.blobs.Put(ctx, b.Tenant.ID.String()+"/mail", strings.NewReader(attachment), 1<<20)
	require.NoError(t, err)
	erEmail(t, e, events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<e1@customer.example>", ThreadKey: "<e1@customer.example>", From: events.Party{Identity: "ada@customer.example", Name: "Ada"},
		Text: "My code is " + marker + ".", HTML: "<p>My code is <b>" + marker + "</b></p>", Subject: "About " + marker,
		Metadata:    map[string]string{"x-note": marker},
		Attachments: []events.Attachment{{Name: marker + ".txt", ContentType: "text/plain", Size: int64(len(attachment)), BlobKey: ref.Key}},
		ReceivedAt:  time.Now().UTC()})
	first := live.until(t, "the customer's email", func(ev stEvent) bool { return ev.Type == events.TypeConversationMessage })
	from := first[0].ID // the replay from here holds the message events

	var convs list[conversation]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations?q="+marker, "", &convs))
	require.Len(t, convs.Items, 1, "search finds the marker before")
	conv := convs.Items[0].ID
	path := "/v1/conversations/" + conv
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/assign", "", nil))
	up := azCallAs(t, e, admin, http.MethodPost, "/v1/attachments?filename="+url.QueryEscape(marker+"-reply.txt"), "text/plain", "reply "+marker)
	require.Equal(t, http.StatusCreated, up.Status, "upload: %s", up)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/reply",
		fmt.Sprintf(`{"text":"Your code %s is noted.","attachments":[%q]}`, marker, azID(t, up)), nil))
	live.until(t, "the reply", func(ev stEvent) bool {
		return ev.Type == events.TypeConversationMessage && strings.Contains(ev.Body, "is noted")
	})
	msgs := erMessages(t, e, admin, conv)
	require.Len(t, msgs, 2)
	require.NotEmpty(t, erFindInDB(t, e, marker), "the marker is in the database before")
	found, _ := erFindInBlobs(t, e, marker)
	require.Len(t, found, 2, "both attachments are in the blob store before")
	require.Contains(t, erReplay(t, e, admin, from), marker, "the replay holds the marker before")
	html := azCall(t, e, admin, http.MethodGet, path+"/export?format=html", "")
	require.Equal(t, http.StatusOK, html.Status)
	require.Contains(t, string(html.Body), marker, "the printable page holds the marker before")
	pdf := azCall(t, e, admin, http.MethodGet, path+"/export?format=pdf", "")
	require.Equal(t, http.StatusOK, pdf.Status)
	pdfText, _ := readPDF(t, pdf.Body)
	require.Contains(t, pdfText, marker, "the PDF holds the marker before")
	// A transcript sent by email keeps its PDF for the email connector:
	// the erasure deletes it (its text is compressed, so the search of
	// the blob store below would not see it).
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/settings/export",
		fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, mb.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/send-by-email", `{"to":"lawyer@partner.example"}`, nil))
	var transcript string
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT blob_key FROM inbox.transcripts WHERE conversation_id = $1`, conv).Scan(&transcript))
	rc, err := e.blobs.Open(ctx, transcript)
	require.NoError(t, err, "the transcript's PDF is in the blob store before")
	require.NoError(t, rc.Close())

	for _, m := range msgs {
		var out map[string]any
		require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, "/v1/admin/messages/"+m["id"].(string)+"/anonymise", "", &out))
		require.NotEmpty(t, out["anonymised_at"])
		require.Equal(t, "", out["body"])
	}
	// Every replica scrubs its replay when it reads the erasures' events.
	live.untilAll(t, "both anonymisations",
		func(ev stEvent) bool { return ev.Action == "anonymise" && ev.Conversation == conv },
		func(ev stEvent) bool { return ev.Action == "anonymise" && ev.Conversation == conv })

	// Nowhere in the database (every schema, every table: messages,
	// uploads, outbox, audit logs...), once the relay has published what
	// the outbox held.
	testkit.Eventually(t, 20*time.Second, func() bool {
		var n int
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM inbox.outbox`).Scan(&n))
		return n == 0
	}, "the outbox was not drained")
	require.Empty(t, erFindInDB(t, e, marker), "the marker is still in the database")
	found, _ = erFindInBlobs(t, e, marker)
	require.Empty(t, found, "the marker is still in the blob store")
	if rc, err := e.blobs.Open(ctx, transcript); err == nil {
		_ = rc.Close()
		t.Fatal("the transcript's PDF is still in the blob store")
	}
	var transcripts int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM inbox.transcripts WHERE conversation_id = $1`, conv).Scan(&transcripts))
	require.Zero(t, transcripts)
	html = azCall(t, e, admin, http.MethodGet, path+"/export?format=html", "")
	require.Equal(t, http.StatusOK, html.Status)
	require.NotContains(t, string(html.Body), marker, "the printable page holds the marker")
	require.Contains(t, string(html.Body), "This message was anonymised")
	pdf = azCall(t, e, admin, http.MethodGet, path+"/export?format=pdf", "")
	require.Equal(t, http.StatusOK, pdf.Status)
	pdfText, _ = readPDF(t, pdf.Body)
	require.NotContains(t, pdfText, marker, "the PDF holds the marker")
	require.Contains(t, pdfText, "This message was anonymised")
	replay := erReplay(t, e, admin, from)
	require.NotContains(t, replay, marker, "the stream replays the marker")
	require.Contains(t, replay, "anonymise", "the replay still holds the erasures' events")

	// The messages stay, as the facts that they were sent: no content.
	after := erMessages(t, e, admin, conv)
	require.Len(t, after, 2)
	for i, m := range after {
		require.Equal(t, msgs[i]["id"], m["id"])
		require.Equal(t, msgs[i]["direction"], m["direction"])
		require.Equal(t, msgs[i]["received_at"], m["received_at"])
		require.NotEmpty(t, m["anonymised_at"])
		require.Nil(t, m["attachments"])
		r := e.download(t, admin, "/v1/messages/"+m["id"].(string)+"/attachments/0")
		require.Equal(t, http.StatusNotFound, r.Status, "an anonymised message serves no attachment")
	}
	raw := azCall(t, e, admin, http.MethodGet, path+"/messages", "")
	require.NotContains(t, string(raw.Body), marker)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations?q="+marker, "", &convs))
	require.Empty(t, convs.Items, "search still finds the marker")
	got := azCall(t, e, admin, http.MethodGet, path, "")
	require.Equal(t, http.StatusOK, got.Status)
	require.NotContains(t, string(got.Body), marker)

	// Anonymising again changes nothing; the admin audit log has both,
	// without content.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, "/v1/admin/messages/"+msgs[0]["id"].(string)+"/anonymise", "", nil))
	var audit list[map[string]any]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/audit", "", &audit))
	require.Len(t, audit.Items, 2)
	for _, a := range audit.Items {
		require.Equal(t, "anonymise", a["action"])
		require.Equal(t, conv, a["conversation_id"])
	}
}

// TestErasedContactIsGoneEverywhere erases a chat contact whose name,
// identity, avatar, note and session carry markers: no trace of either in
// any table, in the stream's replay or through the API; their
// conversation stays as a fact, its messages anonymised.
func TestErasedContactIsGoneEverywhere(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	_, admin := e.userToken(t, b, "admin")
	name := "Zqxname" + strings.ToLower(testkit.RandomName(""))
	ident := "zqxident" + strings.ToLower(testkit.RandomName(""))
	ctx := context.Background()

	live, _ := stOpen(t, e, admin, "")
	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelChat, ChannelAccountID: b.ChatChannel.ID.String(),
		ExternalID: "x1", ThreadKey: "session-" + ident, From: events.Party{Identity: ident, Name: name},
		Text: "hello, I am " + name, ReceivedAt: time.Now().UTC()}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(ctx, events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	first := live.until(t, "the customer's message", func(ev stEvent) bool { return ev.Type == events.TypeConversationMessage })
	from := first[0].ID
	var convs list[conversation]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, admin, http.MethodGet, "/v1/conversations", "", &convs)
		return len(convs.Items) == 1
	}, "the message was not stored")
	conv, contact := convs.Items[0].ID, convs.Items[0].ContactID
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/contacts/"+contact, `{"avatar_url":"https://example.com/`+ident+`.png"}`, nil))
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/contacts/"+contact+"/notes", `{"body":"`+name+` is a VIP"}`, nil))
	require.NotEmpty(t, erFindInDB(t, e, name))
	require.NotEmpty(t, erFindInDB(t, e, ident))

	var done struct {
		ContactID     string `json:"contact_id"`
		Conversations int    `json:"conversations"`
		Messages      int    `json:"messages"`
	}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, "/v1/admin/contacts/"+contact+"/erase", "", &done))
	require.Equal(t, 1, done.Conversations)
	require.Equal(t, 1, done.Messages)
	live.until(t, "the erasure", func(ev stEvent) bool { return ev.Action == "erase_contact" && ev.Conversation == conv })
	testkit.Eventually(t, 20*time.Second, func() bool {
		var n int
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM inbox.outbox`).Scan(&n))
		return n == 0
	}, "the outbox was not drained")
	for _, marker := range []string{name, ident} {
		require.Empty(t, erFindInDB(t, e, marker), "%s is still in the database", marker)
		replay := erReplay(t, e, admin, from)
		require.NotContains(t, replay, marker, "the stream replays it")
		for _, p := range []string{"/v1/contacts/" + contact, "/v1/conversations/" + conv, "/v1/conversations/" + conv + "/messages",
			"/v1/contacts/" + contact + "/notes", "/v1/conversations/" + conv + "/audit"} {
			r := azCall(t, e, admin, http.MethodGet, p, "")
			require.Equal(t, http.StatusOK, r.Status, p)
			require.NotContains(t, string(r.Body), marker, p)
		}
	}
	// The conversation stays, as a fact.
	var c conversation
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+conv, "", &c))
	require.Equal(t, "chat", c.Channel)
	require.Equal(t, contact, c.ContactID)
	require.Len(t, erMessages(t, e, admin, conv), 1)

	// A new message from the same identity starts a new contact and a new
	// conversation: the old thread is forgotten.
	m.ExternalID, m.Text, m.ReceivedAt = "x2", "back again", time.Now().UTC()
	ev, err = events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(ctx, events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, admin, http.MethodGet, "/v1/conversations", "", &convs)
		return len(convs.Items) == 2
	}, "the new message did not open a new conversation")
	require.NotEqual(t, contact, convs.Items[1].ContactID)
}

// erSeed is a tenant with a chat conversation of two customer messages,
// one with an attachment, for the deletion tests.
func erSeed(t *testing.T, e env, b inbox.Bootstrap, admin string) (conv string, msgs []map[string]any, blobKey string) {
	t.Helper()
	ctx := context.Background()
	ref, err := e.blobs.Put(ctx, b.Tenant.ID.String()+"/chat", strings.NewReader("photo of "+b.Tenant.ID.String()), 1<<20)
	require.NoError(t, err)
	session := testkit.RandomName("s")
	for i, text := range []string{"first words", "second words"} {
		m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelChat, ChannelAccountID: b.ChatChannel.ID.String(),
			ExternalID: fmt.Sprintf("%s-%d", session, i), ThreadKey: session, From: events.Party{Identity: "u-" + session},
			Text: text, ReceivedAt: time.Now().UTC().Add(time.Duration(i) * time.Second)}
		if i == 1 {
			m.Attachments = []events.Attachment{{Name: "photo.jpg", ContentType: "image/jpeg", Size: 10, BlobKey: ref.Key}}
		}
		ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(ctx, events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		var convs list[conversation]
		e.do(t, admin, http.MethodGet, "/v1/conversations?q=words", "", &convs)
		if len(convs.Items) != 1 {
			return false
		}
		conv = convs.Items[0].ID
		msgs = erMessages(t, e, admin, conv)
		return len(msgs) == 2
	}, "the messages were not stored")
	return conv, msgs, ref.Key
}

// TestDeletedMessagesAndConversationsAreGone deletes a message, then a
// whole conversation: neither is served, listed, searched or replayed any
// more; their blobs are deleted; the admin audit log says who deleted
// what, without content; the conversation's last event says it is done.
func TestDeletedMessagesAndConversationsAreGone(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	_, admin := e.userToken(t, b, "admin")
	ctx := context.Background()
	live, _ := stOpen(t, e, admin, "")
	conv, msgs, key := erSeed(t, e, b, admin)
	first := live.until(t, "the first message", func(ev stEvent) bool { return ev.Type == events.TypeConversationMessage })
	from := first[0].ID
	live.until(t, "the second message", stMessage("second words"))

	// One message.
	second := msgs[1]["id"].(string)
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/messages/"+second, "", nil))
	live.until(t, "the deletion", func(ev stEvent) bool { return ev.Action == "delete_message" })
	left := erMessages(t, e, admin, conv)
	require.Len(t, left, 1)
	require.Equal(t, msgs[0]["id"], left[0]["id"])
	require.Equal(t, http.StatusNotFound, e.download(t, admin, "/v1/messages/"+second+"/attachments/0").Status)
	_, err := e.blobs.Open(ctx, key)
	require.Error(t, err, "the deleted message's blob is gone")
	var c map[string]any
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+conv, "", &c))
	require.Equal(t, left[0]["received_at"], c["last_message_at"], "the last message is the one left")
	var convs list[conversation]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations?q=second", "", &convs))
	require.Empty(t, convs.Items)
	require.NotContains(t, erReplay(t, e, admin, from), "second words")
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodDelete, "/v1/admin/messages/"+second, "", nil), "deleting again")
	var audit []map[string]any
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT json_agg(json_build_object('action', action, 'data', data)) FROM inbox.conversation_audit
		WHERE conversation_id = $1 AND action = 'delete_message'`, conv).Scan(&audit))
	require.Len(t, audit, 1)

	// The whole conversation.
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/conversations/"+conv, "", nil))
	last := live.until(t, "the conversation's deletion", func(ev stEvent) bool { return ev.Action == "delete_conversation" })
	require.Equal(t, conv, last[len(last)-1].Conversation)
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, "/v1/conversations/"+conv, "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, "/v1/conversations/"+conv+"/messages", "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, "/v1/messages/"+left[0]["id"].(string)+"/attachments/0", "", nil))
	require.Empty(t, e.conversations(t, admin))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations?q=first", "", &convs))
	require.Empty(t, convs.Items)
	replay := erReplay(t, e, admin, from)
	require.NotContains(t, replay, "first words")
	require.Contains(t, replay, "delete_conversation")
	for _, table := range []string{"messages", "conversation_audit", "conversations"} {
		var n int
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM inbox.`+table+` WHERE `+map[bool]string{true: "id", false: "conversation_id"}[table == "conversations"]+` = $1`, conv).Scan(&n))
		require.Zero(t, n, table)
	}
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodDelete, "/v1/admin/conversations/"+conv, "", nil), "deleting again")

	// Its last event closes it for the router and the scheduler; the chat
	// connector is told to forget its thread and the message left.
	var changed events.ConversationChanged
	nextEvent(t, topicReader(t, e, events.TopicConversations), func(ev events.Event) bool {
		return ev.Type == events.TypeConversationChanged && ev.Decode(&changed) == nil && changed.Action == "delete_conversation"
	})
	var snap struct {
		ID          string   `json:"id"`
		Assignees   []string `json:"assignee_ids"`
		ContactName string   `json:"contact_name"`
	}
	require.NoError(t, json.Unmarshal(changed.Conversation, &snap))
	require.Equal(t, "done", changed.To)
	require.Equal(t, conv, snap.ID)
	require.Empty(t, snap.Assignees)
	require.Empty(t, snap.ContactName)
	var erase events.Erase
	nextEvent(t, topicReader(t, e, events.TopicOutbound(events.ChannelChat)), func(ev events.Event) bool {
		return ev.Type == events.TypeErase && ev.Decode(&erase) == nil && len(erase.Conversations) == 1
	})
	require.Equal(t, events.EraseDelete, erase.Reason)
	require.Equal(t, conv, erase.Conversations[0].ID)
	require.Equal(t, []string{left[0]["id"].(string)}, erase.MessageIDs())

	var log list[map[string]any]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/audit", "", &log))
	require.Len(t, log.Items, 2)
	require.Equal(t, "delete_conversation", log.Items[0]["action"])
	require.Equal(t, conv, log.Items[0]["conversation_id"])
	require.Equal(t, "delete_message", log.Items[1]["action"])
	require.Equal(t, second, log.Items[1]["message_id"])
	require.NotEmpty(t, log.Items[0]["actor_id"])
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/audit?limit=1", "", &log))
	require.Len(t, log.Items, 1)
	require.NotEmpty(t, log.NextCursor)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/audit?limit=1&cursor="+log.NextCursor, "", &log))
	require.Len(t, log.Items, 1)
	require.Equal(t, "delete_message", log.Items[0]["action"])
	for q, field := range map[string]string{"limit=0": "limit", "cursor=nope": "cursor"} {
		p := azMustProblem(t, azCall(t, e, admin, http.MethodGet, "/v1/admin/audit?"+q, ""), http.StatusBadRequest, q)
		require.Equal(t, []string{field}, p.fields(), q)
	}
}
