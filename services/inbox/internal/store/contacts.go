package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Contacts: the customers of a tenant, how each channel knows them
// (identities), and the notes agents keep on them.
//
// Lock order. Merging contacts must not race ingestion: ingestion reads
// an identity's contact, then opens a conversation referencing it; if a
// merge deleted that contact in between, the conversation's foreign key
// would fail and the message would be dead-lettered as a data error. So a
// merge first takes a SHARE ROW EXCLUSIVE lock on contact_identities,
// which waits for the ingestion transactions that already claimed
// identities (they hold ROW EXCLUSIVE on it until they commit) and holds
// back the next ones until the merge commits; then they read the moved
// identities. Every other transaction here that writes identities takes
// its table lock before any contact row lock, like the merge, so that
// the two never wait for each other in opposite orders.

// SourceManual is the source of a contact created through the API
// rather than by a channel's first message.
const SourceManual = "manual"

// Limits of a contact's fields.
const (
	MaxContactNameBytes  = 200
	MaxAvatarURLBytes    = 2048
	MaxContactIdentities = 20
	MaxNoteBytes         = 10000
	MaxIdentityBytes     = 256
	maxEmailBytes        = 320
)

// mergeLockTimeout bounds how long a merge waits for its locks: while it
// waits for the identities table it holds ingestion back, so it gives up
// (and the caller retries) rather than stall ingestion.
const mergeLockTimeout = "2s"

// e164 is an international phone number: a plus, then up to 15 digits,
// not starting with 0.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// ContactIdentity is how a channel knows a contact: an email address, an
// E.164 phone number, a chat user id. One identity belongs to at most one
// contact of a tenant.
type ContactIdentity struct {
	Channel  string `json:"channel"`
	Identity string `json:"identity"`
}

// NormalizeIdentity checks an identity and returns it in the form it is
// stored and matched in: email addresses lower-cased (mail systems treat
// them case-insensitively in practice, and one customer must not become
// two contacts by the case they type), phone numbers in E.164, chat ids
// as the chat sends them. The error names the field, channel or identity.
func NormalizeIdentity(id ContactIdentity) (ContactIdentity, error) {
	switch id.Channel {
	case events.ChannelEmail:
		a, err := mail.ParseAddress(id.Identity)
		if err != nil || a.Address != id.Identity || len(id.Identity) > maxEmailBytes {
			return id, domain.Invalid("identity", "must be a plain email address such as ada@example.com")
		}
		id.Identity = strings.ToLower(id.Identity)
	case events.ChannelSMS:
		if !e164.MatchString(id.Identity) {
			return id, domain.Invalid("identity", "must be an E.164 phone number such as +33612345678")
		}
	case events.ChannelChat:
		if id.Identity == "" || len(id.Identity) > MaxIdentityBytes || !contactTextOK(id.Identity) {
			return id, domain.Invalid("identity", "must be 1 to 256 bytes of text")
		}
	default:
		return id, domain.Invalid("channel", "must be email, sms or chat")
	}
	return id, nil
}

// contactTextOK accepts valid UTF-8 without NUL, which PostgreSQL text refuses.
func contactTextOK(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// IdentityTakenError is domain.ErrConflict: another contact of the tenant
// holds the identity. It names that contact, so that the caller can merge
// the two instead.
type IdentityTakenError struct {
	// Index is the identity's position in the request (0 for one).
	Index     int
	Identity  ContactIdentity
	ContactID uuid.UUID
}

func (e *IdentityTakenError) Error() string {
	return fmt.Sprintf("the %s identity %q belongs to another contact (%s)", e.Identity.Channel, e.Identity.Identity, e.ContactID)
}

// Unwrap makes it a conflict for callers that only branch on the kind.
func (e *IdentityTakenError) Unwrap() error { return domain.ErrConflict }

// Contact is a customer as the API shows it.
type Contact struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	AvatarURL string    `json:"avatar_url"`
	// PreferredLanguage is an ISO 639-1 code, "" when unknown.
	PreferredLanguage string `json:"preferred_language"`
	// Source is the channel that first brought the contact, or manual.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	// CustomFields are what agents note of the customer, name to value
	// (domain.MaxCustomFields at most); templates use them as
	// {{contact.<name>}}.
	CustomFields map[string]string `json:"custom_fields"`
	// Identities are sorted by channel, then identity, so that the same
	// contact always reads the same.
	Identities []IdentityInfo `json:"identities"`
}

