package email

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/email/internal/imapsync"
	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// wait bounds every wait for an asynchronous effect; generous, since the
// machine is shared. No test measures time with it.
const wait = 30 * time.Second

const (
	testTenant   = "6d0f3b1a-2c4e-4f8a-9b7d-1e5c3a9f0b42"
	testAddress  = "support@example.com"
	imapPassword = "imap-secret"
)

// env is a running connector on kfake and a fresh PostgreSQL database, with
// its output topics followed from their start.
type env struct {
	t        *testing.T
	brokers  []string
	producer *bus.Producer
	pool     *pgxpool.Pool
	conn     *Connector
	// keys seal the mailboxes announced, as the inbox's do.
	keys *seal.Keyring

	inbound, delivery, dlq *topicLog
}

// startConnector starts a connector with quick retries, and waits until it
// has read the config topic and its send consumer runs; opts change its
// settings first.
func startConnector(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	pool := testkit.Postgres(t)

	cfg := Config{
		IMAP: imapsync.Config{
			// Only IDLE may bring new mail: a poll would hide its failure.
			PollInterval: time.Hour,
			DialTimeout:  10 * time.Second,
			Retry:        retry.Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2},
		},
		MaxAttachmentBytes: 1 << 20,
		SendAttempts:       2,
		SMTPTimeout:        10 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	blobs, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = blobs.Close() })
	keys := testkit.Keyring(t)
	c, err := New(testkit.Context(t), cfg, Deps{Pool: pool, Bus: testkit.BusConfig(brokers), Brokers: brokers, Producer: p, Blobs: blobs, Telemetry: tel, Secrets: keys})
	require.NoError(t, err)
	// Lost locks are noticed within the tests' patience.
	c.ownershipCheck = 200 * time.Millisecond
	testkit.Run(t, c)
	testkit.Eventually(t, wait, func() bool { return c.Ready(context.Background()) == nil }, "the connector never became ready")
	return &env{
		t: t, brokers: brokers, producer: p, pool: pool, conn: c, keys: keys,
		inbound:  follow(t, brokers, events.TopicInbound),
		delivery: follow(t, brokers, events.TopicDelivery),
		dlq:      follow(t, brokers, events.TopicDLQ),
	}
}

// publishMailbox announces mb on the config topic, as the inbox does:
// its secrets sealed.
func (e *env) publishMailbox(mb events.Mailbox) {
	e.t.Helper()
	require.NoError(e.t, e.keys.SealFields(mb.SecretPlace(), mb.SecretFields()))
	require.NoError(e.t, e.producer.Publish(context.Background(), events.TopicConfig, events.ConfigKey("mailbox", mb.ID), mailboxEvent(e.t, mb)))
}

// publishSend publishes a send command, as the inbox does.
func (e *env) publishSend(cmd events.SendMessage) {
	e.t.Helper()
	ev, err := events.New(events.TypeSendMessage, "switchboard/inbox", cmd.TenantID, time.Now(), cmd)
	require.NoError(e.t, err)
	key := events.ConversationKey(cmd.TenantID, events.ChannelEmail, cmd.ChannelAccountID, cmd.ThreadKey)
	require.NoError(e.t, e.producer.Publish(context.Background(), events.TopicOutbound(events.ChannelEmail), key, ev))
}

// inboundMsg is one record of sb.inbound.v1, decoded.
type inboundMsg struct {
	Key   string
	Event events.Event
	Msg   events.MessageReceived
}

// inboundOf returns the inbound messages of mailbox mb whose Message-ID is
// messageID, in the order they were published.
func (e *env) inboundOf(mailboxID, messageID string) []inboundMsg {
	e.t.Helper()
	var out []inboundMsg
	for _, r := range e.inbound.all() {
		ev, _, err := events.FromMessage(context.Background(), r)
		require.NoError(e.t, err)
		var m events.MessageReceived
		require.NoError(e.t, ev.Decode(&m))
		if m.ChannelAccountID == mailboxID && m.Metadata["message_id"] == messageID {
			out = append(out, inboundMsg{Key: string(r.Key), Event: ev, Msg: m})
		}
	}
	return out
}

// received waits for the n-th inbound message of messageID and returns it.
func (e *env) received(mailboxID, messageID string, n int) inboundMsg {
	e.t.Helper()
	testkit.Eventually(e.t, wait, func() bool { return len(e.inboundOf(mailboxID, messageID)) >= n }, "mail %s of mailbox %s was not published %d time(s)", messageID, mailboxID, n)
	return e.inboundOf(mailboxID, messageID)[n-1]
}

// deliveries returns the delivery statuses published for messageID.
func (e *env) deliveries(messageID string) []events.Delivery {
	e.t.Helper()
	var out []events.Delivery
	for _, r := range e.delivery.all() {
		ev, _, err := events.FromMessage(context.Background(), r)
		require.NoError(e.t, err)
		var d events.Delivery
		require.NoError(e.t, ev.Decode(&d))
		if d.MessageID == messageID {
			require.Equal(e.t, messageID, string(r.Key), "a delivery is keyed by its message id")
			out = append(out, d)
		}
	}
	return out
}

// waitDeliveries waits until n statuses of messageID were published.
func (e *env) waitDeliveries(messageID string, n int) []events.Delivery {
	e.t.Helper()
	testkit.Eventually(e.t, wait, func() bool { return len(e.deliveries(messageID)) >= n }, "%d delivery statuses of %s never published", n, messageID)
	return e.deliveries(messageID)
}

