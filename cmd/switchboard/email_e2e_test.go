package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// imapServer is go-imap's in-memory IMAP server on 127.0.0.1, standing in
// for a tenant's mail provider.
func imapServer(t *testing.T) (*imapmemserver.User, int) {
	t.Helper()
	user := imapmemserver.NewUser("support", "imap-secret")
	require.NoError(t, user.Create("INBOX", nil))
	mem := imapmemserver.New()
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return user, ln.Addr().(*net.TCPAddr).Port
}

// smtpSink is an SMTP server on 127.0.0.1 that keeps what it is sent.
type smtpSink struct {
	mu        sync.Mutex
	msgs      [][]byte
	envelopes []smtpEnvelope
}

// smtpEnvelope is one mail as the server received it: its envelope's
// sender and recipients, and its data.
type smtpEnvelope struct {
	From string
	To   []string
	Data []byte
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }

func (s *smtpSink) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

// mails is what the server received, with the envelopes.
func (s *smtpSink) mails() []smtpEnvelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpEnvelope(nil), s.envelopes...)
}

type sinkSession struct {
	sink *smtpSink
	from string
	to   []string
}

func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, b)
	s.sink.envelopes = append(s.sink.envelopes, smtpEnvelope{From: s.from, To: s.to, Data: b})
	s.sink.mu.Unlock()
	return nil
}
func (s *sinkSession) Reset() {
	s.from, s.to = "", nil
}
func (*sinkSession) Logout() error { return nil }

func smtpServer(t *testing.T) (*smtpSink, int) {
	t.Helper()
	sink := &smtpSink{}
	srv := smtp.NewServer(sink)
	srv.Domain = "smtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sink, ln.Addr().(*net.TCPAddr).Port
}

// api calls the HTTP API and decodes the answer into out.
func api(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, url, raw)
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

type conversation struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Channel string `json:"channel"`
}

type message struct {
	ID        string            `json:"id"`
	Direction string            `json:"direction"`
	Body      string            `json:"body"`
	Subject   string            `json:"subject"`
	Automatic bool              `json:"automatic"`
	Metadata  map[string]string `json:"metadata"`
	Delivery  string            `json:"delivery_status"`
}