// IdentityInfo is an identity as the API shows it, with what the customer
// said of SMS on it.
type IdentityInfo struct {
	ContactIdentity
	// Consent is opted_out (the customer texted STOP: replies are
	// refused) or opted_in (START); "" when they never said either.
	Consent string `json:"consent,omitempty"`
	// ConsentChangedAt is when the text that set Consent was received.
	ConsentChangedAt *time.Time `json:"consent_changed_at,omitempty"`
}

// ContactCard is a contact with what an agent wants to know at a glance
// about its conversations.
type ContactCard struct {
	Contact
	// AssigneeIDs are the users its conversations are assigned to now.
	AssigneeIDs []uuid.UUID `json:"assignee_ids"`
	// ConversationCount counts its conversations, in every state.
	ConversationCount int64 `json:"conversation_count"`
}

// ContactSpec is a contact to create; its fields are checked by the
// caller, its identities normalized (NormalizeIdentity).
type ContactSpec struct {
	Name              string
	AvatarURL         string
	PreferredLanguage string
	Identities        []ContactIdentity
}

// ContactUpdate changes the fields that are not nil.
type ContactUpdate struct {
	Name              *string
	AvatarURL         *string
	PreferredLanguage *string
	// CustomFields set the named fields; a nil value removes one. The
	// others stay.
	CustomFields map[string]*string
}

