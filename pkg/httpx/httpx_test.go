package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

type thing struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Inner struct {
		Flag bool `json:"flag"`
	} `json:"inner"`
}

func TestDecodeJSONNamesTheField(t *testing.T) {
	cases := []struct {
		body, field string
		status      int
	}{
		{`{"name":"a","count":"three"}`, "count", 400},
		{`{"name":"a","inner":{"flag":1}}`, "inner.flag", 400},
		{`{"name":"a","colour":"blue"}`, "colour", 400},
		{`{"name":"a"`, "body", 400},
		{`{"name":}`, "body", 400},
		{``, "body", 400},
		{`{"name":"a"} {"name":"b"}`, "body", 400},
		{`[1,2]`, "body", 400},
	}
	for _, c := range cases {
		var v thing
		err := httpx.DecodeJSONBytes(strings.NewReader(c.body), &v)
		var p *httpx.Problem
		require.True(t, errors.As(err, &p), "DecodeJSON(%s) = %v, want a problem", c.body, err)
		require.Equal(t, c.status, p.Status, c.body)
		require.Len(t, p.Errors, 1, c.body)
		require.Equal(t, c.field, p.Errors[0].Field, c.body)
	}
	var v thing
	require.NoError(t, httpx.DecodeJSONBytes(strings.NewReader(`{"name":"a","count":3,"inner":{"flag":true}}`), &v))
	require.Equal(t, 3, v.Count)
}

type env struct {
	srv  *httpx.Server
	base string
	stop func()
}

func start(t *testing.T, ready httpx.ReadyFunc, routes func(s *httpx.Server)) env {
	t.Helper()
	cfg := httpx.Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second, RequestTimeout: 200 * time.Millisecond, MaxBodyBytes: 64, ShutdownTimeout: 5 * time.Second}
	require.NoError(t, cfg.Validate(""))
	s := httpx.NewServer(cfg, telemetry.Discard(), ready)
	routes(s)
	require.NoError(t, s.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e := env{srv: s, base: "http://" + s.Addr()}
	e.stop = func() { cancel(); require.NoError(t, <-done) }
	return e
}

func problem(t *testing.T, resp *http.Response) httpx.Problem {
	t.Helper()
	defer resp.Body.Close()
	require.Equal(t, httpx.ContentTypeProblem, resp.Header.Get("Content-Type"))
	var p httpx.Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, resp.StatusCode, p.Status)
	return p
}

