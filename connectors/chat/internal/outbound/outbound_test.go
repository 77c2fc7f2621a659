package outbound_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/chat/internal/outbound"
	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

var now = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func TestClassify(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	forbidden := &egress.AddressError{Addr: netip.MustParseAddr("169.254.169.254"), Kind: "link-local"}
	cases := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		err        error
		kind       outbound.Kind
		refused    bool
		retryAfter time.Duration
		reason     string
	}{
		{"200", 200, nil, `{"ok":true}`, nil, outbound.Sent, false, 0, ""},
		{"202", 202, nil, "", nil, outbound.Sent, false, 0, ""},
		{"204", 204, nil, "", nil, outbound.Sent, false, 0, ""},
		{"408", 408, nil, "", nil, outbound.Retry, true, 0, "HTTP 408 Request Timeout"},
		{"429 with seconds", 429, hdr("Retry-After", "120"), "slow down", nil, outbound.Retry, true, 2 * time.Minute, "HTTP 429 Too Many Requests: slow down"},
		{"429 with a date", 429, hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), "", nil, outbound.Retry, true, 90 * time.Second, "HTTP 429"},
		{"500", 500, nil, "boom", nil, outbound.Retry, false, 0, "HTTP 500 Internal Server Error: boom"},
		{"503 with Retry-After", 503, hdr("Retry-After", "5"), "", nil, outbound.Retry, false, 5 * time.Second, "HTTP 503"},
		{"400", 400, nil, `{"error":"bad session"}`, nil, outbound.Fail, false, 0, `refused the delivery: HTTP 400 Bad Request: {"error":"bad session"}`},
		{"401", 401, nil, "", nil, outbound.Fail, false, 0, "HTTP 401 Unauthorized"},
		{"404", 404, nil, "", nil, outbound.Fail, false, 0, "HTTP 404 Not Found"},
		{"410", 410, nil, "", nil, outbound.Fail, false, 0, "HTTP 410 Gone"},
		{"422 ignores Retry-After", 422, hdr("Retry-After", "5"), "", nil, outbound.Fail, false, 0, "HTTP 422"},
		{"302 not followed", 302, nil, "", nil, outbound.Fail, false, 0, "HTTP 302 Found"},
		{"refused address", 0, nil, "", fmt.Errorf("dial: %w", forbidden), outbound.Fail, false, 0, "not allowed"},
		{"refused URL", 0, nil, "", &egress.URLError{URL: "http://example.com", Reason: "must use https"}, outbound.Fail, false, 0, "must use https"},
		{"redirect", 0, nil, "", fmt.Errorf("post: %w", egress.ErrTooManyRedirects), outbound.Fail, false, 0, "redirected"},
		{"timeout", 0, nil, "", context.DeadlineExceeded, outbound.Retry, false, 0, "no answer from the endpoint"},
		{"connection refused", 0, nil, "", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), outbound.Retry, false, 0, "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := outbound.Classify(c.status, c.header, []byte(c.body), c.err, now)
			require.Equal(t, c.kind, o.Kind, o)
			require.Equal(t, c.refused, o.Refused, o)
			require.Equal(t, c.retryAfter, o.RetryAfter, o)
			require.Equal(t, c.status, o.Status)
			if c.reason != "" {
				require.Contains(t, o.Reason, c.reason)
			}
			if c.kind == outbound.Sent {
				require.Empty(t, o.Reason)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	cases := map[string]time.Duration{
		"":            0,
		"0":           0,
		"-5":          0,
		"30":          30 * time.Second,
		" 7 ":         7 * time.Second,
		"soon":        0,
		"99999999999": 7 * 24 * time.Hour,
		"1.5":         0,
		now.Add(-time.Hour).Format(http.TimeFormat):          0,
		now.Add(time.Hour).Format(http.TimeFormat):           time.Hour,
		now.Add(30 * 24 * time.Hour).Format(http.TimeFormat): 7 * 24 * time.Hour,
	}
	for v, want := range cases {
		require.Equal(t, want, outbound.RetryAfter(v, now), "Retry-After %q", v)
	}
}

