package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// mailTenant is a tenant of a running binary with one mailbox, whose IMAP
// and SMTP servers are the test's.
type mailTenant struct {
	node     *testkit.Node
	base     string
	boot     testkit.Bootstrap
	admin    string // the tenant's API token (role admin)
	mailbox  string // the mailbox's id
	address  string // the mailbox's address
	imapUser *imapmemserver.User
	smtp     *smtpSink
	client   *http.Client
}

// startMailTenant starts the binary, creates a tenant and its mailbox
// support@shop.example on an IMAP and an SMTP server of the test.
func startMailTenant(t *testing.T, name string) *mailTenant {
	t.Helper()
	imapUser, imapPort := imapServer(t)
	sink, smtpPort := smtpServer(t)
	db := testkit.DatabaseURL(t)
	node := startNode(t, db, t.TempDir(), "")
	b, err := testkit.CreateTenant(binary, db, name)
	require.NoError(t, err)
	mt := &mailTenant{node: node, base: node.Base(), boot: b, admin: b.APIToken.Token, address: "support@shop.example",
		imapUser: imapUser, smtp: sink, client: &http.Client{Timeout: 10 * time.Second}}
	var mb struct {
		ID string `json:"id"`
	}
	mustAPI(t, http.StatusCreated, "POST", mt.base+"/v1/admin/mailboxes", mt.admin, map[string]any{
		"name": "Support", "address": mt.address, "display_name": "Shop Support",
		"imap": map[string]any{"host": "127.0.0.1", "port": imapPort, "tls": "none", "username": "support", "password": "imap-secret"},
		"smtp": map[string]any{"host": "127.0.0.1", "port": smtpPort, "tls": "none"},
	}, &mb)
	mt.mailbox = mb.ID
	return mt
}

// user creates a user of the tenant and logs them in; it returns their id
// and access token.
func (mt *mailTenant) user(t *testing.T, email, name, role string, queues []string) (string, string) {
	t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	mustAPI(t, http.StatusCreated, "POST", mt.base+"/v1/admin/users", mt.admin, map[string]any{
		"email": email, "name": name, "role": role, "queue_ids": queues, "password": "correct horse battery",
	}, &u)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	mustAPI(t, http.StatusOK, "POST", mt.base+"/v1/auth/login", "", map[string]any{
		"tenant_id": mt.boot.Tenant.ID, "email": email, "password": "correct horse battery",
	}, &login)
	return u.ID, login.AccessToken
}

// fetch GETs url and answers the status, the Content-Type and the body.
func fetch(t *testing.T, url, token string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// mailTo is one mail the SMTP server received for rcpt, read.
type mailTo struct {
	env    smtpEnvelope
	header mail.Header
	parts  []mailPart
}

type mailPart struct {
	contentType string
	attachment  string // the file name; empty for an inline part
	body        []byte
}

// readMail parses a received mail into its header and its leaf parts.
func readMail(t *testing.T, env smtpEnvelope) mailTo {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(env.Data))
	require.NoError(t, err)
	m := mailTo{env: env, header: r.Header}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		part := mailPart{body: body}
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			part.contentType, _, _ = h.ContentType()
		case *mail.AttachmentHeader:
			part.contentType, _, _ = h.ContentType()
			part.attachment, _ = h.Filename()
			if part.attachment == "" {
				part.attachment = "(unnamed)"
			}
		}
		m.parts = append(m.parts, part)
	}
	return m
}

