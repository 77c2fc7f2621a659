package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// Keyword shortcuts on the list scenario's tenant: its load gets 1,000
// templates with keywords (a fifth of them for one queue, every channel's
// body using variables), and GET /v1/shortcuts is measured as a console
// calls it on each keystroke: a prefix of one to four characters, for a
// conversation, so that each expansion is rendered for it.

// shortcutsLoad adds the templates to listLoad's tenant.
func shortcutsLoad(ctx context.Context, conn *pgx.Conn, tenant string) error {
	_, err := conn.Exec(ctx, `INSERT INTO inbox.templates (id, tenant_id, queue_id, name, keyword, bodies, created_by, created_at, updated_at)
		SELECT md5('tpl' || g)::uuid, @tenant, CASE WHEN g % 5 = 0 THEN md5('queue' || (g % 5 + 1))::uuid END,
		       'Template ' || g, (ARRAY['merci','livraison','retour','rembours','facture','bonjour','delai','colis'])[g % 8 + 1] || '-' || g,
		       jsonb_build_object(
		         'chat', jsonb_build_object('text', 'Bonjour {{customer_name}}, votre dossier {{conversation_ref}} : réponse ' || g || '.'),
		         'sms', jsonb_build_object('text', 'Dossier {{conversation_ref}} : réponse ' || g || '.'),
		         'email', jsonb_build_object('subject', 'Votre demande {{conversation_ref}}', 'text', 'Bonjour {{customer_name}}, réponse ' || g || '.',
		                                     'html', '<p>Bonjour {{customer_name}}, réponse ' || g || '.</p>')),
		       'bench', now(), now()
		FROM generate_series(1, 1000) g`, pgx.NamedArgs{"tenant": tenant})
	if err != nil {
		return fmt.Errorf("shortcuts load: %w", err)
	}
	_, err = conn.Exec(ctx, `ANALYZE inbox.templates`)
	return err
}

// shortcutsMeasure expands queries prefixes (after 20 to warm the
// caches), each for a conversation spread over the tenant's, and returns
// the p50 and p99 of the answers.
func shortcutsMeasure(ctx context.Context, conn *pgx.Conn, client *http.Client, base, token string, conversations, queries int) (p50, p99 float64, err error) {
	prefixes := []string{"m", "li", "ret", "remb", "f", "bon", "de", "col", "livraison-1", "merci-8"}
	return timeGets(ctx, client, token, queries, func(i int) (string, error) {
		id, err := spreadConversation(ctx, conn, i, conversations)
		q := url.Values{"prefix": {prefixes[i%len(prefixes)]}, "conversation_id": {id}}
		return base + "/v1/shortcuts?" + q.Encode(), err
	})
}