// ContactNote is an internal note on a contact; customers never see it.
type ContactNote struct {
	ID        uuid.UUID `json:"id"`
	ContactID uuid.UUID `json:"contact_id"`
	// AuthorID is the user or API token that wrote it.
	AuthorID  string    `json:"author_id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// contactColumns are read by scanContact, for a contacts row aliased c.
// The identities come along as one JSON array: one index probe per
// contact instead of a second round trip.
const contactColumns = `c.id, c.name, c.avatar_url, c.preferred_language, c.source, c.created_at, c.custom_fields,
	coalesce((SELECT jsonb_agg(jsonb_build_object('channel', ci.channel, 'identity', ci.identity,
	                                              'consent', ci.consent, 'consent_changed_at', ci.consent_changed_at)
	                           ORDER BY ci.channel, ci.identity)
	          FROM inbox.contact_identities ci WHERE ci.contact_id = c.id), '[]')`

// cardColumns are contactColumns and the conversation summary.
const cardColumns = contactColumns + `,
	(SELECT count(*) FROM inbox.conversations v WHERE v.contact_id = c.id),
	ARRAY(SELECT DISTINCT a FROM inbox.conversations v, unnest(v.assignee_ids) a WHERE v.contact_id = c.id ORDER BY a)`

func scanContactInto(row pgx.CollectableRow, c *Contact, more ...any) error {
	var ids, fields []byte
	dest := append([]any{&c.ID, &c.Name, &c.AvatarURL, &c.PreferredLanguage, &c.Source, &c.CreatedAt, &fields, &ids}, more...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	if err := json.Unmarshal(fields, &c.CustomFields); err != nil {
		return fmt.Errorf("decode custom fields of contact %s: %w", c.ID, err)
	}
	if c.CustomFields == nil {
		c.CustomFields = map[string]string{}
	}
	if err := json.Unmarshal(ids, &c.Identities); err != nil {
		return fmt.Errorf("decode identities of contact %s: %w", c.ID, err)
	}
	if c.Identities == nil {
		c.Identities = []IdentityInfo{}
	}
	return nil
}

func scanContact(row pgx.CollectableRow) (Contact, error) {
	var c Contact
	err := scanContactInto(row, &c)
	return c, err
}

func scanContactCard(row pgx.CollectableRow) (ContactCard, error) {
	var c ContactCard
	if err := scanContactInto(row, &c.Contact, &c.ConversationCount, &c.AssigneeIDs); err != nil {
		return c, err
	}
	if c.AssigneeIDs == nil {
		c.AssigneeIDs = []uuid.UUID{}
	}
	return c, nil
}

// contactQuerier is a pool or a transaction.
type contactQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// oneContact runs a query for at most one row of a contact; no row is
// ErrNotFound.
func oneContact[T any](ctx context.Context, q contactQuerier, scan pgx.RowToFunc[T], sql string, args ...any) (T, error) {
	var zero T
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return zero, fmt.Errorf("read contact: %w", err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, ErrNotFound
	}
	if err != nil {
		return zero, fmt.Errorf("read contact: %w", err)
	}
	return v, nil
}

// SearchContacts returns up to limit contacts of tenant after the
// position (nil: from the start), newest first. A non-empty query selects
// the contacts whose name starts with it, ignoring case, and those with
// an identity equal to it (an email address in any case, a phone number
// written with spaces or dashes, a chat id).
//
// Newest first because an agent looking a customer up is most often
// after a recent one, and because a time and an id make a stable cursor
// where a name (which changes, and repeats) does not.
func (s *Store) SearchContacts(ctx context.Context, tenant uuid.UUID, query string, after *Position, limit int) ([]Contact, error) {
	args := []any{tenant}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := "c.tenant_id = $1"
	if query != "" {
		email := strings.ToLower(query)
		phone := strings.NewReplacer(" ", "", "-", "", ".", "", "(", "", ")", "").Replace(query)
		// Each branch is one index range: the name prefix on contacts_name
		// (text_pattern_ops serves LIKE 'prefix%' whatever the collation),
		// each identity on the key of contact_identities.
		where += ` AND c.id IN (
			SELECT n.id FROM inbox.contacts n WHERE n.tenant_id = $1 AND lower(n.name) LIKE lower(` + arg(likePrefix(query)) + `::text)
			UNION
			SELECT ci.contact_id FROM inbox.contact_identities ci WHERE ci.tenant_id = $1
			   AND ((ci.channel = 'email' AND ci.identity = ` + arg(email) + `)
			     OR (ci.channel = 'sms' AND ci.identity = ` + arg(phone) + `)
			     OR (ci.channel = 'chat' AND ci.identity = ` + arg(query) + `)))`
	}
	if after != nil {
		at, id := arg(after.At), arg(after.ID)
		// The plain bound lets the index on (tenant_id, created_at) start
		// at the cursor; the row comparison breaks ties on the id.
		where += " AND c.created_at <= " + at + " AND (c.created_at, c.id) < (" + at + ", " + id + ")"
	}
	lim := arg(limit)
	// Planned for this call's values (QueryExecModeExec): whether the name
	// prefix is selective decides the plan, and a plan cached while the
	// tables were small would scan them whole.
	rows, err := s.pool.Query(ctx, `SELECT `+contactColumns+` FROM inbox.contacts c WHERE `+where+`
		ORDER BY c.created_at DESC, c.id DESC LIMIT `+lim, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("search contacts: %w", err)
	}
	return pgx.CollectRows(rows, scanContact)
}

// likePrefix is a LIKE pattern matching the strings that start with s.
func likePrefix(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// GetContact returns a contact of tenant with its conversation summary;
// ErrNotFound when there is none.
func (s *Store) GetContact(ctx context.Context, tenant, id uuid.UUID) (ContactCard, error) {
	return oneContact(ctx, s.pool, scanContactCard, `SELECT `+cardColumns+` FROM inbox.contacts c WHERE c.tenant_id = $1 AND c.id = $2`, tenant, id)
}

// CreateContact creates a contact of tenant with its identities; an
// identity another contact holds is an *IdentityTakenError and nothing is
// created.
func (s *Store) CreateContact(ctx context.Context, tenant uuid.UUID, spec ContactSpec, now time.Time) (Contact, error) {
	var out Contact
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		id := uuid.New()
		if _, err := tx.Exec(ctx, `INSERT INTO inbox.contacts (id, tenant_id, name, avatar_url, preferred_language, source, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, tenant, spec.Name, spec.AvatarURL, spec.PreferredLanguage, SourceManual, now); err != nil {
			return fmt.Errorf("create contact: %w", err)
		}
		if err := claimIdentities(ctx, tx, tenant, id, spec.Identities); err != nil {
			return err
		}
		var err error
		out, err = oneContact(ctx, tx, scanContact, `SELECT `+contactColumns+` FROM inbox.contacts c WHERE c.id = $1`, id)
		return err
	})
	return out, err
}

