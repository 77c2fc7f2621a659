package inbox_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

type tplRendered struct {
	TemplateID  string `json:"template_id"`
	Channel     string `json:"channel"`
	Text        string `json:"text"`
	Subject     string `json:"subject"`
	HTML        string `json:"html"`
	Attachments []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"attachments"`
}

type tplShortcut struct {
	TemplateID       string       `json:"template_id"`
	Keyword          string       `json:"keyword"`
	Expansion        *tplRendered `json:"expansion"`
	MissingVariables []string     `json:"missing_variables"`
}

// TestTemplatesOnChat: variables filled (custom contact fields included),
// a missing one named in a 422, queue-scoped visibility, rendering for
// editing, replies by template, and the shortcut search.
func TestTemplatesOnChat(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	tier1, tier2 := e.queue(t, b, "Tier 1"), e.queue(t, b, "Tier 2")
	_, admin := e.userToken(t, b, "admin", tier1)
	_, agent := e.userToken(t, b, "agent", tier1)
	_, other := e.userToken(t, b, "agent", tier2)

	e.send(t, b, "ev-1", "m-1", "session-1", "ada", "Hello, my order is late")
	var conv conversation
	testkit.Eventually(t, 20*time.Second, func() bool {
		cs := e.conversations(t, admin)
		if len(cs) == 1 {
			conv = cs[0]
		}
		return len(cs) == 1
	}, "the chat message was not stored")
	path := "/v1/conversations/" + conv.ID
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, tier1.ID), nil))

	create := func(body string) string {
		t.Helper()
		r := azCall(t, e, admin, http.MethodPost, "/v1/admin/templates", body)
		require.Equal(t, http.StatusCreated, r.Status, "create answered %s", r)
		return azID(t, r)
	}
	hello := create(`{"name":"Hello","keyword":"hello","bodies":{"chat":{"text":"Hello {{customer_name}}, {{agent_name}} of {{queue_name}} here ({{conversation_ref}})."}}}`)
	plan := create(`{"name":"Plan","keyword":"plan","bodies":{"chat":{"text":"Your plan: {{contact.plan}}"}}}`)
	helloT1 := create(fmt.Sprintf(`{"name":"Hello tier 1","keyword":"hello-t1","queue_id":%q,"bodies":{"chat":{"text":"Tier 1 greets you"}}}`, tier1.ID))
	t2 := create(fmt.Sprintf(`{"name":"Tier 2 only","keyword":"help","queue_id":%q,"bodies":{"chat":{"text":"Tier 2"}}}`, tier2.ID))
	smsOnly := create(`{"name":"SMS","keyword":"hellosms","bodies":{"sms":{"text":"by SMS"}}}`)

	// A keyword is unique per scope, and well formed.
	p := azMustProblem(t, azCall(t, e, admin, http.MethodPost, "/v1/admin/templates", `{"name":"Again","keyword":"hello","bodies":{"chat":{"text":"x"}}}`), http.StatusBadRequest, "a taken keyword")
	require.Equal(t, []string{"keyword"}, p.fields())
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPost, "/v1/admin/templates", `{"name":"Bad","keyword":"Hello!","bodies":{"chat":{"text":"x"}}}`), http.StatusBadRequest, "a bad keyword")
	require.Equal(t, []string{"keyword"}, p.fields())
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPost, "/v1/admin/templates", `{"name":"Bad","bodies":{"chat":{"text":"{{nope}}"}}}`), http.StatusBadRequest, "an unknown variable")
	require.Equal(t, []string{"bodies.chat.text"}, p.fields())

	// Rendering: filled; then a missing custom field is a 422 naming it.
	var rd tplRendered
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPost, path+"/templates/"+hello+"/render", "", &rd))
	ref := strings.ToUpper(conv.ID[:8])
	require.Equal(t, "Hello Ada, Agent agent of Tier 1 here ("+ref+").", rd.Text)
	require.Equal(t, "chat", rd.Channel)
	r := azCall(t, e, agent, http.MethodPost, path+"/templates/"+plan+"/render", "")
	p = azMustProblem(t, r, http.StatusUnprocessableEntity, "a missing custom field")
	require.Equal(t, []string{"variables.contact.plan"}, p.fields())
	require.Contains(t, string(r.Body), `"variables":["contact.plan"]`)

	// Custom fields through the contacts API, validated.
	cpath := "/v1/contacts/" + conv.ContactID
	p = azMustProblem(t, azCall(t, e, agent, http.MethodPatch, cpath, `{"custom_fields":{"Bad Name":"x"}}`), http.StatusBadRequest, "a bad field name")
	require.Equal(t, []string{"custom_fields"}, p.fields())
	p = azMustProblem(t, azCall(t, e, agent, http.MethodPatch, cpath, `{"custom_fields":{"plan":"a\nb"}}`), http.StatusBadRequest, "a value on two lines")
	require.Equal(t, []string{"custom_fields.plan"}, p.fields())
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPatch, cpath, `{"custom_fields":{"plan":"Gold <VIP>","tmp":"x"}}`, nil))
	var contact struct {
		CustomFields map[string]string `json:"custom_fields"`
	}
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPatch, cpath, `{"custom_fields":{"tmp":null}}`, &contact))
	require.Equal(t, map[string]string{"plan": "Gold <VIP>"}, contact.CustomFields)
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPost, path+"/templates/"+plan+"/render", "", &rd))
	require.Equal(t, "Your plan: Gold <VIP>", rd.Text, "text bodies take values as they are")

	// Queue scope: the other queue's template is not the agent's.
	require.Equal(t, http.StatusNotFound, azCall(t, e, agent, http.MethodPost, path+"/templates/"+t2+"/render", "").Status)
	var ts list[struct {
		ID string `json:"id"`
	}]
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, "/v1/templates?conversation_id="+conv.ID, "", &ts))
	var ids []string
	for _, x := range ts.Items {
		ids = append(ids, x.ID)
	}
	require.ElementsMatch(t, []string{hello, plan, helloT1}, ids, "the tenant's and tier 1's chat templates")
	require.Equal(t, http.StatusOK, e.do(t, other, http.MethodGet, "/v1/templates", "", &ts))
	ids = nil
	for _, x := range ts.Items {
		ids = append(ids, x.ID)
	}
	require.ElementsMatch(t, []string{hello, plan, t2, smsOnly}, ids, "tier 2's agent sees the tenant's and tier 2's")
	require.Equal(t, http.StatusForbidden, azCall(t, e, agent, http.MethodGet, "/v1/admin/templates", "").Status)

	// Shortcuts: prefix, case-insensitive, exact match first, scope.
	var sc list[tplShortcut]
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, "/v1/shortcuts?prefix=HEL&conversation_id="+conv.ID, "", &sc))
	require.Len(t, sc.Items, 2, "hellosms has no chat body, help is tier 2's")
	require.Equal(t, "hello", sc.Items[0].Keyword)
	require.Equal(t, "hello-t1", sc.Items[1].Keyword)
	require.NotNil(t, sc.Items[0].Expansion)
	require.Equal(t, "Hello Ada, Agent agent of Tier 1 here ("+ref+").", sc.Items[0].Expansion.Text)
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, "/v1/shortcuts?prefix=hello-t1", "", &sc))
	require.Len(t, sc.Items, 1)
	require.Nil(t, sc.Items[0].Expansion, "no conversation: no expansion")
	require.Equal(t, http.StatusOK, e.do(t, other, http.MethodGet, "/v1/shortcuts?prefix=he", "", &sc))
	var kws []string
	for _, s := range sc.Items {
		kws = append(kws, s.Keyword)
	}
	require.Equal(t, []string{"hello", "hellosms", "help"}, kws)
	for i := range 12 {
		create(fmt.Sprintf(`{"name":"Many %d","keyword":"many%02d","bodies":{"chat":{"text":"x"}}}`, i, i))
	}
	create(`{"name":"Many","keyword":"many","bodies":{"chat":{"text":"x"}}}`)
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodGet, "/v1/shortcuts?prefix=many", "", &sc))
	require.Len(t, sc.Items, 10, "at most 10")
	require.Equal(t, "many", sc.Items[0].Keyword, "the exact match first")
	require.Equal(t, "many00", sc.Items[1].Keyword)
	p = azMustProblem(t, azCall(t, e, agent, http.MethodGet, "/v1/shortcuts?prefix="+url.QueryEscape("a b"), ""), http.StatusBadRequest, "a bad prefix")
	require.Equal(t, []string{"prefix"}, p.fields())

	// A reply by template sends its rendered body; a missing variable
	// refuses it.
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPost, path+"/assign", "", nil))
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPatch, cpath, `{"custom_fields":{"plan":null}}`, nil))
	p = azMustProblem(t, azCall(t, e, agent, http.MethodPost, path+"/reply", fmt.Sprintf(`{"template_id":%q}`, plan)), http.StatusUnprocessableEntity, "a reply whose variable has no value")
	require.Equal(t, []string{"variables.contact.plan"}, p.fields())
	p = azMustProblem(t, azCall(t, e, agent, http.MethodPost, path+"/reply", fmt.Sprintf(`{"template_id":%q}`, smsOnly)), http.StatusBadRequest, "a template without a chat body")
	require.Equal(t, []string{"template_id"}, p.fields())
	require.Equal(t, http.StatusOK, e.do(t, agent, http.MethodPost, path+"/reply", fmt.Sprintf(`{"template_id":%q}`, hello), nil))
	msgs := e.messages(t, agent, conv.ID)
	require.Equal(t, "Hello Ada, Agent agent of Tier 1 here ("+ref+").", msgs[len(msgs)-1].Body)
}

// TestTemplatesOnEmail: HTML bodies sanitised and their values escaped, a
// reply by template carrying subject, HTML and files, and the 3-file limit
// of replies and templates.
func TestTemplatesOnEmail(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	support := e.queue(t, b, "Support")
	_, admin := e.userToken(t, b, "admin", support)
	mb := e.createMailbox(t, admin, "support@acme.example")

	m := events.MessageReceived{TenantID: b.Tenant.ID.String(), Channel: events.ChannelEmail, ChannelAccountID: mb.ID,
		ExternalID: "<m1@customer.example>", ThreadKey: "<m1@customer.example>", From: events.Party{Identity: "ada@customer.example", Name: "Ada <&> Co"},
		Text: "Where is my invoice?", Subject: "Invoice", ReceivedAt: time.Now().UTC()}
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
	var convs list[conversation]
	testkit.Eventually(t, 20*time.Second, func() bool {
		e.do(t, admin, http.MethodGet, "/v1/conversations?channel=email", "", &convs)
		return len(convs.Items) == 1
	}, "the email was not stored")
	path := "/v1/conversations/" + convs.Items[0].ID
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/route", fmt.Sprintf(`{"queue_id":%q}`, support.ID), nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/assign", "", nil))

	var uploads []string
	for i := range 4 {
		r := azCallAs(t, e, admin, http.MethodPost, fmt.Sprintf("/v1/attachments?filename=f%d.txt", i), "text/plain", fmt.Sprintf("file %d", i))
		require.Equal(t, http.StatusCreated, r.Status, "upload answered %s", r)
		uploads = append(uploads, azID(t, r))
	}
	quoted := func(ids ...string) string {
		q := make([]string, len(ids))
		for i, id := range ids {
			q[i] = fmt.Sprintf("%q", id)
		}
		return strings.Join(q, ",")
	}

	// The 3-file limit: on templates and on replies.
	p := azMustProblem(t, azCall(t, e, admin, http.MethodPost, "/v1/admin/templates",
		fmt.Sprintf(`{"name":"Four","bodies":{"email":{"text":"x"}},"attachments":[%s]}`, quoted(uploads...))), http.StatusBadRequest, "4 files on a template")
	require.Equal(t, []string{"attachments"}, p.fields())
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPost, path+"/reply",
		fmt.Sprintf(`{"text":"x","attachments":[%s]}`, quoted(uploads...))), http.StatusBadRequest, "4 files on a reply")
	require.Equal(t, []string{"attachments"}, p.fields())

	r := azCall(t, e, admin, http.MethodPost, "/v1/admin/templates", fmt.Sprintf(`{"name":"Invoice","keyword":"invoice",
		"bodies":{"email":{"subject":"Your invoice, {{customer_name}}","html":"<p onclick=\"x()\">Dear <b>{{customer_name}}</b>,</p><script>alert(1)</script><p>here it is.</p>"}},
		"attachments":[%s]}`, quoted(uploads[:2]...)))
	require.Equal(t, http.StatusCreated, r.Status, "create answered %s", r)
	tpl := azID(t, r)
	require.NotContains(t, string(r.Body), "script", "the HTML is sanitised when stored")
	require.NotContains(t, string(r.Body), "onclick")

	var rd tplRendered
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/templates/"+tpl+"/render", "", &rd))
	require.Equal(t, "Your invoice, Ada <&> Co", rd.Subject)
	require.Equal(t, "<p>Dear <b>Ada &lt;&amp;&gt; Co</b>,</p><p>here it is.</p>", rd.HTML, "values are HTML-escaped in HTML")
	require.Equal(t, "Dear Ada <&> Co,\nhere it is.", rd.Text, "the text is derived from the HTML")
	require.Len(t, rd.Attachments, 2)

	// Two files of the template and two of the reply: 4, refused.
	p = azMustProblem(t, azCall(t, e, admin, http.MethodPost, path+"/reply",
		fmt.Sprintf(`{"template_id":%q,"attachments":[%s]}`, tpl, quoted(uploads[2:]...))), http.StatusBadRequest, "4 files with the template's")
	require.Equal(t, []string{"attachments"}, p.fields())

	rdr := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: testkit.RandomName("t-"), GroupTopics: []string{events.TopicOutbound(events.ChannelEmail)}, MaxWait: 50 * time.Millisecond})
	defer rdr.Close()
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPost, path+"/reply",
		fmt.Sprintf(`{"template_id":%q,"attachments":[%s]}`, tpl, quoted(uploads[2])), nil), "3 files: the template's 2 and 1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	km, err := rdr.FetchMessage(ctx)
	require.NoError(t, err)
	sent, _, err := events.FromMessage(ctx, km)
	require.NoError(t, err)
	var cmd events.SendMessage
	require.NoError(t, sent.Decode(&cmd))
	require.Equal(t, "Your invoice, Ada <&> Co", cmd.Subject)
	require.Equal(t, rd.HTML, cmd.HTML)
	require.Equal(t, rd.Text, cmd.Text)
	require.Len(t, cmd.Attachments, 3)
	require.Equal(t, []string{"f0.txt", "f1.txt", "f2.txt"}, []string{cmd.Attachments[0].Name, cmd.Attachments[1].Name, cmd.Attachments[2].Name})
}
