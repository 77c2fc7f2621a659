package outbound

import (
	"strings"
	"unicode/utf16"
)

// Encodings of an SMS body.
const (
	// EncodingGSM7 is the GSM 03.38 default alphabet, 7 bits a character,
	// with its extension table (two septets a character).
	EncodingGSM7 = "GSM-7"
	// EncodingUCS2 is UTF-16 in practice: 16 bits a code unit, two units
	// for a character outside the Basic Multilingual Plane (most emoji).
	EncodingUCS2 = "UCS-2"
)

// Segment capacities (3GPP TS 23.040): a single SMS carries 140 octets; a
// concatenated one spends 6 of them on its user data header.
const (
	gsm7Single = 160
	gsm7Multi  = 153
	ucs2Single = 70
	ucs2Multi  = 67
)

// gsm7Basic is the GSM 03.38 default alphabet, without the escape (0x1B).
const gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsm7Extension holds the characters of the extension table, each sent as
// the escape septet followed by its own.
const gsm7Extension = "\f^{}\\[~]|€"

// Segmentation says how an SMS body travels.
type Segmentation struct {
	// Encoding is EncodingGSM7 or EncodingUCS2.
	Encoding string
	// Units is the body's length in the encoding: septets for GSM-7,
	// UTF-16 code units for UCS-2.
	Units int
	// Segments is how many SMS the body takes, each billed apiece. 0 for
	// an empty body.
	Segments int
}

// Segment computes how body is sent: in GSM-7 if every character is in
// the GSM 03.38 alphabet or its extension table, else in UCS-2; one segment
// of 160 septets or 70 units, or several of 153 septets or 67 units. A
// character is never split across two segments: neither an escaped GSM-7
// character (2 septets) nor a surrogate pair (an emoji, 2 units), so a
// segment may hold one unit less than its capacity.
//
// It assumes what Twilio does with SmartEncoded off (the default): no
// character is replaced by a GSM-7 look-alike.
func Segment(body string) Segmentation {
	if body == "" {
		return Segmentation{Encoding: EncodingGSM7}
	}
	widths, gsm := gsm7Widths(body)
	s := Segmentation{Encoding: EncodingGSM7}
	single, multi := gsm7Single, gsm7Multi
	if !gsm {
		widths = widths[:0]
		for _, r := range body {
			widths = append(widths, max(utf16.RuneLen(r), 1))
		}
		s.Encoding = EncodingUCS2
		single, multi = ucs2Single, ucs2Multi
	}
	for _, w := range widths {
		s.Units += w
	}
	if s.Units <= single {
		s.Segments = 1
		return s
	}
	// Fill each segment greedily without splitting a character.
	s.Segments = 1
	used := 0
	for _, w := range widths {
		if used+w > multi {
			s.Segments++
			used = 0
		}
		used += w
	}
	return s
}

// gsm7Widths returns the septets of each character of body, and false if
// one is not in GSM-7.
func gsm7Widths(body string) ([]int, bool) {
	widths := make([]int, 0, len(body))
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			widths = append(widths, 1)
		case strings.ContainsRune(gsm7Extension, r):
			widths = append(widths, 2)
		default:
			return widths, false
		}
	}
	return widths, true
}
