package seal

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// KeyFileName is the keys file the all-in-one process keeps in its data
// directory when no key is given.
const KeyFileName = "secrets.keys"

// newKeyFix says how to make a key, in configuration errors.
const newKeyFix = "make one with `switchboard admin secrets new-key` (a line kid=base64 of 32 random bytes)"

// Config is where the keyring comes from.
type Config struct {
	// KeysFile is a file of keys, one id=base64 per line.
	KeysFile string
	// Keys are keys given inline, separated by commas or new lines.
	Keys string
	// ActiveKey is the id of the key that seals new values; empty when
	// there is one key.
	ActiveKey string
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.KeysFile, prefix+"secrets.keys-file", "", "File of the keys that seal the channels' secrets (mailbox passwords and OAuth2 tokens, Twilio auth tokens and API key secrets, chat signing secrets, translator API keys) in PostgreSQL and on sb.config.v1: one line kid=base64 per key, the base64 of 32 random bytes (switchboard admin secrets new-key prints one); # starts a comment. In Kubernetes, a key of a Secret mounted as a file. The inbox, chat, email and sms targets need it, all the same keys (the router and the scheduler hold no secret); -target=all without any key makes <-data-dir>/secrets.keys on first start and keeps using it. Keep the keys: without them, the secrets sealed under them are lost.")
	f.StringVar(&c.Keys, prefix+"secrets.keys", "", "Keys given inline, as kid=base64 separated by commas, instead of (or besides) -secrets.keys-file. Prefer the environment (SB_SECRETS_KEYS) to the command line, where other users of the machine can see it; prefer the file to both.")
	f.StringVar(&c.ActiveKey, prefix+"secrets.active-key", "", "Id of the key that seals new secrets; the others only open what was sealed under them. Empty when there is one key. To rotate: add a key, make it active on every target, run `switchboard admin secrets reseal`, then remove the old key.")
}

// Configured reports whether any key is given.
func (c *Config) Configured() bool { return c.KeysFile != "" || c.Keys != "" }

// Validate checks what can be checked without reading the file.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	ck.Check(c.ActiveKey == "" || ValidKeyID(c.ActiveKey), "secrets.active-key", fmt.Sprintf("%q is no key id", c.ActiveKey),
		"use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit")
	if c.Keys != "" {
		_, err := ParseKeys(c.Keys)
		ck.Check(err == nil, "secrets.keys", fmt.Sprint(err), newKeyFix)
	}
	return ck.Err()
}

// Keyring reads the keys and builds the keyring; its errors name the
// setting to fix.
func (c *Config) Keyring(prefix string) (*Keyring, error) {
	if !c.Configured() {
		return nil, config.Invalid(prefix+"secrets.keys-file", "is empty, and no key is given: channel secrets are sealed under the operator's keys (only -target=all makes a key of its own)",
			"mount the keys file and set SB_SECRETS_KEYS_FILE to its path; "+newKeyFix)
	}
	var keys []Key
	if c.KeysFile != "" {
		k, err := ReadKeysFile(c.KeysFile)
		if err != nil {
			return nil, config.Invalid(prefix+"secrets.keys-file", err.Error(), newKeyFix)
		}
		keys = k
	}
	if c.Keys != "" {
		k, err := ParseKeys(c.Keys)
		if err != nil {
			return nil, config.Invalid(prefix+"secrets.keys", err.Error(), newKeyFix)
		}
		keys = append(keys, k...)
	}
	active := c.ActiveKey
	if active == "" {
		if len(keys) > 1 {
			return nil, config.Invalid(prefix+"secrets.active-key", fmt.Sprintf("is empty, and there are %d keys (%s)", len(keys), keyIDs(keys)),
				"name the key that seals new secrets")
		}
		active = keys[0].ID
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.ID] {
			return nil, config.Invalid(prefix+"secrets.keys-file", fmt.Sprintf("key id %q is given twice", k.ID), "give each key an id of its own")
		}
		seen[k.ID] = true
	}
	if !seen[active] {
		return nil, config.Invalid(prefix+"secrets.active-key", fmt.Sprintf("%q is not among the keys (%s)", active, keyIDs(keys)),
			"add the key to the keys file, or name one of those")
	}
	return NewKeyring(active, keys...)
}

func keyIDs(keys []Key) string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return strings.Join(ids, ", ")
}

// ReadKeysFile reads a keys file.
func ReadKeysFile(path string) ([]Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the keys file: %w", err)
	}
	keys, err := ParseKeys(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// ParseKeys reads keys as id=base64 lines (or comma-separated); blank
// lines and # comments are skipped. Each key must be 32 bytes; an id
// listed twice is refused.
func ParseKeys(text string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		if c, _, ok := strings.Cut(line, "#"); ok {
			line = c
		}
		for entry := range strings.SplitSeq(line, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			k, err := parseKey(entry)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			if seen[k.ID] {
				return nil, fmt.Errorf("line %d: key id %q is given twice", i+1, k.ID)
			}
			seen[k.ID] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("holds no key")
	}
	return keys, nil
}

func parseKey(entry string) (Key, error) {
	id, b64, ok := strings.Cut(entry, "=")
	id = strings.TrimSpace(id)
	if !ok {
		return Key{}, errors.New("is not kid=base64")
	}
	if !ValidKeyID(id) {
		return Key{}, fmt.Errorf("key id %q: use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit", id)
	}
	b64 = strings.TrimSpace(b64)
	var secret []byte
	var err error
	// Standard base64 (openssl rand -base64 32) or its URL form, with or
	// without padding.
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err = enc.DecodeString(b64); err == nil {
			break
		}
	}
	if err != nil {
		return Key{}, fmt.Errorf("key %q is not base64", id)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("key %q is %d bytes, want %d", id, len(secret), KeySize)
	}
	return Key{ID: id, Secret: secret}, nil
}

// NewKeyID names a key made at now: k and the UTC date and time.
func NewKeyID(now time.Time) string { return "k" + now.UTC().Format("20060102-150405") }

// EnsureKeysFile makes a keys file at path with one new key named id,
// readable by its owner only, unless the file exists; it reports whether
// it made it. Two processes racing to make it both end up with the one
// that won.
func EnsureKeysFile(path, id string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("keys file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return false, fmt.Errorf("keys file: %w", err)
	}
	key, err := NewKey(id)
	if err != nil {
		return false, err
	}
	// Written under another name and linked into place, so that nobody
	// ever reads a file half written, and a file made meanwhile by
	// another process wins.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secrets-*.keys")
	if err != nil {
		return false, fmt.Errorf("keys file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, fmt.Errorf("keys file: %w", err)
	}
	body := "# Switchboard's keys: they seal the channels' secrets. Keep this file;\n" +
		"# without it the secrets sealed under its keys are lost. See -secrets.keys-file.\n" + key.String() + "\n"
	if _, err := tmp.WriteString(body); err != nil {
		tmp.Close()
		return false, fmt.Errorf("keys file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("keys file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("keys file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("keys file: %w", err)
	}
	return true, nil
}
