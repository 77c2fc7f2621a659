package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Mailboxes, SMS accounts and chat channels are channel accounts
// configured by admins: rows of inbox.channel_accounts whose settings
// column holds the spec but its name, secrets included, announced on the
// config topic to the connector of their channel. accountKind is their
// one implementation; what differs between them is in their spec,
// settings and event types, and in hooks.
//
// Secrets are sealed (package seal, docs/adr/0022) before they are
// written or announced, for the account's place: only the connector that
// uses them opens them. A spec read back holds them sealed; the inbox
// never opens them, and writes them back as they are.

// accountSpec is what the shared code needs of a kind's spec S, whose
// settings column is St and whose API form is I.
type accountSpec[S, St, I any] interface {
	// Validate checks the spec; the error names the field as the API's
	// body spells it.
	Validate() error
	// Info is the account as the API shows it: whether the secrets are
	// set, never the secrets.
	Info(id uuid.UUID, createdAt time.Time) I
	// accountName is the name, which has a column of its own.
	accountName() string
	// settings is the settings column: the spec but its name.
	settings() St
	// withoutSecrets is the spec with its credentials dropped.
	withoutSecrets() S
	// event is the config event of the account, secrets included as the
	// spec holds them (sealed, once written).
	event(tenant, id uuid.UUID, deleted bool) any
}

// accountSettings is what the shared code needs of a settings column.
type accountSettings[S any] interface {
	// spec is the spec of the account named name.
	spec(name string) S
}

// accountKind describes a kind of channel account, so that one
// implementation serves mailboxes and SMS accounts.
type accountKind[S accountSpec[S, St, I], St accountSettings[S], I any] struct {
	// channel is the kind's channel in inbox.channel_accounts; a constant
	// of this package, so it is written into the SQL.
	channel string
	// noun and plural name the kind in errors.
	noun, plural string
	// configKind keys the kind's config events; eventType types them.
	configKind, eventType string
	// taken maps the error of an insert or an update to the field error
	// of a unique value another account holds, or to nil; nil when the
	// kind has no such index.
	taken func(err error) error
	// afterWrite, when set, runs in the transaction after the row is
	// written (deleted when the account was), for what the kind keeps
	// outside of it.
	afterWrite func(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, spec S, deleted bool) error
	// secrets points at the secrets of a spec, named as the config
	// event's JSON names them (events.Mailbox.SecretFields...). It may
	// first give the spec lists of its own, so that sealing them changes
	// no list another copy shares.
	secrets func(spec *S) []seal.Field
}

// place is where an account's secrets are sealed for: the connector
// opens them for the same place (events.Mailbox.SecretPlace...).
func (k accountKind[S, St, I]) place(tenant, id uuid.UUID) seal.Place {
	return seal.Place{Kind: k.configKind, Tenant: tenant.String(), ID: id.String()}
}

// sealed returns spec with its secrets sealed for the account's place.
// A sealed value in spec must be one the account held already under the
// same field (old: nil on create): the API takes secrets in clear, and a
// sealed value from elsewhere would not open anyway.
func (k accountKind[S, St, I]) sealed(s *Store, tenant, id uuid.UUID, spec S, old *S) (S, error) {
	held := map[string]bool{}
	if old != nil {
		o := *old
		for _, f := range k.secrets(&o) {
			held[f.Name+"\x00"+*f.Value] = true
		}
	}
	fields := k.secrets(&spec)
	for _, f := range fields {
		if seal.IsSealed(*f.Value) && !held[f.Name+"\x00"+*f.Value] {
			return spec, domain.Invalid(f.Name, "must be the secret itself, not a sealed value")
		}
	}
	if err := s.keys.SealFields(k.place(tenant, id), fields); err != nil {
		return spec, err
	}
	return spec, nil
}

