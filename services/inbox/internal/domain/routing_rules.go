package domain

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

// Routing rules place a conversation when ingestion creates it: a
// tenant's rules are tried in order, and the first whose conditions all
// hold sets what it names (queue, required skill and language, priority).
// This file holds their conditions and the matching, without I/O.

// Limits of routing rules.
const (
	// MaxRoutingRules is the most rules a tenant has: each new
	// conversation may be tried against all of them.
	MaxRoutingRules = 200
	// MaxRoutingValues is the most values of one condition.
	MaxRoutingValues = 100
	// MaxKeywordRunes is the longest keyword, in characters.
	MaxKeywordRunes = 100
	// MaxIdentityBytes is the longest customer identity (an email
	// address's limit).
	MaxIdentityBytes = 320
	// MinRoutingPriority and MaxRoutingPriority bound the priority a rule
	// sets; higher goes first, 0 is a conversation's default.
	MinRoutingPriority = -10
	MaxRoutingPriority = 10
)

// RoutingConditions are what a rule asks of a new conversation: every
// condition given must hold, each by any one of its values; a rule with
// none matches every conversation.
type RoutingConditions struct {
	// ChannelAccountIDs: the conversation arrived on one of these
	// mailboxes, numbers or chat channels.
	ChannelAccountIDs []string `json:"channel_account_ids"`
	// Channels: chat, email or sms.
	Channels []string `json:"channels"`
	// Languages: the detected language of the first message (ISO 639-1).
	Languages []string `json:"languages"`
	// Keywords: one of them is a whole word (or words) of the subject or
	// of the first message's text, case and accents aside.
	Keywords []string `json:"keywords"`
	// CustomerIdentities: the sender's identity is one of these (an email
	// address, case aside; a phone number or a chat id, exactly).
	CustomerIdentities []string `json:"customer_identities"`
	// ContactIDs: the sender is one of these contacts.
	ContactIDs []string `json:"contact_ids"`
}

// Check validates the conditions and returns them in their stored form:
// ids in canonical form, every list non-nil. validLanguage tells the
// ISO 639-1 codes apart. Fields are named as the API spells them, under
// "conditions".
func (c RoutingConditions) Check(validLanguage func(string) bool) (RoutingConditions, error) {
	var out RoutingConditions
	var err error
	if out.ChannelAccountIDs, err = checkIDs("conditions.channel_account_ids", c.ChannelAccountIDs); err != nil {
		return out, err
	}
	if out.Channels, err = checkValues("conditions.channels", c.Channels, func(s string) (string, string) {
		if s != "chat" && s != "email" && s != "sms" {
			return "", "must be chat, email or sms"
		}
		return s, ""
	}); err != nil {
		return out, err
	}
	if out.Languages, err = checkValues("conditions.languages", c.Languages, func(s string) (string, string) {
		if !validLanguage(s) {
			return "", "is not an ISO 639-1 language code (two lower-case letters)"
		}
		return s, ""
	}); err != nil {
		return out, err
	}
	if out.Keywords, err = checkValues("conditions.keywords", c.Keywords, func(s string) (string, string) {
		if n := utf8.RuneCountInString(s); n == 0 || n > MaxKeywordRunes || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			return "", fmt.Sprintf("must be 1 to %d characters of text on one line", MaxKeywordRunes)
		}
		if fold(s) == "" {
			return "", "must hold a letter or a digit"
		}
		return s, ""
	}); err != nil {
		return out, err
	}
	// Two keywords that differ only by case or accents match alike: the
	// second would be dead weight.
	if i := firstRepeat(out.Keywords, fold); i >= 0 {
		return out, Invalid(fmt.Sprintf("conditions.keywords[%d]", i), "appears twice (case and accents aside)")
	}
	if out.CustomerIdentities, err = checkValues("conditions.customer_identities", c.CustomerIdentities, func(s string) (string, string) {
		if s == "" || len(s) > MaxIdentityBytes || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsSpace) || strings.ContainsFunc(s, unicode.IsControl) {
			return "", fmt.Sprintf("must be 1 to %d bytes without spaces: an email address, a phone number or a chat id", MaxIdentityBytes)
		}
		return s, ""
	}); err != nil {
		return out, err
	}
	if i := firstRepeat(out.CustomerIdentities, identityKey); i >= 0 {
		return out, Invalid(fmt.Sprintf("conditions.customer_identities[%d]", i), "appears twice")
	}
	if out.ContactIDs, err = checkIDs("conditions.contact_ids", c.ContactIDs); err != nil {
		return out, err
	}
	return out, nil
}

// checkValues checks a condition's values with check, which returns the
// value to keep or why it is refused; it refuses too many values and
// repeated ones.
func checkValues(field string, values []string, check func(string) (string, string)) ([]string, error) {
	if len(values) > MaxRoutingValues {
		return nil, Invalid(field, fmt.Sprintf("must hold at most %d values", MaxRoutingValues))
	}
	out := make([]string, 0, len(values))
	for i, v := range values {
		kept, reason := check(v)
		if reason != "" {
			return nil, Invalid(fmt.Sprintf("%s[%d]", field, i), reason)
		}
		if slices.Contains(out, kept) {
			return nil, Invalid(fmt.Sprintf("%s[%d]", field, i), "appears twice")
		}
		out = append(out, kept)
	}
	return out, nil
}

func checkIDs(field string, ids []string) ([]string, error) {
	return checkValues(field, ids, func(s string) (string, string) {
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			return "", "is not an id"
		}
		return id.String(), ""
	})
}

// firstRepeat returns the index of the first value whose key an earlier
// value has, or -1.
func firstRepeat(values []string, key func(string) string) int {
	seen := make(map[string]bool, len(values))
	for i, v := range values {
		k := key(v)
		if seen[k] {
			return i
		}
		seen[k] = true
	}
	return -1
}

