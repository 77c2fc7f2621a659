package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func noEnv(string) (string, bool) { return "", false }

func admin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"admin"}, args...), noEnv, &out, &errOut)
	return code, out.String(), errOut.String()
}

// testKeys is a keys setting of one new key.
func testKeys(t *testing.T) string {
	t.Helper()
	k, err := seal.NewKey("k1")
	require.NoError(t, err)
	return k.String()
}

func TestAdminBootstrap(t *testing.T) {
	db := testkit.DatabaseURL(t)
	keys := testKeys(t)
	code, out, errOut := admin(t, "create-tenant", "-database.url", db, "-name", "Acme", "-secrets.keys", keys)
	require.Equal(t, exitOK, code, errOut)
	var b testkit.Bootstrap
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	require.True(t, strings.HasPrefix(b.APIToken.Token, "sbt_"))
	require.True(t, strings.HasPrefix(b.ChatChannel.Secret, "sbwh_"))
	require.Equal(t, "/v1/webhooks/chat/"+b.ChatChannel.ID+"/messages", b.WebhookPath)

	code, out, errOut = admin(t, "create-token", "-database.url", db, "-tenant", b.Tenant.ID, "-name", "crm", "-secrets.keys", keys)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, `"token": "sbt_`)
	code, out, errOut = admin(t, "create-chat-channel", "-database.url", db, "-tenant", b.Tenant.ID, "-name", "app", "-secrets.keys", keys)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, `"webhook_path": "/v1/webhooks/chat/`)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create-token", "-database.url", db, "-tenant", "00000000-0000-0000-0000-000000000000", "-name", "x", "-secrets.keys", keys}, "tenant not found"},
		{[]string{"create-tenant", "-database.url", db, "-name", "x", "-data-dir", t.TempDir()}, "-secrets.keys-file"},
		{[]string{"create-token", "-database.url", db, "-tenant", "acme", "-name", "x"}, "-tenant"},
		{[]string{"create-tenant", "-database.url", db}, "-name"},
		{[]string{"create-tenant", "-database.url", db, "-name", strings.Repeat("x", 201), "-secrets.keys", keys}, "1 to 200"},
		{[]string{"rename-tenant"}, "unknown command"},
	} {
		code, _, errOut := admin(t, c.args...)
		require.Equal(t, exitUsage, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.want)
	}
}

// create-tenant with -admin-email makes the tenant's first admin user,
// who logs in to the console at console_url.
func TestAdminCreateTenantWithAdmin(t *testing.T) {
	db := testkit.DatabaseURL(t)
	code, out, errOut := admin(t, "create-tenant", "-database.url", db, "-name", "Acme",
		"-admin-email", "ada@example.com", "-admin-password", "correct horse battery", "-console-url", "https://support.example.com",
		"-secrets.keys", testKeys(t))
	require.Equal(t, exitOK, code, errOut)
	var b struct {
		testkit.Bootstrap
		AdminUser struct {
			ID       string `json:"id"`
			Email    string `json:"email"`
			Name     string `json:"name"`
			Role     string `json:"role"`
			CanLogIn bool   `json:"can_log_in"`
		} `json:"admin_user"`
		ConsoleURL string `json:"console_url"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	require.Equal(t, "https://support.example.com/?tenant="+b.Tenant.ID, b.ConsoleURL)
	require.Equal(t, "ada@example.com", b.AdminUser.Email)
	require.Equal(t, "Administrator", b.AdminUser.Name)
	require.Equal(t, "admin", b.AdminUser.Role)
	require.True(t, b.AdminUser.CanLogIn)
	require.NotContains(t, out, "correct horse battery")

	// Without an admin: the console's address all the same, and no user.
	code, out, errOut = admin(t, "create-tenant", "-database.url", db, "-name", "Bravo", "-secrets.keys", testKeys(t))
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, `"console_url": "http://localhost:8080/?tenant=`)
	require.NotContains(t, out, "admin_user")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-admin-email", "ada@example.com"}, "-admin-password"},
		{[]string{"-admin-password", "correct horse battery"}, "-admin-email"},
		{[]string{"-admin-name", "Ada"}, "-admin-email"},
		{[]string{"-admin-email", "ada@example.com", "-admin-password", "short"}, "-admin-password"},
		{[]string{"-admin-email", "Ada <ada@example.com>", "-admin-password", "correct horse battery"}, "-admin-email"},
		{[]string{"-admin-email", "ada@example.com", "-admin-password", "correct horse battery", "-admin-name", strings.Repeat("n", 201)}, "-admin-name"},
		{[]string{"-console-url", "ftp://example.com"}, "-console-url"},
		{[]string{"-console-url", "http://example.com/?tenant=x"}, "-console-url"},
	} {
		args := append([]string{"create-tenant", "-database.url", db, "-name", "Refused", "-secrets.keys", testKeys(t)}, c.args...)
		code, out, errOut := admin(t, args...)
		require.Equal(t, exitUsage, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.want, "%v", c.args)
		require.Empty(t, out, "%v", c.args)
	}
}

func TestAdminCreateTopics(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer c.Close()
	addr := c.ListenAddrs()[0]
	for i := 0; i < 2; i++ { // the second time, everything exists already
		code, out, errOut := admin(t, "create-topics", "-kafka.brokers", addr)
		require.Equal(t, exitOK, code, errOut)
		require.Contains(t, out, events.TopicInbound)
	}
	conn, err := kafka.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	for _, spec := range events.Topics() {
		parts, err := conn.ReadPartitions(spec.Name)
		require.NoError(t, err)
		require.Len(t, parts, spec.Partitions, spec.Name)
	}
}

func TestAdminReplayDeadLetters(t *testing.T) {
	brokers := testkit.Kafka(t)
	cfg := testkit.BusConfig(brokers)
	p, err := bus.NewProducer(cfg, telemetry.Discard())
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, p.PublishRecords(ctx, kafka.Message{Topic: events.TopicDLQ, Key: []byte("conv-1"), Value: []byte(`{"n":1}`), Headers: []kafka.Header{
		{Key: "ce_id", Value: []byte("event-1")},
		{Key: bus.HeaderDLQTopic, Value: []byte(events.TopicInbound)}, {Key: bus.HeaderDLQHandler, Value: []byte("switchboard-inbox")},
		{Key: bus.HeaderDLQReason, Value: []byte("permanent: unknown channel account")}}}))

	code, out, errOut := admin(t, append([]string{"replay-dead-letters", "-dry-run"}, testkit.KafkaFlags(brokers)...)...)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, `"topic":"sb.inbound.v1"`)
	require.Contains(t, out, `"replayed":false`)

	code, out, errOut = admin(t, append([]string{"replay-dead-letters", "-handler", "switchboard-inbox"}, testkit.KafkaFlags(brokers)...)...)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, `"replayed":true`)
	r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: brokers, Topic: events.TopicInbound, GroupID: "replay-check", StartOffset: kafka.FirstOffset, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	require.NoError(t, err)
	require.Equal(t, "conv-1", string(m.Key))
	require.Equal(t, `{"n":1}`, string(m.Value))
	for _, h := range m.Headers {
		require.False(t, strings.HasPrefix(h.Key, "dlq_"), "dlq headers are removed: %s", h.Key)
	}

	code, _, errOut = admin(t, "replay-dead-letters")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "kafka.brokers")
}
