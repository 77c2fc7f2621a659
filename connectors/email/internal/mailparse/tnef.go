package mailparse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

// TNEF (MS-OXTNEF) is how Outlook and Exchange send a mail's rich body and
// attachments to a recipient they believe runs Outlook: one winmail.dat
// part. What follows reads the parts of it a reader sees: the attachments
// (their data, names and media types) and the body (plain text, HTML, or
// compressed RTF, MS-OXRTFCP).

// TNEF attribute ids (level, type and id together), MS-OXTNEF 2.1.3.
const (
	tnefSignature     = 0x223e9f78
	attBody           = 0x0002800c
	attMsgProps       = 0x00069003
	attOemCodepage    = 0x00069007
	attAttachRendData = 0x00069002
	attAttachTitle    = 0x00018010
	attAttachData     = 0x0006800f
	attAttachment     = 0x00069005
)

// MAPI property ids, MS-OXPROPS.
const (
	prBody              = 0x1000
	prRTFCompressed     = 0x1009
	prBodyHTML          = 0x1013
	prInternetCPID      = 0x3fde
	prAttachDataObj     = 0x3701
	prAttachFilename    = 0x3704
	prAttachMethod      = 0x3705
	prAttachLongName    = 0x3707
	prAttachMIMETag     = 0x370e
	attachByValue       = 1
	maxTNEFAttributes   = 10_000
	maxTNEFAttachments  = 1_000
	maxRTFBytes         = 16 << 20
	maxMAPIProps        = 10_000
	maxMAPIValues       = 10_000
	ptUnicode, ptString = 0x001f, 0x001e
)

var errTNEF = errors.New("not a valid winmail.dat")

// tnefMessage is what a winmail.dat holds for a reader.
type tnefMessage struct {
	codepage    string
	body        []byte // attBody or PR_BODY in codepage
	bodyUnicode string // PR_BODY in UTF-16
	html        []byte // PR_BODY_HTML
	htmlCPID    string
	rtf         []byte // PR_RTF_COMPRESSED, compressed
	attachments []*tnefAttachment
	// skipped counts the attachments that are not files: embedded Outlook
	// items and OLE objects.
	skipped int
}

type tnefAttachment struct {
	// title is attAttachTitle, the short name, in the codepage.
	title []byte
	// longName is PR_ATTACH_LONG_FILENAME, in the codepage unless
	// longNameUTF8.
	longName     []byte
	longNameUTF8 bool
	mimeTag      string
	data         []byte
	hasData      bool
	method       uint32
}

// readTNEF parses a winmail.dat.
func readTNEF(b []byte) (*tnefMessage, error) {
	if len(b) < 6 || binary.LittleEndian.Uint32(b) != tnefSignature {
		return nil, fmt.Errorf("%w: no TNEF signature", errTNEF)
	}
	m := &tnefMessage{codepage: "windows-1252"}
	var cur *tnefAttachment
	pos := 6
	for n := 0; pos < len(b); n++ {
		if n == maxTNEFAttributes || len(b)-pos < 9 {
			return nil, fmt.Errorf("%w: attribute %d cut short", errTNEF, n)
		}
		id := binary.LittleEndian.Uint32(b[pos+1:])
		size := binary.LittleEndian.Uint32(b[pos+5:])
		pos += 9
		if uint64(size)+2 > uint64(len(b)-pos) {
			return nil, fmt.Errorf("%w: attribute %#x longer than the file", errTNEF, id)
		}
		data := b[pos : pos+int(size)]
		pos += int(size) + 2 // the checksum, not checked: a reader shows what it can
		switch id {
		case attOemCodepage:
			if len(data) >= 4 {
				m.codepage = codepageCharset(binary.LittleEndian.Uint32(data))
			}
		case attBody:
			m.body = trimNUL(data)
		case attMsgProps:
			if err := mapiProps(data, m.messageProp); err != nil {
				return nil, err
			}
		case attAttachRendData:
			if len(m.attachments) == maxTNEFAttachments {
				return nil, fmt.Errorf("%w: too many attachments", errTNEF)
			}
			cur = &tnefAttachment{method: attachByValue}
			m.attachments = append(m.attachments, cur)
		case attAttachTitle:
			if cur != nil {
				cur.title = trimNUL(data)
			}
		case attAttachData:
			if cur != nil {
				cur.data, cur.hasData = data, true
			}
		case attAttachment:
			if cur != nil {
				if err := mapiProps(data, cur.prop); err != nil {
					return nil, err
				}
			}
		}
	}
	return m, nil
}

func (m *tnefMessage) messageProp(id, typ uint16, v []byte) {
	switch id {
	case prBody:
		if typ == ptUnicode {
			m.bodyUnicode = utf16String(v)
		} else {
			m.body = trimNUL(v)
		}
	case prBodyHTML:
		if typ == ptUnicode {
			m.html = []byte(utf16String(v))
			m.htmlCPID = "utf-8"
		} else {
			m.html = trimNUL(v)
		}
	case prRTFCompressed:
		m.rtf = v
	case prInternetCPID:
		if len(v) >= 4 && m.htmlCPID == "" {
			m.htmlCPID = codepageCharset(binary.LittleEndian.Uint32(v))
		}
	}
}

