// Package language detects the language of customer messages with lingua
// (github.com/pemistahl/lingua-go), made for short text, among a few
// languages: by default those our users' customers write most
// (DefaultCodes), or those a tenant declares (NewWith). See
// docs/adr/0009-language-detection.md.
//
// Accuracy, on 154 short support messages, 22 in each default language
// (testdata/labelled.tsv): 148 right (0.961), 6 empty, none wrong.
// whatlanggo, as this package used it before, named 106 right, left 39
// empty and 9 wrong. Restricted to its languages, lingua names one of them
// for any text: 32 of 50 messages in 23 other languages
// (TestForeignLanguages) got a wrong code. A guard, lingua over all its 75 languages in low-accuracy mode, leaves a
// message empty when it finds another language more likely: 0 of the 50
// are named, at the cost of the 6 labelled ones left empty (all 154 are
// right without it).
//
// Memory, in a fresh process, after New and one Detect (lingua loads a
// language's models on first use and keeps them), default languages,
// runtime.MemStats on the development machine (2 cores, amd64, Go 1.26):
//
//	MiB                        HeapAlloc  after GC  Sys      first Detect
//	New: high accuracy + guard   171-212        155  232-265  1.3-1.8 s
//	lingua high accuracy         134-177    124-127  191-219  1.0-1.4 s
//	lingua high, preloaded           183        126      252  0.84 s in Build
//	lingua low accuracy             9-10    6.5-6.7    21-25  0.09-0.13 s
//
// (HeapAlloc before GC varies with the GC's timing.) Low-accuracy mode
// alone is small but confidently wrong on short text: 151 of the 154 right
// and 2 wrong ("How do I change my password?" as Italian, 0.87).
// Preloading only moves the loading into New and raises the peak; detection
// runs behind ingestion, where a slow first message costs nothing, so models
// load lazily. Each further high-accuracy language costs about 18-20 MiB: five
// more (pl, sv, da, ca, ro) took 225 MiB, so the default stays at seven.
// Lingua keeps loaded models in process-wide maps, shared by every Detector
// and never freed: a process holds the models of the union of the languages
// of all its Detectors.
//
// Time (BenchmarkDetect): 0.85-0.95 ms per short message on an idle machine,
// up to 1.4 ms under load (0.22 ms without the guard, whatlanggo 0.28 ms),
// 2 ms for a long one (cut to 400 runes).
//
// A Detector is immutable once built and safe for concurrent use; the inbox
// builds one at start and shares it.
package language

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/pemistahl/lingua-go"
)

// iso6391 lists every ISO 639-1 code (184, "bh" included; the withdrawn
// "in", "iw", "ji", "jw", "mo" and "sh" are not).
const iso6391 = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs " +
	"ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy " +
	"ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv " +
	"ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv " +
	"mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os " +
	"pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw " +
	"ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"

// minLetters is the fewest letters, once tokens without language are
// dropped, worth a guess. Of 96 probes written to try it (thanks, "ok",
// greetings, brands, names), 18 under 10 letters got a language, 6 of them
// a wrong one, guard included: "OK" and "ok ok ok" Dutch, "Order" and
// "Samsung" German, "IKEA Billy" English. Every labelled message has 14
// letters or more.
const minLetters = 10

// minRelativeDistance is the least lead of the most likely language over the
// second below which no language is named. Text without a language scores
// under it ("Nike Air Max" 0.02, "test test test" 0.04, "Google Pixel Buds"
// 0.13, "Amazon Prime Video" 0.11), the labelled messages above it (lowest
// 0.16, "Où en est mon colis ?").
const minRelativeDistance = 0.15

// maxRunes bounds the text given to lingua: the start of a long email tells
// its language, and the cost of detection grows with the length.
const maxRunes = 400

// ErrUnknownLanguage is returned, wrapped with the code, by NewWith for a
// code that is not ISO 639-1.
var ErrUnknownLanguage = errors.New("not an ISO 639-1 language code")

// ErrUndetectable is returned, wrapped with the code, by NewWith for an
// ISO 639-1 language lingua has no model of. Agents may still set it.
var ErrUndetectable = errors.New("language cannot be detected")

// DefaultCodes returns the ISO 639-1 codes of the languages New detects.
func DefaultCodes() []string { return []string{"en", "fr", "de", "es", "it", "nl", "pt"} }

