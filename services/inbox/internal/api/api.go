// Package api serves the inbox's HTTP API under /v1: what agents work in
// all day and what admins configure, described by the OpenAPI document it
// serves at GET /openapi.json. Every route but login, refresh and that
// document needs a bearer token (a user's access token or an
// integration's API token) or the web console's session cookie
// (session.go); a principal sees its own tenant only, and an
// object of another tenant, or out of an agent's sight, is answered
// exactly like one that does not exist.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/language"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/translate"
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

// Deps are what the API works with.
type Deps struct {
	Store  *store.Store
	Locker *redis.Locker
	// Presence keeps agents' heartbeats.
	Presence  *redis.Presence
	Languages *language.Detector
	Clock     retry.Clock
	Log       *slog.Logger
	// Stream serves GET /v1/stream; nil leaves the route out.
	Stream http.Handler
	// Blobs keeps attachments: agents' uploads, and what customers sent.
	Blobs blob.Store
	// MaxUploadBytes bounds a file uploaded by POST /v1/attachments; 0
	// means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// Egress decides which tenant-entered URLs (chat endpoints) may be
	// saved: the operator's -egress.allow and -egress.allow-http. nil
	// allows public https URLs only.
	Egress *egress.Policy
	// TranslationClient calls the tenants' translators: an
	// *egress.Client.
	TranslationClient translate.Doer
	// Translation holds the reply's translation timeout.
	Translation translate.Config
	// WakeTranslations makes the translation worker look at once for
	// translations due; nil: it finds them on its next look.
	WakeTranslations func()
	// Rates counts requests against Limits.Token and Limits.Tenant; nil
	// counts nothing.
	Rates *ratelimit.Limiter
	// Logins delays logins after failures (Limits.Account and
	// Limits.Address); nil delays none.
	Logins *ratelimit.Backoff
	// Limits holds the rates, the login delays and the password policy.
	Limits Limits
	// SecureCookies marks the session cookies Secure on requests that
	// did not come over TLS (a proxy ended it): -http.secure-cookies.
	SecureCookies bool
}

// API holds the handlers.
type API struct {
	Deps
	routes []string
}

// New builds the API.
func New(d Deps) *API {
	if d.Egress == nil {
		// An empty allow-list always makes a policy.
		d.Egress, _ = egress.NewPolicy(egress.Config{})
	}
	d.Translation = d.Translation.WithDefaults()
	d.Limits = d.Limits.WithDefaults()
	return &API{Deps: d}
}

// Routes lists the patterns registered, for the API contract test.
func (a *API) Routes() []string { return a.routes }

// handler is a route's work for an authenticated principal; a returned
// error is written as a problem.
type handler func(w http.ResponseWriter, r *http.Request, p domain.Principal) error

// handle registers an authenticated route.
func (a *API) handle(r Router, pattern string, h handler, opts ...httpx.RouteOption) {
	a.routes = append(a.routes, pattern)
	r.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
		p, err := a.principal(req)
		if err != nil {
			a.fail(w, req, err)
			return
		}
		if err := a.limit(w, req, p); err != nil {
			a.fail(w, req, err)
			return
		}
		req = req.WithContext(domain.WithPrincipal(req.Context(), p))
		if err := h(w, req, p); err != nil {
			a.fail(w, req, err)
		}
	}, opts...)
}

// handlePublic registers a route that needs no token (login, refresh).
func (a *API) handlePublic(r Router, pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	a.routes = append(a.routes, pattern)
	r.HandleFunc(pattern, func(w http.ResponseWriter, req *http.Request) {
		if err := h(w, req); err != nil {
			a.fail(w, req, err)
		}
	})
}

