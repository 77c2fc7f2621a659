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

func TestPolicyCheck(t *testing.T) {
	for _, c := range []struct {
		policy Policy
		pw     string
		ok     bool
	}{
		{Policy{}, "short", false},
		{Policy{}, "long enough!", true},
		{Policy{}, "nine char", false},
		{Policy{MinLength: 8}, "nine char", true},
		{Policy{MinLength: 12}, "long enough!", true},
		{Policy{MinLength: 13}, "long enough!", false},
		{Policy{}, strings.Repeat("x", 300), false},
		{Policy{}, "\xff\xfe" + strings.Repeat("x", 12), false},
		// Common passwords, in any case: the list holds the 10,000 most
		// common, and these are long enough to pass the length check.
		{Policy{}, "password123", false},
		{Policy{}, "PassWord123", false},
		{Policy{}, "QWERTYUIOP", false},
		{Policy{MinLength: 8}, "iloveyou", false},
		{Policy{}, "correct horse battery", true},
	} {
		err := c.policy.Check(c.pw)
		if got := err == nil; got != c.ok {
			t.Errorf("Policy{MinLength: %d}.Check(%q) = %v, want ok %v", c.policy.MinLength, c.pw, err, c.ok)
		}
	}
}

func TestCommonListIsComplete(t *testing.T) {
	n := 0
	for line := range strings.Lines(commonPasswords) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			n++
			if line != strings.ToLower(line) {
				t.Errorf("%q is not lowercase: Common lowercases what it looks up", line)
			}
		}
	}
	if n != 10_000 || len(common()) != 10_000 {
		t.Errorf("the list has %d lines and %d distinct passwords, want 10000 of each", n, len(common()))
	}
	for _, pw := range []string{"123456", "password", "Dragon", "letmein"} {
		if !Common(pw) {
			t.Errorf("Common(%q) = false, want true", pw)
		}
	}
}
