package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/seal"
)

// The keys that seal the channels' secrets (docs/adr/0022). The inbox
// seals them; the chat, email and SMS connectors open those of their
// channel. The router and the scheduler hold none and need no key.

// keyTargets are the targets that seal or open secrets.
var keyTargets = []string{modInbox, modChat, modEmail, modSMS}

// needsKeys reports whether a target run seals or opens secrets.
func (c *Config) needsKeys() bool {
	return c.allInOne() || slices.ContainsFunc(c.Targets, func(t string) bool { return slices.Contains(keyTargets, t) })
}

// serveKeyring is the keyring of a serving process: the operator's keys
// (-secrets.keys-file, -secrets.keys), or, with -target=all and none
// given, the keys file in the data directory, made on first start. A
// split target without keys is refused.
func serveKeyring(cfg Config, log *slog.Logger) (*seal.Keyring, error) {
	if !cfg.needsKeys() {
		return nil, nil
	}
	sc := cfg.Secrets
	if !sc.Configured() && cfg.allInOne() {
		path := filepath.Join(cfg.DataDir, seal.KeyFileName)
		created, err := seal.EnsureKeysFile(path, seal.NewKeyID(time.Now()))
		if err != nil {
			return nil, config.Invalid("data-dir", err.Error(), "make -data-dir writable, or give the keys with -secrets.keys-file")
		}
		if created {
			log.Warn("made a key to seal the channels' secrets, kept in the data directory: keep it with the database, or the secrets are lost; for production set -secrets.keys-file", "keys_file", path)
		}
		sc.KeysFile = path
	}
	keys, err := sc.Keyring("")
	if err != nil {
		return nil, err
	}
	log.Info("secrets sealed under the active key", "active_key", keys.Active(), "keys", keys.IDs())
	return keys, nil
}

// adminKeys registers the key settings of an admin command that seals or
// opens secrets, and returns a function that builds the keyring once the
// flags are parsed: the operator's keys, or those -target=all keeps in
// the data directory (never made here: a key made by an admin command
// that no process reads would seal what nobody can open).
func adminKeys(f *flag.FlagSet) func() (*seal.Keyring, error) {
	var sc seal.Config
	sc.RegisterFlags("", f)
	dataDir := f.String("data-dir", "switchboard-data", "Data directory of the -target=all process, whose keys file (secrets.keys) is used when no key is given.")
	return func() (*seal.Keyring, error) {
		if err := sc.Validate(""); err != nil {
			return nil, err
		}
		if !sc.Configured() {
			path := filepath.Join(*dataDir, seal.KeyFileName)
			if _, err := os.Stat(path); err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					return nil, config.Invalid("data-dir", err.Error(), "give the keys with -secrets.keys-file")
				}
				return nil, config.Invalid("secrets.keys-file", fmt.Sprintf("is empty, and -data-dir %s holds no %s", *dataDir, seal.KeyFileName),
					"set SB_SECRETS_KEYS_FILE to the keys file the targets use, or -data-dir to the directory of the -target=all process")
			}
			sc.KeysFile = path
		}
		return sc.Keyring("")
	}
}

const secretsUsage = `Usage: switchboard admin secrets <command> [flags]

Commands:
  new-key  [-kid ID] [-file PATH]  print a new key as kid=base64 (a line of a keys file); with -file,
                                   make that keys file with it unless the file exists
  reseal   (DATABASE_URL, keys)    seal every stored secret under the active key and announce the
                                   configuration, so that the connectors get them; idempotent
`

// runSecrets runs `switchboard admin secrets ...`.
func runSecrets(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, secretsUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "new-key":
		return newKey(args[1:], env, stdout, stderr)
	case "reseal":
		return reseal(ctx, args[1:], env, stdout, stderr)
	}
	fmt.Fprintf(stderr, "switchboard admin secrets: unknown command %q\n\n%s", args[0], secretsUsage)
	return exitUsage
}

// newKey prints a new key, or makes a keys file of it.
func newKey(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("switchboard admin secrets new-key", flag.ContinueOnError)
	f.SetOutput(stderr)
	kid := f.String("kid", "", "Id of the key; empty: k and the date and time, such as k20250301-120000. Ids name keys in sealed values: give each key of a keyring its own.")
	file := f.String("file", "", "Make this keys file, readable by its owner only, with the key, unless it exists (then it is kept as it is); the key is not printed.")
	if err := config.Load(f, args, env, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return usageError(stderr, err)
	}
	id := *kid
	if id == "" {
		id = seal.NewKeyID(time.Now())
	}
	if !seal.ValidKeyID(id) {
		return usageError(stderr, config.Invalid("kid", fmt.Sprintf("%q is no key id", id), "use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit"))
	}
	if *file != "" {
		created, err := seal.EnsureKeysFile(*file, id)
		if err != nil {
			fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
			return exitFailed
		}
		if created {
			fmt.Fprintf(stderr, "switchboard admin: made %s with key %s\n", *file, id)
		} else {
			fmt.Fprintf(stderr, "switchboard admin: %s exists; kept as it is\n", *file)
		}
		return exitOK
	}
	k, err := seal.NewKey(id)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, k.String())
	return exitOK
}

// reseal seals every stored secret under the active key and announces
// the configuration, printing what it changed as JSON.
func reseal(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("switchboard admin secrets reseal", flag.ContinueOnError)
	f.SetOutput(stderr)
	var db pg.Config
	db.RegisterFlags("", f)
	keyring := adminKeys(f)
	if err := config.Load(f, args, env, envAliases()); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return usageError(stderr, err)
	}
	if err := db.Validate(""); err != nil {
		return usageError(stderr, err)
	}
	keys, err := keyring()
	if err != nil {
		return usageError(stderr, err)
	}
	adm, closeAdmin, err := openAdmin(ctx, db, keys)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	defer closeAdmin()
	r, n, err := adm.ResealSecrets(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	out := map[string]any{
		"active_key": keys.Active(),
		"resealed": map[string]int{"chat_channels": r.ChatChannels, "mailboxes": r.Mailboxes, "sms_accounts": r.SMSAccounts,
			"translation_keys": r.TranslationKeys, "total": r.Total()},
		"announced": map[string]int{"chat_channels": n.ChatChannels, "mailboxes": n.Mailboxes, "sms_accounts": n.SMSAccounts},
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "switchboard admin: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "switchboard admin: %d secrets sealed again under key %s; the running inbox relays the configuration to the connectors. Remove an old key only once every target runs with the new one active and this command has run.\n",
		r.Total(), keys.Active())
	return exitOK
}
