package sms_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
)

// TestWebhooksLimitedPerAccount: one account's flood of signed messages is
// refused past its burst (429, Retry-After), while another account's keep
// being accepted; unsigned requests naming an account do not use up its
// rate. One request per 100 s: only the burst counts, whatever the speed.
func TestWebhooksLimitedPerAccount(t *testing.T) {
	e := startWith(t, options{webhook: &ratelimit.Rule{Rate: 0.01, Burst: 3}})
	formB := func(sid string) url.Values {
		f := smsForm(sid, "hello")
		f.Set("AccountSid", sidB)
		f.Set("To", "+33700000002")
		return f
	}
	for n := range 5 {
		form := formB(messageSid(900 + n))
		resp, body := e.do(t, request{path: messagesPath(accountB), body: form.Encode(), sig: "not-a-signature"})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	}
	var accepted, refused, quiet int
	for n := range 10 {
		resp, body := e.postMessage(t, smsForm(messageSid(n), "flood"))
		switch resp.StatusCode {
		case http.StatusOK:
			accepted++
		case http.StatusTooManyRequests:
			refused++
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
			require.Contains(t, body, "webhooks of this account")
		default:
			t.Fatalf("message %d answered %d %s", n, resp.StatusCode, body)
		}
		if n%4 == 0 { // three of them: account B's own burst
			form := formB(messageSid(100 + n))
			path := messagesPath(accountB)
			resp, body := e.do(t, request{path: path, body: form.Encode(), sig: sign(tokenB, path, form)})
			require.Equal(t, http.StatusOK, resp.StatusCode, "account B during A's flood: %s", body)
			quiet++
		}
	}
	require.Equal(t, 3, accepted, "account A's burst")
	require.Equal(t, 7, refused)
	require.Equal(t, 3, quiet)
	require.Equal(t, 7.0, e.metric(t, "switchboard_sms_webhooks_rejected_total{reason=rate_limited}"))
}
