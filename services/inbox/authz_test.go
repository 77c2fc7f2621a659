package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/api"
)

// The authorisation matrix: every route the API registers, called by
//
//   - anonymous: no token (and a token that is not one): 401;
//   - other-tenant-admin: an admin of tenant B, who holds every permission,
//     on tenant A's object: exactly the answer (status and body) that an id
//     naming nothing gets, so that nothing says the object exists; on a
//     collection: B's data and nothing of A's;
//   - agent: an agent of A in queue "Tier 1", without any permission, who
//     cannot see conversations of "Tier 2": 403 or 404, exactly the answer
//     an id naming nothing gets; on an admin collection: 403. Where every
//     user of the tenant may act (contacts, reading queues...), the table
//     says so and the agent succeeds;
//   - teammate (some routes): an agent of "Tier 2", who sees the
//     conversation but is not its assignee nor a supervisor: 403;
//   - right-user: an admin of A: 2xx.
//
// Every refused call must leave the object as it was. A call that succeeds
// is followed by a fresh object, so that the order of the callers does not
// matter; destructive routes always get an object of their own.

// azResp is an answer as it came.
type azResp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r azResp) String() string {
	body := string(r.Body)
	if len(body) > 600 {
		body = body[:600] + "..."
	}
	return fmt.Sprintf("%d %s %s", r.Status, r.Header.Get("Content-Type"), strings.TrimSpace(body))
}

var azClient = &http.Client{Timeout: 30 * time.Second}

// azCall sends a request with a JSON body ("" for none) and returns the
// answer as it came; the answer must match the OpenAPI document (oaCheck).
func azCall(t *testing.T, e env, token, method, path, body string) azResp {
	t.Helper()
	return azCallAs(t, e, token, method, path, "application/json", body)
}

// azCallAs is azCall with the body's Content-Type ("" for none).
func azCallAs(t *testing.T, e env, token, method, path, contentType, body string) azResp {
	t.Helper()
	return azCallWith(t, e, token, method, path, contentType, body)
}

// azCallWith is azCallAs with more headers, name and value pairs.
func azCallWith(t *testing.T, e env, token, method, path, contentType, body string, header ...string) azResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := azClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "%s %s", method, path)
	oaCheck(t, req, resp.StatusCode, resp.Header, raw)
	return azResp{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// azShort shows a request body in a message.
func azShort(body string) string {
	if len(body) > 200 {
		return fmt.Sprintf("%s... (%d bytes)", body[:200], len(body))
	}
	return body
}

// azProblem is a problem details body.
type azProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	State  string `json:"state"`
	Errors []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func (p azProblem) fields() []string {
	out := []string{}
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// azMustProblem checks that r is an application/problem+json of status.
func azMustProblem(t *testing.T, r azResp, status int, what string) azProblem {
	t.Helper()
	require.Equal(t, status, r.Status, "%s answered %s", what, r)
	require.Equal(t, httpx.ContentTypeProblem, r.Header.Get("Content-Type"), "%s answered %s", what, r)
	var p azProblem
	require.NoError(t, json.Unmarshal(r.Body, &p), "%s answered %s", what, r)
	require.Equal(t, status, p.Status, "%s: the problem's status is not the answer's: %s", what, r)
	return p
}

// azIDs returns the ids of the items of a list.
func azIDs(t *testing.T, r azResp) []string {
	t.Helper()
	var l struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &l), "not a list: %s", r)
	out := []string{}
	for _, it := range l.Items {
		out = append(out, it.ID)
	}
	return out
}

// azID returns the id of an object.
func azID(t *testing.T, r azResp) string {
	t.Helper()
	var v struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &v), "not an object: %s", r)
	require.NotEmpty(t, v.ID, "no id in %s", r)
	return v.ID
}

// azName is a route as a subtest name: "POST /v1/contacts/{id}/merge" is
// "POST_contacts.{id}.merge", so that -run patterns do not split it.
func azName(route string) string {
	method, path, _ := strings.Cut(route, " ")
	return method + " " + strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(path, "/v1"), "/"), "/", ".")
}

func azMethod(route string) string { return strings.Fields(route)[0] }

// azRouter is a Router that registers nothing: the API lists its routes.
type azRouter struct{}

func (azRouter) HandleFunc(string, http.HandlerFunc, ...httpx.RouteOption) {}

// azRegistered lists every route the API registers (GET /v1/stream is only
// registered when there is a stream to serve).
func azRegistered() []string {
	a := api.New(api.Deps{Stream: http.NotFoundHandler()})
	a.Register(azRouter{})
	out := slices.Clone(a.Routes())
	slices.Sort(out)
	return out
}

// azFixture is two tenants and the people of the matrix.
type azFixture struct {
	e          env
	a, b       inbox.Bootstrap
	q1, q2, q3 inbox.Queue
	// admin is A's admin (every permission); agent is in q1 with no
	// permission; mate is in q2 with no permission; other is B's admin.
	admin, agent, mate, other                 string
	adminUser, agentUser, mateUser, otherUser inbox.User
	// pool holds A's conversations not used yet, in no queue, state new.
	pool []string
	// seen is a conversation of q1, which the agent sees.
	seen string
	// bConv is B's conversation.
	bConv string
	// mailbox is A's mailbox, made by the first email conversation.
	mailbox string
	// bFailedMessage is B's reply whose delivery failed (see bFailed).
	bFailedMessage string
}

const azPassword = "correct horse battery" // what env.userToken gives

// azSetup starts the inbox with two tenants and pool conversations in A.
func azSetup(t *testing.T, pool int) *azFixture {
	t.Helper()
	e := start(t)
	fx := &azFixture{e: e, a: e.tenant(t, "Acme"), b: e.tenant(t, "Bravo")}
	fx.q1, fx.q2, fx.q3 = e.queue(t, fx.a, "Tier 1"), e.queue(t, fx.a, "Tier 2"), e.queue(t, fx.a, "Tier 3")
	fx.adminUser, fx.admin = e.userToken(t, fx.a, "admin")
	fx.agentUser, fx.agent = e.userToken(t, fx.a, "agent", fx.q1)
	fx.mateUser, fx.mate = e.userToken(t, fx.a, "agent", fx.q2)
	fx.otherUser, fx.other = e.userToken(t, fx.b, "admin")
	// Short texts: the language detector leaves them alone, so nothing
	// changes the conversations behind the test's back.
	for i := 0; i < pool; i++ {
		e.send(t, fx.a, fmt.Sprintf("az-ev-%d", i), fmt.Sprintf("az-m-%d", i), fmt.Sprintf("az-s-%d", i), fmt.Sprintf("az-u-%d", i), "hi")
	}
	e.send(t, fx.b, "az-ev-b", "az-m-b", "az-s-b", "az-u-b", "hi")
	fx.pool = fx.waitConversations(t, fx.admin, pool)
	fx.bConv = fx.waitConversations(t, fx.other, 1)[0]
	fx.seen = fx.conv(t, fx.q1, "new")
	return fx
}

// waitConversations waits until token sees n conversations and returns them.
func (fx *azFixture) waitConversations(t *testing.T, token string, n int) []string {
	t.Helper()
	var ids []string
	testkit.Eventually(t, 30*time.Second, func() bool {
		r := azCall(t, fx.e, token, http.MethodGet, "/v1/conversations?limit=200", "")
		ids = azIDs(t, r)
		return len(ids) >= n
	}, "%d conversations were not stored", n)
	require.Len(t, ids, n)
	return ids
}

// ok sends a request that must succeed.
func (fx *azFixture) ok(t *testing.T, token, method, path, body string) azResp {
	t.Helper()
	r := azCall(t, fx.e, token, method, path, body)
	require.True(t, r.Status >= 200 && r.Status < 300, "%s %s %s answered %s", method, path, azShort(body), r)
	return r
}

// create creates an object and returns its id.
func (fx *azFixture) create(t *testing.T, token, path, body string) string {
	t.Helper()
	r := azCall(t, fx.e, token, http.MethodPost, path, body)
	require.Equal(t, http.StatusCreated, r.Status, "POST %s %s answered %s", path, azShort(body), r)
	return azID(t, r)
}

// conv takes a conversation of the pool, routes it to q and brings it to
// state: new, offered (to A's admin, by the router's command: see offer),
// assigned (to A's admin) or done.
func (fx *azFixture) conv(t *testing.T, q inbox.Queue, state string) string {
	t.Helper()
	require.NotEmpty(t, fx.pool, "the pool of conversations is used up: make it larger")
	id := fx.pool[0]
	fx.pool = fx.pool[1:]
	p := "/v1/conversations/" + id
	fx.ok(t, fx.admin, http.MethodPost, p+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID))
	switch state {
	case "new":
	case "offered":
		fx.offer(t, q, id)
	case "assigned":
		fx.ok(t, fx.admin, http.MethodPost, p+"/assign", "")
	case "done":
		fx.ok(t, fx.admin, http.MethodPost, p+"/archive", "")
	default:
		t.Fatalf("no state %q here", state)
	}
	return id
}

// firstMessage returns the id of a conversation's first message.
func (fx *azFixture) firstMessage(t *testing.T, token, conv string) string {
	t.Helper()
	ids := azIDs(t, fx.ok(t, token, http.MethodGet, "/v1/conversations/"+conv+"/messages", ""))
	require.NotEmpty(t, ids)
	return ids[0]
}

// upload uploads a file as token and returns the upload's id.
func (fx *azFixture) upload(t *testing.T, token, name, contentType, content string) string {
	t.Helper()
	r := azCallAs(t, fx.e, token, http.MethodPost, "/v1/attachments?filename="+url.QueryEscape(name), contentType, content)
	require.Equal(t, http.StatusCreated, r.Status, "uploading %s answered %s", name, r)
	return azID(t, r)
}

