package inbox_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// The API contract: start loads the OpenAPI document the server serves at
// GET /openapi.json, and do checks every response against it, so that
// each integration test is also a test of the document.

// oaContract is the document every test server serves (they serve the
// same embedded bytes), parsed once.
var oaContract struct {
	mu     sync.Mutex
	raw    []byte
	doc    *openapi3.T
	router routers.Router
}

// oaUUID is how the API writes ids (uuid.UUID.String).
const oaUUID = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`

// oaOptions validate the status and the body of responses, and the uuid
// and email formats, which kin-openapi leaves unchecked by default.
var oaOptions = &openapi3filter.Options{
	IncludeResponseStatus: true,
	MultiError:            true,
	SchemaValidationOptions: []openapi3.SchemaValidationOption{
		openapi3.DisableSchemaErrorDetails(),
		openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(oaUUID)),
		openapi3.WithStringFormatValidator("email", openapi3.NewCallbackValidator(func(s string) error {
			if a, err := mail.ParseAddress(s); err != nil || a.Address != s {
				return fmt.Errorf("%q is not a plain email address", s)
			}
			return nil
		})),
	},
}

func init() {
	// GET /v1/stream is text/event-stream: its body is text.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
	// GET /v1/conversations/{id}/export serves a printable page.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
}

// oaLoad fetches the document from the server at base, without a token,
// and makes it the one responses are checked against.
func oaLoad(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET /openapi.json: %s", raw)

	oaContract.mu.Lock()
	defer oaContract.mu.Unlock()
	if oaContract.router != nil && bytes.Equal(oaContract.raw, raw) {
		return
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err, "GET /openapi.json is not an OpenAPI document")
	require.NoError(t, doc.Validate(context.Background()), "GET /openapi.json is not a valid OpenAPI document")
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	oaContract.raw, oaContract.doc, oaContract.router = raw, doc, router
}

// oaCheck fails the test (without stopping it, so that one run lists
// every mismatch) when the response to req does not match the document:
// a route it does not describe, a status it does not list, or a body or
// header its schema refuses.
func oaCheck(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	oaContract.mu.Lock()
	router := oaContract.router
	oaContract.mu.Unlock()
	if router == nil {
		t.Errorf("contract: %s %s: no OpenAPI document loaded (start loads it)", req.Method, req.URL.Path)
		return
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("contract: %s %s answered %d, but the OpenAPI document has no such operation: %v", req.Method, req.URL.Path, status, err)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: oaOptions},
		Status:                 status,
		Header:                 header,
		Options:                oaOptions,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		shown := body
		if len(shown) > 2000 {
			shown = append(shown[:2000:2000], "..."...)
		}
		t.Errorf("contract: %s %s answered %d, which does not match the OpenAPI document (%s %s): %v\nbody: %s",
			req.Method, req.URL.Path, status, route.Method, route.Path, err, shown)
	}
}

func TestOpenAPIDocumentIsServedWithoutAToken(t *testing.T) {
	e := start(t)
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title string `json:"title"`
		} `json:"info"`
		Paths map[string]any `json:"paths"`
	}
	require.Equal(t, http.StatusOK, e.do(t, "", http.MethodGet, "/openapi.json", "", &doc))
	require.Equal(t, "3.0.3", doc.OpenAPI)
	require.Equal(t, "Switchboard inbox API", doc.Info.Title)
	require.Contains(t, doc.Paths, "/v1/conversations/{id}")
}

// oaOperations lists the document's operations, each with its path made
// concrete: ids are random UUIDs, which name nothing.
func oaOperations(t *testing.T) []oaOperation {
	t.Helper()
	oaContract.mu.Lock()
	doc := oaContract.doc
	oaContract.mu.Unlock()
	require.NotNil(t, doc, "start loads the document")
	fill := strings.NewReplacer("{id}", uuid.NewString(), "{index}", "0", "{message_id}", uuid.NewString(), "{channel}", "chat", "{identity}", "nobody")
	var out []oaOperation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out = append(out, oaOperation{method: method, template: path, path: fill.Replace(path), op: op})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].template+out[i].method < out[j].template+out[j].method })
	return out
}

type oaOperation struct {
	method, template, path string
	op                     *openapi3.Operation
}

// TestOpenAPIErrorsOfEveryOperation sends every operation of the document
// what it must refuse whatever it does: no token (401, except for the
// public ones), and a body over the server's limit (413).
func TestOpenAPIErrorsOfEveryOperation(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	_, admin := e.userToken(t, b, "admin")
	tooLarge := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	for _, o := range oaOperations(t) {
		public := o.op.Security != nil && len(*o.op.Security) == 0
		if !public {
			require.Equal(t, http.StatusUnauthorized, e.do(t, "", o.method, o.path, "", nil), "%s %s without a token", o.method, o.template)
		}
		if o.op.RequestBody != nil {
			require.Equal(t, http.StatusRequestEntityTooLarge, e.do(t, admin, o.method, o.path, tooLarge, nil), "%s %s with a body over the limit", o.method, o.template)
		}
	}
}

// TestOpenAPIContractTour goes through the operations and answers the
// other integration tests do not reach, so that their responses are
// checked against the document too.
func TestOpenAPIContractTour(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	sales := e.queue(t, b, "Sales")
	_, admin := e.userToken(t, b, "admin")
	agent, tok := e.userToken(t, b, "agent", support)

	// A session: log in, refresh, log out. An API token cannot log out.
	email := "tour-" + uuid.NewString() + "@example.com"
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/users",
		fmt.Sprintf(`{"email":%q,"name":"Tour","password":"correct horse battery","languages":["fr"],"capacity":0}`, email), nil))
	var session struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	require.Equal(t, http.StatusOK, e.do(t, "", http.MethodPost, "/v1/auth/login",
		fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":"correct horse battery"}`, b.Tenant.ID, email), &session))
	require.Equal(t, http.StatusOK, e.do(t, "", http.MethodPost, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, session.RefreshToken), &session))
	require.Equal(t, http.StatusBadRequest, e.do(t, "", http.MethodPost, "/v1/auth/refresh", `{}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, session.AccessToken, http.MethodGet, "/v1/me", "", nil))
	require.Equal(t, http.StatusNoContent, e.do(t, session.AccessToken, http.MethodPost, "/v1/auth/logout", "", nil))
	require.Equal(t, http.StatusUnauthorized, e.do(t, session.AccessToken, http.MethodGet, "/v1/me", "", nil))
	require.Equal(t, http.StatusUnauthorized, e.do(t, "", http.MethodPost, "/v1/auth/refresh", fmt.Sprintf(`{"refresh_token":%q}`, session.RefreshToken), nil))
	require.Equal(t, http.StatusOK, e.do(t, b.APIToken.Token, http.MethodGet, "/v1/me", "", nil))
	require.Equal(t, http.StatusBadRequest, e.do(t, b.APIToken.Token, http.MethodPost, "/v1/auth/logout", "", nil))

	// A conversation: flags, mark-read, the filters.
	e.send(t, b, "ev-1", "m-1", "s-1", "u-1", "Bonjour, ma commande n'est pas arrivée")
	var list struct {
		Items []fullConversation `json:"items"`
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, "/v1/conversations?tab=received&channel=chat&queue_id=none&unread=true&last_writer=customer&limit=10", "", &list)
		return len(list.Items) == 1
	}, "the agent does not see the new conversation")
	path := "/v1/conversations/" + list.Items[0].ID
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodGet, "/v1/conversations/"+uuid.NewString(), "", nil))
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodGet, "/v1/conversations?tab=everything", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPatch, path, `{"flagged":true,"muted":false,"language":"fr"}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, tok, http.MethodPatch, path, `{"locked":true}`, nil), "only an assignee locks")
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPatch, path, `{}`, nil))
	var marked struct {
		Updated int `json:"updated"`
	}
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, "/v1/conversations/mark-read?unread=true&flagged=true", "", &marked))
	require.Equal(t, 1, marked.Updated)
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPost, "/v1/conversations/mark-read?from=yesterday", "", nil))

	// A mandatory tag list holds the reply back until the message is
	// qualified.
	var tags struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/tag-lists", `{"name":"Reason","values":["delivery","billing"],"mandatory":true}`, &tags))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPatch, path, `{"locked":false}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusUnprocessableEntity, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Bonjour"}`, nil))
	var msgs struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/messages", "", &msgs))
	require.Len(t, msgs.Items, 1)
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPatch, "/v1/messages/"+msgs.Items[0].ID,
		fmt.Sprintf(`{"language":"fr","tags":{%q:"delivery"}}`, tags.ID), nil))
	require.Equal(t, http.StatusBadRequest, e.do(t, tok, http.MethodPatch, "/v1/messages/"+msgs.Items[0].ID, `{"tags":{"nope":"x"}}`, nil))
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodPatch, "/v1/messages/"+uuid.NewString(), `{"language":""}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/reply", `{"text":"Nous regardons."}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/messages?limit=1", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodGet, path+"/messages?limit=200", "", nil))

	// Assignment, transfer, defer, release, archive.
	e.send(t, b, "ev-2", "m-2", "s-1", "u-1", "Toujours rien")
	var c fullConversation
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, tok, http.MethodGet, path, "", &c)
		return c.State == "new"
	}, "the customer's message did not re-open the conversation (state %s)", c.State)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path+"/assignees", fmt.Sprintf(`{"user_ids":[%q]}`, agent.ID), nil))
	require.Equal(t, http.StatusForbidden, e.do(t, tok, http.MethodPut, path+"/assignees", fmt.Sprintf(`{"user_ids":[%q]}`, uuid.NewString()), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/transfer", fmt.Sprintf(`{"queue_id":%q,"comment":"for sales","bypass_queue":true}`, sales.ID), nil))
	require.Equal(t, http.StatusNotFound, e.do(t, tok, http.MethodGet, path, "", nil), "out of the agent's sight")
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/transfer", fmt.Sprintf(`{"user_id":%q}`, agent.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/defer",
		fmt.Sprintf(`{"until":%q,"reason":"waiting for the carrier"}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), &c))
	require.Equal(t, "deferred", c.State)
	require.Equal(t, http.StatusConflict, e.do(t, admin, http.MethodPost, path+"/defer",
		fmt.Sprintf(`{"until":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path+"/assignees", fmt.Sprintf(`{"user_ids":[%q]}`, agent.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, tok, http.MethodPost, path+"/release", `{"to":"received"}`, &c))
	require.Equal(t, "new", c.State)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/transfer", `{"language":"fr"}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/archive", `{"reason":"duplicate"}`, &c))
	require.Equal(t, "done", c.State)
	require.Equal(t, http.StatusConflict, e.do(t, admin, http.MethodPost, path+"/archive", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path+"/audit", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations?state=done&language=fr&from=2000-01-01T00:00:00Z&q=commande", "", nil))

	// Only a user takes or re-opens a conversation.
	require.Equal(t, http.StatusForbidden, e.do(t, b.APIToken.Token, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusForbidden, e.do(t, b.APIToken.Token, http.MethodPost, path+"/resume", "", nil))

	// Every list refuses a page size out of range.
	var contact struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/contacts", `{"identities":[{"channel":"sms","identity":"+33612345678"}]}`, &contact))
	for _, l := range []string{"/v1/conversations", path + "/messages", "/v1/admin/queues", "/v1/admin/skills", "/v1/admin/users",
		"/v1/admin/tag-lists", "/v1/admin/api-tokens", "/v1/admin/mailboxes", "/v1/admin/sms-accounts", "/v1/admin/chat-channels", "/v1/admin/deliveries", "/v1/contacts", "/v1/contacts/" + contact.ID + "/notes",
		"/v1/expert-questions", path + "/expert-questions"} {
		require.Equal(t, http.StatusBadRequest, e.do(t, admin, http.MethodGet, l+"?limit=201", "", nil), l)
	}
}
