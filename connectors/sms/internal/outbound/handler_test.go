package outbound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/sms/internal/consent"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "authtoken0123456789abcdef01234567"
	testNumber1    = "+15005550006"
	testNumber2    = "+15005550007"
	testService    = "MG0123456789abcdef0123456789abcdef"
)

// instantClock tells the real time and never waits.
type instantClock struct{}

func (instantClock) Now() time.Time { return time.Now() }
func (instantClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

// fixture is a handler over a real ledger and consent store, and a Twilio
// double.
type fixture struct {
	tw       *fakeTwilio
	h        *Handler
	ledger   *Ledger
	consent  *consent.Store
	accounts map[string]events.SMSAccount

	mu        sync.Mutex
	published []events.Delivery
}

func (f *fixture) deliveries() []events.Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Delivery(nil), f.published...)
}

func testAccount() events.SMSAccount {
	return events.SMSAccount{
		ID: "acct-1", TenantID: "t-1", Name: "Support", AccountSID: testAccountSID, AuthToken: testAuthToken,
		Numbers: []string{testNumber1, testNumber2},
	}
}

func statusCallback(accountID, messageID string) string {
	return "https://sb.example/v1/webhooks/sms/" + accountID + "/status?message_id=" + url.QueryEscape(messageID)
}

// newFixture builds a handler on pool, with account acct-1 at a new Twilio
// double, and a retry policy of 4 instant attempts.
func newFixture(t *testing.T, pool *pgxpool.Pool, acct events.SMSAccount) *fixture {
	t.Helper()
	ledger := NewLedger(pool)
	f := &fixture{
		tw:       newFakeTwilio(t, testAccountSID, time.Now),
		ledger:   ledger,
		consent:  consent.New(pool),
		accounts: map[string]events.SMSAccount{acct.ID: acct},
	}
	f.tw.accept(testAccountSID, testAuthToken)
	api, err := NewAPI(APIConfig{BaseURL: f.tw.srv.URL})
	require.NoError(t, err)
	h, err := NewHandler(HandlerConfig{
		Ledger:  ledger,
		API:     api,
		Consent: f.consent,
		Accounts: func(_ context.Context, tenantID, id string) (events.SMSAccount, error) {
			a, ok := f.accounts[id]
			if !ok || a.TenantID != tenantID {
				return events.SMSAccount{}, fmt.Errorf("account %s: %w", id, ErrUnknownAccount)
			}
			return a, nil
		},
		Publish: func(_ context.Context, d events.Delivery) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.published = append(f.published, d)
			return nil
		},
		StatusCallback: statusCallback,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry:          retry.Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Multiplier: 2, MaxAttempts: 4},
		Clock:          instantClock{},
	})
	require.NoError(t, err)
	f.h = h
	return f
}

func testCommand(id, to string) events.SendMessage {
	return events.SendMessage{
		MessageID: id, ConversationID: "c-" + id, TenantID: "t-1", Channel: "sms",
		ChannelAccountID: "acct-1", ThreadKey: testNumber2 + ":" + to, To: to,
		Text: "Hello, your order has shipped.",
	}
}

