// Package language detects the language of customer messages, with
// whatlanggo (trigram profiles of 84 languages, no model to download).
package language

import (
	"strings"
	"unicode/utf8"

	"github.com/abadojack/whatlanggo"
)

// minRunes is the shortest text worth a guess: "ok", "merci" and emoji say
// nothing reliable about a language.
const minRunes = 12

// minConfidence is the confidence below which no language is named.
// whatlanggo's own "reliable" mark (0.8) rejects most short customer
// messages whose best guess is right (a two-line French message scores
// about 0.6); below 0.2 its guesses were wrong in our samples.
const minConfidence = 0.2

// Detector detects languages and knows the ISO 639-1 codes it can name.
type Detector struct {
	// codes maps whatlanggo's languages to ISO 639-1, computed once:
	// whatlanggo builds that map anew on every lookup.
	codes map[whatlanggo.Lang]string
	known map[string]bool
}

// New returns a detector.
func New() *Detector {
	d := &Detector{codes: map[whatlanggo.Lang]string{}, known: map[string]bool{}}
	for l := whatlanggo.Afr; l <= whatlanggo.Zul; l++ {
		if code := l.Iso6391(); code != "" {
			d.codes[l] = code
			d.known[code] = true
		}
	}
	return d
}

// Detect returns the ISO 639-1 code of text's language, or "" when the text
// is too short or the guess too weak. Agents can correct it.
func (d *Detector) Detect(text string) string {
	text = strings.TrimSpace(text)
	if utf8.RuneCountInString(text) < minRunes {
		return ""
	}
	info := whatlanggo.Detect(text)
	if info.Confidence < minConfidence {
		return ""
	}
	return d.codes[info.Lang]
}

// Valid reports whether code is an ISO 639-1 code the detector knows, for
// languages set by hand.
func (d *Detector) Valid(code string) bool { return d.known[code] }
