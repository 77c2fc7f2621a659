package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

const (
	testAccountSID = "AC0123456789abcdef0123456789abcdef"
	testAuthToken  = "fedcba9876543210fedcba9876543210"
	testKeySID     = "SK0123456789abcdef0123456789abcdef"
	testKeySecret  = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
	testServiceSID = "MG0123456789abcdef0123456789abcdef"
)

func validSMSAccount() store.SMSAccountSpec {
	return store.SMSAccountSpec{Name: "Support line", AccountSID: testAccountSID, AuthToken: testAuthToken, Numbers: []string{"+14155550100"}}
}

func TestSMSAccountSpecValidate(t *testing.T) {
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("+1415555%04d", i)
		}
		return out
	}
	checkValidate(t, validSMSAccount, []validateCase[store.SMSAccountSpec]{
		{"valid", func(*store.SMSAccountSpec) {}, ""},
		{"an API key", func(s *store.SMSAccountSpec) { s.APIKeySID, s.APIKeySecret = testKeySID, testKeySecret }, ""},
		{"a messaging service only", func(s *store.SMSAccountSpec) { s.Numbers, s.MessagingServiceSIDs = nil, []string{testServiceSID} }, ""},
		{"100 numbers", func(s *store.SMSAccountSpec) { s.Numbers = many(100) }, ""},
		{"7-digit number", func(s *store.SMSAccountSpec) { s.Numbers = []string{"+3541234567"} }, ""},
		{"name blank", func(s *store.SMSAccountSpec) { s.Name = " " }, "name"},
		{"name with a line break", func(s *store.SMSAccountSpec) { s.Name = "a\nb" }, "name"},
		{"account_sid absent", func(s *store.SMSAccountSpec) { s.AccountSID = "" }, "account_sid"},
		{"account_sid upper case", func(s *store.SMSAccountSpec) { s.AccountSID = strings.ToUpper(testAccountSID) }, "account_sid"},
		{"account_sid of a key", func(s *store.SMSAccountSpec) { s.AccountSID = testKeySID }, "account_sid"},
		{"auth_token absent", func(s *store.SMSAccountSpec) { s.AuthToken = "" }, "auth_token"},
		{"auth_token short", func(s *store.SMSAccountSpec) { s.AuthToken = testAuthToken[:31] }, "auth_token"},
		{"auth_token with a space", func(s *store.SMSAccountSpec) { s.AuthToken = " " + testAuthToken[1:] }, "auth_token"},
		{"auth_token absent with an API key", func(s *store.SMSAccountSpec) {
			s.AuthToken, s.APIKeySID, s.APIKeySecret = "", testKeySID, testKeySecret
		}, "auth_token"},
		{"api_key_sid without a secret", func(s *store.SMSAccountSpec) { s.APIKeySID = testKeySID }, "api_key_secret"},
		{"api_key_secret without a SID", func(s *store.SMSAccountSpec) { s.APIKeySecret = testKeySecret }, "api_key_sid"},
		{"api_key_sid of an account", func(s *store.SMSAccountSpec) { s.APIKeySID, s.APIKeySecret = testAccountSID, testKeySecret }, "api_key_sid"},
		{"api_key_secret with a symbol", func(s *store.SMSAccountSpec) {
			s.APIKeySID, s.APIKeySecret = testKeySID, "AbCdEfGhIjKlMnOpQrStUvWxYz01234!"
		}, "api_key_secret"},
		{"neither number nor service", func(s *store.SMSAccountSpec) { s.Numbers = nil }, "numbers"},
		{"number without a plus", func(s *store.SMSAccountSpec) { s.Numbers = []string{"14155550100"} }, "numbers[0]"},
		{"number with spaces", func(s *store.SMSAccountSpec) { s.Numbers = []string{"+1 415 555 0100"} }, "numbers[0]"},
		{"number starting with 0", func(s *store.SMSAccountSpec) { s.Numbers = []string{"+04155550100"} }, "numbers[0]"},
		{"number too short", func(s *store.SMSAccountSpec) { s.Numbers = []string{"+123456"} }, "numbers[0]"},
		{"number too long", func(s *store.SMSAccountSpec) { s.Numbers = []string{"+1234567890123456"} }, "numbers[0]"},
		{"number twice", func(s *store.SMSAccountSpec) { s.Numbers = []string{"+14155550100", "+14155550101", "+14155550100"} }, "numbers[2]"},
		{"101 numbers", func(s *store.SMSAccountSpec) { s.Numbers = many(101) }, "numbers"},
		{"service SID wrong", func(s *store.SMSAccountSpec) { s.MessagingServiceSIDs = []string{"MG123"} }, "messaging_service_sids[0]"},
		{"service twice", func(s *store.SMSAccountSpec) { s.MessagingServiceSIDs = []string{testServiceSID, testServiceSID} }, "messaging_service_sids[1]"},
	})
}

