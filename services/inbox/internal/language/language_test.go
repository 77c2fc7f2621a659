package language

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pemistahl/lingua-go"
	"github.com/stretchr/testify/require"
)

type labelled struct{ lang, text string }

// readLabelled reads testdata/labelled.tsv: language<TAB>text per line.
func readLabelled(t testing.TB) []labelled {
	t.Helper()
	f, err := os.Open("testdata/labelled.tsv")
	require.NoError(t, err)
	defer f.Close()
	var set []labelled
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lang, text, ok := strings.Cut(sc.Text(), "\t")
		require.True(t, ok, "line %q has no tab", sc.Text())
		set = append(set, labelled{lang, text})
	}
	require.NoError(t, sc.Err())
	return set
}

func TestLabelledAccuracy(t *testing.T) {
	set := readLabelled(t)
	d := New()
	perLanguage := map[string]int{}
	right, empty, wrong := 0, 0, 0
	for _, m := range set {
		perLanguage[m.lang]++
		words := len(strings.Fields(m.text))
		require.True(t, words >= 3 && words <= 25, "%q has %d words", m.text, words)
		switch got := d.Detect(m.text); got {
		case m.lang:
			right++
		case "":
			empty++
			t.Logf("empty: %s %q", m.lang, m.text)
		default:
			wrong++
			t.Logf("wrong: %s %q detected as %s", m.lang, m.text, got)
		}
	}
	for _, code := range DefaultCodes() {
		require.GreaterOrEqual(t, perLanguage[code], 20, "labelled messages in %s", code)
	}
	total := len(set)
	accuracy := float64(right) / float64(total)
	t.Logf("labelled: %d messages, %d right (accuracy %.3f), %d empty, %d wrong", total, right, accuracy, empty, wrong)
	require.GreaterOrEqual(t, accuracy, 0.9)
	require.LessOrEqual(t, float64(wrong)/float64(total), 0.05, "a wrong language is worse than none")
}

func TestDetect(t *testing.T) {
	d := New()
	for _, tc := range []struct {
		name, text, want string
	}{
		{"french", "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?", "fr"},
		{"english", "Hello, my order still has not arrived, could you please check it?", "en"},
		{"spanish", "Hola, mi pedido todavía no ha llegado, ¿pueden comprobarlo por favor?", "es"},
		{"german", "Hallo, meine Bestellung ist immer noch nicht angekommen, bitte prüfen.", "de"},
		{"with order number and email", "Commande 48213-FR : je n'ai rien reçu, écrivez-moi à jean@example.com", "fr"},
		{"long email", strings.Repeat("Guten Tag, leider ist meine Bestellung noch immer nicht bei mir angekommen. ", 200), "de"},
		{"empty", "", ""},
		{"spaces", "   ", ""},
		{"short word", "merci", ""},
		{"ok", "ok 👍", ""},
		{"ok repeated", "OK", ""},
		{"emoji only", "👍👍😀🙏", ""},
		{"digits only", "4821 3390 12", ""},
		{"punctuation", "?!?! ...", ""},
		{"reference", "SKU-2231 NL91ABNA0417164300", ""},
		{"link", "https://example.com/orders/48213", ""},
		{"email address", "jean.dupont@example.com", ""},
		{"product name", "Nike Air Max", ""},
		{"test", "test test test", ""},
		{"carriers", "DHL UPS FedEx", ""},
		{"other script", "Здравствуйте, мой заказ до сих пор не пришёл", ""},
		{"undeclared language", "Dzień dobry, moja przesyłka jeszcze nie dotarła", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, d.Detect(tc.text), "Detect(%q)", tc.text)
		})
	}
}

