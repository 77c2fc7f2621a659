package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// ListResult is the list scenario's figures.
type ListResult struct {
	Conversations   int     `json:"conversations"`
	Messages        int     `json:"messages"`
	LoadSeconds     float64 `json:"load_seconds"`
	ReceivedP50     float64 `json:"received_tab_p50_ms"`
	ReceivedP99     float64 `json:"received_tab_p99_ms"`
	SearchRareP50   float64 `json:"search_rare_p50_ms"`
	SearchRareP99   float64 `json:"search_rare_p99_ms"`
	SearchCommonP50 float64 `json:"search_common_p50_ms"`
	SearchCommonP99 float64 `json:"search_common_p99_ms"`
	// The reply assistant's suggestions, on the same tenant with an
	// agent's reply per conversation and 1,000 knowledge-base entries.
	SuggestionsP50 float64 `json:"suggestions_p50_ms"`
	SuggestionsP99 float64 `json:"suggestions_p99_ms"`
	// Keyword shortcuts expanded for a conversation, among 1,000
	// templates.
	ShortcutsP50 float64 `json:"shortcuts_p50_ms"`
	ShortcutsP99 float64 `json:"shortcuts_p99_ms"`
}

// vocabulary makes message bodies that full-text search can tell apart:
// common support words, and a reference number that recurs rarely.
const vocabulary = `ARRAY['bonjour','commande','livraison','colis','retard','remboursement','facture','adresse','merci','paiement',
	'carte','compte','mot','passe','connexion','erreur','produit','taille','couleur','retour','échange','garantie','réparation',
	'magasin','horaires','promotion','code','réduction','abonnement','résiliation','client','service','urgent','question',
	'problème','aide','svp','hello','order','delivery','refund','invoice','account','password','thanks','please','issue']`

// listLoad fills the database with conversations and messages of one
// tenant, straight in SQL (as if ingested over days), and returns the
// queue whose received tab is measured.
func listLoad(ctx context.Context, conn *pgx.Conn, tenant, chatAccount string, conversations, perConversation int) (string, error) {
	steps := []string{
		// Two more channel accounts (email, sms) and five queues.
		`INSERT INTO inbox.channel_accounts (id, tenant_id, channel, name)
		 SELECT md5('acct' || c)::uuid, @tenant, c, c FROM unnest(ARRAY['email','sms']) c`,
		`INSERT INTO inbox.queues (id, tenant_id, name) SELECT md5('queue' || q)::uuid, @tenant, 'Queue ' || q FROM generate_series(1, 5) q`,
		// One contact per two conversations.
		`INSERT INTO inbox.contacts (id, tenant_id, name, source, created_at)
		 SELECT md5('contact' || g)::uuid, @tenant, 'Customer ' || g, 'chat', now() - interval '90 days'
		 FROM generate_series(1, (@n::int + 1) / 2) g`,
		`INSERT INTO inbox.contact_identities (tenant_id, channel, identity, contact_id)
		 SELECT @tenant, 'chat', 'user-' || g, md5('contact' || g)::uuid FROM generate_series(1, (@n::int + 1) / 2) g`,
		// Conversations over 90 days: a third chat, email, sms; every
		// state; five queues and some without one.
		`INSERT INTO inbox.conversations (id, tenant_id, contact_id, channel, channel_account_id, thread_key, state,
		     started_at, last_message_at, queue_id, unread, last_writer)
		 SELECT md5('conv' || g)::uuid, @tenant, md5('contact' || ((g + 1) / 2))::uuid,
		        (ARRAY['chat','email','sms'])[g % 3 + 1],
		        CASE g % 3 WHEN 0 THEN @chat::uuid ELSE md5('acct' || (ARRAY['chat','email','sms'])[g % 3 + 1])::uuid END,
		        'thread-' || g,
		        (ARRAY['new','new','new','assigned','assigned','answered','answered','deferred','done','done'])[g % 10 + 1],
		        now() - interval '90 days' + (g * interval '90 days' / @n::int),
		        now() - interval '90 days' + (g * interval '90 days' / @n::int) + interval '1 hour',
		        CASE WHEN g % 6 = 0 THEN NULL ELSE md5('queue' || (g % 5 + 1))::uuid END,
		        g % 2 = 0, CASE WHEN g % 4 = 0 THEN 'agent' ELSE 'customer' END
		 FROM generate_series(1, @n::int) g`,
		// Messages: words of the vocabulary, and a reference ref<n> that
		// recurs in one message out of 5,000.
		`INSERT INTO inbox.messages (id, tenant_id, conversation_id, event_id, channel_account_id, external_id, direction,
		     sender, body, received_at)
		 SELECT md5('msg' || g)::uuid, @tenant, md5('conv' || c)::uuid, 'bench', @chat::uuid, 'ext-' || g, 'inbound', 'user',
		        v[g % cardinality(v) + 1] || ' ' || v[(g / 7) % cardinality(v) + 1] || ' ' || v[(g / 49) % cardinality(v) + 1]
		          || ' ma commande ref' || (g % 5000) || ' ' || v[(g / 343) % cardinality(v) + 1],
		        now() - interval '90 days' + (c * interval '90 days' / @n::int) + (g % @per::int) * interval '1 minute'
		 FROM generate_series(1, @n::int * @per::int) g, LATERAL (SELECT (g - 1) / @per::int + 1 AS c) x, LATERAL (SELECT ` + vocabulary + ` AS v) w`,
		`ANALYZE inbox.conversations`,
		`ANALYZE inbox.messages`,
	}
	args := pgx.NamedArgs{"tenant": tenant, "chat": chatAccount, "n": conversations, "per": perConversation}
	for i, sql := range steps {
		if _, err := conn.Exec(ctx, sql, args); err != nil {
			return "", fmt.Errorf("load step %d: %w", i+1, err)
		}
	}
	var queue string
	err := conn.QueryRow(ctx, `SELECT md5('queue' || 2)::uuid::text`).Scan(&queue)
	return queue, err
}

