package mailparse

import (
	"bytes"
	"strings"
)

// oidSignedData is id-signedData (RFC 5652 section 5.1), DER-encoded.
var oidSignedData = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}

// maxBERDepth bounds the nesting berRead follows.
const maxBERDepth = 32

// signedContent returns the content of CMS signed data (RFC 5652), the
// mail that opaque-signed S/MIME (smime-type=signed-data) wraps. It reads
// BER as well as DER: signers stream with indefinite lengths and cut the
// content into several octet strings.
func signedContent(b []byte) ([]byte, bool) {
	// ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT }
	ci, ok := berChildren(b, 0x30)
	if !ok || len(ci) < 2 || ci[0].id != 0x06 || !bytes.Equal(ci[0].content, oidSignedData) || ci[1].id != 0xa0 {
		return nil, false
	}
	// SignedData ::= SEQUENCE { version, digestAlgorithms,
	// encapContentInfo, ... }
	sd, ok := berChildren(ci[1].content, 0x30)
	if !ok || len(sd) < 3 || sd[2].id != 0x30 {
		return nil, false
	}
	// EncapsulatedContentInfo ::= SEQUENCE { eContentType OID,
	// eContent [0] EXPLICIT OCTET STRING OPTIONAL }
	eci, ok := berList(sd[2].content, 0)
	if !ok || len(eci) < 2 || eci[1].id != 0xa0 {
		return nil, false // detached: the content is elsewhere
	}
	os, ok := berList(eci[1].content, 0)
	if !ok || len(os) != 1 {
		return nil, false
	}
	var out []byte
	if !octets(os[0], &out, 0) {
		return nil, false
	}
	return out, true
}

// ber is one BER element: its identifier octet (class, constructed bit
// and a low tag number) and its content.
type ber struct {
	id      byte
	content []byte
}

// berChildren reads the single element of b, which must have identifier
// id, and returns its children.
func berChildren(b []byte, id byte) ([]ber, bool) {
	e, _, ok := berRead(b, 0)
	if !ok || e.id != id {
		return nil, false
	}
	return berList(e.content, 0)
}

// berList reads the successive elements of b.
func berList(b []byte, depth int) ([]ber, bool) {
	var list []ber
	for len(b) > 0 {
		e, rest, ok := berRead(b, depth)
		if !ok {
			return nil, false
		}
		list = append(list, e)
		b = rest
	}
	return list, true
}

// octets appends the bytes of an OCTET STRING, primitive or constructed
// from smaller ones.
func octets(e ber, out *[]byte, depth int) bool {
	switch e.id {
	case 0x04:
		*out = append(*out, e.content...)
		return true
	case 0x24:
		if depth > maxBERDepth {
			return false
		}
		parts, ok := berList(e.content, depth+1)
		if !ok {
			return false
		}
		for _, p := range parts {
			if !octets(p, out, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// berRead reads one element at the start of b. Of an element of
// indefinite length, content is what lies between its header and its
// end-of-contents octets.
func berRead(b []byte, depth int) (ber, []byte, bool) {
	if len(b) < 2 || depth > maxBERDepth {
		return ber{}, nil, false
	}
	id, i := b[0], 1
	if id&0x1f == 0x1f {
		// A high tag number: none of the elements read here has one;
		// skip it so that it can be stepped over.
		for i < len(b) && b[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if i >= len(b) {
		return ber{}, nil, false
	}
	l := int(b[i])
	i++
	switch {
	case l < 0x80:
	case l == 0x80:
		if id&0x20 == 0 {
			return ber{}, nil, false
		}
		r := b[i:]
		for {
			if len(r) >= 2 && r[0] == 0 && r[1] == 0 {
				return ber{id: id, content: b[i : len(b)-len(r)]}, r[2:], true
			}
			_, rest, ok := berRead(r, depth+1)
			if !ok {
				return ber{}, nil, false
			}
			r = rest
		}
	default:
		n := l & 0x7f
		if n > 4 || i+n > len(b) {
			return ber{}, nil, false
		}
		l = 0
		for _, c := range b[i : i+n] {
			l = l<<8 | int(c)
		}
		i += n
	}
	if l < 0 || l > len(b)-i {
		return ber{}, nil, false
	}
	return ber{id: id, content: b[i : i+l]}, b[i+l:], true
}

// Inline PGP armor (RFC 4880 section 7).
const (
	pgpSignedBegin    = "-----BEGIN PGP SIGNED MESSAGE-----"
	pgpSignatureBegin = "-----BEGIN PGP SIGNATURE-----"
	pgpSignatureEnd   = "-----END PGP SIGNATURE-----"
)

// pgpSignedText returns the text of an inline PGP signed message without
// its armor: the armor headers, the dash escapes and the signature go;
// text around the signed block stays.
func pgpSignedText(s string, w *warnings) string {
	i := strings.Index(s, pgpSignedBegin)
	if i < 0 || i > 0 && s[i-1] != '\n' {
		return s
	}
	before, rest := s[:i], strings.ReplaceAll(s[i+len(pgpSignedBegin):], "\r\n", "\n")
	// Armor headers ("Hash: SHA256") end at the first blank line.
	j := strings.Index(rest, "\n\n")
	k := strings.Index(rest, "\n"+pgpSignatureBegin)
	if j < 0 || k < j {
		return s
	}
	signed := rest[j+2 : k]
	after := ""
	if e := strings.Index(rest[k:], pgpSignatureEnd); e >= 0 {
		after = rest[k+e+len(pgpSignatureEnd):]
	}
	lines := strings.Split(signed, "\n")
	for n, l := range lines {
		lines[n] = strings.TrimPrefix(l, "- ")
	}
	w.add("signed message (PGP): the signature is not checked and not kept")
	return before + strings.Join(lines, "\n") + after
}
