package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