func TestServerMiddleware(t *testing.T) {
	var sawDeadline bool
	e := start(t, func(context.Context) error { return nil }, func(s *httpx.Server) {
		s.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
			var v thing
			if err := httpx.DecodeJSON(r, &v); err != nil {
				httpx.WriteError(w, err)
				return
			}
			httpx.WriteJSON(w, http.StatusOK, v)
		})
		s.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
		s.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			_, sawDeadline = r.Context().Deadline()
			<-r.Context().Done()
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "too slow"))
		})
	})
	defer e.stop()

	resp, err := http.Post(e.base+"/echo", "application/json", strings.NewReader(`{"name":"ok"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	resp, err = http.Post(e.base+"/echo", "application/json", strings.NewReader(`{"name":"`+strings.Repeat("x", 100)+`"}`))
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestEntityTooLarge, problem(t, resp).Status)

	resp, err = http.Get(e.base + "/panic")
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, problem(t, resp).Status)

	resp, err = http.Get(e.base + "/slow")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, problem(t, resp).Status)
	require.True(t, sawDeadline, "the handler's context has no deadline")

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err = http.Get(e.base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		if path == "/metrics" {
			require.Contains(t, string(body), "http_server_request_duration_seconds")
		}
	}
}

func TestReadyzAnswers503WhenNotReadyOrDraining(t *testing.T) {
	ready := errors.New("inbox: still reading sb.config.v1")
	e := start(t, func(context.Context) error { return ready }, func(*httpx.Server) {})
	defer e.stop()
	resp, err := http.Get(e.base + "/readyz")
	require.NoError(t, err)
	p := problem(t, resp)
	require.Equal(t, http.StatusServiceUnavailable, p.Status)
	require.Contains(t, p.Detail, "still reading")

	ready = nil
	resp, err = http.Get(e.base + "/readyz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	e.srv.Drain()
	resp, err = http.Get(e.base + "/readyz")
	require.NoError(t, err)
	require.Equal(t, "shutting down", problem(t, resp).Detail)
}

// TestDrainingServesWithoutKeepAlive: from shutdown until the delay has
// passed, requests are still served, with Connection: close, so that a
// kept-alive client reconnects (to a ready replica) before the server
// stops accepting.
func TestDrainingServesWithoutKeepAlive(t *testing.T) {
	cfg := httpx.Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second, RequestTimeout: time.Second, MaxBodyBytes: 64,
		ShutdownDelay: 2 * time.Second, ShutdownTimeout: 5 * time.Second}
	s := httpx.NewServer(cfg, telemetry.Discard(), func(context.Context) error { return nil })
	s.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"pong": "yes"})
	})
	require.NoError(t, s.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr()
	client := &http.Client{Timeout: time.Second}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := client.Get(base + path)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := get("/ping")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, resp.Close, "a ready server keeps connections alive")

	cancel()
	for i := 0; get("/readyz").StatusCode != http.StatusServiceUnavailable; i++ {
		require.Less(t, i, 100, "/readyz never answered 503")
		time.Sleep(10 * time.Millisecond)
	}
	resp = get("/ping")
	require.Equal(t, http.StatusOK, resp.StatusCode, "requests are served during the shutdown delay")
	require.True(t, resp.Close, "a draining server asks clients to reconnect")
	require.Equal(t, http.StatusOK, get("/healthz").StatusCode)
	require.NoError(t, <-done)
}

type withText struct {
	Name  string                `json:"name"`
	Inner struct{ Note string } `json:"inner"`
	Tags  map[string]string     `json:"tags"`
	List  []string              `json:"list"`
}

func TestDecodeJSONRefusesNULNamingTheField(t *testing.T) {
	cases := map[string]string{
		`{"name":"a\u0000b"}`:         "name",
		`{"inner":{"Note":"\u0000"}}`: "inner.Note",
		`{"tags":{"k":"v\u0000"}}`:    "tags.k",
		`{"list":["ok","x\u0000"]}`:   "list[1]",
	}
	for body, field := range cases {
		var v withText
		err := httpx.DecodeJSONBytes(strings.NewReader(body), &v)
		var p *httpx.Problem
		require.True(t, errors.As(err, &p), body)
		require.Equal(t, field, p.Errors[0].Field, body)
	}
	var v withText
	require.NoError(t, httpx.DecodeJSONBytes(strings.NewReader(`{"name":"\\u0000 is fine as text"}`), &v))
}

// startCfg is start with the server's settings changed by tune and its
// logs written to logs (nil: nowhere).
func startCfg(t *testing.T, tune func(*httpx.Config), logs io.Writer, routes func(s *httpx.Server)) env {
	t.Helper()
	cfg := httpx.Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second, RequestTimeout: time.Second, MaxBodyBytes: 64, ShutdownTimeout: 5 * time.Second}
	tune(&cfg)
	require.NoError(t, cfg.Validate(""))
	tel := telemetry.Discard()
	if logs != nil {
		var err error
		tel, err = telemetry.New(context.Background(), telemetry.Config{LogLevel: "info", LogFormat: "json", SampleRatio: 1}, "test", "test", logs)
		require.NoError(t, err)
	}
	s := httpx.NewServer(cfg, tel, func(context.Context) error { return nil })
	routes(s)
	require.NoError(t, s.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	e := env{srv: s, base: "http://" + s.Addr()}
	e.stop = func() { cancel(); require.NoError(t, <-done) }
	t.Cleanup(e.stop)
	return e
}

// send makes a request with headers and returns the answer and its body.
func send(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	e := startCfg(t, func(c *httpx.Config) { c.HSTSMaxAge = 24 * time.Hour }, nil, func(s *httpx.Server) {
		s.HandleFunc("GET /json", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteJSON(w, http.StatusOK, map[string]int{"n": 1})
		})
		s.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'self'")
			w.Header().Set("Cache-Control", "public, max-age=60")
			_, _ = io.WriteString(w, "<!doctype html><p>console</p>")
		})
		s.HandleFunc("GET /bare-page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusOK)
		})
		s.HandleFunc("GET /problem", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusConflict, "taken"))
		})
	})
	always := map[string]string{
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "no-referrer",
		"X-Frame-Options":            "DENY",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Strict-Transport-Security":  "max-age=86400",
	}
	for _, path := range []string{"/json", "/problem", "/healthz", "/readyz", "/metrics", "/no-such-route", "/page", "/bare-page"} {
		resp, _ := send(t, http.MethodGet, e.base+path, nil)
		for k, v := range always {
			require.Equal(t, v, resp.Header.Get(k), "%s: %s", path, k)
		}
		switch path {
		case "/page":
			require.Equal(t, "default-src 'self'", resp.Header.Get("Content-Security-Policy"), "the page's own policy was replaced")
			require.Equal(t, []string{"public, max-age=60"}, resp.Header.Values("Cache-Control"), "the page's own caching was replaced")
		case "/bare-page":
			require.Empty(t, resp.Header.Get("Content-Security-Policy"), "a page gets no guessed policy")
		default:
			require.Equal(t, "default-src 'none'; frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"), path)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
		}
	}
	// Without the flag, no HSTS.
	plain := startCfg(t, func(*httpx.Config) {}, nil, func(*httpx.Server) {})
	resp, _ := send(t, http.MethodGet, plain.base+"/healthz", nil)
	require.Empty(t, resp.Header.Get("Strict-Transport-Security"))
}

func TestRequestIDs(t *testing.T) {
	var logs syncBuffer
	e := startCfg(t, func(*httpx.Config) {}, &logs, func(s *httpx.Server) {
		s.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "no such thing"))
		})
		s.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	})
	resp, body := send(t, http.MethodGet, e.base+"/fail", map[string]string{httpx.HeaderRequestID: "req-0042.abc:x"})
	require.Equal(t, "req-0042.abc:x", resp.Header.Get(httpx.HeaderRequestID), "a well-formed id is kept")
	var p map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &p))
	require.Equal(t, "req-0042.abc:x", p["request_id"], "the problem does not carry the request id")

	for _, bad := range []string{"", "has space", "semi;colon", strings.Repeat("x", 129), "é"} {
		resp, body = send(t, http.MethodGet, e.base+"/fail", map[string]string{httpx.HeaderRequestID: bad})
		id := resp.Header.Get(httpx.HeaderRequestID)
		require.NotEqual(t, bad, id, "an ill-formed id %q was kept", bad)
		_, err := uuid.Parse(id)
		require.NoError(t, err, "the id made for %q is not a UUID: %q", bad, id)
		require.Contains(t, body, id)
	}
	resp, _ = send(t, http.MethodGet, e.base+"/healthz", nil)
	require.NotEmpty(t, resp.Header.Get(httpx.HeaderRequestID), "a route outside the API has no request id")

	// The log lines of a request carry its id: here the panic's.
	resp, body = send(t, http.MethodGet, e.base+"/panic", map[string]string{httpx.HeaderRequestID: "panic-1"})
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Contains(t, logs.String(), `"request_id":"panic-1"`, "logs: %s", logs.String())
	require.Contains(t, body, `"request_id":"panic-1"`)
}

// TestErrorsRevealNothing: a panic and an error that is not a problem (a
// database error, say) answer a 500 that says nothing of the cause; the
// cause is in the log only.
func TestErrorsRevealNothing(t *testing.T) {
	var logs syncBuffer
	secret := `ERROR: relation "inbox.users" does not exist (SQLSTATE 42P01) SELECT password_hash FROM inbox.users`
	e := startCfg(t, func(*httpx.Config) {}, &logs, func(s *httpx.Server) {
		s.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic(errors.New(secret)) })
		s.HandleFunc("GET /error", func(w http.ResponseWriter, r *http.Request) { httpx.WriteError(w, errors.New(secret)) })
	})
	for _, path := range []string{"/panic", "/error"} {
		resp, body := send(t, http.MethodGet, e.base+path, nil)
		require.Equal(t, http.StatusInternalServerError, resp.StatusCode, path)
		require.Equal(t, httpx.ContentTypeProblem, resp.Header.Get("Content-Type"), path)
		for _, leak := range []string{"SELECT", "SQLSTATE", "inbox.users", "goroutine", ".go:", "panic"} {
			require.NotContains(t, body, leak, "%s answered %s", path, body)
		}
	}
	require.Contains(t, logs.String(), "SQLSTATE 42P01", "the panic's cause is not logged")
	require.Contains(t, logs.String(), "goroutine", "the panic's stack is not logged")
}

func TestCORS(t *testing.T) {
	route := func(s *httpx.Server) {
		s.HandleFunc("GET /v1/things", func(w http.ResponseWriter, r *http.Request) { httpx.WriteJSON(w, http.StatusOK, []int{}) })
	}
	preflight := map[string]string{"Origin": "https://console.example.com", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "Authorization, Content-Type"}

	off := startCfg(t, func(*httpx.Config) {}, nil, route)
	resp, _ := send(t, http.MethodGet, off.base+"/v1/things", map[string]string{"Origin": "https://console.example.com"})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "CORS is on without being configured")
	resp, _ = send(t, http.MethodOptions, off.base+"/v1/things", preflight)
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	require.NotEqual(t, http.StatusNoContent, resp.StatusCode, "a preflight was answered without CORS configured")

	on := startCfg(t, func(c *httpx.Config) { c.CORSOrigins = config.StringList{"https://console.example.com"} }, nil, route)
	resp, _ = send(t, http.MethodOptions, on.base+"/v1/things", preflight)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://console.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	require.Equal(t, "Authorization, Content-Type", resp.Header.Get("Access-Control-Allow-Headers"))
	resp, _ = send(t, http.MethodGet, on.base+"/v1/things", map[string]string{"Origin": "https://console.example.com"})
	require.Equal(t, "https://console.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Expose-Headers"), "Retry-After")
	require.Contains(t, resp.Header.Values("Vary"), "Origin")

	evil := map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
	resp, _ = send(t, http.MethodOptions, on.base+"/v1/things", evil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a preflight of an origin not listed")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
	resp, _ = send(t, http.MethodGet, on.base+"/v1/things", map[string]string{"Origin": "https://evil.example"})
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "an origin not listed was allowed")

	anyOrigin := startCfg(t, func(c *httpx.Config) { c.CORSOrigins = config.StringList{"*"} }, nil, route)
	resp, _ = send(t, http.MethodOptions, anyOrigin.base+"/v1/things", evil)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"), "credentials for any origin")

	bad := httpx.Config{Addr: ":8080", ReadHeaderTimeout: time.Second, RequestTimeout: time.Second, MaxBodyBytes: 1, ShutdownTimeout: time.Second,
		CORSOrigins: config.StringList{"https://console.example.com/app"}, TrustedProxies: config.StringList{"10.0.0.0/33"}}
	err := bad.Validate("")
	require.ErrorContains(t, err, "-http.cors.allowed-origins")
	require.ErrorContains(t, err, "-http.trusted-proxies")
}

func TestClientAddrTrustsOnlyConfiguredProxies(t *testing.T) {
	route := func(s *httpx.Server) {
		s.HandleFunc("GET /addr", func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteJSON(w, http.StatusOK, httpx.ClientAddr(r).String())
		})
	}
	addr := func(e env, xff ...string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, e.base+"/addr", nil)
		require.NoError(t, err)
		for _, v := range xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var s string
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
		return s
	}
	untrusting := startCfg(t, func(*httpx.Config) {}, nil, route)
	require.Equal(t, "127.0.0.1", addr(untrusting, "203.0.113.9"), "X-Forwarded-For believed from anyone")

	e := startCfg(t, func(c *httpx.Config) { c.TrustedProxies = config.StringList{"127.0.0.1", "10.0.0.0/8"} }, nil, route)
	for _, c := range []struct {
		xff  []string
		want string
	}{
		{nil, "127.0.0.1"},
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		{[]string{"198.51.100.1, 203.0.113.9, 10.1.2.3"}, "203.0.113.9"}, // the client forged the first entry
		{[]string{"198.51.100.1", "203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{[]string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9"}, // every hop is a proxy: the farthest
		{[]string{"203.0.113.9, garbage"}, "127.0.0.1"},
		{[]string{"2001:db8::1"}, "2001:db8::1"},
	} {
		require.Equal(t, c.want, addr(e, c.xff...), "X-Forwarded-For %q", c.xff)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
