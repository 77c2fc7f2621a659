package store_test

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

func keyring(t *testing.T, active string, keys ...seal.Key) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(active, keys...)
	require.NoError(t, err)
	return k
}

func newKey(t *testing.T, id string) seal.Key {
	t.Helper()
	k, err := seal.NewKey(id)
	require.NoError(t, err)
	return k
}

// secretsFixture is a tenant with a secret of every kind.
type secretsFixture struct {
	tenant  store.Tenant
	mailbox store.Mailbox
	sms     store.SMSAccount
	chat    store.ChatChannel
}

func createSecrets(t *testing.T, ctx context.Context, s *store.Store, now time.Time) secretsFixture {
	t.Helper()
	var f secretsFixture
	require.NoError(t, s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if f.tenant, err = s.CreateTenant(ctx, tx, "t"); err != nil {
			return err
		}
		if f.chat, err = s.CreateChatChannel(ctx, tx, f.tenant.ID, "chat", now); err != nil {
			return err
		}
		mb := validMailbox()
		mb.SMTP.Username, mb.SMTP.OAuth2Token = "support", "oauth-token"
		if f.mailbox, err = s.CreateMailbox(ctx, tx, f.tenant.ID, mb, now); err != nil {
			return err
		}
		sms := validSMSAccount()
		sms.APIKeySID, sms.APIKeySecret = testKeySID, testKeySecret
		if f.sms, err = s.CreateSMSAccount(ctx, tx, f.tenant.ID, sms, now); err != nil {
			return err
		}
		key := "translator-key"
		_, err = s.PutTranslationSettings(ctx, tx, f.tenant.ID, store.TranslationSettings{Enabled: true, Provider: "libretranslate", URL: "https://tr.example.com"}, &key, now)
		return err
	}))
	return f
}

var sealedRe = regexp.MustCompile(`sb-sealed:v1:([A-Za-z0-9._-]+):`)

