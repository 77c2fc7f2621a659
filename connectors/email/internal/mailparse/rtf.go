package mailparse

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// rtfPrebuf fills the dictionary of compressed RTF before decompression
// starts (MS-OXRTFCP section 2.1.2.1).
const rtfPrebuf = `{\rtf1\ansi\mac\deff0\deftab720{\fonttbl;}{\f0\fnil \froman \fswiss \fmodern \fscript \fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\colortbl\red0\green0\blue0` + "\r\n" + `\par \pard\plain\f0\fs20\b\i\u\tab\tx`

// Compressed RTF types (MS-OXRTFCP section 2.2.3.1).
const (
	rtfCompressed   = 0x75465a4c // "LZFu"
	rtfUncompressed = 0x414c454d // "MELA"
)

// decompressRTF decompresses PR_RTF_COMPRESSED (MS-OXRTFCP). The CRC is
// not checked: a reader shows what it can.
func decompressRTF(b []byte) ([]byte, error) {
	if len(b) < 16 {
		return nil, fmt.Errorf("compressed RTF header cut short")
	}
	size := int(min(binary.LittleEndian.Uint32(b[4:]), maxRTFBytes))
	data := b[16:]
	if n := binary.LittleEndian.Uint32(b); n >= 12 && int64(n)-12 < int64(len(data)) {
		data = data[:n-12]
	}
	switch binary.LittleEndian.Uint32(b[8:]) {
	case rtfUncompressed:
		return data[:min(size, len(data))], nil
	case rtfCompressed:
	default:
		return nil, fmt.Errorf("unknown compressed RTF type %#x", binary.LittleEndian.Uint32(b[8:]))
	}
	var dict [4096]byte
	copy(dict[:], rtfPrebuf)
	wp := len(rtfPrebuf)
	out := make([]byte, 0, min(size, 1<<20))
	put := func(c byte) {
		out = append(out, c)
		dict[wp] = c
		wp = (wp + 1) % len(dict)
	}
	for i := 0; i < len(data) && len(out) < size; {
		flags := data[i]
		i++
		for bit := 0; bit < 8 && len(out) < size; bit++ {
			if flags&(1<<bit) == 0 {
				if i >= len(data) {
					return out, nil
				}
				put(data[i])
				i++
				continue
			}
			if i+1 >= len(data) {
				return out, nil
			}
			ref := int(data[i])<<8 | int(data[i+1])
			i += 2
			off, n := ref>>4, ref&0xf+2
			if off == wp {
				return out, nil // the end marker
			}
			for k := range n {
				put(dict[(off+k)%len(dict)])
			}
		}
	}
	return out, nil
}

// rtfSkipped are the RTF destinations that hold no text a reader sees.
var rtfSkipped = map[string]bool{
	"fonttbl": true, "colortbl": true, "stylesheet": true, "info": true, "pict": true, "object": true,
	"header": true, "footer": true, "headerl": true, "headerr": true, "footerl": true, "footerr": true,
	"fldinst": true, "themedata": true, "colorschememapping": true, "latentstyles": true, "datastore": true,
	"xmlnstbl": true, "listtable": true, "listoverridetable": true, "rsidtbl": true, "generator": true,
	"filetbl": true, "revtbl": true, "pgdsctbl": true, "mmathPr": true, "xmlopen": true,
}

// rtfSymbols are control words that stand for a character.
var rtfSymbols = map[string]string{
	"par": "\n", "line": "\n", "tab": "\t", "emdash": "—", "endash": "–", "lquote": "‘", "rquote": "’",
	"ldblquote": "“", "rdblquote": "”", "bullet": "•", "emspace": " ", "enspace": " ", "sect": "\n", "page": "\n",
}

// rtfText returns the text of an RTF document, or its HTML when it
// encapsulates HTML (\fromhtml, MS-OXRTFEX), as Outlook does for HTML
// mail. Bytes escaped with \' are in the document's code page (\ansicpg).
func rtfText(rtf []byte, cs *charsets, w *warnings) (text, html string) {
	type state struct {
		skip, htmlrtf, htmltag bool
		uc                     int
	}
	var (
		st       = state{uc: 1}
		stack    []state
		fromHTML bool
		codepage = "windows-1252"
		star     bool
		skipN    int // characters to skip after \u, its fallback
		pending  []byte
		txt, htm strings.Builder
	)
	flush := func() {
		if len(pending) == 0 {
			return
		}
		s := cs.decode(pending, codepage, false, "winmail.dat RTF body", w)
		pending = pending[:0]
		if fromHTML {
			htm.WriteString(s)
		} else {
			txt.WriteString(s)
		}
	}
	shown := func() bool {
		return !st.skip && (!fromHTML || st.htmltag || !st.htmlrtf)
	}
	emitByte := func(c byte) {
		if skipN > 0 {
			skipN--
			return
		}
		if shown() {
			pending = append(pending, c)
		}
	}
	emit := func(s string) {
		if shown() {
			flush()
			if fromHTML {
				htm.WriteString(s)
			} else {
				txt.WriteString(s)
			}
		}
	}
	for i := 0; i < len(rtf); {
		c := rtf[i]
		switch {
		case c == '{':
			if len(stack) > 1000 {
				return "", ""
			}
			stack = append(stack, st)
			i++
		case c == '}':
			flush()
			if n := len(stack); n > 0 {
				st, stack = stack[n-1], stack[:n-1]
			}
			i++
		case c == '\r' || c == '\n':
			i++
		case c != '\\':
			emitByte(c)
			i++
		case i+1 >= len(rtf):
			i++
		case rtf[i+1] == '\'':
			if i+3 < len(rtf) && isHex(rtf[i+2]) && isHex(rtf[i+3]) {
				emitByte(unhex(rtf[i+2])<<4 | unhex(rtf[i+3]))
			}
			i += 4
		case rtf[i+1] == '*':
			star = true
			i += 2
		case isASCIILetter(rtf[i+1]):
			j := i + 1
			for j < len(rtf) && isASCIILetter(rtf[j]) {
				j++
			}
			word := string(rtf[i+1 : j])
			k := j
			if k < len(rtf) && rtf[k] == '-' {
				k++
			}
			for k < len(rtf) && rtf[k] >= '0' && rtf[k] <= '9' && k-j < 10 {
				k++
			}
			param, hasParam := 0, k > j
			if hasParam {
				param, _ = strconv.Atoi(string(rtf[j:k]))
			}
			if k < len(rtf) && rtf[k] == ' ' {
				k++
			}
			i = k
			switch {
			case star && word == "htmltag":
				st.htmltag = true
			case star || rtfSkipped[word]:
				st.skip = true
			case word == "fromhtml":
				fromHTML = true
			case word == "htmlrtf":
				st.htmlrtf = !hasParam || param != 0
			case word == "ansicpg" && hasParam:
				flush()
				codepage = codepageCharset(uint32(param))
			case word == "uc" && hasParam:
				st.uc = param
			case word == "u" && hasParam:
				if param < 0 {
					param += 65536
				}
				emit(string(rune(param)))
				skipN = st.uc
			case rtfSymbols[word] != "":
				emit(rtfSymbols[word])
			}
			star = false
		default:
			// A control symbol: \\ \{ \} are literal, \~ a no-break
			// space, a backslash before a line end a paragraph.
			switch s := rtf[i+1]; s {
			case '\\', '{', '}':
				emitByte(s)
			case '~':
				emit("\u00a0")
			case '\n', '\r':
				emit("\n")
			}
			i += 2
		}
	}
	flush()
	if fromHTML {
		return "", htm.String()
	}
	return strings.TrimSpace(txt.String()), ""
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
