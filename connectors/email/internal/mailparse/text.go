package mailparse

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/inbucket/html2text"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// bodies fills m.HTML, m.Text and m.TextTruncated from the pieces of the
// layout, in order: Text joins their texts (an HTML piece's derived from
// its sanitised HTML), HTML their HTML (a plain piece's escaped) when any
// piece has HTML.
func (p *Parser) bodies(lay *layout, m *Mail, w *warnings) {
	pieces := lay.pieces
	if len(lay.fallback) > 0 && strings.TrimSpace(joinTexts(pieceTexts(pieces))) == "" && !hasHTMLPiece(pieces) {
		pieces = lay.fallback
	}
	withHTML := hasHTMLPiece(pieces)
	budget, cut := p.limits.MaxHTMLBytes, false
	var texts, htmls []string
	for _, pc := range pieces {
		text := pc.text
		if pc.html != "" {
			raw := fixBytes(pc.html)
			if len(raw) > budget {
				raw, cut = truncateUTF8(raw, budget), true
			}
			budget -= len(raw)
			// The policy never lets <script> through; fixBytes again
			// because entities such as &#0; may decode to NUL.
			clean := strings.TrimSpace(fixBytes(p.policy.Sanitize(raw)))
			if clean != "" {
				htmls = append(htmls, clean)
			}
			if !pc.hasText && clean != "" {
				// From the sanitised HTML, so script and style bodies,
				// which html2text would print, are already gone.
				t, err := html2text.FromString(plainEmphasis(clean))
				if err != nil {
					w.add("cannot derive text from HTML: " + cleanLine(err.Error()))
				}
				text = t
			}
		} else if withHTML && strings.TrimSpace(pc.text) != "" {
			htmls = append(htmls, textToHTML(pc.text))
		}
		texts = append(texts, text)
	}
	if cut {
		w.add("HTML body cut before sanitising")
	}
	m.HTML = strings.Join(htmls, "\n")
	if len(m.HTML) > p.limits.MaxHTMLBytes {
		// The policy adds attributes (rel, target), so the output can
		// outgrow the input.
		m.HTML = cutHTML(m.HTML, p.limits.MaxHTMLBytes)
		w.add("sanitised HTML body cut")
	}
	m.Text, m.TextTruncated = truncateText(cleanText(joinTexts(texts)), p.limits.MaxTextBytes)
	if m.TextTruncated {
		w.add("text body truncated")
	}
}

func pieceTexts(pieces []piece) []string {
	texts := make([]string, len(pieces))
	for i, pc := range pieces {
		texts[i] = pc.text
	}
	return texts
}

func hasHTMLPiece(pieces []piece) bool {
	for _, pc := range pieces {
		if strings.TrimSpace(pc.html) != "" {
			return true
		}
	}
	return false
}

// boldTag and headingTag match the tags html2text renders with markup a
// reader of the mail never sees: bold as *bold*, headings framed by lines
// of asterisks or dashes.
var (
	boldTag    = regexp.MustCompile(`(?i)</?(?:b|strong)\b[^>]*>`)
	headingTag = regexp.MustCompile(`(?i)<(/?)h[1-6]\b[^>]*>`)
)

// plainEmphasis drops the bold tags of sanitised HTML, where every '<'
// opens a tag, and makes its headings paragraphs.
func plainEmphasis(html string) string {
	return headingTag.ReplaceAllString(boldTag.ReplaceAllString(html, ""), "<${1}p>")
}

// fixBytes returns s as valid UTF-8 without NUL.
//
// enmime converts declared charsets, but some bytes arrive undeclared or
// mis-declared: 8-bit headers, a body whose charset is unknown to it, a
// "utf-8" part written in Latin-1. When s is not valid UTF-8 yet holds no
// valid multi-byte sequence at all, it is taken as Windows-1252 (a superset
// of Latin-1 in practice, and the commonest undeclared charset); otherwise
// the invalid bytes become U+FFFD. Pure 7-bit text carrying ISO-2022-JP
// escapes is decoded as ISO-2022-JP.
func fixBytes(s string) string {
	switch {
	case utf8.ValidString(s):
		if isASCII(s) && (strings.Contains(s, "\x1b$B") || strings.Contains(s, "\x1b$@")) {
			if d, err := japanese.ISO2022JP.NewDecoder().String(s); err == nil && utf8.ValidString(d) {
				s = d
			}
		}
	case hasMultiByteRune(s):
		s = strings.ToValidUTF8(s, "\uFFFD")
	default:
		d, err := charmap.Windows1252.NewDecoder().String(s)
		if err != nil {
			d = strings.ToValidUTF8(s, "\uFFFD")
		}
		s = d
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return s
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// hasMultiByteRune reports whether s holds at least one valid UTF-8
// sequence of more than one byte.
func hasMultiByteRune(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if size > 1 && r != utf8.RuneError {
			return true
		}
		i += size
	}
	return false
}

// cleanLine returns s as one trimmed line of valid UTF-8: control
// characters, line breaks included, become spaces.
func cleanLine(s string) string {
	s = fixBytes(s)
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// cleanText returns s as valid UTF-8 without NUL, with LF line ends and no
// trailing blank lines.
func cleanText(s string) string {
	s = fixBytes(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimRight(s, " \t\n")
}

// cutHTML cuts sanitised HTML to at most n bytes without leaving half a
// tag at the end. In sanitised HTML every '<' opens a tag: text and
// attribute values have theirs escaped. Tags left open are closed by the
// browser; no tag that could run code exists to be completed.
func cutHTML(s string, n int) string {
	s = truncateUTF8(s, n)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.IndexByte(s[i:], '>') < 0 {
		s = s[:i]
	}
	return s
}

// truncateUTF8 returns the longest prefix of s of at most n bytes that does
// not cut a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// truncateText cuts s to at most limit bytes, TruncationMarker included,
// and reports whether it did.
func truncateText(s string, limit int) (string, bool) {
	if len(s) <= limit {
		return s, false
	}
	return truncateUTF8(s, limit-len(TruncationMarker)) + TruncationMarker, true
}
