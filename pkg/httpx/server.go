// Package httpx is the one HTTP server helper of Switchboard. Every target
// serves its API and webhooks through it, next to /healthz (the process is
// alive), /readyz (it can take traffic; 503 while starting and draining) and
// /metrics (Prometheus). Every route gets a span and request metrics, panic
// recovery, a body-size limit and a request timeout; errors are RFC 9457
// problem details.
package httpx

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// Config holds the server settings.
type Config struct {
	// Addr is the listen address.
	Addr string
	// ReadHeaderTimeout bounds reading request headers (slowloris).
	ReadHeaderTimeout time.Duration
	// RequestTimeout bounds each request's handling; the handler's context
	// is cancelled when it passes.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds request bodies unless a route sets its own.
	MaxBodyBytes int64
	// Pprof serves the Go profiler under /debug/pprof/.
	Pprof bool
	// ShutdownDelay is how long /readyz answers 503 while requests are
	// still served, before the server stops accepting them.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests at shutdown.
	ShutdownTimeout time.Duration
	// TrustedProxies are the CIDRs of the reverse proxies whose
	// X-Forwarded-For is believed when finding a client's address
	// (ClientAddr); empty: the peer's address, whatever the header says.
	TrustedProxies config.StringList
	// CORSOrigins are the origins whose scripts may call the API from a
	// browser ("*": any, without credentials); empty turns CORS off.
	CORSOrigins config.StringList
	// HSTSMaxAge, when positive, sends Strict-Transport-Security with it.
	HSTSMaxAge time.Duration
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Addr, prefix+"http.addr", ":8080", "Address the HTTP server listens on: the API, the webhooks, /healthz, /readyz and /metrics.")
	f.DurationVar(&c.ReadHeaderTimeout, prefix+"http.read-header-timeout", 5*time.Second, "Longest time a client may take to send request headers.")
	f.DurationVar(&c.RequestTimeout, prefix+"http.request-timeout", 30*time.Second, "Longest time one request may be handled; its context is cancelled after it.")
	f.Int64Var(&c.MaxBodyBytes, prefix+"http.max-body-bytes", 1<<20, "Largest request body accepted, in bytes; larger bodies get 413.")
	f.BoolVar(&c.Pprof, prefix+"http.pprof", false, "Serve the Go profiler under /debug/pprof/ on the same address. Leave it off where the address is reachable from outside.")
	f.DurationVar(&c.ShutdownDelay, prefix+"http.shutdown-delay", 0, "At shutdown, how long /readyz answers 503 while requests are still served, so that load balancers stop routing here first. Set it a little above the readiness probe period under Kubernetes (the Helm chart sets 5s).")
	f.DurationVar(&c.ShutdownTimeout, prefix+"http.shutdown-timeout", 20*time.Second, "Longest wait for in-flight requests to finish at shutdown.")
	f.Var(&c.TrustedProxies, prefix+"http.trusted-proxies", "Comma-separated CIDRs (or addresses) of the reverse proxies and load balancers in front of this service, such as 10.0.0.0/8. A client's address (for login limits and the login audit) is the peer's address unless the peer is one of these: then it is read from X-Forwarded-For, right to left, skipping these. Empty: X-Forwarded-For is ignored, as anyone can send it.")
	f.Var(&c.CORSOrigins, prefix+"http.cors.allowed-origins", "Comma-separated origins whose web pages may call the API from a browser, such as https://console.example.com; they get credentials too. * allows any origin, without credentials. Empty (the default): no CORS headers, so browsers refuse cross-origin calls.")
	f.DurationVar(&c.HSTSMaxAge, prefix+"http.hsts-max-age", 0, "When above 0, every response carries Strict-Transport-Security with this max-age, so that browsers reach the service over HTTPS only. Set it (such as 8760h) once the service is served over HTTPS only, by this process or the proxy in front; 0 sends none.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	_, _, err := net.SplitHostPort(c.Addr)
	ck.Check(err == nil, "http.addr", fmt.Sprintf("%q is not host:port", c.Addr), "set an address such as :8080 or 127.0.0.1:8080")
	ck.Positive("http.read-header-timeout", c.ReadHeaderTimeout)
	ck.Positive("http.request-timeout", c.RequestTimeout)
	ck.Positive("http.shutdown-timeout", c.ShutdownTimeout)
	ck.Check(c.ShutdownDelay >= 0, "http.shutdown-delay", "must not be negative", "set 0 or a duration such as 5s")
	ck.Check(c.MaxBodyBytes > 0, "http.max-body-bytes", fmt.Sprintf("must be greater than zero, got %d", c.MaxBodyBytes), "set a size in bytes such as 1048576")
	_, err = parsePrefixes(c.TrustedProxies)
	ck.Check(err == nil, "http.trusted-proxies", fmt.Sprint(err), "list CIDRs such as 10.0.0.0/8,192.168.1.10/32")
	for _, o := range c.CORSOrigins {
		err := checkOrigin(o)
		ck.Check(err == nil, "http.cors.allowed-origins", fmt.Sprint(err), "list origins such as https://console.example.com, or *")
	}
	ck.Check(c.HSTSMaxAge >= 0, "http.hsts-max-age", "must not be negative", "set 0 to send no Strict-Transport-Security, or a duration such as 8760h")
	return ck.Err()
}

