// Package webhook signs and verifies Switchboard webhooks, in both
// directions: chat platforms sign what they post to Switchboard, and
// Switchboard signs what it delivers to a tenant's endpoint.
//
// The scheme (the one Stripe and Slack use): the sender puts the Unix time
// in X-Switchboard-Timestamp and, in X-Switchboard-Signature, "v1=" followed
// by the hex HMAC-SHA256 of the timestamp, a dot and the raw body, keyed with
// the shared secret. The receiver recomputes it over the bytes it received,
// compares in constant time, and refuses timestamps outside a tolerance
// window, so that a captured request cannot be replayed later. During a
// secret rotation the header may carry several v1= values, comma-separated,
// and the receiver may hold several secrets: any match passes.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderTimestamp = "X-Switchboard-Timestamp"
	HeaderSignature = "X-Switchboard-Signature"
)

// Errors of Verify; callers count them by kind.
var (
	ErrMissing      = errors.New("signature or timestamp header missing")
	ErrMalformed    = errors.New("signature or timestamp header malformed")
	ErrStale        = errors.New("timestamp outside the tolerance window")
	ErrBadSignature = errors.New("signature does not match")
)

const version = "v1="

// Sign returns the X-Switchboard-Signature value for body sent at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return version + hex.EncodeToString(mac(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

// Timestamp returns the X-Switchboard-Timestamp value for ts.
func Timestamp(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks the headers of a request whose raw body is body, received
// at now, against any of secrets.
func Verify(secrets [][]byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrMissing
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrMalformed, timestamp)
	}
	age := now.Sub(time.Unix(sec, 0))
	if age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: %s off, tolerance %s", ErrStale, age.Round(time.Second), tolerance)
	}
	var candidates [][]byte
	for _, part := range strings.Split(signature, ",") {
		part = strings.TrimSpace(part)
		if !strings.HasPrefix(part, version) {
			continue // other versions are for other receivers
		}
		sig, err := hex.DecodeString(part[len(version):])
		if err != nil || len(sig) != sha256.Size {
			return fmt.Errorf("%w: v1 value is not a hex SHA-256", ErrMalformed)
		}
		candidates = append(candidates, sig)
	}
	if len(candidates) == 0 {
		return fmt.Errorf("%w: no v1= value", ErrMalformed)
	}
	for _, secret := range secrets {
		want := mac(secret, timestamp, body)
		for _, got := range candidates {
			if hmac.Equal(want, got) {
				return nil
			}
		}
	}
	return ErrBadSignature
}