// record announces an account on the config topic.
func (k accountKind[S, St, I]) record(tenant, id uuid.UUID, spec S, deleted bool, now time.Time) (outbox.Record, error) {
	return configRecord(k.configKind, k.eventType, tenant, id, spec.event(tenant, id, deleted), now)
}

// wrote checks the write of an account's row, which err failed, and runs
// afterWrite.
func (k accountKind[S, St, I]) wrote(ctx context.Context, tx pgx.Tx, op string, err error, tenant, id uuid.UUID, spec S, deleted bool) error {
	// Deleting takes the account out of the unique indexes: nothing is
	// taken then.
	if k.taken != nil && !deleted {
		if e := k.taken(err); e != nil {
			return e
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, k.noun, err)
	}
	if k.afterWrite != nil {
		return k.afterWrite(ctx, tx, tenant, id, spec, deleted)
	}
	return nil
}

// create creates an account of tenant and announces it.
func (k accountKind[S, St, I]) create(ctx context.Context, s *Store, tx pgx.Tx, tenant uuid.UUID, spec S, now time.Time) (I, error) {
	var zero I
	if err := spec.Validate(); err != nil {
		return zero, err
	}
	id := uuid.New()
	stored, err := k.sealed(s, tenant, id, spec, nil)
	if err != nil {
		return zero, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO inbox.channel_accounts (id, tenant_id, channel, name, settings, created_at) VALUES ($1, $2, '`+k.channel+`', $3, $4, $5)`,
		id, tenant, stored.accountName(), mustJSON(stored.settings()), now)
	if err := k.wrote(ctx, tx, "create", err, tenant, id, stored, false); err != nil {
		return zero, err
	}
	rec, err := k.record(tenant, id, stored, false, now)
	if err != nil {
		return zero, err
	}
	return spec.Info(id, now), s.outbox.Add(ctx, tx, rec)
}

type accountRow[S any] struct {
	id        uuid.UUID
	spec      S
	createdAt time.Time
}

// load reads the live accounts matching where (a condition on the
// channel_accounts row, then maybe an order, a limit, a lock).
func (k accountKind[S, St, I]) load(ctx context.Context, db rowQuerier, where string, args ...any) ([]accountRow[S], error) {
	rows, err := db.Query(ctx, `SELECT id, name, settings, created_at FROM inbox.channel_accounts
		WHERE channel = '`+k.channel+`' AND deleted_at IS NULL AND `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.plural, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (accountRow[S], error) {
		var (
			a    accountRow[S]
			name string
			raw  []byte
			st   St
		)
		if err := row.Scan(&a.id, &name, &raw, &a.createdAt); err != nil {
			return a, err
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return a, fmt.Errorf("decode settings of %s %s: %w", k.noun, a.id, err)
		}
		a.spec = st.spec(name)
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.plural, err)
	}
	return out, nil
}

// loadOne reads a live account of tenant, its row locked when lock is
// set.
func (k accountKind[S, St, I]) loadOne(ctx context.Context, db rowQuerier, tenant, id uuid.UUID, lock bool) (accountRow[S], error) {
	where := `tenant_id = $1 AND id = $2`
	if lock {
		where += ` FOR UPDATE`
	}
	rows, err := k.load(ctx, db, where, tenant, id)
	if err != nil {
		return accountRow[S]{}, err
	}
	if len(rows) == 0 {
		return accountRow[S]{}, ErrNotFound
	}
	return rows[0], nil
}

// list returns up to limit accounts of tenant after the position, oldest
// first; deleted ones are gone.
func (k accountKind[S, St, I]) list(ctx context.Context, db rowQuerier, tenant uuid.UUID, after *Position, limit int) ([]I, error) {
	var (
		rows []accountRow[S]
		err  error
	)
	if after == nil {
		rows, err = k.load(ctx, db, `tenant_id = $1 ORDER BY created_at, id LIMIT $2`, tenant, limit)
	} else {
		rows, err = k.load(ctx, db, `tenant_id = $1 AND (created_at, id) > ($3, $4) ORDER BY created_at, id LIMIT $2`,
			tenant, limit, after.At, after.ID)
	}
	if err != nil {
		return nil, err
	}
	out := make([]I, len(rows))
	for i, r := range rows {
		out[i] = r.spec.Info(r.id, r.createdAt)
	}
	return out, nil
}

// get returns an account of tenant.
func (k accountKind[S, St, I]) get(ctx context.Context, db rowQuerier, tenant, id uuid.UUID) (I, error) {
	r, err := k.loadOne(ctx, db, tenant, id, false)
	if err != nil {
		var zero I
		return zero, err
	}
	return r.spec.Info(r.id, r.createdAt), nil
}

// update changes an account of tenant, its row locked meanwhile: fn
// changes its spec, secrets included (what fn leaves keeps its value) or
// refuses the change, then the spec is validated, written and announced.
func (k accountKind[S, St, I]) update(ctx context.Context, s *Store, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(spec *S) error) (I, error) {
	var zero I
	r, err := k.loadOne(ctx, tx, tenant, id, true)
	if err != nil {
		return zero, err
	}
	spec := r.spec
	if err := fn(&spec); err != nil {
		return zero, err
	}
	// Validated before sealing: the new secrets are checked in clear,
	// those kept were when they were given.
	if err := spec.Validate(); err != nil {
		return zero, err
	}
	if spec, err = k.sealed(s, tenant, id, spec, &r.spec); err != nil {
		return zero, err
	}
	_, err = tx.Exec(ctx, `UPDATE inbox.channel_accounts SET name = $2, settings = $3 WHERE id = $1`, id, spec.accountName(), mustJSON(spec.settings()))
	if err := k.wrote(ctx, tx, "update", err, tenant, id, spec, false); err != nil {
		return zero, err
	}
	rec, err := k.record(tenant, id, spec, false, now)
	if err != nil {
		return zero, err
	}
	return spec.Info(id, r.createdAt), s.outbox.Add(ctx, tx, rec)
}

// remove deletes an account of tenant and tells its connector. The row
// stays, marked deleted, for its conversations refer to it; its secrets
// are dropped, since nothing will use them again.
func (k accountKind[S, St, I]) remove(ctx context.Context, s *Store, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	r, err := k.loadOne(ctx, tx, tenant, id, true)
	if err != nil {
		return err
	}
	spec := r.spec.withoutSecrets()
	_, err = tx.Exec(ctx, `UPDATE inbox.channel_accounts SET deleted_at = $2, settings = $3 WHERE id = $1`, id, now, mustJSON(spec.settings()))
	if err := k.wrote(ctx, tx, "delete", err, tenant, id, spec, true); err != nil {
		return err
	}
	rec, err := k.record(tenant, id, spec, true, now)
	if err != nil {
		return err
	}
	return s.outbox.Add(ctx, tx, rec)
}

// announce returns the records of every account of the kind, deleted
// ones included (so that a connector that missed the deletion stops).
func (k accountKind[S, St, I]) announce(ctx context.Context, tx pgx.Tx, now time.Time) ([]outbox.Record, error) {
	rows, err := tx.Query(ctx, `SELECT id, tenant_id, name, settings, deleted_at IS NOT NULL FROM inbox.channel_accounts WHERE channel = '`+k.channel+`'`)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.plural, err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (outbox.Record, error) {
		var (
			id, tenant uuid.UUID
			name       string
			raw        []byte
			deleted    bool
			st         St
		)
		if err := row.Scan(&id, &tenant, &name, &raw, &deleted); err != nil {
			return outbox.Record{}, err
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return outbox.Record{}, fmt.Errorf("decode settings of %s %s: %w", k.noun, id, err)
		}
		return k.record(tenant, id, st.spec(name), deleted, now)
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.plural, err)
	}
	return recs, nil
}