func TestExcerpt(t *testing.T) {
	require.Equal(t, "a b", outbound.Excerpt([]byte("a\nb\r\n")))
	require.Equal(t, "bad \uFFFD byte", outbound.Excerpt([]byte("bad \xff byte")))
	long := outbound.Excerpt([]byte(strings.Repeat("é", 500)))
	require.LessOrEqual(t, len(long), outbound.MaxExcerpt+3)
	require.True(t, strings.HasPrefix(long, "éé"))
}

func TestSignatureVerifiesWithEachSecret(t *testing.T) {
	body := []byte(`{"id":"m-1"}`)
	sig := outbound.Signature([]string{"sbwo_new", "sbwo_old"}, now, body)
	parts := strings.Split(sig, ",")
	require.Len(t, parts, 2)
	require.Equal(t, webhook.Sign([]byte("sbwo_new"), now, body), parts[0], "the current secret first")
	for _, s := range []string{"sbwo_new", "sbwo_old"} {
		require.NoError(t, webhook.Verify([][]byte{[]byte(s)}, webhook.Timestamp(now), sig, body, now, time.Minute), s)
	}
	require.ErrorIs(t, webhook.Verify([][]byte{[]byte("sbwo_other")}, webhook.Timestamp(now), sig, body, now, time.Minute), webhook.ErrBadSignature)
	require.Error(t, webhook.Verify([][]byte{[]byte("sbwo_new")}, webhook.Timestamp(now), sig, []byte(`{"id":"m-2"}`), now, time.Minute))
}

func TestMessageDelivery(t *testing.T) {
	cmd := events.SendMessage{MessageID: "m-1", ConversationID: "c-1", TenantID: "t-1", Channel: events.ChannelChat, ChannelAccountID: "ch-1",
		ThreadKey: "s-1", To: "u-1", Text: "Voici la facture.", Automatic: true,
		Attachments: []events.Attachment{{Name: "facture.pdf", ContentType: "application/pdf", Size: 1234, BlobKey: "sha256/abc"}}}
	d, err := outbound.MessageDelivery(cmd, now)
	require.NoError(t, err)
	require.Equal(t, "m-1", d.ID)
	require.Equal(t, "ch-1", d.ChannelID)
	var got map[string]any
	require.NoError(t, json.Unmarshal(d.Body, &got))
	require.Equal(t, map[string]any{"id": "m-1", "type": "message.created", "created_at": "2026-12-06T10:00:00Z", "channel_id": "ch-1",
		"session_id": "s-1", "user_id": "u-1", "conversation_id": "c-1", "data": map[string]any{"message_id": "m-1", "text": "Voici la facture.",
			"choices": []any{}, "automatic": true, "attachments": []any{map[string]any{"name": "facture.pdf", "content_type": "application/pdf", "size": 1234.0}}}}, got)
	require.NotContains(t, string(d.Body), "sha256/abc", "blob keys stay inside")

	for _, bad := range []events.SendMessage{
		{ConversationID: "c", TenantID: "t", ChannelAccountID: "ch", Text: "x"},
		{MessageID: "m", ConversationID: "c", TenantID: "t", ChannelAccountID: "ch", Text: " "},
		{MessageID: "m", ConversationID: "c", TenantID: "t", ChannelAccountID: "ch", Channel: "sms", Text: "x"},
	} {
		_, err := outbound.MessageDelivery(bad, now)
		require.ErrorIs(t, err, outbound.ErrInvalidCommand, bad)
	}
}

