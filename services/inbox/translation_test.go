package inbox_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/egress"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/translate"
)

// Translation ([002], ADR 20), through the HTTP API, against translator
// doubles that work, hang and fail.

// trTranslator is a LibreTranslate double.
type trTranslator struct {
	*httptest.Server
	mu   sync.Mutex
	keys []string
	// got receives each request's text, when not nil.
	got chan string
}

// keysSeen are the api_key values the translator received.
func (tt *trTranslator) keysSeen() []string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return append([]string(nil), tt.keys...)
}

// newTranslator starts a translator double: mode working answers
// "[<target>] <text>"; slow holds every request until the caller gives
// up; down answers 500.
func newTranslator(t *testing.T, mode string) *trTranslator {
	t.Helper()
	tt := &trTranslator{got: make(chan string, 100)}
	tt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Q      string `json:"q"`
			Source string `json:"source"`
			Target string `json:"target"`
			Format string `json:"format"`
			APIKey string `json:"api_key"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/translate" || json.NewDecoder(r.Body).Decode(&in) != nil || in.Format != "text" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		tt.mu.Lock()
		tt.keys = append(tt.keys, in.APIKey)
		tt.mu.Unlock()
		select {
		case tt.got <- in.Q:
		default:
		}
		switch mode {
		case "slow":
			<-r.Context().Done()
		case "down":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":"the model is not loaded"}`))
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"translatedText": "[" + in.Target + "] " + in.Q})
		}
	}))
	t.Cleanup(tt.Close)
	return tt
}

// refusedURL is an address nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr
}

// startTranslating starts the inbox with 127.0.0.1 allowed over http (the
// translator doubles), short translation timeouts and quick retries.
func startTranslating(t *testing.T) env {
	t.Helper()
	return startTuned(t, nil, func(c *inbox.Config, d *inbox.Deps) {
		var ecfg egress.Config
		ecfg.RegisterFlags("", flag.NewFlagSet("egress", flag.ContinueOnError))
		ecfg.Allow = []string{"127.0.0.1/32"}
		ecfg.AllowHTTP = true
		client, err := egress.New(ecfg, egress.Deps{})
		require.NoError(t, err)
		d.EgressClient = client
		c.Translate = translate.Config{Timeout: 2 * time.Second, ReplyTimeout: 500 * time.Millisecond, Attempts: 2,
			Backoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Poll: 50 * time.Millisecond, Concurrency: 4}
	})
}

type trMessage struct {
	ID          string `json:"id"`
	Body        string `json:"body"`
	Direction   string `json:"direction"`
	Language    string `json:"language"`
	Translation *struct {
		State          string `json:"state"`
		SourceLanguage string `json:"source_language"`
		TargetLanguage string `json:"target_language"`
		Text           string `json:"text"`
		Original       string `json:"original"`
		Error          string `json:"error"`
		RequestedBy    string `json:"requested_by"`
	} `json:"translation"`
}

// trTenant is a tenant whose translator is url, with an admin who reads
// English only.
type trTenant struct {
	b     inbox.Bootstrap
	token string
}

func trSetup(t *testing.T, e env, url string) trTenant {
	t.Helper()
	b := e.tenant(t, testkit.RandomName("tr-"))
	spec := inbox.UserSpec{Email: testkit.RandomName("en") + "@example.com", Name: "English reader", Role: domain.RoleAdmin,
		Password: "correct horse battery", Languages: []string{"en"}}
	_, err := e.admin.CreateUser(context.Background(), b.Tenant.ID, spec)
	require.NoError(t, err)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":"correct horse battery"}`, b.Tenant.ID, spec.Email)
	require.Equal(t, http.StatusOK, e.do(t, "", http.MethodPost, "/v1/auth/login", body, &tok))
	require.Equal(t, http.StatusOK, e.do(t, tok.AccessToken, http.MethodPut, "/v1/admin/settings/translation",
		fmt.Sprintf(`{"enabled":true,"url":%q,"api_key":"k-secret"}`, url), nil))
	return trTenant{b: b, token: tok.AccessToken}
}

// trMessages lists a conversation's messages.
func trMessages(t *testing.T, e env, token, conv string) []trMessage {
	t.Helper()
	var l list[trMessage]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/conversations/"+conv+"/messages", "", &l))
	return l.Items
}

// trReceive sends a customer chat message and returns its conversation
// and the message as soon as it is stored.
func trReceive(t *testing.T, e env, tn trTenant, session, text string) (string, trMessage) {
	t.Helper()
	ext := testkit.RandomName("m-")
	e.send(t, tn.b, testkit.RandomName("ev-"), ext, session, "u-"+session, text)
	var conv string
	var msg trMessage
	testkit.Eventually(t, 20*time.Second, func() bool {
		var l list[conversation]
		e.do(t, tn.token, http.MethodGet, "/v1/conversations?channel=chat", "", &l)
		for _, c := range l.Items {
			for _, m := range trMessages(t, e, tn.token, c.ID) {
				if m.Body == text {
					conv, msg = c.ID, m
					return true
				}
			}
		}
		return false
	}, "the customer's message is not stored")
	return conv, msg
}

// trWait waits until the message's translation is in state.
func trWait(t *testing.T, e env, token, conv, id, state string) trMessage {
	t.Helper()
	var found trMessage
	testkit.Eventually(t, 30*time.Second, func() bool {
		for _, m := range trMessages(t, e, token, conv) {
			if m.ID == id && m.Translation != nil && m.Translation.State == state {
				found = m
				return true
			}
		}
		return false
	}, "the translation of %s never became %s", id, state)
	return found
}

const (
	frenchText  = "Bonjour, je voudrais savoir où en est ma commande, je l'attends depuis deux semaines déjà."
	englishText = "Hello, I would like to know where my order is, I have been waiting for two weeks already."
)

func TestCustomerMessagesAreTranslatedForTheirReaders(t *testing.T) {
	e := startTranslating(t)
	tt := newTranslator(t, "working")
	tn := trSetup(t, e, tt.URL)

	conv, msg := trReceive(t, e, tn, "s-fr", frenchText)
	done := trWait(t, e, tn.token, conv, msg.ID, "done")
	require.Equal(t, frenchText, done.Body, "the original stays the body")
	require.Equal(t, "[en] "+frenchText, done.Translation.Text, "translated into the language the reader declares")
	require.Equal(t, "fr", done.Translation.SourceLanguage)
	require.Equal(t, "en", done.Translation.TargetLanguage)
	require.Equal(t, "system", done.Translation.RequestedBy)
	require.Contains(t, tt.keysSeen(), "k-secret", "the tenant's API key goes to the translator")

	// A message in a language its reader declares is left as it is.
	conv2, msg2 := trReceive(t, e, tn, "s-en", englishText)
	testkit.Eventually(t, 20*time.Second, func() bool {
		for _, m := range trMessages(t, e, tn.token, conv2) {
			if m.ID == msg2.ID && m.Language == "en" {
				return true
			}
		}
		return false
	}, "the English message's language is not detected")
	// Its language known, a later message of the same tenant being
	// translated shows the worker went past it.
	conv3, msg3 := trReceive(t, e, tn, "s-fr2", frenchText+" Merci.")
	trWait(t, e, tn.token, conv3, msg3.ID, "done")
	for _, m := range trMessages(t, e, tn.token, conv2) {
		require.Nil(t, m.Translation, "a message its reader reads is not translated")
	}

	// On demand, into another language: pending at once, then done.
	var asked trMessage
	require.Equal(t, http.StatusAccepted, e.do(t, tn.token, http.MethodPost, "/v1/messages/"+msg2.ID+"/translate", `{"to":"de"}`, &asked))
	require.NotNil(t, asked.Translation)
	require.Contains(t, []string{"pending", "done"}, asked.Translation.State)
	again := trWait(t, e, tn.token, conv2, msg2.ID, "done")
	require.Equal(t, "[de] "+englishText, again.Translation.Text)
	require.Equal(t, "de", again.Translation.TargetLanguage)
}

