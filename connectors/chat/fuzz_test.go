package chat

import (
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// FuzzParse feeds arbitrary bodies to the webhook's parsing path: it must
// never panic, and whatever it accepts must be a valid event.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"message_id":"m-1","session_id":"s-1","user":{"id":"u-1","name":"Ada"},"text":"Bonjour","sent_at":"2026-11-21T09:59:58Z","metadata":{"page":"/pricing"}}`))
	f.Add([]byte(`{"message_id":"m","user":{"id":"u"},"text":"t"}`))
	f.Add([]byte(`{"message_id":"m","user":{"id":"u"},"text":"\u0000"}`))
	f.Add([]byte(`{"message_id":"","user":{},"text":7}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"metadata":{"":""}}`))
	f.Add([]byte(`{"message_id":"m","user":{"id":"u"},"text":"t","bot":{"name":"Helper"}}`))
	f.Add([]byte(`{"message_id":"m","user":{"id":"u"},"text":"t","bot":{"name":""}}`))
	c := &Connector{}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parse(body)
		if err != nil {
			return
		}
		ev, key, err := c.event("channel", "tenant", m, now)
		if err != nil {
			return
		}
		var p events.MessageReceived
		if err := ev.Decode(&p); err != nil {
			t.Fatalf("accepted body %q gave undecodable data: %v", body, err)
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted body %q gave an invalid event: %v", body, err)
		}
		if len(key) == 0 {
			t.Fatalf("accepted body %q gave no key", body)
		}
	})
}

// FuzzStatusWebhook feeds arbitrary bodies to the status webhook's parsing:
// it must never panic, and whatever it accepts names a message and a
// status an endpoint may report.
func FuzzStatusWebhook(f *testing.F) {
	f.Add([]byte(`{"message_id":"0190f7a2-0000-7000-8000-000000000001","status":"delivered"}`))
	f.Add([]byte(`{"message_id":"m","status":"read","at":"2026-12-06T10:00:00Z"}`))
	f.Add([]byte(`{"message_id":"m","status":"sent"}`))
	f.Add([]byte(`{"message_id":"","status":"read","at":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := parseStatus(body)
		if err != nil {
			return
		}
		if st.MessageID == "" || len(st.MessageID) > events.MaxIDBytes {
			t.Fatalf("accepted body %q with message id %q", body, st.MessageID)
		}
		if st.Status != events.DeliveryDelivered && st.Status != events.DeliveryRead {
			t.Fatalf("accepted body %q with status %q", body, st.Status)
		}
	})
}