// fail writes err as a problem: domain errors to their status, the rest
// as a logged 500 that reveals nothing.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		prob     *httpx.Problem
		field    *domain.FieldError
		conflict *domain.ConflictError
		missing  *domain.MissingTagsError
		noValue  *domain.MissingVariablesError
		optedOut *domain.OptedOutError
		noHours  *store.NoHoursError
	)
	switch {
	case errors.As(err, &prob):
	case errors.As(err, &noHours):
		prob = httpx.NewProblem(http.StatusBadRequest, "the request is invalid: "+noHours.Error())
		for _, f := range noHours.Fields() {
			prob.Errors = append(prob.Errors, httpx.FieldError{Field: f, Reason: "at least one of the three is required"})
		}
	case errors.As(err, &field):
		prob = httpx.Invalid(field.Field, field.Reason)
	case errors.As(err, &conflict):
		prob = httpx.NewProblem(http.StatusConflict, conflict.Error())
		prob.Extra = map[string]any{"state": conflict.State}
	case errors.As(err, &optedOut):
		prob = httpx.NewProblem(http.StatusConflict, optedOut.Error())
		prob.Errors = []httpx.FieldError{{Field: optedOut.Field, Reason: "opted out of SMS (STOP)"}}
	case errors.As(err, &noValue):
		prob = httpx.NewProblem(http.StatusUnprocessableEntity, noValue.Error())
		prob.Extra = map[string]any{"variables": noValue.Variables}
		for _, v := range noValue.Variables {
			prob.Errors = append(prob.Errors, httpx.FieldError{Field: "variables." + v, Reason: "has no value for this conversation"})
		}
	case errors.As(err, &missing):
		prob = httpx.NewProblem(http.StatusUnprocessableEntity, missing.Error())
		prob.Extra = map[string]any{"missing_tags": missing.Lists}
		for _, l := range missing.Lists {
			prob.Errors = append(prob.Errors, httpx.FieldError{Field: "tags." + l, Reason: "is mandatory"})
		}
	case errors.Is(err, store.ErrBadCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		prob = httpx.NewProblem(http.StatusUnauthorized, "the token or the credentials are wrong, expired or revoked")
	case errors.Is(err, domain.ErrUnprocessable):
		prob = httpx.NewProblem(http.StatusUnprocessableEntity, strings.TrimPrefix(err.Error(), "unprocessable: "))
	case errors.Is(err, domain.ErrNotFound) || errors.Is(err, store.ErrNotFound):
		prob = httpx.NewProblem(http.StatusNotFound, "no such object")
	case errors.Is(err, domain.ErrForbidden):
		prob = httpx.NewProblem(http.StatusForbidden, strings.TrimPrefix(err.Error(), "forbidden: "))
	case errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrStale):
		prob = httpx.NewProblem(http.StatusConflict, err.Error())
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		prob = httpx.NewProblem(http.StatusServiceUnavailable, "the request took too long; retry")
	default:
		a.Log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		prob = httpx.NewProblem(http.StatusInternalServerError, "the server could not handle the request; it has been logged")
	}
	if prob.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
	}
	httpx.WriteProblem(w, prob)
}

// need refuses a principal without perm.
func need(p domain.Principal, perm domain.Permission) error {
	if !p.Can(perm) {
		return &httpx.Problem{Type: "about:blank", Title: "Forbidden", Status: http.StatusForbidden,
			Detail: "this needs the " + string(perm) + " permission"}
	}
	return nil
}

// pathID reads a UUID path parameter; one that is not a UUID names no
// object, so it is a 404 like any unknown id.
func pathID(r *http.Request, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return uuid.Nil, domain.ErrNotFound
	}
	return id, nil
}

// tenantOf is the principal's tenant; one that does not parse owns
// nothing, so whatever it asks for is not found.
func tenantOf(p domain.Principal) (uuid.UUID, error) {
	t, err := uuid.Parse(p.Tenant)
	if err != nil {
		return uuid.Nil, domain.ErrNotFound
	}
	return t, nil
}

// tenantFor is the opening of a route: it refuses p without each of perms
// (none: any user of the tenant), then returns p's tenant. Permissions
// come first, so that a refused principal learns nothing else.
func tenantFor(p domain.Principal, perms ...domain.Permission) (uuid.UUID, error) {
	for _, perm := range perms {
		if err := need(p, perm); err != nil {
			return uuid.Nil, err
		}
	}
	return tenantOf(p)
}

// targetFor is tenantFor and the object the path's {id} names.
func targetFor(r *http.Request, p domain.Principal, perms ...domain.Permission) (tenant, id uuid.UUID, err error) {
	if tenant, err = tenantFor(p, perms...); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	if id, err = pathID(r, "id"); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return tenant, id, nil
}

// inTx runs fn in a transaction and returns what it made.
func inTx[T any](ctx context.Context, s *store.Store, fn func(tx pgx.Tx) (T, error)) (T, error) {
	var out T
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = fn(tx)
		return err
	})
	return out, err
}

