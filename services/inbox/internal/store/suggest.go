package store

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// The reply assistant's suggestions (docs/adr/0018-reply-assistant.md).

// Suggestion is a proposed answer and where it comes from.
type Suggestion struct {
	// Source is domain.SourceKnowledgeBase or domain.SourcePastAnswer.
	Source string `json:"source"`
	Text   string `json:"text"`
	// Score ranks suggestions of both sources on one scale, 0 to 1.
	Score float64 `json:"score"`
	// Entry is the knowledge-base entry suggested.
	Entry *SuggestedEntry `json:"entry,omitempty"`
	// Answer is the past answer suggested.
	Answer *SuggestedAnswer `json:"answer,omitempty"`
}

// SuggestedEntry names a knowledge-base entry.
type SuggestedEntry struct {
	ID        uuid.UUID `json:"id"`
	Title     string    `json:"title"`
	GroupID   uuid.UUID `json:"group_id"`
	GroupName string    `json:"group_name"`
}

// SuggestedAnswer names an agent's reply and the customer message it
// answered. The customer's message is named, not quoted: it is not the
// tenant's know-how.
type SuggestedAnswer struct {
	MessageID         uuid.UUID `json:"message_id"`
	AnsweredMessageID uuid.UUID `json:"answered_message_id"`
	ConversationID    uuid.UUID `json:"conversation_id"`
}

// Candidate-set sizes: the most a suggestion reads, whatever the tenant's
// size.
const (
	entryCandidates = 50
	// allTermsCandidates are customer messages holding every rare word of
	// the query; anyTermCandidates those holding one of them.
	allTermsCandidates = 100
	anyTermCandidates  = 300
	// rareTerm is the share of messages above which a word is too common
	// to look messages up by alone.
	rareTerm = 0.02
	// fallbackTerms is how many of the least common words are looked up
	// together when every word is common.
	fallbackTerms = 3
)

// CustomerQuestion returns the text suggestions answer: the conversation's
// latest customer messages (at most three) since the agents' reply before
// the latest of them; anonymised and blank messages left out.
func (s *Store) CustomerQuestion(ctx context.Context, conversation uuid.UUID) (string, error) {
	rows, err := s.pool.Query(ctx, `WITH latest AS (
			SELECT max(received_at) AS at FROM inbox.messages
			WHERE conversation_id = $1 AND direction = 'inbound'),
		replied AS (
			SELECT max(r.received_at) AS at FROM inbox.messages r, latest
			WHERE r.conversation_id = $1 AND r.direction = 'outbound' AND NOT r.automatic AND r.author_kind IS NULL AND r.received_at < latest.at)
		SELECT m.body FROM inbox.messages m, replied
		WHERE m.conversation_id = $1 AND m.direction = 'inbound' AND m.body <> '' AND m.anonymised_at IS NULL
		  AND m.received_at > coalesce(replied.at, '-infinity')
		ORDER BY m.received_at DESC, m.id DESC LIMIT 3`, conversation)
	if err != nil {
		return "", fmt.Errorf("read the customer's messages: %w", err)
	}
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("read the customer's messages: %w", err)
	}
	return domain.QueryText(bodies), nil
}

