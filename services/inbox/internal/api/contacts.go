package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Contacts are the tenant's customers. Every user of the tenant may read
// and edit them, whatever their queues: knowing who writes is part of
// answering. Merging two contacts moves conversations between customers,
// so it takes a supervisor (domain.PermAssignOthers) or an admin.

// MaxContactQueryBytes bounds the search string of GET /v1/contacts.
const MaxContactQueryBytes = 200

func (a *API) registerContacts(r Router) {
	a.handle(r, "GET /v1/contacts", a.listContacts)
	a.handle(r, "POST /v1/contacts", a.createContact)
	a.handle(r, "GET /v1/contacts/{id}", a.getContact)
	a.handle(r, "PATCH /v1/contacts/{id}", a.updateContact)
	a.handle(r, "POST /v1/contacts/{id}/identities", a.addContactIdentity)
	a.handle(r, "DELETE /v1/contacts/{id}/identities/{channel}/{identity}", a.removeContactIdentity)
	a.handle(r, "POST /v1/contacts/{id}/merge", a.mergeContacts)
	a.handle(r, "GET /v1/contacts/{id}/notes", a.listContactNotes)
	a.handle(r, "POST /v1/contacts/{id}/notes", a.addContactNote)
}

// ContactRequest is the body of POST /v1/contacts.
type ContactRequest struct {
	// Name is at most 200 bytes; it may be empty for a customer known only
	// by an address.
	Name string `json:"name"`
	// AvatarURL is an http(s) URL or empty.
	AvatarURL string `json:"avatar_url"`
	// PreferredLanguage is an ISO 639-1 code or empty.
	PreferredLanguage string `json:"preferred_language"`
	// Identities are 1 to 20 ways to reach the customer, none held by
	// another contact: a contact nothing can reach or find is of no use.
	Identities []ContactIdentityRequest `json:"identities"`
}

// ContactIdentityRequest is one identity: channel email (an address,
// matched in lower case), sms (E.164) or chat (the chat's user id).
type ContactIdentityRequest struct {
	Channel  string `json:"channel"`
	Identity string `json:"identity"`
}

// ContactPatch is the body of PATCH /v1/contacts/{id}: the fields to
// change ("" clears one).
type ContactPatch struct {
	Name              *string `json:"name,omitempty"`
	AvatarURL         *string `json:"avatar_url,omitempty"`
	PreferredLanguage *string `json:"preferred_language,omitempty"`
	// CustomFields set fields of the contact (name to value, one line of at
	// most 1000 bytes) or, with null, remove them; the others stay. Names
	// are 1 to 32 lower-case letters, digits and _, starting with a
	// letter; a contact holds at most 50.
	CustomFields map[string]*string `json:"custom_fields,omitempty"`
}

// checkCustomFields checks the custom fields of a contact's patch.
func checkCustomFields(in map[string]*string) error {
	if len(in) > domain.MaxCustomFields {
		return domain.Invalid("custom_fields", fmt.Sprintf("must set at most %d fields", domain.MaxCustomFields))
	}
	for name, v := range in {
		if !domain.ValidCustomFieldName(name) {
			return domain.Invalid("custom_fields", fmt.Sprintf("field name %q must be 1 to 32 lower-case letters, digits and _, starting with a letter", printableName(name)))
		}
		if v == nil {
			continue
		}
		if len(*v) > domain.MaxCustomFieldValueBytes || !utf8.ValidString(*v) || strings.ContainsFunc(*v, unicode.IsControl) {
			return domain.Invalid("custom_fields."+name, fmt.Sprintf("must be one line of text of at most %d bytes, or null to remove it", domain.MaxCustomFieldValueBytes))
		}
	}
	return nil
}

// printableName keeps a field name short and printable in an error.
func printableName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.ToValidUTF8(s, "?")
}

