// Package egress makes Switchboard's outbound HTTP calls to tenant-entered
// URLs (chat endpoints, translators) safe against server-side request
// forgery.
//
// A tenant URL must be an absolute https URL without user information
// (ValidateURL, for the admin API when the URL is saved). Every connection
// the Client opens is checked after DNS resolution, on the very address
// being connected to, so that a name cannot resolve to a public address when
// it is saved and to an internal one when it is called (DNS rebinding):
// loopback, private, link-local, cloud metadata, shared (carrier-grade NAT),
// unspecified, multicast, broadcast, documentation, benchmarking and
// reserved addresses are refused, in their IPv4, IPv6, IPv4-mapped, NAT64
// and 6to4 forms. The operator may allow some addresses anyway
// (-egress.allow), for tests and private deployments, and plain http to
// those addresses only (-egress.allow-http).
//
// Every call has a connect timeout, a response header timeout and an overall
// timeout; the response body is bounded and reading past the bound fails with
// ErrResponseTooLarge; redirects are not followed unless the operator allows
// some, and then every hop is checked like the first URL. The environment's
// proxy settings are ignored, since a proxy would hide the destination.
package egress

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// MaxURLLength bounds a tenant URL.
const MaxURLLength = 2048

// Config holds the outbound call settings.
type Config struct {
	// Allow lists addresses and CIDR prefixes that may be reached although
	// they are not public.
	Allow config.StringList
	// AllowHTTP accepts plain http URLs whose host is an IP address on Allow.
	AllowHTTP bool
	// ConnectTimeout bounds opening a connection, and then the TLS handshake.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers once the
	// request is sent.
	ResponseHeaderTimeout time.Duration
	// RequestTimeout bounds a whole call, reading the response body included.
	RequestTimeout time.Duration
	// MaxResponseBytes bounds a response body.
	MaxResponseBytes int64
	// MaxRedirects is how many redirects a call follows; 0 follows none.
	MaxRedirects int
}

// Bounds of the settings.
const (
	maxRedirectsLimit = 10
	// MaxResponseHeaderBytes bounds the response headers of every call.
	MaxResponseHeaderBytes = 64 << 10
)

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.Var(&c.Allow, prefix+"egress.allow", "IP addresses and CIDR prefixes, comma-separated (e.g. 127.0.0.1/32,10.1.2.0/24), that calls to tenant-entered URLs (chat endpoints, translators) may reach although they are loopback, private, link-local or otherwise not public. Leave empty on the public internet; set it for tests and private deployments. Host names are not accepted: they are resolved at connect time and cannot be trusted.")
	f.BoolVar(&c.AllowHTTP, prefix+"egress.allow-http", false, "Accept plain http:// tenant URLs whose host is an IP address on -"+prefix+"egress.allow (test receivers such as http://127.0.0.1:8081, private deployments). Every other tenant URL must use https.")
	f.DurationVar(&c.ConnectTimeout, prefix+"egress.connect-timeout", 5*time.Second, "Longest time a call to a tenant URL may take to connect, and then again to complete the TLS handshake.")
	f.DurationVar(&c.ResponseHeaderTimeout, prefix+"egress.response-header-timeout", 10*time.Second, "Longest wait for a tenant endpoint's response headers once the request is sent.")
	f.DurationVar(&c.RequestTimeout, prefix+"egress.request-timeout", 30*time.Second, "Longest time one call to a tenant URL may take in all, redirects and reading the response body included.")
	f.Int64Var(&c.MaxResponseBytes, prefix+"egress.max-response-bytes", 1<<20, "Largest response body read from a tenant endpoint, in bytes (after decompression); reading more fails the call.")
	f.IntVar(&c.MaxRedirects, prefix+"egress.max-redirects", 0, "Redirects a call to a tenant URL follows, each one checked like the URL itself; 0 follows none (a redirect fails the call), since redirects are a common way around address checks.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	for _, err := range parseAllow(c.Allow) {
		ck.Check(false, "egress.allow", err.Error(), "write IP addresses such as 127.0.0.1 or CIDR prefixes such as 10.1.2.0/24, comma-separated")
	}
	ck.Positive("egress.connect-timeout", c.ConnectTimeout)
	ck.Positive("egress.response-header-timeout", c.ResponseHeaderTimeout)
	ck.Positive("egress.request-timeout", c.RequestTimeout)
	ck.Check(c.ResponseHeaderTimeout <= c.RequestTimeout, "egress.response-header-timeout",
		fmt.Sprintf("%s is longer than -%segress.request-timeout (%s), which would cut it short", c.ResponseHeaderTimeout, prefix, c.RequestTimeout),
		"set it below the request timeout")
	ck.Check(c.MaxResponseBytes > 0, "egress.max-response-bytes", fmt.Sprintf("must be greater than zero, got %d", c.MaxResponseBytes), "set a size in bytes such as 1048576")
	ck.Check(c.MaxRedirects >= 0 && c.MaxRedirects <= maxRedirectsLimit, "egress.max-redirects",
		fmt.Sprintf("must be between 0 and %d, got %d", maxRedirectsLimit, c.MaxRedirects), "set 0 to follow no redirects")
	return ck.Err()
}

// parseAllow returns the allow-list entries that do not parse.
func parseAllow(entries []string) []error {
	_, errs := allowPrefixes(entries)
	return errs
}