// TestSMSAccountsAreConfiguration: accounts are created, changed and
// deleted in transactions that announce them, a number belongs to one
// live account of a tenant, and AnnounceConfig repeats them all.
func TestSMSAccountsAreConfiguration(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	keys := testkit.Keyring(t)
	s := store.New(pool, keys)
	require.NoError(t, s.Migrate(ctx))
	now := time.Now()
	var tenant, other store.Tenant
	var live, gone store.SMSAccount
	inTx := func(fn func(tx pgx.Tx) error) error { return s.InTx(ctx, fn) }
	require.NoError(t, inTx(func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		if other, err = s.CreateTenant(ctx, tx, "o"); err != nil {
			return err
		}
		spec := validSMSAccount()
		spec.APIKeySID, spec.APIKeySecret = testKeySID, testKeySecret
		if live, err = s.CreateSMSAccount(ctx, tx, tenant.ID, spec, now); err != nil {
			return err
		}
		spec = validSMSAccount()
		spec.Numbers = []string{"+14155550199"}
		gone, err = s.CreateSMSAccount(ctx, tx, tenant.ID, spec, now)
		return err
	}))
	require.True(t, live.AuthTokenSet)
	require.True(t, live.APIKeySecretSet)
	require.Equal(t, []string{}, live.MessagingServiceSIDs)

	// A number of a live account of the tenant is refused, naming its
	// place in the list; another tenant may have it.
	spec := validSMSAccount()
	spec.Numbers = []string{"+14155550111", "+14155550100"}
	err := inTx(func(tx pgx.Tx) error {
		_, err := s.CreateSMSAccount(ctx, tx, tenant.ID, spec, now)
		return err
	})
	var fe *domain.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "numbers[1]", fe.Field)
	require.NoError(t, inTx(func(tx pgx.Tx) error {
		_, err := s.CreateSMSAccount(ctx, tx, other.ID, spec, now)
		return err
	}))
	// Updating an account to its own numbers is no conflict; to another's is.
	_, err = updateSMS(ctx, s, tenant.ID, live.ID, now, func(sp *store.SMSAccountSpec) { sp.Name = "Renamed" })
	require.NoError(t, err)
	_, err = updateSMS(ctx, s, tenant.ID, live.ID, now, func(sp *store.SMSAccountSpec) { sp.Numbers = append(sp.Numbers, "+14155550199") })
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "numbers[1]", fe.Field)

	// Deleting frees the numbers and forgets the secrets.
	require.NoError(t, inTx(func(tx pgx.Tx) error { return s.DeleteSMSAccount(ctx, tx, tenant.ID, gone.ID, now) }))
	_, err = s.GetSMSAccount(ctx, tenant.ID, gone.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	got, err := updateSMS(ctx, s, tenant.ID, live.ID, now, func(sp *store.SMSAccountSpec) { sp.Numbers = append(sp.Numbers, "+14155550199") })
	require.NoError(t, err)
	require.Equal(t, []string{"+14155550100", "+14155550199"}, got.Numbers)
	var settings string
	require.NoError(t, pool.QueryRow(ctx, `SELECT settings::text FROM inbox.channel_accounts WHERE id = $1`, gone.ID).Scan(&settings))
	require.NotContains(t, settings, testAuthToken)

	evs := configEvents[events.SMSAccount](t, ctx, pool, "sms_account/")
	require.Len(t, evs["sms_account/"+live.ID.String()], 3)
	first := evs["sms_account/"+live.ID.String()][0]
	require.True(t, seal.IsSealed(first.AuthToken) && seal.IsSealed(first.APIKeySecret), "announced sealed: %+v", first)
	_, err = keys.OpenFields(first.SecretPlace(), first.SecretFields())
	require.NoError(t, err)
	require.Equal(t, events.SMSAccount{ID: live.ID.String(), TenantID: tenant.ID.String(), Name: "Support line", AccountSID: testAccountSID,
		AuthToken: testAuthToken, APIKeySID: testKeySID, APIKeySecret: testKeySecret, Numbers: []string{"+14155550100"}}, first)
	g := evs["sms_account/"+gone.ID.String()]
	require.Len(t, g, 2)
	require.True(t, g[1].Deleted)
	require.Empty(t, g[1].AuthToken, "a deleted account's secrets are forgotten")

	_, err = pool.Exec(ctx, `DELETE FROM inbox.outbox`)
	require.NoError(t, err)
	n, err := s.AnnounceConfig(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 3, n.SMSAccounts)
	evs = configEvents[events.SMSAccount](t, ctx, pool, "sms_account/")
	again := evs["sms_account/"+live.ID.String()][0]
	_, err = keys.OpenFields(again.SecretPlace(), again.SecretFields())
	require.NoError(t, err)
	require.Equal(t, testAuthToken, again.AuthToken, "the connector verifies webhooks with the announced token")
	require.True(t, evs["sms_account/"+gone.ID.String()][0].Deleted)

	// Texts of the account are accepted, on the sms channel only.
	msg := events.MessageReceived{TenantID: tenant.ID.String(), Channel: events.ChannelSMS, ChannelAccountID: live.ID.String(),
		ExternalID: "SM1", ThreadKey: "+14155550100:+33612345678", From: events.Party{Identity: "+33612345678"}, Text: "hello", ReceivedAt: now}
	_, err = s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: msg}}, now, nil, nil)
	require.NoError(t, err)
	msg.Channel, msg.ExternalID = events.ChannelEmail, "SM2"
	_, err = s.Ingest(ctx, []store.Inbound{{EventID: uuid.NewString(), Msg: msg}}, now, nil, nil)
	require.ErrorIs(t, err, store.ErrUnknownAccount)
}

