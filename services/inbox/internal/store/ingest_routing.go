package store

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Ingestion places each conversation it creates: the first routing rule
// of the tenant that the conversation's first message matches sets what
// it names, and a queue no rule set comes from the channel account's
// default. The rules and the defaults are read in the batch's first
// pipeline, in its transaction: a change is seen by the next batch, on
// every replica, and costs no cache to invalidate. Rules change rarely and
// a tenant has at most domain.MaxRoutingRules of them.

// Where a new conversation's queue came from.
const (
	QueueFromRule    = "rule"
	QueueFromDefault = "default"
)

// Classification is how ingestion placed a conversation it created.
type Classification struct {
	// RuleID and RuleName are the rule that matched; nil when none did.
	RuleID   *uuid.UUID
	RuleName string
	// QueueSource is QueueFromRule, QueueFromDefault, or "" when the
	// conversation got no queue.
	QueueSource string
}

// classified is what the audit log and the created event say of a
// classification.
type classified struct {
	RuleID      *uuid.UUID `json:"rule_id,omitempty"`
	RuleName    string     `json:"rule_name,omitempty"`
	QueueSource string     `json:"queue_source,omitempty"`
}

// Data is the classification as the conversation's created entry (audit
// log and event) records it; nil when nothing placed the conversation.
func (c *Classification) Data() any {
	if c == nil || (c.RuleID == nil && c.QueueSource == "") {
		return nil
	}
	return classified{RuleID: c.RuleID, RuleName: c.RuleName, QueueSource: c.QueueSource}
}

// Reason says in words what placed the conversation, "" when nothing did.
func (c *Classification) Reason() string {
	switch {
	case c == nil:
		return ""
	case c.RuleID != nil:
		return fmt.Sprintf("routing rule %q", c.RuleName)
	case c.QueueSource == QueueFromDefault:
		return "the default queue of its channel account"
	}
	return ""
}

// ingestRules reads the routing rules of the batch's tenants, in order.
const ingestRules = `SELECT tenant_id, id, name, conditions, queue_id, required_skill_id, required_language, priority
FROM inbox.routing_rules WHERE tenant_id = ANY($1::uuid[]) ORDER BY tenant_id, position`

// ingestDefaults reads the default queues of the batch's channel accounts.
const ingestDefaults = `SELECT id, default_queue_id FROM inbox.channel_accounts WHERE id = ANY($1::uuid[]) AND default_queue_id IS NOT NULL`

// ingestPlace writes what classification decided on the conversations
// the batch created. A queue or skill is locked as it is read (the
// foreign key check would take the same lock), so that one deleted since
// the rules were read leaves the conversation without it (a rule's
// vanished queue falls back to the default) instead of failing the batch
// on the foreign key: the rare race costs the created event's accuracy,
// never a message. (When the batch also holds a conversation of the queue
// being deleted, the two transactions wait for each other; PostgreSQL
// aborts one, and a deadlock is transient: ingestion retries the batch.)
const ingestPlace = `UPDATE inbox.conversations c SET
	queue_id = coalesce((SELECT q.id FROM inbox.queues q WHERE q.id = u.queue_id FOR KEY SHARE),
	                    (SELECT q.id FROM inbox.queues q WHERE q.id = u.default_queue_id FOR KEY SHARE)),
	required_skill_id = (SELECT k.id FROM inbox.skills k WHERE k.id = u.skill_id FOR KEY SHARE),
	required_language = u.required_language,
	priority = u.priority,
	language = CASE WHEN u.language = '' THEN c.language ELSE u.language END
FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int[], $7::text[])
    AS u(id, queue_id, default_queue_id, skill_id, required_language, priority, language)
WHERE c.id = u.id`

// ingestLanguages stores the languages classification detected on the
// first messages; qualify finds them set and leaves them.
const ingestLanguages = `UPDATE inbox.messages m SET language = u.language
FROM unnest($1::uuid[], $2::text[]) AS u(id, language)
WHERE m.id = u.id AND m.language = ''`

// ingestRule is a rule as ingestion applies it.
type ingestRule struct {
	id               uuid.UUID
	name             string
	queueID, skillID *uuid.UUID
	requiredLanguage *string
	priority         *int
}

// tenantRules are a tenant's rules and their matcher.
type tenantRules struct {
	rules   []ingestRule
	matcher *domain.RoutingMatcher
}

// routingInput is what classification reads in the first pipeline.
type routingInput struct {
	rules    map[uuid.UUID]*tenantRules
	defaults map[uuid.UUID]uuid.UUID
}

// queueRoutingReads adds the reads of the batch's rules and default
// queues to b.
func queueRoutingReads(b *pgx.Batch, a *ingestArrays) {
	b.Queue(ingestRules, distinct(a.tenants))
	b.Queue(ingestDefaults, distinct(a.accounts))
}

