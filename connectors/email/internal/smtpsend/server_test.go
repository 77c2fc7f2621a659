package smtpsend

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// received is one message a test server accepted.
type received struct {
	From  string
	Rcpts []string
	Data  []byte
	User  string
	TLS   bool
}

// testServer is go-smtp's server on 127.0.0.1 with a backend that keeps
// what it accepts and can be told to refuse.
type testServer struct {
	host string
	port int

	mu       sync.Mutex
	msgs     []received
	dataErrs []error // returned by the next DATA commands, in order
	rcptErr  error   // returned by every RCPT when set
	users    map[string]string
	tokens   map[string]bool // XOAUTH2 tokens accepted
}

type serverMode int

const (
	plainServer serverMode = iota
	startTLSServer
	implicitTLSServer
)

// startServer starts a server, closed when the test ends. Every session
// must authenticate as user "agent" with password "secret", or with
// XOAUTH2 token "good-token".
func startServer(t *testing.T, mode serverMode) *testServer {
	t.Helper()
	ts := &testServer{users: map[string]string{"agent": "secret"}, tokens: map[string]bool{"good-token": true}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ts: ts, conn: c}, nil
	}))
	s.Domain = "smtp.test"
	s.AllowInsecureAuth = true
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	switch mode {
	case startTLSServer:
		s.TLSConfig = selfSignedTLS(t)
	case implicitTLSServer:
		ln = tls.NewListener(ln, selfSignedTLS(t))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		// Close the listener too: the server only knows it once Serve
		// has started, which may be after a short test ended.
		_ = s.Close()
		_ = ln.Close()
		<-done
	})
	addr := ln.Addr().(*net.TCPAddr)
	ts.host, ts.port = "127.0.0.1", addr.Port
	return ts
}

// server returns the settings that reach ts with tlsMode and password
// authentication.
func (ts *testServer) server(tlsMode string) events.MailServer {
	return events.MailServer{Host: ts.host, Port: ts.port, TLS: tlsMode, Username: "agent", Password: "secret", InsecureSkipVerify: tlsMode != events.TLSNone}
}

func (ts *testServer) failNextData(errs ...error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.dataErrs = append(ts.dataErrs, errs...)
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

type session struct {
	ts    *testServer
	conn  *smtp.Conn
	user  string
	from  string
	rcpts []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, "XOAUTH2"} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			s.ts.mu.Lock()
			defer s.ts.mu.Unlock()
			if pw, ok := s.ts.users[username]; !ok || pw != password {
				return smtp.ErrAuthFailed
			}
			s.user = username
			return nil
		}), nil
	case "XOAUTH2":
		return &xoauth2Server{s: s}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if s.ts.rcptErr != nil {
		return s.ts.rcptErr
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if len(s.ts.dataErrs) > 0 {
		err := s.ts.dataErrs[0]
		s.ts.dataErrs = s.ts.dataErrs[1:]
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.ts.msgs = append(s.ts.msgs, received{From: s.from, Rcpts: s.rcpts, Data: b, User: s.user, TLS: isTLS})
	return nil
}

func (s *session) Reset()        { s.from, s.rcpts = "", nil }
func (s *session) Logout() error { return nil }

// xoauth2Server checks XOAUTH2's initial response; on failure it sends the
// JSON challenge and then fails, as Gmail does.
type xoauth2Server struct {
	s      *session
	failed bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, smtp.ErrAuthFailed
	}
	if response == nil {
		return []byte{}, false, nil
	}
	var user, token string
	for _, kv := range bytes.Split(response, []byte{1}) {
		k, v, _ := strings.Cut(string(kv), "=")
		switch k {
		case "user":
			user = v
		case "auth":
			token = strings.TrimPrefix(v, "Bearer ")
		}
	}
	x.s.ts.mu.Lock()
	ok := x.s.ts.tokens[token]
	x.s.ts.mu.Unlock()
	if !ok {
		x.failed = true
		return []byte(`{"status":"401","schemes":"bearer"}`), false, nil
	}
	x.s.user = user
	return nil, true, nil
}

// selfSignedTLS makes a server certificate for 127.0.0.1.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtp.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// smtpErr is a reply a test server sends.
func smtpErr(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: msg}
}

// smtpErrValue is a reply with an enhanced code such as "5.1.1", or none.
func smtpErrValue(code int, enhanced, msg string) smtp.SMTPError {
	e := smtp.SMTPError{Code: code, EnhancedCode: smtp.NoEnhancedCode, Message: msg}
	if enhanced != "" {
		var ec smtp.EnhancedCode
		for i, p := range strings.SplitN(enhanced, ".", 3) {
			ec[i], _ = strconv.Atoi(p)
		}
		e.EnhancedCode = ec
	}
	return e
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
