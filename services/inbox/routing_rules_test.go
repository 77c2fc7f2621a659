package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
)

// Routing at creation: the channel accounts' default queues and the
// tenant's ordered routing rules (API, then ingestion).

type rrConditions struct {
	ChannelAccountIDs  []string `json:"channel_account_ids"`
	Channels           []string `json:"channels"`
	Languages          []string `json:"languages"`
	Keywords           []string `json:"keywords"`
	CustomerIdentities []string `json:"customer_identities"`
	ContactIDs         []string `json:"contact_ids"`
}

type rrRule struct {
	ID               string       `json:"id"`
	Position         int          `json:"position"`
	Name             string       `json:"name"`
	Conditions       rrConditions `json:"conditions"`
	QueueID          *string      `json:"queue_id"`
	RequiredSkillID  *string      `json:"required_skill_id"`
	RequiredLanguage *string      `json:"required_language"`
	Priority         *int         `json:"priority"`
}

type rrAccount struct {
	ID             string  `json:"id"`
	Channel        string  `json:"channel"`
	Name           string  `json:"name"`
	DefaultQueueID *string `json:"default_queue_id"`
}

// rrConversation is what routing sets on a conversation.
type rrConversation struct {
	ID               string  `json:"id"`
	ContactID        string  `json:"contact_id"`
	ContactName      string  `json:"contact_name"`
	QueueID          *string `json:"queue_id"`
	RequiredSkillID  *string `json:"required_skill_id"`
	RequiredLanguage string  `json:"required_language"`
	Priority         int     `json:"priority"`
	Language         string  `json:"language"`
}

// routingRuleBody is a rule that matches no conversation the tests send
// (the authorisation and bad-input tables create rules in a tenant whose
// conversations must stay where they are).
func routingRuleBody(name string) string {
	return fmt.Sprintf(`{"name":%q,"conditions":{"keywords":["xyzzy-never"]},"priority":3}`, name)
}

// spareChatChannel creates a chat channel of A that no message arrives on.
func (fx *azFixture) spareChatChannel(t *testing.T) string {
	t.Helper()
	c, err := fx.e.admin.CreateChatChannel(context.Background(), fx.a.Tenant.ID, testkit.RandomName("spare-"))
	require.NoError(t, err)
	return c.ID.String()
}

func (e env) rules(t *testing.T, token string) []rrRule {
	t.Helper()
	var l list[rrRule]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/admin/routing-rules", "", &l))
	return l.Items
}

func rrNames(rules []rrRule) []string {
	out := []string{}
	for _, r := range rules {
		out = append(out, fmt.Sprintf("%d %s", r.Position, r.Name))
	}
	return out
}