// TestHeadsAreTheFirstOpenDeliveryOfEachConversation: only the first open
// delivery of a conversation is offered; it is due at once, after its
// next attempt time, or after its claim; the next one comes once it is
// closed.
func TestHeadsAreTheFirstOpenDeliveryOfEachConversation(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	store := outbound.NewStore(pool, "test")
	require.NoError(t, store.Migrate(ctx))
	mk := func(id, conv string) outbound.Delivery {
		d, err := outbound.MessageDelivery(events.SendMessage{MessageID: id, ConversationID: conv, TenantID: "t-1", ChannelAccountID: "ch-1",
			ThreadKey: "s-" + conv, To: "u", Text: "x"}, now)
		require.NoError(t, err)
		return d
	}
	chans, err := store.Record(ctx, []outbound.Delivery{mk("a1", "a"), mk("a2", "a"), mk("b1", "b"), mk("a3", "a")}, now)
	require.NoError(t, err)
	require.Equal(t, []string{"ch-1"}, chans)
	ids := func(hs []outbound.Head) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.ID)
		}
		return out
	}
	heads, err := store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b1"}, ids(heads))
	require.NotEmpty(t, heads[0].Body)
	a1 := heads[0]
	next, err := store.NextDue(ctx, "ch-1")
	require.NoError(t, err)
	require.True(t, next.IsZero())

	// The caller's own in flight are left out.
	heads, err = store.Heads(ctx, "ch-1", now, 10, []string{"b1"})
	require.NoError(t, err)
	require.Equal(t, []string{"a1"}, ids(heads))

	// a1 attempted: held until its lease, and a2 is not offered.
	s, v, err := store.Ledger().Begin(ctx, sendledger.Attempt[outbound.Details]{Ref: a1.Ref(), Lease: time.Minute, At: now, Resend: true})
	require.NoError(t, err)
	require.Equal(t, sendledger.Proceed, v)
	heads, err = store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids(heads))
	next, err = store.NextDue(ctx, "ch-1")
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Minute), next.UTC())
	// After the lease (its worker stopped), it is due again.
	heads, err = store.Heads(ctx, "ch-1", now.Add(time.Minute), 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b1"}, ids(heads))

	// Retried later: due then, not before.
	_, err = store.Ledger().Retry(ctx, sendledger.Outcome[outbound.Details]{Ref: a1.Ref(), Claim: s.Claim, Reason: "503", NextAttemptAt: now.Add(time.Second), At: now})
	require.NoError(t, err)
	heads, err = store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids(heads))
	next, err = store.NextDue(ctx, "ch-1")
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Second), next.UTC())
	heads, err = store.Heads(ctx, "ch-1", now.Add(time.Second), 1, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a1"}, ids(heads), "in the order recorded")

	// Sent but not closed (a crash in between): offered, to be closed.
	_, err = store.Ledger().Sent(ctx, sendledger.Outcome[outbound.Details]{Ref: a1.Ref(), At: now})
	require.NoError(t, err)
	heads, err = store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b1"}, ids(heads))
	require.Equal(t, sendledger.StateSent, heads[0].State)
	closed, err := store.Finish(ctx, heads[0], outbound.OutcomeSent, "", now)
	require.NoError(t, err)
	require.True(t, closed)
	closed, err = store.Finish(ctx, heads[0], outbound.OutcomeSent, "", now)
	require.NoError(t, err)
	require.False(t, closed, "closed once")
	// a2 is next.
	heads, err = store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a2", "b1"}, ids(heads))

	// Recording a delivery again changes nothing.
	_, err = store.Record(ctx, []outbound.Delivery{mk("a1", "a")}, now)
	require.NoError(t, err)
	heads, err = store.Heads(ctx, "ch-1", now, 10, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"a2", "b1"}, ids(heads))
}

func TestEndpointURLsAreCheckedByTheEgressPolicy(t *testing.T) {
	// A sanity check of the client deliveries use: the receiver's address
	// is refused unless the operator allows it.
	c, err := egress.New(egress.Config{ConnectTimeout: time.Second, ResponseHeaderTimeout: time.Second, RequestTimeout: time.Second, MaxResponseBytes: 1024}, egress.Deps{})
	require.NoError(t, err)
	u, _ := url.Parse("https://127.0.0.1:1/hook")
	_, err = c.Do(&http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}})
	require.Error(t, err)
	require.Equal(t, outbound.Fail, outbound.Classify(0, nil, nil, err, now).Kind)
}
