package domain

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestKnowledgeEntrySpecCheck(t *testing.T) {
	got, err := KnowledgeEntrySpec{Title: "Délai", Body: "3 jours", Keywords: []string{" livraison ", "Livraison", "délai"}}.Check()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Keywords, "|") != "livraison|délai" {
		t.Errorf("keywords %q: want trimmed, each once ignoring case, in order", got.Keywords)
	}
	many := make([]string, MaxKnowledgeKeywords+1)
	for i := range many {
		many[i] = "k"
	}
	for _, c := range []struct {
		spec  KnowledgeEntrySpec
		field string
	}{
		{KnowledgeEntrySpec{Title: " ", Body: "b"}, "title"},
		{KnowledgeEntrySpec{Title: strings.Repeat("t", MaxKnowledgeTitle+1), Body: "b"}, "title"},
		{KnowledgeEntrySpec{Title: "t", Body: "a\x00b"}, "body"},
		{KnowledgeEntrySpec{Title: "t", Body: "\xff"}, "body"},
		{KnowledgeEntrySpec{Title: "t", Body: strings.Repeat("b", MaxKnowledgeBody+1)}, "body"},
		{KnowledgeEntrySpec{Title: "t", Body: "b", Keywords: many}, "keywords"},
		{KnowledgeEntrySpec{Title: "t", Body: "b", Keywords: []string{"ok", ""}}, "keywords[1]"},
		{KnowledgeEntrySpec{Title: "t", Body: "b", Keywords: []string{strings.Repeat("k", MaxKnowledgeKeyword+1)}}, "keywords[0]"},
	} {
		_, err := c.spec.Check()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want an error on %s", c.spec, err, c.field)
		}
	}
}

func TestQueryTermsAndStems(t *testing.T) {
	got := QueryTerms("Bonjour, je voudrais être REMBOURSÉ de ma commande ref1234 !\nThanks, the refund please")
	want := "remboursé|commande|ref1234|refund"
	if strings.Join(got, "|") != want {
		t.Errorf("QueryTerms = %q, want %q (stopwords and one-letter words out, lower case, accents kept)", got, want)
	}
	if got := QueryTerms("rembourse\u0301"); len(got) != 1 || got[0] != "remboursé" {
		t.Errorf("a decomposed accent splits the word: %q", got)
	}
	if len(QueryTerms(strings.Repeat("alpha beta gamma delta epsilon ", 2)+"a b c d e f g h i j k l m n o p")) != 5 {
		t.Error("a word counted twice")
	}
	words := strings.Fields("un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze")
	if n := len(QueryTerms(strings.Join(words, " "))); n != MaxQueryTerms {
		t.Errorf("%d terms, want at most %d", n, MaxQueryTerms)
	}
	for _, pair := range [][2]string{{"remboursement", "Remboursé"}, {"rembourser", "remboursement"}, {"delivery", "delivered"}, {"Égaré", "egare"}} {
		if Stem(pair[0]) != Stem(pair[1]) {
			t.Errorf("Stem(%q) = %q, Stem(%q) = %q: want one stem", pair[0], Stem(pair[0]), pair[1], Stem(pair[1]))
		}
	}
	if QueryText([]string{"Où est mon colis ?\n> Le 3 mars, vous avez écrit :\n> ancien texte"}) != "Où est mon colis ?\n" {
		t.Error("quoted lines are searched")
	}
	if long := QueryText([]string{strings.Repeat("é", 1500)}); len(long) > 2000 || !strings.HasPrefix(strings.Repeat("é", 1000), long) {
		t.Errorf("QueryText cut %d bytes, or cut a character", len(long))
	}
}

func TestScores(t *testing.T) {
	// "colis" is common, "cassé" rare: sharing the rare word counts more.
	q := NewQuery([]string{"colis", "cassé"}, map[string]float64{"colis": 0.2})
	rare := q.ScorePastAnswer("Mon vase est cassé")
	common := q.ScorePastAnswer("Mon colis est en retard")
	if rare <= common {
		t.Errorf("rare word %v, common word %v: the rare one should weigh more", rare, common)
	}
	if both := q.ScorePastAnswer("colis cassé"); both != PastAnswerWeight {
		t.Errorf("a past question that is the question scores %v, want %v", both, PastAnswerWeight)
	}
	if s := q.ScoreEntry("Colis cassé", nil, "Envoyez une photo."); s != 1 {
		t.Errorf("an entry whose title is the question scores %v, want 1", s)
	}
	if inTitle, inBody := q.ScoreEntry("Colis cassé", nil, "x"), q.ScoreEntry("Photo", nil, "colis cassé"); inTitle <= inBody {
		t.Errorf("title %v, body %v: the title should count more", inTitle, inBody)
	}
	if q.ScoreEntry("Horaires", []string{"magasin"}, "Ouvert de 9 h à 19 h") != 0 {
		t.Error("an entry sharing nothing scores")
	}
	if !NewQuery(nil, nil).Empty() || q.Empty() {
		t.Error("Empty is wrong")
	}
}

func TestRank(t *testing.T) {
	cands := []Ranked{
		{Score: 0.5, Text: "B"},
		{Score: 0.9, Text: "A"},
		{Score: 0.7, Text: " a "}, // the same text as A
		{Score: 0.1, Text: "weak"},
		{Score: 0.5, Text: "C"},
	}
	got := Rank(cands, 10)
	if want := []int{1, 0, 4}; !slices.Equal(got, want) {
		t.Errorf("Rank = %v, want %v (best first, ties in order, repeats and weak ones out)", got, want)
	}
	if got := Rank(cands, 1); !slices.Equal(got, []int{1}) {
		t.Errorf("Rank(limit 1) = %v", got)
	}
}
