package mailparse

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestSkipLead(t *testing.T) {
	tests := []struct {
		in      string
		skipped int
		rest    string
	}{
		{"From: a@b\r\n\r\nx", 0, "From: a@b\r\n\r\nx"},
		{"Subject : odd but a header\r\n", 0, "Subject : odd but a header\r\n"},
		{"From a@b Mon Jan  5 10:00:00 2026\r\nFrom: a@b\r\n", 1, "From: a@b\r\n"},
		{"\xef\xbb\xbf\r\n\r\nTo: a@b\r\n", 2, "To: a@b\r\n"},
		{"\xef\xbb\xbfTo: a@b\r\n", 0, "To: a@b\r\n"},
		{">From a@b\nFrom: a@b\n", 1, "From: a@b\n"},
		// No header within reach: left as it is, for hasMailHeader to refuse.
		{"just some words\r\nand more words\r\n", 0, "just some words\r\nand more words\r\n"},
		{strings.Repeat("junk\r\n", maxLeadLines+1) + "From: a@b\r\n", 0, strings.Repeat("junk\r\n", maxLeadLines+1) + "From: a@b\r\n"},
	}
	for _, tt := range tests {
		rest, n := skipLead([]byte(tt.in))
		if string(rest) != tt.rest || n != tt.skipped {
			t.Errorf("skipLead(%q) = %q, %d; want %q, %d", tt.in, rest, n, tt.rest, tt.skipped)
		}
	}
}

func TestEncodedWords(t *testing.T) {
	utf := []byte("Заказ")
	tests := []struct{ in, want string }{
		{"=?utf-8?q?caf=C3=A9_cr=C3=A8me?=", "café crème"},
		{"Re: =?ISO-8859-1?Q?R=E9clamation?= urgent", "Re: Réclamation urgent"},
		// White space between words goes, around them it stays.
		{"=?utf-8?b?QQ==?= =?utf-8?b?Qg==?=  x", "AB  x"},
		// A character cut between two words.
		{fmt.Sprintf("=?utf-8?B?%s?= =?utf-8?B?%s?=", b64s(utf[:3]), b64s(utf[3:])), "Заказ"},
		// Declared Latin-1, written in UTF-8.
		{"=?iso-8859-1?Q?Re=C3=A7u?=", "Reçu"},
		// Adjacent words in two charsets.
		{"=?iso-8859-1?q?=E9t=E9?= =?koi8-r?b?" + b64s([]byte{0xe4, 0xc1}) + "?=", "étéДа"},
		// Malformed: left as it is.
		{"=?utf-8?x?abc?= and =?broken", "=?utf-8?x?abc?= and =?broken"},
		{"=?utf-8?B?w6k?=", "é"}, // missing padding
		{"=?unknown-charset?Q?plain?=", "plain"},
	}
	c := &charsets{root: nil, gathered: true}
	for _, tt := range tests {
		w := &warnings{}
		if got := c.header(tt.in, "Subject", w); got != tt.want {
			t.Errorf("header(%q) = %q, want %q (warnings %q)", tt.in, got, tt.want, w.items)
		}
	}
}

func b64s(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var out strings.Builder
	for i := 0; i < len(b); i += 3 {
		var v uint32
		n := min(3, len(b)-i)
		for k := range 3 {
			v <<= 8
			if k < n {
				v |= uint32(b[i+k])
			}
		}
		for k := range 4 {
			if k <= n {
				out.WriteByte(enc[v>>(18-6*k)&63])
			} else {
				out.WriteByte('=')
			}
		}
	}
	return out.String()
}

