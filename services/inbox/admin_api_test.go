package inbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

type adminNamed struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

type adminUser struct {
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
	Languages   []string `json:"languages"`
	Capacity    int      `json:"capacity"`
	QueueIDs    []string `json:"queue_ids"`
	SkillIDs    []string `json:"skill_ids"`
	CanLogIn    bool     `json:"can_log_in"`
	Disabled    bool     `json:"disabled"`
}

type adminTagList struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Values    []string `json:"values"`
	Mandatory bool     `json:"mandatory"`
}

type adminToken struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
	Revoked     bool     `json:"revoked"`
	Token       string   `json:"token"`
}

// adminInvalid sends a request that must be refused with 400 naming field.
func (e env) adminInvalid(t *testing.T, token, method, path, body, field string) {
	t.Helper()
	var prob problemBody
	require.Equal(t, http.StatusBadRequest, e.do(t, token, method, path, body, &prob), "%s %s %s", method, path, body)
	require.NotEmpty(t, prob.Errors, "%s %s %s", method, path, body)
	require.Equal(t, field, prob.Errors[0].Field, "%s %s %s", method, path, body)
}

// adminLogin logs a user in and returns the status and access token.
func (e env) adminLogin(t *testing.T, b inbox.Bootstrap, email, password string) (int, string) {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, b.Tenant.ID, email, password)
	status := e.do(t, "", http.MethodPost, "/v1/auth/login", body, &tok)
	return status, tok.AccessToken
}

