package domain

import "testing"

func TestTranslationTarget(t *testing.T) {
	for _, tc := range []struct {
		name     string
		source   string
		audience [][]string
		want     string
		ok       bool
	}{
		{"unknown language", "", [][]string{{"en"}}, "", false},
		{"a reader reads it", "de", [][]string{{"en"}, {"fr", "de"}}, "", false},
		{"nobody declares a language", "de", [][]string{{}, nil}, "", false},
		{"no reader", "de", nil, "", false},
		{"the one reader's first language", "de", [][]string{{"fr"}}, "fr", true},
		{"the language most readers declare", "de", [][]string{{"fr", "en"}, {"en"}, {"es"}}, "en", true},
		{"a tie goes to the first in order", "de", [][]string{{"fr"}, {"en"}}, "en", true},
		{"a language listed twice by one reader counts once", "de", [][]string{{"fr", "fr"}, {"en"}, {"en", "es"}}, "en", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := TranslationTarget(tc.source, tc.audience)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("TranslationTarget(%q, %v) = %q, %v; want %q, %v", tc.source, tc.audience, got, ok, tc.want, tc.ok)
			}
		})
	}
}