func TestFileNameParam(t *testing.T) {
	tests := []struct{ in, want string }{
		{`attachment; filename="report.pdf"`, "report.pdf"},
		{`attachment; filename=my report.pdf; size=12`, "my report.pdf"},
		{`attachment; filename*=utf-8''%C3%A9t%C3%A9.txt`, "été.txt"},
		{`attachment; filename*=iso-8859-1'fr'caf%E9.pdf`, "café.pdf"},
		{`attachment; filename*0*=utf-8''%C3%9Cber; filename*1=" sicht"; filename*2*=%20%E2%80%93.pdf`, "Über sicht –.pdf"},
		{`attachment; filename*1="b.pdf"; filename*0="a"`, "ab.pdf"},
		{`attachment; filename="=?utf-8?B?0J7RgtGH0ZHRgi5wZGY=?="`, "Отчёт.pdf"},
		{"attachment; filename=\"R\xfcckgabe.pdf\"", "Rückgabe.pdf"},
		{`attachment; filename="a \"quoted\" name.txt"`, `a "quoted" name.txt`},
		{`attachment; filename="unterminated.pdf`, "unterminated.pdf"},
		{`attachment; name=other`, ""},
	}
	c := &charsets{root: nil, gathered: true}
	for _, tt := range tests {
		w := &warnings{}
		if got := c.param(tt.in, "filename", "file name", w); got != tt.want {
			t.Errorf("param(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDecodeFallsBackSafely(t *testing.T) {
	c := &charsets{root: nil, gathered: true}
	for _, b := range [][]byte{
		{0xff, 0xfe, 0xfd},
		[]byte("\x1b$B$3$s\x1b(B plain"),
		bytes.Repeat([]byte{0x81}, 100),
		{0xe4, 0xbd},
	} {
		for _, label := range []string{"", "utf-8", "gbk", "iso-2022-jp", "utf-16", "x-bogus", "charset=utf-8"} {
			w := &warnings{}
			if s := c.decode(b, label, false, "body", w); !utf8.ValidString(s) {
				t.Errorf("decode(%q, %q) = %q, not UTF-8", b, label, s)
			}
		}
	}
}

// The example of MS-OXRTFCP section 4.1.
func TestDecompressRTF(t *testing.T) {
	compressed := []byte{
		0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1, 0xc5, 0xc7, 0xa7,
		0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32, 0x35, 0x42, 0x32, 0x0a, 0xf3, 0x20,
		0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62, 0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f,
		0xa0,
	}
	got, err := decompressRTF(compressed)
	require.NoError(t, err)
	require.Equal(t, "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n", string(got))
	require.Len(t, rtfPrebuf, 207)

	_, err = decompressRTF([]byte("short"))
	require.Error(t, err)
}

func TestRTFText(t *testing.T) {
	c := &charsets{root: nil, gathered: true}
	w := &warnings{}
	text, html := rtfText([]byte(`{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Arial;}}{\*\generator x;}\uc1 \'cf\'f0\'e8\'e2\'e5\'f2\par caf\u233?\tab x\line {\b bold}\}}`), c, w)
	require.Equal(t, "Привет\ncafé\tx\nbold}", text)
	require.Empty(t, html)

	text, html = rtfText([]byte(`{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}\htmlrtf {\b \htmlrtf0 Hello {\*\htmltag84 <b>}world{\*\htmltag92 </b>}\htmlrtf }\htmlrtf0 {\*\htmltag72 </p>}}`), c, w)
	require.Empty(t, text)
	require.Equal(t, "<p>Hello <b>world</b></p>", html)
}

func TestSignedContent(t *testing.T) {
	oid := func(b ...byte) []byte { return append([]byte{0x06, byte(len(b))}, b...) }
	data := oid(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01)
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	indef := func(id byte, content ...[]byte) []byte { return cat([]byte{id, 0x80}, cat(content...), []byte{0, 0}) }
	def := func(id byte, content ...[]byte) []byte {
		c := cat(content...)
		return cat([]byte{id, 0x81, byte(len(c))}, c)
	}
	// BER as signers stream it: indefinite lengths, the content in two
	// octet strings.
	ber := indef(0x30, oid(oidSignedData...), indef(0xa0, indef(0x30,
		[]byte{0x02, 0x01, 0x01}, def(0x31),
		indef(0x30, data, indef(0xa0, indef(0x24, def(0x04, []byte("To: a\r\n")), def(0x04, []byte("\r\nhi"))))),
		def(0x31))))
	got, ok := signedContent(ber)
	require.True(t, ok)
	require.Equal(t, "To: a\r\n\r\nhi", string(got))

	der := def(0x30, oid(oidSignedData...), def(0xa0, def(0x30,
		[]byte{0x02, 0x01, 0x01}, def(0x31), def(0x30, data, def(0xa0, def(0x04, []byte("body")))), def(0x31))))
	got, ok = signedContent(der)
	require.True(t, ok)
	require.Equal(t, "body", string(got))

	// Detached: no content.
	detached := def(0x30, oid(oidSignedData...), def(0xa0, def(0x30, []byte{0x02, 0x01, 0x01}, def(0x31), def(0x30, data), def(0x31))))
	_, ok = signedContent(detached)
	require.False(t, ok)
	for i := range ber {
		_, _ = signedContent(ber[:i]) // cut anywhere: no panic
	}
}

func TestPGPSignedText(t *testing.T) {
	in := "Before\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nHello\n- -- \n- - item\n-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----\nAfter"
	w := &warnings{}
	require.Equal(t, "Before\nHello\n-- \n- item\nAfter", pgpSignedText(in, w))
	require.Len(t, w.items, 1)
	// Not at a line start, or without a signature: left alone.
	require.Equal(t, "x -----BEGIN PGP SIGNED MESSAGE-----", pgpSignedText("x -----BEGIN PGP SIGNED MESSAGE-----", w))
	require.Equal(t, "-----BEGIN PGP SIGNED MESSAGE-----\nHash: x\n\nno end", pgpSignedText("-----BEGIN PGP SIGNED MESSAGE-----\nHash: x\n\nno end", w))
}

func TestReadTNEFRefusesGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not tnef"), {0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}} {
		_, err := readTNEF(b)
		require.ErrorIs(t, err, errTNEF)
	}
}

// FuzzUnpack feeds arbitrary bytes to the readers of what mails wrap:
// none may panic, and what they return is valid UTF-8 once decoded.
func FuzzUnpack(f *testing.F) {
	f.Add([]byte{0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00})
	f.Add([]byte(`{\rtf1\ansi\fromhtml1 {\*\htmltag64 <p>}\'e9\u-3913?}`))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x00, 0x00})
	c := &charsets{root: nil, gathered: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		w := &warnings{}
		if m, err := readTNEF(b); err == nil {
			for _, a := range m.attachments {
				_ = c.decode(a.title, m.codepage, false, "x", w)
			}
		}
		if out, err := decompressRTF(b); err == nil && len(out) > maxRTFBytes {
			t.Fatalf("decompressed %d bytes", len(out))
		}
		text, html := rtfText(b, c, w)
		if !utf8.ValidString(text) || !utf8.ValidString(html) {
			t.Fatalf("rtfText gave invalid UTF-8: %q %q", text, html)
		}
		_, _ = signedContent(b)
		if s := c.header(string(b), "x", w); !utf8.ValidString(s) {
			t.Fatalf("header gave invalid UTF-8: %q", s)
		}
		_ = c.param(string(b), "filename", "x", w)
	})
}