func adminNames(items []adminNamed) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func TestAdminQueuesAndSkills(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	admin := b.APIToken.Token
	_, agent := e.userToken(t, b, "agent")

	for _, base := range []string{"/v1/admin/queues", "/v1/admin/skills"} {
		t.Run(strings.TrimPrefix(base, "/v1/admin/"), func(t *testing.T) {
			var support, sales adminNamed
			require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, base, `{"name":"Support"}`, &support))
			require.Equal(t, "Support", support.Name)
			require.NotEmpty(t, support.ID)
			require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, base, `{"name":"Sales"}`, &sales))

			// Any user of the tenant reads them.
			var l list[adminNamed]
			require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, base, "", &l))
			require.Equal(t, []string{"Support", "Sales"}, adminNames(l.Items))
			require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base+"?limit=1", "", &l))
			require.Len(t, l.Items, 1)
			require.NotEmpty(t, l.NextCursor)
			require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base+"?limit=1&cursor="+l.NextCursor, "", &l))
			require.Equal(t, []string{"Sales"}, adminNames(l.Items))
			var got adminNamed
			require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, base+"/"+support.ID, "", &got))
			require.Equal(t, support, got)

			// Rename; names are unique in the tenant.
			require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, base+"/"+support.ID, `{"name":"Customer care"}`, &got))
			require.Equal(t, "Customer care", got.Name)
			require.Equal(t, support.ID, got.ID)
			e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"Sales"}`, "name")
			e.adminInvalid(t, admin, http.MethodPatch, base+"/"+support.ID, `{"name":"Sales"}`, "name")
			// The same name in another tenant is fine.
			require.Equal(t, http.StatusCreated, e.do(t, other.APIToken.Token, http.MethodPost, base, `{"name":"Sales"}`, nil))

			// Bad input names the field and changes nothing.
			e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"X","color":"red"}`, "color")
			e.adminInvalid(t, admin, http.MethodPost, base, `{"name":5}`, "name")
			e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"   "}`, "name")
			e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"a\u0000b"}`, "name")
			e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"`+strings.Repeat("x", 201)+`"}`, "name")
			e.adminInvalid(t, admin, http.MethodPatch, base+"/"+support.ID, `{"name":""}`, "name")
			e.adminInvalid(t, admin, http.MethodPatch, base+"/"+support.ID, `{"name":["a"]}`, "name")
			e.adminInvalid(t, admin, http.MethodPatch, base+"/"+support.ID, `{"nom":"x"}`, "nom")
			require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &l))
			require.Equal(t, []string{"Customer care", "Sales"}, adminNames(l.Items))

			// An agent may not write.
			require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPost, base, `{"name":"Mine"}`, nil))
			require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPatch, base+"/"+sales.ID, `{"name":"Mine"}`, nil))
			require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodDelete, base+"/"+sales.ID, "", nil))

			// Another tenant's admin: exactly like a missing id.
			for _, m := range []struct{ method, body string }{{http.MethodGet, ""}, {http.MethodPatch, `{"name":"Taken"}`}, {http.MethodDelete, ""}} {
				var missing, foreign problemBody
				require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, m.method, base+"/"+uuid.NewString(), m.body, &missing))
				require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, m.method, base+"/"+sales.ID, m.body, &foreign))
				require.Equal(t, missing, foreign)
			}
			require.Equal(t, http.StatusOK, e.do(t, other.APIToken.Token, http.MethodGet, base, "", &l))
			require.Equal(t, []string{"Sales"}, adminNames(l.Items), "another tenant lists its own only")
			require.NotEqual(t, sales.ID, l.Items[0].ID)

			// Delete.
			require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, base+"/"+sales.ID, "", nil))
			require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, base+"/"+sales.ID, "", nil))
			require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodDelete, base+"/"+sales.ID, "", nil))
			require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &l))
			require.Equal(t, []string{"Customer care"}, adminNames(l.Items))
			// Its name is free again.
			require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, base, `{"name":"Sales"}`, nil))
		})
	}
}

func TestAdminQueueDeletionLeavesConversationsAndMembersWithoutIt(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	var q, k adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/queues", `{"name":"Support"}`, &q))
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/skills", `{"name":"German"}`, &k))
	var u adminUser
	body := fmt.Sprintf(`{"email":"ada@example.com","name":"Ada","queue_ids":[%q],"skill_ids":[%q]}`, q.ID, k.ID)
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users", body, &u))
	require.Equal(t, []string{q.ID}, u.QueueIDs)
	require.Equal(t, []string{k.ID}, u.SkillIDs)

	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "hello")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(e.conversations(t, admin)) == 1 }, "not stored")
	conv := e.conversations(t, admin)[0].ID
	var c fullConversation
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, "/v1/conversations/"+conv+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID), &c))
	require.NotNil(t, c.QueueID)

	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/queues/"+q.ID, "", nil))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/skills/"+k.ID, "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+conv, "", &c))
	require.Nil(t, c.QueueID, "the conversation lost its deleted queue")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/users/"+u.ID, "", &u))
	require.Empty(t, u.QueueIDs)
	require.Empty(t, u.SkillIDs)
}

func TestAdminUsers(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	admin := b.APIToken.Token
	support := e.queue(t, b, "Support")
	foreignQueue := e.queue(t, other, "Support")
	agentUser, agent := e.userToken(t, b, "agent", support)

	// Create, with everything.
	var skill adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/skills", `{"name":"Refunds"}`, &skill))
	body := fmt.Sprintf(`{"email":"grace@example.com","name":"Grace","role":"supervisor","permissions":["moderate"],"languages":["fr","en"],
		"capacity":3,"queue_ids":[%q],"skill_ids":[%q],"password":"correct horse battery"}`, support.ID, skill.ID)
	var raw map[string]any
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users", body, &raw))
	for key := range raw {
		require.NotContains(t, key, "password", "a user is never shown with their password")
	}
	var grace adminUser
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/users/"+raw["id"].(string), "", &grace))
	require.Equal(t, adminUser{ID: grace.ID, Email: "grace@example.com", Name: "Grace", Role: "supervisor", Permissions: []string{"moderate"},
		Languages: []string{"fr", "en"}, Capacity: 3, QueueIDs: []string{support.ID.String()}, SkillIDs: []string{skill.ID}, CanLogIn: true}, grace)
	status, graceToken := e.adminLogin(t, b, "grace@example.com", "correct horse battery")
	require.Equal(t, http.StatusOK, status)

	// Defaults: an agent with capacity 5 who cannot log in yet; an
	// explicit capacity 0 is kept.
	var bob, idle adminUser
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users", `{"email":"bob@example.com","name":"Bob"}`, &bob))
	require.Equal(t, "agent", bob.Role)
	require.Equal(t, 5, bob.Capacity)
	require.False(t, bob.CanLogIn)
	require.NotNil(t, bob.Permissions)
	require.NotNil(t, bob.QueueIDs)
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users", `{"email":"idle@example.com","name":"Idle","capacity":0}`, &idle))
	require.Equal(t, 0, idle.Capacity)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/users/"+idle.ID, "", &idle))
	require.Equal(t, 0, idle.Capacity)

	// Emails are unique in the tenant, whatever their case.
	e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/users", `{"email":"Grace@example.com","name":"Other Grace"}`, "email")
	e.adminInvalid(t, admin, http.MethodPatch, "/v1/admin/users/"+bob.ID, `{"email":"grace@example.com"}`, "email")

	// List, and read oneself without manage_users.
	var l list[adminUser]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/users", "", &l))
	require.Len(t, l.Items, 4)
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, "/v1/admin/users", "", nil))
	var me adminUser
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, "/v1/admin/users/"+agentUser.ID.String(), "", &me))
	require.Equal(t, agentUser.ID.String(), me.ID)
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, "/v1/admin/users/"+grace.ID, "", nil))

	// Update any subset.
	var got adminUser
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/users/"+grace.ID, `{"name":"Grace H.","capacity":8,"queue_ids":[]}`, &got))
	require.Equal(t, "Grace H.", got.Name)
	require.Equal(t, 8, got.Capacity)
	require.Empty(t, got.QueueIDs)
	require.Equal(t, []string{skill.ID}, got.SkillIDs, "what the body does not name stays")
	require.Equal(t, "supervisor", got.Role)

	// Bad input names the field and changes nothing.
	grace = got
	path := "/v1/admin/users/" + grace.ID
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"nickname":"G"}`, "nickname")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"name":"G","capacity":"many"}`, "capacity")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"capacity":101}`, "capacity")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"role":"root"}`, "role")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"permissions":["fly"]}`, "permissions")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"permissions":"moderate"}`, "permissions")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"languages":["klingon"]}`, "languages")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"email":"not an address"}`, "email")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"queue_ids":["nope"]}`, "queue_ids[0]")
	e.adminInvalid(t, admin, http.MethodPatch, path, fmt.Sprintf(`{"name":"Changed","queue_ids":[%q]}`, foreignQueue.ID), "queue_ids[0]")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"password":"short"}`, "password")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{}`, "body")
	e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/users", `{"email":"x@example.com","name":"X","capacity":2.5}`, "capacity")
	e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/users", `{"email":"x@example.com","name":"X","skill_ids":[1]}`, "skill_ids")
	e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/users", `{"email":"x@example.com"}`, "name")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &got))
	require.Equal(t, grace, got)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/users", "", &l))
	require.Len(t, l.Items, 4)

	// A password reset by an admin ends the user's sessions.
	require.Equal(t, http.StatusOK, e.do(t, graceToken, http.MethodGet, "/v1/me", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, path, `{"password":"another fine passphrase"}`, &got))
	require.Equal(t, http.StatusUnauthorized, e.do(t, graceToken, http.MethodGet, "/v1/me", "", nil))
	status, _ = e.adminLogin(t, b, "grace@example.com", "correct horse battery")
	require.Equal(t, http.StatusUnauthorized, status)
	status, graceToken = e.adminLogin(t, b, "grace@example.com", "another fine passphrase")
	require.Equal(t, http.StatusOK, status)

	// An agent may not write users.
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPost, "/v1/admin/users", `{"email":"x@example.com","name":"X"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPatch, "/v1/admin/users/"+agentUser.ID.String(), `{"role":"admin"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodDelete, path, "", nil))

	// Another tenant's admin: exactly like a missing id.
	for _, m := range []struct{ method, body string }{{http.MethodGet, ""}, {http.MethodPatch, `{"name":"Mine"}`}, {http.MethodDelete, ""}} {
		var missing, foreign problemBody
		require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, m.method, "/v1/admin/users/"+uuid.NewString(), m.body, &missing))
		require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, m.method, path, m.body, &foreign))
		require.Equal(t, missing, foreign)
	}
	require.Equal(t, http.StatusOK, e.do(t, other.APIToken.Token, http.MethodGet, "/v1/admin/users", "", &l))
	require.Empty(t, l.Items)

	// Disable: the user's token stops working at once, and they cannot
	// log in again.
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, path, "", nil))
	require.Equal(t, http.StatusUnauthorized, e.do(t, graceToken, http.MethodGet, "/v1/me", "", nil))
	status, _ = e.adminLogin(t, b, "grace@example.com", "another fine passphrase")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &got))
	require.True(t, got.Disabled)
}

