package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// secretForms are the ways a secret could show in stored or published
// bytes: as is, hex, and base64 (standard and URL alphabets) at each of
// the three alignments it could have inside a longer encoded value.
func secretForms(secret string) []string {
	forms := []string{secret, hex.EncodeToString([]byte(secret))}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for pad := 0; pad < 3; pad++ {
			e := enc.EncodeToString(append(make([]byte, pad), secret...))
			// The first characters hold the padding's bits when there is
			// any; the last ones, those of whatever follows.
			if pad > 0 {
				e = e[4:]
			}
			forms = append(forms, e[:len(e)-4])
		}
	}
	return forms
}

// leaked returns the secrets (by name) any of whose forms is in b.
func leaked(b []byte, secrets map[string]string) []string {
	var out []string
	for name, s := range secrets {
		for _, f := range secretForms(s) {
			if bytes.Contains(b, []byte(f)) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

func randomAlnum(t *testing.T, n int, alphabet string) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// TestNoSecretInClearOnKafkaNorInTheDatabase creates, through the API of
// the split targets (inbox, chat, email, sms on one Kafka), a chat channel
// with an endpoint, a mailbox, an SMS account and a translator, each with
// known secrets; then reads as an attacker would every record of
// sb.config.v1 and every text, JSON and bytea column of every table of the
// database: no secret is there in clear, nor hex- or base64-encoded. The
// API does not show them either, and the chat connector verifies webhooks
// with the secret it opened.
func TestNoSecretInClearOnKafkaNorInTheDatabase(t *testing.T) {
	ctx := context.Background()
	dbURL := testkit.DatabaseURL(t)
	brokers := testkit.Kafka(t)
	redisURL := os.Getenv("SB_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = testkit.DefaultRedisURL
	}
	env := []string{"SB_KAFKA_BROKERS=" + strings.Join(brokers, ","), "SB_REDIS_URL=" + redisURL}
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	procs := newProcesses(t)
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	node := procs.start(t, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(), Addr: addr,
		Targets: "inbox,chat,email,sms", Env: env,
		Args: []string{"-sms.public-base-url=http://" + addr, "-egress.allow=127.0.0.1/32", "-egress.allow-http"}})
	base, token := node.Base(), b.APIToken.Token

	secrets := map[string]string{
		"chat inbound secret": b.ChatChannel.Secret,
		"imap password":       "imap-pass-" + randomAlnum(t, 16, "abcdefghijklmnopqrstuvwxyz0123456789"),
		"smtp oauth2 token":   "smtp-oauth-" + randomAlnum(t, 24, "abcdefghijklmnopqrstuvwxyz0123456789"),
		"twilio auth token":   randomAlnum(t, 32, "0123456789abcdef"),
		"twilio api secret":   randomAlnum(t, 32, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
		"translator api key":  "tr-key-" + randomAlnum(t, 20, "abcdefghijklmnopqrstuvwxyz0123456789"),
	}
	var answers []json.RawMessage
	keep := func(raw json.RawMessage) { answers = append(answers, raw) }

	var ch json.RawMessage
	mustAPI(t, http.StatusOK, http.MethodPatch, base+"/v1/admin/chat-channels/"+b.ChatChannel.ID, token,
		map[string]any{"outbound": map[string]any{"url": "http://127.0.0.1:1/hook", "events": []string{"message.created"}}}, &ch)
	var chOut struct {
		Outbound struct {
			Secret string `json:"secret"`
		} `json:"outbound"`
	}
	require.NoError(t, json.Unmarshal(ch, &chOut))
	require.NotEmpty(t, chOut.Outbound.Secret)
	secrets["chat outbound secret"] = chOut.Outbound.Secret

	var mb json.RawMessage
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/mailboxes", token, map[string]any{
		"name": "Support", "address": "support@acme.test",
		"imap": map[string]any{"host": "127.0.0.1", "port": 1, "tls": "none", "username": "support", "password": secrets["imap password"]},
		"smtp": map[string]any{"host": "127.0.0.1", "port": 1, "tls": "none", "username": "support", "oauth2_token": secrets["smtp oauth2 token"]},
	}, &mb)
	keep(mb)
	var sms json.RawMessage
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/sms-accounts", token, map[string]any{
		"name": "France", "account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": secrets["twilio auth token"],
		"api_key_sid": "SK0123456789abcdef0123456789abcdef", "api_key_secret": secrets["twilio api secret"], "numbers": []string{"+33700000001"},
	}, &sms)
	keep(sms)
	var tr json.RawMessage
	mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/settings/translation", token, map[string]any{
		"enabled": true, "provider": "libretranslate", "url": "http://127.0.0.1:1/translate", "api_key": secrets["translator api key"],
	}, &tr)
	keep(tr)
	for _, path := range []string{"/v1/admin/mailboxes", "/v1/admin/sms-accounts", "/v1/admin/chat-channels", "/v1/admin/settings/translation"} {
		var raw json.RawMessage
		mustAPI(t, http.StatusOK, http.MethodGet, base+path, token, nil, &raw)
		keep(raw)
	}
	for _, raw := range answers {
		require.Empty(t, leaked(raw, secrets), "an API answer shows a secret: %s", raw)
	}

	// The chat connector opened the inbound secret: a webhook signed with
	// it is taken.
	body := []byte(`{"message_id":"m-1","session_id":"s-1","user":{"id":"u-1"},"text":"Bonjour"}`)
	testkit.Eventually(t, 30*time.Second, func() bool {
		req, err := testkit.ChatRequest(base, b, body, time.Now())
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}, "the chat connector never took a webhook signed with the channel's secret")

	// Everything announced has left the outbox.
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(ctx) })
	testkit.Eventually(t, 30*time.Second, func() bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM inbox.outbox`).Scan(&n))
		return n == 0
	}, "the inbox's outbox never emptied")

	// Every record of sb.config.v1, key, value and headers.
	records := readTopic(t, brokers, events.TopicConfig)
	kinds := map[string]int{}
	for _, m := range records {
		kind, _, _ := strings.Cut(string(m.Key), "/")
		kinds[kind]++
		all := append(append([]byte{}, m.Key...), m.Value...)
		for _, h := range m.Headers {
			all = append(append(all, h.Key...), h.Value...)
		}
		require.Empty(t, leaked(all, secrets), "record %s at offset %d shows a secret: %s", m.Key, m.Offset, m.Value)
	}
	for _, kind := range []string{events.KindChatChannel, events.KindMailbox, events.KindSMSAccount} {
		require.NotZero(t, kinds[kind], "no %s record on %s: %v", kind, events.TopicConfig, kinds)
	}

	// Every text, JSON and bytea column of every table.
	rows, err := conn.Query(ctx, `SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns c
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_schema NOT LIKE 'pg\_%'
		  AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'bytea', 'ARRAY')
		  AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE')
		ORDER BY 1, 2, 3`)
	require.NoError(t, err)
	type column struct{ schema, table, name, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		return c, r.Scan(&c.schema, &c.table, &c.name, &c.typ)
	})
	require.NoError(t, err)
	schemas := map[string]bool{}
	sawAddress := false
	for _, c := range cols {
		schemas[c.schema] = true
		expr := pgx.Identifier{c.name}.Sanitize() + "::text"
		if c.typ == "bytea" {
			expr = pgx.Identifier{c.name}.Sanitize()
		}
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s IS NOT NULL`, expr, pgx.Identifier{c.schema, c.table}.Sanitize(), pgx.Identifier{c.name}.Sanitize()))
		require.NoError(t, err)
		values, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		require.NoError(t, err, "%s.%s.%s", c.schema, c.table, c.name)
		for _, v := range values {
			require.Empty(t, leaked(v, secrets), "%s.%s.%s shows a secret: %s", c.schema, c.table, c.name, v)
			sawAddress = sawAddress || bytes.Contains(v, []byte("support@acme.test"))
		}
	}
	for _, s := range []string{"inbox", "chat", "email", "sms"} {
		require.True(t, schemas[s], "schema %s not read: %v", s, schemas)
	}
	require.True(t, sawAddress, "the mailbox's address was read nowhere: the scan read nothing")
}

