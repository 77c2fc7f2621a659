package imapsync

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const (
	testUser     = "agent@example.com"
	testPassword = "pa55-w0rd-never-logged"
	testToken    = "ya29.token-never-logged"
)

// serverOptions shape the in-process IMAP server.
type serverOptions struct {
	// caps are the advertised capabilities; nil means IMAP4rev1 only
	// (with IDLE, which imapserver always offers with IMAP4rev1).
	caps imap.CapSet
	// tls is "none", "starttls" or "tls".
	tls string
}

// testServer is go-imap's in-memory server on 127.0.0.1.
type testServer struct {
	user *imapmemserver.User
	host string
	port int
	tls  string
	seq  int // numbers the appended mails
}

func newServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	user := imapmemserver.NewUser(testUser, testPassword)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatalf("create INBOX: %v", err)
	}
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{user: user}, nil, nil
		},
		Caps:         o.caps,
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0), // dropped connections are expected here
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	switch o.tls {
	case events.TLSStartTLS:
		opts.TLSConfig = serverTLS(t)
	case events.TLSImplicit:
		ln = tls.NewListener(ln, serverTLS(t))
	}
	srv := imapserver.New(opts)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	mode := o.tls
	if mode == "" {
		mode = events.TLSNone
	}
	return &testServer{user: user, host: "127.0.0.1", port: addr.Port, tls: mode}
}

// mailbox is a mailbox reading the server's INBOX with the password.
func (ts *testServer) mailbox() events.Mailbox {
	return events.Mailbox{
		ID:       "mbx-" + testkit.RandomName(""),
		TenantID: "tenant-1",
		Name:     "Support",
		Address:  "support@example.com",
		IMAP: events.MailServer{
			Host: ts.host, Port: ts.port, TLS: ts.tls,
			Username: testUser, Password: testPassword,
			InsecureSkipVerify: true,
		},
	}
}

// mail returns the i-th test message.
func mail(i int, pad int) []byte {
	return fmt.Appendf(nil, "From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\nSubject: Question %d\r\nMessage-ID: <%d@example.org>\r\n\r\nHello %d%s\r\n",
		i, i, i, i, i, strings.Repeat(".", pad))
}

// add appends n small mails to folder and returns their bodies.
func (ts *testServer) add(t *testing.T, folder string, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for range n {
		ts.seq++
		out = append(out, ts.addMail(t, folder, mail(ts.seq, 0)))
	}
	return out
}

func (ts *testServer) addMail(t *testing.T, folder string, body []byte) []byte {
	t.Helper()
	if _, err := ts.user.Append(folder, bytes.NewReader(body), &imap.AppendOptions{}); err != nil {
		t.Fatalf("append to %s: %v", folder, err)
	}
	return body
}

func (ts *testServer) status(t *testing.T, folder string) *imap.StatusData {
	t.Helper()
	st, err := ts.user.Status(folder, &imap.StatusOptions{NumMessages: true, NumUnseen: true, UIDValidity: true})
	if err != nil {
		t.Fatalf("status %s: %v", folder, err)
	}
	return st
}

// session is imapmemserver's session with XOAUTH2 added, so that both ways
// of logging in can be tested.
type session struct {
	*imapmemserver.UserSession // nil until authenticated
	user                       *imapmemserver.User
}

func (s *session) Login(username, password string) error {
	if err := s.user.Login(username, password); err != nil {
		return err
	}
	s.UserSession = imapmemserver.NewUserSession(s.user)
	return nil
}

func (s *session) AuthenticateMechanisms() []string { return []string{"PLAIN", "XOAUTH2"} }

func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(_, username, password string) error { return s.Login(username, password) }), nil
	case "XOAUTH2":
		return &xoauth2Server{s: s}, nil
	}
	return nil, imapserver.ErrAuthFailed
}

