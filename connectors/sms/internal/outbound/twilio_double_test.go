package outbound

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// fakeTwilio is a double of Twilio's Messages resource
// (/2010-04-01/Accounts/{sid}/Messages.json): create by POST, list by GET,
// answers and errors in Twilio's JSON, HTTP basic authentication.
type fakeTwilio struct {
	srv        *httptest.Server
	accountSID string
	now        func() time.Time

	mu       sync.Mutex
	creds    map[string]string // user -> password accepted
	messages []fakeMessage     // created, oldest first
	creates  int               // POST requests received
	lists    int               // GET requests received
	auths    []string          // user of each request
	// failCreate and failList answer the next requests, in order,
	// instead of the normal answer.
	failCreate []fakeAnswer
	failList   []fakeAnswer
	// onCreate, when set, runs after a message is stored and replaces the
	// answer; it gets the request.
	onCreate func(r *http.Request)
}

// fakeMessage is a message created at the double.
type fakeMessage struct {
	SID, To, From, MessagingServiceSID, Body, StatusCallback string
	Created                                                  time.Time
}

// fakeAnswer is a scripted answer.
type fakeAnswer struct {
	status int
	body   string // raw; a Twilio error JSON when empty
	code   int
	msg    string
	// store creates the message before answering (a gateway error after
	// Twilio accepted it).
	store bool
	// hangUp closes the connection without answering.
	hangUp bool
}

func newFakeTwilio(t *testing.T, accountSID string, now func() time.Time) *fakeTwilio {
	f := &fakeTwilio{accountSID: accountSID, now: now, creds: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTwilio) accept(user, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creds[user] = password
}

// setOnCreate sets the hook run after a message is stored.
func (f *fakeTwilio) setOnCreate(hook func(r *http.Request)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCreate = hook
}

func (f *fakeTwilio) failNextCreates(a ...fakeAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failCreate = append(f.failCreate, a...)
}

func (f *fakeTwilio) failNextLists(a ...fakeAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failList = append(f.failList, a...)
}

// counts returns the messages created and the POST and GET requests.
func (f *fakeTwilio) counts() (msgs []fakeMessage, creates, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.messages), f.creates, f.lists
}

func (f *fakeTwilio) users() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.auths)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	user, password, ok := r.BasicAuth()
	f.mu.Lock()
	f.auths = append(f.auths, user)
	good := ok && f.creds[user] == password && password != ""
	f.mu.Unlock()
	if !good {
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.URL.Path != "/2010-04-01/Accounts/"+f.accountSID+"/Messages.json" {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	switch r.Method {
	case http.MethodPost:
		f.create(w, r)
	case http.MethodGet:
		f.list(w, r)
	default:
		twilioError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
	}
}

func (f *fakeTwilio) create(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, err.Error())
		return
	}
	f.mu.Lock()
	f.creates++
	var ans *fakeAnswer
	if len(f.failCreate) > 0 {
		ans = &f.failCreate[0]
		f.failCreate = f.failCreate[1:]
	}
	if ans == nil || ans.store {
		if r.PostForm.Get("To") == "" || r.PostForm.Get("Body") == "" || (r.PostForm.Get("From") == "") == (r.PostForm.Get("MessagingServiceSid") == "") {
			f.mu.Unlock()
			twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number, a 'Body' and one of 'From' or 'MessagingServiceSid' are required.")
			return
		}
	}
	var m fakeMessage
	stored := false
	if ans == nil || ans.store {
		m = fakeMessage{
			SID: "SM" + testkit.RandomName("") + fmt.Sprintf("%020d", len(f.messages)+1), To: r.PostForm.Get("To"), From: r.PostForm.Get("From"),
			MessagingServiceSID: r.PostForm.Get("MessagingServiceSid"), Body: r.PostForm.Get("Body"),
			StatusCallback: r.PostForm.Get("StatusCallback"), Created: f.now().UTC(),
		}
		f.messages = append(f.messages, m)
		stored = true
	}
	hook := f.onCreate
	f.mu.Unlock()

	switch {
	case ans != nil:
		answer(w, *ans)
	case stored && hook != nil:
		hook(r)
	default:
		writeJSON(w, http.StatusCreated, f.resource(m))
	}
}

func answer(w http.ResponseWriter, a fakeAnswer) {
	switch {
	case a.hangUp:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case a.body != "":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	default:
		twilioError(w, a.status, a.code, a.msg)
	}
}

// resource renders m as Twilio's API does.
func (f *fakeTwilio) resource(m fakeMessage) map[string]any {
	from, status := any(m.From), "queued"
	if m.MessagingServiceSID != "" && m.From == "" {
		from, status = nil, "accepted"
	}
	seg := Segment(m.Body)
	return map[string]any{
		"sid": m.SID, "account_sid": f.accountSID, "to": m.To, "from": from,
		"messaging_service_sid": nilIfEmpty(m.MessagingServiceSID), "body": m.Body, "status": status,
		"direction": "outbound-api", "num_segments": fmt.Sprint(seg.Segments), "num_media": "0",
		"date_created": m.Created.Format(time.RFC1123Z), "date_updated": m.Created.Format(time.RFC1123Z),
		"date_sent": nil, "api_version": "2010-04-01", "error_code": nil, "error_message": nil,
		"price": nil, "price_unit": "USD",
		"uri": "/2010-04-01/Accounts/" + f.accountSID + "/Messages/" + m.SID + ".json",
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (f *fakeTwilio) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.lists++
	if len(f.failList) > 0 {
		ans := f.failList[0]
		f.failList = f.failList[1:]
		f.mu.Unlock()
		answer(w, ans)
		return
	}
	var out []map[string]any
	// Newest first, as Twilio lists them.
	for i := len(f.messages) - 1; i >= 0; i-- {
		m := f.messages[i]
		if to := q.Get("To"); to != "" && m.To != to {
			continue
		}
		if from := q.Get("From"); from != "" && m.From != from {
			continue
		}
		out = append(out, f.resource(m))
	}
	f.mu.Unlock()
	if out == nil {
		out = []map[string]any{}
	}
	uri := "/2010-04-01/Accounts/" + f.accountSID + "/Messages.json?" + r.URL.RawQuery
	writeJSON(w, http.StatusOK, map[string]any{
		"messages": out, "page": 0, "page_size": len(out), "start": 0, "end": max(len(out)-1, 0),
		"uri": uri, "first_page_uri": uri, "next_page_uri": nil, "previous_page_uri": nil,
	})
}