func distinct(ids [][16]byte) [][16]byte {
	seen := make(map[[16]byte]bool, 4)
	var out [][16]byte
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// readRoutingInput reads what queueRoutingReads queued.
func readRoutingInput(br pgx.BatchResults) (routingInput, error) {
	in := routingInput{rules: map[uuid.UUID]*tenantRules{}, defaults: map[uuid.UUID]uuid.UUID{}}
	rows, err := br.Query()
	if err != nil {
		return in, fmt.Errorf("read routing rules: %w", err)
	}
	var conditions []domain.RoutingConditions
	var current *tenantRules
	flush := func() {
		if current != nil {
			current.matcher = domain.NewRoutingMatcher(conditions)
		}
		conditions = nil
	}
	for rows.Next() {
		var (
			tenant uuid.UUID
			r      ingestRule
			raw    []byte
			c      domain.RoutingConditions
		)
		if err := rows.Scan(&tenant, &r.id, &r.name, &raw, &r.queueID, &r.skillID, &r.requiredLanguage, &r.priority); err != nil {
			rows.Close()
			return in, fmt.Errorf("read routing rules: %w", err)
		}
		if err := decodeConditions(r.id, raw, &c); err != nil {
			rows.Close()
			return in, err
		}
		t := in.rules[tenant]
		if t == nil {
			flush()
			t = &tenantRules{}
			in.rules[tenant], current = t, t
		}
		t.rules = append(t.rules, r)
		conditions = append(conditions, c)
	}
	flush()
	if err := rows.Err(); err != nil {
		return in, fmt.Errorf("read routing rules: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return in, fmt.Errorf("read default queues: %w", err)
	}
	for rows.Next() {
		var account, queue uuid.UUID
		if err := rows.Scan(&account, &queue); err != nil {
			rows.Close()
			return in, fmt.Errorf("read default queues: %w", err)
		}
		in.defaults[account] = queue
	}
	if err := rows.Err(); err != nil {
		return in, fmt.Errorf("read default queues: %w", err)
	}
	return in, nil
}

// classify places the conversations res created, on res.Touched (their
// fields and Classification) and res.Stored (a language detected), and
// adds the writes of what it decided to b. detect, when not nil, detects
// the language of a text; it runs only for a rule whose other conditions
// hold and that names languages.
func classify(b *pgx.Batch, in routingInput, msgs []Inbound, a *ingestArrays, res *IngestResult, detect func(text string) string) {
	var first map[threadRef]int
	var (
		ids, queues, defaults, skills []*uuid.UUID
		reqLanguages, languages       []string
		priorities                    []int32
		msgIDs                        [][16]byte
		msgLanguages                  []string
	)
	for i := range res.Touched {
		t := &res.Touched[i]
		if !t.Created {
			continue
		}
		if first == nil {
			first = firstMessages(msgs)
		}
		idx, ok := first[threadRef{t.ChannelAccountID, t.ThreadKey}]
		if !ok {
			continue
		}
		m := msgs[idx]
		cl := &Classification{}
		language := m.Language
		detected := false
		if rules := in.rules[t.Tenant]; rules != nil {
			facts := domain.RoutingFacts{ChannelAccountID: t.ChannelAccountID.String(), Channel: t.Channel, ContactID: t.ContactID.String(),
				Identity: m.Msg.From.Identity, Subject: m.Msg.Subject, Text: m.Msg.Text,
				Language: func() string {
					if language == "" && detect != nil {
						text := m.Msg.Text
						if strings.TrimSpace(text) == "" {
							text = m.Msg.Subject
						}
						language, detected = detect(text), true
					}
					return language
				}}
			if k := rules.matcher.Match(facts); k >= 0 {
				r := rules.rules[k]
				cl.RuleID, cl.RuleName = &r.id, r.name
				if r.queueID != nil {
					t.QueueID, cl.QueueSource = r.queueID, QueueFromRule
				}
				t.RequiredSkillID = r.skillID
				if r.requiredLanguage != nil {
					t.RequiredLanguage = *r.requiredLanguage
				}
				if r.priority != nil {
					t.Priority = *r.priority
				}
			}
		}
		var fallback *uuid.UUID
		if q, ok := in.defaults[t.ChannelAccountID]; ok {
			fallback = &q
			if t.QueueID == nil {
				t.QueueID, cl.QueueSource = fallback, QueueFromDefault
			}
		}
		if detected && language != "" {
			t.Language = language
			msgIDs, msgLanguages = append(msgIDs, a.ids[idx]), append(msgLanguages, language)
			for j := range res.Stored {
				if res.Stored[j].Index == idx {
					res.Stored[j].Language = language
				}
			}
		} else {
			detected = false
		}
		if cl.RuleID == nil && cl.QueueSource == "" && !detected {
			continue
		}
		t.Classification = cl
		id := t.ID
		ids, queues, defaults, skills = append(ids, &id), append(queues, t.QueueID), append(defaults, fallback), append(skills, t.RequiredSkillID)
		reqLanguages, priorities = append(reqLanguages, t.RequiredLanguage), append(priorities, int32(t.Priority))
		if detected {
			languages = append(languages, language)
		} else {
			languages = append(languages, "")
		}
	}
	if len(ids) > 0 {
		b.Queue(ingestPlace, ids, queues, defaults, skills, reqLanguages, priorities, languages)
	}
	if len(msgIDs) > 0 {
		b.Queue(ingestLanguages, msgIDs, msgLanguages)
	}
}

// threadRef names a thread of a channel account.
type threadRef struct {
	account uuid.UUID
	thread  string
}

// firstMessages maps each thread of msgs to its first message: the one
// that opened the thread's conversation when the batch created it.
func firstMessages(msgs []Inbound) map[threadRef]int {
	out := make(map[threadRef]int, len(msgs))
	for i, m := range msgs {
		account, err := uuid.Parse(m.Msg.ChannelAccountID)
		if err != nil {
			continue
		}
		k := threadRef{account, m.Msg.ThreadKey}
		if _, ok := out[k]; !ok {
			out[k] = i
		}
	}
	return out
}