// uploadsSnap is what uploads store: the rows of inbox.uploads and the
// blob store's files.
func (fx *azFixture) uploadsSnap(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	rows, err := fx.e.pool.Query(context.Background(), `SELECT id, tenant_id, name, content_type, size, blob_key FROM inbox.uploads ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		v, err := rows.Values()
		require.NoError(t, err)
		fmt.Fprintln(&b, v...)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, filepath.WalkDir(fx.e.blobDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fmt.Fprintln(&b, path)
		}
		return err
	}))
	return b.String()
}

// emailConv makes an email conversation of A in q, in state (new or
// assigned to A's admin), whose first message has an attachment (a text
// file whose content is "Order 42"); it returns the conversation and that
// message.
func (fx *azFixture) emailConv(t *testing.T, q inbox.Queue, state string) (string, string) {
	t.Helper()
	fx.ensureMailbox(t)
	const list = "/v1/conversations?channel=email&limit=200"
	known := azIDs(t, fx.ok(t, fx.admin, http.MethodGet, list, ""))
	ref, err := fx.e.blobs.Put(context.Background(), fx.a.Tenant.ID.String()+"/mail", strings.NewReader("Order 42"), 1<<10)
	require.NoError(t, err)
	thread := "<" + testkit.RandomName("t-") + "@customer.example>"
	m := events.MessageReceived{TenantID: fx.a.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: fx.mailbox,
		ExternalID: thread, ThreadKey: thread, From: events.Party{Identity: "ada@customer.example"}, Text: "hi", Subject: "Order",
		ReceivedAt: time.Now().UTC(), Attachments: []events.Attachment{{Name: "order.txt", ContentType: "text/plain", Size: ref.Size, BlobKey: ref.Key}}}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, fx.e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	var id string
	testkit.Eventually(t, 30*time.Second, func() bool {
		for _, c := range azIDs(t, fx.ok(t, fx.admin, http.MethodGet, list, "")) {
			if !slices.Contains(known, c) {
				id = c
				return true
			}
		}
		return false
	}, "the email was not stored")
	p := "/v1/conversations/" + id
	fx.ok(t, fx.admin, http.MethodPost, p+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID))
	switch state {
	case "new":
	case "assigned":
		fx.ok(t, fx.admin, http.MethodPost, p+"/assign", "")
	default:
		t.Fatalf("no state %q here", state)
	}
	return id, fx.firstMessage(t, fx.admin, id)
}

// ensureMailbox returns A's mailbox, made on first use.
func (fx *azFixture) ensureMailbox(t *testing.T) string {
	t.Helper()
	if fx.mailbox == "" {
		fx.mailbox = fx.create(t, fx.admin, "/v1/admin/mailboxes", mailboxBody(testkit.RandomName("support-")+"@acme.example", "imap-pass-s3cret"))
	}
	return fx.mailbox
}

// snap reads paths as A's admin: what a refused call must not change.
func (fx *azFixture) snap(paths ...string) func(t *testing.T) string {
	return func(t *testing.T) string {
		t.Helper()
		var b strings.Builder
		for _, p := range paths {
			r := azCall(t, fx.e, fx.admin, http.MethodGet, p, "")
			fmt.Fprintf(&b, "GET %s: %d %s\n", p, r.Status, r.Body)
		}
		return b.String()
	}
}

func (fx *azFixture) convSnap(id string) func(t *testing.T) string {
	p := "/v1/conversations/" + id
	return fx.snap(p, p+"/messages?limit=200", p+"/audit")
}

// contact creates a contact of A with a fresh chat identity and returns
// its id and that identity.
func (fx *azFixture) contact(t *testing.T, token string) (string, string) {
	t.Helper()
	ident := testkit.RandomName("chat-")
	id := fx.create(t, token, "/v1/contacts", fmt.Sprintf(`{"name":"Grace","identities":[{"channel":"chat","identity":%q}]}`, ident))
	return id, ident
}

// expertQuestion asks, as token, expert a question about conv, sharing
// its messages or not, and returns the question's id.
func (fx *azFixture) expertQuestion(t *testing.T, token, conv, expert string, include bool) string {
	t.Helper()
	return fx.create(t, token, "/v1/conversations/"+conv+"/expert-questions",
		fmt.Sprintf(`{"expert_id":%q,"question":"Is this normal?","include_messages":%t}`, expert, include))
}

// login opens a session of a user; it returns the access and refresh tokens.
func (fx *azFixture) login(t *testing.T, tenant inbox.Bootstrap, email string) (string, string) {
	t.Helper()
	r := fx.ok(t, "", http.MethodPost, "/v1/auth/login", fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, tenant.Tenant.ID, email, azPassword))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken, tok.RefreshToken
}

// browserLogin opens a browser session of a user, as the web console
// does.
func (fx *azFixture) browserLogin(t *testing.T, tenant inbox.Bootstrap, email string) *browser {
	t.Helper()
	br := newBrowser(fx.e)
	r := br.call(t, http.MethodPost, "/v1/auth/session", fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, tenant.Tenant.ID, email, azPassword),
		"Origin", fx.e.base)
	require.Equal(t, http.StatusOK, r.Status, "a browser login answered %s", r)
	require.NotEmpty(t, br.value("sb_session"))
	return br
}

// azTarget is one object of A and how to reach it.
type azTarget struct {
	// path names the object; missing is the same route with an id that
	// names nothing.
	path, missing string
	body          string
	// snap reads what a refused call must leave as it is.
	snap func(t *testing.T) string
}

// azObject is a route that acts on one object of A.
type azObject struct {
	// target creates a fresh object.
	target func(t *testing.T) azTarget
	// agent is what the agent gets: 403, 404 (both exactly as for an id
	// naming nothing), or a 2xx where every user of the tenant may.
	agent int
	// mate, when not 0, is what the teammate gets (403).
	mate int
	// ok is the right user's status.
	ok int
}

// azCalls are the checks of a route that acts on no one object of A:
// lists, creations, the caller's own session, public routes. A nil
// check is a caller that does not apply.
type azCalls struct {
	// path and body are sent without a token: 401.
	path, body string
	// anon replaces the 401 check on public routes.
	anon                func(t *testing.T)
	other, agent, right func(t *testing.T)
}

type azCase struct {
	route string
	obj   *azObject
	calls *azCalls
}

// azMatrix is the table: one case per route. fx may be empty when only
// the routes are wanted; nothing of it is read before a check runs.
func azMatrix(fx *azFixture) []azCase {
	var cases []azCase
	add := func(c azCase) { cases = append(cases, c) }
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	const forbidden, hidden = http.StatusForbidden, http.StatusNotFound
	noBody := func() string { return "" }
	constBody := func(s string) func() string { return func() string { return s } }

	// --- Public routes and the caller's own ---------------------------

	add(azCase{route: "GET /openapi.json", calls: &azCalls{
		// A public document: the same bytes for everyone, whoever asks.
		anon: func(t *testing.T) {
			r := azCall(t, fx.e, "", get, "/openapi.json", "")
			require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
		},
		other: func(t *testing.T) { fx.sameDocument(t, fx.other) },
		agent: func(t *testing.T) { fx.sameDocument(t, fx.agent) },
		right: func(t *testing.T) { fx.sameDocument(t, fx.admin) },
	}})

	add(azCase{route: "POST /v1/auth/login", calls: &azCalls{
		anon: func(t *testing.T) {
			// Whatever is wrong, the answer is the same 401: it never says
			// whether the email, the tenant or the password was wrong.
			users := "/v1/admin/users"
			noPassword := testkit.RandomName("nopw-") + "@example.com"
			fx.create(t, fx.admin, users, fmt.Sprintf(`{"email":%q,"name":"No password"}`, noPassword))
			disabled := testkit.RandomName("gone-") + "@example.com"
			gone := fx.create(t, fx.admin, users, fmt.Sprintf(`{"email":%q,"name":"Gone","password":%q}`, disabled, azPassword))
			fx.ok(t, fx.admin, del, users+"/"+gone, "")
			body := func(tenant, email, password string) string {
				return fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, tenant, email, password)
			}
			a := fx.a.Tenant.ID.String()
			ref := azCall(t, fx.e, "", post, "/v1/auth/login", body(a, testkit.RandomName("nobody-")+"@example.com", azPassword))
			azMustProblem(t, ref, http.StatusUnauthorized, "login with an unknown email")
			require.Contains(t, ref.Header.Get("WWW-Authenticate"), "Bearer")
			for _, c := range []struct{ name, body string }{
				{"wrong password", body(a, fx.adminUser.Email, "wrong horse battery")},
				{"user without a password", body(a, noPassword, azPassword)},
				{"disabled user", body(a, disabled, azPassword)},
				{"user of another tenant", body(a, fx.otherUser.Email, azPassword)},
				{"unknown tenant", body(uuid.NewString(), fx.adminUser.Email, azPassword)},
			} {
				r := azCall(t, fx.e, "", post, "/v1/auth/login", c.body)
				require.Equal(t, ref.Status, r.Status, "%s answered %s, an unknown email %s", c.name, r, ref)
				require.Equal(t, string(ref.Body), string(r.Body), "%s is told apart from an unknown email", c.name)
				require.Equal(t, ref.Header.Get("WWW-Authenticate"), r.Header.Get("WWW-Authenticate"), c.name)
			}
		},
		right: func(t *testing.T) {
			access, refresh := fx.login(t, fx.a, fx.adminUser.Email)
			require.NotEmpty(t, refresh)
			fx.ok(t, access, get, "/v1/me", "")
		},
	}})

	add(azCase{route: "POST /v1/auth/refresh", calls: &azCalls{
		anon: func(t *testing.T) {
			refresh := func(token string) azResp {
				return azCall(t, fx.e, "", post, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, token))
			}
			ref := refresh("sbr_" + strings.Repeat("0", 43))
			azMustProblem(t, ref, http.StatusUnauthorized, "refresh with a made-up token")
			access, _ := fx.login(t, fx.a, fx.adminUser.Email)
			_, rotated := fx.login(t, fx.a, fx.adminUser.Email)
			fx.ok(t, "", post, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, rotated))
			goneUser := testkit.RandomName("gone-") + "@example.com"
			gone := fx.create(t, fx.admin, "/v1/admin/users", fmt.Sprintf(`{"email":%q,"name":"Gone","password":%q}`, goneUser, azPassword))
			_, goneRefresh := fx.login(t, fx.a, goneUser)
			fx.ok(t, fx.admin, del, "/v1/admin/users/"+gone, "")
			for _, c := range []struct{ name, token string }{
				{"an access token", access},
				{"an API token", fx.a.APIToken.Token},
				{"a refresh token already used", rotated},
				{"the refresh token of a disabled user", goneRefresh},
			} {
				r := refresh(c.token)
				require.Equal(t, ref.Status, r.Status, "%s answered %s", c.name, r)
				require.Equal(t, string(ref.Body), string(r.Body), "%s is told apart from a made-up token", c.name)
			}
		},
		right: func(t *testing.T) {
			_, refresh := fx.login(t, fx.a, fx.adminUser.Email)
			r := fx.ok(t, "", post, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, refresh))
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &tok))
			fx.ok(t, tok.AccessToken, get, "/v1/me", "")
		},
	}})

	// Logout ends the caller's own session: anyone with one may, and it
	// touches no one else's.
	logout := func(t *testing.T, tenant inbox.Bootstrap, email string) {
		access, _ := fx.login(t, tenant, email)
		r := azCall(t, fx.e, access, post, "/v1/auth/logout", "")
		require.Equal(t, http.StatusNoContent, r.Status, "answered %s", r)
		azMustProblem(t, azCall(t, fx.e, access, get, "/v1/me", ""), http.StatusUnauthorized, "a logged-out session")
		for _, tok := range []string{fx.admin, fx.agent, fx.other} {
			fx.ok(t, tok, get, "/v1/me", "")
		}
	}
	add(azCase{route: "POST /v1/auth/logout", calls: &azCalls{path: "/v1/auth/logout",
		other: func(t *testing.T) { logout(t, fx.b, fx.otherUser.Email) },
		agent: func(t *testing.T) { logout(t, fx.a, fx.agentUser.Email) },
		right: func(t *testing.T) { logout(t, fx.a, fx.adminUser.Email) },
	}})

	// The browser session: the same rules, the tokens in cookies.
	browserMe := func(t *testing.T, br *browser, tenant inbox.Bootstrap, user inbox.User) {
		var m struct {
			TenantID string `json:"tenant_id"`
			UserID   string `json:"user_id"`
		}
		r := br.call(t, get, "/v1/me", "")
		require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
		require.NoError(t, json.Unmarshal(r.Body, &m))
		require.Equal(t, tenant.Tenant.ID.String(), m.TenantID)
		require.Equal(t, user.ID.String(), m.UserID)
	}
	add(azCase{route: "POST /v1/auth/session", calls: &azCalls{
		anon: func(t *testing.T) {
			// Whatever is wrong, the same 401 as POST /v1/auth/login's, and
			// no cookie.
			body := func(tenant, email string) string {
				return fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, tenant, email, azPassword)
			}
			a := fx.a.Tenant.ID.String()
			ref := azCall(t, fx.e, "", post, "/v1/auth/login", body(a, testkit.RandomName("nobody-")+"@example.com"))
			for _, c := range []struct{ name, body string }{
				{"unknown email", body(a, testkit.RandomName("nobody-")+"@example.com")},
				{"wrong password", strings.Replace(body(a, fx.adminUser.Email), "correct horse", "wrong horse", 1)},
				{"user of another tenant", body(a, fx.otherUser.Email)},
				{"unknown tenant", body(uuid.NewString(), fx.adminUser.Email)},
			} {
				r := azCall(t, fx.e, "", post, "/v1/auth/session", c.body)
				require.Equal(t, ref.Status, r.Status, "%s answered %s", c.name, r)
				require.Equal(t, string(ref.Body), string(r.Body), c.name)
				require.Empty(t, setCookies(r), "%s set cookies", c.name)
			}
		},
		other: func(t *testing.T) { browserMe(t, fx.browserLogin(t, fx.b, fx.otherUser.Email), fx.b, fx.otherUser) },
		agent: func(t *testing.T) { browserMe(t, fx.browserLogin(t, fx.a, fx.agentUser.Email), fx.a, fx.agentUser) },
		right: func(t *testing.T) { browserMe(t, fx.browserLogin(t, fx.a, fx.adminUser.Email), fx.a, fx.adminUser) },
	}})

	refreshed := func(t *testing.T, tenant inbox.Bootstrap, user inbox.User) {
		br := fx.browserLogin(t, tenant, user.Email)
		r := br.send(t, post, "/v1/auth/session/refresh", "")
		require.Equal(t, http.StatusOK, r.Status, "answered %s", r)
		browserMe(t, br, tenant, user)
	}
	add(azCase{route: "POST /v1/auth/session/refresh", calls: &azCalls{
		anon: func(t *testing.T) {
			refresh := func(value string) azResp {
				br := newBrowser(fx.e)
				br.cookies["sb_csrf"] = &http.Cookie{Name: "sb_csrf", Value: "x", Path: "/"}
				if value != "" {
					br.cookies["sb_refresh"] = &http.Cookie{Name: "sb_refresh", Value: value, Path: "/"}
				}
				return br.send(t, post, "/v1/auth/session/refresh", "")
			}
			azMustProblem(t, refresh(""), http.StatusUnauthorized, "a refresh without a cookie")
			ref := refresh("sbr_" + strings.Repeat("0", 43))
			azMustProblem(t, ref, http.StatusUnauthorized, "a refresh with a made-up cookie")
			access, _ := fx.login(t, fx.a, fx.adminUser.Email)
			for _, c := range []struct{ name, token string }{
				{"an access token", access},
				{"an API token", fx.a.APIToken.Token},
			} {
				r := refresh(c.token)
				require.Equal(t, ref.Status, r.Status, "%s answered %s", c.name, r)
				require.Equal(t, string(ref.Body), string(r.Body), "%s is told apart from a made-up token", c.name)
			}
		},
		other: func(t *testing.T) { refreshed(t, fx.b, fx.otherUser) },
		agent: func(t *testing.T) { refreshed(t, fx.a, fx.agentUser) },
		right: func(t *testing.T) { refreshed(t, fx.a, fx.adminUser) },
	}})

	// A browser logout ends its own session and no one else's.
	browserLogout := func(t *testing.T, tenant inbox.Bootstrap, user inbox.User) {
		br := fx.browserLogin(t, tenant, user.Email)
		access := br.value("sb_session")
		r := br.send(t, del, "/v1/auth/session", "")
		require.Equal(t, http.StatusNoContent, r.Status, "answered %s", r)
		azMustProblem(t, azCall(t, fx.e, access, get, "/v1/me", ""), http.StatusUnauthorized, "a logged-out browser session")
		for _, tok := range []string{fx.admin, fx.agent, fx.other} {
			fx.ok(t, tok, get, "/v1/me", "")
		}
	}
	add(azCase{route: "DELETE /v1/auth/session", calls: &azCalls{path: "/v1/auth/session",
		other: func(t *testing.T) { browserLogout(t, fx.b, fx.otherUser) },
		agent: func(t *testing.T) { browserLogout(t, fx.a, fx.agentUser) },
		right: func(t *testing.T) { browserLogout(t, fx.a, fx.adminUser) },
	}})

	me := func(t *testing.T, token string, tenant inbox.Bootstrap, user inbox.User) {
		var m struct {
			TenantID string `json:"tenant_id"`
			UserID   string `json:"user_id"`
		}
		require.NoError(t, json.Unmarshal(fx.ok(t, token, get, "/v1/me", "").Body, &m))
		require.Equal(t, tenant.Tenant.ID.String(), m.TenantID)
		require.Equal(t, user.ID.String(), m.UserID)
	}
	add(azCase{route: "GET /v1/me", calls: &azCalls{path: "/v1/me",
		other: func(t *testing.T) { me(t, fx.other, fx.b, fx.otherUser) },
		agent: func(t *testing.T) { me(t, fx.agent, fx.a, fx.agentUser) },
		right: func(t *testing.T) { me(t, fx.admin, fx.a, fx.adminUser) },
	}})

	// Presence and heartbeats are the caller's own: every user reads and
	// sets theirs, and touches no one else's.
	presence := func(t *testing.T, token string) azPresence {
		var p azPresence
		require.NoError(t, json.Unmarshal(fx.ok(t, token, get, "/v1/me/presence", "").Body, &p))
		return p
	}
	// setPresence sets token's presence and checks that the others' did
	// not change.
	setPresence := func(t *testing.T, token, status string, others ...string) {
		before := make([]string, len(others))
		for i, o := range others {
			before[i] = presence(t, o).chosen()
		}
		var p azPresence
		require.NoError(t, json.Unmarshal(fx.ok(t, token, put, "/v1/me/presence", fmt.Sprintf(`{"status":%q}`, status)).Body, &p))
		require.Equal(t, status, p.Status)
		require.Equal(t, status, presence(t, token).Status)
		for i, o := range others {
			require.Equal(t, before[i], presence(t, o).chosen(), "setting one's presence changed another's")
		}
	}
	add(azCase{route: "GET /v1/me/presence", calls: &azCalls{path: "/v1/me/presence",
		other: func(t *testing.T) {
			setPresence(t, fx.admin, "online")
			setPresence(t, fx.other, "away", fx.admin)
			require.Equal(t, "away", presence(t, fx.other).Status)
			require.Equal(t, "online", presence(t, fx.admin).Status, "B's admin's presence shows as A's")
		},
		agent: func(t *testing.T) { presence(t, fx.agent) },
		right: func(t *testing.T) { presence(t, fx.admin) },
	}})
	add(azCase{route: "PUT /v1/me/presence", calls: &azCalls{path: "/v1/me/presence", body: `{"status":"online"}`,
		other: func(t *testing.T) { setPresence(t, fx.other, "online", fx.admin, fx.agent) },
		agent: func(t *testing.T) { setPresence(t, fx.agent, "away", fx.admin, fx.mate) },
		right: func(t *testing.T) { setPresence(t, fx.admin, "away", fx.agent, fx.mate) },
	}})
	beat := func(t *testing.T, token string, others ...string) {
		before := make([]string, len(others))
		for i, o := range others {
			before[i] = presence(t, o).chosen()
		}
		r := azCall(t, fx.e, token, post, "/v1/me/heartbeat", "")
		require.Equal(t, http.StatusNoContent, r.Status, "answered %s", r)
		require.True(t, presence(t, token).Connected, "a heartbeat did not make its user connected")
		for i, o := range others {
			require.Equal(t, before[i], presence(t, o).chosen(), "a heartbeat changed another's presence")
		}
	}
	add(azCase{route: "POST /v1/me/heartbeat", calls: &azCalls{path: "/v1/me/heartbeat",
		other: func(t *testing.T) { beat(t, fx.other, fx.admin) },
		agent: func(t *testing.T) { beat(t, fx.agent, fx.admin) },
		right: func(t *testing.T) { beat(t, fx.admin, fx.agent) },
	}})

	// --- Conversations ------------------------------------------------

	add(azCase{route: "GET /v1/conversations", calls: &azCalls{path: "/v1/conversations",
		other: func(t *testing.T) { fx.separate(t, "/v1/conversations?limit=200", fx.bConv) },
		agent: func(t *testing.T) {
			x := fx.conv(t, fx.q2, "new")
			ids := azIDs(t, fx.ok(t, fx.agent, get, "/v1/conversations?limit=200", ""))
			require.Contains(t, ids, fx.seen, "the agent does not see a conversation of their queue")
			require.NotContains(t, ids, x, "the agent sees a conversation of another queue")
		},
		right: func(t *testing.T) {
			x := fx.conv(t, fx.q2, "new")
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/conversations?limit=200", "")), x)
		},
	}})

	unread := func(t *testing.T, conv string) bool {
		var c struct {
			Unread bool `json:"unread"`
		}
		require.NoError(t, json.Unmarshal(fx.ok(t, fx.admin, get, "/v1/conversations/"+conv, "").Body, &c))
		return c.Unread
	}
	updated := func(t *testing.T, token, query string) int {
		var m struct {
			Updated *int `json:"updated"`
		}
		r := fx.ok(t, token, post, "/v1/conversations/mark-read"+query, "")
		require.NoError(t, json.Unmarshal(r.Body, &m))
		require.NotNil(t, m.Updated, "answered %s", r)
		return *m.Updated
	}
	add(azCase{route: "POST /v1/conversations/mark-read", calls: &azCalls{path: "/v1/conversations/mark-read",
		other: func(t *testing.T) {
			x := fx.conv(t, fx.q3, "new")
			require.True(t, unread(t, x))
			updated(t, fx.other, "")
			require.Equal(t, 0, updated(t, fx.other, "?queue_id="+fx.q3.ID.String()), "B marked A's conversations read")
			require.True(t, unread(t, x), "B's mark-read reached A's conversation")
		},
		agent: func(t *testing.T) {
			x := fx.conv(t, fx.q3, "new")
			require.Equal(t, 0, updated(t, fx.agent, "?queue_id="+fx.q3.ID.String()), "the agent marked conversations they cannot see")
			updated(t, fx.agent, "")
			require.True(t, unread(t, x), "the agent's mark-read reached a conversation they cannot see")
		},
		right: func(t *testing.T) {
			x := fx.conv(t, fx.q3, "new")
			require.GreaterOrEqual(t, updated(t, fx.admin, "?queue_id="+fx.q3.ID.String()), 1)
			require.False(t, unread(t, x))
		},
	}})

	// conversation is a route on a conversation of q2 in state.
	conversation := func(route, state string, body func() string, mate, ok int) azCase {
		_, path, _ := strings.Cut(route, " ")
		suffix := strings.TrimPrefix(path, "/v1/conversations/{id}")
		return azCase{route: route, obj: &azObject{agent: hidden, mate: mate, ok: ok, target: func(t *testing.T) azTarget {
			id := fx.conv(t, fx.q2, state)
			return azTarget{path: "/v1/conversations/" + id + suffix, missing: "/v1/conversations/" + uuid.NewString() + suffix,
				body: body(), snap: fx.convSnap(id)}
		}}}
	}
	const none = 0
	add(conversation("GET /v1/conversations/{id}", "new", noBody, none, http.StatusOK))
	add(conversation("PATCH /v1/conversations/{id}", "assigned", constBody(`{"locked":true}`), forbidden, http.StatusOK))
	add(conversation("GET /v1/conversations/{id}/messages", "new", noBody, none, http.StatusOK))
	add(conversation("GET /v1/conversations/{id}/audit", "new", noBody, none, http.StatusOK))
	add(conversation("GET /v1/conversations/{id}/suggestions", "new", noBody, none, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/assign", "new", noBody, none, http.StatusOK))
	add(conversation("PUT /v1/conversations/{id}/assignees", "new",
		func() string { return fmt.Sprintf(`{"user_ids":[%q]}`, fx.adminUser.ID) }, forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/reply", "assigned", constBody(`{"text":"On it"}`), forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/archive", "assigned", noBody, forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/route", "new",
		func() string { return fmt.Sprintf(`{"queue_id":%q}`, fx.q3.ID) }, none, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/transfer", "assigned",
		func() string { return fmt.Sprintf(`{"queue_id":%q}`, fx.q3.ID) }, forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/release", "assigned", noBody, forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/complete", "assigned", constBody(`{"disposition":"solved"}`), forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/resume", "done", noBody, none, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/defer", "assigned",
		func() string {
			return fmt.Sprintf(`{"until":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		}, forbidden, http.StatusOK))
	// An offer is answered by its agent only (A's admin here): the
	// teammate, who sees it, is told it is offered to someone else.
	add(conversation("POST /v1/conversations/{id}/accept", "offered", noBody, http.StatusConflict, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/reject", "offered", noBody, http.StatusConflict, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/bot", "assigned", constBody(`{"action":"block"}`), forbidden, http.StatusOK))

	// Help from others: asking and handing over are the assignee's or a
	// supervisor's; answering needs answer_help_requests (refused before
	// anything is looked up); taking back from the external agent is the
	// sender's (A's admin here) or a supervisor's.
	add(conversation("GET /v1/conversations/{id}/help-requests", "new", noBody, none, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/help-requests", "assigned", constBody(`{"comment":"help"}`), forbidden, http.StatusOK))
	add(conversation("POST /v1/conversations/{id}/external", "assigned", constBody(`{"comment":"legal"}`), forbidden, http.StatusOK))
	add(azCase{route: "POST /v1/conversations/{id}/external/return", obj: &azObject{agent: hidden, mate: forbidden, ok: http.StatusOK,
		target: func(t *testing.T) azTarget {
			id := fx.conv(t, fx.q2, "assigned")
			fx.ok(t, fx.admin, post, "/v1/conversations/"+id+"/external", "")
			const suffix = "/external/return"
			return azTarget{path: "/v1/conversations/" + id + suffix, missing: "/v1/conversations/" + uuid.NewString() + suffix,
				body: `{"comment":"back"}`, snap: fx.convSnap(id)}
		}}})
	add(azCase{route: "POST /v1/conversations/{id}/help-requests/{request_id}/answer", obj: &azObject{agent: forbidden, mate: forbidden, ok: http.StatusOK,
		target: func(t *testing.T) azTarget {
			id := fx.conv(t, fx.q2, "assigned")
			p := "/v1/conversations/" + id
			fx.ok(t, fx.admin, post, p+"/help-requests", `{"comment":"help"}`)
			request := azIDs(t, fx.ok(t, fx.admin, get, p+"/help-requests", ""))[0]
			suffix := "/help-requests/" + request + "/answer"
			snap := fx.convSnap(id)
			return azTarget{path: p + suffix, missing: "/v1/conversations/" + uuid.NewString() + suffix, body: `{"text":"do this"}`,
				snap: func(t *testing.T) string { return snap(t) + fx.snap(p+"/help-requests")(t) }}
		}}})
	// Exports: printing and PDF for whoever sees the conversation;
	// sending by email for manage_data only, the tenant's setting on.
	add(conversation("GET /v1/conversations/{id}/export", "new", noBody, none, http.StatusOK))
	add(azCase{route: "POST /v1/conversations/{id}/send-by-email", obj: &azObject{agent: forbidden, mate: forbidden, ok: http.StatusOK,
		target: func(t *testing.T) azTarget {
			fx.ok(t, fx.admin, put, "/v1/admin/settings/export", fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, fx.ensureMailbox(t)))
			id := fx.conv(t, fx.q2, "new")
			suffix := "/send-by-email"
			return azTarget{path: "/v1/conversations/" + id + suffix, missing: "/v1/conversations/" + uuid.NewString() + suffix,
				body: `{"to":"boss@partner.example","note":"hello"}`, snap: fx.convSnap(id)}
		}}})
	// Any user who sees the conversation may have a message translated.
	add(azCase{route: "POST /v1/messages/{id}/translate", obj: &azObject{agent: hidden, ok: http.StatusAccepted, target: func(t *testing.T) azTarget {
		fx.ok(t, fx.admin, put, "/v1/admin/settings/translation", `{"enabled":true,"url":"https://a-translator.invalid"}`)
		id := fx.conv(t, fx.q2, "new")
		return azTarget{path: "/v1/messages/" + fx.firstMessage(t, fx.admin, id) + "/translate", missing: "/v1/messages/" + uuid.NewString() + "/translate",
			body: `{"to":"de"}`, snap: fx.snap("/v1/conversations/" + id + "/messages")}
	}}})
	add(azCase{route: "PATCH /v1/messages/{id}", obj: &azObject{agent: hidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		id := fx.conv(t, fx.q2, "new")
		return azTarget{path: "/v1/messages/" + fx.firstMessage(t, fx.admin, id), missing: "/v1/messages/" + uuid.NewString(),
			body: `{"language":"en"}`, snap: fx.convSnap(id)}
	}}})

	// --- Ask an expert ------------------------------------------------

	// Asking is an action of the conversation's assignee or a supervisor;
	// whoever sees the conversation lists its questions.
	add(conversation("POST /v1/conversations/{id}/expert-questions", "assigned", func() string {
		return fmt.Sprintf(`{"expert_id":%q,"question":"Is this normal?","include_messages":true}`, fx.agentUser.ID)
	}, forbidden, http.StatusCreated))
	add(conversation("GET /v1/conversations/{id}/expert-questions", "new", noBody, none, http.StatusOK))
	// A user's own questions: those asked of them or by them.
	add(azCase{route: "GET /v1/expert-questions", calls: &azCalls{path: "/v1/expert-questions",
		other: func(t *testing.T) {
			fx.expertQuestion(t, fx.admin, fx.conv(t, fx.q2, "assigned"), fx.agentUser.ID.String(), true)
			bExpert := fx.create(t, fx.other, "/v1/admin/users", fmt.Sprintf(`{"email":%q,"name":"B expert"}`, testkit.RandomName("bx-")+"@example.com"))
			mine := fx.expertQuestion(t, fx.other, fx.bConv, bExpert, true)
			fx.separate(t, "/v1/expert-questions?limit=200", mine)
		},
		agent: func(t *testing.T) {
			theirs := fx.expertQuestion(t, fx.admin, fx.conv(t, fx.q2, "assigned"), fx.agentUser.ID.String(), false)
			other := fx.expertQuestion(t, fx.admin, fx.conv(t, fx.q1, "assigned"), fx.mateUser.ID.String(), false)
			ids := azIDs(t, fx.ok(t, fx.agent, get, "/v1/expert-questions?limit=200", ""))
			require.Contains(t, ids, theirs, "the agent does not see a question asked of them")
			require.NotContains(t, ids, other, "the agent sees a question of others about a conversation they see")
		},
		right: func(t *testing.T) {
			id := fx.expertQuestion(t, fx.admin, fx.conv(t, fx.q2, "assigned"), fx.mateUser.ID.String(), false)
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/expert-questions?role=asker&limit=200", "")), id)
		},
	}})
	// Reading a question: its expert and asker, supervisors who see the
	// conversation; the agent is none of them.
	add(azCase{route: "GET /v1/expert-questions/{id}", obj: &azObject{agent: hidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		conv := fx.conv(t, fx.q2, "assigned")
		id := fx.expertQuestion(t, fx.admin, conv, fx.mateUser.ID.String(), true)
		return azTarget{path: "/v1/expert-questions/" + id, missing: "/v1/expert-questions/" + uuid.NewString(), snap: fx.convSnap(conv)}
	}}})
	// Answering: the expert only (A's admin here); the teammate asked, and
	// reads it, but may not answer.
	add(azCase{route: "POST /v1/expert-questions/{id}/answer", obj: &azObject{agent: hidden, mate: forbidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		conv := fx.conv(t, fx.q2, "new")
		fx.ok(t, fx.mate, post, "/v1/conversations/"+conv+"/assign", "")
		id := fx.expertQuestion(t, fx.mate, conv, fx.adminUser.ID.String(), false)
		path := "/v1/expert-questions/" + id
		return azTarget{path: path + "/answer", missing: "/v1/expert-questions/" + uuid.NewString() + "/answer", body: `{"text":"Yes, it is."}`,
			snap: fx.snap(path, "/v1/conversations/"+conv+"/audit")}
	}}})
	// The excerpt's files: the question's expert and asker only.
	add(azCase{route: "GET /v1/expert-questions/{id}/attachments/{message_id}/{index}", obj: &azObject{agent: hidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		conv, msg := fx.emailConv(t, fx.q2, "assigned")
		id := fx.expertQuestion(t, fx.admin, conv, fx.mateUser.ID.String(), true)
		suffix := "/attachments/" + msg + "/0"
		return azTarget{path: "/v1/expert-questions/" + id + suffix, missing: "/v1/expert-questions/" + uuid.NewString() + suffix, snap: fx.convSnap(conv)}
	}}})

	// --- Attachments ---------------------------------------------------

	add(azCase{route: "GET /v1/messages/{id}/attachments/{index}", obj: &azObject{agent: hidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		conv, msg := fx.emailConv(t, fx.q2, "new")
		return azTarget{path: "/v1/messages/" + msg + "/attachments/0", missing: "/v1/messages/" + uuid.NewString() + "/attachments/0",
			snap: fx.convSnap(conv)}
	}}})
	// Every user of the tenant may upload; an upload is its tenant's only.
	add(azCase{route: "POST /v1/attachments", calls: &azCalls{path: "/v1/attachments?filename=a.txt", body: "hello",
		other: func(t *testing.T) {
			before := fx.uploadsSnap(t)
			theirs := fx.upload(t, fx.other, "b.txt", "text/plain", "B's file")
			require.NotEqual(t, before, fx.uploadsSnap(t), "B's upload was not stored")
			// A's admin attaching B's upload is told exactly what a random
			// id gets.
			conv, _ := fx.emailConv(t, fx.q2, "assigned")
			snap := fx.convSnap(conv)
			before = snap(t)
			reply := func(id string) azResp {
				return azCall(t, fx.e, fx.admin, post, "/v1/conversations/"+conv+"/reply", fmt.Sprintf(`{"text":"here","attachments":[%q]}`, id))
			}
			random := uuid.NewString()
			missing, foreign := reply(random), reply(theirs)
			require.Equal(t, []string{"attachments[0]"}, azMustProblem(t, foreign, http.StatusBadRequest, "attaching B's upload").fields())
			require.Equal(t, strings.ReplaceAll(string(missing.Body), random, "<id>"), strings.ReplaceAll(string(foreign.Body), theirs, "<id>"))
			require.Equal(t, before, snap(t))
		},
		agent: func(t *testing.T) { fx.upload(t, fx.agent, "agent.txt", "text/plain", "from an agent") },
		right: func(t *testing.T) { fx.upload(t, fx.admin, "admin.txt", "text/plain", "from an admin") },
	}})

	// --- Admin: queues, skills, tag lists, users, API tokens ----------

	// settings are the five routes of queues, skills and tag lists: any
	// user reads them, writing needs manage_settings.
	settings := func(base, bodyFmt string) {
		body := func() string { return fmt.Sprintf(bodyFmt, testkit.RandomName("n-")) }
		one := func(suffixBody func() string) func(t *testing.T) azTarget {
			return func(t *testing.T) azTarget {
				id := fx.create(t, fx.admin, base, body())
				return azTarget{path: base + "/" + id, missing: base + "/" + uuid.NewString(), body: suffixBody(),
					snap: fx.snap(base+"/"+id, base+"?limit=200")}
			}
		}
		add(azCase{route: "GET " + base, calls: &azCalls{path: base,
			other: func(t *testing.T) {
				mine := fx.create(t, fx.other, base, body())
				fx.create(t, fx.admin, base, body())
				fx.separate(t, base+"?limit=200", mine)
			},
			agent: func(t *testing.T) {
				id := fx.create(t, fx.admin, base, body())
				require.Contains(t, azIDs(t, fx.ok(t, fx.agent, get, base+"?limit=200", "")), id, "agents read the tenant's %s", base)
			},
			right: func(t *testing.T) { fx.ok(t, fx.admin, get, base, "") },
		}})
		add(azCase{route: "POST " + base, calls: &azCalls{path: base, body: body(),
			other: func(t *testing.T) {
				// The same name as one of A's: names are unique per tenant,
				// so nothing of A shows, and A's list does not change.
				name := testkit.RandomName("n-")
				fx.create(t, fx.admin, base, fmt.Sprintf(bodyFmt, name))
				before := fx.snap(base + "?limit=200")(t)
				fx.create(t, fx.other, base, fmt.Sprintf(bodyFmt, name))
				require.Equal(t, before, fx.snap(base+"?limit=200")(t))
			},
			agent: func(t *testing.T) {
				before := fx.snap(base + "?limit=200")(t)
				azMustProblem(t, azCall(t, fx.e, fx.agent, post, base, body()), forbidden, "an agent creating in "+base)
				require.Equal(t, before, fx.snap(base+"?limit=200")(t))
			},
			right: func(t *testing.T) { fx.create(t, fx.admin, base, body()) },
		}})
		add(azCase{route: "GET " + base + "/{id}", obj: &azObject{agent: http.StatusOK, ok: http.StatusOK, target: one(noBody)}})
		add(azCase{route: "PATCH " + base + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: one(body)}})
		add(azCase{route: "DELETE " + base + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: one(noBody)}})
	}
	settings("/v1/admin/queues", `{"name":%q}`)
	settings("/v1/admin/skills", `{"name":%q}`)

	userBody := func() string {
		return fmt.Sprintf(`{"email":%q,"name":"Linus"}`, testkit.RandomName("user-")+"@example.com")
	}
	user := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, "/v1/admin/users", userBody())
			return azTarget{path: "/v1/admin/users/" + id, missing: "/v1/admin/users/" + uuid.NewString(), body: body(),
				snap: fx.snap("/v1/admin/users/" + id)}
		}
	}
	add(azCase{route: "GET /v1/admin/users", calls: &azCalls{path: "/v1/admin/users",
		other: func(t *testing.T) { fx.separate(t, "/v1/admin/users?limit=200", fx.otherUser.ID.String()) },
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, "/v1/admin/users", ""), forbidden, "an agent listing users")
		},
		right: func(t *testing.T) {
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/admin/users?limit=200", "")), fx.agentUser.ID.String())
		},
	}})
	add(azCase{route: "POST /v1/admin/users", calls: &azCalls{path: "/v1/admin/users", body: userBody(),
		other: func(t *testing.T) {
			// The email of one of A's users: emails are unique per tenant.
			before := fx.snap("/v1/admin/users?limit=200")(t)
			fx.create(t, fx.other, "/v1/admin/users", fmt.Sprintf(`{"email":%q,"name":"Twin"}`, fx.agentUser.Email))
			require.Equal(t, before, fx.snap("/v1/admin/users?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap("/v1/admin/users?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, "/v1/admin/users", userBody()), forbidden, "an agent creating a user")
			require.Equal(t, before, fx.snap("/v1/admin/users?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, "/v1/admin/users", userBody()) },
	}})
	add(azCase{route: "GET /v1/admin/users/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: user(noBody)}})
	add(azCase{route: "PATCH /v1/admin/users/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: user(constBody(`{"name":"Renamed"}`))}})
	add(azCase{route: "DELETE /v1/admin/users/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: user(noBody)}})

	settings("/v1/admin/tag-lists", `{"name":%q,"values":["late","broken"]}`)

	tokenBody := func() string { return fmt.Sprintf(`{"name":%q}`, testkit.RandomName("tok-")) }
	add(azCase{route: "GET /v1/admin/api-tokens", calls: &azCalls{path: "/v1/admin/api-tokens",
		other: func(t *testing.T) { fx.separate(t, "/v1/admin/api-tokens?limit=200", fx.b.APIToken.ID.String()) },
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, "/v1/admin/api-tokens", ""), forbidden, "an agent listing API tokens")
		},
		right: func(t *testing.T) {
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/admin/api-tokens?limit=200", "")), fx.a.APIToken.ID.String())
		},
	}})
	add(azCase{route: "POST /v1/admin/api-tokens", calls: &azCalls{path: "/v1/admin/api-tokens", body: tokenBody(),
		other: func(t *testing.T) {
			before := fx.snap("/v1/admin/api-tokens?limit=200")(t)
			r := azCall(t, fx.e, fx.other, post, "/v1/admin/api-tokens", tokenBody())
			require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
			var tok struct {
				Token string `json:"token"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &tok))
			var m struct {
				TenantID string `json:"tenant_id"`
			}
			require.NoError(t, json.Unmarshal(fx.ok(t, tok.Token, get, "/v1/me", "").Body, &m))
			require.Equal(t, fx.b.Tenant.ID.String(), m.TenantID, "B's admin made a token of another tenant")
			require.Equal(t, before, fx.snap("/v1/admin/api-tokens?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap("/v1/admin/api-tokens?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, "/v1/admin/api-tokens", tokenBody()), forbidden, "an agent creating an API token")
			require.Equal(t, before, fx.snap("/v1/admin/api-tokens?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, "/v1/admin/api-tokens", tokenBody()) },
	}})
	add(azCase{route: "DELETE /v1/admin/api-tokens/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: func(t *testing.T) azTarget {
		id := fx.create(t, fx.admin, "/v1/admin/api-tokens", tokenBody())
		return azTarget{path: "/v1/admin/api-tokens/" + id, missing: "/v1/admin/api-tokens/" + uuid.NewString(),
			snap: fx.snap("/v1/admin/api-tokens?limit=200")}
	}}})

	// Mailboxes need manage_settings, to read too: they show servers and
	// logins.
	const mailboxes = "/v1/admin/mailboxes"
	newMailbox := func() string { return mailboxBody(testkit.RandomName("mb-")+"@example.com", "imap-pass-s3cret") }
	mailbox := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, mailboxes, newMailbox())
			return azTarget{path: mailboxes + "/" + id, missing: mailboxes + "/" + uuid.NewString(), body: body(),
				snap: fx.snap(mailboxes+"/"+id, mailboxes+"?limit=200")}
		}
	}
	add(azCase{route: "GET " + mailboxes, calls: &azCalls{path: mailboxes,
		other: func(t *testing.T) {
			mine := fx.create(t, fx.other, mailboxes, newMailbox())
			fx.create(t, fx.admin, mailboxes, newMailbox())
			fx.separate(t, mailboxes+"?limit=200", mine)
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, mailboxes, ""), forbidden, "an agent listing mailboxes")
		},
		right: func(t *testing.T) {
			id := fx.create(t, fx.admin, mailboxes, newMailbox())
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, mailboxes+"?limit=200", "")), id)
		},
	}})
	add(azCase{route: "POST " + mailboxes, calls: &azCalls{path: mailboxes, body: newMailbox(),
		other: func(t *testing.T) {
			// The address of one of A's: addresses are unique per tenant,
			// so nothing of A shows, and A's list does not change.
			address := testkit.RandomName("twin-") + "@example.com"
			fx.create(t, fx.admin, mailboxes, mailboxBody(address, "a"))
			before := fx.snap(mailboxes + "?limit=200")(t)
			fx.create(t, fx.other, mailboxes, mailboxBody(address, "b"))
			require.Equal(t, before, fx.snap(mailboxes+"?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap(mailboxes + "?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, mailboxes, newMailbox()), forbidden, "an agent creating a mailbox")
			require.Equal(t, before, fx.snap(mailboxes+"?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, mailboxes, newMailbox()) },
	}})
	add(azCase{route: "GET " + mailboxes + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: mailbox(noBody)}})
	add(azCase{route: "PATCH " + mailboxes + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: mailbox(constBody(`{"name":"Renamed","imap":{"password":"changed"}}`))}})
	add(azCase{route: "DELETE " + mailboxes + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: mailbox(noBody)}})

	// SMS accounts need manage_settings, to read too, like mailboxes.
	const smsAccounts = "/v1/admin/sms-accounts"
	newSMSAccount := func() string { return smsAccountBody(smsNumber()) }
	smsAccount := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, smsAccounts, newSMSAccount())
			return azTarget{path: smsAccounts + "/" + id, missing: smsAccounts + "/" + uuid.NewString(), body: body(),
				snap: fx.snap(smsAccounts+"/"+id, smsAccounts+"?limit=200")}
		}
	}
	add(azCase{route: "GET " + smsAccounts, calls: &azCalls{path: smsAccounts,
		other: func(t *testing.T) {
			mine := fx.create(t, fx.other, smsAccounts, newSMSAccount())
			fx.create(t, fx.admin, smsAccounts, newSMSAccount())
			fx.separate(t, smsAccounts+"?limit=200", mine)
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, smsAccounts, ""), forbidden, "an agent listing SMS accounts")
		},
		right: func(t *testing.T) {
			id := fx.create(t, fx.admin, smsAccounts, newSMSAccount())
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, smsAccounts+"?limit=200", "")), id)
		},
	}})
	add(azCase{route: "POST " + smsAccounts, calls: &azCalls{path: smsAccounts, body: newSMSAccount(),
		other: func(t *testing.T) {
			// A number of one of A's: numbers are unique per tenant, so
			// nothing of A shows, and A's list does not change.
			number := smsNumber()
			fx.create(t, fx.admin, smsAccounts, smsAccountBody(number))
			before := fx.snap(smsAccounts + "?limit=200")(t)
			fx.create(t, fx.other, smsAccounts, smsAccountBody(number))
			require.Equal(t, before, fx.snap(smsAccounts+"?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap(smsAccounts + "?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, smsAccounts, newSMSAccount()), forbidden, "an agent creating an SMS account")
			require.Equal(t, before, fx.snap(smsAccounts+"?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, smsAccounts, newSMSAccount()) },
	}})
	add(azCase{route: "GET " + smsAccounts + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: smsAccount(noBody)}})
	add(azCase{route: "PATCH " + smsAccounts + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: smsAccount(constBody(`{"name":"Renamed","auth_token":"` + smsNewToken + `"}`))}})
	add(azCase{route: "DELETE " + smsAccounts + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: smsAccount(noBody)}})

	// Chat channels need manage_settings, to read too, like mailboxes;
	// their secrets are made by the server.
	newChatChannel := func() string { return chatChannelBody(testkit.RandomName("chat-")) }
	chatChannel := func(suffix string, body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, chatChannels, newChatChannel())
			return azTarget{path: chatChannels + "/" + id + suffix, missing: chatChannels + "/" + uuid.NewString() + suffix, body: body(),
				snap: fx.snap(chatChannels+"/"+id, chatChannels+"?limit=200")}
		}
	}
	add(azCase{route: "GET " + chatChannels, calls: &azCalls{path: chatChannels,
		other: func(t *testing.T) {
			fx.create(t, fx.admin, chatChannels, newChatChannel())
			fx.separate(t, chatChannels+"?limit=200", fx.b.ChatChannel.ID.String())
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, chatChannels, ""), forbidden, "an agent listing chat channels")
		},
		right: func(t *testing.T) {
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, chatChannels+"?limit=200", "")), fx.a.ChatChannel.ID.String())
		},
	}})
	add(azCase{route: "POST " + chatChannels, calls: &azCalls{path: chatChannels, body: newChatChannel(),
		other: func(t *testing.T) {
			before := fx.snap(chatChannels + "?limit=200")(t)
			fx.create(t, fx.other, chatChannels, newChatChannel())
			require.Equal(t, before, fx.snap(chatChannels+"?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap(chatChannels + "?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, chatChannels, newChatChannel()), forbidden, "an agent creating a chat channel")
			require.Equal(t, before, fx.snap(chatChannels+"?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, chatChannels, newChatChannel()) },
	}})
	add(azCase{route: "GET " + chatChannels + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: chatChannel("", noBody)}})
	add(azCase{route: "PATCH " + chatChannels + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: chatChannel("", constBody(`{"name":"Renamed","outbound":{"disabled":true}}`))}})
	add(azCase{route: "DELETE " + chatChannels + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: chatChannel("", noBody)}})
	add(azCase{route: "POST " + chatChannels + "/{id}/rotate-secret", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: chatChannel("/rotate-secret", constBody(`{"which":"outbound"}`))}})

	// Failed deliveries need manage_settings: replays go through the
	// tenant's channel accounts.
	const deliveries = "/v1/admin/deliveries"
	add(azCase{route: "GET " + deliveries, calls: &azCalls{path: deliveries,
		other: func(t *testing.T) {
			_, mine := fx.failedMessage(t)
			theirs := fx.bFailed(t)
			own := fx.ok(t, fx.other, get, deliveries+"?limit=200", "")
			require.Contains(t, fx.deliveryIDs(t, fx.other), theirs)
			require.NotContains(t, string(own.Body), mine, "B's admin sees A's failed delivery")
			require.NotContains(t, fx.deliveryIDs(t, fx.admin), theirs, "A's admin sees B's failed delivery")
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, deliveries, ""), forbidden, "an agent listing failed deliveries")
		},
		right: func(t *testing.T) {
			_, mine := fx.failedMessage(t)
			require.Contains(t, fx.deliveryIDs(t, fx.admin), mine)
		},
	}})
	add(azCase{route: "POST " + deliveries + "/replay", calls: &azCalls{path: deliveries + "/replay", body: `{"channel":"chat"}`,
		other: func(t *testing.T) {
			conv, mine := fx.failedMessage(t)
			before := fx.convSnap(conv)(t)
			r := fx.ok(t, fx.other, post, deliveries+"/replay", "")
			require.Equal(t, http.StatusAccepted, r.Status)
			require.Contains(t, fx.deliveryIDs(t, fx.admin), mine, "B's replay reached A's failed delivery")
			require.Equal(t, before, fx.convSnap(conv)(t))
		},
		agent: func(t *testing.T) {
			conv, mine := fx.failedMessage(t)
			before := fx.convSnap(conv)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, deliveries+"/replay", `{"channel":"chat"}`), forbidden, "an agent replaying")
			require.Contains(t, fx.deliveryIDs(t, fx.admin), mine)
			require.Equal(t, before, fx.convSnap(conv)(t))
		},
		right: func(t *testing.T) {
			_, mine := fx.failedMessage(t)
			r := fx.ok(t, fx.admin, post, deliveries+"/replay", `{"channel":"chat"}`)
			require.Equal(t, http.StatusAccepted, r.Status)
			require.NotContains(t, fx.deliveryIDs(t, fx.admin), mine)
		},
	}})
	add(azCase{route: "POST " + deliveries + "/{id}/replay", obj: &azObject{agent: forbidden, ok: http.StatusAccepted, target: func(t *testing.T) azTarget {
		conv, msg := fx.failedMessage(t)
		return azTarget{path: deliveries + "/" + msg + "/replay", missing: deliveries + "/" + uuid.NewString() + "/replay",
			snap: fx.snap("/v1/conversations/"+conv+"/messages?limit=200", "/v1/conversations/"+conv+"/audit")}
	}}})

	// The admin's duties on data need manage_data; each call gets an
	// object of its own (they destroy it).
	erasable := func(suffix string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			conv, msg := fx.emailConv(t, fx.q1, "new")
			return azTarget{path: "/v1/admin/messages/" + msg + suffix, missing: "/v1/admin/messages/" + uuid.NewString() + suffix,
				snap: fx.convSnap(conv)}
		}
	}
	add(azCase{route: "POST /v1/admin/messages/{id}/anonymise", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: erasable("/anonymise")}})
	add(azCase{route: "DELETE /v1/admin/messages/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: erasable("")}})
	add(azCase{route: "DELETE /v1/admin/conversations/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: func(t *testing.T) azTarget {
		conv, _ := fx.emailConv(t, fx.q1, "new")
		return azTarget{path: "/v1/admin/conversations/" + conv, missing: "/v1/admin/conversations/" + uuid.NewString(), snap: fx.convSnap(conv)}
	}}})
	add(azCase{route: "POST /v1/admin/contacts/{id}/erase", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		id, _ := fx.contact(t, fx.admin)
		fx.ok(t, fx.admin, post, "/v1/contacts/"+id+"/notes", `{"body":"prefers email"}`)
		return azTarget{path: "/v1/admin/contacts/" + id + "/erase", missing: "/v1/admin/contacts/" + uuid.NewString() + "/erase",
			snap: fx.snap("/v1/contacts/"+id, "/v1/contacts/"+id+"/notes?limit=200")}
	}}})
	const adminAudit = "/v1/admin/audit"
	add(azCase{route: "GET " + adminAudit, calls: &azCalls{path: adminAudit,
		other: func(t *testing.T) {
			id, _ := fx.contact(t, fx.admin)
			fx.ok(t, fx.admin, post, "/v1/admin/contacts/"+id+"/erase", "")
			require.NotContains(t, string(fx.ok(t, fx.other, get, adminAudit+"?limit=200", "").Body), id, "B's admin sees A's audit log")
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, adminAudit, ""), forbidden, "an agent reading the admin audit log")
		},
		right: func(t *testing.T) {
			id, _ := fx.contact(t, fx.admin)
			fx.ok(t, fx.admin, post, "/v1/admin/contacts/"+id+"/erase", "")
			require.Contains(t, string(fx.ok(t, fx.admin, get, adminAudit+"?limit=200", "").Body), id)
		},
	}})

	// --- Routing at creation: channel accounts' default queues and the
	// routing rules need manage_settings, to read too (rules name
	// customers). Rules made here match none of the test's conversations.

	const channelAccounts = "/v1/admin/channel-accounts"
	add(azCase{route: "GET " + channelAccounts, calls: &azCalls{path: channelAccounts,
		other: func(t *testing.T) { fx.separate(t, channelAccounts+"?limit=200", fx.b.ChatChannel.ID.String()) },
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, channelAccounts, ""), forbidden, "an agent listing channel accounts")
		},
		right: func(t *testing.T) {
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, channelAccounts+"?limit=200", "")), fx.a.ChatChannel.ID.String())
		},
	}})
	add(azCase{route: "PUT " + channelAccounts + "/{id}/routing", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		id := fx.spareChatChannel(t)
		return azTarget{path: channelAccounts + "/" + id + "/routing", missing: channelAccounts + "/" + uuid.NewString() + "/routing",
			body: fmt.Sprintf(`{"default_queue_id":%q}`, fx.q3.ID), snap: fx.snap(channelAccounts + "?limit=200")}
	}}})

	const rules = "/v1/admin/routing-rules"
	ruleBody := func() string { return routingRuleBody(testkit.RandomName("rule-")) }
	rule := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, rules, ruleBody())
			return azTarget{path: rules + "/" + id, missing: rules + "/" + uuid.NewString(), body: body(), snap: fx.snap(rules+"/"+id, rules)}
		}
	}
	add(azCase{route: "GET " + rules, calls: &azCalls{path: rules,
		other: func(t *testing.T) {
			mine := fx.create(t, fx.other, rules, ruleBody())
			fx.create(t, fx.admin, rules, ruleBody())
			fx.separate(t, rules, mine)
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, rules, ""), forbidden, "an agent listing routing rules")
		},
		right: func(t *testing.T) {
			id := fx.create(t, fx.admin, rules, ruleBody())
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, rules, "")), id)
		},
	}})
	add(azCase{route: "POST " + rules, calls: &azCalls{path: rules, body: ruleBody(),
		other: func(t *testing.T) {
			// The name of one of A's: names are unique per tenant.
			name := testkit.RandomName("twin-")
			fx.create(t, fx.admin, rules, routingRuleBody(name))
			before := fx.snap(rules)(t)
			fx.create(t, fx.other, rules, routingRuleBody(name))
			require.Equal(t, before, fx.snap(rules)(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap(rules)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, rules, ruleBody()), forbidden, "an agent creating a routing rule")
			require.Equal(t, before, fx.snap(rules)(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, rules, ruleBody()) },
	}})
	// order lists the rules of token's tenant, reversed.
	order := func(t *testing.T, token string) string {
		ids := azIDs(t, fx.ok(t, token, get, rules, ""))
		slices.Reverse(ids)
		raw, err := json.Marshal(map[string][]string{"ids": ids})
		require.NoError(t, err)
		return string(raw)
	}
	add(azCase{route: "PUT " + rules + "/order", calls: &azCalls{path: rules + "/order", body: `{"ids":[]}`,
		other: func(t *testing.T) {
			fx.create(t, fx.admin, rules, ruleBody())
			fx.create(t, fx.other, rules, ruleBody())
			fx.create(t, fx.other, rules, ruleBody())
			before := fx.snap(rules)(t)
			fx.ok(t, fx.other, put, rules+"/order", order(t, fx.other))
			require.Equal(t, before, fx.snap(rules)(t), "B's admin reordered A's rules")
		},
		agent: func(t *testing.T) {
			fx.create(t, fx.admin, rules, ruleBody())
			before := fx.snap(rules)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, put, rules+"/order", order(t, fx.admin)), forbidden, "an agent reordering routing rules")
			require.Equal(t, before, fx.snap(rules)(t))
		},
		right: func(t *testing.T) {
			fx.create(t, fx.admin, rules, ruleBody())
			before := azIDs(t, fx.ok(t, fx.admin, get, rules, ""))
			after := azIDs(t, fx.ok(t, fx.admin, put, rules+"/order", order(t, fx.admin)))
			slices.Reverse(after)
			require.Equal(t, before, after)
		},
	}})
	add(azCase{route: "GET " + rules + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: rule(noBody)}})
	add(azCase{route: "PATCH " + rules + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: rule(constBody(`{"priority":-4,"conditions":{"keywords":["xyzzy-never","plugh-never"]}}`))}})
	add(azCase{route: "DELETE " + rules + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: rule(noBody)}})

	// --- Templates: admins (manage_settings) write them; every user uses
	// the tenant's and those of the queues they see.
	const templates = "/v1/admin/templates"
	templateBody := func() string {
		return fmt.Sprintf(`{"name":%q,"keyword":%q,"bodies":{"chat":{"text":"Hello {{customer_name}}"}}}`,
			testkit.RandomName("tpl-"), strings.ToLower(testkit.RandomName("kw")))
	}
	template := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, templates, templateBody())
			return azTarget{path: templates + "/" + id, missing: templates + "/" + uuid.NewString(), body: body(), snap: fx.snap(templates+"/"+id, templates+"?limit=200")}
		}
	}
	add(azCase{route: "GET " + templates, calls: &azCalls{path: templates,
		other: func(t *testing.T) {
			mine := fx.create(t, fx.other, templates, templateBody())
			fx.create(t, fx.admin, templates, templateBody())
			fx.separate(t, templates+"?limit=200", mine)
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, templates, ""), forbidden, "an agent listing templates as an admin")
		},
		right: func(t *testing.T) {
			id := fx.create(t, fx.admin, templates, templateBody())
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, templates+"?limit=200", "")), id)
		},
	}})
	add(azCase{route: "POST " + templates, calls: &azCalls{path: templates, body: templateBody(),
		other: func(t *testing.T) {
			before := fx.snap(templates + "?limit=200")(t)
			fx.create(t, fx.other, templates, templateBody())
			require.Equal(t, before, fx.snap(templates+"?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap(templates + "?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, templates, templateBody()), forbidden, "an agent creating a template")
			require.Equal(t, before, fx.snap(templates+"?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, templates, templateBody()) },
	}})
	add(azCase{route: "GET " + templates + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: template(noBody)}})
	add(azCase{route: "PATCH " + templates + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: template(constBody(`{"keyword":null}`))}})
	add(azCase{route: "DELETE " + templates + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: template(noBody)}})
	add(azCase{route: "GET /v1/templates", calls: &azCalls{path: "/v1/templates",
		other: func(t *testing.T) {
			mine := fx.create(t, fx.other, templates, templateBody())
			fx.create(t, fx.admin, templates, templateBody())
			fx.separate(t, "/v1/templates?limit=200", mine)
		},
		agent: func(t *testing.T) {
			// Tier 2's template is not the agent's (Tier 1); the tenant's is.
			q2 := fx.create(t, fx.admin, templates, fmt.Sprintf(`{"name":%q,"queue_id":%q,"bodies":{"chat":{"text":"x"}}}`, testkit.RandomName("tpl-"), fx.q2.ID))
			all := fx.create(t, fx.admin, templates, templateBody())
			ids := azIDs(t, fx.ok(t, fx.agent, get, "/v1/templates?limit=200", ""))
			require.Contains(t, ids, all)
			require.NotContains(t, ids, q2)
		},
		right: func(t *testing.T) {
			id := fx.create(t, fx.admin, templates, templateBody())
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/templates?limit=200", "")), id)
		},
	}})
	add(azCase{route: "GET /v1/shortcuts", calls: &azCalls{path: "/v1/shortcuts?prefix=a",
		other: func(t *testing.T) {
			kw := strings.ToLower(testkit.RandomName("same"))
			aID := fx.create(t, fx.admin, templates, fmt.Sprintf(`{"name":"A","keyword":%q,"bodies":{"chat":{"text":"x"}}}`, kw))
			bID := fx.create(t, fx.other, templates, fmt.Sprintf(`{"name":"B","keyword":%q,"bodies":{"chat":{"text":"x"}}}`, kw))
			r := fx.ok(t, fx.other, get, "/v1/shortcuts?prefix="+kw, "")
			require.Contains(t, string(r.Body), bID)
			require.NotContains(t, string(r.Body), aID, "B's admin expands A's template")
		},
		agent: func(t *testing.T) {
			kw := strings.ToLower(testkit.RandomName("q2kw"))
			q2 := fx.create(t, fx.admin, templates, fmt.Sprintf(`{"name":"Q2","keyword":%q,"queue_id":%q,"bodies":{"chat":{"text":"x"}}}`, kw, fx.q2.ID))
			r := fx.ok(t, fx.agent, get, "/v1/shortcuts?prefix="+kw, "")
			require.NotContains(t, string(r.Body), q2, "the agent expands another queue's template")
		},
		right: func(t *testing.T) {
			kw := strings.ToLower(testkit.RandomName("mine"))
			id := fx.create(t, fx.admin, templates, fmt.Sprintf(`{"name":"Mine","keyword":%q,"bodies":{"chat":{"text":"x"}}}`, kw))
			require.Contains(t, string(fx.ok(t, fx.admin, get, "/v1/shortcuts?prefix="+kw, "").Body), id)
		},
	}})
	add(azCase{route: "POST /v1/conversations/{id}/templates/{template_id}/render", obj: &azObject{agent: hidden, ok: http.StatusOK,
		target: func(t *testing.T) azTarget {
			id := fx.conv(t, fx.q2, "new")
			tpl := fx.create(t, fx.admin, templates, `{"name":"Render","bodies":{"chat":{"text":"Thanks for writing"}}}`)
			return azTarget{path: "/v1/conversations/" + id + "/templates/" + tpl + "/render",
				missing: "/v1/conversations/" + uuid.NewString() + "/templates/" + tpl + "/render", snap: fx.convSnap(id)}
		}}})

	// --- The reply assistant's knowledge base needs manage_settings, to
	// read too; suggestions are a conversation route (below).

	for _, kb := range []struct {
		path, what string
		body       func(t *testing.T, token string) string
		patch      string
	}{
		{kbGroups, "knowledge group", func(*testing.T, string) string { return fmt.Sprintf(`{"name":%q}`, testkit.RandomName("kg-")) },
			`{"name":"Renamed"}`},
		{kbEntries, "knowledge entry", func(t *testing.T, token string) string {
			group := fx.create(t, token, kbGroups, fmt.Sprintf(`{"name":%q}`, testkit.RandomName("kg-")))
			return fmt.Sprintf(`{"group_id":%q,"title":"Refunds","body":"Within 14 days.","keywords":["refund"]}`, group)
		}, `{"title":"Refunds, revised","keywords":[]}`},
	} {
		kb := kb
		object := func(body func() string) func(t *testing.T) azTarget {
			return func(t *testing.T) azTarget {
				id := fx.create(t, fx.admin, kb.path, kb.body(t, fx.admin))
				return azTarget{path: kb.path + "/" + id, missing: kb.path + "/" + uuid.NewString(), body: body(),
					snap: fx.snap(kb.path+"/"+id, kb.path+"?limit=200")}
			}
		}
		add(azCase{route: "GET " + kb.path, calls: &azCalls{path: kb.path,
			other: func(t *testing.T) {
				mine := fx.create(t, fx.other, kb.path, kb.body(t, fx.other))
				fx.create(t, fx.admin, kb.path, kb.body(t, fx.admin))
				fx.separate(t, kb.path+"?limit=200", mine)
			},
			agent: func(t *testing.T) {
				azMustProblem(t, azCall(t, fx.e, fx.agent, get, kb.path, ""), forbidden, "an agent listing a "+kb.what)
			},
			right: func(t *testing.T) {
				id := fx.create(t, fx.admin, kb.path, kb.body(t, fx.admin))
				require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, kb.path+"?limit=200", "")), id)
			},
		}})
		add(azCase{route: "POST " + kb.path, calls: &azCalls{path: kb.path, body: `{"name":"Anonymous"}`,
			other: func(t *testing.T) {
				before := fx.snap(kb.path + "?limit=200")(t)
				fx.create(t, fx.other, kb.path, kb.body(t, fx.other))
				require.Equal(t, before, fx.snap(kb.path+"?limit=200")(t), "B's %s reached A", kb.what)
			},
			agent: func(t *testing.T) {
				body := kb.body(t, fx.admin)
				before := fx.snap(kb.path + "?limit=200")(t)
				azMustProblem(t, azCall(t, fx.e, fx.agent, post, kb.path, body), forbidden, "an agent creating a "+kb.what)
				require.Equal(t, before, fx.snap(kb.path+"?limit=200")(t))
			},
			right: func(t *testing.T) { fx.create(t, fx.admin, kb.path, kb.body(t, fx.admin)) },
		}})
		add(azCase{route: "GET " + kb.path + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: object(noBody)}})
		add(azCase{route: "PATCH " + kb.path + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: object(constBody(kb.patch))}})
		add(azCase{route: "DELETE " + kb.path + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: object(noBody)}})
	}

	// --- Automation: waiting messages, the tenant's settings and each
	// queue's need manage_automation (supervisors and admins), to read too.

	const waiting = "/v1/admin/waiting-messages"
	waitingBody := func() string {
		return fmt.Sprintf(`{"name":%q,"subject":"We are on it","body":"Hello {{customer_name}}","hours":{"new":4}}`, testkit.RandomName("wm-"))
	}
	waitingMessage := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, waiting, waitingBody())
			return azTarget{path: waiting + "/" + id, missing: waiting + "/" + uuid.NewString(), body: body(),
				snap: fx.snap(waiting+"/"+id, waiting+"?limit=200")}
		}
	}
	add(azCase{route: "GET " + waiting, calls: &azCalls{path: waiting,
		other: func(t *testing.T) {
			mine := fx.create(t, fx.other, waiting, waitingBody())
			fx.create(t, fx.admin, waiting, waitingBody())
			fx.separate(t, waiting+"?limit=200", mine)
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, waiting, ""), forbidden, "an agent listing waiting messages")
		},
		right: func(t *testing.T) {
			id := fx.create(t, fx.admin, waiting, waitingBody())
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, waiting+"?limit=200", "")), id)
		},
	}})
	add(azCase{route: "POST " + waiting, calls: &azCalls{path: waiting, body: waitingBody(),
		other: func(t *testing.T) {
			// The name of one of A's: names are unique per tenant.
			name := testkit.RandomName("wm-")
			body := fmt.Sprintf(`{"name":%q,"subject":"s","body":"b","hours":{"external":2}}`, name)
			fx.create(t, fx.admin, waiting, body)
			before := fx.snap(waiting + "?limit=200")(t)
			fx.create(t, fx.other, waiting, body)
			require.Equal(t, before, fx.snap(waiting+"?limit=200")(t))
		},
		agent: func(t *testing.T) {
			before := fx.snap(waiting + "?limit=200")(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, post, waiting, waitingBody()), forbidden, "an agent creating a waiting message")
			require.Equal(t, before, fx.snap(waiting+"?limit=200")(t))
		},
		right: func(t *testing.T) { fx.create(t, fx.admin, waiting, waitingBody()) },
	}})
	add(azCase{route: "GET " + waiting + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: waitingMessage(noBody)}})
	add(azCase{route: "PATCH " + waiting + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: waitingMessage(constBody(`{"hours":{"new":8,"help_requested":1}}`))}})
	add(azCase{route: "DELETE " + waiting + "/{id}", obj: &azObject{agent: forbidden, ok: http.StatusNoContent, target: waitingMessage(noBody)}})

	const automation = "/v1/admin/automation"
	automationBody := func(text string) string {
		return fmt.Sprintf(`{"channels":{"sms":true},"acknowledgement":{"body":%q},"smart_close":{"timeout_minutes":30,"texts":{"chat":{"question":"Anything else?"}}}}`, text)
	}
	add(azCase{route: "GET " + automation, calls: &azCalls{path: automation,
		other: func(t *testing.T) {
			fx.ok(t, fx.admin, put, automation, automationBody("A's own acknowledgement"))
			require.NotContains(t, string(fx.ok(t, fx.other, get, automation, "").Body), "A's own", "B's admin sees A's settings")
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, automation, ""), forbidden, "an agent reading the automation settings")
		},
		right: func(t *testing.T) { fx.ok(t, fx.admin, get, automation, "") },
	}})
	add(azCase{route: "PUT " + automation, calls: &azCalls{path: automation, body: automationBody("x"),
		other: func(t *testing.T) {
			fx.ok(t, fx.admin, put, automation, automationBody("A's"))
			before := fx.snap(automation)(t)
			fx.ok(t, fx.other, put, automation, automationBody("B's"))
			require.Equal(t, before, fx.snap(automation)(t), "B's admin changed A's settings")
		},
		agent: func(t *testing.T) {
			before := fx.snap(automation)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, put, automation, automationBody("agent's")), forbidden, "an agent changing the automation settings")
			require.Equal(t, before, fx.snap(automation)(t))
		},
		right: func(t *testing.T) { fx.ok(t, fx.admin, put, automation, automationBody("admin's")) },
	}})
	const helpSettings = "/v1/admin/settings/help"
	add(azCase{route: "GET " + helpSettings, calls: &azCalls{path: helpSettings,
		other: func(t *testing.T) {
			fx.ok(t, fx.admin, put, helpSettings, `{"answered_priority":9}`)
			require.NotContains(t, string(fx.ok(t, fx.other, get, helpSettings, "").Body), "9", "B's admin sees A's settings")
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, helpSettings, ""), forbidden, "an agent reading the help settings")
		},
		right: func(t *testing.T) { fx.ok(t, fx.admin, get, helpSettings, "") },
	}})
	add(azCase{route: "PUT " + helpSettings, calls: &azCalls{path: helpSettings, body: `{"answered_priority":1}`,
		other: func(t *testing.T) {
			fx.ok(t, fx.admin, put, helpSettings, `{"answered_priority":2}`)
			before := fx.snap(helpSettings)(t)
			fx.ok(t, fx.other, put, helpSettings, `{"answered_priority":-3}`)
			require.Equal(t, before, fx.snap(helpSettings)(t), "B's admin changed A's settings")
		},
		agent: func(t *testing.T) {
			before := fx.snap(helpSettings)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, put, helpSettings, `{"answered_priority":4}`), forbidden, "an agent changing the help settings")
			require.Equal(t, before, fx.snap(helpSettings)(t))
		},
		right: func(t *testing.T) { fx.ok(t, fx.admin, put, helpSettings, `{"answered_priority":5}`) },
	}})
	const exportSettings = "/v1/admin/settings/export"
	add(azCase{route: "GET " + exportSettings, calls: &azCalls{path: exportSettings,
		other: func(t *testing.T) {
			mailbox := fx.ensureMailbox(t)
			fx.ok(t, fx.admin, put, exportSettings, fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, mailbox))
			r := fx.ok(t, fx.other, get, exportSettings, "")
			require.NotContains(t, string(r.Body), mailbox, "B's admin sees A's settings")
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, exportSettings, ""), forbidden, "an agent reading the export settings")
		},
		right: func(t *testing.T) { fx.ok(t, fx.admin, get, exportSettings, "") },
	}})
	add(azCase{route: "PUT " + exportSettings, calls: &azCalls{path: exportSettings, body: `{"send_by_email":false}`,
		other: func(t *testing.T) {
			mailbox := fx.ensureMailbox(t)
			fx.ok(t, fx.admin, put, exportSettings, fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, mailbox))
			before := fx.snap(exportSettings)(t)
			fx.ok(t, fx.other, put, exportSettings, `{"send_by_email":false}`)
			require.Equal(t, before, fx.snap(exportSettings)(t), "B's admin changed A's settings")
		},
		agent: func(t *testing.T) {
			before := fx.snap(exportSettings)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, put, exportSettings, `{"send_by_email":false}`), forbidden, "an agent changing the export settings")
			require.Equal(t, before, fx.snap(exportSettings)(t))
		},
		right: func(t *testing.T) { fx.ok(t, fx.admin, put, exportSettings, `{"send_by_email":false}`) },
	}})
	const translationSettings = "/v1/admin/settings/translation"
	add(azCase{route: "GET " + translationSettings, calls: &azCalls{path: translationSettings,
		other: func(t *testing.T) {
			fx.ok(t, fx.admin, put, translationSettings, `{"enabled":true,"url":"https://a-translator.invalid","api_key":"a-key"}`)
			r := fx.ok(t, fx.other, get, translationSettings, "")
			require.NotContains(t, string(r.Body), "a-translator", "B's admin sees A's settings")
			require.NotContains(t, string(r.Body), "a-key")
		},
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, translationSettings, ""), forbidden, "an agent reading the translation settings")
		},
		right: func(t *testing.T) {
			r := fx.ok(t, fx.admin, get, translationSettings, "")
			require.NotContains(t, string(r.Body), "a-key", "the API key is shown")
		},
	}})
	add(azCase{route: "PUT " + translationSettings, calls: &azCalls{path: translationSettings, body: `{"enabled":false}`,
		other: func(t *testing.T) {
			fx.ok(t, fx.admin, put, translationSettings, `{"enabled":true,"url":"https://a-translator.invalid"}`)
			before := fx.snap(translationSettings)(t)
			fx.ok(t, fx.other, put, translationSettings, `{"enabled":false}`)
			require.Equal(t, before, fx.snap(translationSettings)(t), "B's admin changed A's settings")
		},
		agent: func(t *testing.T) {
			before := fx.snap(translationSettings)(t)
			azMustProblem(t, azCall(t, fx.e, fx.agent, put, translationSettings, `{"enabled":false}`), forbidden, "an agent changing the translation settings")
			require.Equal(t, before, fx.snap(translationSettings)(t))
		},
		right: func(t *testing.T) {
			fx.ok(t, fx.admin, put, translationSettings, `{"enabled":true,"url":"https://a-translator.invalid"}`)
		},
	}})
	queueAutomation := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, "/v1/admin/queues", fmt.Sprintf(`{"name":%q}`, testkit.RandomName("q-")))
			path := "/v1/admin/queues/" + id + "/automation"
			return azTarget{path: path, missing: "/v1/admin/queues/" + uuid.NewString() + "/automation", body: body(), snap: fx.snap(path)}
		}
	}
	add(azCase{route: "GET /v1/admin/queues/{id}/automation", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: queueAutomation(noBody)}})
	add(azCase{route: "PUT /v1/admin/queues/{id}/automation", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: queueAutomation(constBody(`{"inactivity_minutes":20,"acknowledgement":{"body":"Thanks {{customer_name}}"}}`))}})

	// --- Push routing: a queue's routing settings need manage_settings,
	// to read too; the agents' part in routing needs see_all. -----------

	queueRouting := func(body func() string) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id := fx.create(t, fx.admin, "/v1/admin/queues", fmt.Sprintf(`{"name":%q}`, testkit.RandomName("q-")))
			path := "/v1/admin/queues/" + id + "/routing"
			return azTarget{path: path, missing: "/v1/admin/queues/" + uuid.NewString() + "/routing", body: body(), snap: fx.snap(path)}
		}
	}
	add(azCase{route: "GET /v1/admin/queues/{id}/routing", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: queueRouting(noBody)}})
	add(azCase{route: "PUT /v1/admin/queues/{id}/routing", obj: &azObject{agent: forbidden, ok: http.StatusOK,
		target: queueRouting(constBody(`{"mode":"push","offer_seconds":20,"missed_offer_away":true,"weights":{"email":0.5}}`))}})
	add(azCase{route: "GET /v1/routing/agents", calls: &azCalls{path: "/v1/routing/agents",
		other: func(t *testing.T) { fx.separate(t, "/v1/routing/agents", fx.otherUser.ID.String()) },
		agent: func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.agent, get, "/v1/routing/agents", ""), forbidden, "an agent listing the agents in routing")
		},
		right: func(t *testing.T) {
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/routing/agents", "")), fx.agentUser.ID.String())
		},
	}})

	// --- Contacts: every user of the tenant reads and edits them; merging
	// takes assign_others. -------------------------------------------------

	add(azCase{route: "GET /v1/contacts", calls: &azCalls{path: "/v1/contacts",
		other: func(t *testing.T) {
			mine, _ := fx.contact(t, fx.other)
			fx.contact(t, fx.admin)
			fx.separate(t, "/v1/contacts?limit=200", mine)
		},
		agent: func(t *testing.T) {
			id, _ := fx.contact(t, fx.admin)
			require.Contains(t, azIDs(t, fx.ok(t, fx.agent, get, "/v1/contacts?limit=200", "")), id)
		},
		right: func(t *testing.T) {
			id, _ := fx.contact(t, fx.admin)
			require.Contains(t, azIDs(t, fx.ok(t, fx.admin, get, "/v1/contacts?limit=200", "")), id)
		},
	}})
	// Starting a conversation: every user of the tenant may, in one of
	// their queues, toward a contact of the tenant; not an API token; B
	// naming A's mailbox and contact is refused as if they named nothing.
	emailContact := func(t *testing.T) string {
		return fx.create(t, fx.admin, "/v1/contacts", fmt.Sprintf(`{"name":"Ada","identities":[{"channel":"email","identity":%q}]}`,
			testkit.RandomName("ada-")+"@customer.example"))
	}
	startBody := func(mailbox, contact string, q uuid.UUID) string {
		return fmt.Sprintf(`{"channel":"email","contact_id":%q,"channel_account_id":%q,"queue_id":%q,"subject":"Your order","text":"It left."}`, contact, mailbox, q)
	}
	add(azCase{route: "POST /v1/conversations", calls: &azCalls{path: "/v1/conversations", body: `{"channel":"email"}`,
		other: func(t *testing.T) {
			contact := emailContact(t)
			before := fx.snap("/v1/contacts/"+contact, "/v1/conversations?channel=email&limit=200")(t)
			foreign := azCall(t, fx.e, fx.other, post, "/v1/conversations", startBody(fx.ensureMailbox(t), contact, fx.q1.ID))
			nothing := azCall(t, fx.e, fx.other, post, "/v1/conversations", startBody(uuid.NewString(), uuid.NewString(), uuid.New()))
			p := azMustProblem(t, foreign, http.StatusBadRequest, "B naming A's mailbox")
			require.Equal(t, []string{"channel_account_id"}, p.fields())
			require.Equal(t, string(nothing.Body), string(foreign.Body), "A's ids answer like ids naming nothing")
			require.Equal(t, before, fx.snap("/v1/contacts/"+contact, "/v1/conversations?channel=email&limit=200")(t))
		},
		agent: func(t *testing.T) {
			// In their own queue; not in a teammate's, which would take the
			// conversation out of their sight once answered.
			contact := emailContact(t)
			p := azMustProblem(t, azCall(t, fx.e, fx.agent, post, "/v1/conversations", startBody(fx.ensureMailbox(t), contact, fx.q2.ID)),
				http.StatusBadRequest, "an agent starting in another team's queue")
			require.Equal(t, []string{"queue_id"}, p.fields())
			r := azCall(t, fx.e, fx.agent, post, "/v1/conversations", startBody(fx.ensureMailbox(t), contact, fx.q1.ID))
			require.Equal(t, http.StatusCreated, r.Status, "answered %s", r)
			fx.ok(t, fx.agent, get, "/v1/conversations/"+azID(t, r), "")
		},
		right: func(t *testing.T) {
			contact := emailContact(t)
			body := startBody(fx.ensureMailbox(t), contact, fx.q3.ID)
			azMustProblem(t, azCall(t, fx.e, fx.a.APIToken.Token, post, "/v1/conversations", body), http.StatusForbidden, "an API token starting a conversation")
			fx.create(t, fx.admin, "/v1/conversations", body)
		},
	}})
	add(azCase{route: "POST /v1/contacts", calls: &azCalls{path: "/v1/contacts", body: `{"identities":[{"channel":"chat","identity":"x"}]}`,
		other: func(t *testing.T) {
			// The identity of one of A's contacts: identities are unique per
			// tenant, so B gets a contact of its own and A's does not change.
			id, ident := fx.contact(t, fx.admin)
			before := fx.snap("/v1/contacts/" + id)(t)
			mine := fx.create(t, fx.other, "/v1/contacts", fmt.Sprintf(`{"identities":[{"channel":"chat","identity":%q}]}`, ident))
			require.NotEqual(t, id, mine)
			require.Equal(t, before, fx.snap("/v1/contacts/"+id)(t))
		},
		agent: func(t *testing.T) { fx.contact(t, fx.agent) },
		right: func(t *testing.T) { fx.contact(t, fx.admin) },
	}})
	contact := func(suffix string, body func() string, snapNotes bool) func(t *testing.T) azTarget {
		return func(t *testing.T) azTarget {
			id, _ := fx.contact(t, fx.admin)
			snap := []string{"/v1/contacts/" + id}
			if snapNotes {
				snap = append(snap, "/v1/contacts/"+id+"/notes?limit=200")
			}
			return azTarget{path: "/v1/contacts/" + id + suffix, missing: "/v1/contacts/" + uuid.NewString() + suffix,
				body: body(), snap: fx.snap(snap...)}
		}
	}
	add(azCase{route: "GET /v1/contacts/{id}", obj: &azObject{agent: http.StatusOK, ok: http.StatusOK, target: contact("", noBody, false)}})
	add(azCase{route: "PATCH /v1/contacts/{id}", obj: &azObject{agent: http.StatusOK, ok: http.StatusOK,
		target: contact("", constBody(`{"name":"Renamed"}`), false)}})
	add(azCase{route: "POST /v1/contacts/{id}/identities", obj: &azObject{agent: http.StatusCreated, ok: http.StatusCreated,
		target: contact("/identities", func() string {
			return fmt.Sprintf(`{"channel":"chat","identity":%q}`, testkit.RandomName("chat-"))
		}, false)}})
	add(azCase{route: "DELETE /v1/contacts/{id}/identities/{channel}/{identity}", obj: &azObject{agent: http.StatusOK, ok: http.StatusOK,
		target: func(t *testing.T) azTarget {
			id, ident := fx.contact(t, fx.admin)
			fx.ok(t, fx.admin, post, "/v1/contacts/"+id+"/identities", fmt.Sprintf(`{"channel":"sms","identity":"+3361%08d"}`, time.Now().UnixNano()%1e8))
			suffix := "/identities/chat/" + ident
			return azTarget{path: "/v1/contacts/" + id + suffix, missing: "/v1/contacts/" + uuid.NewString() + suffix,
				snap: fx.snap("/v1/contacts/" + id)}
		}}})
	add(azCase{route: "POST /v1/contacts/{id}/merge", obj: &azObject{agent: forbidden, ok: http.StatusOK, target: func(t *testing.T) azTarget {
		keep, _ := fx.contact(t, fx.admin)
		other, _ := fx.contact(t, fx.admin)
		fx.ok(t, fx.admin, post, "/v1/contacts/"+other+"/notes", `{"body":"prefers email"}`)
		return azTarget{path: "/v1/contacts/" + keep + "/merge", missing: "/v1/contacts/" + uuid.NewString() + "/merge",
			body: fmt.Sprintf(`{"contact_id":%q}`, other),
			snap: fx.snap("/v1/contacts/"+keep, "/v1/contacts/"+other, "/v1/contacts/"+keep+"/notes?limit=200", "/v1/contacts/"+other+"/notes?limit=200")}
	}}})
	add(azCase{route: "GET /v1/contacts/{id}/notes", obj: &azObject{agent: http.StatusOK, ok: http.StatusOK, target: contact("/notes", noBody, true)}})
	add(azCase{route: "POST /v1/contacts/{id}/notes", obj: &azObject{agent: http.StatusCreated, ok: http.StatusCreated,
		target: contact("/notes", constBody(`{"body":"called back"}`), true)}})

	// --- The real-time stream ------------------------------------------

	changed := func(conv string) func(stEvent) bool {
		return func(ev stEvent) bool { return ev.Type == events.TypeConversationChanged && ev.Conversation == conv }
	}
	// hidden checks that the stream of token gets nothing of x, a
	// conversation it may not see: once A's admin saw x change, the hub
	// had handed that change to every client, so the change of visible
	// (made by by) comes after it on token's stream if it came at all.
	hiddenFrom := func(t *testing.T, token, by, visible string) {
		x := fx.conv(t, fx.q2, "new")
		watch, _ := stOpen(t, fx.e, fx.admin, "")
		theirs, _ := stOpen(t, fx.e, token, "")
		fx.ok(t, fx.admin, patch, "/v1/conversations/"+x, `{"flagged":true}`)
		watch.until(t, "the change of A's conversation", changed(x))
		fx.ok(t, by, patch, "/v1/conversations/"+visible, `{"muted":true}`)
		for _, ev := range theirs.until(t, "the change of a conversation it sees", changed(visible)) {
			require.NotEqual(t, x, ev.Conversation, "the stream told of a conversation out of sight: %+v", ev)
		}
	}
	add(azCase{route: "GET /v1/stream", calls: &azCalls{path: "/v1/stream",
		other: func(t *testing.T) { hiddenFrom(t, fx.other, fx.other, fx.bConv) },
		agent: func(t *testing.T) { hiddenFrom(t, fx.agent, fx.admin, fx.seen) },
		right: func(t *testing.T) {
			x := fx.conv(t, fx.q2, "new")
			s, _ := stOpen(t, fx.e, fx.admin, "")
			fx.ok(t, fx.admin, patch, "/v1/conversations/"+x, `{"flagged":true}`)
			s.until(t, "the change of A's conversation", changed(x))
		},
	}})
	// --- Notifications (notify_test.go) -----------------------------
	cases = append(cases, ntAzCases(fx)...)

	return cases
}

// sameDocument checks that token gets the document anonymous callers get.
func (fx *azFixture) sameDocument(t *testing.T, token string) {
	t.Helper()
	anon := azCall(t, fx.e, "", http.MethodGet, "/openapi.json", "")
	r := azCall(t, fx.e, token, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, string(anon.Body), string(r.Body))
}

// separate checks that B's admin lists its own marker and nothing of A's
// (not even an id inside an item), while A's admin lists A's.
func (fx *azFixture) separate(t *testing.T, path, marker string) {
	t.Helper()
	theirs := fx.ok(t, fx.admin, http.MethodGet, path, "")
	aIDs := azIDs(t, theirs)
	require.NotEmpty(t, aIDs, "A has nothing to hide here: the check says nothing")
	own := fx.ok(t, fx.other, http.MethodGet, path, "")
	require.Contains(t, azIDs(t, own), marker, "B does not see its own")
	for _, id := range append(aIDs, fx.a.Tenant.ID.String()) {
		require.NotContains(t, string(own.Body), id, "B's admin sees something of A's in GET %s", path)
	}
}

// runObject calls a route on an object of A as every caller.
func (fx *azFixture) runObject(t *testing.T, c azCase) {
	method := azMethod(c.route)
	tg := c.obj.target(t)
	var before string
	if tg.snap != nil {
		before = tg.snap(t)
	}
	unchanged := func(t *testing.T, who string) {
		t.Helper()
		if tg.snap != nil {
			require.Equal(t, before, tg.snap(t), "%s's refused %s %s changed it", who, method, tg.path)
		}
	}
	// After a caller succeeded, the next one gets an object of its own.
	fresh := func(t *testing.T) {
		tg = c.obj.target(t)
		if tg.snap != nil {
			before = tg.snap(t)
		}
	}
	what := func(who string) string { return fmt.Sprintf("%s: %s %s %s", who, method, tg.path, azShort(tg.body)) }

	t.Run("anonymous", func(t *testing.T) {
		for _, token := range []string{"", "sbt_not-a-token"} {
			r := azCall(t, fx.e, token, method, tg.path, tg.body)
			azMustProblem(t, r, http.StatusUnauthorized, what("token "+token))
			require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer", what("token "+token))
		}
		unchanged(t, "anonymous")
	})
	t.Run("other-tenant-admin", func(t *testing.T) {
		missing := azCall(t, fx.e, fx.other, method, tg.missing, tg.body)
		foreign := azCall(t, fx.e, fx.other, method, tg.path, tg.body)
		azMustProblem(t, foreign, http.StatusNotFound, what("B's admin"))
		require.Equal(t, missing.Status, foreign.Status, "%s: A's object answered %s, an id naming nothing %s", what("B's admin"), foreign, missing)
		require.Equal(t, string(missing.Body), string(foreign.Body), "%s: A's object is told apart from an id naming nothing", what("B's admin"))
		unchanged(t, "B's admin")
	})
	t.Run("agent", func(t *testing.T) {
		r := azCall(t, fx.e, fx.agent, method, tg.path, tg.body)
		if c.obj.agent < 300 {
			require.Equal(t, c.obj.agent, r.Status, "%s answered %s (every user of the tenant may)", what("the agent"), r)
			fresh(t)
			return
		}
		azMustProblem(t, r, c.obj.agent, what("the agent"))
		missing := azCall(t, fx.e, fx.agent, method, tg.missing, tg.body)
		require.Equal(t, missing.Status, r.Status, "%s: the object answered %s, an id naming nothing %s", what("the agent"), r, missing)
		require.Equal(t, string(missing.Body), string(r.Body), "%s: the object is told apart from an id naming nothing", what("the agent"))
		unchanged(t, "the agent")
	})
	if c.obj.mate != 0 {
		t.Run("teammate", func(t *testing.T) {
			azMustProblem(t, azCall(t, fx.e, fx.mate, method, tg.path, tg.body), c.obj.mate, what("the teammate"))
			unchanged(t, "the teammate")
		})
	}
	t.Run("right-user", func(t *testing.T) {
		r := azCall(t, fx.e, fx.admin, method, tg.path, tg.body)
		require.Equal(t, c.obj.ok, r.Status, "%s answered %s", what("A's admin"), r)
	})
}

// runCalls runs the checks of a route that acts on no one object of A.
func (fx *azFixture) runCalls(t *testing.T, c azCase) {
	method := azMethod(c.route)
	t.Run("anonymous", func(t *testing.T) {
		if c.calls.anon != nil {
			c.calls.anon(t)
			return
		}
		for _, token := range []string{"", "sbt_not-a-token"} {
			r := azCall(t, fx.e, token, method, c.calls.path, c.calls.body)
			azMustProblem(t, r, http.StatusUnauthorized, fmt.Sprintf("%s %s with token %q", method, c.calls.path, token))
			require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
		}
	})
	for _, caller := range []struct {
		name  string
		check func(t *testing.T)
	}{{"other-tenant-admin", c.calls.other}, {"agent", c.calls.agent}, {"right-user", c.calls.right}} {
		if caller.check != nil {
			t.Run(caller.name, caller.check)
		}
	}
}

func TestAuthzMatrixCoversEveryRoute(t *testing.T) {
	registered := azRegistered()
	var table []string
	for _, c := range azMatrix(&azFixture{}) {
		require.True(t, (c.obj == nil) != (c.calls == nil), "%s: an object route or calls, not both", c.route)
		table = append(table, c.route)
	}
	slices.Sort(table)
	require.Equal(t, len(slices.Compact(slices.Clone(table))), len(table), "a route is twice in the matrix: %v", table)
	var missing, extra []string
	for _, r := range registered {
		if !slices.Contains(table, r) {
			missing = append(missing, r)
		}
	}
	for _, r := range table {
		if !slices.Contains(registered, r) {
			extra = append(extra, r)
		}
	}
	require.Empty(t, missing, "routes the API registers that the authorisation matrix does not call: add them to azMatrix")
	require.Empty(t, extra, "routes of the authorisation matrix that the API does not register")
	require.Len(t, table, len(registered))
}

func TestAuthzMatrix(t *testing.T) {
	fx := azSetup(t, 80)
	for _, c := range azMatrix(fx) {
		t.Run(azName(c.route), func(t *testing.T) {
			if c.obj != nil {
				fx.runObject(t, c)
			} else {
				fx.runCalls(t, c)
			}
		})
	}

	// Ids of A's objects in B's requests answer exactly like ids naming
	// nothing: B learns nothing by naming them.
	t.Run("ids of another tenant in bodies and filters", func(t *testing.T) {
		skill := fx.create(t, fx.admin, "/v1/admin/skills", fmt.Sprintf(`{"name":%q}`, testkit.RandomName("s-")))
		list := fx.create(t, fx.admin, "/v1/admin/tag-lists", `{"name":"Reason","values":["late"]}`)
		aContact, _ := fx.contact(t, fx.admin)
		bContact, _ := fx.contact(t, fx.other)
		bUser := fx.create(t, fx.other, "/v1/admin/users", fmt.Sprintf(`{"email":%q,"name":"B agent"}`, testkit.RandomName("b-")+"@example.com"))
		bMessage := fx.firstMessage(t, fx.other, fx.bConv)
		aRule := fx.create(t, fx.admin, "/v1/admin/routing-rules", routingRuleBody(testkit.RandomName("rule-")))
		aMailbox := fx.ensureMailbox(t)
		bc := "/v1/conversations/" + fx.bConv
		aGroup := fx.create(t, fx.admin, kbGroups, fmt.Sprintf(`{"name":%q}`, testkit.RandomName("kg-")))
		bGroup := fx.create(t, fx.other, kbGroups, fmt.Sprintf(`{"name":%q}`, testkit.RandomName("kg-")))
		bEntry := fx.create(t, fx.other, kbEntries, fmt.Sprintf(`{"group_id":%q,"title":"T","body":"B"}`, bGroup))
		for _, c := range []struct {
			name, method, path, body string
			foreign                  string // A's id, replaced by a random one for the reference
		}{
			{"route to A's queue", http.MethodPost, bc + "/route", `{"queue_id":%q}`, fx.q2.ID.String()},
			{"transfer to A's queue", http.MethodPost, bc + "/transfer", `{"queue_id":%q}`, fx.q2.ID.String()},
			{"transfer to A's user", http.MethodPost, bc + "/transfer", `{"user_id":%q}`, fx.agentUser.ID.String()},
			{"transfer to A's skill", http.MethodPost, bc + "/transfer", `{"skill_id":%q}`, skill},
			{"assign A's user", http.MethodPut, bc + "/assignees", `{"user_ids":[%q]}`, fx.agentUser.ID.String()},
			{"tag with A's tag list", http.MethodPatch, "/v1/messages/" + bMessage, `{"tags":{%q:"late"}}`, list},
			{"merge A's contact", http.MethodPost, "/v1/contacts/" + bContact + "/merge", `{"contact_id":%q}`, aContact},
			{"create a user in A's queue", http.MethodPost, "/v1/admin/users", `{"email":"twin@example.com","name":"Twin","queue_ids":[%q]}`, fx.q2.ID.String()},
			{"create a user with A's skill", http.MethodPost, "/v1/admin/users", `{"email":"twin@example.com","name":"Twin","skill_ids":[%q]}`, skill},
			{"move a user to A's queue", http.MethodPatch, "/v1/admin/users/" + bUser, `{"queue_ids":[%q]}`, fx.q2.ID.String()},
			{"export settings with A's mailbox", http.MethodPut, "/v1/admin/settings/export", `{"send_by_email":true,"mailbox_id":%q}`, aMailbox},
			{"list A's queue", http.MethodGet, "/v1/conversations?queue_id=%s", "", fx.q2.ID.String()},
			{"list A's assignee", http.MethodGet, "/v1/conversations?assignee_id=%s", "", fx.adminUser.ID.String()},
			{"list A's tag list", http.MethodGet, "/v1/conversations?tag=%s:late", "", list},
			{"list A's channel account", http.MethodGet, "/v1/conversations?channel_account_id=%s", "", fx.a.ChatChannel.ID.String()},
			{"mark A's queue read", http.MethodPost, "/v1/conversations/mark-read?queue_id=%s", "", fx.q2.ID.String()},
			{"routing rule to A's queue", http.MethodPost, "/v1/admin/routing-rules", `{"name":"Twin","queue_id":%q}`, fx.q2.ID.String()},
			{"routing rule with A's skill", http.MethodPost, "/v1/admin/routing-rules", `{"name":"Twin","required_skill_id":%q}`, skill},
			{"routing rule on A's channel account", http.MethodPost, "/v1/admin/routing-rules", `{"name":"Twin","conditions":{"channel_account_ids":[%q]}}`,
				fx.a.ChatChannel.ID.String()},
			{"routing rule for A's contact", http.MethodPost, "/v1/admin/routing-rules", `{"name":"Twin","conditions":{"contact_ids":[%q]}}`, aContact},
			{"order A's routing rule", http.MethodPut, "/v1/admin/routing-rules/order", `{"ids":[%q]}`, aRule},
			{"knowledge entry in A's group", http.MethodPost, kbEntries, `{"group_id":%q,"title":"T","body":"B"}`, aGroup},
			{"knowledge entry for A's queue", http.MethodPost, kbEntries, `{"group_id":"` + bGroup + `","title":"T","body":"B","queue_id":%q}`, fx.q2.ID.String()},
			{"move a knowledge entry to A's group", http.MethodPatch, kbEntries + "/" + bEntry, `{"group_id":%q}`, aGroup},
			{"list A's knowledge group", http.MethodGet, kbEntries + "?group_id=%s", "", aGroup},
			{"ask A's user", http.MethodPost, bc + "/expert-questions", `{"expert_id":%q,"question":"Is this normal?"}`, fx.agentUser.ID.String()},
			{"default queue of A's", http.MethodPut, "/v1/admin/channel-accounts/" + fx.b.ChatChannel.ID.String() + "/routing", `{"default_queue_id":%q}`,
				fx.q2.ID.String()},
		} {
			t.Run(c.name, func(t *testing.T) {
				fill := func(id string) (string, string) {
					if c.body != "" {
						return c.path, fmt.Sprintf(c.body, id)
					}
					return fmt.Sprintf(c.path, id), ""
				}
				random := uuid.NewString()
				path, body := fill(random)
				missing := azCall(t, fx.e, fx.other, c.method, path, body)
				path, body = fill(c.foreign)
				foreign := azCall(t, fx.e, fx.other, c.method, path, body)
				require.Equal(t, missing.Status, foreign.Status, "%s %s %s: A's id answered %s, a random one %s", c.method, path, body, foreign, missing)
				// An answer may name the id it was given (the field tags.<id>).
				require.Equal(t, strings.ReplaceAll(string(missing.Body), random, "<id>"), strings.ReplaceAll(string(foreign.Body), c.foreign, "<id>"),
					"%s %s %s: A's id is told apart from a random one", c.method, path, body)
			})
		}
	})
}
