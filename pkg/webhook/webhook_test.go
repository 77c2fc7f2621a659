package webhook_test

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

func TestVerify(t *testing.T) {
	secret := []byte("sbwh_secret")
	other := []byte("sbwh_other")
	body := []byte(`{"message_id":"m1"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := webhook.Timestamp(now)
	sig := webhook.Sign(secret, now, body)
	tol := 5 * time.Minute

	cases := []struct {
		name      string
		secrets   [][]byte
		ts, sig   string
		body      []byte
		now       time.Time
		wantError error
	}{
		{"valid", [][]byte{secret}, ts, sig, body, now, nil},
		{"valid during rotation", [][]byte{other, secret}, ts, sig, body, now, nil},
		{"several signatures", [][]byte{secret}, ts, webhook.Sign(other, now, body) + ", " + sig, body, now, nil},
		{"a little early clock", [][]byte{secret}, ts, sig, body, now.Add(-4 * time.Minute), nil},
		{"tampered body", [][]byte{secret}, ts, sig, []byte(`{"message_id":"m2"}`), now, webhook.ErrBadSignature},
		{"wrong secret", [][]byte{other}, ts, sig, body, now, webhook.ErrBadSignature},
		{"timestamp changed", [][]byte{secret}, webhook.Timestamp(now.Add(time.Second)), sig, body, now, webhook.ErrBadSignature},
		{"replayed later", [][]byte{secret}, ts, sig, body, now.Add(6 * time.Minute), webhook.ErrStale},
		{"from the future", [][]byte{secret}, ts, sig, body, now.Add(-6 * time.Minute), webhook.ErrStale},
		{"no signature", [][]byte{secret}, ts, "", body, now, webhook.ErrMissing},
		{"no timestamp", [][]byte{secret}, "", sig, body, now, webhook.ErrMissing},
		{"timestamp not a number", [][]byte{secret}, "yesterday", sig, body, now, webhook.ErrMalformed},
		{"not hex", [][]byte{secret}, ts, "v1=zz", body, now, webhook.ErrMalformed},
		{"unknown version only", [][]byte{secret}, ts, "v0=abcd", body, now, webhook.ErrMalformed},
		{"truncated", [][]byte{secret}, ts, sig[:20], body, now, webhook.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify(c.secrets, c.ts, c.sig, c.body, c.now, tol)
			if c.wantError == nil && err != nil || c.wantError != nil && !errors.Is(err, c.wantError) {
				t.Errorf("Verify() = %v, want %v", err, c.wantError)
			}
		})
	}
}