// termFrequencies returns the share of messages holding each of terms, as
// ANALYZE found it for the messages' search index (002): the words it
// lists as most common; the others are rarer.
func (s *Store) termFrequencies(ctx context.Context, terms []string) (map[string]float64, error) {
	rows, err := s.pool.Query(ctx, `SELECT e, f FROM pg_catalog.pg_stats st,
			unnest(st.most_common_elems::text::text[], st.most_common_elem_freqs) AS x(e, f)
		WHERE st.schemaname = 'inbox' AND st.tablename = 'messages_search' AND e = ANY($1::text[])`, terms)
	if err != nil {
		return nil, fmt.Errorf("read word frequencies: %w", err)
	}
	out := map[string]float64{}
	var e string
	var f float64
	_, err = pgx.ForEachRow(rows, []any{&e, &f}, func() error {
		out[e] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read word frequencies: %w", err)
	}
	return out, nil
}

// lookupTerms picks the words to find similar customer messages by: the
// rare ones (all of them, then any); when every word is common, the
// fallbackTerms least common ones together.
func lookupTerms(terms []string, freq map[string]float64) (all, anyOf []string) {
	var rare []string
	for _, t := range terms {
		if freq[t] < rareTerm {
			rare = append(rare, t)
		}
	}
	if len(rare) > 0 {
		if len(rare) > 1 {
			all = rare
		}
		return all, rare
	}
	common := append([]string(nil), terms...)
	sort.SliceStable(common, func(a, b int) bool { return freq[common[a]] < freq[common[b]] })
	if len(common) > fallbackTerms {
		common = common[:fallbackTerms]
	}
	return common, nil
}

// tsquery joins words (letters and digits only: domain.QueryTerms) with op.
func tsquery(words []string, op, suffix string) string {
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = w + suffix
	}
	return strings.Join(parts, " "+op+" ")
}

type candidate struct {
	s    Suggestion
	rank domain.Ranked
}

