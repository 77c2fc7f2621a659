package inbox_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

type ctIdentity struct {
	Channel  string `json:"channel"`
	Identity string `json:"identity"`
}

type ctContact struct {
	ID                string       `json:"id"`
	Name              string       `json:"name"`
	AvatarURL         string       `json:"avatar_url"`
	PreferredLanguage string       `json:"preferred_language"`
	Source            string       `json:"source"`
	CreatedAt         time.Time    `json:"created_at"`
	Identities        []ctIdentity `json:"identities"`
	AssigneeIDs       []string     `json:"assignee_ids"`
	ConversationCount int          `json:"conversation_count"`
}

type ctNote struct {
	ID        string `json:"id"`
	ContactID string `json:"contact_id"`
	AuthorID  string `json:"author_id"`
	Body      string `json:"body"`
}

type ctProblem struct {
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
	ContactID string      `json:"contact_id"`
	Identity  *ctIdentity `json:"identity"`
}

// ctField is the field a problem names.
func ctField(t *testing.T, p ctProblem) string {
	t.Helper()
	require.Len(t, p.Errors, 1, "problem %+v", p)
	return p.Errors[0].Field
}

// ctCreate creates a contact and fails the test unless it is created.
func ctCreate(t *testing.T, e env, token, body string) ctContact {
	t.Helper()
	var c ctContact
	require.Equal(t, http.StatusCreated, e.do(t, token, http.MethodPost, "/v1/contacts", body, &c), body)
	return c
}

// ctSearch returns every contact q finds, following the cursors.
func ctSearch(t *testing.T, e env, token, q string, limit int) []ctContact {
	t.Helper()
	var all []ctContact
	cursor := ""
	for {
		var l list[ctContact]
		path := fmt.Sprintf("/v1/contacts?q=%s&limit=%d&cursor=%s", url.QueryEscape(q), limit, url.QueryEscape(cursor))
		require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, path, "", &l), path)
		all = append(all, l.Items...)
		if l.NextCursor == "" {
			return all
		}
		cursor = l.NextCursor
	}
}

func ctIDs(cs []ctContact) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