// ContactMergeRequest is the body of POST /v1/contacts/{id}/merge: the
// contact to merge into {id}, which it then replaces.
type ContactMergeRequest struct {
	ContactID string `json:"contact_id"`
}

// ContactNoteRequest is the body of POST /v1/contacts/{id}/notes.
type ContactNoteRequest struct {
	// Body is 1 to 10000 bytes of text.
	Body string `json:"body"`
}

// withinField names a field error's field inside prefix, so that the answer
// points at the element of the request that is wrong.
func withinField(prefix string, err error) error {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		return domain.Invalid(prefix+fe.Field, fe.Reason)
	}
	return err
}

// identityTaken answers an identity another contact holds with a 409
// naming the identity, where it is in the request, and its holder (so
// that the caller can merge the two instead).
func identityTaken(err error, field func(index int) string) error {
	var taken *store.IdentityTakenError
	if !errors.As(err, &taken) {
		return err
	}
	prob := httpx.NewProblem(http.StatusConflict, taken.Error())
	prob.Errors = []httpx.FieldError{{Field: field(taken.Index), Reason: "belongs to another contact of this tenant"}}
	prob.Extra = map[string]any{"identity": taken.Identity, "contact_id": taken.ContactID}
	return prob
}

// checkContactName accepts one line of text of at most 200 bytes.
func checkContactName(name string) error {
	if len(name) > store.MaxContactNameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return domain.Invalid("name", "must be at most 200 bytes of text on one line")
	}
	return nil
}

// checkAvatarURL accepts "" or an absolute http(s) URL: it is shown to
// agents as an image, and another scheme (javascript:, data:) could be
// turned against them.
func checkAvatarURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || len(s) > store.MaxAvatarURLBytes || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return domain.Invalid("avatar_url", "must be an http or https URL of at most 2048 bytes, or empty")
	}
	return nil
}

// checkPreferredLanguage accepts "" or a known ISO 639-1 code.
func (a *API) checkPreferredLanguage(l string) error {
	if l != "" && !a.Languages.Valid(l) {
		return domain.Invalid("preferred_language", "must be an ISO 639-1 code, or empty")
	}
	return nil
}

func (a *API) listContacts(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p)
	if err != nil {
		return err
	}
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > MaxContactQueryBytes || !utf8.ValidString(q) || strings.ContainsRune(q, 0) {
		return domain.Invalid("q", "must be at most 200 bytes of text")
	}
	search := func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]store.Contact, error) {
		return a.Store.SearchContacts(ctx, tenant, q, after, limit)
	}
	return servePage(w, r, tenant, search, func(c store.Contact) store.Position { return store.Position{At: c.CreatedAt, ID: c.ID} })
}

func (a *API) createContact(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, err := tenantFor(p)
	if err != nil {
		return err
	}
	var in ContactRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkContactName(in.Name); err != nil {
		return err
	}
	if err := checkAvatarURL(in.AvatarURL); err != nil {
		return err
	}
	if err := a.checkPreferredLanguage(in.PreferredLanguage); err != nil {
		return err
	}
	if len(in.Identities) == 0 || len(in.Identities) > store.MaxContactIdentities {
		return domain.Invalid("identities", "must list 1 to 20 identities")
	}
	spec := store.ContactSpec{Name: in.Name, AvatarURL: in.AvatarURL, PreferredLanguage: in.PreferredLanguage}
	seen := map[store.ContactIdentity]bool{}
	for i, raw := range in.Identities {
		id, err := store.NormalizeIdentity(store.ContactIdentity(raw))
		if err != nil {
			return withinField(fmt.Sprintf("identities[%d].", i), err)
		}
		if seen[id] {
			return domain.Invalid(fmt.Sprintf("identities[%d]", i), "is listed twice")
		}
		seen[id] = true
		spec.Identities = append(spec.Identities, id)
	}
	c, err := a.Store.CreateContact(r.Context(), tenant, spec, a.Clock.Now())
	if err != nil {
		return identityTaken(err, func(i int) string { return fmt.Sprintf("identities[%d].identity", i) })
	}
	return created(w, c)
}

