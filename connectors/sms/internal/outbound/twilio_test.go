package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// recordingTransport answers every request with a created message and
// records the requests.
type recordingTransport struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, req)
	rt.mu.Unlock()
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return &http.Response{
		StatusCode: http.StatusCreated,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"sid": "SM00000000000000000000000000000001", "status": "queued"}`)),
		Request:    req,
	}, nil
}

func sendThrough(t *testing.T, cfg APIConfig, ctx context.Context) (*http.Request, error) {
	t.Helper()
	rt := &recordingTransport{}
	cfg.Transport = rt
	api, err := NewAPI(cfg)
	if err != nil {
		t.Fatalf("NewAPI: %v", err)
	}
	rc, err := api.RestClient(ctx, testAccount())
	if err != nil {
		t.Fatalf("RestClient: %v", err)
	}
	p := &openapi.CreateMessageParams{}
	p.SetTo("+33612345678")
	p.SetFrom(testNumber1)
	p.SetBody("hi")
	_, err = rc.Api.CreateMessage(p)
	if len(rt.reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(rt.reqs))
	}
	return rt.reqs[0], err
}

func TestAPIHosts(t *testing.T) {
	const path = "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json"
	t.Setenv("TWILIO_EDGE", "sydney")
	t.Setenv("TWILIO_REGION", "au1")
	for _, tc := range []struct {
		name string
		cfg  APIConfig
		want string
	}{
		{"Twilio by default, whatever the environment says", APIConfig{}, "https://api.twilio.com" + path},
		{"edge and region", APIConfig{Edge: "dublin", Region: "ie1"}, "https://api.dublin.ie1.twilio.com" + path},
		{"a base URL with a path", APIConfig{BaseURL: "http://proxy.internal:8080/twilio/"}, "http://proxy.internal:8080/twilio" + path},
	} {
		req, err := sendThrough(t, tc.cfg, context.Background())
		if err != nil {
			t.Errorf("%s: CreateMessage: %v", tc.name, err)
			continue
		}
		if got := req.URL.String(); got != tc.want {
			t.Errorf("%s: request to %s, want %s", tc.name, got, tc.want)
		}
		if user, password, _ := req.BasicAuth(); user != testAccountSID || password != testAuthToken {
			t.Errorf("%s: basic auth %q:%q, want the account SID and auth token", tc.name, user, password)
		}
	}
}

func TestAPIContextBoundToCalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sendThrough(t, APIConfig{}, ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateMessage with an ended context = %v, want context.Canceled", err)
	}
}

func TestNewAPIRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"api.twilio.com", "ftp://x", "http://"} {
		if _, err := NewAPI(APIConfig{BaseURL: u}); err == nil {
			t.Errorf("NewAPI(BaseURL %q) succeeded, want an error", u)
		}
	}
}

func TestAPIConfigFlags(t *testing.T) {
	var cfg APIConfig
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags("sms.", f)
	if err := f.Parse([]string{"-sms.twilio.base-url=https://proxy.internal"}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate("sms."); err != nil {
		t.Errorf("Validate of good settings: %v", err)
	}
	cfg.BaseURL = "proxy.internal"
	if err := cfg.Validate("sms."); err == nil || !strings.Contains(err.Error(), "twilio.base-url") {
		t.Errorf("Validate of a relative base URL = %v, want an error naming twilio.base-url", err)
	}
}

func TestCredentials(t *testing.T) {
	base := events.SMSAccount{ID: "a", AccountSID: testAccountSID, AuthToken: "tok"}
	withKey := base
	withKey.APIKeySID, withKey.APIKeySecret = "SKx", "secret"
	halfKey := base
	halfKey.APIKeySID = "SKx"
	noSID := base
	noSID.AccountSID = ""
	noToken := base
	noToken.AuthToken = ""
	for _, tc := range []struct {
		name           string
		acct           events.SMSAccount
		user, password string
	}{
		{"auth token", base, testAccountSID, "tok"},
		{"API key first", withKey, "SKx", "secret"},
		{"half an API key", halfKey, "", ""},
		{"no account SID", noSID, "", ""},
		{"nothing", noToken, "", ""},
	} {
		user, password, err := Credentials(tc.acct)
		if user != tc.user || password != tc.password || (err != nil) != (tc.user == "") {
			t.Errorf("%s: Credentials = %q, %q, %v; want %q, %q", tc.name, user, password, err, tc.user, tc.password)
		}
		if err != nil && !errors.Is(err, errNoCredentials) {
			t.Errorf("%s: error %v does not wrap errNoCredentials", tc.name, err)
		}
	}
}

func TestErrorBody(t *testing.T) {
	twilio := `{"code": 21211, "message": "Invalid 'To' Phone Number", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
	if got := string(errorBody(400, []byte(twilio))); got != twilio {
		t.Errorf("errorBody of a Twilio error = %s, want it unchanged", got)
	}
	for _, tc := range []struct {
		status int
		body   string
		want   client.TwilioRestError
	}{
		{502, "<html>Bad Gateway</html>", client.TwilioRestError{Status: 502, Message: "Bad Gateway: <html>Bad Gateway</html>"}},
		{503, "", client.TwilioRestError{Status: 503, Message: "Service Unavailable"}},
		{429, `{"code": 20429, "message": "Too Many Requests"}`, client.TwilioRestError{Status: 429, Code: 20429, Message: "Too Many Requests"}},
	} {
		var got client.TwilioRestError
		if err := json.Unmarshal(errorBody(tc.status, []byte(tc.body)), &got); err != nil {
			t.Errorf("errorBody(%d, %q) is not JSON: %v", tc.status, tc.body, err)
			continue
		}
		if got.Status != tc.want.Status || got.Code != tc.want.Code || got.Message != tc.want.Message {
			t.Errorf("errorBody(%d, %q) = %+v, want %+v", tc.status, tc.body, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{&client.TwilioRestError{Status: 429, Code: 20429, Message: "Too Many Requests"},
			outcome{reason: "Twilio error 20429: Too Many Requests", resolved: true}},
		{&client.TwilioRestError{Status: 503, Message: "Service Unavailable"},
			outcome{reason: "Twilio answered HTTP 503: Service Unavailable"}},
		{&client.TwilioRestError{Status: 400, Code: 21211, Message: "Invalid 'To' Phone Number"},
			outcome{reason: "Twilio error 21211: Invalid 'To' Phone Number", permanent: true, resolved: true}},
		{&client.TwilioRestError{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"},
			outcome{reason: "Twilio error 21610: Attempt to send to unsubscribed recipient", permanent: true, resolved: true, unsubscribed: true}},
		{&client.TwilioRestError{Status: 401, Code: 20003, Message: "Authenticate"},
			outcome{reason: "Twilio error 20003: Authenticate", permanent: true, resolved: true}},
		{errors.New("connection reset by peer"),
			outcome{reason: "calling Twilio: connection reset by peer"}},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %+v, want %+v", tc.err, got, tc.want)
		}
	}
}

func TestChooseSender(t *testing.T) {
	acct := events.SMSAccount{ID: "a", Numbers: []string{testNumber1, testNumber2}, MessagingServiceSIDs: []string{testService}}
	services := events.SMSAccount{ID: "b", MessagingServiceSIDs: []string{testService}}
	for _, tc := range []struct {
		acct      events.SMSAccount
		threadKey string
		want      string
	}{
		{acct, testNumber2 + ":+33612345678", testNumber2},
		{acct, "+15550000000:+33612345678", testNumber1},
		{acct, "", testNumber1},
		{acct, testService + ":+33612345678", testService},
		{services, testNumber2 + ":+33612345678", testService},
	} {
		got, err := chooseSender(tc.acct, tc.threadKey)
		if err != nil || got != tc.want {
			t.Errorf("chooseSender(%v, %q) = %q, %v; want %q", tc.acct, tc.threadKey, got, err, tc.want)
		}
	}
	if _, err := chooseSender(events.SMSAccount{ID: "c"}, ""); err == nil {
		t.Error("chooseSender of an account without numbers or services succeeded")
	}
}
