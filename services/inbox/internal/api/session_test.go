package api

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The session cookies are Secure over TLS, or when the operator says a
// proxy ended it; never otherwise, or a browser on plain HTTP would not
// send them back.
func TestSessionCookiesAreSecureOverTLS(t *testing.T) {
	for _, c := range []struct {
		name   string
		tls    bool
		flag   bool
		secure bool
	}{
		{"plain HTTP", false, false, false},
		{"TLS", true, false, true},
		{"plain HTTP behind a TLS proxy, -http.secure-cookies", false, true, true},
	} {
		a := New(Deps{SecureCookies: c.flag})
		r := httptest.NewRequest(http.MethodPost, "http://console.example/v1/auth/session", nil)
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		a.setCookie(w, r, SessionCookie, "sba_x", "/", time.Minute, true)
		cookies := w.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%s: %d cookies set", c.name, len(cookies))
		}
		got := cookies[0]
		if got.Secure != c.secure || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode || got.MaxAge != 60 {
			t.Errorf("%s: cookie %s: Secure %t HttpOnly %t SameSite %v MaxAge %d; want Secure %t, HttpOnly, Strict, 60",
				c.name, got, got.Secure, got.HttpOnly, got.SameSite, got.MaxAge, c.secure)
		}
	}
}

// A browser says where a request comes from; only the console's own
// origin may use the session cookie to change something.
func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		name   string
		tls    bool
		flag   bool
		header map[string]string
		ok     bool
	}{
		{"no browser headers (curl)", false, false, nil, true},
		{"same origin", false, false, map[string]string{"Origin": "http://console.example:8080", "Sec-Fetch-Site": "same-origin"}, true},
		{"typed in the address bar", false, false, map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"https origin behind a proxy that ended TLS", false, false, map[string]string{"Origin": "https://console.example:8080"}, true},
		{"https origin over TLS", true, false, map[string]string{"Origin": "https://console.example:8080"}, true},
		{"http origin over TLS", true, false, map[string]string{"Origin": "http://console.example:8080"}, false},
		{"http origin, -http.secure-cookies", false, true, map[string]string{"Origin": "http://console.example:8080"}, false},
		{"https origin, -http.secure-cookies", false, true, map[string]string{"Origin": "https://console.example:8080"}, true},
		{"another host", false, false, map[string]string{"Origin": "http://evil.example:8080"}, false},
		{"another port", false, false, map[string]string{"Origin": "http://console.example:8081"}, false},
		{"a sibling subdomain", false, false, map[string]string{"Origin": "http://a.console.example:8080"}, false},
		{"another scheme", false, false, map[string]string{"Origin": "ftp://console.example:8080"}, false},
		{"an opaque origin", false, false, map[string]string{"Origin": "null"}, false},
		{"cross-site", false, false, map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"same-site", false, false, map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"same origin said, another site sent", false, false, map[string]string{"Origin": "http://console.example:8080", "Sec-Fetch-Site": "cross-site"}, false},
	} {
		a := New(Deps{SecureCookies: c.flag})
		r := httptest.NewRequest(http.MethodPost, "http://console.example:8080/v1/conversations", nil)
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		err := a.sameOrigin(r)
		if (err == nil) != c.ok {
			t.Errorf("%s: sameOrigin = %v, want accepted %t", c.name, err, c.ok)
		}
	}
}
