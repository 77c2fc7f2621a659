package mailparse

import (
	"bytes"
	"context"
	"html"
	"path"
	"strings"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

// The layout is what a reader of the mail sees, taken from the MIME tree
// as mail clients do rather than as enmime's Envelope sorts it: every
// body part in order (a multipart/mixed may hold several text and HTML
// parts), the best of each multipart/alternative, the signed part of a
// multipart/signed, the contents of a winmail.dat, and every other part
// as a file. Nothing is dropped without a warning, except the
// alternatives a client would not show either.

// piece is one body part a reader sees, in MIME order.
type piece struct {
	// text is the plain text; hasText says it is set. A piece of HTML
	// alone gets its text from its sanitised HTML.
	text    string
	hasText bool
	// html is the HTML, not sanitised yet; "" for a plain-text piece.
	html string
}

// file is a part to download, or an inline one shown inside the body.
type file struct {
	// part is the MIME part; nil for a file unpacked from a winmail.dat.
	part        *enmime.Part
	name        string
	contentType string
	contentID   string
	content     []byte
	inline      bool
}

// layout is a mail as shown.
type layout struct {
	pieces []piece
	files  []file
	// fallback are the bodies of winmail.dat files, shown only when the
	// mail has no other: Outlook sends the same text beside them.
	fallback []piece
}

// Labels that stand in Text for what cannot be read here.
const (
	labelPGPEncrypted   = "[Encrypted message (PGP): the content is attached, it cannot be read here]"
	labelSMIMEEncrypted = "[Encrypted message (S/MIME): the content is attached, it cannot be read here]"
	labelSMIMESigned    = "[Signed message (S/MIME): the content is attached, it could not be read here]"
	labelSMIMECompress  = "[Compressed message (S/MIME): the content is attached, it cannot be read here]"
)

// maxUnpackDepth bounds containers unpacked inside one another (S/MIME
// signed data holding a mail holding signed data...).
const maxUnpackDepth = 3

// walker builds a layout.
type walker struct {
	ctx   context.Context
	p     *Parser
	cs    *charsets
	w     *warnings
	out   *layout
	depth int
}

// lay returns the layout of the mail rooted at root.
func (p *Parser) lay(ctx context.Context, root *enmime.Part, cs *charsets, w *warnings) *layout {
	wk := &walker{ctx: ctx, p: p, cs: cs, w: w, out: &layout{}}
	wk.walk(root)
	return wk.out
}

// sub returns a walker whose pieces go to a fresh layout and whose files
// go to the same one as wk's.
func (wk *walker) sub() *walker {
	s := *wk
	s.out = &layout{}
	return &s
}

// merge adds the files and fallback bodies of a sub-walker's layout.
func (wk *walker) merge(l *layout) {
	wk.out.files = append(wk.out.files, l.files...)
	wk.out.fallback = append(wk.out.fallback, l.fallback...)
}

func (wk *walker) walk(part *enmime.Part) {
	ct := part.ContentType
	switch {
	case strings.HasPrefix(ct, "multipart/") || part.FirstChild != nil:
		wk.multipart(part)
	case isTNEF(part):
		wk.tnef(part)
	case ct == "application/pkcs7-mime" || ct == "application/x-pkcs7-mime":
		wk.pkcs7(part)
	case isBodyPart(part):
		wk.body(part)
	default:
		wk.file(part, "")
	}
}

func (wk *walker) multipart(part *enmime.Part) {
	if part.FirstChild == nil {
		// A multipart without a boundary parameter: enmime keeps its
		// body as one opaque part, which is all the text there is.
		if len(bytes.TrimSpace(part.Content)) > 0 {
			wk.out.pieces = append(wk.out.pieces, piece{text: wk.cs.decode(part.Content, "", false, partName(part), wk.w), hasText: true})
		}
		return
	}
	switch part.ContentType {
	case "multipart/alternative":
		wk.alternative(part)
	case "multipart/related":
		wk.related(part)
	case "multipart/signed":
		wk.signed(part)
	case "multipart/encrypted":
		wk.encrypted(part)
	default:
		// multipart/mixed, and any other (RFC 2046 section 5.1.7).
		for c := part.FirstChild; c != nil; c = c.NextSibling {
			wk.walk(c)
		}
	}
}

// alternative shows the text of the plain alternative and the HTML of the
// richest one. The other text alternatives are the same message again;
// alternatives of another kind (a calendar invitation) become files.
func (wk *walker) alternative(part *enmime.Part) {
	var plain, rich *enmime.Part
	for c := part.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.ContentType == "text/plain" && isBodyPart(c):
			if plain == nil {
				plain = c
			}
		case c.ContentType == "text/html" && isBodyPart(c), strings.HasPrefix(c.ContentType, "multipart/") && hasHTMLBody(c):
			rich = c // the last is the richest (RFC 2046 section 5.1.4)
		case strings.HasPrefix(c.ContentType, "multipart/") && plain == nil:
			plain = c
		}
	}
	if plain == nil && rich == nil {
		for c := part.FirstChild; c != nil; c = c.NextSibling {
			wk.walk(c)
		}
		return
	}
	var pc piece
	if plain != nil {
		s := wk.sub()
		s.walk(plain)
		wk.merge(s.out)
		var texts []string
		for _, sp := range s.out.pieces {
			if sp.hasText {
				texts = append(texts, sp.text)
			}
		}
		pc.text = joinTexts(texts)
		pc.hasText = strings.TrimSpace(pc.text) != ""
	}
	if rich != nil {
		s := wk.sub()
		s.walk(rich)
		wk.merge(s.out)
		var htmls []string
		for _, sp := range s.out.pieces {
			switch {
			case sp.html != "":
				htmls = append(htmls, sp.html)
			case strings.TrimSpace(sp.text) != "":
				htmls = append(htmls, textToHTML(sp.text))
			}
		}
		pc.html = strings.Join(htmls, "\n")
	}
	wk.out.pieces = append(wk.out.pieces, pc)
	for c := part.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c == plain || c == rich || isTextAlternative(c):
		case c.ContentType == "text/calendar" && c.FirstChild == nil:
			// An invitation, as Outlook sends it: the reader gets it
			// as a file.
			wk.file(c, "invite.ics")
		default:
			wk.walk(c)
		}
	}
}