func TestASlowOrDownTranslatorNeverBlocksIngestion(t *testing.T) {
	e := startTranslating(t)

	t.Run("slow", func(t *testing.T) {
		tt := newTranslator(t, "slow")
		tn := trSetup(t, e, tt.URL)
		conv, msg := trReceive(t, e, tn, "s-slow", frenchText)
		// The translator holds the request: the message is there, its
		// translation in progress.
		<-tt.got
		var pending *trMessage
		for _, m := range trMessages(t, e, tn.token, conv) {
			if m.ID == msg.ID {
				pending = &m
			}
		}
		require.NotNil(t, pending)
		require.NotNil(t, pending.Translation, "the translation is not shown in progress")
		require.Equal(t, "pending", pending.Translation.State)
		require.Equal(t, frenchText, pending.Body)
		failed := trWait(t, e, tn.token, conv, msg.ID, "failed")
		require.Contains(t, failed.Translation.Error, "did not answer in time")
	})
	t.Run("500", func(t *testing.T) {
		tt := newTranslator(t, "down")
		tn := trSetup(t, e, tt.URL)
		conv, msg := trReceive(t, e, tn, "s-500", frenchText)
		failed := trWait(t, e, tn.token, conv, msg.ID, "failed")
		require.Contains(t, failed.Translation.Error, "500")
		require.Contains(t, failed.Translation.Error, "the model is not loaded")
		require.Equal(t, frenchText, failed.Body)
	})
	t.Run("connection refused", func(t *testing.T) {
		tn := trSetup(t, e, refusedURL(t))
		conv, msg := trReceive(t, e, tn, "s-refused", frenchText)
		failed := trWait(t, e, tn.token, conv, msg.ID, "failed")
		require.Contains(t, failed.Translation.Error, "cannot be reached")
	})
}

// trReplyReady makes the conversation answerable: assigned, routed, its
// language known.
func trReplyReady(t *testing.T, e env, tn trTenant, conv string) {
	t.Helper()
	q := e.queue(t, tn.b, testkit.RandomName("q-"))
	path := "/v1/conversations/" + conv
	require.Equal(t, http.StatusOK, e.do(t, tn.token, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, tn.token, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, q.ID), nil))
	testkit.Eventually(t, 20*time.Second, func() bool {
		var c struct {
			Language string `json:"language"`
		}
		e.do(t, tn.token, http.MethodGet, path, "", &c)
		return c.Language == "fr"
	}, "the customer's language is not known")
}

type trReply struct {
	State   string    `json:"state"`
	Message trMessage `json:"message"`
}

func TestRepliesAreSentTranslated(t *testing.T) {
	e := startTranslating(t)
	const answer = "Your order left our warehouse this morning and will arrive tomorrow."

	t.Run("working", func(t *testing.T) {
		tt := newTranslator(t, "working")
		tn := trSetup(t, e, tt.URL)
		conv, _ := trReceive(t, e, tn, "s-r1", frenchText)
		trReplyReady(t, e, tn, conv)
		var out trReply
		require.Equal(t, http.StatusOK, e.do(t, tn.token, http.MethodPost, "/v1/conversations/"+conv+"/reply",
			fmt.Sprintf(`{"text":%q,"translate":true}`, answer), &out))
		require.Equal(t, "answered", out.State)
		require.Equal(t, "[fr] "+answer, out.Message.Body, "the customer gets the translation")
		require.NotNil(t, out.Message.Translation)
		require.Equal(t, "done", out.Message.Translation.State)
		require.Equal(t, answer, out.Message.Translation.Original, "what the agent wrote is kept")
		require.Equal(t, "fr", out.Message.Translation.TargetLanguage)
		require.Equal(t, "fr", out.Message.Language)
		// Both are stored and listed.
		var listed *trMessage
		for _, m := range trMessages(t, e, tn.token, conv) {
			if m.ID == out.Message.ID {
				listed = &m
			}
		}
		require.NotNil(t, listed)
		require.Equal(t, "[fr] "+answer, listed.Body)
		require.Equal(t, answer, listed.Translation.Original)

		// translate_to names the language; it can be any.
		trReplyReady(t, e, tn, conv)
		require.Equal(t, http.StatusOK, e.do(t, tn.token, http.MethodPost, "/v1/conversations/"+conv+"/reply",
			fmt.Sprintf(`{"text":%q,"translate_to":"de"}`, answer), &out))
		require.Equal(t, "[de] "+answer, out.Message.Body)

		// A reply sent translated keeps its translation.
		var prob problem
		require.Equal(t, http.StatusConflict, e.do(t, tn.token, http.MethodPost, "/v1/messages/"+out.Message.ID+"/translate", `{"to":"es"}`, &prob))
	})

	for _, mode := range []string{"down", "slow", "refused"} {
		t.Run(mode, func(t *testing.T) {
			url := refusedURL(t)
			if mode != "refused" {
				url = newTranslator(t, mode).URL
			}
			tn := trSetup(t, e, url)
			conv, _ := trReceive(t, e, tn, "s-"+mode, frenchText)
			trReplyReady(t, e, tn, conv)
			before := len(trMessages(t, e, tn.token, conv))

			var prob struct {
				Status     int    `json:"status"`
				Detail     string `json:"detail"`
				Translator string `json:"translator"`
				Reason     string `json:"reason"`
			}
			require.Equal(t, http.StatusServiceUnavailable, e.do(t, tn.token, http.MethodPost, "/v1/conversations/"+conv+"/reply",
				fmt.Sprintf(`{"text":%q,"translate":true}`, answer), &prob))
			require.Contains(t, prob.Detail, "translator")
			require.Equal(t, "libretranslate", prob.Translator)
			require.NotEmpty(t, prob.Reason)
			require.Len(t, trMessages(t, e, tn.token, conv), before, "a refused reply is neither stored nor sent")

			// Asked to, the original is sent as written.
			var out trReply
			require.Equal(t, http.StatusOK, e.do(t, tn.token, http.MethodPost, "/v1/conversations/"+conv+"/reply",
				fmt.Sprintf(`{"text":%q,"translate":true,"fallback":"original"}`, answer), &out))
			require.Equal(t, answer, out.Message.Body)
			require.NotNil(t, out.Message.Translation)
			require.Equal(t, "failed", out.Message.Translation.State, "the response says the original was sent")
			require.NotEmpty(t, out.Message.Translation.Error)
			require.Len(t, trMessages(t, e, tn.token, conv), before+1)
		})
	}
}

