package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

type adminMailServer struct {
	Host               string `json:"host"`
	Port               int    `json:"port"`
	TLS                string `json:"tls"`
	Username           string `json:"username"`
	PasswordSet        bool   `json:"password_set"`
	OAuth2TokenSet     bool   `json:"oauth2_token_set"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify"`
}

type adminMailbox struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Address     string          `json:"address"`
	DisplayName string          `json:"display_name"`
	IMAP        adminMailServer `json:"imap"`
	Folder      string          `json:"folder"`
	MarkSeen    bool            `json:"mark_seen"`
	MoveTo      string          `json:"move_to"`
	SMTP        adminMailServer `json:"smtp"`
	SentFolder  string          `json:"sent_folder"`
	ReplyDomain string          `json:"reply_domain"`
}

// mailboxBody is a valid POST /v1/admin/mailboxes body for address, its
// IMAP password imapPassword.
func mailboxBody(address, imapPassword string) string {
	return fmt.Sprintf(`{"name":"Support","address":%q,"display_name":"Acme Support",
		"imap":{"host":"imap.example.com","port":993,"tls":"tls","username":%q,"password":%q},
		"folder":"INBOX","mark_seen":true,"move_to":"Archive",
		"smtp":{"host":"192.0.2.25","port":587,"tls":"starttls","username":%q,"oauth2_token":"smtp-token-s3cret"},
		"sent_folder":"Sent","reply_domain":"reply.example.com"}`, address, address, imapPassword, address)
}

// createMailbox creates a mailbox of b through the API.
func (e env) createMailbox(t *testing.T, token, address string) adminMailbox {
	t.Helper()
	var m adminMailbox
	require.Equal(t, http.StatusCreated, e.do(t, token, http.MethodPost, "/v1/admin/mailboxes", mailboxBody(address, "imap-pass-s3cret"), &m))
	return m
}

func TestAdminMailboxes(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	const base = "/v1/admin/mailboxes"

	// Every answer of this test, raw: no secret may ever be in one.
	secrets := []string{"imap-pass-s3cret", "smtp-token-s3cret", "new-imap-s3cret", "imap-oauth-s3cret"}
	answers := &answerLog{t: t, e: e, token: admin}
	call := answers.call

	var m adminMailbox
	call(http.MethodPost, base, mailboxBody("support@acme.example", "imap-pass-s3cret"), http.StatusCreated, &m)
	require.Equal(t, adminMailbox{ID: m.ID, Name: "Support", Address: "support@acme.example", DisplayName: "Acme Support",
		IMAP:   adminMailServer{Host: "imap.example.com", Port: 993, TLS: "tls", Username: "support@acme.example", PasswordSet: true},
		Folder: "INBOX", MarkSeen: true, MoveTo: "Archive",
		SMTP:       adminMailServer{Host: "192.0.2.25", Port: 587, TLS: "starttls", Username: "support@acme.example", OAuth2TokenSet: true},
		SentFolder: "Sent", ReplyDomain: "reply.example.com"}, m)
	var got adminMailbox
	call(http.MethodGet, base+"/"+m.ID, "", http.StatusOK, &got)
	require.Equal(t, m, got)

	// The address is unique among the tenant's mailboxes, whatever its case.
	call(http.MethodPost, base, mailboxBody("SUPPORT@acme.example", "x"), http.StatusBadRequest, nil)

	// PATCH keeps the secrets it does not name, replaces those it names,
	// and an empty one removes it.
	call(http.MethodPatch, base+"/"+m.ID, `{"name":"Care","imap":{"port":143,"tls":"starttls"}}`, http.StatusOK, &got)
	require.Equal(t, "Care", got.Name)
	require.Equal(t, adminMailServer{Host: "imap.example.com", Port: 143, TLS: "starttls", Username: "support@acme.example", PasswordSet: true}, got.IMAP)
	require.True(t, got.SMTP.OAuth2TokenSet)
	call(http.MethodPatch, base+"/"+m.ID, `{"imap":{"password":"new-imap-s3cret"}}`, http.StatusOK, &got)
	require.True(t, got.IMAP.PasswordSet)
	call(http.MethodPatch, base+"/"+m.ID, `{"imap":{"password":"","oauth2_token":"imap-oauth-s3cret"}}`, http.StatusOK, &got)
	require.False(t, got.IMAP.PasswordSet)
	require.True(t, got.IMAP.OAuth2TokenSet)
	// Removing the only secret of a login is refused.
	call(http.MethodPatch, base+"/"+m.ID, `{"imap":{"oauth2_token":""}}`, http.StatusBadRequest, nil)

	// Lists page like the other admin lists.
	second := e.createMailbox(t, admin, "sales@acme.example")
	third := e.createMailbox(t, admin, "billing@acme.example")
	ids := pagedIDs(call, base, func(it adminMailbox) string { return it.ID })
	require.Equal(t, []string{m.ID, second.ID, third.ID}, ids)

	// Another tenant sees none of them, and may use the same address.
	other := e.tenant(t, "Bravo")
	var theirs list[adminMailbox]
	require.Equal(t, http.StatusOK, e.do(t, other.APIToken.Token, http.MethodGet, base, "", &theirs))
	require.Empty(t, theirs.Items)
	e.createMailbox(t, other.APIToken.Token, "support@acme.example")

	// Deleted, it is gone, and its address is free again.
	call(http.MethodDelete, base+"/"+second.ID, "", http.StatusNoContent, nil)
	call(http.MethodGet, base+"/"+second.ID, "", http.StatusNotFound, nil)
	call(http.MethodPatch, base+"/"+second.ID, `{"name":"Back"}`, http.StatusNotFound, nil)
	call(http.MethodDelete, base+"/"+second.ID, "", http.StatusNotFound, nil)
	call(http.MethodPost, base, mailboxBody("sales@acme.example", "imap-pass-s3cret"), http.StatusCreated, nil)
	var l list[adminMailbox]
	call(http.MethodGet, base+"?limit=200", "", http.StatusOK, &l)
	require.Len(t, l.Items, 3)

	// Agents neither read nor write mailboxes.
	_, agent := e.userToken(t, b, "agent")
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, base, "", nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, base+"/"+m.ID, "", nil))

	for _, body := range answers.bodies {
		for _, s := range secrets {
			require.NotContains(t, body, s, "an answer shows a secret")
		}
	}

	// The connector hears of each change, secrets included; a deleted
	// mailbox is announced without them.
	want := map[string][]string{
		"mailbox/" + m.ID: {
			"Support imap 993 tls pw=imap-pass-s3cret tok= smtp pw= tok=smtp-token-s3cret",
			"Care imap 143 starttls pw=imap-pass-s3cret tok= smtp pw= tok=smtp-token-s3cret",
			"Care imap 143 starttls pw=new-imap-s3cret tok= smtp pw= tok=smtp-token-s3cret",
			"Care imap 143 starttls pw= tok=imap-oauth-s3cret smtp pw= tok=smtp-token-s3cret",
		},
		"mailbox/" + second.ID: {
			"Support imap 993 tls pw=imap-pass-s3cret tok= smtp pw= tok=smtp-token-s3cret",
			"Support imap 993 tls pw= tok= smtp pw= tok= deleted",
		},
	}
	got2 := readMailboxEvents(t, e, b, want)
	require.Equal(t, want, got2)
}

