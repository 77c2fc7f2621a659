package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// binary is the switchboard binary built once for these tests.
var binary string

// keysFile holds the key of every process these tests start.
var keysFile string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build switchboard:", err)
		os.Exit(1)
	}
	// One keys file for every process the tests start (split targets, the
	// admin commands), as a deployment mounts one: the processes inherit
	// the variable. Tests of the key settings themselves override it.
	keysFile = filepath.Join(dir, "secrets.keys")
	if _, err := seal.EnsureKeysFile(keysFile, "e2e"); err != nil {
		fmt.Fprintln(os.Stderr, "keys file:", err)
		os.Exit(1)
	}
	os.Setenv("SB_SECRETS_KEYS_FILE", keysFile)
	// The tests poll the API far faster than an agent: the API's request
	// rates are off in every process they start (services/inbox tests the
	// limits themselves).
	os.Setenv("SB_INBOX_API_TOKEN_RATE", "0")
	os.Setenv("SB_INBOX_API_TENANT_RATE", "0")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startNode(t *testing.T, dbURL, dataDir, addr string) *testkit.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := testkit.StartNode(ctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: dataDir, Addr: addr})
	require.NoError(t, err)
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			t.Logf("switchboard output:\n%s", n.Logs())
		}
	})
	return n
}

// post sends chat message i and reports whether it was acknowledged.
func post(client *http.Client, base string, b testkit.Bootstrap, i int) bool {
	body := []byte(fmt.Sprintf(`{"message_id":"msg-%04d","session_id":"session-%02d","user":{"id":"user-%02d"},"text":"message %d"}`, i, i%40, i%40, i))
	req, err := testkit.ChatRequest(base, b, body, time.Now())
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusAccepted
}

// TestKillAndRestartLosesAndDoublesNothing posts 1,000 signed chat messages
// to the all-in-one binary, kills it with SIGKILL part-way, restarts it, and
// checks that every acknowledged message is stored exactly once. Messages
// whose request failed are sent again after the restart, as a chat platform
// retries, and end up stored exactly once too.
func TestKillAndRestartLosesAndDoublesNothing(t *testing.T) {
	const total = 1000
	dbURL := testkit.DatabaseURL(t)
	dataDir := t.TempDir()
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	base := "http://" + addr
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	first := startNode(t, dbURL, dataDir, addr)

	var (
		acked   = make([]atomic.Bool, total)
		nacked  int
		nackedM sync.Mutex
		next    atomic.Int64
		ackN    atomic.Int64
		killed  atomic.Bool
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total || killed.Load() {
					return
				}
				if post(client, base, b, i) {
					acked[i].Store(true)
					if ackN.Add(1) == total*2/5 && killed.CompareAndSwap(false, true) {
						first.Kill()
					}
				} else {
					nackedM.Lock()
					nacked++
					nackedM.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.True(t, killed.Load(), "the process was never killed")
	ackedBefore := int(ackN.Load())
	t.Logf("before SIGKILL: %d acknowledged, %d failed", ackedBefore, nacked)

	startNode(t, dbURL, dataDir, addr)
	// Send what was not acknowledged, including what was never sent.
	for i := 0; i < total; i++ {
		if acked[i].Load() {
			continue
		}
		ok := false
		for attempt := 0; attempt < 5 && !ok; attempt++ {
			ok = post(client, base, b, i)
		}
		require.True(t, ok, "message %d refused after the restart", i)
		acked[i].Store(true)
	}

	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	counts := map[string]int{}
	testkit.Eventually(t, 60*time.Second, func() bool {
		rows, err := conn.Query(context.Background(), `SELECT external_id, count(*) FROM inbox.messages GROUP BY external_id`)
		require.NoError(t, err)
		counts = map[string]int{}
		for rows.Next() {
			var id string
			var n int
			require.NoError(t, rows.Scan(&id, &n))
			counts[id] = n
		}
		require.NoError(t, rows.Err())
		return len(counts) == total
	}, "stored %d distinct messages of %d", len(counts), total)
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("msg-%04d", i)
		require.Equal(t, 1, counts[id], "message %s stored %d times", id, counts[id])
	}
	var convs int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM inbox.conversations`).Scan(&convs))
	require.Equal(t, 40, convs)

	// And the agent sees them through the API.
	req, err := http.NewRequest(http.MethodGet, base+"/v1/conversations?limit=200", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.APIToken.Token)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	require.Len(t, list.Items, 40)
}

// TestUnreachableDatabaseExitsWithAClearMessage: no PostgreSQL, one message
// that says what to set, and a non-zero exit.
func TestUnreachableDatabaseExitsWithAClearMessage(t *testing.T) {
	cmd := exec.Command(binary, "-target=all", "-data-dir", t.TempDir(), "-http.addr", "127.0.0.1:0", "-database.connect-timeout", "2s")
	cmd.Env = append(os.Environ(), "DATABASE_URL=postgres://127.0.0.1:1/switchboard?sslmode=disable")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.NotZero(t, exit.ExitCode())
	require.Contains(t, string(out), "PostgreSQL is unreachable")
	require.Contains(t, string(out), "DATABASE_URL")
}

// TestBadSettingsNameTheSetting: a bad value stops the binary before it
// starts anything, naming the flag and its environment variable.
func TestBadSettingsNameTheSetting(t *testing.T) {
	cmd := exec.Command(binary, "-target=inbox")
	cmd.Env = append(os.Environ(), "SB_HTTP_REQUEST_TIMEOUT=0s", "KAFKA_BROKERS=", "SB_KAFKA_BROKERS=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	for _, want := range []string{"SB_HTTP_REQUEST_TIMEOUT", "-kafka.brokers", "KAFKA_BROKERS", "-redis.url"} {
		require.True(t, strings.Contains(string(out), want), "output %q lacks %q", out, want)
	}
}

func TestSMSTargetNeedsThePublicURL(t *testing.T) {
	cmd := exec.Command(binary, "-target=sms", "-kafka.brokers=127.0.0.1:1", "-redis.url=redis://127.0.0.1:1")
	cmd.Env = append(os.Environ(), "SB_SMS_PUBLIC_BASE_URL=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 2, exit.ExitCode())
	require.Contains(t, string(out), "-sms.public-base-url")
	require.Contains(t, string(out), "SB_SMS_PUBLIC_BASE_URL")
}
