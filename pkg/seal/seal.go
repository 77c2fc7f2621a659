// Package seal encrypts the secrets Switchboard stores and publishes
// (channel credentials, signing secrets, API keys) under an operator's
// keyring: AES-256-GCM with a random 96-bit nonce, each key named by an id
// so that keys rotate. A sealed value is a self-describing string,
//
//	sb-sealed:v1:<key id>:<base64url(nonce || ciphertext || tag)>
//
// that fits where the plaintext was (a JSON string, a text column). Its
// additional data binds it to its place (the kind of entity, its tenant,
// its id and the field): a value copied to another tenant, entity or field
// does not open. See docs/adr/0022.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Prefix starts every sealed value; version 1 follows it.
const Prefix = "sb-sealed:"

// header is the start of a value sealed by this version.
const header = Prefix + "v1:"

// KeySize is the size of a key: AES-256.
const KeySize = 32

// Errors callers branch on.
var (
	// ErrUnknownKey: the value was sealed under a key the keyring does
	// not hold (removed too early, or another deployment's).
	ErrUnknownKey = errors.New("sealed under an unknown key")
	// ErrNotOpened: the value does not open under its key: it was
	// altered, or sealed for another place.
	ErrNotOpened = errors.New("does not open")
	// ErrMalformed: the value starts like a sealed one but is not.
	ErrMalformed = errors.New("malformed sealed value")
)

// kidRe is what a key id may be: it sits between colons in sealed values
// and at the start of a line of a keys file.
var kidRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidKeyID reports whether id may name a key.
func ValidKeyID(id string) bool { return kidRe.MatchString(id) }

// Key is one key of a keyring.
type Key struct {
	// ID names the key in the values it seals.
	ID string
	// Secret is the AES-256 key, KeySize bytes.
	Secret []byte
}

// NewKey makes a key of 32 random bytes named id.
func NewKey(id string) (Key, error) {
	if !ValidKeyID(id) {
		return Key{}, fmt.Errorf("key id %q: use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit", id)
	}
	k := Key{ID: id, Secret: make([]byte, KeySize)}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("new key: %w", err)
	}
	return k, nil
}

// String is the key as a line of a keys file: id=base64(secret).
func (k Key) String() string { return k.ID + "=" + base64.StdEncoding.EncodeToString(k.Secret) }

// Keyring holds the keys values are sealed under; new values are sealed
// under its active key, and values under any of its keys open. It is safe
// for concurrent use.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
	ids    []string
}

