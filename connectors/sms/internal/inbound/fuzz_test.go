package inbound

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// FuzzParseForm feeds arbitrary bodies to the messaging webhook's parsing
// and validation: it must never panic, and every form it accepts must give
// a valid sb.message.received.v1 event, media included (as skipped, the
// fetch aside).
func FuzzParseForm(f *testing.F) {
	f.Add(baseForm().Encode())
	f.Add(formWith("Body", "", "NumMedia", "1", "MediaUrl0", "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME0123456789abcdef0123456789abcdef", "MediaContentType0", "image/jpeg").Encode())
	f.Add(formWith("Body", "ARRÊT", "FromCity", "PARIS", "ToCountry", "FR", "OptOutType", "STOP").Encode())
	f.Add(formWith("From", "whatsapp:+33612345678").Encode())
	f.Add(formWith("Body", "caf\xe9\x00").Encode())
	f.Add("Body=%ZZ&&;=")
	f.Add("NumMedia=10&MediaUrl9=https://x&MediaContentType9=a/b")
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		m, err := ParseMessage(form, testAccountSID)
		if err != nil {
			return
		}
		consent := Keyword(m.Body, m.OptOutType)
		p, err := payload(testAccount, m, consent, nil, now)
		if err != nil {
			// Everything the form check lets through makes a valid event.
			t.Fatalf("accepted form %q gave an invalid payload: %v", body, err)
		}
		for i, md := range m.Media {
			p.Attachments = append(p.Attachments, events.Attachment{Name: mediaName(i, md), ContentType: md.ContentType, Skipped: tooLarge(1024)})
		}
		ev, key, err := messageEvent(testAccount, m, p, now)
		if err != nil {
			t.Fatalf("accepted form %q gave no event: %v", body, err)
		}
		var got events.MessageReceived
		if err := ev.Decode(&got); err != nil {
			t.Fatalf("accepted form %q gave undecodable data: %v", body, err)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted form %q gave an invalid event: %v", body, err)
		}
		if got.ExternalID != m.SID || got.From.Identity != m.From || got.ThreadKey != m.To+":"+m.From || len(key) == 0 {
			t.Fatalf("accepted form %q gave the wrong identity: %+v", body, got)
		}
		if strings.TrimSpace(got.Text) == "" || len(got.Attachments) != len(m.Media) {
			t.Fatalf("accepted form %q lost its text or media: %+v", body, got)
		}
	})
}
