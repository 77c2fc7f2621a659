package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TestSecuredKafkaEndToEnd: against a broker that requires TLS with a
// client certificate and SASL SCRAM, the binary, given the CA, the
// certificate and the credentials as SB_ variables, takes a chat webhook
// in and stores the message.
func TestSecuredKafkaEndToEnd(t *testing.T) {
	brokers := testkit.SecureKafka(t)
	dbURL := testkit.DatabaseURL(t)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Every component in one process, on the secured broker (Redis
	// embedded).
	n := newProcesses(t).start(t, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(),
		Env: testkit.KafkaEnv(brokers)})

	body := []byte(`{"message_id":"msg-secure-1","session_id":"session-1","user":{"id":"user-1"},"text":"over TLS and SCRAM"}`)
	req, err := testkit.ChatRequest(n.Base(), b, body, time.Now())
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	testkit.Eventually(t, 60*time.Second, func() bool {
		var stored int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE external_id = 'msg-secure-1' AND body = 'over TLS and SCRAM'`).Scan(&stored))
		return stored == 1
	}, "the message was not stored")
}

// TestSecuredKafkaRefusalStopsTheStart: a wrong SCRAM password, or a CA
// that did not sign the broker's certificate, stops the binary at start
// with a non-zero status and a message naming the setting and its
// variable, instead of components retrying forever.
func TestSecuredKafkaRefusalStopsTheStart(t *testing.T) {
	brokers := testkit.SecureKafka(t)
	dbURL := testkit.DatabaseURL(t)
	wrong := filepath.Join(t.TempDir(), "wrong-password")
	require.NoError(t, os.WriteFile(wrong, []byte("not-the-password\n"), 0o600))
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"wrong SCRAM password", []string{"SB_KAFKA_SASL_PASSWORD_FILE=" + wrong},
			[]string{"-kafka.sasl.password-file", "SB_KAFKA_SASL_PASSWORD_FILE", `Kafka refused the credentials of SASL user "` + testkit.KafkaUser + `"`}},
		{"untrusted CA", []string{"SB_KAFKA_TLS_CA_FILE=" + testkit.NewPKI(t).CAFile},
			[]string{"-kafka.tls.ca-file", "SB_KAFKA_TLS_CA_FILE", "does not trust the certificate of the broker"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary, "-target=inbox,router,scheduler,chat", "-data-dir", t.TempDir(), "-http.addr", "127.0.0.1:0")
			cmd.Env = append(append(append(os.Environ(), "DATABASE_URL="+dbURL, "SB_REDIS_URL=redis://127.0.0.1:6379/12"),
				testkit.KafkaEnv(brokers)...), tc.env...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, ctx.Err(), "the process did not stop by itself:\n%s", out)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "%s", out)
			require.Equal(t, 1, exit.ExitCode(), "%s", out)
			last := lastLines(string(out), 1)
			for _, w := range tc.want {
				require.True(t, strings.Contains(last, w), "last line %q lacks %q", last, w)
			}
			require.NotContains(t, string(out), "not-the-password")
		})
	}
}

// TestKafkaSecurityNeedsBrokers: TLS or SASL settings with the embedded
// broker are refused before anything starts.
func TestKafkaSecurityNeedsBrokers(t *testing.T) {
	for _, flag := range []string{"-kafka.tls.enabled", "-kafka.sasl.mechanism=scram-sha-512"} {
		cmd := exec.Command(binary, "-target=all", "-data-dir", t.TempDir(), flag, "-kafka.sasl.username=u", "-kafka.sasl.password=p")
		cmd.Env = append(os.Environ(), "SB_KAFKA_BROKERS=", "KAFKA_BROKERS=")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		require.Equal(t, 2, exit.ExitCode(), "%s", out)
		name := strings.TrimPrefix(strings.Split(flag, "=")[0], "-")
		require.Contains(t, string(out), fmt.Sprintf("setting -%s", name))
		require.Contains(t, string(out), "the embedded broker speaks plaintext")
	}
}
