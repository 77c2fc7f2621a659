package inbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// Bad input on every write route (POST, PUT, PATCH; no DELETE route takes
// a body): an unknown field, a wrong type, a body over the server's limit,
// an invalid state transition where the route moves a conversation, and
// values that are well-typed but wrong. Each must be refused with an
// application/problem+json naming the field (400), saying the body is too
// large (413), or giving the conversation's current state (409), and
// nothing stored may change: what the route writes is read before and
// after each call and compared.

// biLimit is the test server's http.max-body-bytes.
const biLimit = 1 << 20

// biHuge is a JSON object of 1.5 MiB, its bulk in field.
func biHuge(field string) string {
	return fmt.Sprintf(`{%q:%q}`, field, strings.Repeat("x", biLimit+biLimit/2))
}

// biCase is one bad request.
type biCase struct {
	// kind is unknown-field, wrong-type, oversized, transition or invalid.
	kind, name string
	// query is added to the path; body is sent as it is, with
	// contentType ("" is application/json).
	query, body string
	contentType string
	// status is what must answer: 400 naming field, 413, or 409 with
	// state, the conversation's current state.
	status int
	field  string
	state  string
	// on, for a transition, is the state of the conversation it is made
	// on (a fresh one); "" is the route's own target.
	on string
}

func biUnknown(body, field string) biCase {
	return biCase{kind: "unknown-field", name: field, body: body, status: http.StatusBadRequest, field: field}
}

func biWrongType(body, field string) biCase {
	return biCase{kind: "wrong-type", name: field, body: body, status: http.StatusBadRequest, field: field}
}

func biOversized(field string) biCase {
	return biCase{kind: "oversized", name: "1.5 MiB", body: biHuge(field), status: http.StatusRequestEntityTooLarge}
}

func biInvalid(name, body, field string) biCase {
	return biCase{kind: "invalid", name: name, body: body, status: http.StatusBadRequest, field: field}
}

func biInvalidQuery(name, query, field string) biCase {
	return biCase{kind: "invalid", name: name, query: query, status: http.StatusBadRequest, field: field}
}

func biTransition(on, body string) biCase {
	return biCase{kind: "transition", name: "on " + on, body: body, status: http.StatusConflict, state: on, on: on}
}

// biTarget is where a route's bad requests go and what they must not
// change.
type biTarget struct {
	path  string
	token string
	// snap reads what the route writes; nil when nothing is readable
	// (login).
	snap func(t *testing.T) string
	// reset runs before each case (to make a change detectable again).
	reset func(t *testing.T)
	// vars fill {{NAME}} in the cases' query, body and field: what exists
	// only once the target does.
	vars map[string]string
	// header are more request headers, name and value pairs (a browser
	// session's cookies and CSRF header).
	header []string
}

// with returns the target with one more var.
func (tg biTarget) with(name, value string) biTarget {
	vars := map[string]string{name: value}
	for k, v := range tg.vars {
		vars[k] = v
	}
	tg.vars = vars
	return tg
}

// biRoute is a write route and its bad requests.
type biRoute struct {
	route string
	// target makes the object bad requests go to; state is "" for the
	// route's own, or the conversation state of a transition case.
	target func(t *testing.T, state string) biTarget
	// fresh makes a new target for every case (a session that a wrongly
	// accepted call would end).
	fresh bool
	cases []biCase
	// after runs once all cases ran: what no snapshot could see.
	after func(t *testing.T)
	// anyState: a route on a conversation that takes it in every state
	// and leaves its state as it is (sending it by email): no
	// transition is refused, so it has no transition case.
	anyState bool
}

