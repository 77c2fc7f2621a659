package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// built is a build as Vite makes it: index.html naming hashed assets.
func built() fstest.MapFS {
	script := "console.log(" + strings.Repeat(`"switchboard",`, 200) + "0)\n"
	return fstest.MapFS{
		".keep":                    {Data: nil},
		"index.html":               {Data: []byte(`<!doctype html><html><head><script type="module" src="/assets/index-Bx1.js"></script></head><body><div id="app"></div></body></html>`)},
		"assets/index-Bx1.js":      {Data: []byte(script)},
		"assets/index-C9a.css":     {Data: []byte("body{margin:0}")},
		"assets/AdminUsers-D2.js":  {Data: []byte("export default 1")},
		"favicon.svg":              {Data: []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")},
		"assets/nested/font-E.ttf": {Data: []byte{0, 1, 0, 0}},
	}
}

// get serves one request and returns the answer.
func get(t *testing.T, h http.Handler, method, target string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestNotBuiltServesThePageSayingHow(t *testing.T) {
	h := Handler(Options{Files: fstest.MapFS{".keep": {}}})
	if Built(h) {
		t.Fatal("Built says a directory holding only .keep is a build")
	}
	for _, target := range []string{"/", "/index.html", "/conversations/42"} {
		resp := get(t, h, http.MethodGet, target)
		b := body(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(b, "make console") {
			t.Errorf("GET %s answered %d %q; want 200 with the page saying to run make console", target, resp.StatusCode, b)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy = %q", target, got)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", target, got)
		}
		if strings.Contains(b, "<script") || strings.Contains(b, "style=") {
			t.Errorf("GET %s: the page has a script or an inline style, which the policy refuses", target)
		}
	}
}

// The embedded build, whatever it holds (only .keep in a checkout, the
// app after make console), serves a page at /.
func TestEmbeddedBuildServesAPage(t *testing.T) {
	h := Handler(Options{})
	resp := get(t, h, http.MethodGet, "/")
	b := body(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(b), "<!doctype html>") {
		t.Fatalf("GET / answered %d %q", resp.StatusCode, b)
	}
	if Built(h) == strings.Contains(b, "make console") {
		t.Errorf("Built() = %t, but the page is %q", Built(h), b)
	}
}

func TestClientRoutesGetIndex(t *testing.T) {
	h := Handler(Options{Files: built()})
	if !Built(h) {
		t.Fatal("Built says a build with index.html is not one")
	}
	for _, target := range []string{"/", "/index.html", "/conversations/0b6f8c1e-3f0a-4b8e-9a55-0c2b1d1f4e6a", "/admin/users?tenant=x", "/login"} {
		resp := get(t, h, http.MethodGet, target)
		b := body(t, resp)
		if resp.StatusCode != http.StatusOK || !strings.Contains(b, `<div id="app">`) {
			t.Errorf("GET %s answered %d %q; want index.html", target, resp.StatusCode, b)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", target, got)
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
			t.Errorf("GET %s: Content-Type = %q", target, got)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy = %q", target, got)
		}
	}
	// HEAD answers like GET, without the body.
	resp := get(t, h, http.MethodHead, "/conversations")
	if resp.StatusCode != http.StatusOK || body(t, resp) != "" {
		t.Errorf("HEAD /conversations answered %d", resp.StatusCode)
	}
	resp = get(t, h, http.MethodPost, "/login")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /login answered %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestAssetsAreCachedForGood(t *testing.T) {
	h := Handler(Options{Files: built()})
	for target, want := range map[string]string{
		"/assets/index-Bx1.js":      "public, max-age=31536000, immutable",
		"/assets/index-C9a.css":     "public, max-age=31536000, immutable",
		"/assets/nested/font-E.ttf": "public, max-age=31536000, immutable",
		"/favicon.svg":              "no-cache",
	} {
		resp := get(t, h, http.MethodGet, target)
		b := body(t, resp)
		if resp.StatusCode != http.StatusOK || b != string(built()[strings.TrimPrefix(target, "/")].Data) {
			t.Errorf("GET %s answered %d %q", target, resp.StatusCode, b)
		}
		if got := resp.Header.Get("Cache-Control"); got != want {
			t.Errorf("GET %s: Cache-Control = %q, want %q", target, got, want)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy = %q", target, got)
		}
	}
	if ct := get(t, h, http.MethodGet, "/assets/index-Bx1.js").Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("a script's Content-Type = %q", ct)
	}

	// A revalidation of an unchanged file is a 304.
	resp := get(t, h, http.MethodGet, "/favicon.svg")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if resp := get(t, h, http.MethodGet, "/favicon.svg", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match %s answered %d, want 304", etag, resp.StatusCode)
	}

	// A file that is not there is a 404, never index.html loaded as a
	// script.
	for _, target := range []string{"/assets/index-old.js", "/assets/gone", "/robots.txt"} {
		resp := get(t, h, http.MethodGet, target)
		if b := body(t, resp); resp.StatusCode != http.StatusNotFound || strings.Contains(b, "<div") {
			t.Errorf("GET %s answered %d %q; want 404", target, resp.StatusCode, b)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy = %q", target, got)
		}
	}
}

func TestScriptsAreServedCompressed(t *testing.T) {
	h := Handler(Options{Files: built()})
	want := string(built()["assets/index-Bx1.js"].Data)
	resp := get(t, h, http.MethodGet, "/assets/index-Bx1.js", "Accept-Encoding", "br, gzip;q=0.8")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("Content-Encoding %q, Vary %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader([]byte(body(t, resp))))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || string(raw) != want {
		t.Errorf("the compressed script does not decompress to the script: %v", err)
	}
	plainTag := get(t, h, http.MethodGet, "/assets/index-Bx1.js").Header.Get("ETag")
	if plainTag == resp.Header.Get("ETag") {
		t.Error("the compressed and the plain script have the same ETag")
	}
	for _, enc := range []string{"", "gzip;q=0", "br"} {
		resp := get(t, h, http.MethodGet, "/assets/index-Bx1.js", "Accept-Encoding", enc)
		if resp.Header.Get("Content-Encoding") != "" || body(t, resp) != want {
			t.Errorf("Accept-Encoding %q: answered compressed", enc)
		}
	}
}

// The API's paths are never the app: a GET no API route took is the
// API's 404 problem, so that a client calling a wrong path gets no HTML.
func TestAPIPathsAreNotShadowed(t *testing.T) {
	h := Handler(Options{Files: built()})
	for _, target := range []string{"/v1", "/v1/", "/v1/nothing", "/v1/conversations/42/nope", "/openapi.json", "/healthz", "/readyz", "/metrics", "/debug/pprof/"} {
		resp := get(t, h, http.MethodGet, target)
		b := body(t, resp)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(b, `"status":404`) {
			t.Errorf("GET %s answered %d %s %q; want a 404 problem", target, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}