// readTopic returns every record of a one-partition topic, from its start
// to its end when called.
func readTopic(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, 0)
	require.NoError(t, err)
	last, err := conn.ReadLastOffset()
	conn.Close()
	require.NoError(t, err)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	require.NoError(t, r.SetOffset(kafka.FirstOffset))
	var out []kafka.Message
	for len(out) == 0 || out[len(out)-1].Offset < last-1 {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// TestSplitTargetWithoutKeyIsRefused: a target that seals or opens
// secrets, started without a key, stops at once with a message naming the
// setting and how to make a key.
func TestSplitTargetWithoutKeyIsRefused(t *testing.T) {
	for _, target := range []string{"inbox", "chat", "email", "sms"} {
		cmd := exec.Command(binary, "-target="+target, "-kafka.brokers=127.0.0.1:1", "-redis.url=redis://127.0.0.1:1", "-sms.public-base-url=https://sb.example.com")
		cmd.Env = append(os.Environ(), "SB_SECRETS_KEYS_FILE=", "SB_SECRETS_KEYS=")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s: %s", target, out)
		require.Equal(t, 2, exit.ExitCode(), "%s: %s", target, out)
		for _, want := range []string{"-secrets.keys-file", "SB_SECRETS_KEYS_FILE", "switchboard admin secrets new-key"} {
			require.Contains(t, string(out), want, target)
		}
	}
}
