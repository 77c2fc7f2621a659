// Package subject compares mail subjects the way people read them: without
// the reply and forward prefixes that mail clients add in their user's
// language ("Re:", "AW:", "SV:", "Réf. :", "回复：", "Ответ:"), their
// counters ("Re[2]:", "RE^3:") and, for comparisons, the list tags that
// mailing lists and other ticket systems put in front ("[users]").
//
// Clients write these prefixes in the language of the person answering,
// not of the person asked: a French customer's colleague in Munich answers
// "AW: Commande 42", and an Outlook in Italian forwards "I: Commande 42".
// The words below are those of the mail clients in use in Europe, the
// Americas and East Asia (Outlook's translations first, then Thunderbird's,
// Apple Mail's and the webmails'); a word is only a prefix when a colon
// follows it, so "Regarding the order" keeps its first word.
package subject

import (
	"regexp"
	"strings"
)

// prefixWords are the reply and forward abbreviations, without their colon.
// Matched without case.
var prefixWords = []string{
	// Reply.
	"re", "aw", "antw", "antwort", "sv", "svar", "vs", "odp", "odg", "ynt",
	"rif", "r", "res", "réf", "ref", "rép", "vá", "atb", "ats", "tl",
	"απ", "σχετ", "回复", "答复", "回覆", "答覆", "返信", "회신", "ответ", "отв", "відп",
	// Forward.
	"fwd", "fw", "wg", "tr", "rv", "enc", "i", "vb", "vl", "pd", "př", "doorst", "ilt", "İlt",
	"πρθ", "προωθ", "转发", "轉寄", "轉發", "転送", "전달", "пересл", "továbbítás",
}

// prefixRE matches one prefix: a word and an optional full stop ("Réf."),
// an optional counter ("[2]", "(2)", "^2"), optional spaces (French
// typography puts one before the colon), and an ASCII or full-width colon
// (CJK clients write "回复：").
var prefixRE = `(?:` + alternation(prefixWords) + `)\.?\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:：]`

// prefixesRE matches a stack of prefixes at the start of a subject.
var prefixesRE = regexp.MustCompile(`(?i)^(?:\s*` + prefixRE + `)+\s*`)

// tagsAndPrefixesRE matches a stack of prefixes and bracketed list tags at
// the start of a subject, in any order: "[users] Re: [dev] Fwd: ".
var tagsAndPrefixesRE = regexp.MustCompile(`(?i)^(?:\s*(?:` + prefixRE + `|\[[^\[\]]*\]))+\s*`)

func alternation(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = regexp.QuoteMeta(w)
	}
	return strings.Join(quoted, "|")
}

// TrimPrefixes returns s without the reply and forward prefixes at its
// start, keeping everything else (list tags and ticket numbers of other
// systems, which their own threading may rely on): what an answer puts
// its own "Re: " in front of.
func TrimPrefixes(s string) string {
	return strings.TrimSpace(prefixesRE.ReplaceAllString(s, ""))
}

// Key returns what two subjects must share to be the same topic: s
// without the prefixes and list tags at its start, lower case, its spaces
// collapsed. "RE: [Support] AW:  Order 42" and "order 42" have the same
// key. A subject that is nothing but prefixes has the empty key, which
// matches nothing (see Same).
func Key(s string) string {
	s = tagsAndPrefixesRE.ReplaceAllString(s, "")
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// Same reports whether two subjects name the same topic: their keys are
// equal and not empty.
func Same(a, b string) bool {
	ka := Key(a)
	return ka != "" && ka == Key(b)
}
