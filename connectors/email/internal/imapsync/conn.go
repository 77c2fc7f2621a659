package imapsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// dial connects and authenticates to the mailbox's IMAP server. handler
// receives the server's unilateral data for the life of the connection.
// Errors name the server, never the credentials.
func dial(ctx context.Context, srv events.MailServer, timeout time.Duration, handler *imapclient.UnilateralDataHandler) (*imapclient.Client, error) {
	addr := net.JoinHostPort(srv.Host, strconv.Itoa(srv.Port))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	opts := &imapclient.Options{
		TLSConfig: &tls.Config{
			ServerName: srv.Host,
			// An explicit per-mailbox setting, for test servers only.
			InsecureSkipVerify: srv.InsecureSkipVerify,
			MinVersion:         tls.VersionTLS12,
		},
		UnilateralDataHandler: handler,
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to IMAP server %s: %w", addr, err)
	}
	// The handshakes below take no context: closing the connection is what
	// bounds them by the dial timeout and by the caller's ctx.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("%s IMAP server %s: %w", what, addr, err)
	}

	var c *imapclient.Client
	switch srv.TLS {
	case events.TLSImplicit:
		tc := tls.Client(conn, opts.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			conn.Close()
			return nil, fail("TLS handshake with", err)
		}
		c = imapclient.New(tc, opts)
	case events.TLSStartTLS:
		// NewStartTLS refuses a PREAUTH greeting on the clear connection
		// (RFC 9051 7.1.4), so nothing is sent before TLS is up.
		if c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			stop()
			return nil, fail("STARTTLS with", err)
		}
	case events.TLSNone, "":
		c = imapclient.New(conn, opts)
	default:
		stop()
		conn.Close()
		return nil, fmt.Errorf("IMAP server %s: unknown TLS mode %q", addr, srv.TLS)
	}
	if err := c.WaitGreeting(); err != nil {
		stop()
		c.Close()
		return nil, fail("greeting of", err)
	}
	if err := authenticate(c, srv); err != nil {
		stop()
		c.Close()
		return nil, fail(fmt.Sprintf("authenticate as %q to", srv.Username), err)
	}
	if !stop() { // ctx ended just now and closed the connection
		c.Close()
		return nil, fail("connect to", errors.New("connection closed"))
	}
	return c, nil
}

// authenticate logs in with XOAUTH2 when the mailbox has a token, with
// LOGIN otherwise. A server that greeted with PREAUTH needs neither.
func authenticate(c *imapclient.Client, srv events.MailServer) error {
	if c.State() == imap.ConnStateAuthenticated {
		return nil
	}
	if srv.OAuth2Token != "" {
		return c.Authenticate(&xoauth2Client{username: srv.Username, token: srv.OAuth2Token})
	}
	if srv.Password == "" {
		return errors.New("the mailbox has neither a password nor an OAuth2 token")
	}
	return c.Login(srv.Username, srv.Password).Wait()
}

// xoauth2Client is the SASL XOAUTH2 mechanism of Google and Microsoft
// (https://developers.google.com/gmail/imap/xoauth2-protocol), which
// go-sasl does not provide. (OAUTHBEARER, RFC 7628, is the standard one,
// but XOAUTH2 is what those providers document for IMAP.)
type xoauth2Client struct {
	username, token string
}

// Start returns the initial response "user=U^Aauth=Bearer T^A^A".
func (x *xoauth2Client) Start() (mech string, ir []byte, err error) {
	return "XOAUTH2", []byte("user=" + x.username + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

// Next answers the server's only possible challenge, a JSON error report
// sent before the failure, with the empty response the mechanism requires;
// the server then fails the command.
func (x *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	return []byte{}, nil
}

var _ sasl.Client = (*xoauth2Client)(nil)