func TestAdminCannotGrantMoreThanTheyHold(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	boss, adminTok := e.userToken(t, b, "admin")
	_, peer := e.userToken(t, b, "admin")

	// A supervisor who may manage users.
	var hr adminUser
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users",
		`{"email":"hr@example.com","name":"HR","role":"supervisor","permissions":["manage_users"],"password":"correct horse battery"}`, &hr))
	status, hrTok := e.adminLogin(t, b, "hr@example.com", "correct horse battery")
	require.Equal(t, http.StatusOK, status)

	users := "/v1/admin/users"
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodPost, users, `{"email":"a@example.com","name":"A","role":"admin"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodPost, users, `{"email":"a@example.com","name":"A","permissions":["manage_settings"]}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodPatch, users+"/"+hr.ID, `{"role":"admin"}`, nil), "not even for oneself")
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodPatch, users+"/"+hr.ID, `{"permissions":["manage_users","manage_settings"]}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodPost, "/v1/admin/api-tokens", `{"name":"escape","role":"admin"}`, nil))
	// Nor act on someone who holds more: resetting an admin's password
	// would be the same escalation.
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodPatch, users+"/"+boss.ID.String(), `{"password":"i am the admin now"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, hrTok, http.MethodDelete, users+"/"+boss.ID.String(), "", nil))
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodGet, "/v1/me", "", nil))
	// What they hold, they may grant.
	var a adminUser
	require.Equal(t, http.StatusCreated, e.do(t, hrTok, http.MethodPost, users,
		`{"email":"a@example.com","name":"A","role":"supervisor","permissions":["manage_users"]}`, &a))
	require.Equal(t, http.StatusOK, e.do(t, hrTok, http.MethodPatch, users+"/"+a.ID, `{"role":"agent","permissions":[]}`, &a))
	require.Equal(t, "agent", a.Role)
	var me adminUser
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, users+"/"+hr.ID, "", &me))
	require.Equal(t, "supervisor", me.Role)
	require.Equal(t, []string{"manage_users"}, me.Permissions)

	// Nobody disables themselves; another admin can.
	var prob problemBody
	require.Equal(t, http.StatusConflict, e.do(t, adminTok, http.MethodDelete, users+"/"+boss.ID.String(), "", &prob))
	require.Contains(t, prob.Detail, "yourself")
	require.Equal(t, http.StatusOK, e.do(t, adminTok, http.MethodGet, "/v1/me", "", nil))
	require.Equal(t, http.StatusNoContent, e.do(t, peer, http.MethodDelete, users+"/"+boss.ID.String(), "", nil))
	require.Equal(t, http.StatusUnauthorized, e.do(t, adminTok, http.MethodGet, "/v1/me", "", nil))
}

