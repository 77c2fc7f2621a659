// Package console serves the agents' and admins' web console: the
// single-page app that Vite builds into dist/, embedded in the binary and
// served at / by whichever process serves the inbox API. Without a build
// (dist/ holds only .keep, as in a checkout without Node) it serves a
// page saying how to build it, so that `go build` and the Go tests need no
// Node.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// dist is what `make console` builds; all: keeps dist/.keep, so that the
// directory exists and embeds without a build.
//
//go:embed all:dist
var dist embed.FS

// ContentSecurityPolicy is sent with every console response: scripts,
// styles and connections from the console's own origin only (no inline
// script or style), images also from data: and blob: URLs (previews of
// uploads), frames from blob: (customer HTML shown in a sandboxed
// frame), and the console never framed by another site.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"frame-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Cache-Control values: Vite names the files under assets/ after their
// content, so they never change; index.html names the current ones, so
// it is never kept; other files are revalidated.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheNoStore   = "no-store"
	cacheRevalid   = "no-cache"
)

// reserved are the paths of the API and of the server itself: a GET there
// that no route took is a 404 problem, never the app, so that a client
// calling a wrong API path is not answered with HTML.
var reserved = []string{"/v1/", "/openapi.json", "/healthz", "/readyz", "/metrics", "/debug/"}

// notBuilt is served instead of index.html when the app was not built.
// It holds no script and no inline style: the policy refuses them.
const notBuilt = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Switchboard console not built</title></head>
<body>
<h1>The Switchboard console is not built</h1>
<p>This binary was built without the web console. Run <code>make console</code>
(Node.js 20 and npm), then rebuild the binary; <code>make run</code> does both.</p>
<p>La console n'est pas construite : lancez <code>make console</code>, puis reconstruisez le binaire.</p>
<p>The API is served all the same: <a href="/openapi.json">/openapi.json</a> describes it.</p>
</body>
</html>
`

// Options configure the handler.
type Options struct {
	// Files replaces the embedded build (tests); nil serves dist/.
	Files fs.FS
}

// file is one file of the build, read once.
type file struct {
	name  string
	data  []byte
	gzip  []byte // nil when compressing does not pay
	etag  string
	cache string
}

// handler serves the app.
type handler struct {
	files map[string]*file
	index *file
	// broken is why the build could not be read; every page is then a
	// 500 saying so, the API being served all the same.
	broken error
}

// Handler serves the app at /: files of the build as they are, index.html
// for any other path that is not a file's (the app's own routes, such as
// /conversations/{id}), and 404 under the API's paths. Every answer
// carries ContentSecurityPolicy.
func Handler(opts Options) http.Handler {
	h := &handler{files: map[string]*file{}}
	if err := h.load(opts.Files); err != nil {
		// Only a replaced file system can fail: the embedded one is in
		// memory.
		return &handler{broken: err}
	}
	h.index = h.files["index.html"]
	if h.index == nil {
		h.index = &file{name: "index.html", data: []byte(notBuilt), cache: cacheNoStore}
	}
	return h
}

// load reads every file of the build (dist/ when files is nil).
func (h *handler) load(files fs.FS) error {
	if files == nil {
		sub, err := fs.Sub(dist, "dist")
		if err != nil {
			return fmt.Errorf("console: open the embedded build: %w", err)
		}
		files = sub
	}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path.Base(name), ".") {
			return err
		}
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		f := &file{name: name, data: data, cache: cacheRevalid}
		switch {
		case name == "index.html":
			f.cache = cacheNoStore
		case strings.HasPrefix(name, "assets/"):
			f.cache = cacheImmutable
		}
		sum := sha256.Sum256(data)
		f.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		if f.gzip, err = compress(name, data); err != nil {
			return err
		}
		h.files[name] = f
		return nil
	})
	if err != nil {
		return fmt.Errorf("console: read the build: %w", err)
	}
	return nil
}

// Built reports whether h serves a build of the app rather than the page
// saying it is not built.
func Built(h http.Handler) bool {
	s, ok := h.(*handler)
	return ok && s.files["index.html"] != nil
}

// compressible are the types worth compressing.
var compressible = map[string]bool{".js": true, ".mjs": true, ".css": true, ".html": true, ".svg": true, ".json": true, ".map": true, ".txt": true, ".webmanifest": true}

// compress gzips what is worth it, once, at start.
func compress(name string, data []byte) ([]byte, error) {
	if !compressible[path.Ext(name)] || len(data) < 1024 {
		return nil, nil
	}
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("compress %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress %s: %w", name, err)
	}
	if b.Len() >= len(data)*9/10 {
		return nil, nil
	}
	return b.Bytes(), nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", ContentSecurityPolicy)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the console is read with GET", http.StatusMethodNotAllowed)
		return
	}
	if h.broken != nil {
		http.Error(w, h.broken.Error(), http.StatusInternalServerError)
		return
	}
	p := r.URL.Path
	if p == "/v1" || slicesHasPrefix(p, reserved) {
		notFoundProblem(w)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if f, ok := h.files[name]; ok && name != "index.html" {
		serve(w, r, f)
		return
	}
	// A path naming a file that is not there is a 404, not the app: a
	// stale asset must fail visibly rather than load HTML as a script.
	if name != "" && name != "index.html" && (strings.HasPrefix(name, "assets/") || strings.Contains(path.Base(name), ".")) {
		w.Header().Set("Cache-Control", cacheRevalid)
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	serve(w, r, h.index)
}

// serve writes f, compressed when the client accepts it.
func serve(w http.ResponseWriter, r *http.Request, f *file) {
	hd := w.Header()
	hd.Set("Cache-Control", f.cache)
	if ct := mime.TypeByExtension(path.Ext(f.name)); ct != "" {
		hd.Set("Content-Type", ct)
	}
	data, etag := f.data, f.etag
	if f.gzip != nil {
		hd.Add("Vary", "Accept-Encoding")
		if r.Header.Get("Range") == "" && acceptsGzip(r) {
			hd.Set("Content-Encoding", "gzip")
			data = f.gzip
			// Another representation, another tag.
			etag = strings.TrimSuffix(etag, `"`) + `-gz"`
		}
	}
	if etag != "" {
		hd.Set("ETag", etag)
	}
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(data))
}

// acceptsGzip reports whether the request's Accept-Encoding takes gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func slicesHasPrefix(p string, prefixes []string) bool {
	for _, pre := range prefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// notFoundProblem answers an API path no route took as the API answers
// what does not exist: an RFC 9457 problem.
func notFoundProblem(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", cacheRevalid)
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"type":"about:blank","title":"Not Found","status":404,"detail":"no such route"}` + "\n"))
}