// claimIdentities gives ids to contact, or fails with an
// *IdentityTakenError for the first one another contact holds. They are
// inserted in key order, like ingestion claims them, so that concurrent
// claims wait for each other instead of deadlocking.
func claimIdentities(ctx context.Context, tx pgx.Tx, tenant, contact uuid.UUID, ids []ContactIdentity) error {
	channels, idents := make([]string, len(ids)), make([]string, len(ids))
	for i, id := range ids {
		channels[i], idents[i] = id.Channel, id.Identity
	}
	rows, err := tx.Query(ctx, `INSERT INTO inbox.contact_identities (tenant_id, channel, identity, contact_id)
		SELECT $1, k.channel, k.identity, $4 FROM unnest($2::text[], $3::text[]) AS k(channel, identity)
		ORDER BY k.channel, k.identity
		ON CONFLICT DO NOTHING
		RETURNING channel, identity`, tenant, channels, idents, contact)
	if err != nil {
		return fmt.Errorf("claim identities: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ContactIdentity])
	if err != nil {
		return fmt.Errorf("claim identities: %w", err)
	}
	if len(claimed) == len(ids) {
		return nil
	}
	got := make(map[ContactIdentity]bool, len(claimed))
	for _, c := range claimed {
		got[c] = true
	}
	for i, id := range ids {
		if got[id] {
			continue
		}
		var holder uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT contact_id FROM inbox.contact_identities WHERE tenant_id = $1 AND channel = $2 AND identity = $3`,
			tenant, id.Channel, id.Identity).Scan(&holder); err != nil {
			return fmt.Errorf("find the holder of an identity: %w", err)
		}
		return &IdentityTakenError{Index: i, Identity: id, ContactID: holder}
	}
	return nil
}

// lockContact locks a contact of tenant for update; ErrNotFound when
// there is none (or a merge just deleted it).
func lockContact(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) error {
	var found uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM inbox.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("lock contact: %w", err)
	}
	return nil
}

// lockIdentitiesFirst takes the table lock every writer of identities
// takes, before any row lock (see the lock order above).
func lockIdentitiesFirst(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE inbox.contact_identities IN ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock identities: %w", err)
	}
	return nil
}

// UpdateContact changes a contact of tenant; ErrNotFound when there is
// none.
func (s *Store) UpdateContact(ctx context.Context, tenant, id uuid.UUID, u ContactUpdate) (Contact, error) {
	var out Contact
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		var fields []byte
		if u.CustomFields != nil {
			var raw []byte
			err := tx.QueryRow(ctx, `SELECT custom_fields FROM inbox.contacts WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id).Scan(&raw)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("read custom fields: %w", err)
			}
			current := map[string]string{}
			if err := json.Unmarshal(raw, &current); err != nil {
				return fmt.Errorf("decode custom fields of contact %s: %w", id, err)
			}
			for k, v := range u.CustomFields {
				if v == nil {
					delete(current, k)
				} else {
					current[k] = *v
				}
			}
			if len(current) > domain.MaxCustomFields {
				return domain.Invalid("custom_fields", fmt.Sprintf("would hold %d fields, more than %d", len(current), domain.MaxCustomFields))
			}
			fields = mustJSON(current)
		}
		var err error
		out, err = oneContact(ctx, tx, scanContact, `UPDATE inbox.contacts c SET name = coalesce($3, c.name),
			avatar_url = coalesce($4, c.avatar_url), preferred_language = coalesce($5, c.preferred_language),
			custom_fields = coalesce($6::jsonb, c.custom_fields)
			WHERE c.tenant_id = $1 AND c.id = $2
			RETURNING `+contactColumns, tenant, id, u.Name, u.AvatarURL, u.PreferredLanguage, fields)
		return err
	})
	return out, err
}

// AddIdentity gives a contact of tenant one more identity (normalized).
// added is false when the contact already had it; another contact holding
// it is an *IdentityTakenError.
func (s *Store) AddIdentity(ctx context.Context, tenant, id uuid.UUID, ident ContactIdentity) (c Contact, added bool, err error) {
	err = s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockIdentitiesFirst(ctx, tx); err != nil {
			return err
		}
		if err := lockContact(ctx, tx, tenant, id); err != nil {
			return err
		}
		err := claimIdentities(ctx, tx, tenant, id, []ContactIdentity{ident})
		var taken *IdentityTakenError
		switch {
		case errors.As(err, &taken) && taken.ContactID == id:
		case err != nil:
			return err
		default:
			added = true
		}
		c, err = oneContact(ctx, tx, scanContact, `SELECT `+contactColumns+` FROM inbox.contacts c WHERE c.id = $1`, id)
		return err
	})
	return c, added, err
}

