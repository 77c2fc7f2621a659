package domain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Ask an expert ([004]): the limits of a question and of the excerpt of
// the conversation that may go with it.
const (
	// MaxExpertQuestion is the most characters (runes) of a question.
	MaxExpertQuestion = 300
	// ExpertExcerptMessages is how many of the conversation's latest
	// messages the excerpt may share.
	ExpertExcerptMessages = 20
	// MaxExpertExcerpt is the most characters (runes) of the excerpt's
	// texts, once names are replaced.
	MaxExpertExcerpt = 1500
	// MaxExpertAnswer is the most bytes of an expert's answer.
	MaxExpertAnswer = 4000
	// ExpertLinkValidity is how long the excerpt's attachment links work.
	ExpertLinkValidity = 7 * 24 * time.Hour
)

// The labels that replace names in an excerpt.
const (
	LabelClient = "Client"
	LabelAgent  = "Agent"
)

// AskExpert checks that p may ask an expert about c: an assignee, or a
// supervisor; a done conversation must be resumed first.
func AskExpert(p Principal, c Conversation) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: only a user can ask an expert (the expert answers them)", ErrForbidden)
	}
	if err := mustWorkOn(p, c); err != nil {
		return err
	}
	if c.State == StateDone {
		return conflict(c, "a done conversation needs no expert; resume it first")
	}
	return nil
}

// ExpertQuestionRef is who a question concerns, for the rules.
type ExpertQuestionRef struct {
	Asker, Expert string
}

// SeesExpertQuestion reports whether p may read a question: its expert,
// its asker, and supervisors (assign_others) who may see its conversation
// (seesConversation).
func SeesExpertQuestion(p Principal, q ExpertQuestionRef, seesConversation bool) bool {
	if p.UserID != "" && (p.UserID == q.Asker || p.UserID == q.Expert) {
		return true
	}
	return p.Can(PermAssignOthers) && seesConversation
}

// AnswerExpertQuestion checks that p may answer q: its expert only, once.
// answered says whether it already is.
func AnswerExpertQuestion(p Principal, q ExpertQuestionRef, answered bool) error {
	if p.UserID == "" || p.UserID != q.Expert {
		return fmt.Errorf("%w: only the expert the question is addressed to answers it", ErrForbidden)
	}
	if answered {
		return fmt.Errorf("%w: the question is already answered; an answer is given once", ErrConflict)
	}
	return nil
}

// Alias is a person's name and the label that replaces it.
type Alias struct {
	Name, Label string
}

// Pseudonymise replaces, in text, every whole-word occurrence of the
// aliases' names by their labels, case-insensitively: the full name, and
// each of its parts (first names, last names, the halves of a hyphenated
// name) of at least two characters on its own. Longer names are replaced
// first; between names of the same length, the earlier alias wins.
func Pseudonymise(text string, aliases []Alias) string {
	type token struct {
		name  []rune
		label string
	}
	var tokens []token
	seen := map[string]bool{}
	addToken := func(name, label string) {
		name = strings.Join(strings.Fields(name), " ")
		key := strings.ToLower(name)
		if utf8.RuneCountInString(name) < 2 || seen[key] {
			return
		}
		seen[key] = true
		tokens = append(tokens, token{name: []rune(name), label: label})
	}
	for _, a := range aliases {
		addToken(a.Name, a.Label)
		for _, part := range strings.Fields(a.Name) {
			addToken(part, a.Label)
			for _, half := range strings.Split(part, "-") {
				addToken(half, a.Label)
			}
		}
	}
	if len(tokens) == 0 {
		return text
	}
	slices.SortStableFunc(tokens, func(a, b token) int { return cmp.Compare(len(b.name), len(a.name)) })
	rs := []rune(text)
	var out strings.Builder
	for i := 0; i < len(rs); {
		matched := false
		if i == 0 || !wordRune(rs[i-1]) {
			for _, t := range tokens {
				n := len(t.name)
				if i+n > len(rs) || (i+n < len(rs) && wordRune(rs[i+n])) {
					continue
				}
				if strings.EqualFold(string(rs[i:i+n]), string(t.name)) {
					out.WriteString(t.label)
					i += n
					matched = true
					break
				}
			}
		}
		if !matched {
			out.WriteRune(rs[i])
			i++
		}
	}
	return out.String()
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }
