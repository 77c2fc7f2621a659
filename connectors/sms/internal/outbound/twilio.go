package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// APIConfig says how to reach Twilio's REST API.
type APIConfig struct {
	// BaseURL, when set, replaces the scheme and host of every Twilio API
	// URL (https://api.twilio.com and the other *.twilio.com hosts), and
	// prefixes its path. Empty in production: Twilio's own hosts.
	BaseURL string
	// Timeout bounds each request to Twilio, its response included.
	Timeout time.Duration
	// Edge and Region select a Twilio edge location and processing region
	// (e.g. "dublin" and "ie1"); empty for Twilio's default (US).
	// Unlike twilio-go's default, TWILIO_EDGE and TWILIO_REGION are not
	// read from the environment: the configuration says it all.
	Edge   string
	Region string
	// Transport carries the requests; a clone of http.DefaultTransport
	// when nil. Tests and proxies may set their own.
	Transport http.RoundTripper
}

// RegisterFlags declares the flags under prefix.
func (c *APIConfig) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.BaseURL, prefix+"twilio.base-url", "", "Base URL that replaces Twilio's API hosts (https://api.twilio.com), for an egress proxy on premises that forwards to Twilio, e.g. https://twilio-proxy.internal:8443. Leave empty to call Twilio directly.")
	f.DurationVar(&c.Timeout, prefix+"twilio.timeout", 15*time.Second, "Longest wait for one answer of Twilio's REST API. A send that times out may still have reached Twilio: before sending it again, the connector looks for it in Twilio's message list.")
	f.StringVar(&c.Edge, prefix+"twilio.edge", "", "Twilio edge location to call (e.g. dublin), empty for the default.")
	f.StringVar(&c.Region, prefix+"twilio.region", "", "Twilio processing region (e.g. ie1), empty for the default (us1).")
}

// Validate checks the settings.
func (c *APIConfig) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		ck.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "twilio.base-url",
			"is not an absolute http or https URL", "set a URL such as https://twilio-proxy.internal:8443, or nothing")
	}
	ck.Positive("twilio.timeout", c.Timeout)
	return ck.Err()
}

// defaultTimeout applies when APIConfig.Timeout is zero.
const defaultTimeout = 15 * time.Second

// maxResponse bounds what is read of one Twilio answer: a page of 50
// messages is about 60 KiB.
const maxResponse = 4 << 20

// API builds Twilio REST clients, one per account and call.
type API struct {
	base      *url.URL // nil: Twilio's hosts
	timeout   time.Duration
	edge      string
	region    string
	transport http.RoundTripper
}

// NewAPI checks cfg and returns an API.
func NewAPI(cfg APIConfig) (*API, error) {
	a := &API{timeout: cfg.Timeout, edge: cfg.Edge, region: cfg.Region, transport: cfg.Transport}
	if a.timeout <= 0 {
		a.timeout = defaultTimeout
	}
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("twilio base URL %q is not an absolute http or https URL", cfg.BaseURL)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		a.base = u
	}
	if a.transport == nil {
		a.transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return a, nil
}

// errNoCredentials is wrapped by Credentials' error.
var errNoCredentials = errors.New("no usable Twilio credentials")

// Credentials returns the user name and password of acct's calls to
// Twilio: its API key when it has one (revocable, and it keeps the auth
// token to webhook signatures), else its account SID and auth token.
func Credentials(acct events.SMSAccount) (user, password string, err error) {
	switch {
	case acct.AccountSID == "":
		return "", "", fmt.Errorf("%w: SMS account %s has no account SID", errNoCredentials, acct.ID)
	case acct.APIKeySID != "" && acct.APIKeySecret != "":
		return acct.APIKeySID, acct.APIKeySecret, nil
	case acct.APIKeySID != "" || acct.APIKeySecret != "":
		return "", "", fmt.Errorf("%w: SMS account %s has an API key SID or secret without the other", errNoCredentials, acct.ID)
	case acct.AuthToken != "":
		return acct.AccountSID, acct.AuthToken, nil
	}
	return "", "", fmt.Errorf("%w: SMS account %s has neither an API key nor an auth token", errNoCredentials, acct.ID)
}