func TestContactsAreCreatedWithValidIdentities(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	tok := b.APIToken.Token

	ada := ctCreate(t, e, tok, `{"name":"Ada Lovelace","avatar_url":"https://example.com/ada.png","preferred_language":"fr",
		"identities":[{"channel":"email","identity":"Ada@Example.COM"},{"channel":"sms","identity":"+33612345678"},{"channel":"chat","identity":"web/ada-1"}]}`)
	require.Equal(t, "Ada Lovelace", ada.Name)
	require.Equal(t, "manual", ada.Source)
	require.Equal(t, "fr", ada.PreferredLanguage)
	require.Equal(t, "https://example.com/ada.png", ada.AvatarURL)
	require.False(t, ada.CreatedAt.IsZero())
	require.Equal(t, []ctIdentity{{"chat", "web/ada-1"}, {"email", "ada@example.com"}, {"sms", "+33612345678"}}, ada.Identities,
		"email addresses are stored in lower case")

	// A contact known only by an address needs no name.
	anon := ctCreate(t, e, tok, `{"identities":[{"channel":"sms","identity":"+14155550100"}]}`)
	require.Empty(t, anon.Name)

	bad := []struct{ body, field string }{
		{`{"name":"X","identities":[{"channel":"email","identity":"not an address"}]}`, "identities[0].identity"},
		{`{"name":"X","identities":[{"channel":"email","identity":"Ada <x@example.com>"}]}`, "identities[0].identity"},
		{`{"name":"X","identities":[{"channel":"sms","identity":"+1"}, {"channel":"sms","identity":"0612345678"}]}`, "identities[0].identity"},
		{`{"name":"X","identities":[{"channel":"chat","identity":"ok"},{"channel":"sms","identity":"+0612345678"}]}`, "identities[1].identity"},
		{`{"name":"X","identities":[{"channel":"sms","identity":"+336123456789012345"}]}`, "identities[0].identity"},
		{`{"name":"X","identities":[{"channel":"chat","identity":""}]}`, "identities[0].identity"},
		{`{"name":"X","identities":[{"channel":"chat","identity":"` + strings.Repeat("x", 257) + `"}]}`, "identities[0].identity"},
		{`{"name":"X","identities":[{"channel":"fax","identity":"+33612345678"}]}`, "identities[0].channel"},
		{`{"name":"X","identities":[{"channel":"chat","identity":"a"},{"channel":"email","identity":"b@x.org"},{"channel":"email","identity":"B@X.org"}]}`, "identities[2]"},
		{`{"name":"X","identities":[]}`, "identities"},
		{`{"name":"X"}`, "identities"},
		{`{"name":"X","identities":"chat:a"}`, "identities"},
		{`{"name":5,"identities":[{"channel":"chat","identity":"a"}]}`, "name"},
		{`{"name":"` + strings.Repeat("n", 201) + `","identities":[{"channel":"chat","identity":"a"}]}`, "name"},
		{`{"name":"two\nlines","identities":[{"channel":"chat","identity":"a"}]}`, "name"},
		{`{"name":"X","avatar_url":"javascript:alert(1)","identities":[{"channel":"chat","identity":"a"}]}`, "avatar_url"},
		{`{"name":"X","preferred_language":"french","identities":[{"channel":"chat","identity":"a"}]}`, "preferred_language"},
		{`{"name":"X","nickname":"x","identities":[{"channel":"chat","identity":"a"}]}`, "nickname"},
		{`{"name":"X","identities":[{"channel":"chat","identity":"a","primary":true}]}`, "primary"},
		{`{"name":"X","identities":[{"channel":"chat","identity":"a"}]} {}`, "body"},
		{`not json`, "body"},
	}
	for _, c := range bad {
		var prob ctProblem
		require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPost, "/v1/contacts", c.body, &prob), c.body)
		require.Equal(t, c.field, ctField(t, prob), c.body)
	}

	// An identity another contact holds, in any case, is a conflict that
	// names it and its holder; nothing of the request is kept.
	var prob ctProblem
	require.Equal(t, http.StatusConflict, e.do(t, tok, http.MethodPost, "/v1/contacts",
		`{"name":"Ada again","identities":[{"channel":"chat","identity":"new-one"},{"channel":"email","identity":"ADA@example.com"}]}`, &prob))
	require.Equal(t, "identities[1].identity", ctField(t, prob))
	require.Equal(t, ada.ID, prob.ContactID)
	require.Equal(t, &ctIdentity{"email", "ada@example.com"}, prob.Identity)
	require.Contains(t, prob.Detail, "ada@example.com")

	all := ctSearch(t, e, tok, "", 50)
	require.ElementsMatch(t, []string{ada.ID, anon.ID}, ctIDs(all), "refused requests created nothing")
	require.Empty(t, ctSearch(t, e, tok, "new-one", 50), "the refused contact's other identity was not kept")
}

