package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrResponseTooLarge is returned when reading a response body past
// -egress.max-response-bytes.
var ErrResponseTooLarge = errors.New("response body exceeds the size limit")

// ErrTooManyRedirects is returned when a tenant endpoint redirects more
// often than -egress.max-redirects allows (with the default 0: at all).
var ErrTooManyRedirects = errors.New("redirect not followed")

// Permanent reports whether err is a refusal that retrying cannot fix, the
// tenant's misconfiguration rather than a network failure: a forbidden
// destination address, an unacceptable URL, a redirect not followed, or a
// response larger than the limit. Timeouts, refused connections and other
// network errors are not permanent.
func Permanent(err error) bool {
	var ue *URLError
	return errors.Is(err, ErrForbiddenAddress) || errors.As(err, &ue) ||
		errors.Is(err, ErrTooManyRedirects) || errors.Is(err, ErrResponseTooLarge)
}

// Deps are what the client runs on; the zero value is the production
// setting.
type Deps struct {
	// Resolver resolves host names at connect time; nil means the system's.
	// Tests inject one that asks their own DNS server.
	Resolver *net.Resolver
	// RootCAs verifies servers' certificates; nil means the system's roots.
	RootCAs *x509.CertPool
}

// Client calls tenant-entered URLs. It is safe for concurrent use.
type Client struct {
	cfg       Config
	policy    *Policy
	dialer    *net.Dialer
	transport *http.Transport
	http      *http.Client
}

// New builds a client. cfg should have passed Validate; New refuses
// settings that would leave a call unbounded.
func New(cfg Config, d Deps) (*Client, error) {
	if err := cfg.Validate(""); err != nil {
		return nil, fmt.Errorf("egress client: %w", err)
	}
	policy, err := NewPolicy(cfg)
	if err != nil {
		return nil, fmt.Errorf("egress client: %w", err)
	}
	c := &Client{cfg: cfg, policy: policy}
	c.dialer = &net.Dialer{
		Timeout:        cfg.ConnectTimeout,
		KeepAlive:      30 * time.Second,
		Resolver:       d.Resolver,
		ControlContext: c.control,
	}
	c.transport = &http.Transport{
		Proxy:                  nil, // a proxy would hide the destination from the address check
		DialContext:            c.dial,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: d.RootCAs},
		TLSHandshakeTimeout:    cfg.ConnectTimeout,
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
	}
	c.http = &http.Client{
		Transport:     c.transport,
		Timeout:       cfg.RequestTimeout,
		CheckRedirect: c.checkRedirect,
	}
	return c, nil
}

// Policy returns the client's policy, for checking URLs before saving them.
func (c *Client) Policy() *Policy { return c.policy }

// ValidateURL is Policy().ValidateURL.
func (c *Client) ValidateURL(raw string) error { return c.policy.ValidateURL(raw) }

// Do sends req after checking its URL, and returns the response with a body
// that fails with ErrResponseTooLarge when read past the limit. Errors are
// those of http.Client.Do; a refused destination matches
// ErrForbiddenAddress (see Permanent). The caller closes the body.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	if err := c.policy.CheckURL(req.URL); err != nil {
		return nil, fmt.Errorf("egress %s: %w", req.Method, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	declared := resp.ContentLength
	if req.Method == http.MethodHead {
		declared = -1 // the length of the body a GET would have
	}
	resp.Body = &limitedBody{rc: resp.Body, remaining: c.cfg.MaxResponseBytes, max: c.cfg.MaxResponseBytes, declared: declared}
	return resp, nil
}

// CloseIdleConnections closes the connections kept for reuse.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// checkRedirect follows at most MaxRedirects redirects, each to a URL that
// passes the policy; its address is checked again when connecting.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > c.cfg.MaxRedirects {
		return fmt.Errorf("%w: %s redirected to %s, beyond the limit of %d redirects",
			ErrTooManyRedirects, via[len(via)-1].URL.Redacted(), req.URL.Redacted(), c.cfg.MaxRedirects)
	}
	if err := c.policy.CheckURL(req.URL); err != nil {
		return fmt.Errorf("redirect from %s: %w", via[len(via)-1].URL.Redacted(), err)
	}
	return nil
}

// dial connects through the checking dialer and names the host in a
// refusal, so that the error says what the tenant's name resolved to.
func (c *Client) dial(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, network, address)
	if err == nil {
		return conn, nil
	}
	var ae *AddressError
	if errors.As(err, &ae) {
		if host, _, serr := net.SplitHostPort(address); serr == nil {
			if _, perr := netip.ParseAddr(host); perr != nil {
				return nil, &AddressError{Host: host, Addr: ae.Addr, Kind: ae.Kind}
			}
		}
		return nil, ae
	}
	return nil, err
}

// control runs for every connection attempt, after name resolution and
// before connecting, on the address actually connected to.
func (c *Client) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("egress: network %s is not allowed", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot parse the destination %q: %w", address, err)
	}
	return c.policy.CheckAddr(ap.Addr())
}

// limitedBody fails with ErrResponseTooLarge once more than max bytes are
// read, or at once when the response declares a larger length.
type limitedBody struct {
	rc        io.ReadCloser
	remaining int64
	max       int64
	declared  int64
	tooLarge  bool
}

func (b *limitedBody) err() error {
	return fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, b.max)
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.tooLarge || b.declared > b.max {
		b.tooLarge = true
		return 0, b.err()
	}
	if b.remaining <= 0 {
		// The limit is reached: the body is within it only if it ends here.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			b.tooLarge = true
			return 0, b.err()
		}
		return 0, err
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.rc.Read(p)
	b.remaining -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
