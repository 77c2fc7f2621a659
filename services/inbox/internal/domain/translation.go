package domain

import "sort"

// TranslationTarget decides whether a customer's message in language
// source needs translating for its readers, whose declared languages are
// audience (one list per agent), and into what (ADR 20). It needs none
// when the language is unknown, when one reader declares it, or when no
// reader declares any language (nobody said what they read). Otherwise
// the target is the language most readers declare, the first in
// alphabetical order on a tie.
func TranslationTarget(source string, audience [][]string) (string, bool) {
	if source == "" {
		return "", false
	}
	count := map[string]int{}
	for _, langs := range audience {
		seen := map[string]bool{}
		for _, l := range langs {
			if l == source {
				return "", false
			}
			if l != "" && !seen[l] {
				seen[l] = true
				count[l]++
			}
		}
	}
	if len(count) == 0 {
		return "", false
	}
	langs := make([]string, 0, len(count))
	for l := range count {
		langs = append(langs, l)
	}
	sort.Slice(langs, func(i, j int) bool {
		if count[langs[i]] != count[langs[j]] {
			return count[langs[i]] > count[langs[j]]
		}
		return langs[i] < langs[j]
	})
	return langs[0], true
}