func TestContactsAreSearchedByNamePrefixAndIdentity(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	tok := b.APIToken.Token

	ada := ctCreate(t, e, tok, `{"name":"Ada Lovelace","identities":[{"channel":"email","identity":"ada@example.com"},{"channel":"sms","identity":"+33612345678"}]}`)
	adam := ctCreate(t, e, tok, `{"name":"adam Smith","identities":[{"channel":"chat","identity":"chat-adam"}]}`)
	bob := ctCreate(t, e, tok, `{"name":"Bob","identities":[{"channel":"chat","identity":"ada"}]}`)
	pct := ctCreate(t, e, tok, `{"name":"100%_sure","identities":[{"channel":"chat","identity":"pct"}]}`)
	ctCreate(t, e, tok, `{"name":"100 percent","identities":[{"channel":"chat","identity":"pct2"}]}`)
	ctCreate(t, e, other.APIToken.Token, `{"name":"Ada of Other","identities":[{"channel":"email","identity":"ada@example.com"}]}`)

	// Newest first; the name prefix ignores case; a chat id matches exactly.
	require.Equal(t, []string{bob.ID, adam.ID, ada.ID}, ctIDs(ctSearch(t, e, tok, "ada", 50)))
	require.Equal(t, []string{adam.ID, ada.ID}, ctIDs(ctSearch(t, e, tok, "ADA", 50)), "chat ids match exactly, in their case")
	require.Equal(t, []string{adam.ID}, ctIDs(ctSearch(t, e, tok, "Adam s", 50)))
	require.Equal(t, []string{ada.ID}, ctIDs(ctSearch(t, e, tok, "  Ada@EXAMPLE.com ", 50)))
	require.Equal(t, []string{ada.ID}, ctIDs(ctSearch(t, e, tok, "+33 6 12 34 56 78", 50)))
	require.Equal(t, []string{adam.ID}, ctIDs(ctSearch(t, e, tok, "chat-adam", 50)))
	require.Equal(t, []string{pct.ID}, ctIDs(ctSearch(t, e, tok, "100%_", 50)), "% and _ are taken literally")
	require.Empty(t, ctSearch(t, e, tok, "lovelace", 50), "a name matches by its start")
	require.Empty(t, ctSearch(t, e, tok, "example.com", 50), "an identity matches whole")

	// Pages hold each contact once, newest first.
	paged := ctSearch(t, e, tok, "", 2)
	require.Len(t, paged, 5)
	for i := 1; i < len(paged); i++ {
		require.False(t, paged[i].CreatedAt.After(paged[i-1].CreatedAt), "newest first")
	}
	require.Equal(t, ctIDs(ctSearch(t, e, tok, "", 200)), ctIDs(paged))
	require.Equal(t, []string{bob.ID, adam.ID, ada.ID}, ctIDs(ctSearch(t, e, tok, "ada", 1)), "a search pages too")

	// Another tenant finds its own only.
	found := ctSearch(t, e, other.APIToken.Token, "ada", 50)
	require.Len(t, found, 1)
	require.Equal(t, "Ada of Other", found[0].Name)

	var prob ctProblem
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodGet, "/v1/contacts?q="+strings.Repeat("a", 201), "", &prob))
	require.Equal(t, "q", ctField(t, prob))
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodGet, "/v1/contacts?limit=201", "", &prob))
	require.Equal(t, "limit", ctField(t, prob))
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodGet, "/v1/contacts?cursor=nope", "", &prob))
	require.Equal(t, "cursor", ctField(t, prob))
}

// ctIngested waits for the conversations of chat users to be stored and
// returns each user's contact id.
func ctIngested(t *testing.T, e env, token string, users ...string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	testkit.Eventually(t, 20*time.Second, func() bool {
		for _, u := range users {
			var l list[ctContact]
			if e.do(t, token, http.MethodGet, "/v1/contacts?q="+url.QueryEscape(u), "", &l) != http.StatusOK || len(l.Items) != 1 {
				return false
			}
			ids[u] = l.Items[0].ID
		}
		return true
	}, "the chat users' contacts were not created")
	return ids
}

