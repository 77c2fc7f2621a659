package domain

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The reply assistant ([004]): suggestions for an agent's answer, from the
// tenant's knowledge base and from the agents' past answers to similar
// customer messages. The store finds candidates with PostgreSQL's
// full-text search; the rules here pick the query's words and rank the
// candidates of both sources on one scale.

// Knowledge-base limits.
const (
	MaxKnowledgeTitle    = 200
	MaxKnowledgeBody     = 10000
	MaxKnowledgeKeywords = 20
	MaxKnowledgeKeyword  = 50
	// DefaultSuggestions and MaxSuggestions bound ?limit of the
	// suggestions route.
	DefaultSuggestions = 5
	MaxSuggestions     = 10
	// MaxQueryTerms is how many of the customer's words a search uses:
	// enough to say what the message is about, few enough to keep the
	// index lookups cheap.
	MaxQueryTerms = 12
	// MinSuggestionScore drops candidates that share too little with the
	// customer's message to help.
	MinSuggestionScore = 0.2
	// PastAnswerWeight puts a past answer a little below a knowledge-base
	// entry that matches as well: entries are curated, answers are not.
	PastAnswerWeight = 0.9
)

// Suggestion sources.
const (
	SourceKnowledgeBase = "knowledge_base"
	SourcePastAnswer    = "past_answer"
)

// KnowledgeEntrySpec is what an admin writes of a knowledge-base entry.
type KnowledgeEntrySpec struct {
	Title    string
	Body     string
	Keywords []string
}

// Check validates spec and returns it with keywords trimmed, deduplicated
// (ignoring case) and in the order given.
func (s KnowledgeEntrySpec) Check() (KnowledgeEntrySpec, error) {
	if err := checkText("title", s.Title, MaxKnowledgeTitle); err != nil {
		return s, err
	}
	if err := checkText("body", s.Body, MaxKnowledgeBody); err != nil {
		return s, err
	}
	if len(s.Keywords) > MaxKnowledgeKeywords {
		return s, Invalid("keywords", fmt.Sprintf("holds %d keywords, more than %d", len(s.Keywords), MaxKnowledgeKeywords))
	}
	out := make([]string, 0, len(s.Keywords))
	seen := map[string]bool{}
	for i, k := range s.Keywords {
		k = strings.TrimSpace(k)
		if err := checkText(fmt.Sprintf("keywords[%d]", i), k, MaxKnowledgeKeyword); err != nil {
			return s, err
		}
		if key := strings.ToLower(k); !seen[key] {
			seen[key] = true
			out = append(out, k)
		}
	}
	s.Keywords = out
	return s, nil
}

// checkText refuses blank text, text that is not valid UTF-8 or holds NUL,
// and text longer than max bytes.
func checkText(field, s string, max int) error {
	if strings.TrimSpace(s) == "" {
		return Invalid(field, fmt.Sprintf("is required: text of at most %d bytes", max))
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return Invalid(field, "must be text: valid UTF-8 without NUL")
	}
	if len(s) > max {
		return Invalid(field, fmt.Sprintf("is %d bytes long, more than %d", len(s), max))
	}
	return nil
}