// NewKeyring builds a keyring of keys whose key active seals new values.
func NewKeyring(active string, keys ...Key) (*Keyring, error) {
	k := &Keyring{active: active, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, key := range keys {
		if !ValidKeyID(key.ID) {
			return nil, fmt.Errorf("key id %q: use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit", key.ID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("key %q is %d bytes, want %d", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("key id %q is listed twice", key.ID)
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
		k.ids = append(k.ids, key.ID)
	}
	if len(k.ids) == 0 {
		return nil, errors.New("no keys")
	}
	if _, ok := k.aeads[active]; !ok {
		return nil, fmt.Errorf("the active key %q is not among the keys (%s)", active, strings.Join(k.ids, ", "))
	}
	return k, nil
}

// Active is the id of the key that seals new values.
func (k *Keyring) Active() string { return k.active }

// IDs are the ids of the keys, in the order given.
func (k *Keyring) IDs() []string { return slices.Clone(k.ids) }

// IsSealed reports whether s is a sealed value (of any version), as
// opposed to a plaintext.
func IsSealed(s string) bool { return strings.HasPrefix(s, Prefix) }

// KeyID returns the id of the key s was sealed under.
func KeyID(s string) (string, error) {
	kid, _, err := split(s)
	return kid, err
}

func split(s string) (kid, body string, err error) {
	rest, ok := strings.CutPrefix(s, header)
	if !ok {
		if IsSealed(s) {
			return "", "", fmt.Errorf("%w: version %q is not v1", ErrMalformed, strings.SplitN(strings.TrimPrefix(s, Prefix), ":", 2)[0])
		}
		return "", "", fmt.Errorf("%w: it does not start with %q", ErrMalformed, header)
	}
	kid, body, ok = strings.Cut(rest, ":")
	if !ok || !ValidKeyID(kid) {
		return "", "", fmt.Errorf("%w: no key id", ErrMalformed)
	}
	return kid, body, nil
}

// aad is what GCM authenticates besides the ciphertext: the header with
// the key id, so that a value relabelled with another key id does not
// open, and the place.
func aad(kid string, place []byte) []byte {
	return append([]byte(header+kid+":"), place...)
}

// Seal encrypts plaintext under the active key for place (see Place.AAD);
// only Open with the same place opens it.
func (k *Keyring) Seal(plaintext string, place []byte) (string, error) {
	aead := k.aeads[k.active]
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	// A random nonce per value: 2^32 values under one key keep the
	// chance of a repeated nonce below 2^-32 (NIST SP 800-38D 8.3), far
	// more than a deployment's secrets, and rotation starts a new key.
	if _, err := rand.Read(out); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out = aead.Seal(out, out, []byte(plaintext), aad(k.active, place))
	return header + k.active + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed value for place. The error wraps ErrUnknownKey
// (naming the key id), ErrNotOpened or ErrMalformed; it never holds the
// value.
func (k *Keyring) Open(sealed string, place []byte) (string, error) {
	kid, body, err := split(sealed)
	if err != nil {
		return "", err
	}
	aead, ok := k.aeads[kid]
	if !ok {
		return "", fmt.Errorf("%w %q: the keyring holds %s; add that key to the keys file (-secrets.keys-file)", ErrUnknownKey, kid, strings.Join(k.ids, ", "))
	}
	// Strict: one spelling per value, so that no altered string opens.
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", fmt.Errorf("%w: its body is not base64url of a nonce and a ciphertext", ErrMalformed)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], aad(kid, place))
	if err != nil {
		return "", fmt.Errorf("value sealed under key %q %w: altered, or sealed for another place", kid, ErrNotOpened)
	}
	return string(plain), nil
}

// Place is where a secret lives: the kind of entity (mailbox,
// sms_account, chat_channel, translation), its tenant and its id. A
// value sealed for one place and field opens for that place and field
// only.
type Place struct {
	Kind, Tenant, ID string
}

// AAD is the additional data of field of the place.
func (p Place) AAD(field string) []byte {
	// NUL cannot occur in the ids nor the field names: the encoding is
	// unambiguous.
	return []byte("switchboard-secret\x00" + p.Kind + "\x00" + p.Tenant + "\x00" + p.ID + "\x00" + field)
}

// Field is one secret of an entity: its name (the JSON path, such as
// imap.password) and where its value is. An empty value is no secret.
type Field struct {
	Name  string
	Value *string
}

// SealFields seals the plaintext values of fields in place; sealed ones
// are left as they are.
func (k *Keyring) SealFields(p Place, fields []Field) error {
	for _, f := range fields {
		if *f.Value == "" || IsSealed(*f.Value) {
			continue
		}
		s, err := k.Seal(*f.Value, p.AAD(f.Name))
		if err != nil {
			return fmt.Errorf("%s %s: %s: %w", p.Kind, p.ID, f.Name, err)
		}
		*f.Value = s
	}
	return nil
}

// OpenFields opens the sealed values of fields in place. A plaintext
// value, written before secrets were sealed, is left as it is and
// counted in plain, for the caller to say so.
func (k *Keyring) OpenFields(p Place, fields []Field) (plain int, err error) {
	for _, f := range fields {
		if *f.Value == "" {
			continue
		}
		if !IsSealed(*f.Value) {
			plain++
			continue
		}
		v, err := k.Open(*f.Value, p.AAD(f.Name))
		if err != nil {
			return plain, fmt.Errorf("%s %s: %s: %w", p.Kind, p.ID, f.Name, err)
		}
		*f.Value = v
	}
	return plain, nil
}

// ResealFields seals again, under the active key, the values of fields
// sealed under another key, and seals the plaintext ones. It returns how
// many values it changed; values already under the active key are left
// as they are, so that running it twice changes nothing the second time.
func (k *Keyring) ResealFields(p Place, fields []Field) (int, error) {
	n := 0
	for _, f := range fields {
		v := *f.Value
		if v == "" {
			continue
		}
		if IsSealed(v) {
			kid, err := KeyID(v)
			if err != nil {
				return n, fmt.Errorf("%s %s: %s: %w", p.Kind, p.ID, f.Name, err)
			}
			if kid == k.active {
				continue
			}
			if v, err = k.Open(v, p.AAD(f.Name)); err != nil {
				return n, fmt.Errorf("%s %s: %s: %w", p.Kind, p.ID, f.Name, err)
			}
		}
		s, err := k.Seal(v, p.AAD(f.Name))
		if err != nil {
			return n, fmt.Errorf("%s %s: %s: %w", p.Kind, p.ID, f.Name, err)
		}
		*f.Value = s
		n++
	}
	return n, nil
}