func TestContactCardAndMerge(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	agent, agentTok := e.userToken(t, b, "agent")
	_, supTok := e.userToken(t, b, "supervisor")

	e.send(t, b, "ev-1", "m-1", "s-1", "user-1", "Bonjour")
	e.send(t, b, "ev-2", "m-2", "s-2", "user-2", "Hello")
	e.send(t, b, "ev-3", "m-3", "s-3", "user-2", "Another topic")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.conversations(t, admin)) == 3 }, "conversations not stored")
	ids := ctIngested(t, e, admin, "user-1", "user-2")
	keep, gone := ids["user-1"], ids["user-2"]
	var first string
	var moved []string
	for _, c := range e.conversations(t, admin) {
		if c.ContactID == keep {
			first = c.ID
		} else {
			moved = append(moved, c.ID)
		}
	}
	require.Len(t, moved, 2)
	require.NotEmpty(t, first)

	// The agent takes the first customer's conversation: the card says who
	// is on it.
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodPost, "/v1/conversations/"+first+"/assign", "", nil))
	var card ctContact
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodGet, "/v1/contacts/"+keep, "", &card))
	require.Equal(t, "Ada", card.Name)
	require.Equal(t, "chat", card.Source)
	require.Equal(t, "", card.PreferredLanguage)
	require.Equal(t, []ctIdentity{{"chat", "user-1"}}, card.Identities)
	require.Equal(t, []string{agent.ID.String()}, card.AssigneeIDs)
	require.Equal(t, 1, card.ConversationCount)
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodGet, "/v1/contacts/"+gone, "", &card))
	require.Empty(t, card.AssigneeIDs)
	require.Equal(t, 2, card.ConversationCount)

	// Any user edits contacts and writes notes.
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodPatch, "/v1/contacts/"+gone, `{"preferred_language":"en","avatar_url":"https://example.com/b.png"}`, &card))
	require.Equal(t, "en", card.PreferredLanguage)
	require.Equal(t, "Ada", card.Name, "a field left out is left alone")
	var note ctNote
	require.Equal(t, http.StatusCreated, e.do(t, agentTok, http.MethodPost, "/v1/contacts/"+gone+"/notes", `{"body":"VIP, prefers email"}`, &note))
	require.Equal(t, agent.ID.String(), note.AuthorID)
	require.Equal(t, gone, note.ContactID)
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/contacts/"+keep+"/notes", `{"body":"same person as user-2"}`, &note))
	require.NotEmpty(t, note.AuthorID, "an API token is the author")

	// Merging is for supervisors and admins.
	body := fmt.Sprintf(`{"contact_id":%q}`, gone)
	var prob ctProblem
	require.Equal(t, http.StatusForbidden, e.do(t, agentTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", body, &prob))
	require.Equal(t, http.StatusBadRequest, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", fmt.Sprintf(`{"contact_id":%q}`, keep), &prob))
	require.Equal(t, "contact_id", ctField(t, prob))
	require.Equal(t, http.StatusBadRequest, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", `{"contact_id":"someone"}`, &prob))
	require.Equal(t, "contact_id", ctField(t, prob))
	require.Equal(t, http.StatusBadRequest, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", `{"contact_id":1}`, &prob))
	require.Equal(t, "contact_id", ctField(t, prob))
	require.Equal(t, http.StatusBadRequest, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", fmt.Sprintf(`{"contact_id":%q,"force":true}`, gone), &prob))
	require.Equal(t, "force", ctField(t, prob))
	require.Equal(t, http.StatusNotFound, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", fmt.Sprintf(`{"contact_id":%q}`, uuid.NewString()), &prob))
	require.Equal(t, http.StatusNotFound, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+uuid.NewString()+"/merge", body, &prob))
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodGet, "/v1/contacts/"+gone, "", nil), "refused merges changed nothing")

	require.Equal(t, http.StatusOK, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", body, &card))
	require.Equal(t, keep, card.ID)
	require.Equal(t, "Ada", card.Name)
	require.Equal(t, "en", card.PreferredLanguage, "a blank field is filled from the merged contact")
	require.Equal(t, "https://example.com/b.png", card.AvatarURL)
	require.Equal(t, []ctIdentity{{"chat", "user-1"}, {"chat", "user-2"}}, card.Identities)
	require.Equal(t, 3, card.ConversationCount)
	require.Equal(t, []string{agent.ID.String()}, card.AssigneeIDs)

	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, "/v1/contacts/"+gone, "", nil), "the merged contact is gone")
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, "/v1/contacts/"+gone+"/notes", "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, supTok, http.MethodPost, "/v1/contacts/"+keep+"/merge", body, nil), "merging it again finds nothing")
	for _, c := range e.conversations(t, admin) {
		require.Equal(t, keep, c.ContactID, "conversation %s still names the merged contact", c.ID)
	}
	var notes list[ctNote]
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodGet, "/v1/contacts/"+keep+"/notes", "", &notes))
	require.Len(t, notes.Items, 2)
	require.Equal(t, "same person as user-2", notes.Items[0].Body, "newest first")
	require.Equal(t, "VIP, prefers email", notes.Items[1].Body)
	for _, n := range notes.Items {
		require.Equal(t, keep, n.ContactID)
	}
	var page list[ctNote]
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodGet, "/v1/contacts/"+keep+"/notes?limit=1", "", &page))
	require.Len(t, page.Items, 1)
	var last list[ctNote]
	require.Equal(t, http.StatusOK, e.do(t, agentTok, http.MethodGet, "/v1/contacts/"+keep+"/notes?limit=1&cursor="+url.QueryEscape(page.NextCursor), "", &last))
	require.Equal(t, []ctNote{notes.Items[1]}, last.Items)
	require.Empty(t, last.NextCursor)

	// The merged customer writing again lands on the kept contact.
	e.send(t, b, "ev-4", "m-4", "s-4", "user-2", "Me again")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.conversations(t, admin)) == 4 }, "the new conversation was not stored")
	for _, c := range e.conversations(t, admin) {
		require.Equal(t, keep, c.ContactID)
	}
	// Each moved conversation says so in its audit log.
	for _, id := range moved {
		var audit list[struct {
			Action string            `json:"action"`
			Reason string            `json:"reason"`
			Data   map[string]string `json:"data"`
		}]
		require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+id+"/audit", "", &audit))
		require.NotEmpty(t, audit.Items)
		last := audit.Items[len(audit.Items)-1]
		require.Equal(t, "update", last.Action)
		require.Equal(t, "contacts merged", last.Reason)
		require.Equal(t, map[string]string{"contact_id": keep, "merged_contact_id": gone}, last.Data)
	}
}