// xoauth2Server checks "user=U^Aauth=Bearer T^A^A" and, on failure, sends
// the JSON challenge Google sends before failing.
type xoauth2Server struct {
	s      *session
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, imapserver.ErrAuthFailed
	}
	if resp == nil {
		return []byte{}, false, nil
	}
	if string(resp) == "user="+testUser+"\x01auth=Bearer "+testToken+"\x01\x01" {
		x.s.UserSession = imapmemserver.NewUserSession(x.s.user)
		return nil, true, nil
	}
	x.failed = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
}

// serverTLS is a self-signed certificate for 127.0.0.1.
func serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "imap.test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// recorder is a Deliver that records what it accepted. fail, when set, may
// refuse a message: call counts the calls for that UID, from 1.
type recorder struct {
	mu    sync.Mutex
	got   []Raw
	calls map[uint32]int
	fail  func(raw Raw, call int) error
	after func(n int) // called after the n-th accepted message
}

func newRecorder() *recorder { return &recorder{calls: map[uint32]int{}} }

func (r *recorder) deliver(_ context.Context, raw Raw) error {
	r.mu.Lock()
	r.calls[raw.UID]++
	call := r.calls[raw.UID]
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(raw, call); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.got = append(r.got, raw)
	n := len(r.got)
	after := r.after
	r.mu.Unlock()
	if after != nil {
		after(n)
	}
	return nil
}

func (r *recorder) raws() []Raw {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Raw(nil), r.got...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

func (r *recorder) uids() []uint32 {
	var out []uint32
	for _, raw := range r.raws() {
		out = append(out, raw.UID)
	}
	return out
}

// seq returns from, from+1, ..., to.
func seq(from, to uint32) []uint32 {
	var out []uint32
	for u := from; u <= to; u++ {
		out = append(out, u)
	}
	return out
}

// lockedBuffer collects log output written from the syncer's goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	return b.out.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is what every test syncer runs on.
type env struct {
	t    *testing.T
	pool *pgxpool.Pool
	cp   *Checkpoints
	logs *lockedBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := testkit.Postgres(t)
	if err := Migrate(testkit.Context(t), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return &env{t: t, pool: pool, cp: NewCheckpoints(pool), logs: &lockedBuffer{out: t.Output()}}
}

// fastConfig retries quickly so that tests do not wait on backoff.
func fastConfig() Config {
	return Config{
		PollInterval: time.Hour, // only ForcePoll tests poll
		Retry:        retry.Policy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2},
	}
}

// start runs a syncer until the returned stop is called or the test ends.
func (e *env) start(cfg Config, mb events.Mailbox, rec *recorder, m Metrics, onIdle func()) (stop func()) {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(cfg, mb, rec.deliver, e.cp, log, m)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	s.onIdle = onIdle
	return testkit.Run(e.t, s)
}

// checkpoint returns the stored checkpoint, failing the test when absent.
func (e *env) checkpoint(mailboxID string) Checkpoint {
	e.t.Helper()
	cp, ok, err := e.cp.Get(context.Background(), mailboxID)
	if err != nil || !ok {
		e.t.Fatalf("checkpoint of %s: ok=%v err=%v", mailboxID, ok, err)
	}
	return cp
}

// waitCheckpoint waits until the checkpoint reaches uid.
func (e *env) waitCheckpoint(mailboxID string, validity, uid uint32) {
	e.t.Helper()
	testkit.Eventually(e.t, 30*time.Second, func() bool {
		cp, ok, err := e.cp.Get(context.Background(), mailboxID)
		return err == nil && ok && cp.UIDValidity == validity && cp.LastUID == uid
	}, "checkpoint of %s never reached UIDVALIDITY %d UID %d", mailboxID, validity, uid)
}

// proxy forwards TCP connections to target and can drop them all at once.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.drop() })
	go p.serve()
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, u); u.Close(); c.Close() }()
	}
}

// drop closes every connection made so far.
func (p *proxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }
