package sms_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/sms"
	"github.com/switchboard-oss/switchboard/connectors/sms/internal/consent"
	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const (
	tenantID = "0c2f1d7e-3b5a-4c8d-8e9f-1a2b3c4d5e6f"
	// publicBase is what Twilio calls: a port and a path prefix that the
	// proxy strips, neither of which the test server has.
	publicBase = "https://sms.example.com:8443/sb"

	accountA = "5b7f2c1e-8d4a-4a8e-9a61-0b6c2f4d9e10"
	sidA     = "AC0123456789abcdef0123456789abcdef"
	tokenA   = "tokenA-0123456789abcdef"

	// accountB authenticates its API calls with an API key.
	accountB  = "7e1d3a9b-2c4f-4b6e-8a0d-5f9c1b3e7d21"
	sidB      = "ACfedcba9876543210fedcba9876543210"
	tokenB    = "tokenB-fedcba9876543210"
	keySIDB   = "SK00112233445566778899aabbccddeeff"
	keySecret = "key-secret-B"

	// accountGone was deleted.
	accountGone = "1a2b3c4d-0000-4000-8000-00000000dead"
	sidGone     = "AC99999999999999999999999999999999"
	tokenGone   = "tokenGone"

	ourNumber = "+33700000001"
	customer  = "+33612345678"
)

// fixedClock is a clock the test sets.
type fixedClock struct{ now time.Time }

func (c *fixedClock) Now() time.Time                         { return c.now }
func (c *fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type env struct {
	// base is where the test server listens; Twilio would call publicBase.
	base    string
	brokers []string
	consent *consent.Store
	blobs   *blob.Dir
	clock   *fixedClock
	tel     *telemetry.Telemetry
	media   *mediaServer
	// pool is the connector's database; producer publishes as the inbox.
	pool     *pgxpool.Pool
	producer *bus.Producer
}

type options struct {
	// publishTo, when set, replaces the brokers messages are published to.
	publishTo []string
	// starting leaves the connector built but not running: it has not
	// read its accounts.
	starting bool
	// webhook, when set, limits each account's webhooks (in Redis).
	webhook *ratelimit.Rule
}

func start(t *testing.T) env { return startWith(t, options{}) }

func startWith(t *testing.T, o options) env {
	t.Helper()
	ctx := testkit.Context(t)
	brokers := testkit.Kafka(t)
	tel := telemetry.Discard()
	p, err := bus.NewProducer(testkit.BusConfig(brokers), tel)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	publisher := p
	if o.publishTo != nil {
		dead := testkit.BusConfig(o.publishTo)
		dead.WriteTimeout = 500 * time.Millisecond
		publisher, err = bus.NewProducer(dead, tel)
		require.NoError(t, err)
		t.Cleanup(func() { _ = publisher.Close() })
	}

	// The accounts, as the inbox announces them: their secrets sealed.
	keys := testkit.Keyring(t)
	for _, a := range []events.SMSAccount{
		{ID: accountA, TenantID: tenantID, Name: "France", AccountSID: sidA, AuthToken: tokenA, Numbers: []string{ourNumber}},
		{ID: accountB, TenantID: tenantID, Name: "Support", AccountSID: sidB, AuthToken: tokenB, APIKeySID: keySIDB, APIKeySecret: keySecret, Numbers: []string{"+33700000002"}},
		{ID: accountGone, TenantID: tenantID, Name: "Old", AccountSID: sidGone, AuthToken: tokenGone},
		{ID: accountGone, TenantID: tenantID, Name: "Old", AccountSID: sidGone, AuthToken: tokenGone, Deleted: true},
	} {
		require.NoError(t, keys.SealFields(a.SecretPlace(), a.SecretFields()))
		ev, err := events.New(events.TypeSMSAccount, "switchboard/inbox", tenantID, time.Now(), a)
		require.NoError(t, err)
		require.NoError(t, p.Publish(ctx, events.TopicConfig, events.ConfigKey("sms_account", a.ID), ev))
	}

	pool := testkit.Postgres(t)
	blobs, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = blobs.Close() })
	media := newMediaServer(t)
	clock := &fixedClock{now: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	srv := httpx.NewServer(httpx.Config{Addr: "127.0.0.1:0", ReadHeaderTimeout: time.Second, RequestTimeout: 20 * time.Second, MaxBodyBytes: 1 << 20, ShutdownTimeout: time.Second},
		tel, func(context.Context) error { return nil })
	cfg := sms.Config{PublicBaseURL: publicBase + "/", MaxBodyBytes: 8192, MaxMediaBytes: 4096, MediaFetchTimeout: 5 * time.Second}
	cfg.API.Timeout = 10 * time.Second
	deps := sms.Deps{Pool: pool, Bus: testkit.BusConfig(brokers), Brokers: brokers, Producer: publisher, Router: srv, Secrets: keys,
		Blobs: blobs, Telemetry: tel, Clock: clock, MediaClient: media.Client()}
	if o.webhook != nil {
		cfg.Webhook = *o.webhook
		rdb, prefix := testkit.Redis(t)
		deps.Limiter, err = ratelimit.NewLimiter(rdb, prefix, "sms", tel, clock)
		require.NoError(t, err)
	}
	require.NoError(t, cfg.Validate(""))
	c, err := sms.New(ctx, cfg, deps)
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	testkit.Run(t, srv)
	if o.starting {
		return env{base: "http://" + srv.Addr(), brokers: brokers, consent: c.Consent(), blobs: blobs, clock: clock, tel: tel, media: media}
	}
	testkit.Run(t, c)
	testkit.Eventually(t, 10*time.Second, func() bool { return c.Ready(ctx) == nil }, "the connector never caught up with the config topic")
	_, known := c.Account(accountGone)
	require.False(t, known, "a deleted account is forgotten")
	a, known := c.Account(accountA)
	require.True(t, known)
	require.Equal(t, sidA, a.AccountSID)
	return env{base: "http://" + srv.Addr(), brokers: brokers, consent: c.Consent(), blobs: blobs, clock: clock, tel: tel, media: media, pool: pool, producer: p}
}