func TestContactIdentitiesAndEdits(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	_, tok := e.userToken(t, b, "agent")

	c := ctCreate(t, e, tok, `{"name":"Grace","identities":[{"channel":"chat","identity":"web/grace"}]}`)
	other := ctCreate(t, e, tok, `{"name":"Alan","identities":[{"channel":"email","identity":"alan@example.com"}]}`)
	path := "/v1/contacts/" + c.ID

	var got ctContact
	require.Equal(t, http.StatusCreated, e.do(t, tok, http.MethodPost, path+"/identities", `{"channel":"email","identity":"Grace@Example.com"}`, &got))
	require.Equal(t, []ctIdentity{{"chat", "web/grace"}, {"email", "grace@example.com"}}, got.Identities)
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/identities", `{"channel":"email","identity":"grace@example.com"}`, &got),
		"adding an identity the contact has changes nothing")
	require.Len(t, got.Identities, 2)

	var prob ctProblem
	require.Equal(t, http.StatusConflict, e.do(t, tok, http.MethodPost, path+"/identities", `{"channel":"email","identity":"ALAN@example.com"}`, &prob))
	require.Equal(t, "identity", ctField(t, prob))
	require.Equal(t, other.ID, prob.ContactID)
	for _, bad := range []struct{ body, field string }{
		{`{"channel":"sms","identity":"33612345678"}`, "identity"},
		{`{"channel":"email","identity":"@example.com"}`, "identity"},
		{`{"channel":"pigeon","identity":"x"}`, "channel"},
		{`{"channel":"chat","identity":7}`, "identity"},
		{`{"channel":"chat","identity":"x","contact_id":"y"}`, "contact_id"},
		{``, "body"},
	} {
		require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPost, path+"/identities", bad.body, &prob), bad.body)
		require.Equal(t, bad.field, ctField(t, prob), bad.body)
	}

	// Removing: matched as stored, a slash escaped in the path.
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodDelete, path+"/identities/chat/"+url.PathEscape("web/grace"), "", &got))
	require.Equal(t, []ctIdentity{{"email", "grace@example.com"}}, got.Identities)
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodDelete, path+"/identities/chat/"+url.PathEscape("web/grace"), "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodDelete, path+"/identities/email/alan@example.com", "", nil), "another contact's identity")
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodDelete, path+"/identities/fax/123", "", nil))
	require.Equal(t, http.StatusConflict, e.do(t, tok, http.MethodDelete, path+"/identities/email/GRACE@example.com", "", &prob), "the last identity stays")
	require.Contains(t, prob.Detail, "last identity")

	// Edits: any subset; bad input is refused whole.
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPatch, path, `{"name":"Grace Hopper","preferred_language":"en"}`, &got))
	require.Equal(t, "Grace Hopper", got.Name)
	require.Equal(t, "en", got.PreferredLanguage)
	for _, bad := range []struct{ body, field string }{
		{`{}`, "body"},
		{`{"name":"Bad","nickname":"x"}`, "nickname"},
		{`{"name":["Bad"]}`, "name"},
		{`{"name":"` + strings.Repeat("é", 101) + `"}`, "name"},
		{`{"name":"Bad","preferred_language":"zz"}`, "preferred_language"},
		{`{"name":"Bad","avatar_url":"ftp://example.com/a.png"}`, "avatar_url"},
		{`{"name":"Bad","identities":[]}`, "identities"},
		{`{"name":"Bad","source":"email"}`, "source"},
	} {
		require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPatch, path, bad.body, &prob), bad.body)
		require.Equal(t, bad.field, ctField(t, prob), bad.body)
	}
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPatch, path, `{"preferred_language":""}`, &got))
	require.Equal(t, "", got.PreferredLanguage, `"" clears it`)
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path, "", &got))
	require.Equal(t, "Grace Hopper", got.Name, "refused edits changed nothing")
	require.Equal(t, "manual", got.Source)
	require.Equal(t, 0, got.ConversationCount)
	require.Empty(t, got.AssigneeIDs)

	// Notes: 1 to 10000 bytes.
	for _, bad := range []struct{ body, field string }{
		{`{"body":""}`, "body"},
		{`{"body":"   "}`, "body"},
		{`{"body":"` + strings.Repeat("n", 10001) + `"}`, "body"},
		{`{"body":true}`, "body"},
		{`{"body":"x","author_id":"someone"}`, "author_id"},
	} {
		require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPost, path+"/notes", bad.body, &prob), bad.body[:min(len(bad.body), 40)])
		require.Equal(t, bad.field, ctField(t, prob))
	}
	var note ctNote
	require.Equal(t, http.StatusCreated, e.do(t, tok, http.MethodPost, path+"/notes", `{"body":"`+strings.Repeat("n", 10000)+`"}`, &note))
	var notes list[ctNote]
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/notes", "", &notes))
	require.Len(t, notes.Items, 1, "refused notes were not kept")
}

