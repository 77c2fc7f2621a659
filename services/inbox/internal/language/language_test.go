package language

import "testing"

func TestDetect(t *testing.T) {
	for text, want := range map[string]string{
		"Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?": "fr",
		"Hello, my order still has not arrived, could you please check it?":       "en",
		"Hola, mi pedido todavía no ha llegado, ¿pueden comprobarlo por favor?":   "es",
		"Hallo, meine Bestellung ist immer noch nicht angekommen, bitte prüfen.":  "de",
		"merci": "",
		"ok 👍":  "",
		"   ":   "",
	} {
		if got := New().Detect(text); got != want {
			t.Errorf("Detect(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestValid(t *testing.T) {
	for code, want := range map[string]bool{"fr": true, "en": true, "xx": false, "fra": false, "": false, "FR": false} {
		if got := New().Valid(code); got != want {
			t.Errorf("Valid(%q) = %v, want %v", code, got, want)
		}
	}
}