// RemoveIdentity takes an identity (normalized) from a contact of tenant.
// ErrNotFound when the contact does not hold it; a contact keeps at least
// one identity (a domain.ErrConflict), or no channel could reach it and
// nothing could find it again.
func (s *Store) RemoveIdentity(ctx context.Context, tenant, id uuid.UUID, ident ContactIdentity) (Contact, error) {
	var out Contact
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if err := lockIdentitiesFirst(ctx, tx); err != nil {
			return err
		}
		// The contact's lock serializes removals: two removing its last two
		// identities at once would otherwise both see one left.
		if err := lockContact(ctx, tx, tenant, id); err != nil {
			return err
		}
		var total, held int
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE channel = $2 AND identity = $3)
			FROM inbox.contact_identities WHERE contact_id = $1`, id, ident.Channel, ident.Identity).Scan(&total, &held); err != nil {
			return fmt.Errorf("count identities: %w", err)
		}
		if held == 0 {
			return ErrNotFound
		}
		if total == 1 {
			return fmt.Errorf("%w: this is the contact's last identity; add another before removing it, or merge the contact", domain.ErrConflict)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox.contact_identities WHERE tenant_id = $1 AND channel = $2 AND identity = $3 AND contact_id = $4`,
			tenant, ident.Channel, ident.Identity, id); err != nil {
			return fmt.Errorf("remove identity: %w", err)
		}
		var err error
		out, err = oneContact(ctx, tx, scanContact, `SELECT `+contactColumns+` FROM inbox.contacts c WHERE c.id = $1`, id)
		return err
	})
	return out, err
}

// MergeContacts merges contact other into keep, both of tenant, in one
// transaction: other's conversations, identities and notes move to keep,
// keep's blank name, avatar and language are filled from other's, and
// other is deleted. Each moved conversation is audited and announced on
// sb.conversations.v1, since its contact_id changed. Either contact
// missing is ErrNotFound; merging a contact into itself is invalid.
func (s *Store) MergeContacts(ctx context.Context, p domain.Principal, tenant, keep, other uuid.UUID, now time.Time) (ContactCard, error) {
	if keep == other {
		return ContactCard{}, domain.Invalid("contact_id", "is this contact; a contact cannot be merged into itself")
	}
	var out ContactCard
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+mergeLockTimeout+`'`); err != nil {
			return fmt.Errorf("merge contacts: %w", err)
		}
		// See the lock order above: no ingestion is between reading an
		// identity and referencing its contact while this is held.
		if _, err := tx.Exec(ctx, `LOCK TABLE inbox.contact_identities IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock identities: %w", err)
		}
		// Both contacts, in id order so that two merges of the same pair
		// in opposite directions wait instead of deadlocking.
		rows, err := tx.Query(ctx, `SELECT id FROM inbox.contacts WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE`,
			tenant, []uuid.UUID{keep, other})
		if err != nil {
			return fmt.Errorf("lock contacts: %w", err)
		}
		locked, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("lock contacts: %w", err)
		}
		if len(locked) != 2 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox.contacts k SET
			name = CASE WHEN k.name = '' THEN o.name ELSE k.name END,
			avatar_url = CASE WHEN k.avatar_url = '' THEN o.avatar_url ELSE k.avatar_url END,
			preferred_language = CASE WHEN k.preferred_language = '' THEN o.preferred_language ELSE k.preferred_language END
			FROM inbox.contacts o WHERE k.id = $1 AND o.id = $2`, keep, other); err != nil {
			return fmt.Errorf("merge contact fields: %w", err)
		}
		// The conversations are locked in id order, as ingestion and the
		// actions lock them, before they are changed.
		if _, err := tx.Exec(ctx, `SELECT id FROM inbox.conversations WHERE tenant_id = $1 AND contact_id = $2 ORDER BY id FOR UPDATE`, tenant, other); err != nil {
			return fmt.Errorf("lock conversations: %w", err)
		}
		rows, err = tx.Query(ctx, `UPDATE inbox.conversations c SET contact_id = $3, updated_at = $4
			WHERE c.tenant_id = $1 AND c.contact_id = $2
			RETURNING `+conversationColumns, tenant, other, keep, now)
		if err != nil {
			return fmt.Errorf("move conversations: %w", err)
		}
		moved, err := pgx.CollectRows(rows, scanConversation)
		if err != nil {
			return fmt.Errorf("move conversations: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox.contact_identities SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2`, tenant, other, keep); err != nil {
			return fmt.Errorf("move identities: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE inbox.contact_notes SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2`, tenant, other, keep); err != nil {
			return fmt.Errorf("move notes: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM inbox.contacts WHERE tenant_id = $1 AND id = $2`, tenant, other); err != nil {
			return fmt.Errorf("delete merged contact: %w", err)
		}
		if err := announceMerge(ctx, s, tx, p, moved, other, now); err != nil {
			return err
		}
		out, err = oneContact(ctx, tx, scanContactCard, `SELECT `+cardColumns+` FROM inbox.contacts c WHERE c.id = $1`, keep)
		return err
	})
	if err != nil {
		return ContactCard{}, mergeError(err)
	}
	return out, nil
}