type problem struct {
	Status int `json:"status"`
	Errors []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func TestTranslationSettings(t *testing.T) {
	e := startTranslating(t)
	b := e.tenant(t, "tr-settings")
	_, admin := e.userToken(t, b, "admin")
	const path = "/v1/admin/settings/translation"

	type settings struct {
		Enabled   bool   `json:"enabled"`
		Provider  string `json:"provider"`
		URL       string `json:"url"`
		APIKeySet bool   `json:"api_key_set"`
	}
	var got settings
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, path, "", &got))
	require.Equal(t, settings{Provider: "libretranslate"}, got, "off until an admin turns it on")

	raw := azCall(t, e, admin, http.MethodPut, path, `{"enabled":true,"provider":"libretranslate","url":"https://translate.example.com","api_key":"s3cret-key"}`)
	require.Equal(t, http.StatusOK, raw.Status, raw.String())
	require.NotContains(t, string(raw.Body), "s3cret-key", "the API key is never returned")
	require.NoError(t, json.Unmarshal(raw.Body, &got))
	require.Equal(t, settings{Enabled: true, Provider: "libretranslate", URL: "https://translate.example.com", APIKeySet: true}, got)
	raw = azCall(t, e, admin, http.MethodGet, path, "")
	require.NotContains(t, string(raw.Body), "s3cret-key")

	// Absent, the key stays; "" removes it.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path, `{"enabled":false,"url":"https://translate.example.com"}`, &got))
	require.True(t, got.APIKeySet)
	require.False(t, got.Enabled)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path, `{"enabled":false,"api_key":""}`, &got))
	require.False(t, got.APIKeySet)

	for _, tc := range []struct{ body, field string }{
		{`{"enabled":true,"url":"http://10.0.0.5/"}`, "url"},
		{`{"enabled":true,"url":"http://169.254.169.254/"}`, "url"},
		{`{"enabled":true,"url":"https://user:pw@translate.example.com"}`, "url"},
		{`{"enabled":true,"url":"ftp://translate.example.com"}`, "url"},
		{`{"enabled":true}`, "url"},
		{`{"url":"https://translate.example.com"}`, "enabled"},
		{`{"enabled":true,"provider":"deepl","url":"https://translate.example.com"}`, "provider"},
		{`{"enabled":false,"api_key":"a\nb"}`, "api_key"},
		{`{"enabled":false,"api_key":"` + strings.Repeat("k", 1001) + `"}`, "api_key"},
	} {
		before := azCall(t, e, admin, http.MethodGet, path, "")
		var prob problem
		require.Equal(t, http.StatusBadRequest, e.do(t, admin, http.MethodPut, path, tc.body, &prob), tc.body)
		require.NotEmpty(t, prob.Errors, tc.body)
		require.Equal(t, tc.field, prob.Errors[0].Field, tc.body)
		require.Equal(t, before.Body, azCall(t, e, admin, http.MethodGet, path, "").Body, "a refused change changed the settings")
	}

	// Translation off: nothing to translate with.
	var prob problem
	conv := e.chatConversation(t, b, admin, e.queue(t, b, "tr-q"))
	require.Equal(t, http.StatusConflict, e.do(t, admin, http.MethodPost, conv+"/reply", `{"text":"Hi","translate_to":"de"}`, &prob))
}