// isTextAlternative reports whether an unchosen alternative is the
// message again in another text format.
func isTextAlternative(part *enmime.Part) bool {
	switch part.ContentType {
	case "", "text/plain", "text/html", "text/enriched", "text/richtext", "text/watch-html", "text/x-amp-html", "text/markdown":
		return part.Disposition != "attachment"
	}
	return strings.HasPrefix(part.ContentType, "multipart/")
}

// hasHTMLBody reports whether a multipart holds an HTML body part.
func hasHTMLBody(part *enmime.Part) bool {
	return part.DepthMatchFirst(func(p *enmime.Part) bool { return p.ContentType == "text/html" && isBodyPart(p) }) != nil
}

// related shows its root part (the start parameter's, else the first)
// with the others as the inline parts it refers to.
func (wk *walker) related(part *enmime.Part) {
	root := part.FirstChild
	if start := strings.Trim(contentTypeParam(part, "start"), "<> "); start != "" {
		for c := part.FirstChild; c != nil; c = c.NextSibling {
			if c.ContentID == start {
				root = c
			}
		}
	}
	wk.walk(root)
	for c := part.FirstChild; c != nil; c = c.NextSibling {
		if c != root {
			wk.walk(c)
		}
	}
}

// signed shows the signed part. Switchboard does not check signatures,
// so it does not keep them either: a signature file would only suggest
// it was checked. The warning says it was there.
func (wk *walker) signed(part *enmime.Part) {
	first := true
	for c := part.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case first:
			wk.walk(c)
			first = false
		case c.ContentType == "application/pkcs7-signature" || c.ContentType == "application/x-pkcs7-signature":
			wk.w.add("signed message (S/MIME): the signature is not checked and not kept")
		case c.ContentType == "application/pgp-signature":
			wk.w.add("signed message (PGP): the signature is not checked and not kept")
		default:
			wk.walk(c)
		}
	}
}

// encrypted keeps the encrypted data of a multipart/encrypted (RFC 1847,
// PGP/MIME per RFC 3156) as a file, with a label in the text.
func (wk *walker) encrypted(part *enmime.Part) {
	for c := part.FirstChild; c != nil; c = c.NextSibling {
		if c.ContentType == "application/pgp-encrypted" {
			continue // "Version: 1", the control part
		}
		wk.file(c, "encrypted.asc")
	}
	wk.label(labelPGPEncrypted, "encrypted message (PGP): kept as an attachment")
}