// announceMerge audits and announces the conversations a merge moved.
func announceMerge(ctx context.Context, s *Store, tx pgx.Tx, p domain.Principal, moved []Conversation, from uuid.UUID, now time.Time) error {
	if len(moved) == 0 {
		return nil
	}
	const reason = "contacts merged"
	entries := make([]auditEntry, len(moved))
	for i, c := range moved {
		data := map[string]string{"contact_id": c.ContactID.String(), "merged_contact_id": from.String()}
		entries[i] = auditEntry{tenant: c.Tenant, conversation: c.ID, actorKind: p.ActorKind(), actorID: p.ActorID(),
			action: domain.ActionUpdate, reason: reason, data: data, at: now}
		rec, err := changedEvent(domain.ActionUpdate, actorOf(p), c.State, reason, nil, c, now)
		if err != nil {
			return err
		}
		if err := s.outbox.Add(ctx, tx, rec); err != nil {
			return err
		}
	}
	return writeAudit(ctx, tx, entries...)
}

// mergeError says a merge that gave up waiting for a lock (lock_timeout)
// timed out, which the API answers with a 503 the caller retries.
func mergeError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return fmt.Errorf("merge contacts: the contacts are busy: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("merge contacts: %w", err)
}

// AddContactNote adds a note by author to a contact of tenant;
// ErrNotFound when there is none.
func (s *Store) AddContactNote(ctx context.Context, tenant, contact uuid.UUID, author, body string, now time.Time) (ContactNote, error) {
	var n ContactNote
	err := s.InTx(ctx, func(tx pgx.Tx) error {
		// Locked against a merge deleting it meanwhile: the insert's
		// foreign key would fail with a 500 where a 404 is meant.
		var found uuid.UUID
		err := tx.QueryRow(ctx, `SELECT id FROM inbox.contacts WHERE tenant_id = $1 AND id = $2 FOR KEY SHARE`, tenant, contact).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find contact: %w", err)
		}
		n = ContactNote{ID: uuid.New(), ContactID: contact, AuthorID: author, Body: body}
		return tx.QueryRow(ctx, `INSERT INTO inbox.contact_notes (id, tenant_id, contact_id, author_id, body, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`, n.ID, tenant, contact, author, body, now).Scan(&n.CreatedAt)
	})
	if err != nil {
		return ContactNote{}, fmt.Errorf("add note: %w", err)
	}
	return n, nil
}

// ContactNotes returns up to limit notes of a contact of tenant after the
// position, newest first; ErrNotFound when there is no such contact.
func (s *Store) ContactNotes(ctx context.Context, tenant, contact uuid.UUID, after *Position, limit int) ([]ContactNote, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.contacts WHERE tenant_id = $1 AND id = $2)`, tenant, contact).Scan(&exists); err != nil {
		return nil, fmt.Errorf("find contact: %w", err)
	}
	if !exists {
		return nil, ErrNotFound
	}
	args := []any{pgx.QueryExecModeExec, contact, tenant, limit}
	where := ""
	if after != nil {
		where = ` AND n.created_at <= $4 AND (n.created_at, n.id) < ($4, $5)`
		args = append(args, after.At, after.ID)
	}
	rows, err := s.pool.Query(ctx, `SELECT n.id, n.contact_id, n.author_id, n.body, n.created_at FROM inbox.contact_notes n
		WHERE n.contact_id = $1 AND n.tenant_id = $2`+where+`
		ORDER BY n.created_at DESC, n.id DESC LIMIT $3`, args...)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[ContactNote])
}
