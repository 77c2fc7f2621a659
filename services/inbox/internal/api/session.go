package api

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The browser session (the web console's): the tokens of a login are
// kept in cookies that scripts cannot read, instead of being handed to
// the page. A cookie-authenticated request that may change something
// must come from the console's own origin and carry the CSRF cookie's
// value in a header, which a page of another site can neither read nor
// send (double submit). Bearer tokens work as before.
const (
	// SessionCookie holds the session's access token, sent with every
	// request.
	SessionCookie = "sb_session"
	// RefreshCookie holds its refresh token, sent only to the session
	// routes.
	RefreshCookie = "sb_refresh"
	// CSRFCookie holds the value CSRFHeader repeats; scripts of the
	// console's origin read it.
	CSRFCookie = "sb_csrf"
	// CSRFHeader is where the console repeats CSRFCookie on unsafe
	// methods.
	CSRFHeader = "X-CSRF-Token"

	sessionPath = "/v1/auth/session"
)

// Session is the answer of POST /v1/auth/session and of its refresh:
// who is logged in, and when the access token in the session cookie
// expires (refresh before, or on the first 401).
type Session struct {
	User      Me        `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (a *API) registerSession(r Router) {
	a.handlePublic(r, "POST "+sessionPath, a.openSession)
	a.handlePublic(r, "POST "+sessionPath+"/refresh", a.refreshSession)
	a.handlePublic(r, "DELETE "+sessionPath, a.closeSession)
}

// principal authenticates a request: its bearer token, or, without an
// Authorization header, the session cookie, which unsafe methods accept
// only from the console's origin with the CSRF header.
func (a *API) principal(r *http.Request) (domain.Principal, error) {
	if auth := r.Header.Get("Authorization"); auth != "" || !hasCookie(r, SessionCookie) {
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || token == "" {
			return domain.Principal{}, &httpx.Problem{Type: "about:blank", Title: "Unauthorized", Status: http.StatusUnauthorized,
				Detail: "a token is required: send Authorization: Bearer <token>, or log in with POST /v1/auth/session for a session cookie"}
		}
		return a.Store.Authenticate(r.Context(), token, a.Clock.Now())
	}
	if unsafeMethod(r.Method) {
		if err := a.sameOrigin(r); err != nil {
			return domain.Principal{}, err
		}
		if _, err := checkCSRF(r); err != nil {
			return domain.Principal{}, err
		}
	}
	token := cookie(r, SessionCookie)
	if !strings.HasPrefix(token, store.AccessTokenPrefix) {
		// Only a login puts a token there; an API token is sent as a
		// bearer.
		return domain.Principal{}, store.ErrBadCredentials
	}
	return a.Store.Authenticate(r.Context(), token, a.Clock.Now())
}

// openSession logs in like POST /v1/auth/login, keeping the tokens in
// cookies.
func (a *API) openSession(w http.ResponseWriter, r *http.Request) error {
	// No CSRF token before a session: the origin check keeps another site
	// from logging the browser in to an account of its choosing.
	if err := a.sameOrigin(r); err != nil {
		return err
	}
	t, err := a.logIn(w, r)
	if err != nil {
		return err
	}
	csrf, err := store.RandomSecret("")
	if err != nil {
		return err
	}
	return a.startSession(w, r, t, csrf)
}

// refreshSession rotates the session's tokens with the refresh cookie,
// keeping the CSRF value: requests the console sent meanwhile still
// carry it.
func (a *API) refreshSession(w http.ResponseWriter, r *http.Request) error {
	if err := a.sameOrigin(r); err != nil {
		return err
	}
	refresh := cookie(r, RefreshCookie)
	if refresh == "" {
		return noSession()
	}
	csrf, err := checkCSRF(r)
	if err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	t, err := a.Store.Refresh(r.Context(), refresh, a.Clock.Now())
	if errors.Is(err, store.ErrRefreshRaced) {
		// Another tab refreshed first: its answer set the new cookies,
		// which the console's next request sends.
		return httpx.NewProblem(http.StatusConflict, "the session was refreshed by another request at the same time: retry the request")
	}
	if errors.Is(err, store.ErrBadCredentials) {
		a.clearSession(w, r)
	}
	if err != nil {
		return err
	}
	return a.startSession(w, r, t, csrf)
}

// closeSession logs out: the session ends and the cookies are cleared.
func (a *API) closeSession(w http.ResponseWriter, r *http.Request) error {
	access, refresh := cookie(r, SessionCookie), cookie(r, RefreshCookie)
	if access == "" && refresh == "" {
		return noSession()
	}
	if err := a.sameOrigin(r); err != nil {
		return err
	}
	if _, err := checkCSRF(r); err != nil {
		return err
	}
	if err := noBody(r); err != nil {
		return err
	}
	if err := a.Store.EndSession(r.Context(), access, refresh, a.Clock.Now()); err != nil {
		return err
	}
	a.clearSession(w, r)
	return noContent(w)
}

// startSession sets the cookies of tokens and answers who logged in.
func (a *API) startSession(w http.ResponseWriter, r *http.Request, t store.Tokens, csrf string) error {
	p, err := a.Store.Authenticate(r.Context(), t.AccessToken, a.Clock.Now())
	if err != nil {
		return err
	}
	now := a.Clock.Now()
	a.setCookie(w, r, SessionCookie, t.AccessToken, "/", t.ExpiresAt.Sub(now), true)
	a.setCookie(w, r, RefreshCookie, t.RefreshToken, sessionPath, store.RefreshTTL, true)
	a.setCookie(w, r, CSRFCookie, csrf, "/", store.RefreshTTL, false)
	w.Header().Set("Cache-Control", "no-store")
	return ok(w, Session{User: meOf(p), ExpiresAt: t.ExpiresAt})
}

// clearSession makes the browser forget the session's cookies.
func (a *API) clearSession(w http.ResponseWriter, r *http.Request) {
	a.setCookie(w, r, SessionCookie, "", "/", -1, true)
	a.setCookie(w, r, RefreshCookie, "", sessionPath, -1, true)
	a.setCookie(w, r, CSRFCookie, "", "/", -1, false)
}

// setCookie sets a session cookie for ttl (negative: deletes it). They
// are Secure when the request came over TLS or the operator says the
// console is served over https (-http.secure-cookies), and never sent
// with a request another site starts (SameSite=Strict).
func (a *API) setCookie(w http.ResponseWriter, r *http.Request, name, value, path string, ttl time.Duration, httpOnly bool) {
	maxAge := int(ttl / time.Second)
	if ttl < 0 {
		maxAge = -1
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: httpOnly,
		Secure: r.TLS != nil || a.SecureCookies, SameSite: http.SameSiteStrictMode})
}

// sameOrigin refuses a request a browser sent from another site: with a
// Sec-Fetch-Site other than same-origin or none, or an Origin other than
// the request's own. Clients other than browsers send neither.
func (a *API) sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return crossSite("Sec-Fetch-Site", "is "+site+": requests from another site are refused")
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || !strings.EqualFold(u.Host, r.Host) || u.Path != "" {
		return crossSite("Origin", "is not this server's origin: requests from another site are refused")
	}
	// Behind a proxy that ends TLS the request comes in plain: which
	// scheme the browser used is known only over TLS or when the operator
	// says so.
	https := r.TLS != nil || a.SecureCookies
	if u.Scheme != "https" && (https || u.Scheme != "http") {
		return crossSite("Origin", "is not this server's origin: requests from another site are refused")
	}
	return nil
}

// checkCSRF checks that the CSRF header repeats the CSRF cookie, and
// returns it.
func checkCSRF(r *http.Request) (string, error) {
	want, got := cookie(r, CSRFCookie), r.Header.Get(CSRFHeader)
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return "", crossSite(CSRFHeader, "must repeat the "+CSRFCookie+" cookie on a request authenticated by the session cookie")
	}
	return want, nil
}

func crossSite(field, reason string) *httpx.Problem {
	p := httpx.NewProblem(http.StatusForbidden, "the request may come from another site: "+field+" "+reason)
	p.Errors = []httpx.FieldError{{Field: field, Reason: reason}}
	return p
}

func noSession() *httpx.Problem {
	return httpx.NewProblem(http.StatusUnauthorized, "no session: log in with POST /v1/auth/session")
}

// unsafeMethod reports whether a request may change something.
func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// cookie is the value of the named cookie, "" when absent.
func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func hasCookie(r *http.Request, name string) bool { return cookie(r, name) != "" }
