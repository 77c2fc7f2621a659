package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// agentOf creates an agent of queue and logs them in; it returns their
// access token.
func agentOf(t *testing.T, base, admin, tenant, queue, email string) string {
	t.Helper()
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/users", admin, map[string]any{
		"email": email, "name": "Ada", "role": "agent", "queue_ids": []string{queue}, "password": "correct horse battery",
	}, nil))
	var login struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/auth/login", "", map[string]any{"tenant_id": tenant, "email": email, "password": "correct horse battery"}, &login))
	return login.AccessToken
}

// upload posts a file to POST /v1/attachments and returns its id.
func upload(t *testing.T, base, token, name, contentType, content string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/attachments?filename="+url.QueryEscape(name), strings.NewReader(content))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "upload answered %s", raw)
	var up struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(raw, &up))
	return up.ID
}

// TestOutboundEmailEndToEnd runs the binary against an IMAP and an SMTP
// server: an agent starts a conversation with a contact by email; the
// mail leaves by SMTP to the contact with its subject, CC and attachment,
// and the customer's answer, fetched over IMAP, joins the same
// conversation.
func TestOutboundEmailEndToEnd(t *testing.T) {
	imapUser, imapPort := imapServer(t)
	sink, smtpPort := smtpServer(t)
	db := testkit.DatabaseURL(t)
	node := startNode(t, db, t.TempDir(), "")
	base := node.Base()
	b, err := testkit.CreateTenant(binary, db, "Outbound Email Co")
	require.NoError(t, err)
	admin := b.APIToken.Token

	var mb, queue, contact struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/mailboxes", admin, map[string]any{
		"name": "Sales", "address": "sales@shop.example", "display_name": "Shop Sales",
		"imap": map[string]any{"host": "127.0.0.1", "port": imapPort, "tls": "none", "username": "support", "password": "imap-secret"},
		"smtp": map[string]any{"host": "127.0.0.1", "port": smtpPort, "tls": "none"},
	}, &mb))
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/queues", admin, map[string]any{"name": "Sales"}, &queue))
	agent := agentOf(t, base, admin, b.Tenant.ID, queue.ID, "ada@shop.example")
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/contacts", agent, map[string]any{
		"name": "Chloé Martin", "identities": []map[string]string{{"channel": "email", "identity": "chloe@customer.example"}},
	}, &contact))
	const quote = "%PDF-1.4 devis 42"
	file := upload(t, base, agent, "devis.pdf", "application/pdf", quote)

	var conv conversation
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/conversations", agent, map[string]any{
		"channel": "email", "contact_id": contact.ID, "channel_account_id": mb.ID, "queue_id": queue.ID,
		"subject": "Votre devis", "cc": []string{"boss@customer.example"}, "attachments": []string{file},
		"text": "Bonjour Chloé,\n\nVoici votre devis.",
	}, &conv))
	require.Equal(t, "answered", conv.State)
	require.Equal(t, "email", conv.Channel)

	testkit.Eventually(t, 30*time.Second, func() bool { return len(sink.mails()) == 1 }, "the mail leaves by SMTP")
	sent := sink.mails()[0]
	slices.Sort(sent.To)
	require.Equal(t, []string{"boss@customer.example", "chloe@customer.example"}, sent.To, "the envelope goes to the contact and the CC")
	r, err := mail.CreateReader(bytes.NewReader(sent.Data))
	require.NoError(t, err)
	to, err := r.Header.AddressList("To")
	require.NoError(t, err)
	require.Len(t, to, 1)
	require.Equal(t, "chloe@customer.example", to[0].Address)
	cc, err := r.Header.AddressList("Cc")
	require.NoError(t, err)
	require.Len(t, cc, 1)
	require.Equal(t, "boss@customer.example", cc[0].Address)
	subject, err := r.Header.Subject()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(subject, "Votre devis"), "subject %q", subject)
	require.False(t, strings.HasPrefix(subject, "Re:"), "a new conversation is no reply: %q", subject)
	require.Empty(t, r.Header.Get("In-Reply-To"), "a new thread answers no mail")
	ourID, err := r.Header.MessageID()
	require.NoError(t, err)
	var attached []string
	var text string
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch h := p.Header.(type) {
		case *mail.AttachmentHeader:
			name, err := h.Filename()
			require.NoError(t, err)
			attached = append(attached, name+"="+string(body))
		case *mail.InlineHeader:
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				text = string(body)
			}
		}
	}
	require.Equal(t, []string{"devis.pdf=" + quote}, attached)
	require.Contains(t, text, "Voici votre devis.")

	var msgs struct {
		Items []message `json:"items"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 1 && msgs.Items[0].Delivery == "sent"
	}, "the first message is marked sent")

	// The customer answers the mail; the connector fetches it over IMAP,
	// and it joins the conversation the agent started.
	answer := fmt.Sprintf("Message-ID: <answer-1@customer.example>\r\nFrom: Chloé Martin <chloe@customer.example>\r\nTo: sales@shop.example\r\n"+
		"Subject: Re: %s\r\nIn-Reply-To: <%s>\r\nReferences: <%s>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMerci, c'est parfait.\r\n",
		subject, ourID, ourID)
	_, err = imapUser.Append("INBOX", strings.NewReader(answer), &imap.AppendOptions{})
	require.NoError(t, err)
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 2
	}, "the customer's answer joins the conversation")
	require.Equal(t, "inbound", msgs.Items[1].Direction)
	require.Contains(t, msgs.Items[1].Body, "c'est parfait")
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations/"+conv.ID, agent, nil, &conv))
	require.Equal(t, "new", conv.State, "the customer's answer puts the conversation back to work")
	var list struct {
		Items []conversation `json:"items"`
	}
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations?channel=email", admin, nil, &list))
	require.Len(t, list.Items, 1, "one conversation for the whole thread")
}

// TestOutboundSMSEndToEnd runs the binary against a Twilio double: an
// agent starts a conversation with a contact by SMS; the text reaches
// Twilio from the account's number, and the customer's answer joins the
// same conversation.
func TestOutboundSMSEndToEnd(t *testing.T) {
	const (
		accountSID = "AC0123456789abcdef0123456789abcdef"
		authToken  = "f00dcafe5ec7e70ce7f00dcafe5ec7e7"
		ours       = "+33700000002"
		customer   = "+33687654321"
	)
	twilio := newTwilioDouble(t, accountSID, authToken)
	db := testkit.DatabaseURL(t)
	node := startSMSNode(t, db, twilio.srv.URL)
	base := node.Base()
	b, err := testkit.CreateTenant(binary, db, "Outbound SMS Co")
	require.NoError(t, err)
	admin := b.APIToken.Token

	var acct, queue, contact struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/sms-accounts", admin, map[string]any{
		"name": "France", "account_sid": accountSID, "auth_token": authToken, "numbers": []string{ours},
	}, &acct))
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/queues", admin, map[string]any{"name": "SMS"}, &queue))
	agent := agentOf(t, base, admin, b.Tenant.ID, queue.ID, "ada@shop.example")
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/contacts", agent, map[string]any{
		"name": "Hugo", "identities": []map[string]string{{"channel": "sms", "identity": customer}},
	}, &contact))

	const text = "Bonjour Hugo, votre colis est prêt."
	var conv conversation
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/conversations", agent, map[string]any{
		"channel": "sms", "contact_id": contact.ID, "channel_account_id": acct.ID, "queue_id": queue.ID, "text": text,
	}, &conv))
	require.Equal(t, "answered", conv.State)

	testkit.Eventually(t, 30*time.Second, func() bool { m, _ := twilio.messages(); return len(m) == 1 }, "the text reaches Twilio")
	sent, _ := twilio.messages()
	require.Equal(t, customer, sent[0].To)
	require.Equal(t, ours, sent[0].From, "sent from the account's number, which the answer comes back to")
	require.Equal(t, text, sent[0].Body)

	// The customer answers, through Twilio's signed webhook.
	form := url.Values{
		"AccountSid": {accountSID}, "MessageSid": {"SM00000000000000000000000000000009"}, "SmsMessageSid": {"SM00000000000000000000000000000009"},
		"SmsSid": {"SM00000000000000000000000000000009"}, "SmsStatus": {"received"}, "From": {customer}, "To": {ours},
		"Body": {"Merci, je passe demain."}, "NumMedia": {"0"}, "NumSegments": {"1"}, "ApiVersion": {"2010-04-01"},
	}
	require.Equal(t, http.StatusOK, postTwilio(t, base+"/v1/webhooks/sms/"+acct.ID+"/messages", authToken, form))
	var msgs struct {
		Items []message `json:"items"`
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 2
	}, "the customer's answer joins the conversation")
	require.Equal(t, "outbound", msgs.Items[0].Direction)
	require.Equal(t, "inbound", msgs.Items[1].Direction)
	require.Equal(t, "Merci, je passe demain.", msgs.Items[1].Body)
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations/"+conv.ID, agent, nil, &conv))
	require.Equal(t, "new", conv.State)
	var list struct {
		Items []conversation `json:"items"`
	}
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations?channel=sms", admin, nil, &list))
	require.Len(t, list.Items, 1, "one conversation for the pair of numbers")
}