// Detector detects languages and knows every ISO 639-1 code. Build it with
// New or NewWith; it is safe for concurrent use.
type Detector struct {
	lingua lingua.LanguageDetector
	// guard knows every language lingua does, in low-accuracy mode: when it
	// finds a language d does not detect more likely than those it does,
	// the text is taken for a foreign one and gets no language.
	guard lingua.LanguageDetector
	// codes maps the detected languages to their ISO 639-1 codes.
	codes map[lingua.Language]string
	known map[string]bool
}

// New returns a detector of the default languages (DefaultCodes).
func New() *Detector {
	d, err := NewWith(DefaultCodes())
	if err != nil {
		// DefaultCodes are all detectable: the tests make sure of it.
		panic(fmt.Sprintf("language: default languages: %v", err))
	}
	return d
}

// NewWith returns a detector of the given languages, ISO 639-1 codes in
// lower case (duplicates are ignored). It needs at least two languages: a
// detector of one would name it for any text. A code that is not ISO 639-1
// is an ErrUnknownLanguage, one lingua cannot detect an ErrUndetectable,
// both naming the code.
func NewWith(codes []string) (*Detector, error) {
	known := knownCodes()
	detectable := map[string]lingua.Language{}
	for _, l := range lingua.AllLanguages() {
		detectable[strings.ToLower(l.IsoCode639_1().String())] = l
	}
	d := &Detector{codes: map[lingua.Language]string{}, known: known}
	var languages []lingua.Language
	for _, code := range codes {
		if !known[code] {
			return nil, fmt.Errorf("language %q: %w", code, ErrUnknownLanguage)
		}
		l, ok := detectable[code]
		if !ok {
			return nil, fmt.Errorf("language %q: %w", code, ErrUndetectable)
		}
		if _, dup := d.codes[l]; dup {
			continue
		}
		d.codes[l] = code
		languages = append(languages, l)
	}
	if len(languages) < 2 {
		return nil, fmt.Errorf("language: detecting needs at least two languages, got %d (%s)", len(languages), strings.Join(codes, ", "))
	}
	d.lingua = lingua.NewLanguageDetectorBuilder().
		FromLanguages(languages...).
		WithMinimumRelativeDistance(minRelativeDistance).
		Build()
	d.guard = lingua.NewLanguageDetectorBuilder().FromAllLanguages().WithLowAccuracyMode().Build()
	return d, nil
}

func knownCodes() map[string]bool {
	known := map[string]bool{}
	for _, code := range strings.Fields(iso6391) {
		known[code] = true
	}
	return known
}

// Detect returns the ISO 639-1 code of text's language, or "" when the text
// has too few letters (emoji, numbers, "ok") or no language leads clearly
// enough. Words with digits, email addresses and links are ignored. Agents
// can correct it.
func (d *Detector) Detect(text string) string {
	text = wordsOnly(text)
	letters := 0
	for _, r := range text {
		if unicode.IsLetter(r) {
			letters++
		}
	}
	if letters < minLetters {
		return ""
	}
	l, ok := d.lingua.DetectLanguageOf(text)
	if !ok || d.foreign(text) {
		return ""
	}
	return d.codes[l]
}

// foreign reports whether the guard finds a language d does not detect more
// likely than every language d detects.
func (d *Detector) foreign(text string) bool {
	values := d.guard.ComputeLanguageConfidenceValues(text)
	for _, v := range values {
		if _, ok := d.codes[v.Language()]; ok {
			return v.Value() < values[0].Value()
		}
	}
	return false
}

// wordsOnly returns at most maxRunes runes of text's words, without those that say
// nothing of a language: those with digits (order numbers, IBANs, SKUs),
// email addresses and links.
func wordsOnly(text string) string {
	var b strings.Builder
	runes := 0
	for _, w := range strings.Fields(text) {
		if strings.ContainsFunc(w, unicode.IsDigit) || strings.Contains(w, "@") ||
			strings.Contains(w, "://") || strings.HasPrefix(strings.ToLower(w), "www.") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		for _, r := range w {
			if runes == maxRunes {
				return b.String()
			}
			b.WriteRune(r)
			runes++
		}
	}
	return b.String()
}

// Languages returns the ISO 639-1 codes d detects, sorted.
func (d *Detector) Languages() []string {
	codes := make([]string, 0, len(d.codes))
	for _, code := range d.codes {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	return codes
}

// Valid reports whether code is an ISO 639-1 code (lower case), for
// languages set by hand: any of them, not only those d detects.
func (d *Detector) Valid(code string) bool { return d.known[code] }

// Known reports whether code is an ISO 639-1 code, without a detector (for
// validating settings where none is at hand).
func Known(code string) bool {
	return len(code) == 2 && strings.Contains(" "+iso6391+" ", " "+code+" ")
}
