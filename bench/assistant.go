package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"
)

// The reply assistant on the list scenario's tenant: its load gets an
// agent's reply in every conversation and a knowledge base of 1,000
// entries, and GET /v1/conversations/{id}/suggestions is measured on
// conversations spread over the tenant.

// assistantWords are the subjects of the agents' replies and of the
// knowledge base's entries (folded, as the inbox writes entries' vectors).
const assistantWords = `ARRAY['commande','livraison','colis','retard','remboursement','facture','adresse','paiement','carte','compte',
	'connexion','erreur','produit','taille','retour','echange','garantie','reparation','magasin','horaires','promotion','code',
	'reduction','abonnement','resiliation']`

// assistantLoad adds to listLoad's tenant an agent (a user) and a reply of
// theirs after the fifth message of each conversation, and 1,000
// knowledge-base entries in 20 groups, a quarter of them for one queue.
func assistantLoad(ctx context.Context, conn *pgx.Conn, tenant, chatAccount string, conversations, perConversation int) error {
	steps := []string{
		`INSERT INTO inbox.users (id, tenant_id, email, name, role) VALUES (md5('bench-agent')::uuid, @tenant, 'agent@bench.example', 'Agent', 'agent')`,
		// Between the customer's 5th and 6th message (listLoad's messages
		// are a minute apart).
		`INSERT INTO inbox.messages (id, tenant_id, conversation_id, event_id, channel_account_id, external_id, direction, sender, author_id, body, received_at)
		 SELECT md5('reply' || c)::uuid, @tenant, md5('conv' || c)::uuid, 'bench', @chat::uuid, 'reply-' || c, 'outbound',
		        md5('bench-agent')::uuid::text, md5('bench-agent')::uuid::text,
		        'Bonjour, au sujet de ' || v[c % cardinality(v) + 1] || ' et ' || v[(c / 7) % cardinality(v) + 1] || ' : voici la marche à suivre ' || (c % 300),
		        now() - interval '90 days' + (c * interval '90 days' / @n::int) + least(5, @per::int - 1) * interval '1 minute' + interval '30 seconds'
		 FROM generate_series(1, @n::int) c, LATERAL (SELECT ` + assistantWords + ` AS v) w`,
		`INSERT INTO inbox.knowledge_groups (id, tenant_id, name, created_at, updated_at)
		 SELECT md5('kg' || g)::uuid, @tenant, 'Group ' || g, now(), now() FROM generate_series(1, 20) g`,
		`INSERT INTO inbox.knowledge_entries (id, tenant_id, group_id, queue_id, title, body, keywords, search, created_at, updated_at)
		 SELECT md5('kb' || g)::uuid, @tenant, md5('kg' || (g % 20 + 1))::uuid,
		        CASE WHEN g % 4 = 0 THEN md5('queue' || (g % 5 + 1))::uuid END,
		        initcap(t1) || ' et ' || t2 || ' ' || g, 'Réponse ' || g || ' sur ' || t1 || ', ' || t2 || ' et ' || t3 || '.', ARRAY[t1, t3],
		        setweight(to_tsvector('simple', t1 || ' et ' || t2 || ' ' || g || ' ' || t1 || ' ' || t3), 'A')
		          || setweight(to_tsvector('simple', 'reponse ' || g || ' sur ' || t1 || ' ' || t2 || ' et ' || t3), 'B'),
		        now(), now()
		 FROM generate_series(1, 1000) g,
		      LATERAL (SELECT v[g % cardinality(v) + 1] AS t1, v[(g / 3) % cardinality(v) + 1] AS t2, v[(g / 11) % cardinality(v) + 1] AS t3
		               FROM (SELECT ` + assistantWords + ` AS v) w) t`,
		`ANALYZE inbox.messages`,
		`ANALYZE inbox.knowledge_entries`,
	}
	args := pgx.NamedArgs{"tenant": tenant, "chat": chatAccount, "n": conversations, "per": perConversation}
	for i, sql := range steps {
		if _, err := conn.Exec(ctx, sql, args); err != nil {
			return fmt.Errorf("assistant load step %d: %w", i+1, err)
		}
	}
	return nil
}

// assistantMeasure asks for the suggestions of queries conversations
// spread over the tenant's (after 20 to warm the caches) and returns the
// p50 and p99 of the answers.
func assistantMeasure(ctx context.Context, conn *pgx.Conn, client *http.Client, base, token string, conversations, queries int) (p50, p99 float64, err error) {
	return timeGets(ctx, client, token, queries, func(i int) (string, error) {
		id, err := spreadConversation(ctx, conn, i, conversations)
		return base + "/v1/conversations/" + id + "/suggestions", err
	})
}
