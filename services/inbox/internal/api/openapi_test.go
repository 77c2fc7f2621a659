package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
)

// recorder is a Router that records the patterns registered, and serves
// them with a plain ServeMux.
type recorder struct {
	mux      *http.ServeMux
	patterns []string
}

func (r *recorder) HandleFunc(pattern string, h http.HandlerFunc, _ ...httpx.RouteOption) {
	r.patterns = append(r.patterns, pattern)
	r.mux.HandleFunc(pattern, h)
}

// registered builds an API with zero dependencies (but a stream, so that
// GET /v1/stream is registered too) and returns its routes.
func registered(t *testing.T) (*API, *recorder) {
	t.Helper()
	a := New(Deps{Stream: http.NotFoundHandler()})
	rec := &recorder{mux: http.NewServeMux()}
	a.Register(rec)
	if !slices.Equal(rec.patterns, a.Routes()) {
		t.Fatalf("API.Routes() = %v, but the router was given %v", a.Routes(), rec.patterns)
	}
	return a, rec
}

func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// operations lists the document's operations as ServeMux patterns.
func operations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := loadDocument(t)
	if doc.OpenAPI != "3.0.3" || doc.Info.Title != "Switchboard inbox API" {
		t.Errorf("openapi = %q, title = %q; want 3.0.3, Switchboard inbox API", doc.OpenAPI, doc.Info.Title)
	}
}

// TestOpenAPIDocumentsEveryRoute checks both ways that the document's
// operations are the routes Register adds.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := loadDocument(t)
	_, rec := registered(t)
	documented := operations(doc)
	routes := slices.Clone(rec.patterns)
	slices.Sort(routes)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %q is registered but not in openapi.json: describe it there (paths.%q.%s)", r, strings.SplitN(r, " ", 2)[1], strings.ToLower(strings.SplitN(r, " ", 2)[0]))
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.json describes %q, which the API does not register: remove it from the document or register it", d)
		}
	}
}

// TestOpenAPIResponsesAreConsistent checks what every operation must
// document whatever it does: 401 unless it is public, 400 and 413 when it
// takes a body, 404 when it names an object in its path, and 500.
func TestOpenAPIResponsesAreConsistent(t *testing.T) {
	doc := loadDocument(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			need := []string{"500"}
			public := op.Security != nil && len(*op.Security) == 0
			if !public {
				need = append(need, "401")
			}
			if op.RequestBody != nil {
				need = append(need, "400", "413")
			}
			if strings.Contains(path, "{id}") {
				need = append(need, "404")
			}
			for _, status := range need {
				if op.Responses.Value(status) == nil {
					t.Errorf("%s: no %s response documented", name, status)
				}
			}
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s: no operationId or summary", name)
			}
		}
	}
}

func TestOpenAPIIsServedWithoutAToken(t *testing.T) {
	_, rec := registered(t)
	srv := httptest.NewServer(rec.mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json answered %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if string(body) != string(openAPIDocument) {
		t.Error("GET /openapi.json does not answer the embedded document")
	}
}
