package testkit

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// EnvKafkaSecure, set to 1, makes Kafka start SecureKafka's broker: `make
// test` runs the tests that talk to Kafka a second time so.
const EnvKafkaSecure = "SB_TEST_KAFKA_SECURE"

// KafkaUser is the SASL user of SecureKafka's broker.
const KafkaUser = "switchboard"

// KafkaSecure reports whether SB_TEST_KAFKA_SECURE asks for secured brokers.
func KafkaSecure() bool {
	v, _ := strconv.ParseBool(os.Getenv(EnvKafkaSecure))
	return v
}

// secured maps the address of each broker SecureKafka started to the TLS
// and SASL settings that reach it. BusConfig and the Kafka helpers below
// read it, so that tests build their settings from a broker's address
// alone, whichever broker Kafka gave them.
var secured sync.Map // string -> bus.Config

// SecureKafka starts an in-process broker that requires TLS, with a client
// certificate, and SASL authentication, with Switchboard's topics plus
// extra ones; it is stopped when the test ends. The certificates are NewPKI's;
// user KafkaUser may log in with SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN.
// BusConfig(brokers) carries the CA, the client certificate and
// SCRAM-SHA-256 credentials (the password in a file).
func SecureKafka(t testing.TB, extra ...events.TopicSpec) []string {
	t.Helper()
	pki := NewPKI(t)
	password := RandomName("pw-")
	passwordFile := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	brokers := startKafka(t, kfake.TLS(pki.ServerTLS()), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", KafkaUser, password),
		kfake.Superuser("SCRAM-SHA-512", KafkaUser, password),
		kfake.Superuser("PLAIN", KafkaUser, password))
	var sec bus.Config
	sec.TLS.Enabled = true
	sec.TLS.CAFile = pki.CAFile
	sec.TLS.CertFile, sec.TLS.KeyFile = pki.ClientCertFile, pki.ClientKeyFile
	sec.SASL = bus.SASL{Mechanism: bus.MechanismSCRAMSHA256, Username: KafkaUser, PasswordFile: passwordFile}
	for _, b := range brokers {
		secured.Store(b, sec)
	}
	t.Cleanup(func() {
		for _, b := range brokers {
			secured.Delete(b)
		}
	})
	createTopics(t, brokers, extra)
	return brokers
}

// withSecurity returns cfg with the TLS and SASL settings of brokers when
// SecureKafka started them.
func withSecurity(brokers []string, cfg bus.Config) bus.Config {
	if len(brokers) == 0 {
		return cfg
	}
	if v, ok := secured.Load(brokers[0]); ok {
		sec := v.(bus.Config)
		cfg.TLS, cfg.SASL = sec.TLS, sec.SASL
	}
	return cfg
}

// KafkaReader is kafka.NewReader for a test, with the TLS and SASL
// settings of rc.Brokers.
func KafkaReader(t testing.TB, rc kafka.ReaderConfig) *kafka.Reader {
	t.Helper()
	r, err := BusConfig(rc.Brokers).NewReader(rc, nil)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return r
}

// KafkaDialer is the dialer of brokers, with their TLS and SASL settings.
func KafkaDialer(t testing.TB, brokers []string) *kafka.Dialer {
	t.Helper()
	d, err := BusConfig(brokers).Dialer()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return d
}

// KafkaClient is a client of brokers, with their TLS and SASL settings,
// closed when the test ends.
func KafkaClient(t testing.TB, brokers []string) *kafka.Client {
	t.Helper()
	c, done, err := BusConfig(brokers).Client(10 * time.Second)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(done)
	return c
}

// kafkaSettings are the flags, with their values, that reach brokers.
func kafkaSettings(brokers []string) [][2]string {
	out := [][2]string{{"kafka.brokers", strings.Join(brokers, ",")}}
	cfg := BusConfig(brokers)
	if cfg.TLS.Enabled {
		out = append(out, [2]string{"kafka.tls.enabled", "true"}, [2]string{"kafka.tls.ca-file", cfg.TLS.CAFile},
			[2]string{"kafka.tls.cert-file", cfg.TLS.CertFile}, [2]string{"kafka.tls.key-file", cfg.TLS.KeyFile})
	}
	if cfg.SASL.Mechanism != "" {
		out = append(out, [2]string{"kafka.sasl.mechanism", cfg.SASL.Mechanism}, [2]string{"kafka.sasl.username", cfg.SASL.Username},
			[2]string{"kafka.sasl.password-file", cfg.SASL.PasswordFile})
	}
	return out
}

// KafkaFlags are the command-line flags of a switchboard process that
// reach brokers: -kafka.brokers, and the TLS and SASL settings of a
// secured broker.
func KafkaFlags(brokers []string) []string {
	var out []string
	for _, s := range kafkaSettings(brokers) {
		out = append(out, "-"+s[0]+"="+s[1])
	}
	return out
}

// KafkaEnv is KafkaFlags as SB_ environment variables, NAME=value.
func KafkaEnv(brokers []string) []string {
	var out []string
	for _, s := range kafkaSettings(brokers) {
		out = append(out, config.EnvName(s[0])+"="+s[1])
	}
	return out
}