func TestAdminTagLists(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	admin := b.APIToken.Token
	_, agent := e.userToken(t, b, "agent")
	base := "/v1/admin/tag-lists"

	var reason adminTagList
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, base, `{"name":"Reason","values":["late","broken"],"mandatory":true}`, &reason))
	require.Equal(t, adminTagList{ID: reason.ID, Name: "Reason", Values: []string{"late", "broken"}, Mandatory: true}, reason)
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, base, `{"name":"Mood","values":["happy"]}`, nil))

	var l list[adminTagList]
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, base, "", &l))
	require.Len(t, l.Items, 2)
	require.Equal(t, "Reason", l.Items[0].Name)
	require.False(t, l.Items[1].Mandatory)
	var got adminTagList
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, base+"/"+reason.ID, "", &got))
	require.Equal(t, reason, got)

	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, base+"/"+reason.ID, `{"values":["late","broken","lost"]}`, &got))
	require.Equal(t, []string{"late", "broken", "lost"}, got.Values)
	require.True(t, got.Mandatory, "what the body does not name stays")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, base+"/"+reason.ID, `{"mandatory":false,"name":"Cause"}`, &got))
	require.False(t, got.Mandatory)
	require.Equal(t, "Cause", got.Name)
	reason = got

	// Bad input names the field and changes nothing.
	path := base + "/" + reason.ID
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"Mood","values":["x"]}`, "name")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"name":"Mood"}`, "name")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"New","values":[]}`, "values")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"New"}`, "values")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"values":["a","a"]}`, "values[1]")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"values":["a"," "]}`, "values[1]")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"values":["`+strings.Repeat("v", 201)+`"]}`, "values[0]")
	many := make([]string, 501)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	manyJSON, err := json.Marshal(map[string]any{"values": many})
	require.NoError(t, err)
	e.adminInvalid(t, admin, http.MethodPatch, path, string(manyJSON), "values")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"values":"late"}`, "values")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"values":[1]}`, "values")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"mandatory":"yes"}`, "mandatory")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{"name":"X","colour":"red"}`, "colour")
	e.adminInvalid(t, admin, http.MethodPatch, path, `{}`, "body")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &got))
	require.Equal(t, reason, got)
	// 500 values is the most.
	manyJSON, err = json.Marshal(map[string]any{"values": many[:500]})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, path, string(manyJSON), &got))
	require.Len(t, got.Values, 500)

	// Agents read, but do not write.
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPost, base, `{"name":"Mine","values":["x"]}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPatch, path, `{"mandatory":true}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodDelete, path, "", nil))

	// Another tenant's admin: exactly like a missing id.
	for _, m := range []struct{ method, body string }{{http.MethodGet, ""}, {http.MethodPatch, `{"mandatory":true}`}, {http.MethodDelete, ""}} {
		var missing, foreign problemBody
		require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, m.method, base+"/"+uuid.NewString(), m.body, &missing))
		require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, m.method, path, m.body, &foreign))
		require.Equal(t, missing, foreign)
	}

	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, path, "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, path, "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &l))
	require.Len(t, l.Items, 1)
}

func TestAdminAPITokens(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	admin := b.APIToken.Token
	_, agent := e.userToken(t, b, "agent")
	base := "/v1/admin/api-tokens"

	var tok adminToken
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, base, `{"name":"CRM","role":"supervisor","permissions":["manage_settings"]}`, &tok))
	require.True(t, strings.HasPrefix(tok.Token, "sbt_"), tok.Token)
	require.Equal(t, "supervisor", tok.Role)
	require.Equal(t, []string{"manage_settings"}, tok.Permissions)
	require.False(t, tok.Revoked)

	// It works as a bearer token, with its role and permissions.
	var me struct {
		Role        string   `json:"role"`
		TokenID     string   `json:"token_id"`
		Permissions []string `json:"permissions"`
	}
	require.Equal(t, http.StatusOK, e.do(t, tok.Token, http.MethodGet, "/v1/me", "", &me))
	require.Equal(t, "supervisor", me.Role)
	require.Equal(t, tok.ID, me.TokenID)
	require.Contains(t, me.Permissions, "manage_settings")
	require.NotContains(t, me.Permissions, "manage_users")
	require.Equal(t, http.StatusCreated, e.do(t, tok.Token, http.MethodPost, "/v1/admin/queues", `{"name":"From CRM"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, tok.Token, http.MethodGet, base, "", nil))

	// Lists never show the token.
	var raw struct {
		Items []map[string]any `json:"items"`
	}
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &raw))
	require.Len(t, raw.Items, 2)
	for _, item := range raw.Items {
		require.NotContains(t, item, "token")
		require.NotContains(t, item, "token_hash")
		require.Contains(t, item, "created_at")
	}
	var l list[adminToken]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &l))
	require.Equal(t, b.APIToken.ID.String(), l.Items[0].ID)
	require.Equal(t, "admin", l.Items[0].Role)
	require.Equal(t, tok.ID, l.Items[1].ID)
	require.Equal(t, "CRM", l.Items[1].Name)

	// Bad input names the field and creates nothing.
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"X","role":"root"}`, "role")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"X","permissions":["fly"]}`, "permissions")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"X","permissions":"all"}`, "permissions")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":"X","token":"sbt_mine"}`, "token")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":""}`, "name")
	e.adminInvalid(t, admin, http.MethodPost, base, `{"name":true}`, "name")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &l))
	require.Len(t, l.Items, 2)

	// Agents may not, nor another tenant.
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, base, "", nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPost, base, `{"name":"Mine"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodDelete, base+"/"+tok.ID, "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, http.MethodDelete, base+"/"+tok.ID, "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, http.MethodDelete, base+"/"+uuid.NewString(), "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tok.Token, http.MethodGet, "/v1/me", "", nil), "another tenant could not revoke it")

	// Revoked, it stops working at once.
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, base+"/"+tok.ID, "", nil))
	require.Equal(t, http.StatusUnauthorized, e.do(t, tok.Token, http.MethodGet, "/v1/me", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, base, "", &l))
	require.True(t, l.Items[1].Revoked)
	require.False(t, l.Items[0].Revoked)
}

func TestAdminChangesAreAnnouncedOnTheConfigTopic(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token

	var q, k adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/queues", `{"name":"Support"}`, &q))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/queues/"+q.ID, `{"name":"Care"}`, nil))
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/skills", `{"name":"German"}`, &k))
	var u adminUser
	body := fmt.Sprintf(`{"email":"ada@example.com","name":"Ada","queue_ids":[%q],"skill_ids":[%q],"password":"correct horse battery"}`, q.ID, k.ID)
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users", body, &u))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/users/"+u.ID, `{"capacity":2}`, nil))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/skills/"+k.ID, "", nil))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/users/"+u.ID, "", nil))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/queues/"+q.ID, "", nil))

	// What each entity went through, in order.
	want := map[string][]string{
		"queue/" + q.ID: {"Support", "Care", "Care deleted"},
		"skill/" + k.ID: {"German", "German deleted"},
		"user/" + u.ID: {
			"Ada cap 5 queues 1 skills 1",
			"Ada cap 2 queues 1 skills 1",
			"Ada cap 2 queues 1 skills 0", // the skill deleted
			"Ada cap 2 queues 1 skills 0 disabled",
			"Ada cap 2 queues 0 skills 0 disabled", // the queue deleted
		},
	}
	got := readConfig(t, e, want, func(key string, ev events.Event) string {
		require.Equal(t, b.Tenant.ID.String(), ev.Tenant)
		switch ev.Type {
		case events.TypeQueue, events.TypeSkill:
			require.Equal(t, map[string]string{"queue": events.TypeQueue, "skill": events.TypeSkill}[strings.Split(key, "/")[0]], ev.Type)
			var x events.Queue
			require.NoError(t, ev.Decode(&x))
			s := x.Name
			if x.Deleted {
				s += " deleted"
			}
			return s
		case events.TypeUser:
			var x events.User
			require.NoError(t, ev.Decode(&x))
			s := fmt.Sprintf("%s cap %d queues %d skills %d", x.Name, x.Capacity, len(x.QueueIDs), len(x.SkillIDs))
			if x.Disabled {
				s += " disabled"
			}
			return s
		default:
			t.Fatalf("unexpected event type %s for %s", ev.Type, key)
			return ""
		}
	})
	require.Equal(t, want, got)
}