// pkcs7 shows the content of opaque-signed S/MIME data and keeps
// encrypted data as a file, with a label in the text.
func (wk *walker) pkcs7(part *enmime.Part) {
	smimeType := strings.ToLower(contentTypeParam(part, "smime-type"))
	switch smimeType {
	case "certs-only":
		wk.file(part, "smime.p7c")
		return
	case "compressed-data":
		wk.file(part, "smime.p7z")
		wk.label(labelSMIMECompress, "compressed message (S/MIME): kept as an attachment")
		return
	case "signed-data", "":
		if inner, ok := signedContent(part.Content); ok && wk.depth < maxUnpackDepth {
			if root, err := wk.p.readInner(wk.ctx, inner); err == nil {
				wk.w.add("signed message (S/MIME): the signature is not checked and not kept")
				wk.depth++
				wk.walk(root)
				wk.depth--
				return
			}
		}
		if smimeType == "signed-data" {
			wk.file(part, "smime.p7m")
			wk.label(labelSMIMESigned, "signed message (S/MIME): its content could not be read, kept as an attachment")
			return
		}
	}
	wk.file(part, "smime.p7m")
	wk.label(labelSMIMEEncrypted, "encrypted message (S/MIME): kept as an attachment")
}

// label adds a line to the text saying what the reader cannot see here.
func (wk *walker) label(text, warning string) {
	wk.out.pieces = append(wk.out.pieces, piece{text: text, hasText: true})
	wk.w.add(warning)
}

// body adds a text or HTML body part.
func (wk *walker) body(part *enmime.Part) {
	what := partName(part)
	label := declaredCharset(part)
	isHTML := part.ContentType == "text/html"
	if isHTML && label == "" {
		label = metaCharset(part.Content)
	}
	s := wk.cs.decode(part.Content, label, isHTML, what, wk.w)
	if isHTML {
		wk.out.pieces = append(wk.out.pieces, piece{html: s})
		return
	}
	wk.out.pieces = append(wk.out.pieces, piece{text: pgpSignedText(s, wk.w), hasText: true})
}

// partName names a part in warnings.
func partName(part *enmime.Part) string {
	if part.Parent == nil {
		return "body"
	}
	return "part " + part.PartID
}

// file adds a part to download, or an inline one: one with a Content-ID
// the HTML can refer to (RFC 2392), not marked as an attachment. A part
// marked inline without a Content-ID (Apple Mail puts images and PDFs
// between paragraphs so) cannot be shown in the body here: it is a file to
// download. defaultName names a file that has no name of its own.
func (wk *walker) file(part *enmime.Part, defaultName string) {
	name := wk.fileName(part)
	if name == "" {
		name = defaultName
	}
	wk.out.files = append(wk.out.files, file{
		part:        part,
		name:        name,
		contentType: part.ContentType,
		contentID:   part.ContentID,
		content:     part.Content,
		inline:      part.ContentID != "" && part.Disposition != "attachment",
	})
}

// isBodyPart reports whether part is a text body, shown in Text or HTML:
// text/plain (which a part without Content-Type is, RFC 2045 section 5.2)
// or text/html, not marked as an attachment and without a file name.
func isBodyPart(part *enmime.Part) bool {
	if part.Disposition == "attachment" || part.FileName != "" {
		return false
	}
	switch part.ContentType {
	case "", "text/plain", "text/html":
		return true
	}
	return false
}

// isTNEF reports whether part is a winmail.dat.
func isTNEF(part *enmime.Part) bool {
	switch part.ContentType {
	case "application/ms-tnef", "application/vnd.ms-tnef":
		return true
	}
	base := strings.ToLower(path.Base(strings.ReplaceAll(part.FileName, `\`, "/")))
	return base == "winmail.dat" || base == "win.dat"
}

// contentTypeParam returns a parameter of a part's Content-Type.
func contentTypeParam(part *enmime.Part, name string) string {
	_, params, _, err := mediatype.Parse(part.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return params[name]
}

// joinTexts joins the texts of successive body parts with a blank line.
func joinTexts(texts []string) string {
	var kept []string
	for _, t := range texts {
		if t = strings.TrimRight(t, " \t\r\n"); strings.TrimSpace(t) != "" {
			kept = append(kept, strings.TrimLeft(t, "\r\n"))
		}
	}
	return strings.Join(kept, "\n\n")
}

// textToHTML renders a plain-text part among HTML ones.
func textToHTML(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(fixBytes(s), "\r\n", "\n"), "\r", "\n")
	return "<p>" + strings.ReplaceAll(html.EscapeString(strings.TrimSpace(s)), "\n", "<br>\n") + "</p>"
}