// biRoutes is the table; fx may be empty when only the routes are wanted.
func biRoutes(fx *azFixture) []biRoute {
	get, post, patch := http.MethodGet, http.MethodPost, http.MethodPatch
	nul := `a\u0000b`
	long := func(n int) string { return strings.Repeat("y", n) }
	random := uuid.NewString()
	future := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339) }

	// conversation targets a conversation in state (assigned: to A's
	// admin, in q1), fresh for the route and for each transition.
	conversation := func(suffix, state string) func(t *testing.T, on string) biTarget {
		return func(t *testing.T, on string) biTarget {
			if on == "" {
				on = state
			}
			id := fx.conv(t, fx.q1, on)
			return biTarget{path: "/v1/conversations/" + id + suffix, token: fx.admin, snap: fx.convSnap(id)}
		}
	}
	// admin targets a path as A's admin, with a snapshot of paths.
	admin := func(path string, snap ...string) biTarget {
		return biTarget{path: path, token: fx.admin, snap: fx.snap(snap...)}
	}
	var routes []biRoute
	add := func(r biRoute) { routes = append(routes, r) }

	// --- Sessions ----------------------------------------------------

	login := func(email, password string) string {
		return fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, fx.a.Tenant.ID, email, password)
	}
	add(biRoute{route: "POST /v1/auth/login",
		target: func(t *testing.T, _ string) biTarget { return biTarget{path: "/v1/auth/login"} },
		cases: []biCase{
			// Good credentials: a server that ignored the unknown field would log in.
			biUnknown(strings.TrimSuffix(login(fx.adminUser.Email, azPassword), "}")+`,"remember":true}`, "remember"),
			biWrongType(`{"tenant_id":"`+fx.a.Tenant.ID.String()+`","email":5,"password":"correct horse battery"}`, "email"),
			biOversized("password"),
			biInvalid("tenant_id not an id", `{"tenant_id":"acme","email":"a@example.com","password":"correct horse battery"}`, "tenant_id"),
			biInvalid("email empty", login("", azPassword), "email"),
			biInvalid("email with NUL", `{"tenant_id":"`+fx.a.Tenant.ID.String()+`","email":"ada\u0000@example.com","password":"correct horse battery"}`, "email"),
			biInvalid("password empty", login("a@example.com", ""), "password"),
		}})

	var refresh string
	add(biRoute{route: "POST /v1/auth/refresh",
		target: func(t *testing.T, _ string) biTarget {
			if refresh == "" {
				_, refresh = fx.login(t, fx.a, fx.adminUser.Email)
			}
			return biTarget{path: "/v1/auth/refresh", token: "", vars: map[string]string{"REFRESH": refresh}}
		},
		cases: []biCase{
			biUnknown(`{"refresh_token":"{{REFRESH}}","scope":"all"}`, "scope"),
			biWrongType(`{"refresh_token":5}`, "refresh_token"),
			biOversized("refresh_token"),
			biInvalid("refresh_token empty", `{"refresh_token":""}`, "refresh_token"),
		},
		after: func(t *testing.T) {
			// No refused call used the refresh token up.
			fx.ok(t, "", post, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, refresh))
		}})

	add(biRoute{route: "POST /v1/auth/logout", fresh: true,
		target: func(t *testing.T, state string) biTarget {
			token := fx.a.APIToken.Token
			if state != "api-token" {
				token, _ = fx.login(t, fx.a, fx.adminUser.Email)
			}
			return biTarget{path: "/v1/auth/logout", token: token, snap: func(t *testing.T) string {
				r := azCall(t, fx.e, token, get, "/v1/me", "")
				return fmt.Sprintf("GET /v1/me: %d %s", r.Status, r.Body)
			}}
		},
		cases: []biCase{
			biUnknown(`{"everywhere":true}`, "everywhere"),
			biWrongType(`[]`, "body"),
			biOversized("everywhere"),
			{kind: "invalid", name: "an API token", status: http.StatusBadRequest, field: "Authorization", on: "api-token"},
		}})

	// The browser session: its login is the login's; its refresh takes
	// no body.
	add(biRoute{route: "POST /v1/auth/session",
		target: func(t *testing.T, _ string) biTarget { return biTarget{path: "/v1/auth/session"} },
		cases: []biCase{
			biUnknown(strings.TrimSuffix(login(fx.adminUser.Email, azPassword), "}")+`,"remember":true}`, "remember"),
			biWrongType(`{"tenant_id":"`+fx.a.Tenant.ID.String()+`","email":5,"password":"correct horse battery"}`, "email"),
			biWrongType(`[]`, "body"),
			biOversized("password"),
			biInvalid("tenant_id not an id", `{"tenant_id":"acme","email":"a@example.com","password":"correct horse battery"}`, "tenant_id"),
			biInvalid("email empty", login("", azPassword), "email"),
			biInvalid("password empty", login("a@example.com", ""), "password"),
		}})
	add(biRoute{route: "POST /v1/auth/session/refresh", fresh: true,
		target: func(t *testing.T, _ string) biTarget {
			br := fx.browserLogin(t, fx.a, fx.adminUser.Email)
			return biTarget{path: "/v1/auth/session/refresh",
				header: []string{"Cookie", "sb_refresh=" + br.value("sb_refresh") + "; sb_csrf=" + br.value("sb_csrf"), "X-CSRF-Token", br.value("sb_csrf")},
				// A refresh would end the access token.
				snap: func(t *testing.T) string {
					r := br.call(t, get, "/v1/me", "")
					return fmt.Sprintf("GET /v1/me: %d %s", r.Status, r.Body)
				}}
		},
		cases: []biCase{
			biUnknown(`{"refresh_token":"sbr_x"}`, "refresh_token"),
			biWrongType(`[]`, "body"),
			biOversized("refresh_token"),
		}})

	// Presence: what A's admin set, and whether they are connected (no
	// call here beats for them, so a refused heartbeat that beat shows).
	add(biRoute{route: "PUT /v1/me/presence",
		target: func(t *testing.T, _ string) biTarget { return admin("/v1/me/presence", "/v1/me/presence") },
		cases: []biCase{
			biUnknown(`{"status":"away","message":"lunch"}`, "message"),
			biWrongType(`{"status":1}`, "status"),
			biWrongType(`[]`, "body"),
			biOversized("status"),
			biInvalid("status absent", `{}`, "status"),
			biInvalid("status unknown", `{"status":"busy"}`, "status"),
			biInvalid("status with NUL", `{"status":"`+nul+`"}`, "status"),
		}})
	add(biRoute{route: "POST /v1/me/heartbeat",
		target: func(t *testing.T, _ string) biTarget { return admin("/v1/me/heartbeat", "/v1/me/presence") },
		cases: []biCase{
			biUnknown(`{"status":"online"}`, "status"),
			biWrongType(`[]`, "body"),
			biOversized("status"),
		}})

	// --- Conversations ----------------------------------------------

	// mark-read takes its filters in the query string, and no body.
	var unreadProbe string
	add(biRoute{route: "POST /v1/conversations/mark-read",
		target: func(t *testing.T, _ string) biTarget {
			if unreadProbe == "" {
				unreadProbe = fx.conv(t, fx.q1, "new")
			}
			return biTarget{path: "/v1/conversations/mark-read", token: fx.admin, snap: fx.snap("/v1/conversations?limit=200"),
				reset: func(t *testing.T) {
					fx.ok(t, fx.admin, patch, "/v1/conversations/"+unreadProbe, `{"unread":true}`)
				}}
		},
		cases: []biCase{
			biUnknown(`{"all":true}`, "all"),
			biWrongType(`[]`, "body"),
			{kind: "wrong-type", name: "unread", query: "?unread=maybe", status: http.StatusBadRequest, field: "unread"},
			biOversized("all"),
			biInvalidQuery("queue_id not an id", "?queue_id=support", "queue_id"),
			biInvalidQuery("tab unknown", "?tab=everything", "tab"),
			biInvalidQuery("state unknown", "?state=lost", "state"),
			biInvalidQuery("from not a time", "?from=yesterday", "from"),
			biInvalidQuery("tag without a value", "?tag="+random, "tag"),
			biInvalidQuery("q too long", "?q="+long(201), "q"),
			biInvalidQuery("q with NUL", "?q=a%00b", "q"),
			biInvalidQuery("language with NUL", "?language=e%00", "language"),
			biInvalidQuery("tag value with NUL", "?tag="+random+":a%00", "tag"),
		}})

	add(biRoute{route: "PATCH /v1/conversations/{id}", target: conversation("", "new"),
		cases: []biCase{
			biUnknown(`{"pinned":true}`, "pinned"),
			biWrongType(`{"flagged":"yes"}`, "flagged"),
			biOversized("language"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("only nulls", `{"flagged":null}`, "body"),
			biInvalid("language unknown", `{"language":"klingon"}`, "language"),
			biInvalid("language with NUL", `{"language":"e\u0000"}`, "language"),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/assign", target: conversation("/assign", "new"),
		cases: []biCase{
			biUnknown(`{"user_id":"x"}`, "user_id"),
			biWrongType(`[]`, "body"),
			biOversized("user_id"),
			biTransition("done", ""),
		}})

	assignees := func(ids ...string) string {
		raw, _ := json.Marshal(map[string][]string{"user_ids": ids})
		return string(raw)
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = uuid.NewString()
	}
	add(biRoute{route: "PUT /v1/conversations/{id}/assignees", target: conversation("/assignees", "new"),
		cases: []biCase{
			biUnknown(`{"user_ids":["`+fx.adminUser.ID.String()+`"],"note":"x"}`, "note"),
			biWrongType(`{"user_ids":"`+fx.adminUser.ID.String()+`"}`, "user_ids"),
			biOversized("user_ids"),
			biTransition("done", assignees(fx.adminUser.ID.String())),
			biInvalid("no user", assignees(), "user_ids"),
			biInvalid("user_ids absent", `{}`, "user_ids"),
			biInvalid("not an id", assignees("ada"), "user_ids[0]"),
			biInvalid("no such user", assignees(fx.adminUser.ID.String(), random), "user_ids[1]"),
			biInvalid("21 users", assignees(many...), "user_ids"),
		}})

	cc := make([]string, 21)
	for i := range cc {
		cc[i] = fmt.Sprintf("cc%d@example.com", i)
	}
	ccJSON, _ := json.Marshal(map[string]any{"text": "hello", "cc": cc})
	atts := make([]string, 4)
	for i := range atts {
		atts[i] = uuid.NewString()
	}
	attJSON, _ := json.Marshal(map[string]any{"text": "hello", "attachments": atts})
	add(biRoute{route: "POST /v1/conversations/{id}/reply", target: conversation("/reply", "assigned"),
		cases: []biCase{
			biUnknown(`{"text":"hello","html":"<b>hello</b>"}`, "html"),
			biWrongType(`{"text":5}`, "text"),
			biOversized("text"),
			biTransition("done", `{"text":"hello"}`),
			biTransition("new", `{"text":"hello"}`),
			biInvalid("text absent", `{}`, "text"),
			biInvalid("text blank", `{"text":"  \n "}`, "text"),
			biInvalid("text over 64 KiB", fmt.Sprintf(`{"text":%q}`, long(65537)), "text"),
			biInvalid("text with NUL", `{"text":"`+nul+`"}`, "text"),
			biInvalid("subject on one line", `{"text":"hello","subject":"a\nb"}`, "subject"),
			biInvalid("subject on a chat", `{"text":"hello","subject":"Your order"}`, "subject"),
			biInvalid("cc on a chat", `{"text":"hello","cc":["ada@example.com"]}`, "cc"),
			biInvalid("cc not an address", `{"text":"hello","cc":["Ada <ada@example.com>"]}`, "cc[0]"),
			biInvalid("21 cc", string(ccJSON), "cc"),
			biWrongType(`{"text":"hello","attachments":"`+random+`"}`, "attachments"),
			biWrongType(`{"text":"hello","reply_to":true}`, "reply_to"),
			biInvalid("attachment not an id", `{"text":"hello","attachments":["invoice.pdf"]}`, "attachments[0]"),
			biInvalid("attachment twice", `{"text":"hello","attachments":["`+random+`","`+random+`"]}`, "attachments[1]"),
			biInvalid("4 attachments", string(attJSON), "attachments"),
			biInvalid("template_id not an id", `{"template_id":"hello"}`, "template_id"),
			biInvalid("no such template", `{"template_id":"`+random+`"}`, "template_id"),
			biWrongType(`{"template_id":5}`, "template_id"),
			biInvalid("attachments on a chat", `{"text":"hello","attachments":["`+random+`"]}`, "attachments"),
			biInvalid("reply_to unknown", `{"text":"hello","reply_to":"customer"}`, "reply_to"),
			biInvalid("reply_to on a chat", `{"text":"hello","reply_to":"agent"}`, "reply_to"),
			biWrongType(`{"text":"hello","translate":"yes"}`, "translate"),
			biWrongType(`{"text":"hello","translate_to":5}`, "translate_to"),
			biInvalid("translate and translate_to", `{"text":"hello","translate":true,"translate_to":"de"}`, "translate"),
			biInvalid("translate_to unknown", `{"text":"hello","translate_to":"xx"}`, "translate_to"),
			biInvalid("fallback unknown", `{"text":"hello","translate":true,"fallback":"nothing"}`, "fallback"),
			biInvalid("fallback without translation", `{"text":"hello","fallback":"original"}`, "fallback"),
		}})

	// Start a conversation: nothing refused is stored, and no conversation
	// appears.
	startAtts, _ := json.Marshal(map[string]any{"channel": "email", "contact_id": "{{CONTACT}}", "channel_account_id": "{{MB}}",
		"queue_id": "{{Q}}", "subject": "Hi", "text": "hello", "attachments": []string{uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()}})
	startBody := func(extra string) string {
		return `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"{{MB}}","queue_id":"{{Q}}","text":"hello"` + extra + `}`
	}
	var startContact string
	add(biRoute{route: "POST /v1/conversations",
		target: func(t *testing.T, _ string) biTarget {
			if startContact == "" {
				startContact = fx.create(t, fx.admin, "/v1/contacts", fmt.Sprintf(`{"name":"Ada","identities":[{"channel":"email","identity":%q}]}`,
					testkit.RandomName("ada-")+"@customer.example"))
			}
			return admin("/v1/conversations", "/v1/conversations?limit=200&channel=email", "/v1/contacts/"+startContact).
				with("CONTACT", startContact).with("MB", fx.ensureMailbox(t)).with("Q", fx.q1.ID.String()).with("CHAT", fx.a.ChatChannel.ID.String())
		},
		cases: []biCase{
			biUnknown(startBody(`,"subject":"Hi","bcc":["a@example.com"]`), "bcc"),
			biWrongType(startBody(`,"subject":5`), "subject"),
			biWrongType(`{"channel":"email","contact_id":5}`, "contact_id"),
			biOversized("text"),
			biInvalid("channel absent", `{"contact_id":"{{CONTACT}}","channel_account_id":"{{MB}}","text":"hello","subject":"Hi"}`, "channel"),
			biInvalid("channel chat", `{"channel":"chat","contact_id":"{{CONTACT}}","channel_account_id":"{{CHAT}}","text":"hello"}`, "channel"),
			biInvalid("contact_id not an id", `{"channel":"email","contact_id":"ada","channel_account_id":"{{MB}}","text":"hello","subject":"Hi"}`, "contact_id"),
			biInvalid("channel_account_id not an id", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"mb","text":"hello","subject":"Hi"}`, "channel_account_id"),
			biInvalid("channel_account_id of the chat", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"{{CHAT}}","queue_id":"{{Q}}","text":"hello","subject":"Hi"}`, "channel_account_id"),
			biInvalid("channel_account_id naming nothing", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"`+random+`","queue_id":"{{Q}}","text":"hello","subject":"Hi"}`, "channel_account_id"),
			biInvalid("queue_id not an id", startBody(`,"subject":"Hi","queue_id":"q1"`), "queue_id"),
			biInvalid("queue_id naming nothing", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"{{MB}}","queue_id":"`+random+`","text":"hello","subject":"Hi"}`, "queue_id"),
			biInvalid("queue_id absent without a default queue", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"{{MB}}","text":"hello","subject":"Hi"}`, "queue_id"),
			biInvalid("to not an address", startBody(`,"subject":"Hi","to":"ada at example"`), "to"),
			biInvalid("subject absent on email", startBody(``), "subject"),
			biInvalid("subject blank on email", startBody(`,"subject":"  "`), "subject"),
			biInvalid("subject on two lines", startBody(`,"subject":"a\nb"`), "subject"),
			biInvalid("text absent", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"{{MB}}","queue_id":"{{Q}}","subject":"Hi"}`, "text"),
			biInvalid("text with NUL", `{"channel":"email","contact_id":"{{CONTACT}}","channel_account_id":"{{MB}}","queue_id":"{{Q}}","subject":"Hi","text":"`+nul+`"}`, "text"),
			biInvalid("cc not an address", startBody(`,"subject":"Hi","cc":["Ada <ada@example.com>"]`), "cc[0]"),
			biInvalid("4 attachments", string(startAtts), "attachments"),
			biInvalid("attachment not an id", startBody(`,"subject":"Hi","attachments":["invoice.pdf"]`), "attachments[0]"),
			biInvalid("attachment naming nothing", startBody(`,"subject":"Hi","attachments":["`+random+`"]`), "attachments[0]"),
			biInvalid("reply_to unknown", startBody(`,"subject":"Hi","reply_to":"customer"`), "reply_to"),
			{kind: "invalid", name: "contact of nobody", body: `{"channel":"email","contact_id":"` + random + `","channel_account_id":"{{MB}}","queue_id":"{{Q}}","text":"hello","subject":"Hi"}`,
				status: http.StatusUnprocessableEntity, field: "contact_id"},
			{kind: "invalid", name: "to not the contact's", body: startBody(`,"subject":"Hi","to":"grace@customer.example"`),
				status: http.StatusUnprocessableEntity, field: "to"},
		}})

	// Ask an expert: what a refused question would change is the
	// conversation, its audit and its questions.
	ask := func(fields string) string {
		return `{"expert_id":"{{EXPERT}}","question":"Is this normal?"` + fields + `}`
	}
	ids := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = `"` + uuid.NewString() + `"`
		}
		return "[" + strings.Join(out, ",") + "]"
	}
	add(biRoute{route: "POST /v1/conversations/{id}/expert-questions",
		target: func(t *testing.T, on string) biTarget {
			if on == "" {
				on = "assigned"
			}
			id := fx.conv(t, fx.q1, on)
			p := "/v1/conversations/" + id
			return biTarget{path: p + "/expert-questions", token: fx.admin,
				snap: fx.snap(p, p+"/messages?limit=200", p+"/audit", p+"/expert-questions"),
				vars: map[string]string{"EXPERT": fx.agentUser.ID.String(), "ADMIN": fx.adminUser.ID.String()}}
		},
		cases: []biCase{
			biUnknown(ask(`,"urgent":true`), "urgent"),
			biWrongType(`{"expert_id":"{{EXPERT}}","question":5}`, "question"),
			biWrongType(ask(`,"include_messages":"yes"`), "include_messages"),
			biWrongType(ask(`,"include_messages":true,"message_ids":"`+random+`"`), "message_ids"),
			biOversized("question"),
			biTransition("done", ask("")),
			biInvalid("expert_id absent", `{"question":"Is this normal?"}`, "expert_id"),
			biInvalid("expert_id not an id", `{"expert_id":"grace","question":"Is this normal?"}`, "expert_id"),
			biInvalid("expert_id of nobody", `{"expert_id":"`+random+`","question":"Is this normal?"}`, "expert_id"),
			biInvalid("expert_id the asker", `{"expert_id":"{{ADMIN}}","question":"Is this normal?"}`, "expert_id"),
			biInvalid("question absent", `{"expert_id":"{{EXPERT}}"}`, "question"),
			biInvalid("question blank", `{"expert_id":"{{EXPERT}}","question":" \n "}`, "question"),
			biInvalid("question of 301 characters", `{"expert_id":"{{EXPERT}}","question":"`+long(301)+`"}`, "question"),
			biInvalid("question with NUL", `{"expert_id":"{{EXPERT}}","question":"`+nul+`"}`, "question"),
			biInvalid("message_ids without include_messages", ask(`,"message_ids":["`+random+`"]`), "message_ids"),
			biInvalid("message_ids empty", ask(`,"include_messages":true,"message_ids":[]`), "message_ids"),
			biInvalid("21 message_ids", ask(`,"include_messages":true,"message_ids":`+ids(21)), "message_ids"),
			biInvalid("message_ids not an id", ask(`,"include_messages":true,"message_ids":["hello"]`), "message_ids[0]"),
			biInvalid("message_ids twice", ask(`,"include_messages":true,"message_ids":["`+random+`","`+random+`"]`), "message_ids[1]"),
			biInvalid("message_ids not of the last 20", ask(`,"include_messages":true,"message_ids":["`+random+`"]`), "message_ids[0]"),
		}})
	add(biRoute{route: "POST /v1/expert-questions/{id}/answer",
		target: func(t *testing.T, _ string) biTarget {
			conv := fx.conv(t, fx.q2, "new")
			fx.ok(t, fx.mate, post, "/v1/conversations/"+conv+"/assign", "")
			id := fx.expertQuestion(t, fx.mate, conv, fx.adminUser.ID.String(), false)
			path := "/v1/expert-questions/" + id
			return admin(path+"/answer", path, "/v1/conversations/"+conv+"/audit")
		},
		cases: []biCase{
			biUnknown(`{"text":"Yes","html":"<b>Yes</b>"}`, "html"),
			biWrongType(`{"text":5}`, "text"),
			biWrongType(`[]`, "body"),
			biOversized("text"),
			biInvalid("text absent", `{}`, "text"),
			biInvalid("text blank", `{"text":"  \n "}`, "text"),
			biInvalid("text over 4,000 bytes", fmt.Sprintf(`{"text":%q}`, strings.Repeat("é", 2000)+"a"), "text"),
			biInvalid("text with NUL", `{"text":"`+nul+`"}`, "text"),
		}})

	// Sending by email: refused on bad input before anything else, the
	// tenant's setting turned on so that a wrongly accepted call would
	// show in the audit log.
	recipients := make([]string, 6)
	for i := range recipients {
		recipients[i] = fmt.Sprintf("r%d@example.com", i)
	}
	recipientsJSON, _ := json.Marshal(map[string]any{"to": recipients})
	add(biRoute{route: "POST /v1/conversations/{id}/send-by-email", anyState: true,
		target: func(t *testing.T, _ string) biTarget {
			fx.ok(t, fx.admin, http.MethodPut, "/v1/admin/settings/export", fmt.Sprintf(`{"send_by_email":true,"mailbox_id":%q}`, fx.ensureMailbox(t)))
			return conversation("/send-by-email", "assigned")(t, "")
		},
		cases: []biCase{
			biUnknown(`{"to":"a@example.com","cc":"b@example.com"}`, "cc"),
			biWrongType(`{"to":5}`, "to"),
			biWrongType(`{"to":{"address":"a@example.com"}}`, "to"),
			biWrongType(`{"to":"a@example.com","note":5}`, "note"),
			biOversized("note"),
			biInvalid("to absent", `{"note":"hi"}`, "to"),
			biInvalid("to null", `{"to":null}`, "to"),
			biInvalid("to empty list", `{"to":[]}`, "to"),
			biInvalid("to with a name", `{"to":"Ada <ada@example.com>"}`, "to"),
			biInvalid("to not an address", `{"to":"ada"}`, "to"),
			biInvalid("to on two lines", `{"to":"a@example.com\r\nBcc: b@example.com"}`, "to"),
			biInvalid("second not an address", `{"to":["a@example.com","nope"]}`, "to[1]"),
			biInvalid("recipient twice", `{"to":["a@example.com","A@example.com"]}`, "to[1]"),
			biInvalid("6 recipients", string(recipientsJSON), "to"),
			biInvalid("note over 2000 bytes", fmt.Sprintf(`{"to":"a@example.com","note":%q}`, long(2001)), "note"),
			biInvalid("note with NUL", `{"to":"a@example.com","note":"`+nul+`"}`, "note"),
		}})

	// Uploads: the body is the file, its name in the query string, its
	// type in Content-Type.
	upload := func(name, query, contentType, body, field string) biCase {
		return biCase{kind: "invalid", name: name, query: query, contentType: contentType, body: body, status: http.StatusBadRequest, field: field}
	}
	add(biRoute{route: "POST /v1/attachments",
		target: func(t *testing.T, _ string) biTarget {
			return biTarget{path: "/v1/attachments", token: fx.admin, snap: fx.uploadsSnap}
		},
		cases: []biCase{
			{kind: "unknown-field", name: "folder", query: "?filename=a.txt&folder=inbox", contentType: "text/plain", body: "hello",
				status: http.StatusBadRequest, field: "folder"},
			{kind: "wrong-type", name: "Content-Type", query: "?filename=a.txt", contentType: "pdf", body: "hello",
				status: http.StatusBadRequest, field: "Content-Type"},
			{kind: "oversized", name: "1.5 MiB", query: "?filename=big.json", body: biHuge("name"), status: http.StatusRequestEntityTooLarge},
			upload("filename absent", "", "text/plain", "hello", "filename"),
			upload("filename empty", "?filename=", "text/plain", "hello", "filename"),
			upload("filename twice", "?filename=a.txt&filename=b.txt", "text/plain", "hello", "filename"),
			upload("filename with a path", "?filename=..%2Fetc%2Fpasswd", "text/plain", "hello", "filename"),
			upload("filename with NUL", "?filename=a%00.txt", "text/plain", "hello", "filename"),
			upload("filename with a newline", "?filename=a%0D%0AX-Evil:%201.txt", "text/plain", "hello", "filename"),
			upload("filename not UTF-8", "?filename=%FF.txt", "text/plain", "hello", "filename"),
			upload("filename over 255 bytes", "?filename="+long(256), "text/plain", "hello", "filename"),
			upload("a form", "?filename=a.txt", "multipart/form-data; boundary=x", "--x--", "Content-Type"),
			upload("body empty", "?filename=a.txt", "text/plain", "", "body"),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/archive", target: conversation("/archive", "new"),
		cases: []biCase{
			biUnknown(`{"why":"spam"}`, "why"),
			biWrongType(`{"reason":5}`, "reason"),
			biOversized("reason"),
			biTransition("done", `{"reason":"spam"}`),
			biInvalid("reason over 2000 bytes", fmt.Sprintf(`{"reason":%q}`, long(2001)), "reason"),
			biInvalid("reason with NUL", `{"reason":"`+nul+`"}`, "reason"),
		}})

	queue := func() string { return fmt.Sprintf(`{"queue_id":%q}`, fx.q2.ID) }
	add(biRoute{route: "POST /v1/conversations/{id}/route", target: conversation("/route", "new"),
		cases: []biCase{
			biUnknown(`{"queue_id":"`+fx.q2.ID.String()+`","priority":1}`, "priority"),
			biWrongType(`{"queue_id":5}`, "queue_id"),
			biOversized("queue_id"),
			biTransition("done", queue()),
			biInvalid("queue_id absent", `{}`, "queue_id"),
			biInvalid("queue_id not an id", `{"queue_id":"support"}`, "queue_id"),
			biInvalid("no such queue", `{"queue_id":"`+random+`"}`, "queue_id"),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/transfer", target: conversation("/transfer", "new"),
		cases: []biCase{
			biUnknown(`{"queue_id":"`+fx.q2.ID.String()+`","urgent":true}`, "urgent"),
			biWrongType(`{"queue_id":"`+fx.q2.ID.String()+`","bypass_queue":"yes"}`, "bypass_queue"),
			biOversized("comment"),
			biTransition("done", queue()),
			biInvalid("no target", `{}`, "body"),
			biInvalid("two targets", `{"queue_id":"`+fx.q2.ID.String()+`","language":"fr"}`, "body"),
			biInvalid("user_id not an id", `{"user_id":"ada"}`, "user_id"),
			biInvalid("no such user", `{"user_id":"`+random+`"}`, "user_id"),
			biInvalid("no such queue", `{"queue_id":"`+random+`"}`, "queue_id"),
			biInvalid("no such skill", `{"skill_id":"`+random+`"}`, "skill_id"),
			biInvalid("language unknown", `{"language":"xx"}`, "language"),
			biInvalid("comment over 2000 bytes", fmt.Sprintf(`{"queue_id":%q,"comment":%q}`, fx.q2.ID, long(2001)), "comment"),
			biInvalid("comment with NUL", `{"queue_id":"`+fx.q2.ID.String()+`","comment":"`+nul+`"}`, "comment"),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/release", target: conversation("/release", "assigned"),
		cases: []biCase{
			biUnknown(`{"to":"received","why":"x"}`, "why"),
			biWrongType(`{"to":5}`, "to"),
			biOversized("to"),
			biTransition("new", ""),
			biInvalid("to unknown", `{"to":"elsewhere"}`, "to"),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/complete", target: conversation("/complete", "assigned"),
		cases: []biCase{
			biUnknown(`{"disposition":"solved","rating":5}`, "rating"),
			biWrongType(`{"disposition":"solved","smart_close":"yes"}`, "smart_close"),
			biOversized("notes"),
			biTransition("new", `{"disposition":"solved"}`),
			biTransition("done", `{"disposition":"solved"}`),
			biInvalid("disposition absent", `{}`, "disposition"),
			biInvalid("disposition blank", `{"disposition":"   "}`, "disposition"),
			biInvalid("disposition over 200 bytes", fmt.Sprintf(`{"disposition":%q}`, long(201)), "disposition"),
			biInvalid("disposition with NUL", `{"disposition":"`+nul+`"}`, "disposition"),
			biInvalid("notes over 5000 bytes", fmt.Sprintf(`{"disposition":"solved","notes":%q}`, long(5001)), "notes"),
			biInvalid("notes with NUL", `{"disposition":"solved","notes":"`+nul+`"}`, "notes"),
			biInvalid("smart_close_wait without smart_close", `{"disposition":"solved","smart_close_wait":true}`, "smart_close_wait"),
			biInvalid("smart close without a question for the channel", `{"disposition":"solved","smart_close":true}`, "smart_close"),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/resume", target: conversation("/resume", "done"),
		cases: []biCase{
			biUnknown(`{"note":"x"}`, "note"),
			biWrongType(`[]`, "body"),
			biOversized("note"),
			biTransition("new", ""),
		}})

	add(biRoute{route: "POST /v1/conversations/{id}/defer", target: conversation("/defer", "assigned"),
		cases: []biCase{
			biUnknown(`{"until":"`+future(time.Hour)+`","snooze":true}`, "snooze"),
			{kind: "wrong-type", name: "until not a time", body: `{"until":"tomorrow"}`, status: http.StatusBadRequest, field: "until"},
			{kind: "wrong-type", name: "until a number", body: `{"until":5}`, status: http.StatusBadRequest, field: "until"},
			biWrongType(`{"until":"`+future(time.Hour)+`","reason":5}`, "reason"),
			biOversized("reason"),
			biTransition("new", `{"until":"`+future(time.Hour)+`"}`),
			biInvalid("until absent", `{}`, "until"),
			biInvalid("until past", `{"until":"`+future(-time.Hour)+`"}`, "until"),
			biInvalid("until beyond a year", `{"until":"`+future(400*24*time.Hour)+`"}`, "until"),
			biInvalid("reason over 2000 bytes", fmt.Sprintf(`{"until":%q,"reason":%q}`, future(time.Hour), long(2001)), "reason"),
			biInvalid("reason with NUL", `{"until":"`+future(time.Hour)+`","reason":"`+nul+`"}`, "reason"),
		}})

	// The answers to an offer (to A's admin) take no body.
	for _, answer := range []string{"accept", "reject"} {
		add(biRoute{route: "POST /v1/conversations/{id}/" + answer, target: conversation("/"+answer, "offered"),
			cases: []biCase{
				biUnknown(`{"reason":"busy"}`, "reason"),
				biWrongType(`[]`, "body"),
				biOversized("reason"),
				biTransition("new", ""),
				biTransition("assigned", ""),
				biTransition("done", ""),
			}})
	}

	add(biRoute{route: "POST /v1/conversations/{id}/bot", target: conversation("/bot", "assigned"),
		cases: []biCase{
			biUnknown(`{"action":"block","reason":"spam"}`, "reason"),
			biWrongType(`{"action":5}`, "action"),
			biWrongType(`[]`, "body"),
			biOversized("action"),
			biTransition("done", `{"action":"run"}`),
			biInvalid("action absent", `{}`, "action"),
			biInvalid("action unknown", `{"action":"pause"}`, "action"),
			biInvalid("action with NUL", `{"action":"`+nul+`"}`, "action"),
		}})

	// Help from others.
	add(biRoute{route: "POST /v1/conversations/{id}/help-requests", target: conversation("/help-requests", "assigned"),
		cases: []biCase{
			biUnknown(`{"comment":"x","urgent":true}`, "urgent"),
			biUnknown(`{"reply":{"text":"x","bcc":["a@example.com"]}}`, "bcc"),
			biWrongType(`{"comment":5}`, "comment"),
			biWrongType(`{"reply":"Please wait"}`, "reply"),
			biOversized("comment"),
			biTransition("new", `{"comment":"x"}`),
			biTransition("done", `{"comment":"x","reply":{"text":"Please wait"}}`),
			biInvalid("comment over 2000 bytes", fmt.Sprintf(`{"comment":%q}`, long(2001)), "comment"),
			biInvalid("comment with NUL", `{"comment":"`+nul+`"}`, "comment"),
			biInvalid("reply text absent", `{"reply":{}}`, "reply.text"),
			biInvalid("reply text blank", `{"reply":{"text":"  "}}`, "reply.text"),
			biInvalid("reply with a subject on chat", `{"reply":{"text":"x","subject":"Hi"}}`, "reply.subject"),
			biInvalid("reply sent translated", `{"reply":{"text":"x","translate":true}}`, "reply.translate"),
			biInvalid("reply attachment not an id", `{"reply":{"text":"x","attachments":["a"]}}`, "reply.attachments[0]"),
			biInvalid("reply_to unknown", `{"reply":{"text":"x","reply_to":"boss"}}`, "reply.reply_to"),
		}})
	// answer targets a help request waiting for its answer; on a
	// conversation in another state, any request id (the state is
	// checked first).
	answer := func(t *testing.T, on string) biTarget {
		if on != "" {
			id := fx.conv(t, fx.q1, on)
			return biTarget{path: "/v1/conversations/" + id + "/help-requests/" + uuid.NewString() + "/answer", token: fx.admin, snap: fx.convSnap(id)}
		}
		id := fx.conv(t, fx.q1, "assigned")
		p := "/v1/conversations/" + id
		fx.ok(t, fx.admin, post, p+"/help-requests", `{"comment":"help"}`)
		request := azIDs(t, fx.ok(t, fx.admin, get, p+"/help-requests", ""))[0]
		snap := fx.convSnap(id)
		return biTarget{path: p + "/help-requests/" + request + "/answer", token: fx.admin,
			snap: func(t *testing.T) string { return snap(t) + fx.snap(p+"/help-requests")(t) }}
	}
	add(biRoute{route: "POST /v1/conversations/{id}/help-requests/{request_id}/answer", target: answer,
		cases: []biCase{
			biUnknown(`{"text":"x","cc":[]}`, "cc"),
			biWrongType(`{"text":5}`, "text"),
			biOversized("text"),
			biTransition("assigned", `{"text":"x"}`),
			biTransition("done", `{"text":"x"}`),
			biInvalid("text absent", `{}`, "text"),
			biInvalid("text blank", `{"text":"  "}`, "text"),
			biInvalid("text over 4000 bytes", fmt.Sprintf(`{"text":%q}`, long(4001)), "text"),
			biInvalid("text with NUL", `{"text":"`+nul+`"}`, "text"),
		}})
	add(biRoute{route: "POST /v1/conversations/{id}/external", target: conversation("/external", "assigned"),
		cases: []biCase{
			biUnknown(`{"comment":"x","agent":"legal"}`, "agent"),
			biWrongType(`{"comment":5}`, "comment"),
			biOversized("comment"),
			biTransition("new", `{"comment":"x"}`),
			biTransition("done", ""),
			biInvalid("comment over 2000 bytes", fmt.Sprintf(`{"comment":%q}`, long(2001)), "comment"),
			biInvalid("comment with NUL", `{"comment":"`+nul+`"}`, "comment"),
		}})
	add(biRoute{route: "POST /v1/conversations/{id}/external/return",
		target: func(t *testing.T, on string) biTarget {
			if on != "" {
				id := fx.conv(t, fx.q1, on)
				return biTarget{path: "/v1/conversations/" + id + "/external/return", token: fx.admin, snap: fx.convSnap(id)}
			}
			id := fx.conv(t, fx.q1, "assigned")
			fx.ok(t, fx.admin, post, "/v1/conversations/"+id+"/external", "")
			return biTarget{path: "/v1/conversations/" + id + "/external/return", token: fx.admin, snap: fx.convSnap(id)}
		},
		cases: []biCase{
			biUnknown(`{"comment":"x","outcome":"signed"}`, "outcome"),
			biWrongType(`{"comment":["x"]}`, "comment"),
			biOversized("comment"),
			biTransition("assigned", ""),
			biTransition("new", `{"comment":"x"}`),
			biInvalid("comment over 2000 bytes", fmt.Sprintf(`{"comment":%q}`, long(2001)), "comment"),
			biInvalid("comment with NUL", `{"comment":"`+nul+`"}`, "comment"),
		}})
	const helpSettings = "/v1/admin/settings/help"
	add(biRoute{route: "PUT " + helpSettings,
		target: func(t *testing.T, _ string) biTarget { return admin(helpSettings, helpSettings) },
		cases: []biCase{
			biUnknown(`{"answered_priority":1,"order":"fifo"}`, "order"),
			biWrongType(`{"answered_priority":"high"}`, "answered_priority"),
			biWrongType(`{"answered_priority":1.5}`, "answered_priority"),
			biOversized("answered_priority"),
			biInvalid("answered_priority over 10", `{"answered_priority":11}`, "answered_priority"),
			biInvalid("answered_priority under -10", `{"answered_priority":-11}`, "answered_priority"),
		}})

	const translationSettings = "/v1/admin/settings/translation"
	add(biRoute{route: "PUT " + translationSettings,
		target: func(t *testing.T, _ string) biTarget { return admin(translationSettings, translationSettings) },
		cases: []biCase{
			biUnknown(`{"enabled":false,"model":"big"}`, "model"),
			biWrongType(`{"enabled":"yes"}`, "enabled"),
			biWrongType(`{"enabled":true,"url":5}`, "url"),
			biWrongType(`{"enabled":false,"api_key":5}`, "api_key"),
			biOversized("url"),
			biInvalid("enabled absent", `{"url":"https://translate.example.com"}`, "enabled"),
			biInvalid("enabled without a url", `{"enabled":true}`, "url"),
			biInvalid("url in the network", `{"enabled":true,"url":"https://10.1.2.3"}`, "url"),
			biInvalid("url not https", `{"enabled":true,"url":"http://translate.example.com"}`, "url"),
			biInvalid("url with a NUL", `{"enabled":true,"url":"https://translate.example.com/`+nul+`"}`, "url"),
			biInvalid("provider unknown", `{"enabled":false,"provider":"deepl"}`, "provider"),
			biInvalid("api_key on two lines", `{"enabled":false,"api_key":"a\nb"}`, "api_key"),
			biInvalid("api_key over 1000 bytes", fmt.Sprintf(`{"enabled":false,"api_key":%q}`, long(1001)), "api_key"),
		}})
	add(biRoute{route: "POST /v1/messages/{id}/translate",
		target: func(t *testing.T, _ string) biTarget {
			fx.ok(t, fx.admin, http.MethodPut, translationSettings, `{"enabled":true,"url":"https://translator.invalid"}`)
			id := fx.conv(t, fx.q1, "new")
			return biTarget{path: "/v1/messages/" + fx.firstMessage(t, fx.admin, id) + "/translate", token: fx.admin,
				snap: fx.snap("/v1/conversations/" + id + "/messages")}
		},
		cases: []biCase{
			biUnknown(`{"to":"de","from":"fr"}`, "from"),
			biWrongType(`{"to":5}`, "to"),
			biOversized("to"),
			biInvalid("to absent", `{}`, "to"),
			biInvalid("to unknown", `{"to":"xx"}`, "to"),
			biInvalid("to with a NUL", `{"to":"`+nul+`"}`, "to"),
		}})

	var tagList string
	tags := make(map[string]string, 51)
	for i := 0; i < 51; i++ {
		tags[uuid.NewString()] = "x"
	}
	tagsJSON, _ := json.Marshal(map[string]any{"tags": tags})
	add(biRoute{route: "PATCH /v1/messages/{id}",
		target: func(t *testing.T, _ string) biTarget {
			if tagList == "" {
				tagList = fx.create(t, fx.admin, "/v1/admin/tag-lists", `{"name":"Reason","values":["late","broken"]}`)
			}
			id := fx.conv(t, fx.q1, "new")
			return biTarget{path: "/v1/messages/" + fx.firstMessage(t, fx.admin, id), token: fx.admin, snap: fx.convSnap(id),
				vars: map[string]string{"LIST": tagList}}
		},
		cases: []biCase{
			biUnknown(`{"language":"en","starred":true}`, "starred"),
			biWrongType(`{"tags":"late"}`, "tags"),
			biWrongType(`{"language":5}`, "language"),
			biOversized("language"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("language unknown", `{"language":"xx"}`, "language"),
			biInvalid("no such tag list", `{"tags":{"`+random+`":"late"}}`, "tags."+random),
			{kind: "invalid", name: "value not in the list", status: http.StatusBadRequest, field: "tags.{{LIST}}",
				body: `{"tags":{"{{LIST}}":"lost"}}`},
			biInvalid("51 tags", string(tagsJSON), "tags"),
		}})

	// --- Admin ---------------------------------------------------------

	named := func(base string) {
		existing := ""
		listOf := func(t *testing.T) {
			if existing == "" {
				existing = testkit.RandomName("taken-")
				fx.create(t, fx.admin, base, fmt.Sprintf(`{"name":%q}`, existing))
			}
		}
		nameCases := func() []biCase {
			return []biCase{
				biUnknown(`{"name":"Support","color":"red"}`, "color"),
				biWrongType(`{"name":5}`, "name"),
				biOversized("name"),
				biInvalid("name absent", `{}`, "name"),
				biInvalid("name blank", `{"name":"   "}`, "name"),
				biInvalid("name over 200 bytes", fmt.Sprintf(`{"name":%q}`, long(201)), "name"),
				biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
				{kind: "invalid", name: "name taken", body: `{"name":"{{EXISTING}}"}`, status: http.StatusBadRequest, field: "name"},
			}
		}
		add(biRoute{route: "POST " + base,
			target: func(t *testing.T, _ string) biTarget {
				listOf(t)
				return admin(base, base+"?limit=200").with("EXISTING", existing)
			},
			cases: nameCases()})
		add(biRoute{route: "PATCH " + base + "/{id}",
			target: func(t *testing.T, _ string) biTarget {
				listOf(t)
				id := fx.create(t, fx.admin, base, fmt.Sprintf(`{"name":%q}`, testkit.RandomName("n-")))
				return admin(base+"/"+id, base+"/"+id, base+"?limit=200").with("EXISTING", existing)
			},
			cases: nameCases()})
	}
	named("/v1/admin/queues")
	named("/v1/admin/skills")

	var takenEmail string
	user := func(extra string) string {
		return fmt.Sprintf(`{"email":"new@example.com","name":"New"%s}`, extra)
	}
	add(biRoute{route: "POST /v1/admin/users",
		target: func(t *testing.T, _ string) biTarget {
			if takenEmail == "" {
				takenEmail = testkit.RandomName("taken-") + "@example.com"
				fx.create(t, fx.admin, "/v1/admin/users", fmt.Sprintf(`{"email":%q,"name":"Taken"}`, takenEmail))
			}
			return admin("/v1/admin/users", "/v1/admin/users?limit=200").with("TAKEN", takenEmail)
		},
		cases: []biCase{
			biUnknown(user(`,"nickname":"N"`), "nickname"),
			biWrongType(user(`,"capacity":"many"`), "capacity"),
			biWrongType(user(`,"permissions":"moderate"`), "permissions"),
			biOversized("name"),
			biInvalid("email absent", `{"name":"New"}`, "email"),
			biInvalid("email not an address", `{"email":"new at example","name":"New"}`, "email"),
			biInvalid("email with NUL", `{"email":"new\u0000@example.com","name":"New"}`, "email"),
			{kind: "invalid", name: "email taken", body: `{"email":"{{TAKEN}}","name":"New"}`, status: http.StatusBadRequest, field: "email"},
			biInvalid("name absent", `{"email":"new@example.com"}`, "name"),
			biInvalid("name with NUL", `{"email":"new@example.com","name":"`+nul+`"}`, "name"),
			biInvalid("role unknown", user(`,"role":"root"`), "role"),
			biInvalid("permission unknown", user(`,"permissions":["fly"]`), "permissions"),
			biInvalid("language unknown", user(`,"languages":["xx"]`), "languages"),
			biInvalid("capacity over 100", user(`,"capacity":101`), "capacity"),
			biInvalid("capacity negative", user(`,"capacity":-1`), "capacity"),
			biInvalid("queue_ids not ids", user(`,"queue_ids":["support"]`), "queue_ids[0]"),
			biInvalid("no such queue", user(`,"queue_ids":["`+random+`"]`), "queue_ids[0]"),
			biInvalid("no such skill", user(`,"skill_ids":["`+random+`"]`), "skill_ids[0]"),
			biInvalid("password too short", user(`,"password":"short"`), "password"),
		}})

	add(biRoute{route: "PATCH /v1/admin/users/{id}",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, "/v1/admin/users", fmt.Sprintf(`{"email":%q,"name":"Target"}`, testkit.RandomName("u-")+"@example.com"))
			return admin("/v1/admin/users/"+id, "/v1/admin/users/"+id)
		},
		cases: []biCase{
			biUnknown(`{"nickname":"N"}`, "nickname"),
			biWrongType(`{"capacity":"many"}`, "capacity"),
			biWrongType(`{"queue_ids":"all"}`, "queue_ids"),
			biOversized("name"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("name empty", `{"name":""}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("email not an address", `{"email":"nope"}`, "email"),
			biInvalid("role unknown", `{"role":"root"}`, "role"),
			biInvalid("capacity over 100", `{"capacity":101}`, "capacity"),
			biInvalid("capacity too large for an int", `{"capacity":1e40}`, "capacity"),
			biInvalid("password empty", `{"password":""}`, "password"),
			biInvalid("skill_ids not ids", `{"skill_ids":["german"]}`, "skill_ids[0]"),
		}})

	values := make([]string, 501)
	for i := range values {
		values[i] = fmt.Sprint(i)
	}
	valuesJSON, _ := json.Marshal(map[string]any{"name": "Big", "values": values})
	tagListCases := func(create bool) []biCase {
		cs := []biCase{
			biUnknown(`{"name":"Mood","values":["happy"],"colour":"red"}`, "colour"),
			biWrongType(`{"name":"Mood","values":"happy"}`, "values"),
			biWrongType(`{"name":"Mood","values":["happy"],"mandatory":"yes"}`, "mandatory"),
			biOversized("name"),
			biInvalid("name empty", `{"name":"","values":["happy"]}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`","values":["happy"]}`, "name"),
			biInvalid("values empty", `{"name":"Mood","values":[]}`, "values"),
			biInvalid("value twice", `{"name":"Mood","values":["happy","happy"]}`, "values[1]"),
			biInvalid("value blank", `{"name":"Mood","values":[" "]}`, "values[0]"),
			biInvalid("value with NUL", `{"name":"Mood","values":["`+nul+`"]}`, "values[0]"),
			biInvalid("501 values", string(valuesJSON), "values"),
		}
		if create {
			return append(cs, biInvalid("values absent", `{"name":"Mood"}`, "values"))
		}
		return append(cs, biInvalid("nothing to change", `{}`, "body"))
	}
	add(biRoute{route: "POST /v1/admin/tag-lists",
		target: func(t *testing.T, _ string) biTarget {
			return admin("/v1/admin/tag-lists", "/v1/admin/tag-lists?limit=200")
		},
		cases: tagListCases(true)})
	add(biRoute{route: "PATCH /v1/admin/tag-lists/{id}",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, "/v1/admin/tag-lists", fmt.Sprintf(`{"name":%q,"values":["a","b"]}`, testkit.RandomName("l-")))
			return admin("/v1/admin/tag-lists/"+id, "/v1/admin/tag-lists/"+id, "/v1/admin/tag-lists?limit=200")
		},
		cases: tagListCases(false)})

	add(biRoute{route: "POST /v1/admin/api-tokens",
		target: func(t *testing.T, _ string) biTarget {
			return admin("/v1/admin/api-tokens", "/v1/admin/api-tokens?limit=200")
		},
		cases: []biCase{
			biUnknown(`{"name":"CRM","token":"sbt_mine"}`, "token"),
			biWrongType(`{"name":true}`, "name"),
			biWrongType(`{"name":"CRM","permissions":"all"}`, "permissions"),
			biOversized("name"),
			biInvalid("name absent", `{}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("role unknown", `{"name":"CRM","role":"root"}`, "role"),
			biInvalid("permission unknown", `{"name":"CRM","permissions":["fly"]}`, "permissions"),
		}})

	// Mailboxes: mbBody is a valid mailbox with change applied to it, as a
	// map of its JSON ("imap.port" reaches into imap; a nil value removes
	// the field).
	mbBody := func(change map[string]any) string {
		m := map[string]any{"name": "Support", "address": "support@example.com", "folder": "INBOX",
			"imap": map[string]any{"host": "imap.example.com", "port": 993, "tls": "tls", "username": "support@example.com", "password": "s3cret"},
			"smtp": map[string]any{"host": "smtp.example.com", "port": 587, "tls": "starttls", "username": "support@example.com", "password": "s3cret"}}
		for k, v := range change {
			obj := m
			if server, field, ok := strings.Cut(k, "."); ok {
				obj, k = m[server].(map[string]any), field
			}
			if v == nil {
				delete(obj, k)
			} else {
				obj[k] = v
			}
		}
		raw, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return string(raw)
	}
	const mailboxes = "/v1/admin/mailboxes"
	takenAddress := ""
	takeAddress := func(t *testing.T) {
		if takenAddress == "" {
			takenAddress = testkit.RandomName("taken-") + "@example.com"
			fx.create(t, fx.admin, mailboxes, mbBody(map[string]any{"address": takenAddress}))
		}
	}
	add(biRoute{route: "POST " + mailboxes,
		target: func(t *testing.T, _ string) biTarget {
			takeAddress(t)
			return admin(mailboxes, mailboxes+"?limit=200").with("TAKEN", takenAddress)
		},
		cases: []biCase{
			biUnknown(mbBody(map[string]any{"colour": "red"}), "colour"),
			// encoding/json names an unknown field without its path.
			biUnknown(mbBody(map[string]any{"imap.colour": "red"}), "colour"),
			biWrongType(mbBody(map[string]any{"imap.port": "993"}), "imap.port"),
			biWrongType(mbBody(map[string]any{"mark_seen": "yes"}), "mark_seen"),
			biWrongType(mbBody(map[string]any{"smtp": "smtp.example.com"}), "smtp"),
			biOversized("name"),
			biInvalid("name absent", mbBody(map[string]any{"name": nil}), "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("address absent", mbBody(map[string]any{"address": nil}), "address"),
			biInvalid("address not an address", mbBody(map[string]any{"address": "support at example"}), "address"),
			biInvalid("address with a display name", mbBody(map[string]any{"address": "Support <support@example.com>"}), "address"),
			{kind: "invalid", name: "address taken", body: mbBody(map[string]any{"address": "{{TAKEN}}"}), status: http.StatusBadRequest, field: "address"},
			biInvalid("display_name with a line break", mbBody(map[string]any{"display_name": "Support\r\nBcc: x@example.com"}), "display_name"),
			biInvalid("imap absent", mbBody(map[string]any{"imap": nil}), "imap"),
			biInvalid("smtp absent", mbBody(map[string]any{"smtp": nil}), "smtp"),
			biInvalid("imap.host absent", mbBody(map[string]any{"imap.host": nil}), "imap.host"),
			biInvalid("imap.host with a port", mbBody(map[string]any{"imap.host": "imap.example.com:993"}), "imap.host"),
			biInvalid("smtp.host not a name", mbBody(map[string]any{"smtp.host": "-smtp-.example.com"}), "smtp.host"),
			biInvalid("imap.port 0", mbBody(map[string]any{"imap.port": 0}), "imap.port"),
			biInvalid("smtp.port 65536", mbBody(map[string]any{"smtp.port": 65536}), "smtp.port"),
			biInvalid("imap.tls unknown", mbBody(map[string]any{"imap.tls": "ssl"}), "imap.tls"),
			biInvalid("smtp.tls absent", mbBody(map[string]any{"smtp.tls": nil}), "smtp.tls"),
			biInvalid("a username without a secret", mbBody(map[string]any{"imap.password": nil}), "imap.password"),
			biInvalid("a secret without a username", mbBody(map[string]any{"smtp.username": nil}), "smtp.username"),
			biInvalid("password with a line break", mbBody(map[string]any{"imap.password": "a\r\nb"}), "imap.password"),
			biInvalid("password with NUL", mbBody(map[string]any{"imap.password": "a\u0000b"}), "imap.password"),
			biInvalid("oauth2_token over 8192 bytes", mbBody(map[string]any{"smtp.oauth2_token": long(8193)}), "smtp.oauth2_token"),
			biInvalid("folder over 255 bytes", mbBody(map[string]any{"folder": long(256)}), "folder"),
			biInvalid("move_to the folder itself", mbBody(map[string]any{"move_to": "inbox"}), "move_to"),
			biInvalid("sent_folder with a line break", mbBody(map[string]any{"sent_folder": "Sent\n"}), "sent_folder"),
			biInvalid("reply_domain not a domain", mbBody(map[string]any{"reply_domain": "reply example"}), "reply_domain"),
			biInvalid("reply_domain an IP address", mbBody(map[string]any{"reply_domain": "192.0.2.1"}), "reply_domain"),
		}})
	add(biRoute{route: "PATCH " + mailboxes + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			takeAddress(t)
			id := fx.create(t, fx.admin, mailboxes, mbBody(map[string]any{"address": testkit.RandomName("mb-") + "@example.com"}))
			return admin(mailboxes+"/"+id, mailboxes+"/"+id, mailboxes+"?limit=200").with("TAKEN", takenAddress)
		},
		cases: []biCase{
			biUnknown(`{"colour":"red"}`, "colour"),
			biWrongType(`{"imap":{"port":"993"}}`, "imap.port"),
			biWrongType(`{"imap":{"insecure_skip_verify":"no"}}`, "imap.insecure_skip_verify"),
			biOversized("name"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("name empty", `{"name":""}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("address not an address", `{"address":"nope"}`, "address"),
			{kind: "invalid", name: "address taken", body: `{"address":"{{TAKEN}}"}`, status: http.StatusBadRequest, field: "address"},
			biInvalid("imap.host emptied", `{"imap":{"host":""}}`, "imap.host"),
			biInvalid("imap.port 0", `{"imap":{"port":0}}`, "imap.port"),
			biInvalid("smtp.tls unknown", `{"smtp":{"tls":"ssl"}}`, "smtp.tls"),
			biInvalid("the only secret removed", `{"imap":{"password":""}}`, "imap.password"),
			biInvalid("password with NUL", `{"smtp":{"password":"`+nul+`"}}`, "smtp.password"),
			biInvalid("move_to the folder itself", `{"move_to":"INBOX"}`, "move_to"),
			biInvalid("reply_domain not a domain", `{"reply_domain":"-"}`, "reply_domain"),
		}})

	// SMS accounts: smsBody is a valid account with change applied to it,
	// as a map of its JSON (a nil value removes the field); each gets a
	// number of its own, so that only the case's change can be wrong.
	smsBody := func(change map[string]any) string {
		m := map[string]any{"name": "Support line", "account_sid": smsAccountSID, "auth_token": smsAuthToken,
			"api_key_sid": smsKeySID, "api_key_secret": smsKeySecret, "numbers": []string{smsNumber()}, "messaging_service_sids": []string{smsServiceSID}}
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		raw, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return string(raw)
	}
	const smsAccounts = "/v1/admin/sms-accounts"
	takenNumber := ""
	takeNumber := func(t *testing.T) {
		if takenNumber == "" {
			takenNumber = smsNumber()
			fx.create(t, fx.admin, smsAccounts, smsAccountBody(takenNumber))
		}
	}
	manyNumbers := make([]string, 101)
	for i := range manyNumbers {
		manyNumbers[i] = fmt.Sprintf("+1555%07d", i)
	}
	add(biRoute{route: "POST " + smsAccounts,
		target: func(t *testing.T, _ string) biTarget {
			takeNumber(t)
			return admin(smsAccounts, smsAccounts+"?limit=200").with("TAKEN", takenNumber)
		},
		cases: []biCase{
			biUnknown(smsBody(map[string]any{"colour": "red"}), "colour"),
			biUnknown(smsBody(map[string]any{"auth_token_set": true}), "auth_token_set"),
			biWrongType(smsBody(map[string]any{"numbers": "+14155550100"}), "numbers"),
			biWrongType(smsBody(map[string]any{"numbers": []int{14155550100}}), "numbers"),
			biWrongType(smsBody(map[string]any{"auth_token": 12345}), "auth_token"),
			biWrongType(smsBody(map[string]any{"messaging_service_sids": map[string]string{"a": "b"}}), "messaging_service_sids"),
			biOversized("name"),
			biInvalid("name absent", smsBody(map[string]any{"name": nil}), "name"),
			biInvalid("name with NUL", smsBody(map[string]any{"name": "a\u0000b"}), "name"),
			biInvalid("name over 200 bytes", smsBody(map[string]any{"name": long(201)}), "name"),
			biInvalid("account_sid absent", smsBody(map[string]any{"account_sid": nil}), "account_sid"),
			biInvalid("account_sid not an account's", smsBody(map[string]any{"account_sid": smsKeySID}), "account_sid"),
			biInvalid("account_sid upper case", smsBody(map[string]any{"account_sid": "AC0123456789ABCDEF0123456789ABCDEF"}), "account_sid"),
			biInvalid("auth_token absent", smsBody(map[string]any{"auth_token": nil}), "auth_token"),
			biInvalid("auth_token short", smsBody(map[string]any{"auth_token": smsAuthToken[:31]}), "auth_token"),
			biInvalid("auth_token with a line break", smsBody(map[string]any{"auth_token": smsAuthToken[:31] + "\n"}), "auth_token"),
			biInvalid("auth_token over 8 KiB", smsBody(map[string]any{"auth_token": long(9000)}), "auth_token"),
			biInvalid("api_key_sid without its secret", smsBody(map[string]any{"api_key_secret": nil}), "api_key_secret"),
			biInvalid("api_key_secret without its SID", smsBody(map[string]any{"api_key_sid": nil}), "api_key_sid"),
			biInvalid("api_key_sid not a key's", smsBody(map[string]any{"api_key_sid": smsAccountSID}), "api_key_sid"),
			biInvalid("api_key_secret short", smsBody(map[string]any{"api_key_secret": "abc"}), "api_key_secret"),
			biInvalid("neither number nor service", smsBody(map[string]any{"numbers": nil, "messaging_service_sids": nil}), "numbers"),
			biInvalid("number not E.164", smsBody(map[string]any{"numbers": []string{"0612345678"}}), "numbers[0]"),
			biInvalid("number with spaces", smsBody(map[string]any{"numbers": []string{"+1 415 555 0100"}}), "numbers[0]"),
			biInvalid("number twice", smsBody(map[string]any{"numbers": []string{"+15550000001", "+15550000001"}}), "numbers[1]"),
			biInvalid("101 numbers", smsBody(map[string]any{"numbers": manyNumbers}), "numbers"),
			{kind: "invalid", name: "number taken", body: smsBody(map[string]any{"numbers": []string{"+15550000002", "{{TAKEN}}"}}),
				status: http.StatusBadRequest, field: "numbers[1]"},
			biInvalid("messaging service not a service", smsBody(map[string]any{"messaging_service_sids": []string{smsAccountSID}}), "messaging_service_sids[0]"),
		}})
	add(biRoute{route: "PATCH " + smsAccounts + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			takeNumber(t)
			id := fx.create(t, fx.admin, smsAccounts, smsAccountBody(smsNumber()))
			return admin(smsAccounts+"/"+id, smsAccounts+"/"+id, smsAccounts+"?limit=200").with("TAKEN", takenNumber)
		},
		cases: []biCase{
			biUnknown(`{"colour":"red"}`, "colour"),
			biUnknown(`{"api_key_secret_set":false}`, "api_key_secret_set"),
			biWrongType(`{"numbers":"+14155550100"}`, "numbers"),
			biWrongType(`{"name":5}`, "name"),
			biOversized("name"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("name empty", `{"name":""}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("account_sid wrong", `{"account_sid":"AC1","auth_token":"`+smsNewToken+`"}`, "account_sid"),
			biInvalid("account_sid changed without its token", `{"account_sid":"AC00000000000000000000000000000000"}`, "auth_token"),
			biInvalid("auth_token emptied", `{"auth_token":""}`, "auth_token"),
			biInvalid("auth_token short", `{"auth_token":"abc"}`, "auth_token"),
			biInvalid("api_key_sid changed without its secret", `{"api_key_sid":"SK00000000000000000000000000000000"}`, "api_key_secret"),
			biInvalid("api_key_secret emptied", `{"api_key_secret":""}`, "api_key_secret"),
			biInvalid("numbers and services emptied", `{"numbers":[],"messaging_service_sids":[]}`, "numbers"),
			biInvalid("number not E.164", `{"numbers":["+0"]}`, "numbers[0]"),
			biInvalid("number twice", `{"numbers":["+15550000003","+15550000003"]}`, "numbers[1]"),
			{kind: "invalid", name: "number taken", body: `{"numbers":["{{TAKEN}}"]}`, status: http.StatusBadRequest, field: "numbers[0]"},
			biInvalid("messaging service wrong", `{"messaging_service_sids":["MG"]}`, "messaging_service_sids[0]"),
		}})

	// Chat channels: the secrets are the server's to make, the endpoint
	// must pass the egress policy.
	const chatChannels = "/v1/admin/chat-channels"
	chatCases := []biCase{
		biInvalid("url http", `{"name":"C","outbound":{"url":"http://bots.example.com/hook"}}`, "outbound.url"),
		biInvalid("url private", `{"name":"C","outbound":{"url":"https://10.1.2.3/hook"}}`, "outbound.url"),
		biInvalid("url loopback", `{"name":"C","outbound":{"url":"https://127.0.0.1/hook"}}`, "outbound.url"),
		biInvalid("url metadata", `{"name":"C","outbound":{"url":"https://169.254.169.254/latest"}}`, "outbound.url"),
		biInvalid("url with a password", `{"name":"C","outbound":{"url":"https://a:b@bots.example.com/hook"}}`, "outbound.url"),
		biInvalid("url not a URL", `{"name":"C","outbound":{"url":"bots"}}`, "outbound.url"),
		biInvalid("url too long", `{"name":"C","outbound":{"url":"https://bots.example.com/`+long(2048)+`"}}`, "outbound.url"),
		biInvalid("events without message.created", `{"name":"C","outbound":{"url":"https://bots.example.com","events":["bot.control"]}}`, "outbound.events"),
		biInvalid("event unknown", `{"name":"C","outbound":{"url":"https://bots.example.com","events":["message.created","typing"]}}`, "outbound.events[1]"),
		biInvalid("event twice", `{"name":"C","outbound":{"url":"https://bots.example.com","events":["message.created","message.created"]}}`, "outbound.events[1]"),
	}
	add(biRoute{route: "POST " + chatChannels,
		target: func(t *testing.T, _ string) biTarget { return admin(chatChannels, chatChannels+"?limit=200") },
		cases: append([]biCase{
			biUnknown(`{"name":"C","secret":"mine"}`, "secret"),
			biUnknown(`{"name":"C","outbound":{"url":"https://bots.example.com","secrets":["mine"]}}`, "secrets"),
			biWrongType(`{"name":5}`, "name"),
			biWrongType(`{"name":"C","outbound":"https://bots.example.com"}`, "outbound"),
			biWrongType(`{"name":"C","outbound":{"url":"https://bots.example.com","disabled":"no"}}`, "outbound.disabled"),
			biOversized("name"),
			biInvalid("name absent", `{}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
		}, chatCases...)})
	add(biRoute{route: "PATCH " + chatChannels + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, chatChannels, chatChannelBody(testkit.RandomName("c-")))
			return admin(chatChannels+"/"+id, chatChannels+"/"+id, chatChannels+"?limit=200")
		},
		cases: append([]biCase{
			biUnknown(`{"colour":"red"}`, "colour"),
			biUnknown(`{"outbound":{"secret":"mine"}}`, "outbound.secret"),
			biWrongType(`{"name":5}`, "name"),
			biWrongType(`{"outbound":5}`, "outbound"),
			biWrongType(`{"outbound":{"disabled":"yes"}}`, "outbound.disabled"),
			biOversized("name"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("outbound empty", `{"outbound":{}}`, "outbound"),
			biInvalid("name blank", `{"name":" "}`, "name"),
			biInvalid("events empty", `{"outbound":{"events":[]}}`, "outbound.events"),
		}, chatCases...)})
	add(biRoute{route: "POST " + chatChannels + "/{id}/rotate-secret",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, chatChannels, chatChannelBody(testkit.RandomName("c-")))
			return admin(chatChannels+"/"+id+"/rotate-secret", chatChannels+"/"+id)
		},
		cases: []biCase{
			biUnknown(`{"which":"inbound","secret":"mine"}`, "secret"),
			biWrongType(`{"which":5}`, "which"),
			biWrongType(`{"which":"inbound","finish":"yes"}`, "finish"),
			biOversized("which"),
			biInvalid("which absent", `{}`, "which"),
			biInvalid("which unknown", `{"which":"both"}`, "which"),
		}})

	// Replays: a failed message of A, which a wrongly accepted call would
	// send again.
	const deliveries = "/v1/admin/deliveries"
	add(biRoute{route: "POST " + deliveries + "/replay",
		target: func(t *testing.T, _ string) biTarget {
			fx.failedMessage(t)
			return admin(deliveries+"/replay", deliveries+"?limit=200")
		},
		cases: []biCase{
			biUnknown(`{"channel":"chat","all":true}`, "all"),
			biWrongType(`{"channel":5}`, "channel"),
			biWrongType(`[]`, "body"),
			biOversized("channel"),
			biInvalid("channel unknown", `{"channel":"fax"}`, "channel"),
			biInvalid("channel with NUL", `{"channel":"`+nul+`"}`, "channel"),
		}})
	add(biRoute{route: "POST " + deliveries + "/{id}/replay",
		target: func(t *testing.T, _ string) biTarget {
			conv, msg := fx.failedMessage(t)
			return admin(deliveries+"/"+msg+"/replay", deliveries+"?limit=200", "/v1/conversations/"+conv+"/messages?limit=200")
		},
		cases: []biCase{
			biUnknown(`{"force":true}`, "force"),
			biWrongType(`[]`, "body"),
			biOversized("force"),
		}})

	// The admin's duties on data take no body: one is refused before
	// anything is erased.
	add(biRoute{route: "POST /v1/admin/messages/{id}/anonymise",
		target: func(t *testing.T, _ string) biTarget {
			conv, msg := fx.emailConv(t, fx.q1, "new")
			return admin("/v1/admin/messages/"+msg+"/anonymise", "/v1/conversations/"+conv+"/messages?limit=200", "/v1/admin/audit")
		},
		cases: []biCase{
			biUnknown(`{"keep_attachments":true}`, "keep_attachments"),
			biWrongType(`[]`, "body"),
			biOversized("reason"),
		}})
	add(biRoute{route: "POST /v1/admin/contacts/{id}/erase",
		target: func(t *testing.T, _ string) biTarget {
			id, _ := fx.contact(t, fx.admin)
			return admin("/v1/admin/contacts/"+id+"/erase", "/v1/contacts/"+id, "/v1/admin/audit")
		},
		cases: []biCase{
			biUnknown(`{"keep_notes":true}`, "keep_notes"),
			biWrongType(`[]`, "body"),
			biOversized("reason"),
		}})

	// --- Routing at creation ------------------------------------------

	add(biRoute{route: "PUT /v1/admin/channel-accounts/{id}/routing",
		target: func(t *testing.T, _ string) biTarget {
			path := "/v1/admin/channel-accounts/" + fx.spareChatChannel(t) + "/routing"
			return admin(path, "/v1/admin/channel-accounts?limit=200")
		},
		cases: []biCase{
			biUnknown(`{"default_queue_id":null,"queue_id":null}`, "queue_id"),
			biWrongType(`{"default_queue_id":5}`, "default_queue_id"),
			biWrongType(`[]`, "body"),
			biOversized("default_queue_id"),
			biInvalid("default_queue_id absent", `{}`, "default_queue_id"),
			biInvalid("default_queue_id not an id", `{"default_queue_id":"support"}`, "default_queue_id"),
			biInvalid("no such queue", `{"default_queue_id":"`+random+`"}`, "default_queue_id"),
		}})

	const templates = "/v1/admin/templates"
	templateCases := func(create bool) []biCase {
		cs := []biCase{
			biUnknown(`{"name":"T","colour":"red"}`, "colour"),
			biUnknown(`{"name":"T","bodies":{"fax":{"text":"x"}}}`, "fax"),
			biWrongType(`{"name":5}`, "name"),
			biWrongType(`{"name":"T","bodies":{"chat":"x"}}`, "bodies.chat"),
			biOversized("name"),
			biInvalid("name with NUL", `{"name":"`+nul+`","bodies":{"chat":{"text":"x"}}}`, "name"),
			biInvalid("keyword upper case", `{"name":"T","keyword":"Hello","bodies":{"chat":{"text":"x"}}}`, "keyword"),
			biInvalid("keyword over 32", fmt.Sprintf(`{"name":"T","keyword":%q,"bodies":{"chat":{"text":"x"}}}`, strings.Repeat("k", 33)), "keyword"),
			biInvalid("no body", `{"name":"T","bodies":{}}`, "bodies"),
			biInvalid("chat text blank", `{"name":"T","bodies":{"chat":{"text":" "}}}`, "bodies.chat.text"),
			biInvalid("unknown variable", `{"name":"T","bodies":{"sms":{"text":"{{price}}"}}}`, "bodies.sms.text"),
			biInvalid("unclosed variable", `{"name":"T","bodies":{"chat":{"text":"{{customer_name"}}}`, "bodies.chat.text"),
			biInvalid("bad contact field", `{"name":"T","bodies":{"chat":{"text":"{{contact.Plan}}"}}}`, "bodies.chat.text"),
			biInvalid("subject on two lines", `{"name":"T","bodies":{"email":{"subject":"a\nb","text":"x"}}}`, "bodies.email.subject"),
			biInvalid("email says nothing", `{"name":"T","bodies":{"email":{"html":"<script>x</script>"}}}`, "bodies.email"),
			biInvalid("queue_id not an id", `{"name":"T","queue_id":"support","bodies":{"chat":{"text":"x"}}}`, "queue_id"),
			biInvalid("no such queue", `{"name":"T","queue_id":"`+random+`","bodies":{"chat":{"text":"x"}}}`, "queue_id"),
			biInvalid("attachment not an id", `{"name":"T","bodies":{"chat":{"text":"x"}},"attachments":["a"]}`, "attachments[0]"),
			biInvalid("no such upload", `{"name":"T","bodies":{"chat":{"text":"x"}},"attachments":["`+random+`"]}`, "attachments[0]"),
			biInvalid("4 attachments", fmt.Sprintf(`{"name":"T","bodies":{"chat":{"text":"x"}},"attachments":[%q,%q,%q,%q]}`,
				uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()), "attachments"),
		}
		if create {
			return append(cs, biInvalid("name absent", `{"bodies":{"chat":{"text":"x"}}}`, "name"), biInvalid("bodies absent", `{"name":"T"}`, "bodies"))
		}
		return append(cs, biInvalid("nothing to change", `{}`, "body"))
	}
	add(biRoute{route: "POST " + templates,
		target: func(t *testing.T, _ string) biTarget { return admin(templates, templates+"?limit=200") },
		cases:  templateCases(true)})
	add(biRoute{route: "PATCH " + templates + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, templates, `{"name":"Patch me","bodies":{"chat":{"text":"x"}}}`)
			return admin(templates+"/"+id, templates+"/"+id, templates+"?limit=200")
		},
		cases: templateCases(false)})
	add(biRoute{route: "POST /v1/conversations/{id}/templates/{template_id}/render",
		target: func(t *testing.T, state string) biTarget {
			tg := conversation("", "assigned")(t, state)
			id := fx.create(t, fx.admin, templates, `{"name":"Render","bodies":{"chat":{"text":"x"}}}`)
			tg.path += "/templates/" + id + "/render"
			return tg
		},
		anyState: true,
		cases: []biCase{
			biUnknown(`{"text":"x"}`, "text"),
			biWrongType(`[]`, "body"),
			biOversized("text"),
		}})

	const rules = "/v1/admin/routing-rules"
	keywords := make([]string, 101)
	for i := range keywords {
		keywords[i] = fmt.Sprintf("k%d", i)
	}
	keywordsJSON, _ := json.Marshal(map[string]any{"name": "Many", "conditions": map[string]any{"keywords": keywords}})
	takenRule := ""
	ruleCases := func(create bool) []biCase {
		cs := []biCase{
			biUnknown(`{"name":"R","colour":"red"}`, "colour"),
			biUnknown(`{"name":"R","conditions":{"subject":["refund"]}}`, "subject"),
			biWrongType(`{"name":"R","conditions":{"keywords":"refund"}}`, "conditions.keywords"),
			biWrongType(`{"name":"R","conditions":[]}`, "conditions"),
			biWrongType(`{"name":"R","priority":"high"}`, "priority"),
			biWrongType(`{"name":"R","queue_id":5}`, "queue_id"),
			biOversized("name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("name over 200 bytes", fmt.Sprintf(`{"name":%q}`, long(201)), "name"),
			{kind: "invalid", name: "name taken", body: `{"name":"{{TAKEN}}"}`, status: http.StatusBadRequest, field: "name"},
			biInvalid("keyword empty", `{"name":"R","conditions":{"keywords":[""]}}`, "conditions.keywords[0]"),
			biInvalid("keyword over 100 characters", fmt.Sprintf(`{"name":"R","conditions":{"keywords":[%q]}}`, long(101)), "conditions.keywords[0]"),
			biInvalid("keyword without a letter", `{"name":"R","conditions":{"keywords":["ok","?!"]}}`, "conditions.keywords[1]"),
			biInvalid("keyword with NUL", `{"name":"R","conditions":{"keywords":["`+nul+`"]}}`, "conditions.keywords[0]"),
			biInvalid("101 keywords", string(keywordsJSON), "conditions.keywords"),
			biInvalid("channel unknown", `{"name":"R","conditions":{"channels":["fax"]}}`, "conditions.channels[0]"),
			biInvalid("language unknown", `{"name":"R","conditions":{"languages":["fr","fra"]}}`, "conditions.languages[1]"),
			biInvalid("identity with a space", `{"name":"R","conditions":{"customer_identities":["+33 6 12 34 56 78"]}}`, "conditions.customer_identities[0]"),
			biInvalid("channel account not an id", `{"name":"R","conditions":{"channel_account_ids":["chat"]}}`, "conditions.channel_account_ids[0]"),
			biInvalid("no such channel account", `{"name":"R","conditions":{"channel_account_ids":["`+random+`"]}}`, "conditions.channel_account_ids[0]"),
			biInvalid("no such contact", `{"name":"R","conditions":{"contact_ids":["`+random+`"]}}`, "conditions.contact_ids[0]"),
			biInvalid("queue_id not an id", `{"name":"R","queue_id":"support"}`, "queue_id"),
			biInvalid("no such queue", `{"name":"R","queue_id":"`+random+`"}`, "queue_id"),
			biInvalid("no such skill", `{"name":"R","required_skill_id":"`+random+`"}`, "required_skill_id"),
			biInvalid("required_language unknown", `{"name":"R","required_language":"french"}`, "required_language"),
			biInvalid("priority over 10", `{"name":"R","priority":11}`, "priority"),
			biInvalid("priority not an integer", `{"name":"R","priority":2.5}`, "priority"),
		}
		if create {
			return append(cs, biInvalid("name absent", `{"priority":1}`, "name"))
		}
		return append(cs, biInvalid("nothing to change", `{}`, "body"))
	}
	takeRule := func(t *testing.T) {
		if takenRule == "" {
			takenRule = testkit.RandomName("taken-")
			fx.create(t, fx.admin, rules, routingRuleBody(takenRule))
		}
	}
	add(biRoute{route: "POST " + rules,
		target: func(t *testing.T, _ string) biTarget {
			takeRule(t)
			return admin(rules, rules).with("TAKEN", takenRule)
		},
		cases: ruleCases(true)})
	add(biRoute{route: "PATCH " + rules + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			takeRule(t)
			id := fx.create(t, fx.admin, rules, routingRuleBody(testkit.RandomName("r-")))
			return admin(rules+"/"+id, rules+"/"+id, rules).with("TAKEN", takenRule)
		},
		cases: ruleCases(false)})
	add(biRoute{route: "PUT " + rules + "/order",
		target: func(t *testing.T, _ string) biTarget {
			takeRule(t)
			id := fx.create(t, fx.admin, rules, routingRuleBody(testkit.RandomName("r-")))
			return admin(rules+"/order", rules).with("RULE", id)
		},
		cases: []biCase{
			biUnknown(`{"ids":[],"reverse":true}`, "reverse"),
			biWrongType(`{"ids":"{{RULE}}"}`, "ids"),
			biWrongType(`{"ids":[5]}`, "ids"),
			biOversized("ids"),
			biInvalid("ids absent", `{}`, "ids"),
			biInvalid("not an id", `{"ids":["first"]}`, "ids[0]"),
			biInvalid("no such rule", `{"ids":["{{RULE}}","`+random+`"]}`, "ids[1]"),
			biInvalid("a rule twice", `{"ids":["{{RULE}}","{{RULE}}"]}`, "ids[1]"),
			biInvalid("rules missing", `{"ids":["{{RULE}}"]}`, "ids"),
		}})

	// --- The reply assistant's knowledge base --------------------------

	var takenGroup, kbGroupID string
	takeGroup := func(t *testing.T) {
		if takenGroup == "" {
			takenGroup = testkit.RandomName("kg-")
			kbGroupID = fx.create(t, fx.admin, kbGroups, fmt.Sprintf(`{"name":%q}`, takenGroup))
		}
	}
	groupCases := []biCase{
		biUnknown(`{"name":"G","colour":"red"}`, "colour"),
		biWrongType(`{"name":5}`, "name"),
		biWrongType(`[]`, "body"),
		biOversized("name"),
		biInvalid("name absent", `{}`, "name"),
		biInvalid("name blank", `{"name":"  "}`, "name"),
		biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
		biInvalid("name over 200 bytes", fmt.Sprintf(`{"name":%q}`, long(201)), "name"),
		{kind: "invalid", name: "name taken", body: `{"name":"{{TAKEN}}"}`, status: http.StatusBadRequest, field: "name"},
	}
	add(biRoute{route: "POST " + kbGroups,
		target: func(t *testing.T, _ string) biTarget {
			takeGroup(t)
			return admin(kbGroups, kbGroups+"?limit=200").with("TAKEN", takenGroup)
		},
		cases: groupCases})
	add(biRoute{route: "PATCH " + kbGroups + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			takeGroup(t)
			id := fx.create(t, fx.admin, kbGroups, fmt.Sprintf(`{"name":%q}`, testkit.RandomName("kg-")))
			return admin(kbGroups+"/"+id, kbGroups+"/"+id, kbGroups+"?limit=200").with("TAKEN", takenGroup)
		},
		cases: groupCases})
	manyKeywords, _ := json.Marshal(map[string]any{"title": "T", "body": "B", "keywords": strings.Split(strings.Repeat("k,", 20)+"k", ",")})
	entryCases := func(create bool) []biCase {
		g := func(rest string) string { return `{"group_id":"{{GROUP}}",` + rest + `}` }
		cs := []biCase{
			biUnknown(g(`"title":"T","body":"B","answer":"x"`), "answer"),
			biWrongType(g(`"title":"T","body":"B","keywords":"refund"`), "keywords"),
			biWrongType(g(`"title":5,"body":"B"`), "title"),
			biWrongType(`{"group_id":5,"title":"T","body":"B"}`, "group_id"),
			biWrongType(g(`"title":"T","body":"B","queue_id":5`), "queue_id"),
			biOversized("body"),
			biInvalid("group_id not an id", `{"group_id":"faq","title":"T","body":"B"}`, "group_id"),
			biInvalid("no such group", `{"group_id":"`+random+`","title":"T","body":"B"}`, "group_id"),
			biInvalid("queue_id not an id", g(`"title":"T","body":"B","queue_id":"support"`), "queue_id"),
			biInvalid("no such queue", g(`"title":"T","body":"B","queue_id":"`+random+`"`), "queue_id"),
			biInvalid("title blank", g(`"title":" ","body":"B"`), "title"),
			biInvalid("title over 200 bytes", g(fmt.Sprintf(`"title":%q,"body":"B"`, long(201))), "title"),
			biInvalid("title with NUL", g(`"title":"`+nul+`","body":"B"`), "title"),
			biInvalid("body blank", g(`"title":"T","body":""`), "body"),
			biInvalid("body over 10,000 bytes", g(fmt.Sprintf(`"title":"T","body":%q`, long(10001))), "body"),
			biInvalid("keyword blank", g(`"title":"T","body":"B","keywords":["ok"," "]`), "keywords[1]"),
			biInvalid("keyword over 50 bytes", g(fmt.Sprintf(`"title":"T","body":"B","keywords":[%q]`, long(51))), "keywords[0]"),
			biInvalid("21 keywords", strings.Replace(string(manyKeywords), "{", `{"group_id":"{{GROUP}}",`, 1), "keywords"),
		}
		if create {
			return append(cs,
				biInvalid("group_id absent", `{"title":"T","body":"B"}`, "group_id"),
				biInvalid("title absent", g(`"body":"B"`), "title"),
				biInvalid("body absent", g(`"title":"T"`), "body"))
		}
		return append(cs, biInvalid("nothing to change", `{}`, "body"))
	}
	add(biRoute{route: "POST " + kbEntries,
		target: func(t *testing.T, _ string) biTarget {
			takeGroup(t)
			return admin(kbEntries, kbEntries+"?limit=200").with("GROUP", kbGroupID)
		},
		cases: entryCases(true)})
	add(biRoute{route: "PATCH " + kbEntries + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			takeGroup(t)
			id := fx.create(t, fx.admin, kbEntries, fmt.Sprintf(`{"group_id":%q,"title":"Refunds","body":"Within 14 days."}`, kbGroupID))
			return admin(kbEntries+"/"+id, kbEntries+"/"+id, kbEntries+"?limit=200").with("GROUP", kbGroupID)
		},
		cases: entryCases(false)})

	// --- Contacts --------------------------------------------------------

	ident := func(channel, identity string) string {
		return fmt.Sprintf(`{"name":"Ada","identities":[{"channel":%q,"identity":%q}]}`, channel, identity)
	}
	var heldIdentity string
	add(biRoute{route: "POST /v1/contacts",
		target: func(t *testing.T, _ string) biTarget {
			if heldIdentity == "" {
				_, heldIdentity = fx.contact(t, fx.admin)
			}
			return admin("/v1/contacts", "/v1/contacts?limit=200").with("HELD", heldIdentity)
		},
		cases: []biCase{
			biUnknown(`{"name":"Ada","nickname":"A","identities":[{"channel":"chat","identity":"ada-1"}]}`, "nickname"),
			biWrongType(`{"name":5,"identities":[{"channel":"chat","identity":"ada-1"}]}`, "name"),
			biWrongType(`{"name":"Ada","identities":{"channel":"chat","identity":"ada-1"}}`, "identities"),
			biOversized("name"),
			biInvalid("identities absent", `{"name":"Ada"}`, "identities"),
			biInvalid("channel unknown", ident("fax", "+33612345678"), "identities[0].channel"),
			biInvalid("email not an address", ident("email", "ada at example"), "identities[0].identity"),
			biInvalid("sms not E.164", ident("sms", "0612345678"), "identities[0].identity"),
			biInvalid("chat identity with NUL", `{"identities":[{"channel":"chat","identity":"`+nul+`"}]}`, "identities[0].identity"),
			biInvalid("identity twice", `{"identities":[{"channel":"chat","identity":"x"},{"channel":"chat","identity":"x"}]}`, "identities[1]"),
			biInvalid("name on two lines", `{"name":"a\nb","identities":[{"channel":"chat","identity":"ada-1"}]}`, "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`","identities":[{"channel":"chat","identity":"ada-1"}]}`, "name"),
			biInvalid("avatar_url javascript", `{"avatar_url":"javascript:alert(1)","identities":[{"channel":"chat","identity":"ada-1"}]}`, "avatar_url"),
			biInvalid("preferred_language unknown", `{"preferred_language":"french","identities":[{"channel":"chat","identity":"ada-1"}]}`, "preferred_language"),
			{kind: "invalid", name: "identity held by another contact", status: http.StatusConflict, field: "identities[1].identity",
				body: `{"identities":[{"channel":"chat","identity":"ada-1"},{"channel":"chat","identity":"{{HELD}}"}]}`},
		}})

	contact := func(suffix string, notes bool) func(t *testing.T, _ string) biTarget {
		return func(t *testing.T, _ string) biTarget {
			id, _ := fx.contact(t, fx.admin)
			snap := []string{"/v1/contacts/" + id}
			if notes {
				snap = append(snap, "/v1/contacts/"+id+"/notes?limit=200")
			}
			return admin("/v1/contacts/"+id+suffix, snap...)
		}
	}
	add(biRoute{route: "PATCH /v1/contacts/{id}", target: contact("", false),
		cases: []biCase{
			biUnknown(`{"nickname":"A"}`, "nickname"),
			biWrongType(`{"name":5}`, "name"),
			biOversized("name"),
			biInvalid("nothing to change", `{}`, "body"),
			biInvalid("name over 200 bytes", fmt.Sprintf(`{"name":%q}`, long(201)), "name"),
			biInvalid("name with NUL", `{"name":"`+nul+`"}`, "name"),
			biInvalid("avatar_url not http", `{"avatar_url":"data:image/png;base64,AAAA"}`, "avatar_url"),
			biInvalid("preferred_language unknown", `{"preferred_language":"french"}`, "preferred_language"),
			biWrongType(`{"custom_fields":{"plan":5}}`, "custom_fields"),
			biInvalid("custom field name upper case", `{"custom_fields":{"Plan":"gold"}}`, "custom_fields"),
			biInvalid("custom field value on two lines", `{"custom_fields":{"plan":"a\nb"}}`, "custom_fields.plan"),
			biInvalid("custom field value over 1000 bytes", fmt.Sprintf(`{"custom_fields":{"plan":%q}}`, long(1001)), "custom_fields.plan"),
		}})

	add(biRoute{route: "POST /v1/contacts/{id}/identities",
		target: func(t *testing.T, _ string) biTarget {
			if heldIdentity == "" {
				_, heldIdentity = fx.contact(t, fx.admin)
			}
			return contact("/identities", false)(t, "").with("HELD", heldIdentity)
		},
		cases: []biCase{
			biUnknown(`{"channel":"chat","identity":"ada-2","primary":true}`, "primary"),
			biWrongType(`{"channel":5,"identity":"ada-2"}`, "channel"),
			biOversized("identity"),
			biInvalid("channel unknown", `{"channel":"fax","identity":"+33612345678"}`, "channel"),
			biInvalid("channel absent", `{"identity":"ada-2"}`, "channel"),
			biInvalid("email not an address", `{"channel":"email","identity":"Ada <ada@example.com>"}`, "identity"),
			biInvalid("sms not E.164", `{"channel":"sms","identity":"+0612"}`, "identity"),
			biInvalid("chat identity empty", `{"channel":"chat","identity":""}`, "identity"),
			biInvalid("chat identity over 256 bytes", fmt.Sprintf(`{"channel":"chat","identity":%q}`, long(257)), "identity"),
			{kind: "invalid", name: "identity held by another contact", status: http.StatusConflict, field: "identity",
				body: `{"channel":"chat","identity":"{{HELD}}"}`},
		}})

	add(biRoute{route: "POST /v1/contacts/{id}/merge",
		target: func(t *testing.T, _ string) biTarget {
			keep, _ := fx.contact(t, fx.admin)
			other, _ := fx.contact(t, fx.admin)
			return admin("/v1/contacts/"+keep+"/merge", "/v1/contacts/"+keep, "/v1/contacts/"+other, "/v1/contacts?limit=200").with("SELF", keep)
		},
		cases: []biCase{
			biUnknown(`{"contact_id":"`+random+`","force":true}`, "force"),
			biWrongType(`{"contact_id":5}`, "contact_id"),
			biOversized("contact_id"),
			biInvalid("contact_id absent", `{}`, "contact_id"),
			biInvalid("contact_id not an id", `{"contact_id":"ada"}`, "contact_id"),
			{kind: "invalid", name: "into itself", status: http.StatusBadRequest, field: "contact_id", body: `{"contact_id":"{{SELF}}"}`},
		}})

	add(biRoute{route: "POST /v1/contacts/{id}/notes", target: contact("/notes", true),
		cases: []biCase{
			biUnknown(`{"body":"called","pinned":true}`, "pinned"),
			biWrongType(`{"body":5}`, "body"),
			biOversized("body"),
			biInvalid("body absent", `{}`, "body"),
			biInvalid("body blank", `{"body":"  "}`, "body"),
			biInvalid("body over 10000 bytes", fmt.Sprintf(`{"body":%q}`, long(10001)), "body"),
			biInvalid("body with NUL", `{"body":"`+nul+`"}`, "body"),
		}})

	// --- Automation ------------------------------------------------------

	const waiting = "/v1/admin/waiting-messages"
	wmCases := func(create bool) []biCase {
		cs := []biCase{
			biUnknown(`{"name":"Slow","subject":"s","body":"b","hours":{"new":4},"queue":"all"}`, "queue"),
			biUnknown(`{"name":"Slow","subject":"s","body":"b","hours":{"new":4,"closing":2}}`, "closing"),
			biWrongType(`{"name":"Slow","subject":"s","body":"b","hours":{"new":"4h"}}`, "hours.new"),
			biWrongType(`{"name":"Slow","subject":"s","body":"b","hours":4}`, "hours"),
			biOversized("body"),
			biInvalid("hours 0", `{"name":"Slow","subject":"s","body":"b","hours":{"new":0}}`, "hours.new"),
			biInvalid("hours negative", `{"name":"Slow","subject":"s","body":"b","hours":{"external":-1}}`, "hours.external"),
			biInvalid("hours over a year", `{"name":"Slow","subject":"s","body":"b","hours":{"help_requested":8761}}`, "hours.help_requested"),
			biInvalid("no hours: new named", `{"name":"Slow","subject":"s","body":"b","hours":{}}`, "hours.new"),
			biInvalid("no hours: help_requested named", `{"name":"Slow","subject":"s","body":"b","hours":{"new":null}}`, "hours.help_requested"),
			biInvalid("no hours: external named", `{"name":"Slow","subject":"s","body":"b","hours":{}}`, "hours.external"),
			biInvalid("unknown variable", `{"name":"Slow","subject":"s","body":"Hello {{first_name}}","hours":{"new":4}}`, "body"),
			biInvalid("unclosed variable", `{"name":"Slow","subject":"s","body":"Hello {{customer_name","hours":{"new":4}}`, "body"),
			biInvalid("unknown variable in subject", `{"name":"Slow","subject":"{{ticket}}","body":"b","hours":{"new":4}}`, "subject"),
			biInvalid("subject on two lines", `{"name":"Slow","subject":"a\nb","body":"b","hours":{"new":4}}`, "subject"),
			biInvalid("body with NUL", `{"name":"Slow","subject":"s","body":"`+nul+`","hours":{"new":4}}`, "body"),
			biInvalid("body over 10000 bytes", fmt.Sprintf(`{"name":"Slow","subject":"s","body":%q,"hours":{"new":4}}`, long(10001)), "body"),
			biInvalid("name with NUL", `{"name":"`+nul+`","subject":"s","body":"b","hours":{"new":4}}`, "name"),
		}
		if create {
			return append(cs,
				biInvalid("hours absent", `{"name":"Slow","subject":"s","body":"b"}`, "hours.new"),
				biInvalid("subject absent", `{"name":"Slow","body":"b","hours":{"new":4}}`, "subject"),
				biInvalid("body absent", `{"name":"Slow","subject":"s","hours":{"new":4}}`, "body"),
				biInvalid("name absent", `{"subject":"s","body":"b","hours":{"new":4}}`, "name"))
		}
		return append(cs, biInvalid("nothing to change", `{}`, "body"))
	}
	add(biRoute{route: "POST " + waiting,
		target: func(t *testing.T, _ string) biTarget { return admin(waiting, waiting+"?limit=200") },
		cases:  wmCases(true)})
	add(biRoute{route: "PATCH " + waiting + "/{id}",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, waiting, fmt.Sprintf(`{"name":%q,"subject":"s","body":"b","hours":{"new":4}}`, testkit.RandomName("wm-")))
			return admin(waiting+"/"+id, waiting+"/"+id, waiting+"?limit=200")
		},
		cases: wmCases(false)})

	const automation = "/v1/admin/automation"
	add(biRoute{route: "PUT " + automation,
		target: func(t *testing.T, _ string) biTarget { return admin(automation, automation) },
		cases: []biCase{
			biUnknown(`{"channels":{"sms":true,"fax":true}}`, "fax"),
			biUnknown(`{"smart_close":{"texts":{"chat":{"question":"q","reminder":"r"}}}}`, "reminder"),
			biWrongType(`{"channels":{"sms":"yes"}}`, "channels.sms"),
			biWrongType(`{"smart_close":{"timeout_minutes":"1h"}}`, "smart_close.timeout_minutes"),
			biOversized("acknowledgement"),
			biInvalid("waiting message of nobody", `{"waiting_message_id":"`+random+`"}`, "waiting_message_id"),
			biInvalid("acknowledgement without body", `{"acknowledgement":{"subject":"Hi"}}`, "acknowledgement.body"),
			biInvalid("acknowledgement with an unknown variable", `{"acknowledgement":{"body":"{{delay}}"}}`, "acknowledgement.body"),
			biInvalid("acknowledgement subject with NUL", `{"acknowledgement":{"subject":"`+nul+`","body":"b"}}`, "acknowledgement.subject"),
			biInvalid("announced delay 0", `{"announced_delay_hours":0}`, "announced_delay_hours"),
			biInvalid("timeout negative", `{"smart_close":{"timeout_minutes":-5}}`, "smart_close.timeout_minutes"),
			biInvalid("first wait over a year", `{"smart_close":{"first_wait_minutes":600000}}`, "smart_close.first_wait_minutes"),
			biInvalid("texts for fax", `{"smart_close":{"texts":{"fax":{"question":"q"}}}}`, "smart_close.texts.fax"),
			biInvalid("question blank", `{"smart_close":{"texts":{"sms":{"question":" "}}}}`, "smart_close.texts.sms.question"),
			biInvalid("follow-up with an unknown variable", `{"smart_close":{"texts":{"email":{"question":"q","follow_up":"{{x}}"}}}}`, "smart_close.texts.email.follow_up"),
			biInvalid("yes label over 40 bytes", fmt.Sprintf(`{"smart_close":{"texts":{"chat":{"question":"q","yes_label":%q}}}}`, long(41)), "smart_close.texts.chat.yes_label"),
		}})
	const exportSettings = "/v1/admin/settings/export"
	add(biRoute{route: "PUT " + exportSettings,
		target: func(t *testing.T, _ string) biTarget {
			return admin(exportSettings, exportSettings).with("CHAT", fx.a.ChatChannel.ID.String()).with("OTHER", fx.b.ChatChannel.ID.String())
		},
		cases: []biCase{
			biUnknown(`{"send_by_email":false,"mailbox":"x"}`, "mailbox"),
			biWrongType(`{"send_by_email":"yes"}`, "send_by_email"),
			biWrongType(`{"send_by_email":true,"mailbox_id":5}`, "mailbox_id"),
			biOversized("mailbox_id"),
			biInvalid("send_by_email absent", `{"mailbox_id":null}`, "send_by_email"),
			biInvalid("turned on without a mailbox", `{"send_by_email":true}`, "mailbox_id"),
			biInvalid("mailbox_id not an id", `{"send_by_email":true,"mailbox_id":"support"}`, "mailbox_id"),
			biInvalid("mailbox of nobody", `{"send_by_email":true,"mailbox_id":"`+random+`"}`, "mailbox_id"),
			biInvalid("a chat channel as mailbox", `{"send_by_email":true,"mailbox_id":"{{CHAT}}"}`, "mailbox_id"),
			biInvalid("another tenant's channel", `{"send_by_email":false,"mailbox_id":"{{OTHER}}"}`, "mailbox_id"),
		}})
	add(biRoute{route: "PUT /v1/admin/queues/{id}/automation",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, "/v1/admin/queues", fmt.Sprintf(`{"name":%q}`, testkit.RandomName("q-")))
			path := "/v1/admin/queues/" + id + "/automation"
			return admin(path, path)
		},
		cases: []biCase{
			biUnknown(`{"inactivity_minutes":10,"smart_close":{}}`, "smart_close"),
			biWrongType(`{"inactivity_minutes":"10"}`, "inactivity_minutes"),
			biWrongType(`{"waiting_message_id":5}`, "waiting_message_id"),
			biOversized("acknowledgement"),
			biInvalid("inactivity 0", `{"inactivity_minutes":0}`, "inactivity_minutes"),
			biInvalid("inactivity over a year", `{"inactivity_minutes":525601}`, "inactivity_minutes"),
			biInvalid("waiting message of nobody", `{"waiting_message_id":"`+random+`"}`, "waiting_message_id"),
			biInvalid("acknowledgement with an unknown variable", `{"acknowledgement":{"body":"Hi {{name}}"}}`, "acknowledgement.body"),
		}})

	// --- Push routing ----------------------------------------------------

	add(biRoute{route: "PUT /v1/admin/queues/{id}/routing",
		target: func(t *testing.T, _ string) biTarget {
			id := fx.create(t, fx.admin, "/v1/admin/queues", fmt.Sprintf(`{"name":%q}`, testkit.RandomName("q-")))
			path := "/v1/admin/queues/" + id + "/routing"
			return admin(path, path)
		},
		cases: []biCase{
			biUnknown(`{"mode":"push","speed":"fast"}`, "speed"),
			biWrongType(`{"mode":"push","offer_seconds":"30"}`, "offer_seconds"),
			biWrongType(`{"mode":"push","offer_seconds":30.5}`, "offer_seconds"),
			biWrongType(`{"mode":"push","missed_offer_away":"yes"}`, "missed_offer_away"),
			// encoding/json names a map's value by the map alone.
			biWrongType(`{"mode":"push","weights":{"chat":"1"}}`, "weights"),
			biOversized("mode"),
			biInvalid("mode unknown", `{"mode":"fast"}`, "mode"),
			biInvalid("mode empty", `{"mode":""}`, "mode"),
			biInvalid("offer_seconds under 5", `{"mode":"push","offer_seconds":4}`, "offer_seconds"),
			biInvalid("offer_seconds over an hour", `{"mode":"push","offer_seconds":3601}`, "offer_seconds"),
			biInvalid("aging_seconds 0", `{"mode":"push","aging_seconds":0}`, "aging_seconds"),
			biInvalid("aging_seconds over a week", `{"mode":"push","aging_seconds":604801}`, "aging_seconds"),
			biInvalid("requeue_offline_seconds negative", `{"mode":"push","requeue_offline_seconds":-1}`, "requeue_offline_seconds"),
			biInvalid("requeue_offline_seconds over a week", `{"mode":"push","requeue_offline_seconds":604801}`, "requeue_offline_seconds"),
			biInvalid("weight of no channel", `{"mode":"push","weights":{"fax":1}}`, "weights.fax"),
			biInvalid("weight 0", `{"mode":"push","weights":{"chat":0}}`, "weights.chat"),
			biInvalid("weight over 100", `{"mode":"push","weights":{"email":101}}`, "weights.email"),
		}})

	routes = append(routes, ntBiRoutes(fx)...)
	return routes
}

// biFill puts the target's vars ({{NAME}}) in s.
func biFill(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// biRegisteredWrites lists the routes the API registers that take a body.
func biRegisteredWrites() []string {
	var out []string
	for _, r := range azRegistered() {
		switch azMethod(r) {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			out = append(out, r)
		}
	}
	return out
}

func TestBadInputCoversEveryWriteRoute(t *testing.T) {
	var table []string
	for _, r := range biRoutes(&azFixture{}) {
		table = append(table, r.route)
		kinds := map[string]bool{}
		for _, c := range r.cases {
			kinds[c.kind] = true
		}
		for _, k := range []string{"unknown-field", "wrong-type", "oversized"} {
			require.True(t, kinds[k], "%s has no %s case", r.route, k)
		}
		if (strings.HasPrefix(r.route, "POST /v1/conversations/{id}/") || strings.HasPrefix(r.route, "PUT /v1/conversations/{id}/")) && !r.anyState {
			require.True(t, kinds["transition"], "%s moves a conversation but has no transition case", r.route)
		}
	}
	slices.Sort(table)
	require.Equal(t, biRegisteredWrites(), table, "the write routes the API registers and those the bad-input table covers differ")
	// DELETE routes take no body: they have nothing to refuse here.
	for _, r := range azRegistered() {
		if azMethod(r) == http.MethodDelete {
			require.NotContains(t, table, r)
		}
	}
}

func TestBadInput(t *testing.T) {
	fx := azSetup(t, 60)
	for _, r := range biRoutes(fx) {
		t.Run(azName(r.route), func(t *testing.T) {
			method := azMethod(r.route)
			// load makes a target and reads what it must keep.
			load := func(t *testing.T, state string) (biTarget, string) {
				tg := r.target(t, state)
				before := ""
				if tg.snap != nil {
					before = tg.snap(t)
				}
				return tg, before
			}
			main, mainBefore := load(t, "")
			for _, c := range r.cases {
				t.Run(c.kind+" "+c.name, func(t *testing.T) {
					tg, before := main, mainBefore
					own := c.on != "" || r.fresh
					if own {
						tg, before = load(t, c.on)
					}
					if tg.reset != nil {
						tg.reset(t)
						if tg.snap != nil {
							before = tg.snap(t)
						}
					}
					path := biFill(tg.path+c.query, tg.vars)
					body := biFill(c.body, tg.vars)
					field := biFill(c.field, tg.vars)
					contentType := c.contentType
					if contentType == "" {
						contentType = "application/json"
					}
					res := azCallWith(t, fx.e, tg.token, method, path, contentType, body, tg.header...)
					what := fmt.Sprintf("%s %s %s", method, path, azShort(body))
					changed := false
					if tg.snap != nil {
						after := tg.snap(t)
						changed = after != before
						assert.Equal(t, before, after, "%s answered %s and changed what is stored", what, res)
					}
					if changed && !own {
						// The next case gets an object as the route's target should be.
						main, mainBefore = load(t, "")
					}
					if !assert.Equal(t, c.status, res.Status, "%s answered %s", what, res) ||
						!assert.Equal(t, httpx.ContentTypeProblem, res.Header.Get("Content-Type"), "%s answered %s", what, res) {
						return
					}
					var p azProblem
					if !assert.NoError(t, json.Unmarshal(res.Body, &p), "%s answered %s", what, res) {
						return
					}
					assert.Equal(t, res.Status, p.Status, "%s: the problem's status is not the answer's", what)
					switch c.status {
					case http.StatusBadRequest, http.StatusConflict:
						if field != "" {
							assert.Contains(t, p.fields(), field, "%s answered %s: errors[].field does not name %q", what, res, field)
						}
					}
					if c.status == http.StatusConflict && c.state != "" {
						assert.Equal(t, c.state, p.State, "%s answered %s: the state member is not the conversation's state", what, res)
					}
				})
			}
			if r.after != nil {
				t.Run("afterwards", r.after)
			}
		})
	}
}
