package egress_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboard-oss/switchboard/pkg/egress"
)

// receiver is a test endpoint on 127.0.0.1 that counts the requests it
// receives.
type receiver struct {
	*httptest.Server
	hits atomic.Int64
}

func newReceiver(t *testing.T, tls bool, h http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		h(w, req)
	})
	if tls {
		r.Server = httptest.NewTLSServer(handler)
	} else {
		r.Server = httptest.NewServer(handler)
	}
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) port() string {
	return strconv.Itoa(r.Listener.Addr().(*net.TCPAddr).Port)
}

// roots trusts the receiver's certificate (issued for example.com,
// 127.0.0.1 and ::1).
func (r *receiver) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(r.Certificate())
	return pool
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

func newClient(t *testing.T, d egress.Deps, args ...string) *egress.Client {
	t.Helper()
	c, err := egress.New(newConfig(t, args...), d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t *testing.T, c *egress.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.Do(req)
}

// getBody calls url and reads the whole body.
func getBody(t *testing.T, c *egress.Client, url string) (string, error) {
	t.Helper()
	resp, err := get(t, c, url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// refusal returns the address refusal err carries, failing the test when
// there is none.
func refusal(t *testing.T, err error) *egress.AddressError {
	t.Helper()
	var ae *egress.AddressError
	if !errors.As(err, &ae) || !errors.Is(err, egress.ErrForbiddenAddress) {
		t.Fatalf("got %v, want a forbidden address", err)
	}
	if !egress.Permanent(err) {
		t.Errorf("%v is not permanent", err)
	}
	return ae
}

func TestAllowList(t *testing.T) {
	plain := newReceiver(t, false, ok)
	secure := newReceiver(t, true, ok)
	d := egress.Deps{RootCAs: secure.roots()}

	for _, tc := range []struct {
		name  string
		args  []string
		url   string
		allow bool
	}{
		{"http allowed", []string{"-egress.allow=127.0.0.1/32", "-egress.allow-http"}, plain.URL, true},
		{"https allowed", []string{"-egress.allow=127.0.0.1"}, secure.URL, true},
		{"https allowed by a wider prefix", []string{"-egress.allow=127.0.0.0/8"}, secure.URL, true},
		{"http without allow-http", []string{"-egress.allow=127.0.0.1/32"}, plain.URL, false},
		{"http not on the list", []string{"-egress.allow=10.0.0.0/8", "-egress.allow-http"}, plain.URL, false},
		{"https not on the list", []string{"-egress.allow=127.0.0.2/32"}, secure.URL, false},
		{"no list", nil, secure.URL, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, d, tc.args...)
			body, err := getBody(t, c, tc.url)
			if tc.allow {
				if err != nil || body != "ok" {
					t.Fatalf("got %q, %v; want ok", body, err)
				}
				return
			}
			var ue *egress.URLError
			if !errors.As(err, &ue) || !egress.Permanent(err) {
				t.Fatalf("got %q, %v; want a refused URL", body, err)
			}
		})
	}
	if plain.hits.Load() != 1 || secure.hits.Load() != 2 {
		t.Errorf("the receivers were called %d and %d times, want 1 and 2 (only the allowed calls)", plain.hits.Load(), secure.hits.Load())
	}
}

func TestConnectTimeCheck(t *testing.T) {
	secure := newReceiver(t, true, ok)
	resolver := startDNS(t, zone(map[string][]string{
		"evil.example":     {"127.0.0.1"},
		"example.com":      {"127.0.0.1"},
		"intranet.example": {"10.0.0.5"},
		"metadata.example": {"169.254.169.254"},
		"v6.example":       {"fd00::1"},
		"mapped.example":   {"::ffff:127.0.0.1"},
	}))
	d := egress.Deps{Resolver: resolver, RootCAs: secure.roots()}
	strict := newClient(t, d)

	for name, want := range map[string]struct {
		addr, kind string
	}{
		"evil.example":     {"127.0.0.1", "loopback"},
		"intranet.example": {"10.0.0.5", "private"},
		"metadata.example": {"169.254.169.254", "cloud metadata"},
		"v6.example":       {"fd00::1", "private"},
		// An AAAA record holding an IPv4-mapped address is dialed over IPv4.
		"mapped.example": {"127.0.0.1", "loopback"},
	} {
		url := "https://" + name + ":" + secure.port() + "/hook"
		if err := strict.ValidateURL(url); err != nil {
			t.Fatalf("ValidateURL(%s) = %v; a name passes until it is resolved", url, err)
		}
		_, err := get(t, strict, url)
		ae := refusal(t, err)
		if ae.Host != name || ae.Addr != netip.MustParseAddr(want.addr) || ae.Kind != want.kind {
			t.Errorf("%s: refused %q %s %q, want %s %q", name, ae.Host, ae.Addr, ae.Kind, want.addr, want.kind)
		}
		if !strings.Contains(err.Error(), "resolves to") {
			t.Errorf("%s: error %q does not say what the name resolves to", name, err)
		}
	}
	if n := secure.hits.Load(); n != 0 {
		t.Fatalf("the receiver was called %d times through refused names", n)
	}

	// The same name, with the loopback address on the operator's list, is
	// reached, TLS verification included.
	lab := newClient(t, d, "-egress.allow=127.0.0.1/32")
	body, err := getBody(t, lab, "https://example.com:"+secure.port()+"/hook")
	if err != nil || body != "ok" {
		t.Fatalf("got %q, %v; want ok through the allow-list", body, err)
	}
	// Another name resolving to a private address is still refused.
	_, err = get(t, lab, "https://intranet.example:"+secure.port()+"/hook")
	refusal(t, err)
}

func TestDNSRebinding(t *testing.T) {
	secure := newReceiver(t, true, ok)
	var lookups atomic.Int64
	resolver := startDNS(t, func(name string, qtype uint16) ([]netip.Addr, bool) {
		if name != "rebind.example" {
			return nil, false
		}
		if qtype != typeA {
			return nil, true
		}
		if lookups.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("1.2.3.4")}, true
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, true
	})
	c := newClient(t, egress.Deps{Resolver: resolver, RootCAs: secure.roots()})
	url := "https://rebind.example:" + secure.port() + "/hook"

	// Time of check: the name resolves to a public address.
	if err := c.ValidateURL(url); err != nil {
		t.Fatal(err)
	}
	first, err := resolver.LookupNetIP(context.Background(), "ip4", "rebind.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || c.Policy().CheckAddr(first[0]) != nil {
		t.Fatalf("first lookup gave %v, want one public address", first)
	}

	// Time of use: it now resolves to loopback, which the connection refuses.
	_, err = get(t, c, url)
	if ae := refusal(t, err); ae.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("refused %s, want 127.0.0.1", ae.Addr)
	}
	if lookups.Load() < 2 {
		t.Errorf("%d lookups, want the connection to resolve the name again", lookups.Load())
	}
	if n := secure.hits.Load(); n != 0 {
		t.Errorf("the receiver was called %d times", n)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	const limit = 1000
	r := newReceiver(t, false, func(w http.ResponseWriter, req *http.Request) {
		n, _ := strconv.Atoi(req.URL.Query().Get("n"))
		if req.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // headers go out without a Content-Length
		}
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	c := newClient(t, egress.Deps{}, "-egress.allow=127.0.0.1", "-egress.allow-http", "-egress.max-response-bytes="+strconv.Itoa(limit))

	for _, tc := range []struct {
		query string
		fits  bool
	}{
		{"n=0", true},
		{"n=1000", true},
		{"n=1000&chunked=1", true},
		{"n=1001", false},
		{"n=1001&chunked=1", false},
		{"n=100000", false},
		{"n=100000&chunked=1", false},
	} {
		body, err := getBody(t, c, r.URL+"/?"+tc.query)
		if tc.fits {
			if err != nil {
				t.Errorf("%s: %v", tc.query, err)
			}
			continue
		}
		if !errors.Is(err, egress.ErrResponseTooLarge) {
			t.Errorf("%s: got %v, want ErrResponseTooLarge", tc.query, err)
		}
		if len(body) > limit {
			t.Errorf("%s: read %d bytes, more than the limit", tc.query, len(body))
		}
	}
}

// silentListener accepts connections on 127.0.0.1 and never answers.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTimeouts(t *testing.T) {
	t.Run("no response headers", func(t *testing.T) {
		addr := silentListener(t)
		c := newClient(t, egress.Deps{}, "-egress.allow=127.0.0.1", "-egress.allow-http", "-egress.response-header-timeout=50ms")
		_, err := get(t, c, "http://"+addr+"/hook")
		if !isTimeout(err) {
			t.Fatalf("got %v, want a timeout", err)
		}
		if egress.Permanent(err) || errors.Is(err, egress.ErrForbiddenAddress) {
			t.Errorf("%v: a timeout is retryable", err)
		}
	})
	t.Run("body never ends", func(t *testing.T) {
		r := newReceiver(t, false, func(w http.ResponseWriter, req *http.Request) {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			<-req.Context().Done()
		})
		c := newClient(t, egress.Deps{}, "-egress.allow=127.0.0.1", "-egress.allow-http",
			"-egress.response-header-timeout=100ms", "-egress.request-timeout=200ms")
		_, err := getBody(t, c, r.URL)
		if !isTimeout(err) {
			t.Fatalf("got %v, want a timeout", err)
		}
		if egress.Permanent(err) {
			t.Errorf("%v: a timeout is retryable", err)
		}
	})
}