// Suggest returns up to limit suggestions, best first, to answer the
// customer's latest messages of conversation c, which p sees: entries of
// the tenant's knowledge base (for every queue or c's) and the replies
// agents wrote to similar customer messages in conversations p may see.
func (s *Store) Suggest(ctx context.Context, p domain.Principal, c Conversation, limit int) ([]Suggestion, error) {
	text, err := s.CustomerQuestion(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	terms := domain.QueryTerms(text)
	if len(terms) == 0 {
		return []Suggestion{}, nil
	}
	freq, err := s.termFrequencies(ctx, terms)
	if err != nil {
		return nil, err
	}
	q := domain.NewQuery(terms, freq)
	entries, err := s.entryCandidates(ctx, c, q, terms)
	if err != nil {
		return nil, err
	}
	answers, err := s.answerCandidates(ctx, p, c, q, terms, freq)
	if err != nil {
		return nil, err
	}
	cands := append(entries, answers...)
	ranks := make([]domain.Ranked, len(cands))
	for i, cd := range cands {
		ranks[i] = cd.rank
	}
	out := []Suggestion{}
	for _, i := range domain.Rank(ranks, limit) {
		out = append(out, cands[i].s)
	}
	return out, nil
}

// entryCandidates are the entries for c that share a word stem with the
// query, the best ranked by full-text search first.
func (s *Store) entryCandidates(ctx context.Context, c Conversation, q domain.Query, terms []string) ([]candidate, error) {
	stems := map[string]bool{}
	var words []string
	for _, t := range terms {
		if st := domain.Stem(t); !stems[st] {
			stems[st] = true
			words = append(words, st)
		}
	}
	rows, err := s.pool.Query(ctx, `SELECT e.id, e.title, e.body, e.keywords, e.group_id, g.name
		FROM inbox.knowledge_entries e JOIN inbox.knowledge_groups g ON g.id = e.group_id,
		     to_tsquery('simple', $3) AS q
		WHERE e.tenant_id = $1 AND (e.queue_id IS NULL OR e.queue_id = $2) AND e.search @@ q
		ORDER BY ts_rank(e.search, q) DESC, e.id LIMIT $4`, c.Tenant, c.QueueID, tsquery(words, "|", ":*"), entryCandidates)
	if err != nil {
		return nil, fmt.Errorf("find knowledge entries: %w", err)
	}
	var out []candidate
	var (
		id, group   uuid.UUID
		title, body string
		keywords    []string
		groupName   string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &title, &body, &keywords, &group, &groupName}, func() error {
		score := q.ScoreEntry(title, keywords, body)
		out = append(out, candidate{
			s: Suggestion{Source: domain.SourceKnowledgeBase, Text: body, Score: score,
				Entry: &SuggestedEntry{ID: id, Title: title, GroupID: group, GroupName: groupName}},
			rank: domain.Ranked{Score: score, Text: body},
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find knowledge entries: %w", err)
	}
	return out, nil
}

// answerCandidates are the agents' replies to customer messages like the
// query, in conversations of the tenant that p sees, c left out. The
// customer messages are looked up by rare words through the messages'
// search index, a bounded number of them (allTermsCandidates holding
// every such word, anyTermCandidates holding one), and each is joined to
// the first reply an agent wrote after it in its conversation.
func (s *Store) answerCandidates(ctx context.Context, p domain.Principal, c Conversation, q domain.Query, terms []string, freq map[string]float64) ([]candidate, error) {
	all, anyOf := lookupTerms(terms, freq)
	args := []any{c.Tenant, c.ID, tsquery(all, "&", ""), tsquery(anyOf, "|", ""), allTermsCandidates, anyTermCandidates}
	visible, args := Filter{}.where(p, args)
	// Planned for this call's values (QueryExecModeExec): how common the
	// words are decides whether the search index or the tenant's rows
	// come first.
	rows, err := s.pool.Query(ctx, `WITH asked AS (
			(SELECT m.id, m.conversation_id, m.received_at, m.body FROM inbox.messages m
			 WHERE $3 <> '' AND to_tsvector('simple', m.body) @@ to_tsquery('simple', $3)
			   AND m.tenant_id = $1 AND m.direction = 'inbound' AND m.conversation_id <> $2
			   AND m.body <> '' AND m.anonymised_at IS NULL
			 LIMIT $5)
			UNION
			(SELECT m.id, m.conversation_id, m.received_at, m.body FROM inbox.messages m
			 WHERE $4 <> '' AND to_tsvector('simple', m.body) @@ to_tsquery('simple', $4)
			   AND m.tenant_id = $1 AND m.direction = 'inbound' AND m.conversation_id <> $2
			   AND m.body <> '' AND m.anonymised_at IS NULL
			 LIMIT $6))
		SELECT a.id, asked.id, asked.conversation_id, asked.body, a.body
		FROM asked
		JOIN inbox.conversations c ON c.id = asked.conversation_id
		JOIN LATERAL (SELECT r.id, r.body, r.anonymised_at, r.author_id FROM inbox.messages r
		              WHERE r.conversation_id = asked.conversation_id
		                AND r.direction = 'outbound' AND NOT r.automatic AND r.author_kind IS NULL
		                AND (r.received_at, r.id) > (asked.received_at, asked.id)
		              ORDER BY r.received_at, r.id LIMIT 1) a ON true
		WHERE a.body <> '' AND a.anonymised_at IS NULL
		  AND EXISTS (SELECT 1 FROM inbox.users u WHERE u.tenant_id = $1 AND u.id::text = a.author_id)
		  AND `+visible, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("find past answers: %w", err)
	}
	var out []candidate
	var (
		answer, asked, conv uuid.UUID
		question, body      string
	)
	_, err = pgx.ForEachRow(rows, []any{&answer, &asked, &conv, &question, &body}, func() error {
		score := q.ScorePastAnswer(question)
		out = append(out, candidate{
			s: Suggestion{Source: domain.SourcePastAnswer, Text: body, Score: score,
				Answer: &SuggestedAnswer{MessageID: answer, AnsweredMessageID: asked, ConversationID: conv}},
			rank: domain.Ranked{Score: score, Text: body},
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find past answers: %w", err)
	}
	// Stable input for domain.Rank's ties: the best match first, then by id.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].rank.Score != out[j].rank.Score {
			return out[i].rank.Score > out[j].rank.Score
		}
		return out[i].s.Answer.MessageID.String() < out[j].s.Answer.MessageID.String()
	})
	return out, nil
}
