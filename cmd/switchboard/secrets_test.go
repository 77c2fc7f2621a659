package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

var discard = slog.New(slog.DiscardHandler)

// TestEmbeddedModeKeepsItsKey: -target=all without keys makes a keys file
// in its data directory, readable by its owner only, and uses the same
// key at every start after.
func TestEmbeddedModeKeepsItsKey(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Targets: config.StringList{"all"}, DataDir: filepath.Join(dir, "data")}
	first, err := serveKeyring(cfg, discard)
	require.NoError(t, err)
	path := filepath.Join(cfg.DataDir, seal.KeyFileName)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	sealed, err := first.Seal("hunter2", []byte("place"))
	require.NoError(t, err)
	again, err := serveKeyring(cfg, discard)
	require.NoError(t, err)
	require.Equal(t, first.IDs(), again.IDs())
	plain, err := again.Open(sealed, []byte("place"))
	require.NoError(t, err)
	require.Equal(t, "hunter2", plain)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, before, after, "the keys file changed")

	// The admin commands find it there too.
	code, _, errOut := admin(t, "secrets", "reseal", "-database.url", testkit.DatabaseURL(t), "-data-dir", cfg.DataDir)
	require.Equal(t, exitOK, code, errOut)
}

// TestSplitTargetsNeedKeys: the targets that seal or open secrets refuse
// to start without keys, naming the setting; the router and the
// scheduler hold no secret and need none.
func TestSplitTargetsNeedKeys(t *testing.T) {
	for _, targets := range []string{"inbox", "chat", "email", "sms", "router,chat"} {
		cfg := Config{Targets: config.StringList(strings.Split(targets, ",")), DataDir: t.TempDir()}
		_, err := serveKeyring(cfg, discard)
		require.Error(t, err, targets)
		for _, want := range []string{"-secrets.keys-file", "SB_SECRETS_KEYS_FILE", "switchboard admin secrets new-key"} {
			require.Contains(t, err.Error(), want, targets)
		}
		entries, _ := os.ReadDir(cfg.DataDir)
		require.Empty(t, entries, "%s made a key", targets)
	}
	k, err := serveKeyring(Config{Targets: config.StringList{"router", "scheduler"}}, discard)
	require.NoError(t, err)
	require.Nil(t, k)

	a, b := newTestKey(t, "a"), newTestKey(t, "b")
	file := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(file, []byte(a.String()+"\n"+b.String()+"\n"), 0o600))
	_, err = serveKeyring(Config{Targets: config.StringList{"inbox"}, Secrets: seal.Config{KeysFile: file}}, discard)
	require.ErrorContains(t, err, "-secrets.active-key")
	k, err = serveKeyring(Config{Targets: config.StringList{"inbox"}, Secrets: seal.Config{KeysFile: file, ActiveKey: "b"}}, discard)
	require.NoError(t, err)
	require.Equal(t, "b", k.Active())
}

func newTestKey(t *testing.T, id string) seal.Key {
	t.Helper()
	k, err := seal.NewKey(id)
	require.NoError(t, err)
	return k
}

var keyIDRe = regexp.MustCompile(`sb-sealed:v1:([A-Za-z0-9._-]+):`)

// storedKeyIDs counts the sealed values of the inbox's secrets, and of
// the configuration waiting in its outbox, by key id.
func storedKeyIDs(t *testing.T, db string) (stored, announced map[string]int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	require.NoError(t, err)
	defer conn.Close(ctx)
	count := func(q string) map[string]int {
		var all string
		require.NoError(t, conn.QueryRow(ctx, q).Scan(&all))
		ids := map[string]int{}
		for _, m := range keyIDRe.FindAllStringSubmatch(all, -1) {
			ids[m[1]]++
		}
		return ids
	}
	return count(`SELECT coalesce(string_agg(settings::text, ' '), '') FROM inbox.channel_accounts`),
		count(`SELECT coalesce(string_agg(convert_from(value, 'UTF8'), ' '), '') FROM inbox.outbox`)
}

