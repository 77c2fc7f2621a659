package httpx

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// What every response of every process gets, around the routes: a request
// id, security headers, the client's address, and CORS when configured.

// HeaderRequestID carries the request id: taken from the request when it
// is well formed (a proxy or the client chose it), else made here; echoed
// on the response, in every log line of the request, and in problem
// bodies as request_id.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id.
const maxRequestIDLen = 128

// apiCSP is the Content-Security-Policy of every response that is not a
// page: JSON renders nothing, so it may load nothing and be framed by
// nothing. Pages (the web console) set their own.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// corsMaxAge is how long a browser may keep a preflight's answer.
const corsMaxAge = 10 * time.Minute

// corsExposed are the response headers a cross-origin script may read.
var corsExposed = strings.Join([]string{"Retry-After", "RateLimit", "RateLimit-Policy", HeaderRequestID, "Location", "Content-Disposition", "WWW-Authenticate"}, ", ")

// corsMethods are the methods the API uses.
const corsMethods = "GET, POST, PUT, PATCH, DELETE"

// validRequestID reports whether an incoming id may be kept: 1 to 128
// characters that cannot break a log line or a header (letters, digits
// and -_.:+/=, enough for UUIDs, trace ids and base64).
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:+/=", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// clientAddrKey is the context key of the client's address.
type clientAddrKey struct{}

// ClientAddr is the address of the client that sent r: the peer's, or,
// when the peer is one of the trusted proxies (-http.trusted-proxies),
// the one that proxy put in X-Forwarded-For. It is invalid when the peer
// address does not parse (a test calling a handler directly).
func ClientAddr(r *http.Request) netip.Addr {
	if a, ok := r.Context().Value(clientAddrKey{}).(netip.Addr); ok {
		return a
	}
	return peerAddr(r)
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// clientAddr walks X-Forwarded-For from the right, the hop nearest this
// server, while the address at hand is a trusted proxy: the first address
// that is not one is the client. Only trusted proxies' entries are
// believed, since anyone can send the header; an entry that does not
// parse stops the walk at the last trusted hop.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := peerAddr(r)
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	if len(trusted) == 0 || !addr.IsValid() || !isTrusted(addr) {
		return addr
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = a.Unmap()
		if !isTrusted(addr) {
			return addr
		}
	}
	return addr
}

// parsePrefixes reads CIDRs, or single addresses as one-address prefixes.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR such as 10.0.0.0/8 nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// checkOrigin checks a CORS origin setting: * or scheme://host[:port].
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin such as https://console.example.com (scheme, host and port only)", o)
	}
	return nil
}

// guard is the outermost handler of the server: it runs for every
// request, the routes' and /healthz's alike, and for those no route
// matches.
type guard struct {
	next    http.Handler
	trusted []netip.Prefix
	// origins are the CORS origins allowed with credentials; anyOrigin
	// allows every origin, without credentials.
	origins   map[string]bool
	anyOrigin bool
	hsts      string
}

func newGuard(cfg Config, next http.Handler) *guard {
	g := &guard{next: next, origins: map[string]bool{}}
	// Validate checked both lists; a bad entry here is skipped.
	g.trusted, _ = parsePrefixes(cfg.TrustedProxies)
	for _, o := range cfg.CORSOrigins {
		if checkOrigin(o) != nil {
			continue
		}
		if o == "*" {
			g.anyOrigin = true
		} else {
			g.origins[strings.ToLower(o)] = true
		}
	}
	if cfg.HSTSMaxAge > 0 {
		g.hsts = "max-age=" + strconv.FormatInt(int64(cfg.HSTSMaxAge/time.Second), 10)
	}
	return g
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderRequestID)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	w.Header().Set(HeaderRequestID, id)
	ctx := telemetry.WithRequestID(r.Context(), id)
	ctx = context.WithValue(ctx, clientAddrKey{}, clientAddr(r, g.trusted))
	r = r.WithContext(ctx)
	sw := &secureWriter{ResponseWriter: w, hsts: g.hsts}
	if g.cors(sw, r) {
		return
	}
	g.next.ServeHTTP(sw, r)
}

// cors adds the CORS headers of an allowed origin, and answers a
// preflight (it then reports true). Without -http.cors.allowed-origins it
// does nothing: browsers then refuse cross-origin calls, which is the
// default wanted.
func (g *guard) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(g.origins) == 0 && !g.anyOrigin {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" {
		return false
	}
	listed := g.origins[strings.ToLower(origin)]
	if !listed && !g.anyOrigin {
		if preflight {
			WriteProblem(w, NewProblem(http.StatusForbidden, "the origin "+strconv.Quote(origin)+" is not allowed to call this API (-http.cors.allowed-origins)"))
			return true
		}
		return false
	}
	if listed {
		// Credentials (cookies, Authorization from a cookie-less client)
		// only for origins named one by one, never for "*".
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
	} else {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposed)
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", corsMethods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && validHeaderList(req) {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(corsMaxAge/time.Second)))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// validHeaderList reports whether s is a comma-separated list of header
// names (tokens), safe to echo.
func validHeaderList(s string) bool {
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return false
		}
		for _, c := range []byte(name) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// secureWriter adds the security headers a response lacks when it starts:
// only those absent, so that a handler setting its own (the console's
// Content-Security-Policy, an asset's Cache-Control) keeps it.
type secureWriter struct {
	http.ResponseWriter
	hsts    string
	started bool
}

func (w *secureWriter) start() {
	if w.started {
		return
	}
	w.started = true
	h := w.Header()
	setAbsent := func(k, v string) {
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	}
	setAbsent("X-Content-Type-Options", "nosniff")
	setAbsent("Referrer-Policy", "no-referrer")
	setAbsent("X-Frame-Options", "DENY")
	setAbsent("Cross-Origin-Opener-Policy", "same-origin")
	// Answers are per user and often personal: no cache keeps them unless
	// the handler says otherwise.
	setAbsent("Cache-Control", "no-store")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "text/html") {
		setAbsent("Content-Security-Policy", apiCSP)
	}
	if w.hsts != "" {
		setAbsent("Strict-Transport-Security", w.hsts)
	}
}

func (w *secureWriter) WriteHeader(code int) {
	if code >= 200 {
		w.start()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *secureWriter) Write(b []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(b)
}

// FlushError flushes through http.ResponseController (streams), the
// headers first.
func (w *secureWriter) FlushError() error {
	w.start()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *secureWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
