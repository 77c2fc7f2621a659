package api

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.0 description of every route this
// package registers, written by hand; a test checks that it names exactly
// the registered routes, and the integration tests validate every
// response against it.
//
//go:embed openapi.json
var openAPIDocument []byte

// registerOpenAPI serves the document at GET /openapi.json, without a
// token: clients and tools read it before they have one. It is a route
// like the others, so the document describes it too.
func (a *API) registerOpenAPI(r Router) {
	a.handlePublic(r, "GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(openAPIDocument)
		return nil
	})
}
