package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashAndVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash() = %q, want an argon2id PHC string", h)
	}
	if err := Verify("correct horse battery staple", h); err != nil {
		t.Errorf("Verify(right password) = %v", err)
	}
	if err := Verify("correct horse battery stapler", h); !errors.Is(err, ErrMismatch) {
		t.Errorf("Verify(wrong password) = %v, want ErrMismatch", err)
	}
	h2, _ := Hash("correct horse battery staple")
	if h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, bad := range []string{"", "$bcrypt$x", "$argon2id$v=19$m=x$a$b", "$argon2id$v=18$m=1,t=1,p=1$a$b"} {
		if err := Verify("x", bad); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(_, %q) = %v, want a format error", bad, err)
		}
	}
}

func TestCheck(t *testing.T) {
	for pw, ok := range map[string]bool{"short": false, "long enough!": true, strings.Repeat("x", 300): false, "\xff\xfe" + strings.Repeat("x", 12): false} {
		if got := Check(pw) == nil; got != ok {
			t.Errorf("Check(%q) ok = %v, want %v", pw, got, ok)
		}
	}
}