func TestHandler(t *testing.T) {
	pool := testkit.Postgres(t)
	ctx := testkit.Context(t)
	require.NoError(t, Migrate(ctx, pool))
	require.NoError(t, Migrate(ctx, pool), "migrating twice is harmless")
	require.NoError(t, consent.New(pool).Migrate(ctx))

	record := func(t *testing.T, id string) Record {
		t.Helper()
		rec, ok, err := NewLedger(pool).Get(ctx, id)
		require.NoError(t, err)
		require.True(t, ok, "no ledger row for %s", id)
		return rec
	}
	// Each subtest writes to its own customer number.
	customer := func(n int) string { return fmt.Sprintf("+3361234%04d", n) }

	t.Run("sends once from the thread's number, a replay only publishes again", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		cmd := testCommand("m-sent", customer(1))
		require.NoError(t, f.h.Handle(ctx, cmd))

		msgs, creates, lists := f.tw.counts()
		require.Len(t, msgs, 1)
		require.Equal(t, 1, creates)
		require.Equal(t, 0, lists, "nothing was in doubt")
		m := msgs[0]
		require.Equal(t, customer(1), m.To)
		require.Equal(t, testNumber2, m.From, "the thread's own number")
		require.Empty(t, m.MessagingServiceSID)
		require.Equal(t, cmd.Text, m.Body)
		require.Equal(t, "https://sb.example/v1/webhooks/sms/acct-1/status?message_id=m-sent", m.StatusCallback)
		require.Equal(t, []string{testAccountSID}, f.tw.users(), "account SID and auth token without an API key")

		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, m.SID, rec.ProviderID)
		require.Equal(t, 1, rec.Attempts)
		require.Equal(t, testNumber2, rec.Details.Sender)
		require.Equal(t, EncodingGSM7, rec.Details.Encoding)
		require.Equal(t, 1, rec.Details.Segments)
		require.False(t, rec.InDoubt())
		first := f.deliveries()
		require.Equal(t, []events.Delivery{{MessageID: "m-sent", TenantID: "t-1", Status: events.DeliverySent, At: rec.UpdatedAt.UTC()}}, first)

		require.NoError(t, f.h.Handle(ctx, cmd))
		_, creates, _ = f.tw.counts()
		require.Equal(t, 1, creates, "a replay does not call Twilio")
		require.Equal(t, []events.Delivery{first[0], first[0]}, f.deliveries(), "a replay publishes the same status again")

		got, ok, err := f.ledger.FindByProviderID(ctx, "t-1", m.SID)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "m-sent", got.ID)
	})

	t.Run("the account's first number when the thread's is not the account's", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		cmd := testCommand("m-first-number", customer(2))
		cmd.ThreadKey = "+15550000000:" + cmd.To
		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs, _, _ := f.tw.counts()
		require.Len(t, msgs, 1)
		require.Equal(t, testNumber1, msgs[0].From)
	})

	t.Run("a Messaging Service when the account has no number", func(t *testing.T) {
		acct := testAccount()
		acct.Numbers, acct.MessagingServiceSIDs = nil, []string{testService}
		f := newFixture(t, pool, acct)
		cmd := testCommand("m-service", customer(3))
		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs, _, _ := f.tw.counts()
		require.Len(t, msgs, 1)
		require.Equal(t, testService, msgs[0].MessagingServiceSID)
		require.Empty(t, msgs[0].From)
		require.Equal(t, testService, record(t, cmd.MessageID).Details.Sender)
	})

	t.Run("the API key when the account has one", func(t *testing.T) {
		acct := testAccount()
		acct.APIKeySID, acct.APIKeySecret = "SK0123456789abcdef0123456789abcdef", "keysecret0123456789abcdef0123456"
		f := newFixture(t, pool, acct)
		f.tw.accept(acct.APIKeySID, acct.APIKeySecret)
		require.NoError(t, f.h.Handle(ctx, testCommand("m-api-key", customer(4))))
		require.Equal(t, []string{acct.APIKeySID}, f.tw.users())
		require.Equal(t, sendledger.StateSent, record(t, "m-api-key").State)
	})

	t.Run("retries 429 and 503, then sends one message", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		f.tw.failNextCreates(
			fakeAnswer{status: http.StatusTooManyRequests, code: 20429, msg: "Too Many Requests"},
			fakeAnswer{status: http.StatusServiceUnavailable, code: 20503, msg: "Service Unavailable"},
		)
		cmd := testCommand("m-retry", customer(5))
		require.NoError(t, f.h.Handle(ctx, cmd))

		msgs, creates, lists := f.tw.counts()
		require.Len(t, msgs, 1, "one message at Twilio")
		require.Equal(t, 3, creates)
		require.Equal(t, 1, lists, "a 503 leaves the attempt in doubt: Twilio is searched before the next; a 429 does not")
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, 3, rec.Attempts)
		require.Equal(t, msgs[0].SID, rec.ProviderID)
		require.Equal(t, "Twilio error 20503: Service Unavailable", rec.LastError, "the last retried failure is kept")
		require.Equal(t, events.DeliverySent, f.deliveries()[0].Status)
	})

	t.Run("gives up after the policy's attempts", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		for range 4 {
			f.tw.failNextCreates(fakeAnswer{status: http.StatusTooManyRequests, code: 20429, msg: "Too Many Requests"})
		}
		cmd := testCommand("m-give-up", customer(6))
		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs, creates, _ := f.tw.counts()
		require.Empty(t, msgs)
		require.Equal(t, 4, creates)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, "gave up after 4 attempts: Twilio error 20429: Too Many Requests", rec.LastError)
		require.Equal(t, []events.Delivery{{MessageID: cmd.MessageID, TenantID: "t-1", Status: events.DeliveryFailed, Error: rec.LastError, At: rec.UpdatedAt.UTC()}}, f.deliveries())
	})

	t.Run("a 400 fails at once with Twilio's code and message", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		f.tw.failNextCreates(fakeAnswer{status: http.StatusBadRequest, code: 21211, msg: "Invalid 'To' Phone Number"})
		cmd := testCommand("m-21211", customer(7))
		require.NoError(t, f.h.Handle(ctx, cmd))
		_, creates, lists := f.tw.counts()
		require.Equal(t, 1, creates)
		require.Equal(t, 0, lists)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, "Twilio error 21211: Invalid 'To' Phone Number", rec.LastError)
		require.Equal(t, 1, rec.Attempts)
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.DeliveryFailed, d[0].Status)
		require.Equal(t, "Twilio error 21211: Invalid 'To' Phone Number", d[0].Error)

		out, err := f.consent.OptedOut(ctx, "acct-1", cmd.To)
		require.NoError(t, err)
		require.False(t, out, "21211 says nothing of consent")
	})

	t.Run("21610 fails and opts the number out", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		f.tw.failNextCreates(fakeAnswer{status: http.StatusBadRequest, code: 21610, msg: "Attempt to send to unsubscribed recipient"})
		cmd := testCommand("m-21610", customer(8))
		require.NoError(t, f.h.Handle(ctx, cmd))
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, "Twilio error 21610: Attempt to send to unsubscribed recipient", rec.LastError)
		out, err := f.consent.OptedOut(ctx, "acct-1", cmd.To)
		require.NoError(t, err)
		require.True(t, out)
		d := f.deliveries()
		require.Len(t, d, 1)
		require.True(t, d[0].OptedOut, "the inbox learns of the opt-out")

		// The next message to the number is refused without calling Twilio.
		require.NoError(t, f.h.Handle(ctx, testCommand("m-21610-next", cmd.To)))
		_, creates, _ := f.tw.counts()
		require.Equal(t, 1, creates)
		require.Equal(t, ReasonOptedOut, record(t, "m-21610-next").LastError)
	})

	t.Run("an opted-out number is never sent to", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		cmd := testCommand("m-opted-out", customer(9))
		require.NoError(t, f.consent.Set(ctx, "acct-1", cmd.To, true, time.Now()))
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Empty(t, f.tw.users(), "no HTTP call at all")
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, ReasonOptedOut, rec.LastError)
		require.Equal(t, 0, rec.Attempts)
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.Delivery{MessageID: cmd.MessageID, TenantID: "t-1", Status: events.DeliveryFailed, Error: "the customer opted out of SMS (STOP)", At: rec.UpdatedAt.UTC(), OptedOut: true}, d[0])
	})

	t.Run("a crash after Twilio created the message: the replay adopts it", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		hctx, crash := context.WithCancel(ctx)
		// Twilio creates the message; the process dies before the answer
		// is read (the consumer's context ends, the connection drops).
		f.tw.setOnCreate(func(r *http.Request) {
			crash()
			<-r.Context().Done()
		})
		cmd := testCommand("m-crash", customer(10))
		err := f.h.Handle(hctx, cmd)
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrInvalidCommand)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StatePending, rec.State)
		require.True(t, rec.InDoubt())
		require.Empty(t, f.deliveries())

		f.tw.setOnCreate(nil)
		require.NoError(t, f.h.Handle(ctx, cmd), "the command is delivered again")
		msgs, creates, lists := f.tw.counts()
		require.Len(t, msgs, 1, "sent once")
		require.Equal(t, 1, creates)
		require.Equal(t, 1, lists)
		rec = record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, msgs[0].SID, rec.ProviderID)
		require.Equal(t, 1, rec.Attempts)
		require.False(t, rec.InDoubt())
		require.Equal(t, []events.Delivery{{MessageID: cmd.MessageID, TenantID: "t-1", Status: events.DeliverySent, At: rec.UpdatedAt.UTC()}}, f.deliveries())

		require.NoError(t, f.h.Handle(ctx, cmd))
		_, creates, lists = f.tw.counts()
		require.Equal(t, 1, creates)
		require.Equal(t, 1, lists, "a final record needs no search")
	})

	t.Run("a gateway error after Twilio created the message: adopted, not resent", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		f.tw.failNextCreates(fakeAnswer{status: http.StatusBadGateway, body: "<html><body>502 Bad Gateway</body></html>", store: true})
		cmd := testCommand("m-502", customer(11))
		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs, creates, lists := f.tw.counts()
		require.Len(t, msgs, 1)
		require.Equal(t, 1, creates)
		require.Equal(t, 1, lists)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, msgs[0].SID, rec.ProviderID)
		require.Contains(t, rec.LastError, "Twilio answered HTTP 502: Bad Gateway: <html>")
	})

	t.Run("an attempt in doubt that created nothing is sent after the search", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		f.tw.failNextCreates(fakeAnswer{hangUp: true})
		cmd := testCommand("m-hang-up", customer(12))
		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs, creates, lists := f.tw.counts()
		require.Len(t, msgs, 1)
		require.Equal(t, 2, creates)
		require.Equal(t, 1, lists)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, 2, rec.Attempts)
	})

	t.Run("the same text twice to one customer is sent twice", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		to := customer(13)
		require.NoError(t, f.h.Handle(ctx, testCommand("m-twice-1", to)))
		// The second attempt of the second message is in doubt; the first
		// message matches the search but belongs to m-twice-1.
		f.tw.failNextCreates(fakeAnswer{hangUp: true})
		require.NoError(t, f.h.Handle(ctx, testCommand("m-twice-2", to)))
		msgs, _, lists := f.tw.counts()
		require.Len(t, msgs, 2)
		require.Equal(t, 1, lists)
		require.Equal(t, msgs[0].SID, record(t, "m-twice-1").ProviderID)
		require.Equal(t, msgs[1].SID, record(t, "m-twice-2").ProviderID)
	})

	t.Run("an attempt in doubt is neither resent nor failed while Twilio's list is down", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		f.tw.failNextCreates(fakeAnswer{hangUp: true}, fakeAnswer{status: http.StatusTooManyRequests, code: 20429, msg: "Too Many Requests"})
		for range 4 {
			f.tw.failNextLists(fakeAnswer{status: http.StatusServiceUnavailable, code: 20503, msg: "Service Unavailable"})
		}
		cmd := testCommand("m-list-down", customer(14))
		err := f.h.Handle(ctx, cmd)
		require.ErrorContains(t, err, "may have reached Twilio")
		msgs, creates, lists := f.tw.counts()
		require.Empty(t, msgs)
		require.Equal(t, 1, creates)
		require.Equal(t, 4, lists)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StatePending, rec.State)
		require.True(t, rec.InDoubt())
		require.Empty(t, f.deliveries())

		// Twilio is back: the search finds nothing, the next attempt gets a
		// 429 (no longer in doubt), the one after sends.
		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs, creates, _ = f.tw.counts()
		require.Len(t, msgs, 1)
		require.Equal(t, 3, creates)
		require.Equal(t, sendledger.StateSent, record(t, cmd.MessageID).State)
	})

	t.Run("long and emoji-heavy bodies go as one message, their segments recorded", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		long := testCommand("m-long", customer(15))
		long.Text = strings.Repeat("Your parcel is on its way. ", 20)[:500]
		emoji := testCommand("m-emoji", customer(15))
		emoji.Text = strings.Repeat("Merci 🙏🎉 ", 10)
		require.NoError(t, f.h.Handle(ctx, long))
		require.NoError(t, f.h.Handle(ctx, emoji))
		msgs, _, _ := f.tw.counts()
		require.Len(t, msgs, 2)
		require.Equal(t, long.Text, msgs[0].Body)
		require.Equal(t, emoji.Text, msgs[1].Body)

		rec := record(t, long.MessageID)
		require.Equal(t, EncodingGSM7, rec.Details.Encoding)
		require.Equal(t, 4, rec.Details.Segments, "500 septets in segments of 153")
		rec = record(t, emoji.MessageID)
		require.Equal(t, EncodingUCS2, rec.Details.Encoding)
		require.Equal(t, 2, rec.Details.Segments, "110 UTF-16 units in segments of 67")
	})

	t.Run("invalid commands are dead-lettered, and reported failed when they can be", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		for _, tc := range []struct {
			name   string
			edit   func(*events.SendMessage)
			reason string
		}{
			{"to", func(c *events.SendMessage) { c.To = "0612345678" }, `recipient "0612345678" is not an E.164 number`},
			{"empty", func(c *events.SendMessage) { c.Text = " \n" }, "the text is empty"},
			{"long", func(c *events.SendMessage) { c.Text = strings.Repeat("é", 1601) }, "the text has 1601 characters, more than the 1600 an SMS may have"},
			{"account", func(c *events.SendMessage) { c.ChannelAccountID = "" }, "channel_account_id (the SMS account) is required"},
		} {
			cmd := testCommand("m-invalid-"+tc.name, customer(16))
			tc.edit(&cmd)
			err := f.h.Handle(ctx, cmd)
			require.ErrorIs(t, err, ErrInvalidCommand, tc.name)
			rec := record(t, cmd.MessageID)
			require.Equal(t, sendledger.StateFailed, rec.State, tc.name)
			require.Equal(t, tc.reason, rec.LastError, tc.name)
		}
		cmd := testCommand("", customer(16))
		require.ErrorIs(t, f.h.Handle(ctx, cmd), ErrInvalidCommand)
		require.Empty(t, f.tw.users(), "no HTTP call")
		require.Len(t, f.deliveries(), 4)
	})

	t.Run("an unknown account or one without a sender fails the message", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		cmd := testCommand("m-unknown-account", customer(17))
		cmd.ChannelAccountID = "acct-404"
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Equal(t, "SMS account acct-404 does not exist or was deleted", record(t, cmd.MessageID).LastError)

		acct := testAccount()
		acct.Numbers = nil
		f.accounts[acct.ID] = acct
		cmd = testCommand("m-no-sender", customer(17))
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Equal(t, "SMS account acct-1 has no number nor Messaging Service to send from", record(t, cmd.MessageID).LastError)

		acct = testAccount()
		acct.AuthToken = ""
		f.accounts[acct.ID] = acct
		cmd = testCommand("m-no-credentials", customer(17))
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Equal(t, "no usable Twilio credentials: SMS account acct-1 has neither an API key nor an auth token", record(t, cmd.MessageID).LastError)
		require.Empty(t, f.tw.users())
	})

	t.Run("a publish failure is returned, and the replay publishes", func(t *testing.T) {
		f := newFixture(t, pool, testAccount())
		boom := errors.New("kafka down")
		calls := 0
		f.h.cfg.Publish = func(_ context.Context, d events.Delivery) error {
			calls++
			if calls == 1 {
				return boom
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.published = append(f.published, d)
			return nil
		}
		cmd := testCommand("m-publish", customer(18))
		require.ErrorIs(t, f.h.Handle(ctx, cmd), boom)
		require.NoError(t, f.h.Handle(ctx, cmd))
		_, creates, _ := f.tw.counts()
		require.Equal(t, 1, creates)
		require.Len(t, f.deliveries(), 1)
	})
}