// twilioSignature computes X-Twilio-Signature the way Twilio documents it:
// the full URL, then each POST parameter's name and value, sorted by name,
// HMAC-SHA1 keyed with the auth token, in base64.
func twilioSignature(token, fullURL string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		b.WriteString(k)
		b.WriteString(params[k])
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// sign signs form as Twilio would for path under publicBase.
func sign(token, path string, form url.Values) string {
	return signURL(token, publicBase+path, form)
}

func signURL(token, fullURL string, form url.Values) string {
	params := map[string]string{}
	for k, v := range form {
		params[k] = v[0]
	}
	return twilioSignature(token, fullURL, params)
}

func messagesPath(account string) string { return "/v1/webhooks/sms/" + account + "/messages" }

func statusPath(account, messageID string) string {
	return "/v1/webhooks/sms/" + account + "/status?message_id=" + messageID
}

// messageSid returns a well-formed SMS id numbered n.
func messageSid(n int) string { return fmt.Sprintf("SM%032x", n) }

// smsForm is the messaging webhook Twilio posts for an SMS to accountA.
func smsForm(sid, body string) url.Values {
	return url.Values{
		"ToCountry": {"FR"}, "ToState": {""}, "SmsMessageSid": {sid}, "NumMedia": {"0"}, "ToCity": {""},
		"FromZip": {""}, "SmsSid": {sid}, "FromState": {""}, "SmsStatus": {"received"}, "FromCity": {"PARIS"},
		"Body": {body}, "FromCountry": {"FR"}, "To": {ourNumber}, "ToZip": {""}, "NumSegments": {"1"},
		"MessageSid": {sid}, "AccountSid": {sidA}, "From": {customer}, "ApiVersion": {"2010-04-01"},
	}
}

// with returns a copy of form with the changes; an empty value deletes.
func with(form url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, v := range form {
		out[k] = slices.Clone(v)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	return out
}

// request describes one webhook call.
type request struct {
	path string
	body string
	sig  string
	// host, when set, is the Host header, which must not matter.
	host        string
	contentType string
}

func (e env) do(t *testing.T, r request) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+r.path, strings.NewReader(r.body))
	require.NoError(t, err)
	ct := r.contentType
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("I-Twilio-Idempotency-Token", "test")
	if r.sig != "" {
		req.Header.Set("X-Twilio-Signature", r.sig)
	}
	if r.host != "" {
		req.Host = r.host
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// postMessage posts a signed messaging webhook for accountA.
func (e env) postMessage(t *testing.T, form url.Values) (*http.Response, string) {
	t.Helper()
	path := messagesPath(accountA)
	return e.do(t, request{path: path, body: form.Encode(), sig: sign(tokenA, path, form)})
}

// read returns the next want records of topic.
func (e env) read(t *testing.T, topic string, want int) []kafka.Message {
	t.Helper()
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t"), GroupTopics: []string{topic}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []kafka.Message
	for len(out) < want {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "waiting for record %d of %d on %s", len(out)+1, want, topic)
		out = append(out, m)
	}
	return out
}

// received decodes records of sb.inbound.v1.
func received(t *testing.T, msgs []kafka.Message) ([]events.Event, []events.MessageReceived) {
	t.Helper()
	evs := make([]events.Event, len(msgs))
	ps := make([]events.MessageReceived, len(msgs))
	for i, m := range msgs {
		ev, _, err := events.FromMessage(context.Background(), m)
		require.NoError(t, err)
		require.Equal(t, events.TypeMessageReceived, ev.Type)
		require.NoError(t, ev.Decode(&ps[i]))
		require.NoError(t, ps[i].Validate())
		evs[i] = ev
	}
	return evs, ps
}

func (e env) metric(t *testing.T, name string) float64 {
	t.Helper()
	m, err := e.tel.Gather()
	require.NoError(t, err)
	return m[name]
}

// mediaServer stands in for Twilio's media URLs: basic authentication with
// an account's credentials, then a redirect to storage.
type mediaServer struct {
	*httptest.Server
	// content of every stored medium by media SID.
	content map[string][]byte
}

// mediaSid returns a well-formed media id numbered n.
func mediaSid(n int) string { return fmt.Sprintf("ME%032x", n) }

// Media served by the media server.
var (
	smallJPEG = append([]byte("\xff\xd8\xff\xe0"), bytes.Repeat([]byte("j"), 1000)...)
	smallPNG  = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("p"), 500)...)
)