// TestAdminSecretsRotation: secrets sealed under key a; a keys file of a
// and b with b active: new ones are sealed under b, `admin secrets
// reseal` seals the others under b and announces them, a second run
// changes nothing, and then b alone serves; a keyring without b cannot
// reseal, and says which key it lacks.
func TestAdminSecretsRotation(t *testing.T) {
	db := testkit.DatabaseURL(t)
	dir := t.TempDir()
	a, b := newTestKey(t, "a"), newTestKey(t, "b")
	onlyA, both, onlyB := filepath.Join(dir, "a.keys"), filepath.Join(dir, "ab.keys"), filepath.Join(dir, "b.keys")
	require.NoError(t, os.WriteFile(onlyA, []byte(a.String()+"\n"), 0o600))
	require.NoError(t, os.WriteFile(both, []byte(a.String()+"\n"+b.String()+"\n"), 0o600))
	require.NoError(t, os.WriteFile(onlyB, []byte(b.String()+"\n"), 0o600))

	code, out, errOut := admin(t, "create-tenant", "-database.url", db, "-name", "Acme", "-secrets.keys-file", onlyA)
	require.Equal(t, exitOK, code, errOut)
	var boot testkit.Bootstrap
	require.NoError(t, json.Unmarshal([]byte(out), &boot))
	stored, _ := storedKeyIDs(t, db)
	require.Equal(t, map[string]int{"a": 1}, stored)

	code, _, errOut = admin(t, "create-chat-channel", "-database.url", db, "-tenant", boot.Tenant.ID, "-name", "app",
		"-secrets.keys-file", both, "-secrets.active-key", "b")
	require.Equal(t, exitOK, code, errOut)
	stored, announcedBefore := storedKeyIDs(t, db)
	require.Equal(t, map[string]int{"a": 1, "b": 1}, stored)

	reseal := func(args ...string) (int, map[string]any, string) {
		code, out, errOut := admin(t, append([]string{"secrets", "reseal", "-database.url", db}, args...)...)
		var res map[string]any
		if code == exitOK {
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
		}
		return code, res, errOut
	}
	code, res, errOut := reseal("-secrets.keys-file", both, "-secrets.active-key", "b")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "b", res["active_key"])
	require.Equal(t, 1.0, res["resealed"].(map[string]any)["chat_channels"], res)
	require.Equal(t, 2.0, res["announced"].(map[string]any)["chat_channels"], res)
	stored, announced := storedKeyIDs(t, db)
	require.Equal(t, map[string]int{"b": 2}, stored)
	require.Equal(t, 2, announced["b"]-announcedBefore["b"], "the announcement carries the resealed secrets")
	require.Equal(t, announcedBefore["a"], announced["a"])

	code, res, errOut = reseal("-secrets.keys-file", both, "-secrets.active-key", "b")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, 0.0, res["resealed"].(map[string]any)["total"], "a second reseal changes nothing")

	// Key a removed: b alone serves.
	code, _, errOut = reseal("-secrets.keys-file", onlyB)
	require.Equal(t, exitOK, code, errOut)
	code, _, errOut = admin(t, "create-chat-channel", "-database.url", db, "-tenant", boot.Tenant.ID, "-name", "web", "-secrets.keys-file", onlyB)
	require.Equal(t, exitOK, code, errOut)

	code, _, errOut = reseal("-secrets.keys-file", onlyA)
	require.Equal(t, exitFailed, code)
	require.Contains(t, errOut, `unknown key "b"`)

	code, _, errOut = reseal("-data-dir", t.TempDir())
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "-secrets.keys-file")
}

func TestAdminSecretsNewKey(t *testing.T) {
	code, out, errOut := admin(t, "secrets", "new-key", "-kid", "prod-2025")
	require.Equal(t, exitOK, code, errOut)
	keys, err := seal.ParseKeys(out)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, "prod-2025", keys[0].ID)

	code, out, _ = admin(t, "secrets", "new-key")
	require.Equal(t, exitOK, code)
	require.Regexp(t, `^k\d{8}-\d{6}=[A-Za-z0-9+/]{43}=\n$`, out)

	file := filepath.Join(t.TempDir(), "keys", "secrets.keys")
	for i := 0; i < 2; i++ {
		code, out, errOut = admin(t, "secrets", "new-key", "-file", file)
		require.Equal(t, exitOK, code, errOut)
		require.Empty(t, out, "the key is not printed")
	}
	require.Contains(t, errOut, "kept as it is")
	keys, err = seal.ReadKeysFile(file)
	require.NoError(t, err)
	require.Len(t, keys, 1)

	code, _, errOut = admin(t, "secrets", "new-key", "-kid", "a:b")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "-kid")
	code, _, _ = admin(t, "secrets", "rotate")
	require.Equal(t, exitUsage, code)
}
