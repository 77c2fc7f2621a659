package bus_test

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// flagsOf returns the flag names of the failures in err.
func flagsOf(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		var ce *config.Error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &ce) {
			out = append(out, ce.Flag)
		}
	}
	walk(err)
	return out
}

// TestSecuritySettings: the TLS and SASL settings are flags and SB_
// variables, and every way to get them wrong is refused naming the flag.
func TestSecuritySettings(t *testing.T) {
	pki := testkit.NewPKI(t)
	other := testkit.NewPKI(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	notPEM := write("not.pem", "hello\n")
	emptyPassword := write("empty-password", "\n")
	password := write("password", "s3cret\n")

	var base bus.Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	base.RegisterFlags("", f)
	require.NoError(t, config.Load(f, nil, func(k string) (string, bool) {
		v, ok := map[string]string{
			"SB_KAFKA_TLS_ENABLED":        "true",
			"SB_KAFKA_TLS_CA_FILE":        pki.CAFile,
			"SB_KAFKA_TLS_CERT_FILE":      pki.ClientCertFile,
			"SB_KAFKA_TLS_KEY_FILE":       pki.ClientKeyFile,
			"SB_KAFKA_TLS_SERVER_NAME":    "kafka.internal",
			"SB_KAFKA_SASL_MECHANISM":     "SCRAM-SHA-512",
			"SB_KAFKA_SASL_USERNAME":      "switchboard",
			"SB_KAFKA_SASL_PASSWORD_FILE": password,
		}[k]
		return v, ok
	}, nil))
	require.True(t, base.TLS.Enabled)
	require.Equal(t, "kafka.internal", base.TLS.ServerName)
	require.NoError(t, base.Validate(""), "Kafka spells mechanisms in capitals; so may the operator")
	tc, err := base.Dialer()
	require.NoError(t, err)
	require.Equal(t, "SCRAM-SHA-512", tc.SASLMechanism.Name())
	require.Len(t, tc.TLS.Certificates, 1)
	require.Equal(t, "kafka.internal", tc.TLS.ServerName)

	plain := base
	plain.SASL = bus.SASL{Mechanism: "plain", Username: "u", Password: "p"}
	d, err := plain.Dialer()
	require.NoError(t, err)
	require.Equal(t, "PLAIN", d.SASLMechanism.Name())
	tr, err := plain.Transport()
	require.NoError(t, err)
	require.Equal(t, "PLAIN", tr.SASL.Name())
	require.NotNil(t, tr.TLS)

	for _, tc := range []struct {
		name string
		edit func(c *bus.Config)
		flag string
		says string
	}{
		{"TLS files without TLS", func(c *bus.Config) { c.TLS.Enabled = false }, "kafka.tls.enabled", "other -kafka.tls settings are set"},
		{"CA file missing", func(c *bus.Config) { c.TLS.CAFile = filepath.Join(dir, "nope.pem") }, "kafka.tls.ca-file", "cannot be read"},
		{"CA file not PEM", func(c *bus.Config) { c.TLS.CAFile = notPEM }, "kafka.tls.ca-file", "holds no PEM certificate"},
		{"certificate without key", func(c *bus.Config) { c.TLS.KeyFile = "" }, "kafka.tls.key-file", "is empty while -kafka.tls.cert-file is set"},
		{"key without certificate", func(c *bus.Config) { c.TLS.CertFile = "" }, "kafka.tls.cert-file", "is empty while -kafka.tls.key-file is set"},
		{"key of another certificate", func(c *bus.Config) { c.TLS.KeyFile = other.ClientKeyFile }, "kafka.tls.cert-file", "private key does not match public key"},
		{"key not PEM", func(c *bus.Config) { c.TLS.KeyFile = notPEM }, "kafka.tls.cert-file", "key"},
		{"mechanism unknown", func(c *bus.Config) { c.SASL.Mechanism = "gssapi" }, "kafka.sasl.mechanism", `"gssapi" is not a mechanism`},
		{"no user", func(c *bus.Config) { c.SASL.Username = "" }, "kafka.sasl.username", "is empty"},
		{"no password", func(c *bus.Config) { c.SASL.PasswordFile = "" }, "kafka.sasl.password", "is empty while -kafka.sasl.mechanism is set"},
		{"password file missing", func(c *bus.Config) { c.SASL.PasswordFile = filepath.Join(dir, "nope") }, "kafka.sasl.password-file", "cannot be read"},
		{"password file empty", func(c *bus.Config) { c.SASL.PasswordFile = emptyPassword }, "kafka.sasl.password-file", "is empty"},
		{"user without mechanism", func(c *bus.Config) { c.SASL.Mechanism = "" }, "kafka.sasl.mechanism", "is empty while a SASL user or password is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.Validate("")
			require.Error(t, err)
			require.Contains(t, flagsOf(err), tc.flag, "%v", err)
			require.ErrorContains(t, err, tc.says)
			require.ErrorContains(t, err, config.EnvName(tc.flag), "the message names the variable too")
		})
	}
}

// secureConfig is the bus configuration of a secured broker with a topic
// of its own, and that topic.
func secureConfig(t *testing.T) (bus.Config, string) {
	t.Helper()
	const name = "sb.secure.v1"
	return testkit.BusConfig(testkit.SecureKafka(t, events.TopicSpec{Name: name, Partitions: 1})), name
}