func TestRedirects(t *testing.T) {
	secure := newReceiver(t, true, ok)
	resolver := startDNS(t, zone(map[string][]string{"evil.example": {"127.0.0.2"}}))
	var redirector *receiver
	redirector = newReceiver(t, false, func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/final":
			_, _ = io.WriteString(w, "final")
		case "/to-final":
			http.Redirect(w, req, "/final", http.StatusFound)
		case "/twice":
			http.Redirect(w, req, "/to-final", http.StatusFound)
		default:
			http.Redirect(w, req, req.URL.Query().Get("to"), http.StatusFound)
		}
	})
	d := egress.Deps{Resolver: resolver, RootCAs: secure.roots()}
	lab := []string{"-egress.allow=127.0.0.1/32", "-egress.allow-http"}
	none := newClient(t, d, lab...)
	some := newClient(t, d, append(lab, "-egress.max-redirects=1")...)

	// By default a redirect is not followed, even to an allowed address.
	_, err := getBody(t, none, redirector.URL+"/to-final")
	if !errors.Is(err, egress.ErrTooManyRedirects) || !egress.Permanent(err) {
		t.Fatalf("got %v, want ErrTooManyRedirects", err)
	}
	if body, err := getBody(t, some, redirector.URL+"/to-final"); err != nil || body != "final" {
		t.Fatalf("got %q, %v; want the redirect followed", body, err)
	}
	if _, err := getBody(t, some, redirector.URL+"/twice"); !errors.Is(err, egress.ErrTooManyRedirects) {
		t.Fatalf("got %v, want ErrTooManyRedirects past the limit", err)
	}

	// Every hop is checked like the first URL.
	for _, to := range []string{
		"http://10.0.0.1/",
		"https://10.0.0.1/",
		"https://169.254.169.254/latest/meta-data/",
		"https://[::1]:" + secure.port() + "/",
		"http://127.0.0.1@chat.example.com/",
	} {
		_, err := getBody(t, some, redirector.URL+"/?to="+to)
		var ue *egress.URLError
		if !errors.As(err, &ue) || !egress.Permanent(err) {
			t.Errorf("redirect to %s: got %v, want a refused URL", to, err)
		}
	}
	// A name is checked when the hop connects: evil.example is 127.0.0.2,
	// not on the list.
	_, err = getBody(t, some, redirector.URL+"/?to=https://evil.example:"+secure.port()+"/")
	if ae := refusal(t, err); ae.Addr != netip.MustParseAddr("127.0.0.2") || ae.Host != "evil.example" {
		t.Errorf("refused %s %s, want evil.example 127.0.0.2", ae.Host, ae.Addr)
	}
	if n := secure.hits.Load(); n != 0 {
		t.Errorf("the TLS receiver was called %d times", n)
	}
}

func TestNewRefusesUnboundedSettings(t *testing.T) {
	if _, err := egress.New(egress.Config{}, egress.Deps{}); err == nil {
		t.Fatal("New accepted a configuration without timeouts or size limit")
	}
}
