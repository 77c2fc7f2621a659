package inbound

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testSID        = "SM0123456789abcdef0123456789abcdef"
)

var testAccount = events.SMSAccount{ID: "acct-1", TenantID: "tenant-1", AccountSID: testAccountSID, AuthToken: "token"}

func baseForm() url.Values {
	return url.Values{
		"AccountSid": {testAccountSID}, "MessageSid": {testSID}, "From": {"+33612345678"}, "To": {"+33700000001"},
		"Body": {"Bonjour"}, "NumMedia": {"0"},
	}
}

func formWith(kv ...string) url.Values {
	f := baseForm()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

// field returns the field a 400 problem names.
func field(t *testing.T, err error) string {
	t.Helper()
	var p *httpx.Problem
	require.True(t, errors.As(err, &p), "%v is not a problem", err)
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.NotEmpty(t, p.Errors)
	return p.Errors[0].Field
}

func TestParseMessage(t *testing.T) {
	media := []string{"NumMedia", "2",
		"MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME0123456789abcdef0123456789abcdef", "MediaContentType0", "image/jpeg",
		"MediaUrl1", "https://api.twilio.com/x", "MediaContentType1", "text/vcard; charset=utf-8"}
	ok := []struct {
		name string
		form url.Values
		want func(t *testing.T, m Message)
	}{
		{"plain", baseForm(), func(t *testing.T, m Message) {
			require.Equal(t, Message{SID: testSID, From: "+33612345678", To: "+33700000001", Body: "Bonjour", Media: []Media{}}, m)
		}},
		{"no NumMedia", formWith("NumMedia", "-"), func(t *testing.T, m Message) { require.Empty(t, m.Media) }},
		{"MMS without text", formWith(append(media, "Body", "")...), func(t *testing.T, m Message) {
			require.Len(t, m.Media, 2)
			require.Equal(t, "text/vcard; charset=utf-8", m.Media[1].ContentType)
		}},
		{"geo", formWith("FromCity", "LYON", "ToCountry", "FR", "FromZip", "", "MessagingServiceSid", "MG0123"), func(t *testing.T, m Message) {
			require.Equal(t, map[string]string{"from_city": "LYON", "to_country": "FR", "messaging_service_sid": "MG0123"}, m.Metadata)
		}},
		{"1600 characters", formWith("Body", strings.Repeat("é", MaxBodyChars)), func(t *testing.T, m Message) {}},
		{"unknown fields are ignored", formWith("SmsStatus", "received", "NewField", "x"), func(t *testing.T, m Message) {}},
		{"advanced opt-out", formWith("OptOutType", "STOP"), func(t *testing.T, m Message) { require.Equal(t, "STOP", m.OptOutType) }},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMessage(c.form, testAccountSID)
			require.NoError(t, err)
			c.want(t, m)
		})
	}
	bad := []struct {
		name  string
		form  url.Values
		field string
	}{
		{"no AccountSid", formWith("AccountSid", "-"), "AccountSid"},
		{"other AccountSid", formWith("AccountSid", "ACffffffffffffffffffffffffffffffff"), "AccountSid"},
		{"no MessageSid", formWith("MessageSid", "-"), "MessageSid"},
		{"call SID", formWith("MessageSid", "CA0123456789abcdef0123456789abcdef"), "MessageSid"},
		{"short MessageSid", formWith("MessageSid", "SM0123"), "MessageSid"},
		{"WhatsApp", formWith("From", "whatsapp:+33612345678"), "From"},
		{"Messenger", formWith("From", "messenger:12345"), "From"},
		{"national number", formWith("From", "0612345678"), "From"},
		{"leading zero country", formWith("From", "+0612345678"), "From"},
		{"too long number", formWith("To", "+1234567890123456"), "To"},
		{"no To", formWith("To", "-"), "To"},
		{"no Body", formWith("Body", "-"), "Body"},
		{"1601 characters", formWith("Body", strings.Repeat("a", MaxBodyChars+1)), "Body"},
		{"negative NumMedia", formWith("NumMedia", "-1"), "NumMedia"},
		{"padded NumMedia", formWith("NumMedia", "01"), "NumMedia"},
		{"NumMedia 11", formWith("NumMedia", "11"), "NumMedia"},
		{"media beyond NumMedia", formWith(append(media, "NumMedia", "1")...), "MediaContentType1"},
		{"odd media key", formWith("MediaUrlX", "https://x"), "MediaUrlX"},
		{"media URL with credentials", formWith("NumMedia", "1", "MediaUrl0", "https://u:p@api.twilio.com/x", "MediaContentType0", "image/png"), "MediaUrl0"},
		{"bad media type", formWith("NumMedia", "1", "MediaUrl0", "https://api.twilio.com/x", "MediaContentType0", "not a type"), "MediaContentType0"},
		{"bad OptOutType", formWith("OptOutType", "MAYBE"), "OptOutType"},
		{"long geo", formWith("ToCity", strings.Repeat("x", 300)), "ToCity"},
		{"repeated field", func() url.Values { f := baseForm(); f.Add("From", "+33600000000"); return f }(), "From"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseMessage(c.form, testAccountSID)
			require.Error(t, err)
			if got := field(t, err); got != c.field {
				t.Errorf("ParseMessage(%v) names %q, want %q (%v)", c.form, got, c.field, err)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	const id = "3d0c5c0e-6c3b-4c1e-9a57-0d1f2e3a4b5c"
	form := func(kv ...string) url.Values {
		f := url.Values{"AccountSid": {testAccountSID}, "MessageSid": {testSID}, "MessageStatus": {"failed"}, "To": {"+33612345678"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	s, err := ParseStatus(form("ErrorCode", "21610", "ErrorMessage", strings.Repeat("é", 600)), testAccountSID, strings.ToUpper(id))
	require.NoError(t, err)
	require.Equal(t, id, s.MessageID)
	require.Equal(t, "+33612345678", s.To)
	require.Equal(t, maxErrorMessageChars+1, len([]rune(s.ErrorMessage)), "long messages are cut")

	s, err = ParseStatus(form("To", "whatsapp:+33612345678"), testAccountSID, id)
	require.NoError(t, err, "To matters only with 21610")
	require.Empty(t, s.To)

	for _, c := range []struct {
		form  url.Values
		id    string
		field string
	}{
		{form(), "", "message_id"},
		{form(), "m-1", "message_id"},
		{form("AccountSid", "ACffffffffffffffffffffffffffffffff"), id, "AccountSid"},
		{form("MessageSid", "x"), id, "MessageSid"},
		{form("MessageStatus", ""), id, "MessageStatus"},
		{form("ErrorCode", "30003a"), id, "ErrorCode"},
		{form("ErrorCode", "21610", "To", "whatsapp:+33612345678"), id, "To"},
	} {
		_, err := ParseStatus(c.form, testAccountSID, c.id)
		require.Error(t, err)
		if got := field(t, err); got != c.field {
			t.Errorf("ParseStatus(%v, %q) names %q, want %q", c.form, c.id, got, c.field)
		}
	}
}

func TestDeliveryStatus(t *testing.T) {
	for in, want := range map[string]string{
		"queued": events.DeliveryPending, "sending": events.DeliveryPending, "accepted": events.DeliveryPending,
		"sent": events.DeliverySent, "delivered": events.DeliveryDelivered, "read": events.DeliveryRead,
		"undelivered": events.DeliveryFailed, "failed": events.DeliveryFailed, "canceled": events.DeliveryFailed,
		"received": "", "receiving": "", "": "",
	} {
		got, ok := DeliveryStatus(in)
		if got != want || ok != (want != "") {
			t.Errorf("DeliveryStatus(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, c := range []struct {
		s    Status
		want string
	}{
		{Status{TwilioStatus: "undelivered", ErrorCode: "30003", ErrorMessage: "Unreachable destination handset"}, "Twilio error 30003: Unreachable destination handset"},
		{Status{TwilioStatus: "failed", ErrorCode: "30008"}, "Twilio error 30008"},
		{Status{TwilioStatus: "canceled"}, "Twilio reported the message canceled"},
	} {
		if got := deliveryError(c.s); got != c.want {
			t.Errorf("deliveryError(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestKeyword(t *testing.T) {
	for _, c := range []struct{ body, optOutType, want string }{
		{"STOP", "", ConsentOptedOut},
		{" stop\n", "", ConsentOptedOut},
		{"StopAll", "", ConsentOptedOut},
		{"unsubscribe", "", ConsentOptedOut},
		{"cancel", "", ConsentOptedOut},
		{"end", "", ConsentOptedOut},
		{"quit", "", ConsentOptedOut},
		{"arret", "", ConsentOptedOut},
		{"Arrêt", "", ConsentOptedOut},
		{"ARRE\u0302T", "", ConsentOptedOut},
		{"start", "", ConsentOptedIn},
		{"Yes", "", ConsentOptedIn},
		{"UNSTOP", "", ConsentOptedIn},
		{"help", "", ConsentHelp},
		{"Info", "", ConsentHelp},
		{"stop it", "", ""},
		{"STOP!", "", ""},
		{"", "", ""},
		{"Désinscrire", "STOP", ConsentOptedOut},
		{"Reprendre", "START", ConsentOptedIn},
		{"Aide", "HELP", ConsentHelp},
	} {
		if got := Keyword(c.body, c.optOutType); got != c.want {
			t.Errorf("Keyword(%q, %q) = %q, want %q", c.body, c.optOutType, got, c.want)
		}
	}
}

func TestMediaName(t *testing.T) {
	sid := "ME0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		m    Media
		want string
	}{
		{Media{URL: "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/" + sid, ContentType: "image/jpeg"}, sid + ".jpg"},
		{Media{URL: "https://api.twilio.com/x/" + sid, ContentType: "application/x-unknown"}, sid},
		{Media{URL: "https://api.twilio.com/x/other", ContentType: "text/vcard; charset=utf-8"}, "media-3.vcf"},
	} {
		if got := mediaName(3, c.m); got != c.want {
			t.Errorf("mediaName(3, %+v) = %q, want %q", c.m, got, c.want)
		}
	}
}

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://sb.example.com":           "https://sb.example.com",
		"https://sb.example.com:8443/":     "https://sb.example.com:8443",
		"https://sb.example.com/prefix//":  "https://sb.example.com/prefix",
		"http://localhost:8080":            "http://localhost:8080",
		"":                                 "",
		"sb.example.com":                   "",
		"ftp://sb.example.com":             "",
		"https://sb.example.com/?a=1":      "",
		"https://u:p@sb.example.com":       "",
		"https://sb.example.com/#fragment": "",
	} {
		got, err := NormalizeBaseURL(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestMediaRedirects(t *testing.T) {
	c := mediaClient(nil)
	req := func(raw string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, raw, nil)
		require.NoError(t, err)
		return r
	}
	start := []*http.Request{req("https://api.twilio.com/media")}
	require.NoError(t, c.CheckRedirect(req("https://s3.amazonaws.com/bucket/x"), start), "https elsewhere")
	require.Error(t, c.CheckRedirect(req("http://s3.amazonaws.com/bucket/x"), start), "plain http elsewhere")
	require.Error(t, c.CheckRedirect(req("file:///etc/passwd"), start))
	local := []*http.Request{req("http://127.0.0.1:9000/media")}
	require.NoError(t, c.CheckRedirect(req("http://127.0.0.1:9000/storage"), local), "same host")
	many := make([]*http.Request, maxRedirects)
	for i := range many {
		many[i] = start[0]
	}
	require.Error(t, c.CheckRedirect(req("https://api.twilio.com/again"), many))
}

func TestEventIDsAreStable(t *testing.T) {
	require.Equal(t, MessageEventID("a", testSID), MessageEventID("a", testSID))
	require.NotEqual(t, MessageEventID("a", testSID), MessageEventID("b", testSID), "two accounts, two messages")
	now := time.Unix(1_800_000_000, 0)
	s := Status{MessageID: "3d0c5c0e-6c3b-4c1e-9a57-0d1f2e3a4b5c", SID: testSID, TwilioStatus: "delivered"}
	a, err := deliveryEvent(testAccount, s, events.DeliveryDelivered, now)
	require.NoError(t, err)
	b, err := deliveryEvent(testAccount, s, events.DeliveryDelivered, now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, a.ID, b.ID, "the same callback twice is one event")
	s.TwilioStatus = "read"
	c, err := deliveryEvent(testAccount, s, events.DeliveryRead, now)
	require.NoError(t, err)
	require.NotEqual(t, a.ID, c.ID)
}
