// Package api serves the inbox's HTTP API under /v1. Every route needs a
// bearer API token; a token sees its own tenant only, and an object of
// another tenant is answered exactly like one that does not exist.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Router is where routes are registered (an *httpx.Server).
type Router interface {
	HandleFunc(pattern string, h http.HandlerFunc, opts ...httpx.RouteOption)
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// API holds the handlers.
type API struct {
	store *store.Store
	log   *slog.Logger
}

// New builds the API.
func New(s *store.Store, log *slog.Logger) *API { return &API{store: s, log: log} }

// Register adds the routes.
func (a *API) Register(r Router) {
	r.HandleFunc("GET /v1/conversations", a.authed(a.listConversations))
	r.HandleFunc("GET /v1/conversations/{id}", a.authed(a.getConversation))
	r.HandleFunc("GET /v1/conversations/{id}/messages", a.authed(a.listMessages))
}

type tenantHandler func(w http.ResponseWriter, r *http.Request, tenant uuid.UUID)

// authed resolves the bearer token to its tenant before calling h.
func (a *API) authed(h tenantHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" {
			unauthorized(w, "an API token is required: send Authorization: Bearer <token>")
			return
		}
		tenant, err := a.store.TenantByToken(r.Context(), token)
		if errors.Is(err, store.ErrNotFound) {
			unauthorized(w, "the API token is unknown or revoked")
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h(w, r, tenant)
	}
}

func unauthorized(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	httpx.WriteProblem(w, httpx.NewProblem(http.StatusUnauthorized, detail))
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the request took too long; retry"))
		return
	}
	a.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	httpx.WriteError(w, err)
}

func notFound(w http.ResponseWriter) {
	httpx.WriteProblem(w, httpx.NewProblem(http.StatusNotFound, "no such conversation"))
}

// page reads limit and cursor.
func page(r *http.Request) (int, *store.Position, error) {
	q := r.URL.Query()
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return 0, nil, httpx.Invalid("limit", "must be an integer from 1 to 200")
		}
		limit = n
	}
	var after *store.Position
	if s := q.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		var p store.Position
		if err != nil || json.Unmarshal(raw, &p) != nil || p.ID == uuid.Nil || p.At.IsZero() {
			return 0, nil, httpx.Invalid("cursor", "is not a cursor returned by this endpoint")
		}
		after = &p
	}
	return limit, after, nil
}

func cursor(p store.Position) string {
	raw, _ := json.Marshal(p) // a struct of a time and a UUID always marshals
	return base64.RawURLEncoding.EncodeToString(raw)
}

// List is a page of items.
type List[T any] struct {
	Items []T `json:"items"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (a *API) listConversations(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	limit, after, err := page(r)
	if err != nil {
		httpx.WriteError(w, err)
		return
	}
	items, err := a.store.ListConversations(r.Context(), tenant, after, limit+1)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := List[store.Conversation]{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		last := out.Items[limit-1]
		out.NextCursor = cursor(store.Position{At: last.StartedAt, ID: last.ID})
	}
	if out.Items == nil {
		out.Items = []store.Conversation{}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getConversation(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		notFound(w)
		return
	}
	c, err := a.store.GetConversation(r.Context(), tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, c)
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request, tenant uuid.UUID) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		notFound(w)
		return
	}
	limit, after, err := page(r)
	if err != nil {
		httpx.WriteError(w, err)
		return
	}
	items, err := a.store.ListMessages(r.Context(), tenant, id, after, limit+1)
	if errors.Is(err, store.ErrNotFound) {
		notFound(w)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := List[store.Message]{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		last := out.Items[limit-1]
		out.NextCursor = cursor(store.Position{At: last.ReceivedAt, ID: last.ID})
	}
	if out.Items == nil {
		out.Items = []store.Message{}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