func (a *API) getContact(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	c, err := a.Store.GetContact(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, c)
}

func (a *API) updateContact(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	var in ContactPatch
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Name == nil && in.AvatarURL == nil && in.PreferredLanguage == nil && in.CustomFields == nil {
		return domain.Invalid("body", "names nothing to change")
	}
	if err := checkCustomFields(in.CustomFields); err != nil {
		return err
	}
	if in.Name != nil {
		if err := checkContactName(*in.Name); err != nil {
			return err
		}
	}
	if in.AvatarURL != nil {
		if err := checkAvatarURL(*in.AvatarURL); err != nil {
			return err
		}
	}
	if in.PreferredLanguage != nil {
		if err := a.checkPreferredLanguage(*in.PreferredLanguage); err != nil {
			return err
		}
	}
	c, err := a.Store.UpdateContact(r.Context(), tenant, id, store.ContactUpdate{Name: in.Name, AvatarURL: in.AvatarURL, PreferredLanguage: in.PreferredLanguage,
		CustomFields: in.CustomFields})
	if err != nil {
		return err
	}
	return ok(w, c)
}

// addContactIdentity answers 201 when the identity is new to the contact,
// 200 when the contact already had it (adding is idempotent), 409 when
// another contact holds it.
func (a *API) addContactIdentity(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	var in ContactIdentityRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	ident, err := store.NormalizeIdentity(store.ContactIdentity(in))
	if err != nil {
		return err
	}
	c, added, err := a.Store.AddIdentity(r.Context(), tenant, id, ident)
	if err != nil {
		return identityTaken(err, func(int) string { return "identity" })
	}
	if added {
		return created(w, c)
	}
	return ok(w, c)
}

// removeContactIdentity answers with the contact. The identity is matched
// as it is stored (an email address in any case); one the contact does
// not hold, or that no channel could have, is a 404.
func (a *API) removeContactIdentity(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	ident, err := store.NormalizeIdentity(store.ContactIdentity{Channel: r.PathValue("channel"), Identity: r.PathValue("identity")})
	if err != nil {
		return domain.ErrNotFound
	}
	c, err := a.Store.RemoveIdentity(r.Context(), tenant, id, ident)
	if err != nil {
		return err
	}
	return ok(w, c)
}

// mergeContacts merges the body's contact into the path's and answers
// with the card of the one that remains.
func (a *API) mergeContacts(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, keep, err := targetFor(r, p, domain.PermAssignOthers)
	if err != nil {
		return err
	}
	var in ContactMergeRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	other, err := uuid.Parse(in.ContactID)
	if err != nil {
		return domain.Invalid("contact_id", "must be a contact id")
	}
	if other == keep {
		return domain.Invalid("contact_id", "is this contact; a contact cannot be merged into itself")
	}
	c, err := a.Store.MergeContacts(r.Context(), p, tenant, keep, other, a.Clock.Now())
	if err != nil {
		return err
	}
	return ok(w, c)
}

func (a *API) listContactNotes(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	notes := func(ctx context.Context, tenant uuid.UUID, after *store.Position, limit int) ([]store.ContactNote, error) {
		return a.Store.ContactNotes(ctx, tenant, id, after, limit)
	}
	return servePage(w, r, tenant, notes, func(n store.ContactNote) store.Position { return store.Position{At: n.CreatedAt, ID: n.ID} })
}

func (a *API) addContactNote(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	tenant, id, err := targetFor(r, p)
	if err != nil {
		return err
	}
	var in ContactNoteRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := checkText("body", in.Body, true, store.MaxNoteBytes); err != nil {
		return err
	}
	n, err := a.Store.AddContactNote(r.Context(), tenant, id, p.ActorID(), in.Body, a.Clock.Now())
	if err != nil {
		return err
	}
	return created(w, n)
}