// TestForeignLanguages detects messages in languages New does not detect:
// restricted to its own, lingua would name one of them for most (32 of
// these 50); the guard makes them empty.
func TestForeignLanguages(t *testing.T) {
	foreign := []labelled{
		{"pl", "Dzień dobry, moja przesyłka jeszcze nie dotarła"},
		{"pl", "Jak mogę zmienić hasło do konta?"},
		{"pl", "Zamówienie przyszło uszkodzone, co mam zrobić?"},
		{"pl", "Chciałbym anulować subskrypcję."},
		{"pl", "Nie otrzymałem jeszcze zwrotu pieniędzy."},
		{"sv", "Hej, min beställning har fortfarande inte kommit"},
		{"sv", "Hur ändrar jag mitt lösenord?"},
		{"sv", "Varan kom trasig, vad ska jag göra?"},
		{"sv", "Jag vill säga upp mitt abonnemang."},
		{"sv", "Jag har inte fått min återbetalning än."},
		{"da", "Hej, min ordre er stadig ikke ankommet"},
		{"da", "Hvordan ændrer jeg min adgangskode?"},
		{"da", "Varen kom i stykker, hvad skal jeg gøre?"},
		{"da", "Jeg vil gerne opsige mit abonnement."},
		{"nb", "Hei, bestillingen min har ikke kommet ennå"},
		{"nb", "Hvordan endrer jeg passordet mitt?"},
		{"ro", "Bună ziua, comanda mea nu a sosit încă"},
		{"ro", "Cum îmi schimb parola?"},
		{"ro", "Produsul a ajuns deteriorat, ce trebuie să fac?"},
		{"ro", "Vreau să anulez abonamentul."},
		{"cs", "Dobrý den, moje zásilka ještě nedorazila"},
		{"cs", "Jak si změním heslo?"},
		{"cs", "Zboží přišlo poškozené, co mám dělat?"},
		{"sk", "Dobrý deň, moja objednávka ešte neprišla"},
		{"ca", "Hola, la meva comanda encara no ha arribat"},
		{"ca", "Com puc canviar la contrasenya?"},
		{"ca", "El producte ha arribat trencat, què he de fer?"},
		{"ca", "Vull cancel·lar la meva subscripció."},
		{"tr", "Merhaba, siparişim hâlâ gelmedi"},
		{"tr", "Şifremi nasıl değiştirebilirim?"},
		{"tr", "Ürün kırık geldi, ne yapmalıyım?"},
		{"fi", "Hei, tilaukseni ei ole vieläkään saapunut"},
		{"fi", "Miten vaihdan salasanani?"},
		{"hu", "Jó napot, a rendelésem még nem érkezett meg"},
		{"hu", "Hogyan változtathatom meg a jelszavamat?"},
		{"hr", "Bok, moja narudžba još nije stigla"},
		{"hr", "Kako mogu promijeniti lozinku?"},
		{"lt", "Laba diena, mano užsakymas dar neatkeliavo"},
		{"lv", "Labdien, mans pasūtījums vēl nav pienācis"},
		{"et", "Tere, minu tellimus pole ikka veel kohale jõudnud"},
		{"af", "Hallo, my bestelling het nog nie aangekom nie"},
		{"af", "Hoe kan ek my wagwoord verander?"},
		{"id", "Halo, pesanan saya belum sampai"},
		{"id", "Bagaimana cara mengganti kata sandi saya?"},
		{"eu", "Kaixo, nire eskaera ez da oraindik iritsi"},
		{"ga", "Dia duit, níor tháinig m'ordú fós"},
		{"sq", "Përshëndetje, porosia ime ende nuk ka arritur"},
		{"sl", "Pozdravljeni, moje naročilo še ni prispelo"},
		{"vi", "Xin chào, đơn hàng của tôi vẫn chưa đến"},
		{"cy", "Helo, dydy fy archeb heb gyrraedd eto"},
	}
	d := New()
	wrong := 0
	for _, m := range foreign {
		if got := d.Detect(m.text); got != "" {
			wrong++
			t.Logf("wrong: %s %q detected as %s", m.lang, m.text, got)
		}
	}
	t.Logf("foreign: %d messages, %d given a language", len(foreign), wrong)
	require.LessOrEqual(t, float64(wrong)/float64(len(foreign)), 0.05, "a wrong language is worse than none")
}

func TestNewWith(t *testing.T) {
	for _, tc := range []struct {
		name      string
		codes     []string
		want      []string
		err       error
		errNaming string
	}{
		{"default", DefaultCodes(), []string{"de", "en", "es", "fr", "it", "nl", "pt"}, nil, ""},
		{"two", []string{"es", "pt"}, []string{"es", "pt"}, nil, ""},
		{"duplicates", []string{"pl", "de", "pl"}, []string{"de", "pl"}, nil, ""},
		{"unknown", []string{"fr", "xx"}, nil, ErrUnknownLanguage, `"xx"`},
		{"upper case", []string{"FR", "de"}, nil, ErrUnknownLanguage, `"FR"`},
		{"three letters", []string{"fra", "de"}, nil, ErrUnknownLanguage, `"fra"`},
		{"undetectable", []string{"fr", "kw"}, nil, ErrUndetectable, `"kw"`},
		{"one", []string{"fr"}, nil, nil, "at least two"},
		{"one twice", []string{"fr", "fr"}, nil, nil, "at least two"},
		{"none", nil, nil, nil, "at least two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewWith(tc.codes)
			if tc.errNaming != "" {
				require.Error(t, err)
				require.Nil(t, d)
				require.ErrorContains(t, err, tc.errNaming)
				if tc.err != nil {
					require.ErrorIs(t, err, tc.err)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d.Languages())
		})
	}
}

