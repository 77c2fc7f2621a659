package sms_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/sms/internal/inbound"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
)

// TestSignatureHelperMatchesTwilio checks the test's own signing against
// the example of Twilio's documentation and libraries, so that the tests
// below sign as Twilio does.
func TestSignatureHelperMatchesTwilio(t *testing.T) {
	params := map[string]string{
		"Digits": "1234", "CallSid": "CA1234567890ABCDE", "To": "+18005551212", "Caller": "+14158675309",
		"From": "+14158675309", "ReasonConferenceEnded": "test", "Reason": "Participant",
	}
	got := twilioSignature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if want := "vOEb5UThFn24KEfnOFLQY2AE5FY="; got != want {
		t.Errorf("twilioSignature(documented example) = %q, want %q", got, want)
	}
}

func TestMessageIsOnKafkaBeforeTheAnswer(t *testing.T) {
	e := start(t)
	form := smsForm(messageSid(1), "Bonjour, ma commande n'est pas arrivée")
	path := messagesPath(accountA)
	// The Host header is the proxy's view, not what Twilio signed: the
	// configured public base URL wins.
	resp, body := e.do(t, request{path: path, body: form.Encode(), sig: sign(tokenA, path, form), host: "10.0.0.7:8080"})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "text/xml; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, inbound.EmptyTwiML, body)

	msgs := e.read(t, events.TopicInbound, 1)
	evs, ps := received(t, msgs)
	require.Equal(t, inbound.MessageEventID(accountA, messageSid(1)), evs[0].ID)
	require.Equal(t, tenantID, evs[0].Tenant)
	require.Equal(t, "switchboard/sms", evs[0].Source)
	require.Equal(t, string(events.ConversationKey(tenantID, events.ChannelSMS, accountA, ourNumber+":"+customer)), string(msgs[0].Key))
	p := ps[0]
	require.Equal(t, events.ChannelSMS, p.Channel)
	require.Equal(t, accountA, p.ChannelAccountID)
	require.Equal(t, messageSid(1), p.ExternalID)
	require.Equal(t, ourNumber+":"+customer, p.ThreadKey)
	require.Equal(t, customer, p.From.Identity)
	require.Equal(t, "Bonjour, ma commande n'est pas arrivée", p.Text)
	require.Equal(t, e.clock.now, p.ReceivedAt)
	require.Equal(t, map[string]string{"from_city": "PARIS", "from_country": "FR", "to_country": "FR", "num_segments": "1"}, p.Metadata)
	require.Empty(t, p.Attachments)

	// Twilio retries (a timeout on its side): the same MessageSid is the
	// same event, answered 200 again.
	e.clock.now = e.clock.now.Add(time.Minute)
	resp, body = e.postMessage(t, form)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	again, _ := received(t, e.read(t, events.TopicInbound, 2)[1:])
	require.Equal(t, evs[0].ID, again[0].ID)
	require.Equal(t, 2.0, e.metric(t, "switchboard_sms_webhooks_accepted_total{kind=message}"))
}

