package smtpsend

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// SendError is the error of a submission that failed: whether trying again
// later may succeed, and what the server said.
type SendError struct {
	// Temporary is true for a 4xx reply, a network failure or a timeout,
	// false for a 5xx reply and for settings that cannot work (unknown TLS
	// mode, certificate refused, no usable AUTH mechanism).
	Temporary bool
	// Code is the SMTP reply code, 0 when the server gave none.
	Code int
	// Reply is the server's reply ("550 5.1.1 No such user"), or a
	// description of the failure when there was no reply. It is what the
	// agent sees of a failed delivery.
	Reply string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *SendError) Error() string {
	kind := "permanent"
	if e.Temporary {
		kind = "temporary"
	}
	return fmt.Sprintf("smtp %s failure: %s", kind, e.Reply)
}

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a *SendError that retrying cannot fix.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && !se.Temporary
}

// Transport submits a composed message through a mailbox's SMTP server.
// *Sender is the real one.
type Transport interface {
	// Send submits msg in one SMTP transaction. Its failures are
	// *SendError, except when ctx ends first.
	Send(ctx context.Context, server events.MailServer, msg Outgoing) error
}

// Sender submits messages over SMTP with go-smtp's client, one connection
// per message. The zero value is usable; its zero durations take the
// defaults below.
type Sender struct {
	// DialTimeout bounds the TCP connection and the TLS handshake of
	// implicit TLS. Default 30 s.
	DialTimeout time.Duration
	// CommandTimeout bounds the wait for each reply but the last. Default
	// 1 min (RFC 5321 section 4.5.3.2 suggests 5 min; a submission server
	// that takes a minute to answer a command is down).
	CommandTimeout time.Duration
	// SubmissionTimeout bounds the wait for the reply to the end of the
	// message, during which the server may scan it. Default 5 min.
	SubmissionTimeout time.Duration
	// MessageTimeout bounds the whole exchange of one message, the
	// greeting and the EHLO before STARTTLS included (go-smtp applies its
	// own five minutes to those). Default 10 min.
	MessageTimeout time.Duration
	// LocalName is the name given in EHLO; the domain of the envelope
	// sender when empty.
	LocalName string
	// Logger receives one debug line per message; slog.Default() when nil.
	Logger *slog.Logger
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Send connects to server, secures the connection as server.TLS says,
// authenticates when credentials are set (XOAUTH2 with OAuth2Token, else
// PLAIN, else LOGIN, with Username and Password), and submits msg to all
// its recipients in one transaction (a recipient refused fails the whole
// message). With TLS none the credentials cross the network in clear: that
// mode is for relays on a trusted network. When ctx ends, the connection is
// closed and ctx's error returned.
func (s *Sender) Send(ctx context.Context, server events.MailServer, msg Outgoing) error {
	if len(msg.Recipients) == 0 {
		return &SendError{Reply: "the message has no recipients", Err: ErrCompose}
	}
	addr := net.JoinHostPort(server.Host, strconv.Itoa(server.Port))
	tlsConfig := &tls.Config{
		ServerName:         server.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: server.InsecureSkipVerify, //nolint:gosec // test servers only, set per mailbox
	}
	dialer := &net.Dialer{Timeout: durationOr(s.DialTimeout, 30*time.Second)}

	var conn net.Conn
	var err error
	switch server.TLS {
	case events.TLSNone, events.TLSStartTLS:
		conn, err = dialer.DialContext(ctx, "tcp", addr)
	case events.TLSImplicit:
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsConfig}).DialContext(ctx, "tcp", addr)
	default:
		return &SendError{Reply: fmt.Sprintf("unknown SMTP TLS mode %q (want none, starttls or tls)", server.TLS)}
	}
	if err != nil {
		return classify(ctx, fmt.Sprintf("connect to %s", addr), err)
	}
	// go-smtp has no contexts: closing the connection when ctx ends or
	// the exchange takes too long unblocks whatever read or write is
	// under way. The error is then ctx's when ctx ended, else temporary.
	limited, cancel := context.WithTimeout(ctx, durationOr(s.MessageTimeout, 10*time.Minute))
	defer cancel()
	stop := context.AfterFunc(limited, func() { _ = conn.Close() })
	defer stop()

	var c *smtp.Client
	if server.TLS == events.TLSStartTLS {
		// NewClientStartTLS says EHLO, refuses to go on when the server
		// does not offer STARTTLS (the credentials and the message would
		// cross the network in clear, which the settings forbid), and
		// upgrades the connection; EHLO is said again below, over TLS.
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) && strings.Contains(err.Error(), "doesn't support STARTTLS") {
				return &SendError{Reply: fmt.Sprintf("%s does not offer STARTTLS", addr), Err: err}
			}
			return classify(ctx, "starttls", err)
		}
	} else {
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout = durationOr(s.CommandTimeout, time.Minute)
	c.SubmissionTimeout = durationOr(s.SubmissionTimeout, 5*time.Minute)
	local := s.LocalName
	if local == "" {
		local = msg.From[strings.LastIndexByte(msg.From, '@')+1:]
	}
	if err := c.Hello(local); err != nil {
		return classify(ctx, "hello", err)
	}
	if a, err := saslClient(c, server, msg.From); err != nil {
		return err
	} else if a != nil {
		if err := c.Auth(a); err != nil {
			return classify(ctx, "authenticate", err)
		}
	}
	if err := c.SendMail(msg.From, msg.Recipients, bytes.NewReader(msg.Raw)); err != nil {
		return classify(ctx, "submit", err)
	}
	// The message is accepted once the reply to its final dot is 250: a
	// failing QUIT changes nothing.
	if err := c.Quit(); err != nil {
		s.logger().DebugContext(ctx, "smtp quit failed after the message was accepted", "message_id", msg.MessageID, "error", err)
	}
	s.logger().DebugContext(ctx, "smtp message accepted", "message_id", msg.MessageID, "server", addr, "recipients", len(msg.Recipients))
	return nil
}