// stopwords are French and English words that say nothing of what a
// message is about, folded (lower case, no accents).
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		a au aux avec ce ces cet cette ceci cela ca dans de des du elle elles en est et etre eu il ils je j
		la le les leur leurs lui ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui
		sa se ses son sur ta te tes toi ton tu un une vos votre vous c d l m n s t y ai as avez avons ont
		suis sommes etes sont fait faire peut peux pouvez puis veux voudrais bonjour bonsoir merci svp
		plait si tres plus aussi deja encore comment quand quel quelle quels quelles pourquoi ici alors
		donc car comme tout tous toute toutes rien chez cordialement salut hello
		about an and are as at be been but by can could did do does for from had has have hi how i if in
		into is it its me my no not of on or our please so than thank thanks that the their them then
		there these they this to too was we were what when where which who why will with would you your
		yours dear regards hey just get got still any some
	`) {
		m[w] = true
	}
	return m
}()

// Fold lowers s and strips its accents ("Égaré" is "egare"), so that a
// customer who types without accents matches an entry written with them.
func Fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(strings.ToLower(s)) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// words splits s into its runs of letters and digits, lower case and
// composed (an "é" typed as "e" and a combining accent is one letter).
func words(s string) []string {
	return strings.FieldsFunc(norm.NFC.String(strings.ToLower(s)), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// Stem is the stem a word is compared by: folded, and cut to 6 letters,
// a crude stemmer that holds for French and English alike
// ("remboursement", "rembourser" and "remboursé" are all "rembou";
// "delivery" and "delivered" are "delive").
func Stem(word string) string {
	w := Fold(word)
	if utf8.RuneCountInString(w) > 6 {
		w = string([]rune(w)[:6])
	}
	return w
}

// QueryText is what suggestions search for: the customer's messages,
// newest first, without the lines an email quotes ("> ..."), cut to 2,000
// bytes.
func QueryText(messages []string) string {
	var b strings.Builder
	for _, m := range messages {
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), ">") {
				continue
			}
			b.WriteString(line)
			b.WriteString("\n")
		}
	}
	s := b.String()
	if len(s) > 2000 {
		s = s[:2000]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// QueryTerms are the words of text a search uses: lower case as the
// messages' 'simple' index holds them, without stopwords and one-letter
// words, each once, at most MaxQueryTerms in the order they come.
func QueryTerms(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range words(text) {
		f := Fold(w)
		if utf8.RuneCountInString(w) < 2 || stopwords[f] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
		if len(out) == MaxQueryTerms {
			break
		}
	}
	return out
}

// Query is the customer's words with how much each tells, for ranking.
type Query struct {
	// weights maps a stem to its weight: the inverse document frequency
	// of its word among the tenant's messages, ln(1/frequency).
	weights map[string]float64
	total   float64
}

// DefaultTermFrequency is the frequency assumed for a word the statistics
// do not list: rarer than those they list.
const DefaultTermFrequency = 0.001

// NewQuery weighs terms by freq, their share of messages holding them
// (missing or 0: DefaultTermFrequency).
func NewQuery(terms []string, freq map[string]float64) Query {
	q := Query{weights: map[string]float64{}}
	for _, t := range terms {
		f := freq[t]
		if f <= 0 {
			f = DefaultTermFrequency
		}
		w := math.Log(1 / math.Min(f, 0.9))
		s := Stem(t)
		if w > q.weights[s] {
			q.total += w - q.weights[s]
			q.weights[s] = w
		}
	}
	return q
}

// Empty reports whether the query has nothing to search for.
func (q Query) Empty() bool { return q.total == 0 }

// stems returns the set of stems of texts' words, stopwords left out.
func stems(texts ...string) map[string]bool {
	out := map[string]bool{}
	for _, t := range texts {
		for _, w := range words(t) {
			if f := Fold(w); !stopwords[f] && utf8.RuneCountInString(w) >= 2 {
				out[Stem(w)] = true
			}
		}
	}
	return out
}

// coverage is the share of the query's weight that set holds, and the
// share of set's stems that the query holds.
func (q Query) coverage(set map[string]bool) (ofQuery, ofSet float64) {
	if q.total == 0 || len(set) == 0 {
		return 0, 0
	}
	var w float64
	shared := 0
	for s, weight := range q.weights {
		if set[s] {
			w += weight
			shared++
		}
	}
	return w / q.total, float64(shared) / float64(len(set))
}

// ScoreEntry ranks a knowledge-base entry for q, from 0 to 1: how much of
// the customer's message its title, keywords and body cover, the title and
// keywords counting more.
func (q Query) ScoreEntry(title string, keywords []string, body string) float64 {
	head := stems(append([]string{title}, keywords...)...)
	all := stems(append([]string{title, body}, keywords...)...)
	covHead, _ := q.coverage(head)
	covAll, _ := q.coverage(all)
	return round3(0.6*covAll + 0.4*covHead)
}

// ScorePastAnswer ranks an agent's past answer for q, from 0 to 1, by the
// customer message it answered: how much of the current message that
// one covers, and how little else it says; weighed by PastAnswerWeight.
func (q Query) ScorePastAnswer(question string) float64 {
	ofQuery, ofSet := q.coverage(stems(question))
	return round3(PastAnswerWeight * ofQuery * (0.6 + 0.4*ofSet))
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

// Ranked is a candidate suggestion: its score and the text that tells two
// suggestions with the same answer apart.
type Ranked struct {
	Score float64
	Text  string
}

// Rank orders candidates best first (ties: the order given), drops those
// under MinSuggestionScore and those whose text (folded, spaces
// collapsed) repeats a better one's, and keeps limit. It returns the
// indexes of the kept candidates.
func Rank(cands []Ranked, limit int) []int {
	idx := make([]int, len(cands))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return cands[idx[a]].Score > cands[idx[b]].Score })
	var out []int
	seen := map[string]bool{}
	for _, i := range idx {
		if len(out) == limit || cands[i].Score < MinSuggestionScore {
			break
		}
		key := strings.Join(strings.Fields(Fold(cands[i].Text)), " ")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, i)
	}
	return out
}
