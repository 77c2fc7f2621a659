package outbound

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGSM7Tables(t *testing.T) {
	if n := utf8.RuneCountInString(gsm7Basic); n != 127 {
		t.Errorf("the basic GSM-7 alphabet has %d characters, want 127 (128 less the escape)", n)
	}
	seen := map[rune]bool{}
	for _, r := range gsm7Basic + gsm7Extension {
		if seen[r] {
			t.Errorf("%q is in the GSM-7 tables twice", r)
		}
		seen[r] = true
	}
}

func TestSegment(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Segmentation
	}{
		{"empty", "", Segmentation{EncodingGSM7, 0, 0}},
		{"short", "Hello!", Segmentation{EncodingGSM7, 6, 1}},
		{"an accent outside GSM-7", "Ça coûte 5 €?", Segmentation{EncodingUCS2, 13, 1}}, // û
		{"GSM-7 basic accents", "Déjà vu à Évian", Segmentation{EncodingGSM7, 15, 1}},
		{"160 septets", strings.Repeat("a", 160), Segmentation{EncodingGSM7, 160, 1}},
		{"161 septets", strings.Repeat("a", 161), Segmentation{EncodingGSM7, 161, 2}},
		{"306 septets", strings.Repeat("a", 306), Segmentation{EncodingGSM7, 306, 2}},
		{"307 septets", strings.Repeat("a", 307), Segmentation{EncodingGSM7, 307, 3}},
		{"extension table counts twice", strings.Repeat("€", 80), Segmentation{EncodingGSM7, 160, 1}},
		{"extension table over one segment", strings.Repeat("{", 81), Segmentation{EncodingGSM7, 162, 2}},
		// 152 septets then an escaped character: it does not fit in the
		// first segment's 153, which holds 152.
		{"escape not split", strings.Repeat("a", 152) + "[" + strings.Repeat("a", 10), Segmentation{EncodingGSM7, 164, 2}},
		{"escape not split, third segment", strings.Repeat("a", 152) + "[" + strings.Repeat("a", 152), Segmentation{EncodingGSM7, 306, 3}},
		{"1600 GSM-7", strings.Repeat("a", 1600), Segmentation{EncodingGSM7, 1600, 11}},
		{"UCS-2 70", strings.Repeat("ж", 70), Segmentation{EncodingUCS2, 70, 1}},
		{"UCS-2 71", strings.Repeat("ж", 71), Segmentation{EncodingUCS2, 71, 2}},
		{"UCS-2 134", strings.Repeat("ж", 134), Segmentation{EncodingUCS2, 134, 2}},
		{"UCS-2 135", strings.Repeat("ж", 135), Segmentation{EncodingUCS2, 135, 3}},
		{"one emoji makes it UCS-2", strings.Repeat("a", 100) + "🙂", Segmentation{EncodingUCS2, 102, 2}},
		{"emoji are surrogate pairs", strings.Repeat("🎉", 35), Segmentation{EncodingUCS2, 70, 1}},
		{"36 emoji", strings.Repeat("🎉", 36), Segmentation{EncodingUCS2, 72, 2}},
		// 33 emoji fill 66 units of a 67-unit segment and the 34th does
		// not fit: 33 + 33 + 1.
		{"surrogate pair not split", strings.Repeat("🎉", 67), Segmentation{EncodingUCS2, 134, 3}},
		{"joined emoji", "👩‍👩‍👧", Segmentation{EncodingUCS2, 8, 1}},
		{"CJK", "您好,您的订单已发货", Segmentation{EncodingUCS2, 10, 1}},
		{"newlines are GSM-7", "a\nb\r\nc", Segmentation{EncodingGSM7, 6, 1}},
	} {
		if got := Segment(tc.in); got != tc.want {
			t.Errorf("%s: Segment(%q) = %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}