// identityKey is how identities compare: email addresses (the ones with
// an @) case aside, since their domain is and most mail systems treat the
// local part so; phone numbers and chat ids exactly.
func identityKey(s string) string {
	if strings.Contains(s, "@") {
		return strings.ToLower(s)
	}
	return s
}

// RoutingFacts are what rules look at of a new conversation.
type RoutingFacts struct {
	ChannelAccountID string
	Channel          string
	ContactID        string
	// Identity is the sender's identity on the channel.
	Identity string
	// Subject and Text are those of the first message.
	Subject, Text string
	// Language returns the language of the first message ("" when
	// unknown), detecting it if needed; it is called at most once, and
	// only when a rule's other conditions hold and it names languages.
	// nil: unknown.
	Language func() string
}

// RoutingMatcher is a tenant's rules, compiled once for many matches.
type RoutingMatcher struct {
	rules         []compiledRule
	needsLanguage bool
	needsWords    bool
}

// compiledRule is a rule's conditions as sets; a nil set is a condition
// not given.
type compiledRule struct {
	accounts, channels, languages, contacts, identities map[string]bool
	// words are one-word keywords, folded; phrases are the others, folded
	// and padded with a space on each side.
	words   map[string]bool
	phrases []string
}

// NewRoutingMatcher compiles rules, in the order they are tried.
func NewRoutingMatcher(rules []RoutingConditions) *RoutingMatcher {
	m := &RoutingMatcher{rules: make([]compiledRule, len(rules))}
	for i, c := range rules {
		r := &m.rules[i]
		r.accounts = setOf(c.ChannelAccountIDs, strings.ToLower)
		r.channels = setOf(c.Channels, nil)
		r.languages = setOf(c.Languages, nil)
		r.contacts = setOf(c.ContactIDs, strings.ToLower)
		r.identities = setOf(c.CustomerIdentities, identityKey)
		for _, k := range c.Keywords {
			f := fold(k)
			switch {
			case f == "":
				// Refused when written; a stored one matches nothing.
			case strings.Contains(f, " "):
				r.phrases = append(r.phrases, " "+f+" ")
			default:
				if r.words == nil {
					r.words = map[string]bool{}
				}
				r.words[f] = true
			}
		}
		m.needsLanguage = m.needsLanguage || r.languages != nil
		m.needsWords = m.needsWords || len(c.Keywords) > 0
	}
	return m
}

func setOf(values []string, key func(string) string) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	s := make(map[string]bool, len(values))
	for _, v := range values {
		if key != nil {
			v = key(v)
		}
		s[v] = true
	}
	return s
}

// Len is how many rules m holds.
func (m *RoutingMatcher) Len() int { return len(m.rules) }

// NeedsLanguage reports whether a rule names languages, so that the
// language of a new conversation may be wanted.
func (m *RoutingMatcher) NeedsLanguage() bool { return m.needsLanguage }

// Match returns the index of the first rule f satisfies, or -1. The
// cheap conditions are tested first; the text is read, and the language
// asked for, only when a rule gets that far.
func (m *RoutingMatcher) Match(f RoutingFacts) int {
	var (
		text     *foldedText
		language string
		asked    bool
	)
	identity := identityKey(f.Identity)
	for i := range m.rules {
		r := &m.rules[i]
		if r.accounts != nil && !r.accounts[strings.ToLower(f.ChannelAccountID)] ||
			r.channels != nil && !r.channels[f.Channel] ||
			r.contacts != nil && !r.contacts[strings.ToLower(f.ContactID)] ||
			r.identities != nil && !r.identities[identity] {
			continue
		}
		if r.words != nil || r.phrases != nil {
			if text == nil {
				text = foldText(f.Subject, f.Text)
			}
			if !text.hasAny(r.words, r.phrases) {
				continue
			}
		}
		if r.languages != nil {
			if !asked {
				asked = true
				if f.Language != nil {
					language = f.Language()
				}
			}
			if !r.languages[language] {
				continue
			}
		}
		return i
	}
	return -1
}

// foldedText is a text's words, folded, as a set and as one string of
// words separated by single spaces (for phrases).
type foldedText struct {
	words  map[string]bool
	joined string
}

// foldText folds subject and text apart, so that no phrase matches across
// the two.
func foldText(subject, text string) *foldedText {
	s, t := fold(subject), fold(text)
	ft := &foldedText{words: map[string]bool{}, joined: " " + s + " \n " + t + " "}
	for _, part := range []string{s, t} {
		for w := range strings.FieldsSeq(part) {
			ft.words[w] = true
		}
	}
	return ft
}

func (t *foldedText) hasAny(words map[string]bool, phrases []string) bool {
	for w := range words {
		if t.words[w] {
			return true
		}
	}
	for _, p := range phrases {
		if strings.Contains(t.joined, p) {
			return true
		}
	}
	return false
}

// foldSpecial are letters canonical decomposition leaves whole, written
// as their base letters.
var foldSpecial = map[rune]string{'ß': "ss", 'æ': "ae", 'œ': "oe", 'ø': "o", 'ł': "l", 'đ': "d", 'ð': "d", 'þ': "th", 'ı': "i"}

// fold lowers s, drops its accents (what canonical decomposition splits
// off as marks) and keeps its words, runs of letters and digits, separated
// by single spaces: "Remboursement  Refusé!" is "remboursement refuse".
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			r = unicode.ToLower(r)
			if sp, ok := foldSpecial[r]; ok {
				b.WriteString(sp)
			} else {
				b.WriteRune(r)
			}
		default:
			space = true
		}
	}
	return b.String()
}