// ReadyFunc reports whether the process can take traffic; the error says
// what is not ready.
type ReadyFunc func(ctx context.Context) error

// Server serves the routes of every component of a process.
type Server struct {
	cfg      Config
	tel      *telemetry.Telemetry
	log      *slog.Logger
	mux      *http.ServeMux
	ready    ReadyFunc
	tracer   trace.Tracer
	duration metric.Float64Histogram

	mu       sync.Mutex
	listener net.Listener
	draining bool
}

// NewServer builds a server; ready is consulted by /readyz.
func NewServer(cfg Config, tel *telemetry.Telemetry, ready ReadyFunc) *Server {
	s := &Server{cfg: cfg, tel: tel, log: tel.Component("http"), mux: http.NewServeMux(), ready: ready,
		tracer: tel.Tracer.Tracer("switchboard/httpx")}
	// The instrument's configuration is constant: creating it cannot fail.
	s.duration, _ = tel.Meter.Meter("switchboard/httpx").Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Time to handle an HTTP request."),
		metric.WithExplicitBucketBoundaries(telemetry.LatencyBuckets()...))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", tel.MetricsHandler())
	if cfg.Pprof {
		s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return s
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		WriteProblem(w, NewProblem(http.StatusServiceUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		WriteProblem(w, NewProblem(http.StatusServiceUnavailable, err.Error()))
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Drain makes /readyz answer 503 so that load balancers stop sending
// traffic; requests keep being served until Run returns.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

// RouteOption changes the defaults for one route.
type RouteOption func(*route)

type route struct {
	maxBody   int64
	noTimeout bool
}

// WithBodyLimit sets the largest body of the route.
func WithBodyLimit(n int64) RouteOption { return func(r *route) { r.maxBody = n } }

// WithoutTimeout lets the route run as long as the client stays (streams).
func WithoutTimeout() RouteOption { return func(r *route) { r.noTimeout = true } }

// Handle registers h for pattern (a net/http ServeMux pattern such as
// "POST /v1/things/{id}"), wrapped in the standard middleware.
func (s *Server) Handle(pattern string, h http.Handler, opts ...RouteOption) {
	rt := route{maxBody: s.cfg.MaxBodyBytes}
	for _, o := range opts {
		o(&rt)
	}
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer s.recoverPanic(w, r)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
		}
		if !rt.noTimeout {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		inner.ServeHTTP(w, r)
	})
	s.mux.Handle(pattern, s.instrument(pattern, h))
}

// instrument gives every request a server span, joined to the caller's
// trace when it sends a traceparent, and records its duration. It is a
// lean stand-in for otelhttp, which costs several times more per request
// on the webhook path.
func (s *Server) instrument(pattern string, h http.Handler) http.Handler {
	method, route, _ := strings.Cut(pattern, " ")
	if route == "" {
		route, method = method, ""
	}
	base := []attribute.KeyValue{attribute.String("http.request.method", method), attribute.String("http.route", route)}
	name := pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := s.tel.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(base...))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
		span.End()
		s.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(
			base[0], base[1], attribute.Int("http.response.status_code", sw.status)))
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (flushes for
// streams, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h http.HandlerFunc, opts ...RouteOption) {
	s.Handle(pattern, h, opts...)
}

func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	WriteProblem(w, NewProblem(http.StatusInternalServerError, "the server could not handle the request; it has been logged"))
}

// Listen binds the address; Run serves on it. Splitting them lets a caller
// learn the bound address (Addr) before serving, which tests use with :0.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set -http.addr or SB_HTTP_ADDR to a free address): %w", s.cfg.Addr, err)
	}
	s.listener = ln
	return nil
}

// Addr is the bound address, after Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Run serves until ctx is done, then stops accepting connections and waits
// up to the shutdown timeout for in-flight requests.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newGuard(s.cfg, s.mux),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.listener) }()
	s.log.Info("serving HTTP", "addr", s.listener.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP on %s: %w", s.cfg.Addr, err)
	case <-ctx.Done():
	}
	s.Drain()
	// Answers now say Connection: close, and idle connections close: a
	// client kept alive on this process (an L4 load balancer, such as a
	// Kubernetes Service, balances connections, not requests) reconnects,
	// to a ready replica, instead of staying until the server stops.
	srv.SetKeepAlivesEnabled(false)
	if s.cfg.ShutdownDelay > 0 {
		s.log.Info("not ready; serving until the delay passes", "delay", s.cfg.ShutdownDelay)
		time.Sleep(s.cfg.ShutdownDelay)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("drain HTTP requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP: %w", err)
	}
	s.log.Info("HTTP server stopped")
	return nil
}