// mailsTo are the received mails whose envelope names rcpt.
func (mt *mailTenant) mailsTo(rcpt string) []smtpEnvelope {
	var out []smtpEnvelope
	for _, e := range mt.smtp.mails() {
		for _, to := range e.To {
			if strings.EqualFold(to, rcpt) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

type notificationItem struct {
	ID             string            `json:"id"`
	Kind           string            `json:"kind"`
	ConversationID string            `json:"conversation_id"`
	Actor          map[string]string `json:"actor"`
	Data           map[string]string `json:"data"`
}

// notifications lists the caller's notifications.
func (mt *mailTenant) notifications(t *testing.T, token string) []notificationItem {
	t.Helper()
	var l struct {
		Items []notificationItem `json:"items"`
	}
	mustAPI(t, http.StatusOK, "GET", mt.base+"/v1/me/notifications", token, nil, &l)
	return l.Items
}

func kindsOf(items []notificationItem, conversation string) []string {
	var kinds []string
	for _, n := range items {
		if n.ConversationID == conversation {
			kinds = append(kinds, n.Kind)
		}
	}
	return kinds
}

// TestSendConversationByEmailEndToEnd: a customer's mail becomes a
// conversation; an admin turns sending by email on with the mailbox and
// sends the conversation to an outsider. The outsider's mail leaves by the
// mailbox's SMTP server, from its address, as a person's mail (no
// Auto-Submitted), with a text part and the PDF; the audit log keeps the
// recipient and nothing of the conversation's text.
func TestSendConversationByEmailEndToEnd(t *testing.T) {
	mt := startMailTenant(t, "Export Co")
	const text = "Bonjour, le colis 4711-transcript n'est jamais arrivé."
	first := "Message-ID: <parcel-1@customer.example>\r\nFrom: Chloé Martin <chloe@customer.example>\r\nTo: support@shop.example\r\n" +
		"Subject: Colis perdu\r\nDate: Sat, 21 Nov 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n"
	_, err := mt.imapUser.Append("INBOX", strings.NewReader(first), &imap.AppendOptions{})
	require.NoError(t, err)
	var conv conversation
	testkit.Eventually(t, 30*time.Second, func() bool {
		var list struct {
			Items []conversation `json:"items"`
		}
		api(t, "GET", mt.base+"/v1/conversations?channel=email", mt.admin, nil, &list)
		if len(list.Items) == 1 {
			conv = list.Items[0]
		}
		return len(list.Items) == 1
	}, "the customer's mail becomes a conversation")

	// Off by default: refused, and nothing leaves.
	const outsider = "boss@partner.example"
	require.Equal(t, http.StatusConflict, api(t, "POST", mt.base+"/v1/conversations/"+conv.ID+"/send-by-email", mt.admin,
		map[string]any{"to": outsider}, nil))

	mustAPI(t, http.StatusOK, "PUT", mt.base+"/v1/admin/settings/export", mt.admin,
		map[string]any{"send_by_email": true, "mailbox_id": mt.mailbox}, nil)
	const note = "See how the parcel went missing."
	var after conversation
	mustAPI(t, http.StatusOK, "POST", mt.base+"/v1/conversations/"+conv.ID+"/send-by-email", mt.admin,
		map[string]any{"to": outsider, "note": note}, &after)
	require.Equal(t, conv.State, after.State, "sending by email changes nothing of the conversation")

	testkit.Eventually(t, 30*time.Second, func() bool { return len(mt.mailsTo(outsider)) > 0 }, "the conversation leaves by SMTP")
	sent := mt.mailsTo(outsider)
	require.Len(t, sent, 1, "one mail to the outsider")
	require.Len(t, mt.smtp.mails(), 1, "and no other mail")
	m := readMail(t, sent[0])
	require.Equal(t, []string{outsider}, m.env.To)
	require.Equal(t, mt.address, m.env.From, "the envelope sender is the mailbox's address")
	from, err := m.header.AddressList("From")
	require.NoError(t, err)
	require.Len(t, from, 1)
	require.Equal(t, mt.address, from[0].Address, "from the mailbox's address")
	to, err := m.header.AddressList("To")
	require.NoError(t, err)
	require.Len(t, to, 1)
	require.Equal(t, outsider, to[0].Address)
	require.Empty(t, m.header.Get("Auto-Submitted"), "an admin sent it: no Auto-Submitted")

	var textPart, pdf *mailPart
	for i, p := range m.parts {
		switch {
		case p.attachment == "" && p.contentType == "text/plain":
			textPart = &m.parts[i]
		case p.attachment != "" && p.contentType == "application/pdf":
			pdf = &m.parts[i]
		}
	}
	require.NotNil(t, textPart, "a text part")
	require.Contains(t, string(textPart.body), note)
	require.Contains(t, string(textPart.body), "4711-transcript", "the text part holds the conversation")
	require.NotNil(t, pdf, "the PDF attached")
	require.True(t, bytes.HasPrefix(pdf.body, []byte("%PDF")), "the attachment is a PDF: %q", pdf.body[:min(len(pdf.body), 16)])
	require.True(t, strings.HasSuffix(pdf.attachment, ".pdf"), pdf.attachment)

	var audit struct {
		Items []struct {
			Action    string          `json:"action"`
			ActorKind string          `json:"actor_kind"`
			Data      json.RawMessage `json:"data"`
		} `json:"items"`
	}
	mustAPI(t, http.StatusOK, "GET", mt.base+"/v1/conversations/"+conv.ID+"/audit", mt.admin, nil, &audit)
	var found []json.RawMessage
	for _, e := range audit.Items {
		if e.Action == "send_by_email" {
			found = append(found, e.Data)
		}
	}
	require.Len(t, found, 1, "one send_by_email in the audit log")
	var data struct {
		To     []string `json:"to"`
		MailID string   `json:"mail_id"`
	}
	require.NoError(t, json.Unmarshal(found[0], &data))
	require.Equal(t, []string{outsider}, data.To)
	require.NotEmpty(t, data.MailID)
	for _, secret := range []string{"4711-transcript", "Colis perdu", note} {
		require.NotContains(t, string(found[0]), secret, "the audit keeps nothing of the content")
	}
}

// TestNotificationMailEndToEnd: an agent who is not connected, with the
// default preferences, is told by email (from the tenant's notification
// mailbox, Auto-Submitted) and in the app that an admin assigned them a
// conversation; their help request on it reaches a supervisor's
// notifications, and not their own.
func TestNotificationMailEndToEnd(t *testing.T) {
	mt := startMailTenant(t, "Notify Co")
	mustAPI(t, http.StatusOK, "PUT", mt.base+"/v1/admin/settings/notifications", mt.admin, map[string]any{"mailbox_id": mt.mailbox}, nil)

	var queue struct {
		ID string `json:"id"`
	}
	mustAPI(t, http.StatusCreated, "POST", mt.base+"/v1/admin/queues", mt.admin, map[string]any{"name": "Support"}, &queue)
	const agentEmail, supervisorEmail = "ada@shop.example", "grace@shop.example"
	agentID, agent := mt.user(t, agentEmail, "Ada Lovelace", "agent", []string{queue.ID})
	supervisorID, supervisor := mt.user(t, supervisorEmail, "Grace Hopper", "supervisor", []string{queue.ID})
	var prefs struct {
		EmailWhenOffline bool `json:"email_when_offline"`
	}
	mustAPI(t, http.StatusOK, "GET", mt.base+"/v1/me/notification-settings", agent, nil, &prefs)
	require.True(t, prefs.EmailWhenOffline, "by default, a user is mailed while not connected")
	var presence struct {
		Connected bool `json:"connected"`
	}
	mustAPI(t, http.StatusOK, "GET", mt.base+"/v1/me/presence", agent, nil, &presence)
	require.False(t, presence.Connected, "the agent has no heartbeat")

	chatSay(t, mt.client, mt.base, mt.boot, "notify-1", "notify-session", "notifymarker where is my order", nil)
	id := sessionConversation(t, mt.base, mt.admin, "notifymarker")
	mustAPI(t, http.StatusOK, "POST", mt.base+"/v1/conversations/"+id+"/route", mt.admin, map[string]any{"queue_id": queue.ID}, nil)
	var assigned scConversation
	mustAPI(t, http.StatusOK, "PUT", mt.base+"/v1/conversations/"+id+"/assignees", mt.admin, map[string]any{"user_ids": []string{agentID}}, &assigned)
	require.Equal(t, []string{agentID}, assigned.AssigneeIDs)

	testkit.Eventually(t, 30*time.Second, func() bool { return len(mt.mailsTo(agentEmail)) > 0 }, "the agent is told by email")
	got := mt.mailsTo(agentEmail)
	require.Len(t, got, 1)
	m := readMail(t, got[0])
	require.Equal(t, "auto-generated", m.header.Get("Auto-Submitted"))
	from, err := m.header.AddressList("From")
	require.NoError(t, err)
	require.Len(t, from, 1)
	require.Equal(t, mt.address, from[0].Address, "from the tenant's notification mailbox")
	to, err := m.header.AddressList("To")
	require.NoError(t, err)
	require.Len(t, to, 1)
	require.Equal(t, agentEmail, to[0].Address)
	var body string
	for _, p := range m.parts {
		if p.contentType == "text/plain" {
			body += string(p.body)
		}
	}
	require.Contains(t, body, id, "the mail names the conversation")
	require.NotContains(t, string(got[0].Data), "notifymarker", "and nothing of its content")

	var notes []notificationItem
	testkit.Eventually(t, 30*time.Second, func() bool {
		notes = mt.notifications(t, agent)
		return len(kindsOf(notes, id)) > 0
	}, "the agent's notifications list the assignment")
	require.Equal(t, []string{"assigned"}, kindsOf(notes, id))

	// The agent asks for help on what they hold: a supervisor, who may
	// answer it and sees the conversation, is told of it.
	mustAPI(t, http.StatusOK, "POST", mt.base+"/v1/conversations/"+id+"/help-requests", agent,
		map[string]any{"comment": "The customer asks for a refund; may I?"}, nil)
	testkit.Eventually(t, 30*time.Second, func() bool {
		notes = mt.notifications(t, supervisor)
		return len(kindsOf(notes, id)) > 0
	}, "the supervisor's notifications list the help request")
	require.Equal(t, []string{"help_request"}, kindsOf(notes, id))
	var help notificationItem
	for _, n := range notes {
		if n.ConversationID == id {
			help = n
		}
	}
	require.Equal(t, "user", help.Actor["kind"])
	require.Equal(t, agentID, help.Actor["id"], "the agent asked")
	require.Equal(t, agentID, help.Data["requester_id"])
	require.NotEmpty(t, help.Data["help_request_id"])
	require.NotEqual(t, agentID, supervisorID)

	// The requester is never told of their own request.
	require.Equal(t, []string{"assigned"}, kindsOf(mt.notifications(t, agent), id))
}

// TestAnonymisedMessageLeavesTheExport: once an admin anonymised a
// customer's message, the conversation's printable page shows that it was
// anonymised and nothing of what it said.
func TestAnonymisedMessageLeavesTheExport(t *testing.T) {
	db := testkit.DatabaseURL(t)
	node := startNode(t, db, t.TempDir(), "")
	base := node.Base()
	b, err := testkit.CreateTenant(binary, db, "Erase Co")
	require.NoError(t, err)
	admin := b.APIToken.Token
	client := &http.Client{Timeout: 10 * time.Second}

	const marker = "anonmarker7319secret"
	chatSay(t, client, base, b, "anon-1", "anon-session", "my card number is "+marker, nil)
	id := sessionConversation(t, base, admin, marker)
	chatSay(t, client, base, b, "anon-2", "anon-session", "and I am still waiting", nil)
	var msgs struct {
		Items []message `json:"items"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+id+"/messages", admin, nil, &msgs)
		return len(msgs.Items) == 2
	}, "both messages stored")
	var secret string
	for _, m := range msgs.Items {
		if strings.Contains(m.Body, marker) {
			secret = m.ID
		}
	}
	require.NotEmpty(t, secret)

	status, ctype, page := fetch(t, base+"/v1/conversations/"+id+"/export?format=html", admin)
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.HasPrefix(ctype, "text/html"), ctype)
	require.Contains(t, string(page), marker, "before: the export shows the message")

	var anonymised message
	mustAPI(t, http.StatusOK, "POST", base+"/v1/admin/messages/"+secret+"/anonymise", admin, nil, &anonymised)
	require.NotContains(t, anonymised.Body, marker)

	status, _, page = fetch(t, base+"/v1/conversations/"+id+"/export?format=html", admin)
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, string(page), marker, "after: nothing of the anonymised message")
	require.Contains(t, string(page), "This message was anonymised")
	require.Contains(t, string(page), "and I am still waiting", "the other message stays")
}