// TestEmailEndToEnd runs the binary against an IMAP and an SMTP server: an
// admin configures a mailbox through the API, a customer's mail becomes a
// conversation, an agent answers it, the answer leaves by SMTP threaded on
// the customer's mail, and the customer's answer to it, from a client that
// keeps only References, joins the same conversation and re-opens it.
func TestEmailEndToEnd(t *testing.T) {
	imapUser, imapPort := imapServer(t)
	sink, smtpPort := smtpServer(t)
	db := testkit.DatabaseURL(t)
	node := startNode(t, db, t.TempDir(), "")
	base := node.Base()
	b, err := testkit.CreateTenant(binary, db, "Email Co")
	require.NoError(t, err)
	admin := b.APIToken.Token

	// The customer wrote before the mailbox was configured: the first sync
	// catches up.
	first := "Message-ID: <order-1@customer.example>\r\nFrom: Chloé Martin <Chloe@Customer.Example>\r\nTo: support@shop.example\r\n" +
		"Subject: =?utf-8?q?Commande_n=C2=B012?=\r\nDate: Sat, 21 Nov 2026 09:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, où est ma commande ?\r\n"
	_, err = imapUser.Append("INBOX", strings.NewReader(first), &imap.AppendOptions{})
	require.NoError(t, err)

	var mb struct {
		ID   string `json:"id"`
		IMAP struct {
			PasswordSet bool `json:"password_set"`
		} `json:"imap"`
	}
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/mailboxes", admin, map[string]any{
		"name": "Support", "address": "support@shop.example", "display_name": "Shop Support",
		"imap": map[string]any{"host": "127.0.0.1", "port": imapPort, "tls": "none", "username": "support", "password": "imap-secret"},
		"smtp": map[string]any{"host": "127.0.0.1", "port": smtpPort, "tls": "none"},
	}, &mb))
	require.True(t, mb.IMAP.PasswordSet)

	var conv conversation
	testkit.Eventually(t, 30*time.Second, func() bool {
		var list struct {
			Items []conversation `json:"items"`
		}
		api(t, "GET", base+"/v1/conversations?channel=email", admin, nil, &list)
		if len(list.Items) == 1 {
			conv = list.Items[0]
		}
		return len(list.Items) == 1
	}, "the customer's mail becomes a conversation")
	var msgs struct {
		Items []message `json:"items"`
	}
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", admin, nil, &msgs))
	require.Len(t, msgs.Items, 1)
	require.Equal(t, "Commande n°12", msgs.Items[0].Subject)
	require.Contains(t, msgs.Items[0].Body, "où est ma commande")

	// An agent of a queue takes it and answers.
	var queue struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/queues", admin, map[string]any{"name": "Support"}, &queue))
	require.Equal(t, http.StatusCreated, api(t, "POST", base+"/v1/admin/users", admin, map[string]any{
		"email": "ada@shop.example", "name": "Ada", "role": "agent", "queue_ids": []string{queue.ID}, "password": "correct horse battery",
	}, nil))
	var login struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/auth/login", "", map[string]any{"tenant_id": b.Tenant.ID, "email": "ada@shop.example", "password": "correct horse battery"}, &login))
	agent := login.AccessToken
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/assign", agent, nil, nil))
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/route", agent, map[string]any{"queue_id": queue.ID}, nil))
	require.Equal(t, http.StatusOK, api(t, "POST", base+"/v1/conversations/"+conv.ID+"/reply", agent, map[string]any{"text": "Bonjour Chloé,\n\nElle part demain."}, &conv))
	require.Equal(t, "answered", conv.State)

	testkit.Eventually(t, 30*time.Second, func() bool { return len(sink.received()) == 1 }, "the reply leaves by SMTP")
	r, err := mail.CreateReader(bytes.NewReader(sink.received()[0]))
	require.NoError(t, err)
	inReplyTo, err := r.Header.MsgIDList("In-Reply-To")
	require.NoError(t, err)
	require.Equal(t, []string{"order-1@customer.example"}, inReplyTo)
	to, err := r.Header.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, "chloe@customer.example", to[0].Address)
	subject, err := r.Header.Subject()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(subject, "Re: Commande n°12"), subject)
	ourID, err := r.Header.MessageID()
	require.NoError(t, err)

	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 2 && msgs.Items[1].Delivery == "sent"
	}, "the reply is marked sent")

	// The customer answers from another client that keeps only References.
	answer := fmt.Sprintf("Message-ID: <answer-2@other-client.example>\r\nFrom: chloe@customer.example\r\nTo: support@shop.example\r\n"+
		"Subject: Merci\r\nReferences: <order-1@customer.example> <%s>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nMerci !\r\n", ourID)
	_, err = imapUser.Append("INBOX", strings.NewReader(answer), &imap.AppendOptions{})
	require.NoError(t, err)
	testkit.Eventually(t, 30*time.Second, func() bool {
		api(t, "GET", base+"/v1/conversations/"+conv.ID+"/messages", agent, nil, &msgs)
		return len(msgs.Items) == 3
	}, "the customer's answer joins the conversation")
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations/"+conv.ID, agent, nil, &conv))
	require.Equal(t, "new", conv.State, "a customer's answer re-opens an answered conversation")

	var list struct {
		Items []conversation `json:"items"`
	}
	require.Equal(t, http.StatusOK, api(t, "GET", base+"/v1/conversations?channel=email", admin, nil, &list))
	require.Len(t, list.Items, 1, "one conversation for the whole thread")

	require.NotContains(t, node.Logs(), "imap-secret", "the mailbox password is never logged")
}
