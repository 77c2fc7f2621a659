package seal_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/seal"
)

func newKey(t testing.TB, id string) seal.Key {
	t.Helper()
	k, err := seal.NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newKeyring(t testing.TB, active string, keys ...seal.Key) *seal.Keyring {
	t.Helper()
	k, err := seal.NewKeyring(active, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var place = seal.Place{Kind: "mailbox", Tenant: "t-1", ID: "m-1"}

func TestSealOpens(t *testing.T) {
	a := newKey(t, "a")
	k := newKeyring(t, "a", a)
	for _, plain := range []string{"hunter2", "", strings.Repeat("é", 5000), "line\nbreak"} {
		s, err := k.Seal(plain, place.AAD("imap.password"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(s, "sb-sealed:v1:a:") || !seal.IsSealed(s) {
			t.Errorf("Seal(%q) = %q, want sb-sealed:v1:a:...", plain, s)
		}
		if plain != "" && strings.Contains(s, plain) {
			t.Errorf("Seal(%q) = %q holds the plaintext", plain, s)
		}
		got, err := k.Open(s, place.AAD("imap.password"))
		if err != nil || got != plain {
			t.Errorf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
		if kid, err := seal.KeyID(s); err != nil || kid != "a" {
			t.Errorf("KeyID = %q, %v, want a", kid, err)
		}
	}
	// Random nonces: the same plaintext seals differently each time.
	s1, _ := k.Seal("same", place.AAD("f"))
	s2, _ := k.Seal("same", place.AAD("f"))
	if s1 == s2 {
		t.Error("two seals of one plaintext are equal: the nonce is not random")
	}
}

// TestOpenRefuses: a value altered, moved to another place or field,
// relabelled, or under a key the keyring lacks does not open, and the
// error says which.
func TestOpenRefuses(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	k := newKeyring(t, "a", a)
	sealed, err := k.Seal("s3cret-password", place.AAD("imap.password"))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(sealed, "sb-sealed:v1:a:")
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		r := append([]byte(nil), raw...)
		r[i] ^= 1
		return "sb-sealed:v1:a:" + base64.RawURLEncoding.EncodeToString(r)
	}
	// Another key under the same id: a keyring of another deployment.
	impostor := newKeyring(t, "a", seal.Key{ID: "a", Secret: b.Secret})
	for _, tc := range []struct {
		name   string
		k      *seal.Keyring
		value  string
		place  []byte
		want   error
		naming string
	}{
		{"nonce altered", k, flip(0), place.AAD("imap.password"), seal.ErrNotOpened, `"a"`},
		{"ciphertext altered", k, flip(13), place.AAD("imap.password"), seal.ErrNotOpened, `"a"`},
		{"tag altered", k, flip(len(raw) - 1), place.AAD("imap.password"), seal.ErrNotOpened, `"a"`},
		{"truncated", k, "sb-sealed:v1:a:" + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-3]), place.AAD("imap.password"), seal.ErrNotOpened, `"a"`},
		{"other field", k, sealed, place.AAD("smtp.password"), seal.ErrNotOpened, `"a"`},
		{"other tenant", k, sealed, seal.Place{Kind: "mailbox", Tenant: "t-2", ID: "m-1"}.AAD("imap.password"), seal.ErrNotOpened, ""},
		{"other entity", k, sealed, seal.Place{Kind: "mailbox", Tenant: "t-1", ID: "m-2"}.AAD("imap.password"), seal.ErrNotOpened, ""},
		{"other kind", k, sealed, seal.Place{Kind: "sms_account", Tenant: "t-1", ID: "m-1"}.AAD("imap.password"), seal.ErrNotOpened, ""},
		{"wrong key", impostor, sealed, place.AAD("imap.password"), seal.ErrNotOpened, ""},
		{"relabelled", newKeyring(t, "a", a, seal.Key{ID: "b", Secret: a.Secret}), strings.Replace(sealed, ":a:", ":b:", 1), place.AAD("imap.password"), seal.ErrNotOpened, `"b"`},
		{"unknown key", newKeyring(t, "b", b), sealed, place.AAD("imap.password"), seal.ErrUnknownKey, `"a"`},
		{"bad base64", k, "sb-sealed:v1:a:!!!", place.AAD("imap.password"), seal.ErrMalformed, ""},
		{"too short", k, "sb-sealed:v1:a:AAAA", place.AAD("imap.password"), seal.ErrMalformed, ""},
		{"no key id", k, "sb-sealed:v1:", place.AAD("imap.password"), seal.ErrMalformed, ""},
		{"unknown version", k, "sb-sealed:v9:a:" + body, place.AAD("imap.password"), seal.ErrMalformed, "v9"},
		{"plaintext", k, "s3cret-password", place.AAD("imap.password"), seal.ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.k.Open(tc.value, tc.place)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.naming) {
				t.Errorf("error %q does not name %s", err, tc.naming)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}

func TestNewKeyringChecks(t *testing.T) {
	a := newKey(t, "a")
	for _, tc := range []struct {
		name   string
		active string
		keys   []seal.Key
		want   string
	}{
		{"no keys", "a", nil, "no keys"},
		{"short key", "a", []seal.Key{{ID: "a", Secret: make([]byte, 16)}}, "16 bytes, want 32"},
		{"duplicate", "a", []seal.Key{a, a}, "listed twice"},
		{"active missing", "b", []seal.Key{a}, `"b" is not among`},
		{"bad id", "a:b", []seal.Key{{ID: "a:b", Secret: a.Secret}}, "key id"},
	} {
		if _, err := seal.NewKeyring(tc.active, tc.keys...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewKeyring = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestRotation: values under key a, then b made active beside a: old
// values open, new ones are under b; resealing moves every value to b,
// changes nothing the second time, and a keyring of b alone opens them.
func TestRotation(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	onlyA := newKeyring(t, "a", a)
	pw, token := "pw", "token"
	fields := []seal.Field{{Name: "imap.password", Value: &pw}, {Name: "imap.oauth2_token", Value: &token}}
	if err := onlyA.SealFields(place, fields); err != nil {
		t.Fatal(err)
	}
	both := newKeyring(t, "b", a, b)
	// Old values still open.
	cp1, cp2 := pw, token
	if _, err := both.OpenFields(place, []seal.Field{{Name: "imap.password", Value: &cp1}, {Name: "imap.oauth2_token", Value: &cp2}}); err != nil || cp1 != "pw" || cp2 != "token" {
		t.Fatalf("open under a with a and b: %q %q %v", cp1, cp2, err)
	}
	n, err := both.ResealFields(place, fields)
	if err != nil || n != 2 {
		t.Fatalf("ResealFields = %d, %v; want 2", n, err)
	}
	for _, f := range fields {
		if kid, _ := seal.KeyID(*f.Value); kid != "b" {
			t.Errorf("%s under %q after reseal, want b", f.Name, kid)
		}
	}
	if n, err := both.ResealFields(place, fields); err != nil || n != 0 {
		t.Errorf("second ResealFields = %d, %v; want 0", n, err)
	}
	onlyB := newKeyring(t, "b", b)
	plain, err := onlyB.OpenFields(place, fields)
	if err != nil || plain != 0 || pw != "pw" || token != "token" {
		t.Errorf("open under b alone: %q %q plain=%d %v", pw, token, plain, err)
	}
	// A value still under a, once a is gone: the error names a.
	stale, _ := onlyA.Seal("x", place.AAD("f"))
	if _, err := onlyB.Open(stale, place.AAD("f")); !errors.Is(err, seal.ErrUnknownKey) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("open under a removed key: %v", err)
	}
}

// TestFieldsLegacyPlaintext: values written before sealing open as they
// are (counted), and SealFields and ResealFields seal them.
func TestFieldsLegacyPlaintext(t *testing.T) {
	k := newKeyring(t, "a", newKey(t, "a"))
	v, empty := "legacy", ""
	fields := []seal.Field{{Name: "auth_token", Value: &v}, {Name: "api_key_secret", Value: &empty}}
	plain, err := k.OpenFields(place, fields)
	if err != nil || plain != 1 || v != "legacy" {
		t.Fatalf("OpenFields = %d, %v, %q", plain, err, v)
	}
	if n, err := k.ResealFields(place, fields); err != nil || n != 1 || !seal.IsSealed(v) || empty != "" {
		t.Fatalf("ResealFields = %d, %v, %q, %q", n, err, v, empty)
	}
	before := v
	if err := k.SealFields(place, fields); err != nil || v != before {
		t.Errorf("SealFields sealed a sealed value again: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	keys, err := seal.ParseKeys("# comment\n\n" + a.String() + "  # trailing\n" + "b=" + base64.RawURLEncoding.EncodeToString(b.Secret) + "\n")
	if err != nil || len(keys) != 2 || keys[0].ID != "a" || keys[1].ID != "b" || string(keys[1].Secret) != string(b.Secret) {
		t.Fatalf("ParseKeys = %v, %v", keys, err)
	}
	if keys, err := seal.ParseKeys(a.String() + "," + b.String()); err != nil || len(keys) != 2 {
		t.Errorf("comma-separated: %v, %v", keys, err)
	}
	for in, want := range map[string]string{
		"":                             "holds no key",
		"# only a comment":             "holds no key",
		"a":                            "line 1: is not kid=base64",
		"a=" + strings.Repeat("A", 8):  `line 1: key "a" is 6 bytes, want 32`,
		"a=***":                        `key "a" is not base64`,
		a.String() + "\n" + a.String(): `line 2: key id "a" is given twice`,
		"b:c=" + base64.StdEncoding.EncodeToString(b.Secret): `key id "b:c"`,
	} {
		if _, err := seal.ParseKeys(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeys(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

func TestConfigKeyring(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	if err := os.WriteFile(file, []byte(a.String()+"\n"+b.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := (&seal.Config{KeysFile: file, ActiveKey: "b"}).Keyring("")
	if err != nil || k.Active() != "b" || strings.Join(k.IDs(), ",") != "a,b" {
		t.Fatalf("Keyring = %v, %v", k, err)
	}
	k, err = (&seal.Config{Keys: a.String()}).Keyring("")
	if err != nil || k.Active() != "a" {
		t.Fatalf("one inline key: %v, %v", k, err)
	}
	for _, tc := range []struct {
		name string
		cfg  seal.Config
		want []string
	}{
		{"none", seal.Config{}, []string{"-secrets.keys-file", "SB_SECRETS_KEYS_FILE", "is empty", "new-key"}},
		{"missing file", seal.Config{KeysFile: filepath.Join(dir, "nope")}, []string{"-secrets.keys-file", "cannot read"}},
		{"two keys, none active", seal.Config{KeysFile: file}, []string{"-secrets.active-key", "SB_SECRETS_ACTIVE_KEY", "2 keys (a, b)"}},
		{"active absent", seal.Config{KeysFile: file, ActiveKey: "c"}, []string{"-secrets.active-key", `"c" is not among the keys (a, b)`}},
		{"duplicate across file and inline", seal.Config{KeysFile: file, Keys: a.String(), ActiveKey: "a"}, []string{`"a" is given twice`}},
		{"short inline key", seal.Config{Keys: "a=AAAA"}, []string{"-secrets.keys", "SB_SECRETS_KEYS", "3 bytes, want 32"}},
	} {
		_, err := tc.cfg.Keyring("")
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Keyring() = %v, want it to mention %q", tc.name, err, w)
			}
		}
	}
	if err := (&seal.Config{ActiveKey: "a:b", Keys: "x"}).Validate(""); err == nil ||
		!strings.Contains(err.Error(), "-secrets.active-key") || !strings.Contains(err.Error(), "-secrets.keys") {
		t.Errorf("Validate = %v, want both settings named", err)
	}
}

// TestEnsureKeysFile: the first call makes a file of one key, readable by
// its owner only; later calls, and racing ones, keep it.
func TestEnsureKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", seal.KeyFileName)
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	var wg sync.WaitGroup
	created := make([]bool, 8)
	for i := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := seal.EnsureKeysFile(path, seal.NewKeyID(now))
			if err != nil {
				t.Error(err)
			}
			created[i] = c
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range created {
		if c {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d calls made the file, want 1", n)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	keys, err := seal.ReadKeysFile(path)
	if err != nil || len(keys) != 1 || keys[0].ID != "k20250304-050607" {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if c, err := seal.EnsureKeysFile(path, seal.NewKeyID(now.Add(time.Hour))); err != nil || c {
		t.Errorf("second EnsureKeysFile = %v, %v; want the file kept", c, err)
	}
	again, _ := seal.ReadKeysFile(path)
	if string(again[0].Secret) != string(keys[0].Secret) {
		t.Error("the key changed")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the data directory holds %d files, want the keys file alone", len(entries))
	}
}

// FuzzOpen: whatever the input, Open does not panic, and a sealed value
// with any byte changed does not open.
func FuzzOpen(f *testing.F) {
	k := newKeyring(f, "a", newKey(f, "a"))
	f.Add("secret", 0, byte(1))
	f.Add("", 3, byte(0x80))
	f.Add(strings.Repeat("x", 300), 40, byte(7))
	f.Fuzz(func(t *testing.T, plain string, at int, xor byte) {
		aad := place.AAD("f")
		_, _ = k.Open(plain, aad)
		_, _ = k.Open(seal.Prefix+"v1:a:"+plain, aad)
		s, err := k.Seal(plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Open(s, aad); err != nil || got != plain {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		if xor == 0 {
			return
		}
		if at < 0 {
			at = -at
		}
		b := []byte(s)
		b[at%len(b)] ^= xor
		if _, err := k.Open(string(b), aad); err == nil {
			t.Fatalf("altered value %q opened", b)
		}
	})
}
