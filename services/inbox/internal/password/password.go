// Package password hashes and verifies user passwords with argon2id, in
// the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so
// that the parameters travel with each hash and can be raised later.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Parameters: OWASP's recommended minimum for argon2id (19 MiB, 2 passes,
// 1 lane), about 30 ms on one core.
const (
	memoryKiB = 19 * 1024
	passes    = 2
	lanes     = 1
	saltLen   = 16
	keyLen    = 32
)

// Limits of an acceptable password: MinLength unless the operator set
// another (-inbox.password.min-length), never less than LeastMinLength.
const (
	MinLength      = 10
	LeastMinLength = 8
	MaxLength      = 256
)

// ErrMismatch: the password does not match the hash.
var ErrMismatch = errors.New("password does not match")

// commonPasswords is the list of the most common passwords shipped with
// the binary; see the file's header for its source and licence.
//
//go:embed common-passwords.txt
var commonPasswords string

// common is the set of commonPasswords, built on first use. It is data
// that never changes, not state.
var common = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10_000)
	for line := range strings.Lines(commonPasswords) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
})

// Common reports whether pw is one of the 10,000 most common passwords,
// whatever its case ("PassWord1" is "password1").
func Common(pw string) bool {
	_, ok := common()[strings.ToLower(strings.TrimSpace(pw))]
	return ok
}

// Policy is what a new password must be.
type Policy struct {
	// MinLength is the fewest characters; 0 means MinLength.
	MinLength int
}

// Check says what is wrong with a new password, or nil. Its errors read
// after the field's name ("password must be ...").
func (p Policy) Check(pw string) error {
	least := p.MinLength
	if least == 0 {
		least = MinLength
	}
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return errors.New("must be valid UTF-8")
	case n < least:
		return fmt.Errorf("must be at least %d characters", least)
	case len(pw) > MaxLength:
		return fmt.Errorf("must be at most %d bytes", MaxLength)
	case Common(pw):
		return errors.New("is one of the most common passwords, which are tried first; choose another")
	}
	return nil
}

// Hash returns the PHC string of pw with a fresh salt.
func Hash(pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, passes, memoryKiB, lanes, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, memoryKiB, passes, lanes, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify checks pw against a PHC string, in constant time.
func Verify(pw, phc string) error {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("password hash: not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return fmt.Errorf("password hash: unsupported version %q", parts[2])
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return fmt.Errorf("password hash: parameters %q: %w", parts[3], err)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("password hash: salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return fmt.Errorf("password hash: key: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
