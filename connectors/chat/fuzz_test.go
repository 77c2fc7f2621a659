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