// readMailboxEvents reads the config topic until every key of want has
// as many mailbox events as want lists, and returns them summarised.
func readMailboxEvents(t *testing.T, e env, b inbox.Bootstrap, want map[string][]string) map[string][]string {
	t.Helper()
	return readConfig(t, e, want, func(key string, ev events.Event) string {
		require.Equal(t, events.TypeMailbox, ev.Type)
		require.Equal(t, b.Tenant.ID.String(), ev.Tenant)
		var x events.Mailbox
		require.NoError(t, ev.Decode(&x))
		openSecrets(t, e, x.SecretPlace(), x.SecretFields())
		require.Equal(t, "mailbox/"+x.ID, key)
		require.Equal(t, b.Tenant.ID.String(), x.TenantID)
		s := fmt.Sprintf("%s imap %d %s pw=%s tok=%s smtp pw=%s tok=%s", x.Name, x.IMAP.Port, x.IMAP.TLS, x.IMAP.Password, x.IMAP.OAuth2Token,
			x.SMTP.Password, x.SMTP.OAuth2Token)
		if x.Deleted {
			s += " deleted"
		}
		return s
	})
}

// TestEmailMessagesKeepTheirEmailFields ingests an email on a mailbox made
// through the API, reads its subject, HTML, attachments and automatic
// flag back, and answers it: the send command answers the customer's
// message, under its subject.
func TestEmailMessagesKeepTheirEmailFields(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	mb := e.createMailbox(t, admin, "support@acme.example")

	send := func(eventID string, m events.MessageReceived) {
		t.Helper()
		m.TenantID, m.Channel, m.ChannelAccountID, m.ReceivedAt = b.Tenant.ID.String(), events.ChannelEmail, mb.ID, time.Now().UTC()
		ev, err := events.NewWithID(eventID, events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
		require.NoError(t, err)
		require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	}
	send("ev-1", events.MessageReceived{ExternalID: "<m1@customer.example>", ThreadKey: "<m1@customer.example>",
		From: events.Party{Identity: "ada@customer.example", Name: "Ada"}, Text: "My order did not arrive.",
		Subject: "Order 42", HTML: "<p>My order did not arrive.</p><img src=\"cid:logo\">",
		Attachments: []events.Attachment{
			{Name: "invoice.pdf", ContentType: "application/pdf", Size: 12345, BlobKey: "tenant/blob/invoice-key"},
			{Name: "logo.png", ContentType: "image/png", Size: 2048, BlobKey: "tenant/blob/logo-key", ContentID: "logo", Inline: true},
			{Name: "video.mp4", ContentType: "video/mp4", Size: 90 << 20, Skipped: "too large"},
		}})
	send("ev-2", events.MessageReceived{ExternalID: "<m2@customer.example>", ThreadKey: "<m1@customer.example>",
		From: events.Party{Identity: "ada@customer.example"}, Text: "I am away until Monday.", Subject: "Re: Order 42", Automatic: true})

	var convs list[struct {
		ID               string `json:"id"`
		ChannelAccountID string `json:"channel_account_id"`
	}]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, admin, http.MethodGet, "/v1/conversations?channel=email", "", &convs)
		return len(convs.Items) == 1
	}, "the email was not stored")
	conv := convs.Items[0]
	require.Equal(t, mb.ID, conv.ChannelAccountID)
	path := "/v1/conversations/" + conv.ID

	type attachment struct {
		Name        string `json:"name"`
		ContentType string `json:"content_type"`
		Size        int64  `json:"size"`
		Inline      bool   `json:"inline"`
		ContentID   string `json:"content_id"`
		Skipped     string `json:"skipped"`
	}
	type emailMessage struct {
		Body        string       `json:"body"`
		Subject     string       `json:"subject"`
		HTML        string       `json:"html"`
		Automatic   bool         `json:"automatic"`
		Attachments []attachment `json:"attachments"`
		Sender      string       `json:"sender"`
		Direction   string       `json:"direction"`
	}
	var msgs list[emailMessage]
	testkit.Eventually(t, 20*time.Second, func() bool {
		r := azCall(t, e, admin, http.MethodGet, path+"/messages", "")
		require.Equal(t, http.StatusOK, r.Status)
		require.NotContains(t, string(r.Body), "blob", "the blob store's keys are not the API's")
		require.NoError(t, json.Unmarshal(r.Body, &msgs))
		return len(msgs.Items) == 2
	}, "the second email was not stored")
	require.Equal(t, emailMessage{Body: "My order did not arrive.", Subject: "Order 42", HTML: "<p>My order did not arrive.</p><img src=\"cid:logo\">",
		Attachments: []attachment{
			{Name: "invoice.pdf", ContentType: "application/pdf", Size: 12345},
			{Name: "logo.png", ContentType: "image/png", Size: 2048, ContentID: "logo", Inline: true},
			{Name: "video.mp4", ContentType: "video/mp4", Size: 90 << 20, Skipped: "too large"},
		}, Sender: "ada@customer.example", Direction: "inbound"}, msgs.Items[0])
	require.Equal(t, emailMessage{Body: "I am away until Monday.", Subject: "Re: Order 42", Automatic: true,
		Sender: "ada@customer.example", Direction: "inbound"}, msgs.Items[1])

	// A reply without a subject answers the latest message under its
	// subject; with one, under that.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/reply", `{"text":"We are looking into it.","cc":["boss@customer.example"]}`, nil))

	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{events.TopicOutbound(events.ChannelEmail)}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	require.NoError(t, err)
	ev, _, err := events.FromMessage(ctx, m)
	require.NoError(t, err)
	require.Equal(t, events.TypeSendMessage, ev.Type)
	var cmd events.SendMessage
	require.NoError(t, ev.Decode(&cmd))
	require.Equal(t, events.SendMessage{MessageID: cmd.MessageID, ConversationID: conv.ID, TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail,
		ChannelAccountID: mb.ID, ThreadKey: "<m1@customer.example>", To: "ada@customer.example", InReplyTo: "<m2@customer.example>",
		Text: "We are looking into it.", Subject: "Re: Order 42", CC: []string{"boss@customer.example"}, AuthorID: cmd.AuthorID}, cmd)

	var all list[emailMessage]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path+"/messages", "", &all))
	require.Len(t, all.Items, 3)
	require.Equal(t, "Re: Order 42", all.Items[2].Subject, "the reply is stored under the subject it was sent with")
	require.Equal(t, "outbound", all.Items[2].Direction)
	require.False(t, strings.HasPrefix(all.Items[2].Subject, "Re: Re:"))
}