// RestClient returns a Twilio client for acct whose requests end when ctx
// does: twilio-go's calls take no context, so ctx is bound to the client.
// Build one per Handle call; they are cheap and share connections.
func (a *API) RestClient(ctx context.Context, acct events.SMSAccount) (*twilio.RestClient, error) {
	user, password, err := Credentials(acct)
	if err != nil {
		return nil, err
	}
	c := &client.Client{
		Credentials: client.NewCredentials(user, password),
		HTTPClient: &http.Client{
			Transport: &boundTransport{ctx: ctx, api: a},
			// A redirect from the API is an error to report, not to
			// follow (twilio-go's own default).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		UserAgentExtensions: []string{"switchboard-sms"},
	}
	c.SetAccountSid(acct.AccountSID)
	rc := twilio.NewRestClientWithParams(twilio.ClientParams{
		Username:   user,
		Password:   password,
		AccountSid: acct.AccountSID,
		Client:     c,
	})
	// NewRequestHandler reads TWILIO_EDGE and TWILIO_REGION; the
	// configuration replaces them.
	rc.RequestHandler.Edge, rc.RequestHandler.Region = a.edge, a.region
	return rc, nil
}

// boundTransport carries twilio-go's requests: with the context of the
// call and the timeout, to the configured base URL, and with an error body
// twilio-go can always decode.
type boundTransport struct {
	ctx context.Context
	api *API
}

// RoundTrip reads the whole answer before returning it, so that the
// request's context can end here and the connection is released even
// where twilio-go does not close an error response's body.
func (t *boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(t.ctx, t.api.timeout)
	defer cancel()
	out := req.Clone(ctx)
	if b := t.api.base; b != nil {
		out.URL.Scheme, out.URL.Host = b.Scheme, b.Host
		out.URL.Path = b.Path + out.URL.Path
		out.URL.RawPath = ""
		out.Host = ""
	}
	resp, err := t.api.transport.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read Twilio's answer (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode >= 400 {
		body = errorBody(resp.StatusCode, body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// errorBody returns body if it is a Twilio error with its status, or else
// one made from the HTTP status and the start of body. Twilio's own errors
// are JSON; those of a load balancer or proxy in front of it often are not,
// and twilio-go would then return an error without the status code, which
// says whether to retry.
func errorBody(status int, body []byte) []byte {
	var e client.TwilioRestError
	if json.Unmarshal(body, &e) == nil && e.Status != 0 {
		return body
	}
	msg := http.StatusText(status)
	if e.Message != "" {
		msg = e.Message
	} else if text := strings.TrimSpace(string(body)); text != "" {
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		msg += ": " + text
	}
	out, _ := json.Marshal(client.TwilioRestError{Status: status, Code: e.Code, Message: msg})
	return out
}

// Twilio error codes the handler branches on.
const (
	// codeUnsubscribed: the recipient replied STOP to this sender
	// (https://www.twilio.com/docs/api/errors/21610).
	codeUnsubscribed = 21610
)

// outcome classifies a failed call to Twilio.
type outcome struct {
	// reason is what is recorded and published.
	reason string
	// permanent: sending again cannot succeed.
	permanent bool
	// resolved: Twilio's answer proves the message was not created.
	resolved bool
	// unsubscribed: Twilio refused because the recipient opted out.
	unsubscribed bool
}

// classify says what a failed Twilio call means. HTTP 429 is a refusal
// that created nothing: retried. Other 4xx are permanent, with Twilio's
// code and message. A 5xx, a transport error or an answer that cannot be
// read is retried, and leaves in doubt whether a create went through: a
// gateway's 502 or a timeout may come after Twilio created the message.
func classify(err error) outcome {
	var te *client.TwilioRestError
	if errors.As(err, &te) {
		return classifyStatus(te.Status, te.Code, te.Message)
	}
	var v1 *client.RestErrorV1
	if errors.As(err, &v1) {
		return classifyStatus(v1.HttpStatusCode, v1.Code, v1.Message)
	}
	return outcome{reason: "calling Twilio: " + err.Error()}
}

func classifyStatus(status, code int, message string) outcome {
	reason := fmt.Sprintf("Twilio error %d: %s", code, message)
	if code == 0 {
		reason = fmt.Sprintf("Twilio answered HTTP %d: %s", status, message)
	}
	switch {
	case status == http.StatusTooManyRequests:
		return outcome{reason: reason, resolved: true}
	case status >= 500:
		return outcome{reason: reason}
	case status >= 400:
		return outcome{reason: reason, permanent: true, resolved: true, unsubscribed: code == codeUnsubscribed}
	}
	// A 3xx, which the client does not follow.
	return outcome{reason: reason, permanent: true, resolved: true}
}
