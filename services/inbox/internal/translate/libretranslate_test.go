package translate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestLibreTranslateAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		from      string
		want      Result
		reason    string
		permanent bool
	}{
		{name: "translated", status: 200, body: `{"translatedText":"Hallo"}`, from: "en", want: Result{Text: "Hallo", Source: "en"}},
		{name: "source detected", status: 200, body: `{"translatedText":"Hello","detectedLanguage":{"confidence":90,"language":"fr"}}`, want: Result{Text: "Hello", Source: "fr"}},
		{name: "language refused", status: 400, body: `{"error":"de is not supported"}`, from: "en", reason: "answered 400: de is not supported", permanent: true},
		{name: "bad key", status: 403, body: `{"error":"Invalid API key"}`, from: "en", reason: "answered 403", permanent: true},
		{name: "slow down", status: 429, body: `{"error":"Slowdown"}`, from: "en", reason: "answered 429"},
		{name: "down", status: 500, body: `oops`, from: "en", reason: "answered 500"},
		{name: "not LibreTranslate", status: 200, body: `{"text":"Hallo"}`, from: "en", reason: "no translatedText", permanent: true},
		{name: "too large", status: 200, body: `{"translatedText":"` + strings.Repeat("a", MaxResponseBytes) + `"}`, from: "en", reason: "larger than", permanent: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/base/translate" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("posted to %s as %q", r.URL.Path, r.Header.Get("Content-Type"))
				}
				_ = json.NewDecoder(r.Body).Decode(&got)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			tr, err := New(Settings{Provider: ProviderLibreTranslate, URL: srv.URL + "/base/", APIKey: "k"}, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.Translate(context.Background(), "Hello", tc.from, "de")
			want := map[string]string{"q": "Hello", "source": tc.from, "target": "de", "format": "text", "api_key": "k"}
			if tc.from == "" {
				want["source"] = "auto"
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("request %s = %q, want %q", k, got[k], v)
				}
			}
			if tc.reason == "" {
				if err != nil || res != tc.want {
					t.Fatalf("Translate = %+v, %v; want %+v", res, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(Reason(err), tc.reason) || Permanent(err) != tc.permanent {
				t.Fatalf("Translate error = %v (permanent %v); want one saying %q, permanent %v", err, Permanent(err), tc.reason, tc.permanent)
			}
		})
	}
}

func TestUnknownProvider(t *testing.T) {
	if _, err := New(Settings{Provider: "deepl"}, nil); err == nil {
		t.Fatal("an unknown provider was accepted")
	}
}