// listRun loads the data and measures the list path through the API.
func listRun(ctx context.Context, o options, w io.Writer) (ListResult, error) {
	res := ListResult{Conversations: o.listConversations, Messages: o.listConversations * o.listPerConversation}
	env, err := newRunEnv(ctx, o, "sbbench_list_")
	if err != nil {
		return res, err
	}
	defer env.close()
	b := env.boot
	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	fmt.Fprintf(w, "list scenario: loading %d conversations and %d messages in one tenant...\n", res.Conversations, res.Messages)
	start := time.Now()
	queue, err := listLoad(ctx, conn, b.Tenant.ID, b.ChatChannel.ID, o.listConversations, o.listPerConversation)
	if err != nil {
		return res, err
	}
	if err := assistantLoad(ctx, conn, b.Tenant.ID, b.ChatChannel.ID, o.listConversations, o.listPerConversation); err != nil {
		return res, err
	}
	res.Messages += o.listConversations
	if err := shortcutsLoad(ctx, conn, b.Tenant.ID); err != nil {
		return res, err
	}
	res.LoadSeconds = time.Since(start).Seconds()

	node, err := env.start(ctx, o, o.addr)
	if err != nil {
		return res, err
	}
	defer node.Stop()

	client := &http.Client{Timeout: 30 * time.Second}
	measure := func(query string) (p50, p99 float64, err error) {
		return timeGets(ctx, client, b.APIToken.Token, o.listQueries, func(int) (string, error) {
			return node.Base() + "/v1/conversations?" + query, nil
		})
	}
	received := url.Values{"tab": {"received"}, "channel": {"chat"}, "queue_id": {queue}, "limit": {"50"}}
	if res.ReceivedP50, res.ReceivedP99, err = measure(received.Encode()); err != nil {
		return res, err
	}
	if res.SearchRareP50, res.SearchRareP99, err = measure(url.Values{"q": {"ref1234"}, "limit": {"50"}}.Encode()); err != nil {
		return res, err
	}
	if res.SearchCommonP50, res.SearchCommonP99, err = measure(url.Values{"q": {"remboursement"}, "limit": {"50"}}.Encode()); err != nil {
		return res, err
	}
	if res.SuggestionsP50, res.SuggestionsP99, err = assistantMeasure(ctx, conn, client, node.Base(), b.APIToken.Token, o.listConversations, o.listQueries); err != nil {
		return res, err
	}
	if res.ShortcutsP50, res.ShortcutsP99, err = shortcutsMeasure(ctx, conn, client, node.Base(), b.APIToken.Token, o.listConversations, o.listQueries); err != nil {
		return res, err
	}
	return res, nil
}

// timeGets makes 20 GETs to warm the caches, then n measured ones, each
// to the URL url gives for its round, with token; every answer must be
// 200. It returns the p50 and p99 of the measured ones, in ms.
func timeGets(ctx context.Context, client *http.Client, token string, n int, url func(i int) (string, error)) (p50, p99 float64, err error) {
	var lat []time.Duration
	for i := 0; i < 20+n; i++ {
		u, err := url(i)
		if err != nil {
			return 0, 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
		}
		if i >= 20 {
			lat = append(lat, time.Since(t0))
		}
	}
	p50, p99 = p50p99(lat)
	return p50, p99, nil
}

// spreadConversation is the id of the i-th of conversations visited
// evenly over listLoad's tenant (a stride prime to their count).
func spreadConversation(ctx context.Context, conn *pgx.Conn, i, conversations int) (string, error) {
	var id string
	err := conn.QueryRow(ctx, `SELECT md5('conv' || $1::int)::uuid::text`, 1+(i*7919)%conversations).Scan(&id)
	return id, err
}