func updateSMS(ctx context.Context, s *store.Store, tenant, id uuid.UUID, now time.Time, fn func(*store.SMSAccountSpec)) (store.SMSAccount, error) {
	var out store.SMSAccount
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = s.UpdateSMSAccount(ctx, tx, tenant, id, now, func(sp *store.SMSAccountSpec) error { fn(sp); return nil })
		return err
	})
	return out, err
}

// TestIngestRecordsSMSConsent: STOP opts the sender's SMS identity out,
// START back in; the latest text wins, whatever order they arrive in, and
// a STOP delivered again does not undo a later START.
func TestIngestRecordsSMSConsent(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	s := store.New(pool, testkit.Keyring(t))
	require.NoError(t, s.Migrate(ctx))
	now := time.Now().UTC().Truncate(time.Microsecond)
	var tenant store.Tenant
	var account store.SMSAccount
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		account, err = s.CreateSMSAccount(ctx, tx, tenant.ID, validSMSAccount(), now)
		return err
	}))
	text := func(id, from, body, consent string, at time.Time) store.Inbound {
		m := events.MessageReceived{TenantID: tenant.ID.String(), Channel: events.ChannelSMS, ChannelAccountID: account.ID.String(),
			ExternalID: id, ThreadKey: "+14155550100:" + from, From: events.Party{Identity: from}, Text: body, ReceivedAt: at}
		if consent != "" {
			m.Metadata = map[string]string{"consent": consent}
		}
		return store.Inbound{EventID: uuid.NewString(), Msg: m}
	}
	ingest := func(msgs ...store.Inbound) {
		t.Helper()
		_, err := s.Ingest(ctx, msgs, now, nil, nil)
		require.NoError(t, err)
	}
	consent := func(from string) (string, *time.Time) {
		t.Helper()
		var c *string
		var at *time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT consent, consent_changed_at FROM inbox.contact_identities
			WHERE tenant_id = $1 AND channel = 'sms' AND identity = $2`, tenant.ID, from).Scan(&c, &at))
		if c == nil {
			return "", at
		}
		return *c, at
	}
	const ada, bob, cy = "+33612345678", "+33612345679", "+33612345670"
	t0 := now.Add(-time.Hour)

	// A plain text and HELP change nothing.
	ingest(text("SM1", ada, "hello", "", t0), text("SM2", bob, "HELP", "help", t0))
	c, at := consent(ada)
	require.Equal(t, "", c)
	require.Nil(t, at)
	c, _ = consent(bob)
	require.Equal(t, "", c)

	// STOP with the message that opened the conversation, in one batch.
	ingest(text("SM3", ada, "STOP", "opted_out", t0.Add(time.Minute)), text("SM4", cy, "STOP", "opted_out", t0.Add(time.Minute)))
	c, at = consent(ada)
	require.Equal(t, "opted_out", c)
	require.True(t, at.Equal(t0.Add(time.Minute)), "consent_changed_at = %v", at)
	c, _ = consent(cy)
	require.Equal(t, "opted_out", c, "a new customer's first text may be STOP")

	// START, then STOP delivered again: START stays.
	ingest(text("SM5", ada, "START", "opted_in", t0.Add(2*time.Minute)))
	require.Equal(t, "opted_in", must(consent(ada)))
	ingest(text("SM3", ada, "STOP", "opted_out", t0.Add(time.Minute)))
	require.Equal(t, "opted_in", must(consent(ada)), "a redelivered STOP undid a later START")

	// A STOP received before the START but ingested after it is older.
	ingest(text("SM6", ada, "STOP", "opted_out", t0.Add(90*time.Second)))
	require.Equal(t, "opted_in", must(consent(ada)))

	// In one batch, the latest of a sender's texts wins.
	ingest(text("SM7", ada, "STOP", "opted_out", t0.Add(4*time.Minute)), text("SM8", ada, "START", "opted_in", t0.Add(3*time.Minute)))
	require.Equal(t, "opted_out", must(consent(ada)))

	// Only SMS identities take consent: a chat message saying so is ignored.
	chat, err := func() (store.ChatChannel, error) {
		var ch store.ChatChannel
		err := s.InTx(ctx, func(tx pgx.Tx) error {
			var err error
			ch, err = s.CreateChatChannel(ctx, tx, tenant.ID, "chat", now)
			return err
		})
		return ch, err
	}()
	require.NoError(t, err)
	m := text("c1", ada, "STOP", "opted_out", t0)
	m.Msg.Channel, m.Msg.ChannelAccountID = events.ChannelChat, chat.ID.String()
	ingest(m)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM inbox.contact_identities WHERE channel = 'chat' AND consent IS NOT NULL`).Scan(&n))
	require.Zero(t, n)
}

func must(c string, _ *time.Time) string { return c }