func TestContactsOfAnotherTenantAreNotFound(t *testing.T) {
	e := start(t)
	a := e.tenant(t, "Acme")
	b := e.tenant(t, "Bravo")
	c := ctCreate(t, e, a.APIToken.Token, `{"name":"Ada","identities":[{"channel":"chat","identity":"ada"},{"channel":"sms","identity":"+33612345678"}]}`)
	mine := ctCreate(t, e, b.APIToken.Token, `{"name":"Bob","identities":[{"channel":"chat","identity":"bob"}]}`)
	require.Equal(t, http.StatusCreated, e.do(t, a.APIToken.Token, http.MethodPost, "/v1/contacts/"+c.ID+"/notes", `{"body":"secret"}`, nil))

	tok := b.APIToken.Token // an admin of Bravo
	for _, id := range []string{c.ID, uuid.NewString(), "not-an-id"} {
		p := "/v1/contacts/" + id
		requests := []struct{ method, path, body string }{
			{http.MethodGet, p, ""},
			{http.MethodPatch, p, `{"name":"Mallory"}`},
			{http.MethodPost, p + "/identities", `{"channel":"chat","identity":"mallory"}`},
			{http.MethodDelete, p + "/identities/chat/ada", ""},
			{http.MethodPost, p + "/merge", fmt.Sprintf(`{"contact_id":%q}`, mine.ID)},
			{http.MethodGet, p + "/notes", ""},
			{http.MethodPost, p + "/notes", `{"body":"hello"}`},
		}
		var missing ctProblem
		for _, r := range requests {
			var prob ctProblem
			require.Equal(t, http.StatusNotFound, e.do(t, tok, r.method, r.path, r.body, &prob), "%s %s", r.method, r.path)
			if missing.Status == 0 {
				missing = prob
			}
			require.Equal(t, missing, prob, "a foreign contact looks like a missing one")
		}
	}
	// Merging a foreign contact into one's own finds nothing either.
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodPost, "/v1/contacts/"+mine.ID+"/merge", fmt.Sprintf(`{"contact_id":%q}`, c.ID), nil))
	// The same identity is free in another tenant.
	ctCreate(t, e, tok, `{"name":"Other Ada","identities":[{"channel":"sms","identity":"+33612345678"}]}`)

	// Nothing of Acme's changed.
	var got ctContact
	require.Equal(t, http.StatusOK, e.do(t, a.APIToken.Token, http.MethodGet, "/v1/contacts/"+c.ID, "", &got))
	require.Equal(t, "Ada", got.Name)
	require.Equal(t, c.Identities, got.Identities)
	var notes list[ctNote]
	require.Equal(t, http.StatusOK, e.do(t, a.APIToken.Token, http.MethodGet, "/v1/contacts/"+c.ID+"/notes", "", &notes))
	require.Len(t, notes.Items, 1)
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, "/v1/contacts/"+mine.ID, "", nil))
}