// storedKeyIDs counts the sealed values of the inbox's secrets by key id.
func storedKeyIDs(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	var all string
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(string_agg(settings::text, ' '), '') || ' ' ||
		(SELECT coalesce(string_agg(api_key, ' '), '') FROM inbox.translation_settings) FROM inbox.channel_accounts`).Scan(&all))
	ids := map[string]int{}
	for _, m := range sealedRe.FindAllStringSubmatch(all, -1) {
		ids[m[1]]++
	}
	return ids
}

// lastAnnounced opens the latest announced secrets of each entity with
// keys, as the connectors do, and returns them by field.
func lastAnnounced(t *testing.T, ctx context.Context, pool *pgxpool.Pool, keys *seal.Keyring) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, evs := range configEvents[events.Mailbox](t, ctx, pool, "mailbox/") {
		m := evs[len(evs)-1]
		_, err := keys.OpenFields(m.SecretPlace(), m.SecretFields())
		require.NoError(t, err)
		got["imap.password"], got["smtp.oauth2_token"] = m.IMAP.Password, m.SMTP.OAuth2Token
	}
	for _, evs := range configEvents[events.SMSAccount](t, ctx, pool, "sms_account/") {
		a := evs[len(evs)-1]
		_, err := keys.OpenFields(a.SecretPlace(), a.SecretFields())
		require.NoError(t, err)
		got["auth_token"], got["api_key_secret"] = a.AuthToken, a.APIKeySecret
	}
	for _, evs := range configEvents[events.ChatChannel](t, ctx, pool, "chat_channel/") {
		c := evs[len(evs)-1]
		_, err := keys.OpenFields(c.SecretPlace(), c.SecretFields())
		require.NoError(t, err)
		got["secrets"] = c.Secrets[0]
	}
	return got
}

// TestSecretsRotation: secrets sealed under key a; key b added and made
// active: the old secrets still open, new ones are sealed under b;
// ResealSecrets moves every secret to b and announces them, changes
// nothing when run again, and then a keyring of b alone serves.
func TestSecretsRotation(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	a, b := newKey(t, "a"), newKey(t, "b")
	onlyA := store.New(pool, keyring(t, "a", a))
	require.NoError(t, onlyA.Migrate(ctx))
	now := time.Now()
	f := createSecrets(t, ctx, onlyA, now)
	require.Equal(t, map[string]int{"a": 6}, storedKeyIDs(t, ctx, pool))

	bothKeys := keyring(t, "b", a, b)
	both := store.New(pool, bothKeys)
	// Old secrets open.
	set, err := both.GetTranslationSettings(ctx, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, "translator-key", set.APIKey)
	want := map[string]string{"imap.password": "pw", "smtp.oauth2_token": "oauth-token", "auth_token": testAuthToken,
		"api_key_secret": testKeySecret, "secrets": f.chat.Secret}
	require.Equal(t, want, lastAnnounced(t, ctx, pool, bothKeys))
	// A new secret is sealed under b; the others stay under a.
	_, err = updateSMS(ctx, both, f.tenant.ID, f.sms.ID, now, func(sp *store.SMSAccountSpec) { sp.AuthToken = "00000000000000000000000000000000" })
	require.NoError(t, err)
	require.Equal(t, map[string]int{"a": 5, "b": 1}, storedKeyIDs(t, ctx, pool))
	want["auth_token"] = "00000000000000000000000000000000"

	r, n, err := both.ResealSecrets(ctx, now)
	require.NoError(t, err)
	require.Equal(t, store.Resealed{ChatChannels: 1, Mailboxes: 2, SMSAccounts: 1, TranslationKeys: 1}, r)
	require.Equal(t, 1, n.Mailboxes)
	require.Equal(t, map[string]int{"b": 6}, storedKeyIDs(t, ctx, pool))
	r, _, err = both.ResealSecrets(ctx, now)
	require.NoError(t, err)
	require.Zero(t, r.Total(), "a second reseal changes nothing")

	// Key a removed: everything opens under b alone, announced included.
	onlyBKeys := keyring(t, "b", b)
	onlyB := store.New(pool, onlyBKeys)
	set, err = onlyB.GetTranslationSettings(ctx, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, "translator-key", set.APIKey)
	require.Equal(t, want, lastAnnounced(t, ctx, pool, onlyBKeys))
	_, err = onlyB.AnnounceConfig(ctx, now)
	require.NoError(t, err)

	// A keyring that lacks b cannot reseal, and says which key it lacks.
	_, _, err = onlyA.ResealSecrets(ctx, now)
	require.ErrorIs(t, err, seal.ErrUnknownKey)
	require.Contains(t, err.Error(), `"b"`)
}

// TestClearSecretsAreSealedAtStart: secrets an earlier version stored in
// clear are read as they are, then sealed by AnnounceConfig (which the
// inbox runs at start) before anything is announced.
func TestClearSecretsAreSealedAtStart(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	keys := testkit.Keyring(t)
	s := store.New(pool, keys)
	require.NoError(t, s.Migrate(ctx))
	now := time.Now()
	f := createSecrets(t, ctx, s, now)
	_, err := pool.Exec(ctx, `UPDATE inbox.channel_accounts SET settings = jsonb_set(settings, '{imap,password}', '"legacy-pw"') WHERE id = $1`, f.mailbox.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE inbox.translation_settings SET api_key = 'legacy-key'`)
	require.NoError(t, err)
	set, err := s.GetTranslationSettings(ctx, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, "legacy-key", set.APIKey)

	_, err = pool.Exec(ctx, `DELETE FROM inbox.outbox`)
	require.NoError(t, err)
	n, err := s.AnnounceConfig(ctx, now)
	require.NoError(t, err)
	require.Equal(t, 2, n.Sealed)
	var dump string
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT string_agg(settings::text, ' ') FROM inbox.channel_accounts) || 
		(SELECT string_agg(api_key, ' ') FROM inbox.translation_settings) || (SELECT string_agg(value::text, ' ') FROM inbox.outbox)`).Scan(&dump))
	require.NotContains(t, dump, "legacy-pw")
	require.NotContains(t, dump, "legacy-key")
	require.Equal(t, "legacy-pw", lastAnnounced(t, ctx, pool, keys)["imap.password"])
	set, err = s.GetTranslationSettings(ctx, f.tenant.ID)
	require.NoError(t, err)
	require.Equal(t, "legacy-key", set.APIKey)
	n, err = s.AnnounceConfig(ctx, now)
	require.NoError(t, err)
	require.Zero(t, n.Sealed)
}

// TestSealedSecretsStayInTheirPlace: a sealed value is no secret the API
// takes, and one copied to another mailbox does not open there.
func TestSealedSecretsStayInTheirPlace(t *testing.T) {
	ctx := context.Background()
	pool := testkit.Postgres(t)
	keys := testkit.Keyring(t)
	s := store.New(pool, keys)
	require.NoError(t, s.Migrate(ctx))
	now := time.Now()
	f := createSecrets(t, ctx, s, now)
	var sealed string
	require.NoError(t, pool.QueryRow(ctx, `SELECT settings #>> '{imap,password}' FROM inbox.channel_accounts WHERE id = $1`, f.mailbox.ID).Scan(&sealed))
	require.True(t, seal.IsSealed(sealed))

	other := validMailbox()
	other.Address, other.IMAP.Password = "other@example.com", sealed
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.CreateMailbox(ctx, tx, f.tenant.ID, other, now)
		return err
	})
	var fe *domain.FieldError
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "imap.password", fe.Field)
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.UpdateMailbox(ctx, tx, f.tenant.ID, f.mailbox.ID, now, func(spec *store.MailboxSpec) error {
			spec.SMTP.OAuth2Token = sealed
			return nil
		})
		return err
	})
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "smtp.oauth2_token", fe.Field)
	// Changing something else keeps the sealed secrets as they are.
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.UpdateMailbox(ctx, tx, f.tenant.ID, f.mailbox.ID, now, func(spec *store.MailboxSpec) error {
			spec.Name = "Renamed"
			return nil
		})
		return err
	})
	require.NoError(t, err)
	var kept string
	require.NoError(t, pool.QueryRow(ctx, `SELECT settings #>> '{imap,password}' FROM inbox.channel_accounts WHERE id = $1`, f.mailbox.ID).Scan(&kept))
	require.Equal(t, sealed, kept)

	// Copied into another mailbox's announcement, it does not open.
	mb := events.Mailbox{ID: uuid.NewString(), TenantID: f.tenant.ID.String(), IMAP: events.MailServer{Password: sealed}}
	_, err = keys.OpenFields(mb.SecretPlace(), mb.SecretFields())
	require.ErrorIs(t, err, seal.ErrNotOpened)
	// The translator key refuses sealed values too.
	sealedKey := sealed
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		_, err := s.PutTranslationSettings(ctx, tx, f.tenant.ID, store.TranslationSettings{Provider: "libretranslate"}, &sealedKey, now)
		return err
	})
	require.True(t, errors.As(err, &fe), "got %v", err)
	require.Equal(t, "api_key", fe.Field)
}