func (a *tnefAttachment) prop(id, typ uint16, v []byte) {
	name := func() {
		if typ == ptUnicode {
			a.longName, a.longNameUTF8 = []byte(utf16String(v)), true
		} else {
			a.longName, a.longNameUTF8 = trimNUL(v), false
		}
	}
	switch id {
	case prAttachLongName:
		name()
	case prAttachFilename:
		if len(a.longName) == 0 {
			name()
		}
	case prAttachMIMETag:
		if typ == ptUnicode {
			a.mimeTag = utf16String(v)
		} else {
			a.mimeTag = string(trimNUL(v))
		}
	case prAttachMethod:
		if len(v) >= 4 {
			a.method = binary.LittleEndian.Uint32(v)
		}
	case prAttachDataObj:
		if !a.hasData && a.method == attachByValue {
			a.data, a.hasData = v, true
		}
	}
}

// mapiProps reads an encoded MAPI property list (MS-OXTNEF 2.1.3.5) and
// hands fn each single value (the first of a multiple one).
func mapiProps(b []byte, fn func(id, typ uint16, v []byte)) error {
	r := &tnefReader{b: b}
	count := r.u32()
	if count > maxMAPIProps {
		return fmt.Errorf("%w: %d properties", errTNEF, count)
	}
	for range count {
		typ, id := r.u16(), r.u16()
		if id >= 0x8000 {
			// A named property: its GUID and its name or number.
			r.skip(16)
			if kind := r.u32(); kind == 0 {
				r.skip(4)
			} else {
				r.skip(pad4(int(r.u32())))
			}
		}
		multi := typ&0x1000 != 0
		base := typ &^ 0x1000
		n := uint32(1)
		variable := base == ptString || base == ptUnicode || base == 0x0102 || base == 0x000d
		if multi || variable {
			n = r.u32()
		}
		if n > maxMAPIValues {
			return fmt.Errorf("%w: %d values", errTNEF, n)
		}
		for i := range n {
			var v []byte
			if variable {
				size := int(r.u32())
				v = r.take(size)
				r.skip(pad4(size) - size)
			} else {
				size, ok := mapiFixedSize[base]
				if !ok {
					return fmt.Errorf("%w: property type %#x", errTNEF, typ)
				}
				v = r.take(size)
				r.skip(pad4(size) - size)
			}
			if r.err != nil {
				return r.err
			}
			if i == 0 {
				if base == 0x000d && len(v) >= 16 {
					v = v[16:] // an object starts with its interface id
				}
				fn(id, base, v)
			}
		}
	}
	return r.err
}

// mapiFixedSize are the sizes of the fixed-size MAPI types.
var mapiFixedSize = map[uint16]int{0x0001: 0, 0x0002: 2, 0x0003: 4, 0x0004: 4, 0x0005: 8, 0x0006: 8, 0x0007: 8, 0x000a: 4, 0x000b: 2, 0x0014: 8, 0x0040: 8, 0x0048: 16}

func pad4(n int) int { return (n + 3) &^ 3 }

// tnefReader reads little-endian values, remembering the first overrun.
type tnefReader struct {
	b   []byte
	err error
}

func (r *tnefReader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: property list cut short", errTNEF)
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *tnefReader) skip(n int) { r.take(n) }

func (r *tnefReader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *tnefReader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func trimNUL(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u))
}

// codepageCharset names the charset of a Windows code page.
func codepageCharset(cp uint32) string {
	switch cp {
	case 65001:
		return "utf-8"
	case 20127:
		return "us-ascii"
	}
	return "cp" + strconv.FormatUint(uint64(cp), 10)
}

// tnef unpacks a winmail.dat: its attachments become files, its body a
// fallback body. One that cannot be read, or holds items that are not
// files (embedded Outlook items, OLE objects), is kept as a file too.
func (wk *walker) tnef(part *enmime.Part) {
	t, err := readTNEF(part.Content)
	if err != nil {
		wk.w.add("winmail.dat kept as an attachment: " + err.Error())
		wk.file(part, "winmail.dat")
		return
	}
	const what = "winmail.dat"
	for _, a := range t.attachments {
		if !a.hasData || a.method != attachByValue {
			t.skipped++
			continue
		}
		var name string
		switch {
		case a.longNameUTF8:
			name = string(a.longName)
		case len(a.longName) > 0:
			name = wk.cs.decode(a.longName, t.codepage, false, what, wk.w)
		default:
			name = wk.cs.decode(a.title, t.codepage, false, what, wk.w)
		}
		ct, _, _, _ := mediatype.Parse(a.mimeTag)
		if ct == "" {
			ct, _, _, _ = mediatype.Parse(http.DetectContentType(a.data))
		}
		wk.out.files = append(wk.out.files, file{name: name, contentType: strings.ToLower(ct), content: a.data})
	}
	var pc piece
	switch {
	case t.bodyUnicode != "":
		pc.text, pc.hasText = t.bodyUnicode, true
	case len(t.body) > 0:
		pc.text, pc.hasText = wk.cs.decode(t.body, t.codepage, false, what, wk.w), true
	}
	switch {
	case len(t.html) > 0:
		pc.html = wk.cs.decode(t.html, t.htmlCPID, true, what, wk.w)
	case len(t.rtf) > 0:
		if rtf, err := decompressRTF(t.rtf); err != nil {
			wk.w.add("winmail.dat: RTF body: " + err.Error())
		} else if text, html := rtfText(rtf, wk.cs, wk.w); html != "" {
			pc.html = html
		} else if !pc.hasText {
			pc.text, pc.hasText = text, true
		}
	}
	if pc.hasText || pc.html != "" {
		wk.out.fallback = append(wk.out.fallback, pc)
	}
	if t.skipped > 0 {
		wk.w.add(fmt.Sprintf("winmail.dat holds %d item(s) that are not files; kept as an attachment", t.skipped))
		wk.file(part, "winmail.dat")
	}
}