// Merging while the merged customer writes: ingestion must never open a
// conversation on the contact being deleted (its foreign key would fail
// and the message be dead-lettered), so every message is stored, on the
// kept contact.
func TestContactMergeLosesNoMessageIngestedMeanwhile(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	tok := b.APIToken.Token
	_, sup := e.userToken(t, b, "supervisor")
	const pairs, again = 20, 5
	var users []string
	for i := 0; i < pairs; i++ {
		for _, who := range []string{"a", "b"} {
			user := fmt.Sprintf("u%s-%d", who, i)
			e.send(t, b, "ev-"+user, "m-"+user, "s-"+user, user, "hello")
			users = append(users, user)
		}
	}
	ids := ctIngested(t, e, tok, users...)
	for i := 0; i < pairs; i++ {
		keep, gone := ids[fmt.Sprintf("ua-%d", i)], ids[fmt.Sprintf("ub-%d", i)]
		for k := 0; k < again; k++ {
			id := fmt.Sprintf("%d-%d", i, k)
			e.send(t, b, "ev-"+id, "m-"+id, "s-"+id, fmt.Sprintf("ub-%d", i), "me again")
		}
		require.Equal(t, http.StatusOK, e.do(t, sup, http.MethodPost, "/v1/contacts/"+keep+"/merge", fmt.Sprintf(`{"contact_id":%q}`, gone), nil))
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		total := 0
		for i := 0; i < pairs; i++ {
			var card ctContact
			e.do(t, tok, http.MethodGet, "/v1/contacts/"+ids[fmt.Sprintf("ua-%d", i)], "", &card)
			total += card.ConversationCount
		}
		return total == pairs*(2+again)
	}, "messages sent during the merges were not all stored on the kept contacts")
	require.Len(t, ctSearch(t, e, tok, "", 200), pairs)
}