const (
	mediaJPEG    = 1 // redirects to storage on the same host
	mediaPNG     = 2
	mediaLarge   = 3 // announced larger than the limit
	mediaChunked = 4 // larger than the limit, no Content-Length
	mediaGone    = 5 // 404
	mediaBroken  = 6 // 500
	mediaOffsite = 7 // redirects to plain http on another host
)

func newMediaServer(t *testing.T) *mediaServer {
	m := &mediaServer{content: map[string][]byte{mediaSid(mediaJPEG): smallJPEG, mediaSid(mediaPNG): smallPNG}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2010-04-01/Accounts/{account}/Messages/{message}/Media/{media}", func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || !(user == sidA && pass == tokenA || user == keySIDB && pass == keySecret) || (user == sidA) != (r.PathValue("account") == sidA) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
			http.Error(w, "authenticate", http.StatusUnauthorized)
			return
		}
		switch r.PathValue("media") {
		case mediaSid(mediaJPEG):
			http.Redirect(w, r, "/storage/"+mediaSid(mediaJPEG), http.StatusTemporaryRedirect)
		case mediaSid(mediaPNG):
			_, _ = w.Write(smallPNG)
		case mediaSid(mediaLarge):
			w.Header().Set("Content-Length", "10000")
			_, _ = w.Write(bytes.Repeat([]byte("L"), 10000))
		case mediaSid(mediaChunked):
			for range 10 {
				_, _ = w.Write(bytes.Repeat([]byte("C"), 1000))
				w.(http.Flusher).Flush()
			}
		case mediaSid(mediaGone):
			http.NotFound(w, r)
		case mediaSid(mediaOffsite):
			http.Redirect(w, r, "http://storage.invalid/x", http.StatusFound)
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /storage/{media}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(m.content[r.PathValue("media")])
	})
	m.Server = httptest.NewTLSServer(mux)
	t.Cleanup(m.Close)
	return m
}

// mediaURL is the URL of medium n of message sid on account.
func (m *mediaServer) mediaURL(account, sid string, n int) string {
	return m.URL + "/2010-04-01/Accounts/" + account + "/Messages/" + sid + "/Media/" + mediaSid(n)
}

// withMedia adds media to form.
func (m *mediaServer) withMedia(form url.Values, account string, media map[int]string) url.Values {
	out := with(form, "NumMedia", strconv.Itoa(len(media)))
	i := 0
	for _, n := range slices.Sorted(maps.Keys(media)) {
		out.Set("MediaUrl"+strconv.Itoa(i), m.mediaURL(account, form.Get("MessageSid"), n))
		out.Set("MediaContentType"+strconv.Itoa(i), media[n])
		i++
	}
	return out
}
