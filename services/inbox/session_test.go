package inbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/services/inbox"
)

// browser is the web console's browser: it keeps the session's cookies
// by path as a browser does, and sends what the console sends.
type browser struct {
	e       env
	cookies map[string]*http.Cookie
}

func newBrowser(e env) *browser { return &browser{e: e, cookies: map[string]*http.Cookie{}} }

// addCookies puts on req the cookies a browser sends to path.
func (b *browser) addCookies(req *http.Request, path string) {
	for _, c := range b.cookies {
		if strings.HasPrefix(path, c.Path) {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
}

// call sends a request with the cookies and header (name, value pairs),
// keeps the cookies the answer sets, and checks the answer against the
// OpenAPI document.
func (b *browser) call(t *testing.T, method, path, body string, header ...string) azResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.e.base+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	b.addCookies(req, path)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := azClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	oaCheck(t, req, resp.StatusCode, resp.Header, raw)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return azResp{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// send is call as the console sends what may change something: the CSRF
// header and its own origin.
func (b *browser) send(t *testing.T, method, path, body string) azResp {
	t.Helper()
	return b.call(t, method, path, body, "X-CSRF-Token", b.value("sb_csrf"), "Origin", b.e.base, "Sec-Fetch-Site", "same-origin")
}

func (b *browser) value(name string) string {
	if c := b.cookies[name]; c != nil {
		return c.Value
	}
	return ""
}

// setCookies are the cookies an answer sets, by name.
func setCookies(r azResp) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		out[c.Name] = c
	}
	return out
}

// consoleDouble stands in for the web console (web/console, which the
// inbox does not import): it says which handler answered.
var consoleDouble = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "the console at "+r.URL.Path)
})

