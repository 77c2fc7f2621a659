package outbound

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-oss/switchboard/pkg/egress"
)

// Kind is what becomes of a delivery after an attempt.
type Kind int

// Kinds of outcome.
const (
	// Sent: the endpoint answered 2xx.
	Sent Kind = iota + 1
	// Retry: the attempt may succeed later (408, 429, 5xx, no answer).
	Retry
	// Fail: it never will (another 4xx, a refused destination).
	Fail
)

func (k Kind) String() string {
	switch k {
	case Sent:
		return "sent"
	case Retry:
		return "retry"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Outcome is what one attempt came to.
type Outcome struct {
	Kind Kind
	// Status is the endpoint's HTTP status; 0 when it did not answer.
	Status int
	// Answer is the status line and a bounded excerpt of the body.
	Answer string
	// Reason says why the attempt failed (Retry, Fail).
	Reason string
	// RetryAfter is the endpoint's Retry-After, 0 when it gave none.
	RetryAfter time.Duration
	// Refused reports an answer (408, 429) that proves the endpoint did
	// not act on the delivery; after a 5xx or no answer it may have.
	Refused bool
}

// MaxExcerpt bounds the excerpt of an endpoint's answer kept in reasons.
const MaxExcerpt = 256

// Classify turns the result of one attempt into its outcome: the
// response's status, headers and the first bytes of its body (excerpt),
// or the error of the call. now reads an HTTP-date Retry-After.
func Classify(status int, header http.Header, excerpt []byte, err error, now time.Time) Outcome {
	if err != nil {
		return classifyError(err)
	}
	line := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	answer := line
	if ex := Excerpt(excerpt); ex != "" {
		answer += ": " + ex
	}
	switch {
	case status >= 200 && status < 300:
		return Outcome{Kind: Sent, Status: status, Answer: answer}
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return Outcome{Kind: Retry, Status: status, Answer: answer, Reason: "the endpoint answered " + answer,
			RetryAfter: RetryAfter(header.Get("Retry-After"), now), Refused: true}
	case status >= 500:
		return Outcome{Kind: Retry, Status: status, Answer: answer, Reason: "the endpoint answered " + answer,
			RetryAfter: RetryAfter(header.Get("Retry-After"), now)}
	}
	// Other 4xx, and the 1xx and 3xx a client does not follow: the
	// endpoint refuses this delivery, and will refuse it again.
	return Outcome{Kind: Fail, Status: status, Answer: answer, Reason: "the endpoint refused the delivery: " + answer}
}

func classifyError(err error) Outcome {
	var ue *egress.URLError
	switch {
	case errors.Is(err, egress.ErrForbiddenAddress):
		return Outcome{Kind: Fail, Reason: "the endpoint's address is not allowed (loopback, private, link-local or metadata addresses are refused; an operator may allow some with -egress.allow): " + err.Error()}
	case errors.As(err, &ue):
		return Outcome{Kind: Fail, Reason: "the endpoint URL is refused: " + ue.Error()}
	case errors.Is(err, egress.ErrTooManyRedirects):
		return Outcome{Kind: Fail, Reason: "the endpoint redirected the delivery, and redirects are not followed: " + err.Error()}
	case errors.Is(err, egress.ErrResponseTooLarge) || egress.Permanent(err):
		return Outcome{Kind: Fail, Reason: "the endpoint's answer is refused: " + err.Error()}
	}
	return Outcome{Kind: Retry, Reason: "no answer from the endpoint: " + err.Error()}
}

// maxRetryAfter bounds a Retry-After honoured: beyond it a delivery is as
// good as failed anyway.
const maxRetryAfter = 7 * 24 * time.Hour

// RetryAfter reads a Retry-After header: delay seconds or an HTTP date; 0
// when absent, unreadable or past.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := at.Sub(now)
	switch {
	case d <= 0:
		return 0
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}

// Excerpt is the start of an answer's body fit for a reason: valid UTF-8,
// control characters as spaces, at most MaxExcerpt bytes.
func Excerpt(body []byte) string {
	if len(body) > MaxExcerpt {
		body = body[:MaxExcerpt]
	}
	var b strings.Builder
	for len(body) > 0 {
		r, size := utf8.DecodeRune(body)
		body = body[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune('\uFFFD')
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}