func TestLayoutOfCorpusMails(t *testing.T) {
	p := newParser(t, Options{Store: newMemStore()})

	m := parseFile(t, p, "corpus/mime/mixed-text-html-text.eml")
	first, bold, third := strings.Index(m.HTML, "First, the order"), strings.Index(m.HTML, "<b>address</b>"), strings.Index(m.HTML, "Third, thanks")
	require.True(t, first >= 0 && first < bold && bold < third, "HTML keeps every part in order: %q", m.HTML)

	m = parseFile(t, p, "corpus/mime/alternative-related-inline-image.eml")
	require.Len(t, m.Inlines, 1, "an image the HTML refers to is inline")
	require.Equal(t, "skjerm@example.no", m.Inlines[0].ContentID)
	require.Contains(t, m.HTML, `src="cid:skjerm@example.no"`)

	m = parseFile(t, p, "corpus/tnef/outlook-text-and-winmail.eml")
	require.Len(t, m.Attachments, 2)
	require.Equal(t, "application/pdf", m.Attachments[0].ContentType, "from the MIME tag")
	require.Equal(t, "application/pdf", m.Attachments[1].ContentType, "sniffed")
	require.NotNil(t, m.Attachments[0].Blob)
	require.Greater(t, m.Attachments[0].Size, int64(0))

	m = parseFile(t, p, "corpus/smime/encrypted.eml")
	require.Equal(t, labelSMIMEEncrypted, m.Text)
	require.Equal(t, "application/x-pkcs7-mime", m.Attachments[0].ContentType)
	require.Contains(t, m.Warnings, "encrypted message (S/MIME): kept as an attachment")

	m = parseFile(t, p, "corpus/smime/clear-signed.eml")
	require.Empty(t, m.Attachments, "the signature is not kept")
	require.Contains(t, m.Warnings, "signed message (S/MIME): the signature is not checked and not kept")

	m = parseFile(t, p, "corpus/charset-wrong/koi8r-declared-cp1251-body.eml")
	require.Contains(t, m.Warnings, "body: declared charset koi8-r does not fit, decoded as windows-1251 (detected)")
}