// removeInTx runs fn, which removes or stops an object, in a transaction
// and answers 204 once it is committed.
func removeInTx(w http.ResponseWriter, r *http.Request, s *store.Store, fn func(tx pgx.Tx) error) error {
	if err := s.InTx(r.Context(), fn); err != nil {
		return err
	}
	return noContent(w)
}

// decode reads a JSON body strictly.
func decode(r *http.Request, v any) error { return httpx.DecodeJSON(r, v) }

// page reads limit and cursor.
func page(r *http.Request) (int, *store.Position, error) {
	q := r.URL.Query()
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return 0, nil, domain.Invalid("limit", "must be an integer from 1 to 200")
		}
		limit = n
	}
	var after *store.Position
	if s := q.Get("cursor"); s != "" {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		var p store.Position
		if err != nil || json.Unmarshal(raw, &p) != nil || p.ID == uuid.Nil || p.At.IsZero() {
			return 0, nil, domain.Invalid("cursor", "is not a cursor returned by this endpoint")
		}
		after = &p
	}
	return limit, after, nil
}

func cursor(p store.Position) string {
	raw, _ := json.Marshal(p) // a time and a UUID always marshal
	return base64.RawURLEncoding.EncodeToString(raw)
}

// List is a page of items.
type List[T any] struct {
	Items []T `json:"items"`
	// NextCursor fetches the next page; absent on the last one.
	NextCursor string `json:"next_cursor,omitempty"`
}

// servePage answers the page that r asks for of the tenant's items, which
// list returns in order; pos is where an item stands, for cursors.
func servePage[T any](w http.ResponseWriter, r *http.Request, tenant uuid.UUID,
	list func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]T, error), pos func(T) store.Position) error {
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := list(r.Context(), tenant, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, pos))
}

// pageOf cuts items fetched with limit+1 into a page.
func pageOf[T any](items []T, limit int, pos func(T) store.Position) List[T] {
	out := List[T]{Items: items}
	if len(items) > limit {
		out.Items = items[:limit]
		out.NextCursor = cursor(pos(out.Items[limit-1]))
	}
	if out.Items == nil {
		out.Items = []T{}
	}
	return out
}

// Register adds every route.
func (a *API) Register(r Router) {
	a.registerAuth(r)
	a.registerSession(r)
	a.registerConversations(r)
	a.registerStart(r)
	a.registerAttachments(r)
	a.registerAdmin(r)
	a.registerAutomation(r)
	a.registerPresence(r)
	a.registerContacts(r)
	a.registerTemplates(r)
	a.registerExpertQuestions(r)
	a.registerHelp(r)
	a.registerExport(r)
	a.registerErasure(r)
	a.registerNotifications(r)
	a.registerTranslation(r)
	a.registerKnowledge(r)
	a.registerLogins(r)
	a.registerOpenAPI(r)
	if a.Stream != nil {
		a.handle(r, "GET /v1/stream", func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
			// An open stream counts as the agent's heartbeat.
			if tenant, user, err := me(p); err == nil && a.Presence != nil {
				ctx, stop := context.WithCancel(r.Context())
				defer stop()
				go a.beatWhile(ctx, tenant, user)
			}
			a.Stream.ServeHTTP(w, r)
			return nil
		}, httpx.WithoutTimeout())
	}
}

func ok(w http.ResponseWriter, v any) error {
	httpx.WriteJSON(w, http.StatusOK, v)
	return nil
}

func created(w http.ResponseWriter, v any) error {
	httpx.WriteJSON(w, http.StatusCreated, v)
	return nil
}

// checkText refuses a text field that is not text (invalid UTF-8, a NUL),
// longer than maxBytes, or blank while required, naming field.
func checkText(field, s string, required bool, maxBytes int) error {
	if required && strings.TrimSpace(s) == "" {
		return domain.Invalid(field, fmt.Sprintf("is required: text of at most %d bytes", maxBytes))
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return domain.Invalid(field, "must be text: valid UTF-8 without NUL")
	}
	if len(s) > maxBytes {
		return domain.Invalid(field, fmt.Sprintf("is %d bytes long, more than %d", len(s), maxBytes))
	}
	return nil
}