func TestNewWithDetectsDeclaredLanguages(t *testing.T) {
	d, err := NewWith([]string{"pl", "cs", "en"})
	require.NoError(t, err)
	for text, want := range map[string]string{
		"Dzień dobry, moja przesyłka jeszcze nie dotarła":    "pl",
		"Dobrý den, moje zásilka ještě nedorazila":           "cs",
		"Hello, my parcel has not arrived yet, please check": "en",
	} {
		require.Equal(t, want, d.Detect(text), "Detect(%q)", text)
	}
}

func TestValid(t *testing.T) {
	d := New()
	for code, want := range map[string]bool{
		"fr": true, "en": true, "kw": true, "zu": true, "bh": true,
		"xx": false, "fra": false, "": false, "FR": false, "sh": false, " fr": false,
	} {
		require.Equal(t, want, d.Valid(code), "Valid(%q)", code)
		require.Equal(t, want, Known(code), "Known(%q)", code)
	}
	require.Len(t, strings.Fields(iso6391), 184)
	for _, l := range lingua.AllLanguages() {
		code := strings.ToLower(l.IsoCode639_1().String())
		require.True(t, d.Valid(code), "lingua's %s (%s)", l, code)
	}
}

// TestConcurrentDetect detects from many goroutines at once (run it with
// -race; run alone, the goroutines also load the models concurrently).
func TestConcurrentDetect(t *testing.T) {
	set := readLabelled(t)
	d, err := NewWith([]string{"en", "fr", "de"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	results := make([][]string, 8)
	for g := range results {
		wg.Go(func() {
			for _, m := range set {
				results[g] = append(results[g], d.Detect(m.text))
			}
		})
	}
	wg.Wait()
	for g := range results {
		require.Equal(t, results[0], results[g], "goroutine %d", g)
	}
}

// BenchmarkMemory reports the memory taken by building a detector of the
// default languages and detecting once, in the mode named by
// SB_LANGUAGE_MEMORY: "detector" (New, the default), or lingua alone in
// high-accuracy mode ("high"), preloaded ("preloaded") or in low-accuracy
// mode ("low"). lingua keeps its models for the life of the process: run
// it alone, once per mode:
//
//	SB_LANGUAGE_MEMORY=high go test -run '^$' -bench BenchmarkMemory -benchtime 1x ./internal/language/
func BenchmarkMemory(b *testing.B) {
	mode := os.Getenv("SB_LANGUAGE_MEMORY")
	if mode == "" {
		mode = "detector"
	}
	const text = "Bonjour, ma commande n'est pas arrivée"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	var detect func(string) string
	if mode == "detector" {
		detect = New().Detect
	} else {
		var languages []lingua.Language
		for _, code := range DefaultCodes() {
			languages = append(languages, lingua.GetLanguageFromIsoCode639_1(lingua.GetIsoCode639_1FromValue(code)))
		}
		lb := lingua.NewLanguageDetectorBuilder().FromLanguages(languages...).WithMinimumRelativeDistance(minRelativeDistance)
		switch mode {
		case "high":
		case "preloaded":
			lb = lb.WithPreloadedLanguageModels()
		case "low":
			lb = lb.WithLowAccuracyMode()
		default:
			b.Fatalf("SB_LANGUAGE_MEMORY=%q: want detector, high, preloaded or low", mode)
		}
		ld := lb.Build()
		detect = func(s string) string {
			l, _ := ld.DetectLanguageOf(s)
			return strings.ToLower(l.IsoCode639_1().String())
		}
	}
	built := time.Since(start)
	start = time.Now()
	got := detect(text)
	first := time.Since(start)
	runtime.ReadMemStats(&after)
	heap, sys := after.HeapAlloc, after.Sys
	runtime.GC()
	runtime.ReadMemStats(&after)
	const mib = 1 << 20
	b.Logf("%s: detected %q; build %v, first detect %v", mode, got, built.Round(time.Millisecond), first.Round(time.Millisecond))
	for b.Loop() {
		detect(text)
	}
	b.ReportMetric(float64(heap)/mib, "heap-MiB")
	b.ReportMetric(float64(after.HeapAlloc)/mib, "heap-after-gc-MiB")
	b.ReportMetric(float64(sys)/mib, "sys-MiB")
}

func BenchmarkDetect(b *testing.B) {
	set := readLabelled(b)
	d := New()
	for _, m := range set {
		d.Detect(m.text) // loads the models
	}
	b.Run("short", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			d.Detect(set[i%len(set)].text)
		}
	})
	b.Run("long", func(b *testing.B) {
		text := strings.Repeat("Guten Tag, leider ist meine Bestellung noch immer nicht bei mir angekommen. ", 200)
		b.ReportAllocs()
		for b.Loop() {
			d.Detect(text)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for i := 0; pb.Next(); i++ {
				d.Detect(set[i%len(set)].text)
			}
		})
	})
}