// allowPrefixes parses the allow-list: an address stands for itself (/32 or
// /128), a prefix with host bits set is masked.
func allowPrefixes(entries []string) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	var errs []error
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if strings.Contains(e, "%") {
			errs = append(errs, fmt.Errorf("%q has an IPv6 zone, which cannot be allowed", e))
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil {
			out = append(out, p.Masked())
			continue
		}
		if a, err := netip.ParseAddr(e); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		errs = append(errs, fmt.Errorf("%q is not an IP address or CIDR prefix", e))
	}
	return out, errs
}

// Policy decides which URLs and addresses outbound calls may reach. It is
// immutable and safe for concurrent use.
type Policy struct {
	allow     []netip.Prefix
	allowHTTP bool
	classes   classifier
}

// NewPolicy builds the policy of cfg's allow-list and http setting.
func NewPolicy(cfg Config) (*Policy, error) {
	allow, errs := allowPrefixes(cfg.Allow)
	if len(errs) > 0 {
		return nil, fmt.Errorf("egress allow-list: %w", errors.Join(errs...))
	}
	return &Policy{allow: allow, allowHTTP: cfg.AllowHTTP, classes: newClassifier()}, nil
}

// allowed reports whether a is on the operator's allow-list, in its own form
// or as the IPv4 address an IPv4-mapped IPv6 address stands for.
func (p *Policy) allowed(a netip.Addr) bool {
	a = a.WithZone("")
	for _, pre := range p.allow {
		if pre.Contains(a) || pre.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// CheckAddr returns an *AddressError when a may not be connected to, nil
// when it is public or on the allow-list.
func (p *Policy) CheckAddr(a netip.Addr) error {
	if p.allowed(a) {
		return nil
	}
	if k := p.classes.kind(a); k != "" {
		return &AddressError{Addr: a, Kind: k}
	}
	return nil
}

// URLError is a tenant URL that may not be called. Reason says why in words
// fit for a problem detail naming the field, e.g. "must use https" or "host
// 10.0.0.5 is a private address". When the URL is refused for its address,
// the error wraps an *AddressError and matches ErrForbiddenAddress.
type URLError struct {
	// URL is the URL with any password redacted; empty when it could not be
	// parsed or is too long to repeat.
	URL string
	// Reason says what is wrong.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

func (e *URLError) Error() string {
	if e.URL == "" {
		return "URL " + e.Reason
	}
	return fmt.Sprintf("URL %q: %s", e.URL, e.Reason)
}

// Unwrap returns the underlying error.
func (e *URLError) Unwrap() error { return e.Err }

// ValidateURL checks a tenant-entered URL before it is saved: an absolute
// https URL with a host and no user information; plain http only when the
// host is an IP address on the allow-list and -egress.allow-http is set. An
// IP address is checked at once; a host name is checked for its syntax only,
// since what it resolves to is checked at every connection. The error is a
// *URLError.
func (p *Policy) ValidateURL(raw string) error {
	if len(raw) > MaxURLLength {
		return &URLError{Reason: fmt.Sprintf("is longer than %d characters", MaxURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The URL is left out: it could not be parsed to redact a password.
		reason := "is not a valid URL"
		var ue *url.Error
		if errors.As(err, &ue) {
			reason += ": " + ue.Err.Error()
		}
		return &URLError{Reason: reason, Err: err}
	}
	return p.CheckURL(u)
}

// CheckURL is ValidateURL for a parsed URL; the client applies it to every
// request and every redirect.
func (p *Policy) CheckURL(u *url.URL) error {
	bad := func(reason string, err error) error {
		return &URLError{URL: u.Redacted(), Reason: reason, Err: err}
	}
	if !u.IsAbs() || u.Opaque != "" {
		return bad("must be an absolute URL such as https://chat.example.com/hook", nil)
	}
	if u.User != nil {
		return bad("must not contain a user name or password; pass credentials in a header", nil)
	}
	host := u.Hostname()
	if host == "" {
		return bad("must have a host", nil)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad(fmt.Sprintf("has an invalid port %q", port), nil)
		}
	}
	addr, ipErr := netip.ParseAddr(host)
	isIP := ipErr == nil
	switch u.Scheme {
	case "https":
	case "http":
		if !p.allowHTTP || !isIP || !p.allowed(addr) {
			return bad("must use https", nil)
		}
	default:
		return bad("must use https", nil)
	}
	if !isIP {
		if reason := checkHostName(host); reason != "" {
			return bad(reason, nil)
		}
		return nil
	}
	if addr.Zone() != "" {
		return bad("must not have an IPv6 zone", nil)
	}
	if err := p.CheckAddr(addr); err != nil {
		var ae *AddressError
		errors.As(err, &ae)
		return bad(ae.Reason(), err)
	}
	return nil
}

// checkHostName returns why host is not an acceptable DNS name, or "".
func checkHostName(host string) string {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if len(name) > 253 {
		return "host name is longer than 253 characters"
	}
	for _, r := range name {
		if r > 127 {
			return "host name must be ASCII; write international names in punycode (xn--...)"
		}
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return fmt.Sprintf("host %s is a loopback name", host)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Sprintf("host %q is not a valid host name", host)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("host %q is not a valid host name: a label starts or ends with a hyphen", host)
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return fmt.Sprintf("host %q is not a valid host name: it contains %q", host, ch)
			}
		}
	}
	// Resolvers read "2130706433", "127.1" or "0x7f.1" as IP addresses;
	// no top-level domain is numeric.
	last := labels[len(labels)-1]
	if allDigits(last) || strings.HasPrefix(last, "0x") {
		return fmt.Sprintf("host %q is not a valid host name; write an IP address in its usual form (e.g. 192.0.2.1)", host)
	}
	return ""
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