func TestRoutingRulesAPI(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	admin := b.APIToken.Token
	_, agent := e.userToken(t, b, "agent")
	support, sales := e.queue(t, b, "Support"), e.queue(t, b, "Sales")
	foreignQueue := e.queue(t, other, "Theirs")
	var skill adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/skills", `{"name":"Billing"}`, &skill))
	var contact struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/contacts", `{"identities":[{"channel":"email","identity":"ceo@big.example"}]}`, &contact))

	// Create: the rule goes last; conditions are normalised and shown in
	// full.
	var vip, refunds, catchAll rrRule
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/routing-rules", fmt.Sprintf(`{"name":"VIP",
		"conditions":{"customer_identities":["CEO@big.example"],"contact_ids":[%q],"channel_account_ids":[%q]},
		"queue_id":%q,"required_skill_id":%q,"required_language":"fr","priority":10}`,
		strings.ToUpper(contact.ID), b.ChatChannel.ID, support.ID, skill.ID), &vip))
	require.Equal(t, 1, vip.Position)
	require.Equal(t, support.ID.String(), *vip.QueueID)
	require.Equal(t, skill.ID, *vip.RequiredSkillID)
	require.Equal(t, "fr", *vip.RequiredLanguage)
	require.Equal(t, 10, *vip.Priority)
	require.Equal(t, []string{contact.ID}, vip.Conditions.ContactIDs, "ids are stored in canonical form")
	require.Equal(t, []string{}, vip.Conditions.Keywords)
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/routing-rules",
		fmt.Sprintf(`{"name":"Refunds","conditions":{"keywords":["refund","remboursement"],"channels":["email"]},"queue_id":%q}`, sales.ID), &refunds))
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/routing-rules", `{"name":"Everything else","priority":-2}`, &catchAll))
	require.Nil(t, catchAll.QueueID)
	require.Equal(t, []string{"1 VIP", "2 Refunds", "3 Everything else"}, rrNames(e.rules(t, admin)))

	var got rrRule
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/routing-rules/"+refunds.ID, "", &got))
	require.Equal(t, refunds, got)

	// PATCH: absent fields stay, null clears, conditions are replaced.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPatch, "/v1/admin/routing-rules/"+vip.ID,
		`{"required_skill_id":null,"priority":5,"conditions":{"customer_identities":["ceo@big.example"]}}`, &got))
	require.Nil(t, got.RequiredSkillID)
	require.Equal(t, 5, *got.Priority)
	require.Equal(t, "fr", *got.RequiredLanguage)
	require.Equal(t, support.ID.String(), *got.QueueID)
	require.Empty(t, got.Conditions.ContactIDs)
	require.Equal(t, []string{"ceo@big.example"}, got.Conditions.CustomerIdentities)

	// Reorder: every rule, each once.
	var order list[rrRule]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/routing-rules/order",
		fmt.Sprintf(`{"ids":[%q,%q,%q]}`, refunds.ID, catchAll.ID, vip.ID), &order))
	require.Equal(t, []string{"1 Refunds", "2 Everything else", "3 VIP"}, rrNames(order.Items))
	require.Equal(t, rrNames(order.Items), rrNames(e.rules(t, admin)))
	e.adminInvalid(t, admin, http.MethodPut, "/v1/admin/routing-rules/order", fmt.Sprintf(`{"ids":[%q,%q]}`, refunds.ID, vip.ID), "ids")
	e.adminInvalid(t, admin, http.MethodPut, "/v1/admin/routing-rules/order", fmt.Sprintf(`{"ids":[%q,%q,%q]}`, refunds.ID, vip.ID, vip.ID), "ids[2]")
	e.adminInvalid(t, admin, http.MethodPut, "/v1/admin/routing-rules/order", fmt.Sprintf(`{"ids":[%q,%q,%q]}`, refunds.ID, vip.ID, uuid.NewString()), "ids[2]")

	// Delete: the rules after it move up.
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/routing-rules/"+refunds.ID, "", nil))
	require.Equal(t, []string{"1 Everything else", "2 VIP"}, rrNames(e.rules(t, admin)))
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodGet, "/v1/admin/routing-rules/"+refunds.ID, "", nil))

	// Every field is checked, naming it; nothing changes.
	before := e.rules(t, admin)
	for _, c := range []struct{ body, field string }{
		{`{"conditions":{}}`, "name"},
		{`{"name":"Everything else"}`, "name"},
		{`{"name":"X","conditions":{"keywords":["ok",""]}}`, "conditions.keywords[1]"},
		{`{"name":"X","conditions":{"keywords":["` + strings.Repeat("k", 101) + `"]}}`, "conditions.keywords[0]"},
		{`{"name":"X","conditions":{"keywords":["Résilier","resilier"]}}`, "conditions.keywords[1]"},
		{`{"name":"X","conditions":{"channels":["fax"]}}`, "conditions.channels[0]"},
		{`{"name":"X","conditions":{"languages":["french"]}}`, "conditions.languages[0]"},
		{`{"name":"X","conditions":{"customer_identities":["Ada <ada@example.com>"]}}`, "conditions.customer_identities[0]"},
		{`{"name":"X","conditions":{"channel_account_ids":["` + other.ChatChannel.ID.String() + `"]}}`, "conditions.channel_account_ids[0]"},
		{`{"name":"X","conditions":{"contact_ids":["` + uuid.NewString() + `"]}}`, "conditions.contact_ids[0]"},
		{`{"name":"X","conditions":{"colour":["red"]}}`, "colour"},
		{`{"name":"X","conditions":{"keywords":"refund"}}`, "conditions.keywords"},
		{`{"name":"X","queue_id":"` + foreignQueue.ID.String() + `"}`, "queue_id"},
		{`{"name":"X","queue_id":"support"}`, "queue_id"},
		{`{"name":"X","required_skill_id":"` + uuid.NewString() + `"}`, "required_skill_id"},
		{`{"name":"X","required_language":"xx-YY"}`, "required_language"},
		{`{"name":"X","priority":11}`, "priority"},
		{`{"name":"X","priority":1.5}`, "priority"},
		{`{"name":"X","priority":"high"}`, "priority"},
	} {
		e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/routing-rules", c.body, c.field)
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("word%d", i)
	}
	raw, _ := json.Marshal(map[string]any{"name": "Many", "conditions": map[string]any{"keywords": many}})
	e.adminInvalid(t, admin, http.MethodPost, "/v1/admin/routing-rules", string(raw), "conditions.keywords")
	e.adminInvalid(t, admin, http.MethodPatch, "/v1/admin/routing-rules/"+vip.ID, `{}`, "body")
	e.adminInvalid(t, admin, http.MethodPatch, "/v1/admin/routing-rules/"+vip.ID, `{"priority":-11}`, "priority")
	e.adminInvalid(t, admin, http.MethodPatch, "/v1/admin/routing-rules/"+vip.ID, `{"name":"Everything else"}`, "name")
	require.Equal(t, before, e.rules(t, admin))

	// Agents may not read nor write them; another tenant sees none.
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, "/v1/admin/routing-rules", "", nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPost, "/v1/admin/routing-rules", `{"name":"Mine"}`, nil))
	require.Empty(t, e.rules(t, other.APIToken.Token))
	require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, http.MethodGet, "/v1/admin/routing-rules/"+vip.ID, "", nil))

	// At most 200 rules per tenant.
	for i := len(before); i < 200; i++ {
		require.Equal(t, http.StatusCreated, e.do(t, other.APIToken.Token, http.MethodPost, "/v1/admin/routing-rules", fmt.Sprintf(`{"name":"r%d"}`, i), nil))
	}
	for i := 0; i < len(before); i++ {
		require.Equal(t, http.StatusCreated, e.do(t, other.APIToken.Token, http.MethodPost, "/v1/admin/routing-rules", fmt.Sprintf(`{"name":"s%d"}`, i), nil))
	}
	e.adminInvalid(t, other.APIToken.Token, http.MethodPost, "/v1/admin/routing-rules", `{"name":"one too many"}`, "body")
	require.Len(t, e.rules(t, other.APIToken.Token), 200)
}

func TestChannelAccountDefaultQueue(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	other := e.tenant(t, "Other")
	admin := b.APIToken.Token
	_, agent := e.userToken(t, b, "agent")
	support := e.queue(t, b, "Support")
	mailbox := e.createMailbox(t, admin, testkit.RandomName("support-")+"@acme.example")

	var l list[rrAccount]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/channel-accounts", "", &l))
	require.Len(t, l.Items, 2)
	require.Equal(t, rrAccount{ID: b.ChatChannel.ID.String(), Channel: "chat", Name: "chat"}, l.Items[0])
	require.Equal(t, mailbox.ID, l.Items[1].ID)
	require.Equal(t, "email", l.Items[1].Channel)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/channel-accounts?limit=1", "", &l))
	require.Len(t, l.Items, 1)
	require.NotEmpty(t, l.NextCursor)

	path := "/v1/admin/channel-accounts/" + mailbox.ID + "/routing"
	var acct rrAccount
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path, fmt.Sprintf(`{"default_queue_id":%q}`, support.ID), &acct))
	require.Equal(t, support.ID.String(), *acct.DefaultQueueID)
	e.adminInvalid(t, admin, http.MethodPut, path, `{}`, "default_queue_id")
	e.adminInvalid(t, admin, http.MethodPut, path, `{"default_queue_id":"support"}`, "default_queue_id")
	e.adminInvalid(t, admin, http.MethodPut, path, fmt.Sprintf(`{"default_queue_id":%q}`, e.queue(t, other, "Theirs").ID), "default_queue_id")
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodPut, path, `{"default_queue_id":null}`, nil))
	require.Equal(t, http.StatusForbidden, e.do(t, agent, http.MethodGet, "/v1/admin/channel-accounts", "", nil))
	require.Equal(t, http.StatusNotFound, e.do(t, other.APIToken.Token, http.MethodPut, path, `{"default_queue_id":null}`, nil))
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodPut, "/v1/admin/channel-accounts/"+uuid.NewString()+"/routing", `{"default_queue_id":null}`, nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/channel-accounts", "", &l))
	require.Equal(t, support.ID.String(), *l.Items[1].DefaultQueueID)

	// null removes it; deleting the queue does too.
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path, `{"default_queue_id":null}`, &acct))
	require.Nil(t, acct.DefaultQueueID)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, path, fmt.Sprintf(`{"default_queue_id":%q}`, support.ID), &acct))
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/queues/"+support.ID.String(), "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/channel-accounts", "", &l))
	require.Nil(t, l.Items[1].DefaultQueueID)

	// A deleted mailbox is no longer listed nor configurable.
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/mailboxes/"+mailbox.ID, "", nil))
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/channel-accounts", "", &l))
	require.Len(t, l.Items, 1)
	require.Equal(t, http.StatusNotFound, e.do(t, admin, http.MethodPut, path, `{"default_queue_id":null}`, nil))
}

// rrSend publishes an inbound message as a connector does.
func (e env) rrSend(t *testing.T, m events.MessageReceived) {
	t.Helper()
	if m.ExternalID == "" {
		m.ExternalID = uuid.NewString()
	}
	if m.ThreadKey == "" {
		m.ThreadKey = uuid.NewString()
	}
	m.ReceivedAt = time.Now().UTC()
	ev, err := events.New(events.TypeMessageReceived, "test", m.TenantID, time.Now(), m)
	require.NoError(t, err)
	require.NoError(t, e.producer.Publish(context.Background(), events.TopicInbound, events.ConversationKey(m.TenantID, m.Channel, m.ChannelAccountID, m.ThreadKey), ev))
}

// rrConversations waits for n conversations of the tenant of token and
// returns them by contact name.
func (e env) rrConversations(t *testing.T, token string, n int) map[string]rrConversation {
	t.Helper()
	var l list[rrConversation]
	testkit.Eventually(t, 30*time.Second, func() bool {
		// A fresh list each time: decoding into the last one would keep
		// the fields a conversation leaves out (omitempty) from another.
		l = list[rrConversation]{}
		require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/conversations?limit=200", "", &l))
		return len(l.Items) >= n
	}, "%d conversations were not stored", n)
	require.Len(t, l.Items, n)
	out := map[string]rrConversation{}
	for _, c := range l.Items {
		out[c.ContactName] = c
	}
	require.Len(t, out, n, "each conversation has a sender of its own")
	return out
}

func TestNewConversationsAreRouted(t *testing.T) {
	e := start(t)
	b := e.tenant(t, "Acme")
	admin := b.APIToken.Token
	tenant := b.Tenant.ID.String()
	var (
		general  = e.queue(t, b, "General")
		partners = e.queue(t, b, "Partners")
		refunds  = e.queue(t, b, "Refunds")
		french   = e.queue(t, b, "Français")
		vip      = e.queue(t, b, "VIP")
		gone     = e.queue(t, b, "Gone")
	)
	var skill adminNamed
	require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/skills", `{"name":"Billing"}`, &skill))
	partnerChat, err := e.admin.CreateChatChannel(context.Background(), b.Tenant.ID, "partners")
	require.NoError(t, err)
	quietChat, err := e.admin.CreateChatChannel(context.Background(), b.Tenant.ID, "quiet")
	require.NoError(t, err)
	goneChat, err := e.admin.CreateChatChannel(context.Background(), b.Tenant.ID, "gone")
	require.NoError(t, err)
	mailbox := e.createMailbox(t, admin, testkit.RandomName("support-")+"@acme.example")

	put := func(account, queue string) {
		require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodPut, "/v1/admin/channel-accounts/"+account+"/routing",
			fmt.Sprintf(`{"default_queue_id":%q}`, queue), nil))
	}
	put(b.ChatChannel.ID.String(), general.ID.String())
	put(mailbox.ID, general.ID.String())
	put(goneChat.ID.String(), gone.ID.String())
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/queues/"+gone.ID.String(), "", nil))

	rule := func(body string) rrRule {
		var r rrRule
		require.Equal(t, http.StatusCreated, e.do(t, admin, http.MethodPost, "/v1/admin/routing-rules", body, &r), body)
		return r
	}
	vipRule := rule(fmt.Sprintf(`{"name":"VIP","conditions":{"customer_identities":["CEO@Big.example","+33600000001"]},"queue_id":%q,"priority":10}`, vip.ID))
	partnerRule := rule(fmt.Sprintf(`{"name":"Partners","conditions":{"channel_account_ids":[%q]},"queue_id":%q}`, partnerChat.ID, partners.ID))
	refundRule := rule(fmt.Sprintf(`{"name":"Refunds","conditions":{"keywords":["refund","remboursement"]},"queue_id":%q,"required_skill_id":%q,"priority":2}`,
		refunds.ID, skill.ID))
	frenchRule := rule(fmt.Sprintf(`{"name":"French","conditions":{"languages":["fr"],"channels":["chat"]},"queue_id":%q,"required_language":"fr"}`, french.ID))
	// Sets no queue: the channel account's default applies.
	urgentRule := rule(`{"name":"Urgent","conditions":{"keywords":["urgent"]},"priority":5}`)

	chat := func(account, name, identity, text string) events.MessageReceived {
		return events.MessageReceived{TenantID: tenant, Channel: events.ChannelChat, ChannelAccountID: account,
			From: events.Party{Identity: identity, Name: name}, Text: text}
	}
	mainChat := b.ChatChannel.ID.String()
	e.rrSend(t, chat(mainChat, "default", "u-default", "Hello, where is my parcel?"))
	e.rrSend(t, chat(partnerChat.ID.String(), "partner", "u-partner", "Hello from a partner"))
	e.rrSend(t, events.MessageReceived{TenantID: tenant, Channel: events.ChannelEmail, ChannelAccountID: mailbox.ID,
		From: events.Party{Identity: "ada@customer.example", Name: "subject keyword"}, Subject: "Refund for order 42", Text: "See the subject."})
	e.rrSend(t, chat(mainChat, "text keyword", "u-text", "Je voudrais un REMBOURSEMENT, merci."))
	e.rrSend(t, chat(mainChat, "french", "u-french", "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?"))
	e.rrSend(t, chat(mainChat, "english", "u-english", "Hello, my order still has not arrived, could you please check it?"))
	// The VIP rule comes first: it wins over the keyword rule.
	e.rrSend(t, events.MessageReceived{TenantID: tenant, Channel: events.ChannelEmail, ChannelAccountID: mailbox.ID,
		From: events.Party{Identity: "ceo@big.example", Name: "vip"}, Subject: "Refund", Text: "Please refund me."})
	e.rrSend(t, chat(mainChat, "urgent", "u-urgent", "This is urgent"))
	e.rrSend(t, chat(quietChat.ID.String(), "nothing", "u-nothing", "Hello"))
	e.rrSend(t, chat(goneChat.ID.String(), "gone", "u-gone", "Hello"))
	convs := e.rrConversations(t, admin, 10)

	type want struct {
		queue    *inbox.Queue
		skill    string
		language string
		priority int
		rule     *rrRule
		source   string
	}
	for name, w := range map[string]want{
		"default":         {queue: &general, source: "default"},
		"partner":         {queue: &partners, rule: &partnerRule, source: "rule"},
		"subject keyword": {queue: &refunds, skill: skill.ID, priority: 2, rule: &refundRule, source: "rule"},
		"text keyword":    {queue: &refunds, skill: skill.ID, priority: 2, rule: &refundRule, source: "rule"},
		"french":          {queue: &french, language: "fr", rule: &frenchRule, source: "rule"},
		"english":         {queue: &general, source: "default"},
		"vip":             {queue: &vip, priority: 10, rule: &vipRule, source: "rule"},
		"urgent":          {queue: &general, priority: 5, rule: &urgentRule, source: "default"},
		"nothing":         {},
		"gone":            {},
	} {
		t.Run(name, func(t *testing.T) {
			c := convs[name]
			if w.queue == nil {
				require.Nil(t, c.QueueID, "no rule and no default: no queue")
			} else {
				require.NotNil(t, c.QueueID, "want queue %s", w.queue.Name)
				require.Equal(t, w.queue.ID.String(), *c.QueueID, "want queue %s", w.queue.Name)
			}
			if w.skill == "" {
				require.Nil(t, c.RequiredSkillID)
			} else {
				require.Equal(t, w.skill, *c.RequiredSkillID)
			}
			require.Equal(t, w.language, c.RequiredLanguage)
			require.Equal(t, w.priority, c.Priority)

			var audit list[struct {
				Action string          `json:"action"`
				Reason string          `json:"reason"`
				Data   json.RawMessage `json:"data"`
			}]
			require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+c.ID+"/audit", "", &audit))
			require.NotEmpty(t, audit.Items)
			created := audit.Items[0]
			require.Equal(t, "created", created.Action)
			var data struct {
				RuleID      string `json:"rule_id"`
				RuleName    string `json:"rule_name"`
				QueueSource string `json:"queue_source"`
			}
			if len(created.Data) > 0 {
				require.NoError(t, json.Unmarshal(created.Data, &data))
			}
			if w.rule != nil {
				require.Equal(t, w.rule.ID, data.RuleID)
				require.Equal(t, w.rule.Name, data.RuleName)
				require.Contains(t, created.Reason, w.rule.Name)
			} else {
				require.Empty(t, data.RuleID)
			}
			require.Equal(t, w.source, data.QueueSource)
		})
	}

	// The French message's language was detected at creation, for the
	// rule, and stored on the conversation and the message; the English
	// one's too (the French rule asked), and qualify leaves both alone.
	require.Equal(t, "fr", convs["french"].Language)
	require.Equal(t, "en", convs["english"].Language)
	var msgs list[struct {
		Language string `json:"language"`
	}]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/conversations/"+convs["french"].ID+"/messages", "", &msgs))
	require.Equal(t, "fr", msgs.Items[0].Language)
	// No language rule reached the email conversations: not detected at
	// creation (qualify detects it behind).

	// The created events carry what routing set.
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: e.brokers, GroupID: "routing-test", GroupTopics: []string{events.TopicConversations}, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < len(convs) {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "created events seen: %v", seen)
		ev, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		if ev.Type != events.TypeConversationChanged {
			continue
		}
		var ch events.ConversationChanged
		require.NoError(t, ev.Decode(&ch))
		if ch.Action != "created" {
			continue
		}
		var snap rrConversation
		require.NoError(t, json.Unmarshal(ch.Conversation, &snap))
		want := convs[snap.ContactName]
		require.Equal(t, want.QueueID, snap.QueueID, snap.ContactName)
		require.Equal(t, want.RequiredSkillID, snap.RequiredSkillID, snap.ContactName)
		require.Equal(t, want.RequiredLanguage, snap.RequiredLanguage, snap.ContactName)
		require.Equal(t, want.Priority, snap.Priority, snap.ContactName)
		if snap.ContactName == "partner" {
			require.Contains(t, string(ch.Data), partnerRule.ID)
		}
		seen[snap.ContactName] = true
	}

	// A later message changes nothing of the placement, and rules apply
	// to conversations created after them only.
	require.Equal(t, http.StatusNoContent, e.do(t, admin, http.MethodDelete, "/v1/admin/routing-rules/"+partnerRule.ID, "", nil))
	e.rrSend(t, chat(partnerChat.ID.String(), "partner 2", "u-partner-2", "Hello again"))
	after := e.rrConversations(t, admin, 11)
	require.Nil(t, after["partner 2"].QueueID, "the deleted rule no longer applies")
	require.Equal(t, partners.ID.String(), *after["partner"].QueueID)
}