func TestRefusedWebhooks(t *testing.T) {
	e := start(t)
	path := messagesPath(accountA)
	good := smsForm(messageSid(2), "Bonjour")
	signed := func(f map[string][]string) request {
		return request{path: path, body: encode(f), sig: sign(tokenA, path, f)}
	}
	invalid := func(kv ...string) request { return signed(with(good, kv...)) }
	longBody := strings.Repeat("x", inbound.MaxBodyChars+1)
	cases := []struct {
		name   string
		req    request
		status int
		field  string
		reason string
	}{
		{"no signature", request{path: path, body: good.Encode()}, 403, "", "missing_signature"},
		{"forged signature", request{path: path, body: good.Encode(), sig: "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, 403, "", "bad_signature"},
		{"another account's token", request{path: path, body: good.Encode(), sig: sign(tokenB, path, good)}, 403, "", "bad_signature"},
		{"signature of another body", request{path: path, body: good.Encode(), sig: sign(tokenA, path, with(good, "Body", "Hi"))}, 403, "", "bad_signature"},
		{"signature for the URL the Host header names", request{path: path, body: good.Encode(), sig: signURL(tokenA, "http://attacker.example"+path, good), host: "attacker.example"}, 403, "", "bad_signature"},
		{"signature for another account's URL", request{path: path, body: good.Encode(), sig: sign(tokenA, messagesPath(accountB), good)}, 403, "", "bad_signature"},
		{"unknown account", request{path: messagesPath("00000000-0000-0000-0000-000000000000"), body: good.Encode(), sig: sign(tokenA, messagesPath("00000000-0000-0000-0000-000000000000"), good)}, 403, "", "unknown_account"},
		{"deleted account", request{path: messagesPath(accountGone), body: with(good, "AccountSid", sidGone).Encode(), sig: sign(tokenGone, messagesPath(accountGone), with(good, "AccountSid", sidGone))}, 403, "", "unknown_account"},
		{"not a form", request{path: path, body: `{"Body":"hi"}`, sig: sign(tokenA, path, good), contentType: "application/json"}, 415, "", "content_type"},
		{"too large", request{path: path, body: "Body=" + strings.Repeat("x", 9000), sig: "x"}, 413, "", "too_large"},
		{"WhatsApp sender", invalid("From", "whatsapp:+33612345678"), 400, "From", "invalid"},
		{"From not E.164", invalid("From", "0612345678"), 400, "From", "invalid"},
		{"short code From", invalid("From", "+36000"), 400, "From", "invalid"},
		{"no To", invalid("To", ""), 400, "To", "invalid"},
		{"bad MessageSid", invalid("MessageSid", "SM123"), 400, "MessageSid", "invalid"},
		{"uppercase MessageSid", invalid("MessageSid", "SM"+strings.ToUpper(messageSid(0xabcdef)[2:])), 400, "MessageSid", "invalid"},
		{"AccountSid of another account", invalid("AccountSid", sidB), 400, "AccountSid", "invalid"},
		{"empty Body, no media", invalid("Body", ""), 400, "Body", "invalid"},
		{"blank Body, no media", invalid("Body", " \n "), 400, "Body", "invalid"},
		{"Body too long", invalid("Body", longBody), 400, "Body", "invalid"},
		{"Body not UTF-8", invalid("Body", "caf\xe9"), 400, "Body", "invalid"},
		{"Body with NUL", invalid("Body", "a\x00b"), 400, "Body", "invalid"},
		{"NumMedia 11", invalid("NumMedia", "11"), 400, "NumMedia", "invalid"},
		{"NumMedia not a number", invalid("NumMedia", "two"), 400, "NumMedia", "invalid"},
		{"NumMedia without MediaUrl0", invalid("NumMedia", "1"), 400, "MediaUrl0", "invalid"},
		{"MediaUrl0 without NumMedia", invalid("MediaUrl0", "https://api.twilio.com/x"), 400, "MediaUrl0", "invalid"},
		{"MediaUrl0 over http", invalid("NumMedia", "1", "MediaUrl0", "http://api.twilio.com/x", "MediaContentType0", "image/jpeg"), 400, "MediaUrl0", "invalid"},
		{"MediaContentType0 missing", invalid("NumMedia", "1", "MediaUrl0", "https://api.twilio.com/x"), 400, "MediaContentType0", "invalid"},
		{"FromCity not UTF-8", invalid("FromCity", "Par\xeds"), 400, "FromCity", "invalid"},
		{"field twice", signed(map[string][]string{"Body": {"a", "b"}}), 400, "Body", "invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.metric(t, "switchboard_sms_webhooks_rejected_total{reason="+c.reason+"}")
			resp, body := e.do(t, c.req)
			require.Equal(t, c.status, resp.StatusCode, body)
			require.Equal(t, httpx.ContentTypeProblem, resp.Header.Get("Content-Type"))
			var p httpx.Problem
			require.NoError(t, json.Unmarshal([]byte(body), &p), body)
			if c.field != "" {
				require.NotEmpty(t, p.Errors, body)
				require.Equal(t, c.field, p.Errors[0].Field, body)
			}
			require.Equal(t, before+1, e.metric(t, "switchboard_sms_webhooks_rejected_total{reason="+c.reason+"}"), "rejections are counted by reason")
		})
	}
	// The duplicated-field case signs with the first value only, as
	// twilio-go's validator reads it; the refusal comes after it.

	// None of them reached Kafka nor changed anything: the next accepted
	// message is the first record.
	resp, body := e.postMessage(t, good)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	_, ps := received(t, e.read(t, events.TopicInbound, 1))
	require.Equal(t, messageSid(2), ps[0].ExternalID)
}

// byExternalID finds a message by its MessageSid.
func byExternalID(t *testing.T, ps []events.MessageReceived, sid string) events.MessageReceived {
	t.Helper()
	for _, p := range ps {
		if p.ExternalID == sid {
			return p
		}
	}
	t.Fatalf("no message %s among %d", sid, len(ps))
	return events.MessageReceived{}
}

// encode is the body Twilio posts for form.
func encode(form map[string][]string) string { return url.Values(form).Encode() }

func TestKafkaUnavailableAnswers503(t *testing.T) {
	e := startWith(t, options{publishTo: []string{"127.0.0.1:1"}})
	resp, body := e.postMessage(t, smsForm(messageSid(3), "Bonjour"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, 1.0, e.metric(t, "switchboard_sms_webhooks_rejected_total{reason=unavailable}"))

	path := statusPath(accountA, "3d0c5c0e-6c3b-4c1e-9a57-0d1f2e3a4b5c")
	form := statusForm(messageSid(4), "delivered", "", "")
	resp, body = e.do(t, request{path: path, body: form.Encode(), sig: sign(tokenA, path, form)})
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
}

// TestStartingAnswers503: until the connector has read its accounts, a
// webhook for one it does not know yet is asked again (503, Twilio
// retries), not refused for good.
func TestStartingAnswers503(t *testing.T) {
	e := startWith(t, options{starting: true})
	resp, body := e.postMessage(t, smsForm(messageSid(5), "Bonjour"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Equal(t, 1.0, e.metric(t, "switchboard_sms_webhooks_rejected_total{reason=starting}"))
}

func TestMMS(t *testing.T) {
	e := start(t)
	sid := "MM" + messageSid(10)[2:]
	form := e.media.withMedia(with(smsForm(sid, ""), "NumSegments", ""), sidA, map[int]string{
		mediaJPEG: "image/jpeg", mediaPNG: "image/png", mediaLarge: "video/mp4", mediaChunked: "video/3gpp", mediaGone: "image/gif",
	})
	resp, body := e.postMessage(t, form)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	_, ps := received(t, e.read(t, events.TopicInbound, 1))
	p := ps[0]
	require.Equal(t, "(media)", p.Text, "a message of media only still has a text")
	require.Len(t, p.Attachments, 5)

	stored := func(i int, want []byte, name, ct string) {
		t.Helper()
		a := p.Attachments[i]
		require.Equal(t, name, a.Name)
		require.Equal(t, ct, a.ContentType)
		require.Empty(t, a.Skipped)
		require.Equal(t, int64(len(want)), a.Size)
		require.True(t, strings.HasPrefix(a.BlobKey, tenantID+"/"+accountA+"/"), a.BlobKey)
		rc, err := e.blobs.Open(context.Background(), a.BlobKey)
		require.NoError(t, err)
		defer rc.Close()
		got, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	stored(0, smallJPEG, mediaSid(mediaJPEG)+".jpg", "image/jpeg")
	stored(1, smallPNG, mediaSid(mediaPNG)+".png", "image/png")
	require.Equal(t, events.Attachment{Name: mediaSid(mediaLarge) + ".mp4", ContentType: "video/mp4", Size: 10000, Skipped: "larger than 4096 bytes"}, p.Attachments[2])
	require.Equal(t, "larger than 4096 bytes", p.Attachments[3].Skipped)
	require.Empty(t, p.Attachments[3].BlobKey)
	require.Equal(t, "Twilio no longer has this media (HTTP 404)", p.Attachments[4].Skipped)
	require.Equal(t, 2.0, e.metric(t, "switchboard_sms_media_total{outcome=too_large}"))

	// An account with an API key fetches with it.
	pathB := messagesPath(accountB)
	formB := e.media.withMedia(with(smsForm("MM"+messageSid(11)[2:], "photo"), "AccountSid", sidB, "To", "+33700000002"), sidB, map[int]string{mediaPNG: "image/png"})
	resp, body = e.do(t, request{path: pathB, body: formB.Encode(), sig: sign(tokenB, pathB, formB)})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	// Records of two conversations may come in any order.
	_, ps = received(t, e.read(t, events.TopicInbound, 2))
	pb := byExternalID(t, ps, formB.Get("MessageSid"))
	require.Equal(t, "photo", pb.Text)
	require.Len(t, pb.Attachments, 1)
	require.NotEmpty(t, pb.Attachments[0].BlobKey)

	// A medium Twilio cannot serve now, or refuses our credentials for,
	// or redirects off https: 503, so that Twilio retries rather than the
	// media being lost; nothing is published.
	for _, n := range []int{mediaBroken, mediaOffsite} {
		f := e.media.withMedia(smsForm("MM"+messageSid(20 + n)[2:], "x"), sidA, map[int]string{mediaPNG: "image/png", n: "image/png"})
		resp, body = e.postMessage(t, f)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	}
	wrongCreds := e.media.withMedia(smsForm("MM"+messageSid(30)[2:], "x"), sidB, map[int]string{mediaPNG: "image/png"})
	resp, body = e.postMessage(t, wrongCreds)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	require.Equal(t, 3.0, e.metric(t, "switchboard_sms_webhooks_rejected_total{reason=media_unavailable}"))
	resp, body = e.postMessage(t, smsForm(messageSid(31), "after"))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	_, ps = received(t, e.read(t, events.TopicInbound, 3))
	require.Equal(t, "after", byExternalID(t, ps, messageSid(31)).Text)
}

func TestConsentKeywords(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	optedOut := func(number string) bool {
		t.Helper()
		out, err := e.consent.OptedOut(ctx, accountA, number)
		require.NoError(t, err)
		return out
	}
	steps := []struct {
		body     string
		consent  string
		optedOut bool
	}{
		{"Bonjour", "", false},
		{"  Stop\n", inbound.ConsentOptedOut, true},
		{"START", inbound.ConsentOptedIn, false},
		{"arrêt", inbound.ConsentOptedOut, true},
		{"HELP", inbound.ConsentHelp, true},
		{"unstop", inbound.ConsentOptedIn, false},
		{"Stop calling me at work", "", false},
		{"ARRE\u0302T", inbound.ConsentOptedOut, true}, // Ê decomposed
		{"yes", inbound.ConsentOptedIn, false},
		{"info", inbound.ConsentHelp, false},
	}
	for i, s := range steps {
		// Each step a second later: the latest change wins.
		e.clock.now = e.clock.now.Add(time.Second)
		resp, body := e.postMessage(t, smsForm(messageSid(100+i), s.body))
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Equal(t, s.optedOut, optedOut(customer), "after %q", s.body)
		// The message still reaches the agents, marked.
		_, ps := received(t, e.read(t, events.TopicInbound, i+1)[i:])
		require.Equal(t, s.body, ps[0].Text)
		require.Equal(t, s.consent, ps[0].Metadata["consent"], "after %q", s.body)
	}
	// Twilio's Advanced Opt-Out recognised a keyword of its own.
	e.clock.now = e.clock.now.Add(time.Second)
	resp, body := e.postMessage(t, with(smsForm(messageSid(200), "Désinscription"), "OptOutType", "STOP"))
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.True(t, optedOut(customer))
	require.Equal(t, 4.0, e.metric(t, "switchboard_sms_consent_total{consent=opted_out}"))
}

// statusForm is a status callback for accountA.
func statusForm(sid, status, code, message string) url.Values {
	f := url.Values{
		"AccountSid": {sidA}, "MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"From": {ourNumber}, "To": {customer}, "ApiVersion": {"2010-04-01"},
	}
	if code != "" {
		f["ErrorCode"] = []string{code}
	}
	if message != "" {
		f["ErrorMessage"] = []string{message}
	}
	return f
}

func TestStatusCallbacks(t *testing.T) {
	e := start(t)
	const msgID = "3d0c5c0e-6c3b-4c1e-9a57-0d1f2e3a4b5c"
	post := func(path string, form map[string][]string, token string) (*http.Response, string) {
		t.Helper()
		return e.do(t, request{path: path, body: encode(form), sig: sign(token, path, form)})
	}
	path := statusPath(accountA, msgID)
	// Out of order, as Twilio may deliver them: each is published, and
	// the inbox, which ranks statuses (events.DeliveryRank), never moves
	// a message backwards. Pending ones are answered but not published.
	steps := []struct {
		twilio, code, message string
		want                  string // "" when nothing is published
		err                   string
	}{
		{"queued", "", "", "", ""},
		{"delivered", "", "", events.DeliveryDelivered, ""},
		{"sent", "", "", events.DeliverySent, ""},
		{"sending", "", "", "", ""},
		{"read", "", "", events.DeliveryRead, ""},
		{"undelivered", "30003", "Unreachable destination handset", events.DeliveryFailed, "Twilio error 30003: Unreachable destination handset"},
		{"failed", "30008", "", events.DeliveryFailed, "Twilio error 30008"},
		{"receiving", "", "", "", ""},
	}
	published := 0
	for i, s := range steps {
		resp, body := post(path, statusForm(messageSid(300+i), s.twilio, s.code, s.message), tokenA)
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "%s: %s", s.twilio, body)
		if s.want == "" {
			continue
		}
		published++
		msgs := e.read(t, events.TopicDelivery, published)
		m := msgs[published-1]
		require.Equal(t, msgID, string(m.Key))
		ev, _, err := events.FromMessage(context.Background(), m)
		require.NoError(t, err)
		require.Equal(t, events.TypeDelivery, ev.Type)
		var d events.Delivery
		require.NoError(t, ev.Decode(&d))
		require.Equal(t, events.Delivery{MessageID: msgID, TenantID: tenantID, Status: s.want, Error: s.err, At: e.clock.now}, d, s.twilio)
	}
	out, err := e.consent.OptedOut(context.Background(), accountA, customer)
	require.NoError(t, err)
	require.False(t, out)

	// 21610: the customer replied STOP to this sender before; the number
	// is opted out here too.
	resp, body := post(path, statusForm(messageSid(320), "failed", "21610", "Attempt to send to unsubscribed recipient"), tokenA)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	out, err = e.consent.OptedOut(context.Background(), accountA, customer)
	require.NoError(t, err)
	require.True(t, out)

	// The query string is part of what Twilio signs.
	form := statusForm(messageSid(321), "delivered", "", "")
	resp, body = e.do(t, request{path: path, body: encode(form), sig: sign(tokenA, "/v1/webhooks/sms/"+accountA+"/status", form)})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	other := statusPath(accountA, "9f9f9f9f-6c3b-4c1e-9a57-0d1f2e3a4b5c")
	resp, body = e.do(t, request{path: path, body: encode(form), sig: sign(tokenA, other, form)})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	// No message id, or not ours: 400 naming it.
	for _, p := range []string{"/v1/webhooks/sms/" + accountA + "/status", statusPath(accountA, "SM123")} {
		resp, body = post(p, form, tokenA)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		require.Contains(t, body, `"field":"message_id"`)
	}
	resp, body = post(path, statusForm(messageSid(322), "", "", ""), tokenA)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	require.Contains(t, body, `"field":"MessageStatus"`)
}