func (s *Sender) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// saslClient chooses the mechanism, or none when no credentials are set.
func saslClient(c *smtp.Client, server events.MailServer, from string) (sasl.Client, error) {
	user := server.Username
	if user == "" {
		user = from
	}
	switch {
	case server.OAuth2Token != "":
		if !c.SupportsAuth("XOAUTH2") {
			return nil, &SendError{Reply: "the SMTP server does not offer AUTH XOAUTH2"}
		}
		return &xoauth2Client{user: user, token: server.OAuth2Token}, nil
	case server.Username != "" || server.Password != "":
		switch {
		case c.SupportsAuth(sasl.Plain):
			return sasl.NewPlainClient("", user, server.Password), nil
		case c.SupportsAuth(sasl.Login):
			return sasl.NewLoginClient(user, server.Password), nil
		}
		return nil, &SendError{Reply: "the SMTP server offers neither AUTH PLAIN nor AUTH LOGIN"}
	}
	return nil, nil
}

// xoauth2Client is the XOAUTH2 SASL mechanism of Google and Microsoft
// (https://developers.google.com/gmail/imap/xoauth2-protocol), which
// go-sasl does not have.
type xoauth2Client struct {
	user, token string
}

// Start sends the initial response.
func (x *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the only challenge, an error description in JSON, with an
// empty line, after which the server sends its final error reply.
func (x *xoauth2Client) Next([]byte) ([]byte, error) {
	return []byte{}, nil
}

// classify turns a failure of step into a *SendError, or returns ctx's
// error when ctx ended (the connection was closed under the client).
func classify(ctx context.Context, step string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("smtp %s: %w", step, cerr)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return &SendError{
			Temporary: se.Code/100 == 4,
			Code:      se.Code,
			Reply:     replyText(se),
			Err:       fmt.Errorf("smtp %s: %w", step, err),
		}
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) {
		// The certificate will not change by itself; the mailbox's settings
		// must.
		return &SendError{Reply: fmt.Sprintf("%s: %v", step, err), Err: err}
	}
	// Network errors, timeouts, a connection dropped mid-transaction and
	// whatever else has no SMTP reply: worth another try.
	return &SendError{Temporary: true, Reply: fmt.Sprintf("%s: %v", step, err), Err: fmt.Errorf("smtp %s: %w", step, err)}
}

// replyText formats a server reply as it was sent: code, enhanced code when
// there is one, text.
func replyText(se *smtp.SMTPError) string {
	s := strconv.Itoa(se.Code)
	if ec := se.EnhancedCode; ec[0] > 0 {
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if se.Message != "" {
		s += " " + se.Message
	}
	return s
}