// topicLog collects every record of a topic, all partitions, from the
// first offset, without a consumer group (which would take a rebalance to
// join).
type topicLog struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func follow(t *testing.T, brokers []string, topic string) *topicLog {
	t.Helper()
	conn, err := testkit.KafkaDialer(t, brokers).Dial("tcp", brokers[0])
	require.NoError(t, err)
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	l := &topicLog{}
	for _, p := range parts {
		r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return // ctx ended
				}
				l.mu.Lock()
				l.msgs = append(l.msgs, m)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *topicLog) all() []kafka.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]kafka.Message(nil), l.msgs...)
}

// header returns the value of a record header.
func header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// imapServer is go-imap's in-memory server on 127.0.0.1, with users added
// by the test, counting connections and sessions in IDLE.
type imapServer struct {
	host string
	port int
	mem  *imapmemserver.Server

	mu    sync.Mutex
	users map[string]*imapmemserver.User

	open   atomic.Int64 // connections
	idling atomic.Int64 // sessions in IDLE now
}

func startIMAP(t *testing.T) *imapServer {
	t.Helper()
	s := &imapServer{mem: imapmemserver.New(), users: map[string]*imapmemserver.User{}}
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			s.open.Add(1)
			return &imapSession{srv: s}, nil, nil
		},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0), // dropped connections are expected
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.host, s.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return s
}

// user creates an IMAP user with an INBOX.
func (s *imapServer) user(t *testing.T, name string) *imapmemserver.User {
	t.Helper()
	u := imapmemserver.NewUser(name, imapPassword)
	require.NoError(t, u.Create("INBOX", nil))
	s.mu.Lock()
	s.users[name] = u
	s.mu.Unlock()
	return u
}

func appendMail(t *testing.T, u *imapmemserver.User, folder string, raw []byte) {
	t.Helper()
	_, err := u.Append(folder, bytes.NewReader(raw), &imap.AppendOptions{})
	require.NoError(t, err)
}

// mailbox is a mailbox reading user's folder on s (INBOX when empty),
// answering through smtpSrv when not nil.
func (s *imapServer) mailbox(user, folder string, smtpSrv *smtpServer) events.Mailbox {
	mb := newMailbox(s.host, s.port, user, imapPassword, folder)
	if smtpSrv != nil {
		mb.SMTP = events.MailServer{Host: smtpSrv.host, Port: smtpSrv.port, TLS: events.TLSNone}
	}
	return mb
}

// newMailbox is a mailbox of the test tenant reading an IMAP server without
// TLS.
func newMailbox(host string, port int, user, password, folder string) events.Mailbox {
	return events.Mailbox{
		ID: uuid.NewString(), TenantID: testTenant, Name: "Support", Address: testAddress, DisplayName: "Example Support",
		IMAP:   events.MailServer{Host: host, Port: port, TLS: events.TLSNone, Username: user, Password: password},
		Folder: folder,
	}
}

// imapSession is imapmemserver's session over the server's users, telling
// the server when it idles and closes.
type imapSession struct {
	*imapmemserver.UserSession // nil until logged in
	srv                        *imapServer
}

func (s *imapSession) Login(username, password string) error {
	s.srv.mu.Lock()
	u := s.srv.users[username]
	s.srv.mu.Unlock()
	if u == nil {
		return imapserver.ErrAuthFailed
	}
	if err := u.Login(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(u)
	return nil
}

// Idle reports what the folder's tracker queued, then polls it until the
// client ends the IDLE. imapmemserver's own Idle only reports updates
// queued after it started, so mail appended between the client's last
// command and its IDLE would wait for the next command; a real server
// (RFC 2177) reports it at once.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	s.srv.idling.Add(1)
	defer s.srv.idling.Add(-1)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

func (s *imapSession) Close() error {
	s.srv.open.Add(-1)
	if s.UserSession == nil {
		return nil
	}
	return s.UserSession.Close()
}

// smtpServer is go-smtp's server on 127.0.0.1, keeping what it accepts; it
// refuses every message while refuse is set.
type smtpServer struct {
	host string
	port int

	mu     sync.Mutex
	msgs   [][]byte
	refuse error
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{srv: s}, nil }))
	srv.Domain = "smtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); _ = ln.Close(); <-done })
	s.host, s.port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return s
}

func (s *smtpServer) messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

func (s *smtpServer) setRefuse(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = err
}

type smtpSession struct{ srv *smtpServer }

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Reset()                               {}
func (s *smtpSession) Logout() error                        { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.refuse != nil {
		return s.srv.refuse
	}
	s.srv.msgs = append(s.srv.msgs, b)
	return nil
}

// rawMail is a test message: its header fields in order, then its body, with
// CRLF line ends. A Date is added when absent, so that the same mail
// offered twice is the same mail.
func rawMail(headers []string, body string) []byte {
	var b strings.Builder
	hasDate := false
	for _, h := range headers {
		hasDate = hasDate || strings.HasPrefix(strings.ToLower(h), "date:")
		b.WriteString(h + "\r\n")
	}
	if !hasDate && len(headers) > 0 {
		b.WriteString("Date: Tue, 10 Mar 2026 09:00:00 +0000\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n"))
	return []byte(b.String())
}

// simpleMail is a plain-text mail from a customer.
func simpleMail(messageID, from, subject string, extra ...string) []byte {
	h := append([]string{"From: " + from, "To: " + testAddress, "Subject: " + subject, "Message-ID: <" + messageID + ">"}, extra...)
	return rawMail(h, fmt.Sprintf("Mail %s.\n", messageID))
}

// uidValidity returns the UIDVALIDITY of a user's folder.
func (s *imapServer) uidValidity(t *testing.T, user, folder string) uint32 {
	t.Helper()
	s.mu.Lock()
	u := s.users[user]
	s.mu.Unlock()
	st, err := u.Status(folder, &imap.StatusOptions{UIDValidity: true})
	require.NoError(t, err)
	return st.UIDValidity
}
