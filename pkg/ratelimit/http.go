package ratelimit

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
)

// Header fields of the IETF draft "RateLimit header fields for HTTP"
// (draft-ietf-httpapi-ratelimit-headers-09): RateLimit-Policy lists the
// quotas that apply, as "name";q=<requests>;w=<seconds>; RateLimit says
// what is left of the closest one, as "name";r=<requests>;t=<seconds
// until the quota is whole again>. For GCRA the quota is the burst and the
// window the time the burst takes to come back.
const (
	HeaderPolicy    = "RateLimit-Policy"
	HeaderRateLimit = "RateLimit"
)

// SetHeaders writes RateLimit-Policy for rules (those that are on) and
// RateLimit for the decision's rule. A degraded decision writes nothing:
// nothing was counted.
func SetHeaders(h http.Header, d Decision, rules ...Rule) {
	if d.Degraded || d.Rule.Name == "" {
		return
	}
	var policies []string
	for _, r := range rules {
		if !r.Off() {
			policies = append(policies, fmt.Sprintf("%q;q=%d;w=%d", r.Name, max(r.Burst, 1), Seconds(r.Window())))
		}
	}
	h.Set(HeaderPolicy, strings.Join(policies, ", "))
	h.Set(HeaderRateLimit, fmt.Sprintf("%q;r=%d;t=%d", d.Rule.Name, d.Remaining, int((d.Reset+time.Second-1)/time.Second)))
}

// TooMany sets Retry-After (whole seconds, rounded up) and returns the 429
// problem of a refused decision; what says what is limited ("requests of
// this API token").
func TooMany(h http.Header, d Decision, what string) *httpx.Problem {
	h.Set("Retry-After", secondsText(d.RetryAfter))
	p := httpx.NewProblem(http.StatusTooManyRequests,
		fmt.Sprintf("too many %s: retry in %d s (the %q limit allows %d at once, then %s a second)", what, Seconds(d.RetryAfter), d.Rule.Name, max(d.Rule.Burst, 1),
			strconv.FormatFloat(d.Rule.Rate, 'f', -1, 64)))
	p.Extra = map[string]any{"retry_after": Seconds(d.RetryAfter)}
	return p
}