func TestBrowserSession(t *testing.T) {
	e := startTuned(t, nil, func(_ *inbox.Config, d *inbox.Deps) { d.Console = consoleDouble })
	b := e.tenant(t, "Acme")
	user, token := e.userToken(t, b, "admin")
	login := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":"correct horse battery"}`, b.Tenant.ID, user.Email)
	br := newBrowser(e)
	queueNames := func(t *testing.T) string {
		r := br.call(t, http.MethodGet, "/v1/admin/queues", "")
		require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
		return string(r.Body)
	}

	// Another site cannot log the browser in, nor can wrong credentials.
	for _, header := range [][]string{
		{"Origin", "https://evil.example"},
		{"Origin", "null"},
		{"Origin", e.base, "Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
	} {
		r := br.call(t, http.MethodPost, "/v1/auth/session", login, header...)
		azMustProblem(t, r, http.StatusForbidden, fmt.Sprintf("a login with %v", header))
		require.Empty(t, setCookies(r), "a refused login set cookies")
	}
	r := br.call(t, http.MethodPost, "/v1/auth/session", strings.Replace(login, "correct horse", "wrong horse", 1), "Origin", e.base)
	azMustProblem(t, r, http.StatusUnauthorized, "a login with a wrong password")
	require.Empty(t, br.cookies)

	// The login sets the cookies; the page gets who logged in, never a
	// token.
	before := time.Now()
	r = br.call(t, http.MethodPost, "/v1/auth/session", login, "Origin", e.base, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	var s struct {
		User struct {
			TenantID string `json:"tenant_id"`
			UserID   string `json:"user_id"`
			Role     string `json:"role"`
		} `json:"user"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &s))
	require.Equal(t, user.ID.String(), s.User.UserID)
	require.Equal(t, b.Tenant.ID.String(), s.User.TenantID)
	require.Equal(t, "admin", s.User.Role)
	require.WithinRange(t, s.ExpiresAt, before.Add(14*time.Minute), time.Now().Add(16*time.Minute))
	require.NotContains(t, string(r.Body), "sba_")
	require.NotContains(t, string(r.Body), "sbr_")
	set := setCookies(r)
	for name, want := range map[string]struct {
		path     string
		httpOnly bool
		maxAge   int
	}{
		"sb_session": {"/", true, 15 * 60},
		"sb_refresh": {"/v1/auth/session", true, 30 * 24 * 3600},
		"sb_csrf":    {"/", false, 30 * 24 * 3600},
	} {
		c := set[name]
		require.NotNil(t, c, "no %s cookie", name)
		require.NotEmpty(t, c.Value, name)
		require.Equal(t, want.path, c.Path, name)
		require.Equal(t, want.httpOnly, c.HttpOnly, "%s HttpOnly", name)
		require.Equal(t, http.SameSiteStrictMode, c.SameSite, name)
		require.False(t, c.Secure, "%s is Secure over plain HTTP without -http.secure-cookies", name)
		require.InDelta(t, want.maxAge, c.MaxAge, 2, name)
	}
	require.True(t, strings.HasPrefix(set["sb_session"].Value, "sba_"))

	// Reading needs the cookie only.
	var me struct {
		UserID string `json:"user_id"`
	}
	r = br.call(t, http.MethodGet, "/v1/me", "")
	require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
	require.NoError(t, json.Unmarshal(r.Body, &me))
	require.Equal(t, user.ID.String(), me.UserID)

	// Changing something needs the CSRF header, from the console's
	// origin; a refused request changes nothing.
	create := `{"name":"Billing"}`
	csrf := br.value("sb_csrf")
	for _, c := range []struct {
		header []string
		field  string
	}{
		{nil, "X-CSRF-Token"},
		{[]string{"X-CSRF-Token", "not-the-cookie"}, "X-CSRF-Token"},
		{[]string{"X-CSRF-Token", csrf, "Origin", "https://evil.example"}, "Origin"},
		{[]string{"X-CSRF-Token", csrf, "Origin", strings.Replace(e.base, "127.0.0.1", "localhost", 1)}, "Origin"},
		{[]string{"X-CSRF-Token", csrf, "Sec-Fetch-Site", "same-site"}, "Sec-Fetch-Site"},
	} {
		r := br.call(t, http.MethodPost, "/v1/admin/queues", create, c.header...)
		p := azMustProblem(t, r, http.StatusForbidden, fmt.Sprintf("a cookie request with %v", c.header))
		require.Contains(t, p.fields(), c.field, "answered %s", r)
	}
	require.NotContains(t, queueNames(t), "Billing")
	r = br.send(t, http.MethodPost, "/v1/admin/queues", create)
	require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
	// Without Origin and Sec-Fetch-Site (an older browser): the CSRF
	// header suffices.
	r = br.call(t, http.MethodPost, "/v1/admin/queues", `{"name":"Sales"}`, "X-CSRF-Token", csrf)
	require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
	require.Equal(t, 1, strings.Count(queueNames(t), `"Billing"`))

	// The stream takes the cookie, as EventSource sends it.
	stream, _ := stOpenAs(t, e, func(req *http.Request) { br.addCookies(req, "/v1/stream") }, "")
	e.send(t, b, "ev-cookie", "m-cookie", "s-cookie", "u-cookie", "Bonjour du navigateur")
	stream.until(t, "the new message", stMessage("Bonjour du navigateur"))

	// A bearer request is as before: the header wins over any cookie,
	// and needs no CSRF header.
	bearer := newBrowser(e)
	bearer.cookies["sb_session"] = &http.Cookie{Name: "sb_session", Value: "sba_not-a-session", Path: "/"}
	r = bearer.call(t, http.MethodPost, "/v1/admin/queues", `{"name":"Tier 2"}`, "Authorization", "Bearer "+token)
	require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
	bearer.cookies["sb_session"] = br.cookies["sb_session"]
	r = bearer.call(t, http.MethodGet, "/v1/me", "", "Authorization", "Bearer sbt_not-a-token")
	azMustProblem(t, r, http.StatusUnauthorized, "a wrong bearer token beside a good cookie")

	// Refresh rotates the tokens and keeps the CSRF value; the old access
	// token stops working.
	oldAccess, oldRefresh := br.value("sb_session"), br.value("sb_refresh")
	azMustProblem(t, br.call(t, http.MethodPost, "/v1/auth/session/refresh", ""), http.StatusForbidden, "a refresh without the CSRF header")
	require.Equal(t, oldAccess, br.value("sb_session"))
	r = br.send(t, http.MethodPost, "/v1/auth/session/refresh", "")
	require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
	require.NoError(t, json.Unmarshal(r.Body, &s))
	require.Equal(t, user.ID.String(), s.User.UserID)
	require.NotEqual(t, oldAccess, br.value("sb_session"))
	require.NotEqual(t, oldRefresh, br.value("sb_refresh"))
	require.Equal(t, csrf, br.value("sb_csrf"))
	stale := newBrowser(e)
	stale.cookies["sb_session"] = &http.Cookie{Name: "sb_session", Value: oldAccess, Path: "/"}
	azMustProblem(t, stale.call(t, http.MethodGet, "/v1/me", ""), http.StatusUnauthorized, "the access token refreshed away")
	require.Equal(t, http.StatusOK, br.call(t, http.MethodGet, "/v1/me", "").Status)

	// A second tab refreshing with the same refresh token at the same
	// time: 409, and the session goes on.
	tab := newBrowser(e)
	for name, v := range map[string]string{"sb_refresh": oldRefresh, "sb_csrf": csrf} {
		tab.cookies[name] = &http.Cookie{Name: name, Value: v, Path: "/"}
	}
	azMustProblem(t, tab.send(t, http.MethodPost, "/v1/auth/session/refresh", ""), http.StatusConflict, "a refresh raced by another tab's")
	require.Equal(t, http.StatusOK, br.call(t, http.MethodGet, "/v1/me", "").Status, "a raced refresh ended the session")
	azMustProblem(t, newBrowser(e).send(t, http.MethodPost, "/v1/auth/session/refresh", ""), http.StatusUnauthorized, "a refresh without cookies")

	// Logout ends the session and clears the cookies.
	access, refresh := br.value("sb_session"), br.value("sb_refresh")
	azMustProblem(t, br.call(t, http.MethodDelete, "/v1/auth/session", ""), http.StatusForbidden, "a logout without the CSRF header")
	require.Equal(t, http.StatusOK, br.call(t, http.MethodGet, "/v1/me", "").Status, "a refused logout ended the session")
	r = br.send(t, http.MethodDelete, "/v1/auth/session", "")
	require.Equal(t, http.StatusNoContent, r.Status, "answered %s", r)
	for _, name := range []string{"sb_session", "sb_refresh", "sb_csrf"} {
		c := setCookies(r)[name]
		require.NotNil(t, c, "the logout does not clear %s", name)
		require.Negative(t, c.MaxAge, name)
	}
	require.Empty(t, br.cookies)
	stale.cookies["sb_session"].Value = access
	azMustProblem(t, stale.call(t, http.MethodGet, "/v1/me", ""), http.StatusUnauthorized, "a logged-out session")
	stale = newBrowser(e)
	for name, v := range map[string]string{"sb_refresh": refresh, "sb_csrf": csrf} {
		stale.cookies[name] = &http.Cookie{Name: name, Value: v, Path: "/"}
	}
	r = stale.send(t, http.MethodPost, "/v1/auth/session/refresh", "")
	azMustProblem(t, r, http.StatusUnauthorized, "a refresh of a logged-out session")
	require.Negative(t, setCookies(r)["sb_refresh"].MaxAge, "a refused refresh leaves its cookies")
	azMustProblem(t, br.send(t, http.MethodDelete, "/v1/auth/session", ""), http.StatusUnauthorized, "a logout without a session")

	// The console is served beside the API, which it does not shadow.
	for path, want := range map[string]string{
		"/":                        "the console at /",
		"/conversations/42":        "the console at /conversations/42",
		"/v1/me":                   `"user_id":"` + user.ID.String(),
		"/openapi.json":            `"openapi": "3.0.3"`,
		"/v1/admin/queues?limit=1": `"items"`,
	} {
		req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := azClient.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, raw)
		require.Contains(t, string(raw), want, "GET %s", path)
	}
}

// A refresh token used again revokes its session, but not moments after
// its rotation: two tabs of one browser refreshing at once.
func TestRefreshTokenReplay(t *testing.T) {
	clock := &shiftClock{}
	e := startWith(t, clock)
	b := e.tenant(t, "Acme")
	user, _ := e.userToken(t, b, "agent")
	type tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	login := func() tokens {
		var tok tokens
		require.Equal(t, http.StatusOK, e.do(t, "", http.MethodPost, "/v1/auth/login",
			fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":"correct horse battery"}`, b.Tenant.ID, user.Email), &tok))
		return tok
	}
	refresh := func(token string, out any) int {
		return e.do(t, "", http.MethodPost, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, token), out)
	}

	first := login()
	var second tokens
	require.Equal(t, http.StatusOK, refresh(first.RefreshToken, &second))
	require.Equal(t, http.StatusUnauthorized, refresh(first.RefreshToken, nil), "a replay within the race")
	require.Equal(t, http.StatusOK, e.do(t, second.AccessToken, http.MethodGet, "/v1/me", "", nil), "a replay within the race ended the session")

	clock.shift(11 * time.Second)
	require.Equal(t, http.StatusUnauthorized, refresh(first.RefreshToken, nil), "a replay after the race")
	require.Equal(t, http.StatusUnauthorized, e.do(t, second.AccessToken, http.MethodGet, "/v1/me", "", nil), "a replay after the race left the session")
	require.Equal(t, http.StatusUnauthorized, refresh(second.RefreshToken, nil), "a replay after the race left the session")
}