// roundTrip publishes one event with cfg and reads it back with cfg.
func roundTrip(t *testing.T, cfg bus.Config, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := bus.NewProducer(cfg, telemetry.Discard())
	require.NoError(t, err)
	defer p.Close()
	ev, err := events.New("sb.test.happened.v1", "test", "tenant-1", time.Now(), payload{N: 7})
	require.NoError(t, err)
	require.NoError(t, p.Publish(ctx, topic, []byte("k"), ev))
	r, err := cfg.NewReader(kafka.ReaderConfig{Topic: topic, Partition: 0, MaxWait: 50 * time.Millisecond}, nil)
	require.NoError(t, err)
	defer r.Close()
	for {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err)
		got, _, err := events.FromMessage(ctx, m)
		require.NoError(t, err)
		if got.ID == ev.ID {
			return
		}
	}
}

// TestSecureBroker: with TLS and each SASL mechanism the broker accepts,
// events go through; each wrong setting is refused at once by Check with
// an error naming the setting to fix.
func TestSecureBroker(t *testing.T) {
	cfg, topic := secureConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, m := range []string{bus.MechanismSCRAMSHA256, bus.MechanismSCRAMSHA512, bus.MechanismPlain} {
		t.Run(m, func(t *testing.T) {
			c := cfg
			c.SASL.Mechanism = m
			require.NoError(t, c.Validate(""))
			require.NoError(t, c.Check(ctx))
			roundTrip(t, c, topic)
		})
	}

	wrongPassword := filepath.Join(t.TempDir(), "wrong")
	require.NoError(t, os.WriteFile(wrongPassword, []byte("not-the-password\n"), 0o600))
	for _, tc := range []struct {
		name string
		edit func(c *bus.Config)
		flag string
		says string
	}{
		{"wrong password", func(c *bus.Config) { c.SASL.PasswordFile = wrongPassword }, "kafka.sasl.password-file", `Kafka refused the credentials of SASL user "switchboard" with mechanism scram-sha-256`},
		{"wrong password given inline", func(c *bus.Config) { c.SASL.PasswordFile, c.SASL.Password = "", "nope" }, "kafka.sasl.password", "Kafka refused the credentials"},
		{"unknown user", func(c *bus.Config) { c.SASL.Username = "mallory" }, "kafka.sasl.password-file", `SASL user "mallory"`},
		{"untrusted CA", func(c *bus.Config) { c.TLS.CAFile = testkit.NewPKI(t).CAFile }, "kafka.tls.ca-file", "does not trust the certificate of the broker"},
		{"system CAs only", func(c *bus.Config) { c.TLS.CAFile = "" }, "kafka.tls.ca-file", "does not trust"},
		{"server name not in the certificate", func(c *bus.Config) { c.TLS.ServerName = "kafka.example.com" }, "kafka.tls.server-name", "kafka.example.com"},
		{"no client certificate", func(c *bus.Config) { c.TLS.CertFile, c.TLS.KeyFile = "", "" }, "kafka.tls.cert-file", "is empty and the broker ended the TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			tc.edit(&c)
			err := c.Check(ctx)
			require.Error(t, err)
			var ce *config.Error
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			require.Equal(t, tc.flag, ce.Flag, "%v", err)
			require.ErrorContains(t, err, tc.says)
			require.NotContains(t, err.Error(), "not-the-password", "no password in messages")
		})
	}

	t.Run("no SASL to a SASL listener", func(t *testing.T) {
		c := cfg
		c.SASL = bus.SASL{}
		err := c.Check(ctx)
		require.Error(t, err)
		require.ErrorContains(t, err, "kafka.sasl.mechanism")
	})
	t.Run("plaintext to a TLS listener", func(t *testing.T) {
		c := cfg
		c.TLS = bus.TLS{}
		err := c.Check(ctx)
		require.Error(t, err)
		require.ErrorContains(t, err, "set -kafka.tls.enabled=true if it does")
	})
}

// TestRefusedPasswordIsLoggedWithItsSetting: a consumer whose password the
// broker refuses keeps retrying, as kafka-go does, but every failure it
// logs names the setting to fix; a producer fails the publish, pointing at
// the settings, within its context.
func TestRefusedPasswordIsLoggedWithItsSetting(t *testing.T) {
	cfg, topic := secureConfig(t)
	cfg.SASL.PasswordFile, cfg.SASL.Password = "", "not-the-password"

	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	r, err := cfg.NewReader(kafka.ReaderConfig{GroupID: "g-refused", GroupTopics: []string{topic}, MaxWait: 50 * time.Millisecond}, log)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = r.FetchMessage(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, r.Close())
	out := logs.String()
	require.Contains(t, out, `"setting":"-kafka.sasl.password"`)
	require.Contains(t, out, `"env":"SB_KAFKA_SASL_PASSWORD"`)
	require.NotContains(t, out, "not-the-password")

	p, err := bus.NewProducer(cfg, telemetry.Discard())
	require.NoError(t, err)
	defer p.Close()
	ev, err := events.New("sb.test.happened.v1", "test", "tenant-1", time.Now(), payload{N: 1})
	require.NoError(t, err)
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	// kafka-go's writer sees the broker close the connection rather than
	// its answer: the error can only point at the likely settings.
	err = p.Publish(pctx, topic, nil, ev)
	require.Error(t, err)
	require.ErrorContains(t, err, "check -kafka.sasl.username, -kafka.sasl.password and -kafka.sasl.mechanism")
}

// lockedBuffer collects logs written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
