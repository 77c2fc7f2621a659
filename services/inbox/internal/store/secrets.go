package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/seal"
)

// The secrets the inbox keeps (docs/adr/0022): the channel accounts'
// (mailboxes', SMS accounts' and chat channels' settings), sealed for the
// connector that uses them, and the tenants' translator API keys
// (inbox.translation_settings.api_key), sealed for the inbox itself,
// which calls the translators. Databases of versions that did not seal
// them hold them in clear: AnnounceConfig seals those at every start,
// before it announces anything, and ResealSecrets seals everything again
// under the active key after a rotation.

// translationKind is the place kind of a tenant's translator API key.
const translationKind = "translation"

// translationPlace is where tenant's translator API key is sealed for.
func translationPlace(tenant uuid.UUID) seal.Place {
	return seal.Place{Kind: translationKind, Tenant: tenant.String(), ID: tenant.String()}
}

// translationKeyField names the API key in its place.
const translationKeyField = "api_key"

// Resealed counts the secrets ResealSecrets (or the sealing of clear ones
// at start) changed, by where they are.
type Resealed struct {
	ChatChannels, Mailboxes, SMSAccounts, TranslationKeys int
}

// Total is every secret changed.
func (r Resealed) Total() int {
	return r.ChatChannels + r.Mailboxes + r.SMSAccounts + r.TranslationKeys
}

// ResealSecrets seals every stored secret under the keyring's active key
// (those in clear included), in one transaction, and announces the
// configuration through the outbox so that the connectors get the
// secrets as they are now sealed. Secrets already under the active key
// are left alone: running it again changes nothing, and announces the
// same. A secret under a key the keyring lacks fails it all, naming the
// key.
func (s *Store) ResealSecrets(ctx context.Context, now time.Time) (Resealed, Announced, error) {
	var (
		r Resealed
		n Announced
	)
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = s.sealSecrets(ctx, tx, true); err != nil {
			return err
		}
		n, err = s.announceConfig(ctx, tx, now)
		return err
	})
	return r, n, err
}

// sealSecrets seals the secrets stored in clear; with all, it also seals
// again under the active key those sealed under another.
func (s *Store) sealSecrets(ctx context.Context, tx pgx.Tx, all bool) (Resealed, error) {
	var (
		r   Resealed
		err error
	)
	if r.ChatChannels, err = chatChannelKind.reseal(ctx, s, tx, all); err != nil {
		return r, err
	}
	if r.Mailboxes, err = mailboxKind.reseal(ctx, s, tx, all); err != nil {
		return r, err
	}
	if r.SMSAccounts, err = smsAccountKind.reseal(ctx, s, tx, all); err != nil {
		return r, err
	}
	r.TranslationKeys, err = s.resealTranslationKeys(ctx, tx, all)
	return r, err
}

// resealFields seals fields for p as sealSecrets says, returning how
// many values changed.
func (s *Store) resealFields(p seal.Place, fields []seal.Field, all bool) (int, error) {
	if all {
		return s.keys.ResealFields(p, fields)
	}
	n := 0
	for _, f := range fields {
		if *f.Value != "" && !seal.IsSealed(*f.Value) {
			n++
		}
	}
	return n, s.keys.SealFields(p, fields)
}

// reseal seals the secrets of every account of the kind (see
// sealSecrets), their rows locked, and returns how many values changed.
// Deleted accounts are included: they hold no secrets unless an earlier
// version left some.
func (k accountKind[S, St, I]) reseal(ctx context.Context, s *Store, tx pgx.Tx, all bool) (int, error) {
	type row struct {
		id, tenant uuid.UUID
		name       string
		st         St
	}
	rows, err := tx.Query(ctx, `SELECT id, tenant_id, name, settings FROM inbox.channel_accounts WHERE channel = '`+k.channel+`' ORDER BY id FOR UPDATE`)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", k.plural, err)
	}
	accounts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var (
			a   row
			raw []byte
		)
		if err := r.Scan(&a.id, &a.tenant, &a.name, &raw); err != nil {
			return a, err
		}
		if err := json.Unmarshal(raw, &a.st); err != nil {
			return a, fmt.Errorf("decode settings of %s %s: %w", k.noun, a.id, err)
		}
		return a, nil
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", k.plural, err)
	}
	total := 0
	for _, a := range accounts {
		spec := a.st.spec(a.name)
		n, err := s.resealFields(k.place(a.tenant, a.id), k.secrets(&spec), all)
		if err != nil {
			return total, fmt.Errorf("seal the secrets of %s %s: %w", k.noun, a.id, err)
		}
		if n == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox.channel_accounts SET settings = $2 WHERE id = $1`, a.id, mustJSON(spec.settings())); err != nil {
			return total, fmt.Errorf("seal the secrets of %s %s: %w", k.noun, a.id, err)
		}
		total += n
	}
	return total, nil
}

// resealTranslationKeys seals the tenants' translator API keys (see
// sealSecrets).
func (s *Store) resealTranslationKeys(ctx context.Context, tx pgx.Tx, all bool) (int, error) {
	type row struct {
		tenant uuid.UUID
		key    string
	}
	rows, err := tx.Query(ctx, `SELECT tenant_id, api_key FROM inbox.translation_settings WHERE api_key <> '' ORDER BY tenant_id FOR UPDATE`)
	if err != nil {
		return 0, fmt.Errorf("read translation settings: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var k row
		return k, r.Scan(&k.tenant, &k.key)
	})
	if err != nil {
		return 0, fmt.Errorf("read translation settings: %w", err)
	}
	total := 0
	for _, k := range keys {
		n, err := s.resealFields(translationPlace(k.tenant), []seal.Field{{Name: translationKeyField, Value: &k.key}}, all)
		if err != nil {
			return total, fmt.Errorf("seal the translator API key of tenant %s: %w", k.tenant, err)
		}
		if n == 0 {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox.translation_settings SET api_key = $2 WHERE tenant_id = $1`, k.tenant, k.key); err != nil {
			return total, fmt.Errorf("seal the translator API key of tenant %s: %w", k.tenant, err)
		}
		total += n
	}
	return total, nil
}

// sealTranslationKey seals a translator API key given in clear.
func (s *Store) sealTranslationKey(tenant uuid.UUID, key string) (string, error) {
	f := []seal.Field{{Name: translationKeyField, Value: &key}}
	if err := s.keys.SealFields(translationPlace(tenant), f); err != nil {
		return "", err
	}
	return key, nil
}

// openTranslationKey opens a stored translator API key; one stored in
// clear by an earlier version is returned as it is.
func (s *Store) openTranslationKey(tenant uuid.UUID, key string) (string, error) {
	f := []seal.Field{{Name: translationKeyField, Value: &key}}
	if _, err := s.keys.OpenFields(translationPlace(tenant), f); err != nil {
		return "", fmt.Errorf("open the translator's API key: %w", err)
	}
	return key, nil
}
