package bus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// SASL mechanisms, as -kafka.sasl.mechanism spells them.
const (
	MechanismPlain       = "plain"
	MechanismSCRAMSHA256 = "scram-sha-256"
	MechanismSCRAMSHA512 = "scram-sha-512"
)

var mechanisms = []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}

// clientID names Switchboard's connections in the brokers' logs and quotas.
const clientID = "switchboard"

// dialTimeout bounds a connection to a broker: TCP, TLS handshake and SASL
// exchange.
const dialTimeout = 10 * time.Second

// TLS encrypts the connections to Kafka and checks the brokers'
// certificates.
type TLS struct {
	// Enabled turns TLS on; the file settings need it.
	Enabled bool
	config.TLS
}

// SASL authenticates the connections to Kafka.
type SASL struct {
	// Mechanism is one of mechanisms; empty means no SASL.
	Mechanism string
	// Username is the SASL user.
	Username string
	// Password is the user's password; PasswordFile, which wins, holds it
	// instead (a mounted Kubernetes Secret), its trailing newline ignored.
	Password     string
	PasswordFile string
}

// registerSecurityFlags declares the TLS and SASL flags under prefix.
func (c *Config) registerSecurityFlags(prefix string, f *flag.FlagSet) {
	f.BoolVar(&c.TLS.Enabled, prefix+"kafka.tls.enabled", false, "Connect to the Kafka brokers over TLS (MSK, Confluent Cloud, Aiven, Strimzi's tls listener), checking their certificates. Not for the embedded broker.")
	c.TLS.TLS.RegisterFlags(prefix, "kafka.tls", "the Kafka brokers", f)
	f.StringVar(&c.SASL.Mechanism, prefix+"kafka.sasl.mechanism", "", "SASL mechanism that authenticates the connections to Kafka: plain, scram-sha-256 or scram-sha-512. Empty: no SASL. plain sends the password as it is: use it over TLS only.")
	f.StringVar(&c.SASL.Username, prefix+"kafka.sasl.username", "", "SASL user name.")
	f.StringVar(&c.SASL.Password, prefix+"kafka.sasl.password", "", "SASL password. Prefer -kafka.sasl.password-file: a flag shows in the process list, a variable in the pod's description.")
	f.StringVar(&c.SASL.PasswordFile, prefix+"kafka.sasl.password-file", "", "File holding the SASL password (a mounted Kubernetes Secret); a trailing newline is ignored. Wins over -kafka.sasl.password.")
}

// checkSecurity records what is wrong with the TLS and SASL settings.
func (c *Config) checkSecurity(ck *config.Checker) {
	if c.TLS.Enabled {
		c.TLS.Check(ck, "kafka.tls")
	} else {
		ck.Check(!c.TLS.Given(), "kafka.tls.enabled", "is false while other -kafka.tls settings are set", "set -kafka.tls.enabled=true to connect over TLS, or remove the other -kafka.tls settings")
	}
	m := strings.ToLower(c.SASL.Mechanism)
	if m == "" {
		ck.Check(c.SASL.Username == "" && c.SASL.Password == "" && c.SASL.PasswordFile == "", "kafka.sasl.mechanism",
			"is empty while a SASL user or password is set", "set plain, scram-sha-256 or scram-sha-512 (the mechanism of the brokers' listener)")
		return
	}
	ck.Check(slices.Contains(mechanisms, m), "kafka.sasl.mechanism", fmt.Sprintf("%q is not a mechanism Switchboard speaks", c.SASL.Mechanism), "set plain, scram-sha-256 or scram-sha-512")
	ck.Check(c.SASL.Username != "", "kafka.sasl.username", "is empty while -kafka.sasl.mechanism is set", "set the SASL user name")
	if c.SASL.PasswordFile != "" {
		_, err := c.SASL.password()
		ck.Check(err == nil, "kafka.sasl.password-file", fmt.Sprint(err), "set the path of a file holding the password alone")
	} else {
		ck.Check(c.SASL.Password != "", "kafka.sasl.password", "is empty while -kafka.sasl.mechanism is set", "set -kafka.sasl.password-file to a file holding the password (or -kafka.sasl.password)")
	}
}

// password returns the password, from its file when one is set.
func (s SASL) password() (string, error) {
	if s.PasswordFile == "" {
		return s.Password, nil
	}
	data, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("cannot be read: %w", err)
	}
	p := strings.TrimRight(string(data), "\r\n")
	if p == "" {
		return "", fmt.Errorf("%s is empty", s.PasswordFile)
	}
	return p, nil
}

// mechanism builds the SASL mechanism, nil when SASL is off.
func (s SASL) mechanism() (sasl.Mechanism, error) {
	name := strings.ToLower(s.Mechanism)
	if name == "" {
		return nil, nil
	}
	pass, err := s.password()
	if err != nil {
		return nil, fmt.Errorf("SASL password file: %w", err)
	}
	switch name {
	case MechanismPlain:
		return plain.Mechanism{Username: s.Username, Password: pass}, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		algo := scram.SHA256
		if name == MechanismSCRAMSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, s.Username, pass)
		if err != nil {
			return nil, fmt.Errorf("SASL %s: %w", name, err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("unknown SASL mechanism %q", s.Mechanism)
}

// security builds the TLS configuration and the SASL mechanism, each nil
// when off.
func (c Config) security() (*tls.Config, sasl.Mechanism, error) {
	var tc *tls.Config
	if c.TLS.Enabled {
		var err error
		if tc, err = c.TLS.Config(); err != nil {
			return nil, nil, fmt.Errorf("Kafka TLS: %w", err)
		}
	}
	m, err := c.SASL.mechanism()
	if err != nil {
		return nil, nil, fmt.Errorf("Kafka: %w", err)
	}
	return tc, m, nil
}

// Dialer returns the dialer of readers and direct connections to a
// broker, with the TLS and SASL settings. Every connection Switchboard
// makes to Kafka comes from Dialer or Transport.
func (c Config) Dialer() (*kafka.Dialer, error) {
	tc, m, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{ClientID: clientID, Timeout: dialTimeout, DualStack: true, TLS: tc, SASLMechanism: m}, nil
}

// Transport returns the transport of writers and clients, with the TLS
// and SASL settings. It keeps connections and a metadata poller per
// broker: CloseIdleConnections stops them.
func (c Config) Transport() (*kafka.Transport, error) {
	tc, m, err := c.security()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{ClientID: clientID, DialTimeout: dialTimeout, IdleTimeout: time.Minute, TLS: tc, SASL: m}, nil
}

// Client returns a client of the brokers for metadata and admin requests,
// each bounded by timeout, and the function that closes its connections
// once done with it.
func (c Config) Client(timeout time.Duration) (*kafka.Client, func(), error) {
	if len(c.Brokers) == 0 {
		return nil, nil, errors.New("no Kafka brokers configured")
	}
	t, err := c.Transport()
	if err != nil {
		return nil, nil, err
	}
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: timeout, Transport: t}, t.CloseIdleConnections, nil
}

// NewReader returns a reader with rc's settings, the brokers of c when rc
// names none, and c's dialer. With log, the reader's errors are logged as
// warnings, naming the setting at fault when they are a TLS or SASL
// failure.
func (c Config) NewReader(rc kafka.ReaderConfig, log *slog.Logger) (*kafka.Reader, error) {
	if len(rc.Brokers) == 0 {
		rc.Brokers = c.Brokers
	}
	if len(rc.Brokers) == 0 {
		return nil, errors.New("no Kafka brokers configured")
	}
	d, err := c.Dialer()
	if err != nil {
		return nil, err
	}
	rc.Dialer = d
	if log != nil && rc.ErrorLogger == nil {
		rc.ErrorLogger = c.readerLogger(log)
	}
	return kafka.NewReader(rc), nil
}

// readerLogger logs a kafka-go reader's errors. The reader retries them
// without end, and tells only its logger: a refused password or an
// untrusted certificate must say which setting to fix.
func (c Config) readerLogger(log *slog.Logger) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		attrs := []any{}
		for _, a := range args {
			if err, ok := a.(error); ok {
				var ce *config.Error
				if errors.As(c.Explain(err), &ce) {
					attrs = append(attrs, "setting", "-"+ce.Flag, "env", config.EnvName(ce.Flag), "fix", ce.Fix)
					break
				}
			}
		}
		log.Warn("kafka reader: "+fmt.Sprintf(format, args...), attrs...)
	})
}

// Check connects to the brokers as every producer and consumer does, TLS
// handshake and SASL exchange included, and asks one for the cluster's
// brokers. It returns nil once one answers. A failure the settings cause
// (an untrusted certificate, a listener without TLS, refused credentials)
// is a *config.Error naming the setting: retrying cannot fix it. Other failures (no broker reachable yet) are returned as they are.
func (c Config) Check(ctx context.Context) error {
	d, err := c.Dialer()
	if err != nil {
		return err
	}
	if len(c.Brokers) == 0 {
		return errors.New("no Kafka brokers configured")
	}
	var errs []error
	for _, b := range c.Brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(dialTimeout))
			_, err = conn.Brokers()
			conn.Close()
		}
		if err == nil {
			return nil
		}
		err = c.Explain(fmt.Errorf("Kafka broker %s: %w", b, err))
		var ce *config.Error
		if errors.As(err, &ce) {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Explain returns err as a *config.Error naming the setting to fix (the
// flag as the binary declares it, without prefix) when err is a failure of
// the TLS or SASL settings, and err itself otherwise.
func (c Config) Explain(err error) error {
	if err == nil {
		return nil
	}
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		notTLS      tls.RecordHeaderError
		opErr       *net.OpError
		ce          *config.Error
		passwordSet = "kafka.sasl.password"
	)
	if c.SASL.PasswordFile != "" {
		passwordSet = "kafka.sasl.password-file"
	}
	invalidSetting := func(name, problem, fix string) error {
		return config.Invalid(name, problem, fix)
	}
	switch {
	case errors.As(err, &ce):
		return err
	case errors.As(err, &unknownCA):
		return invalidSetting("kafka.tls.ca-file", fmt.Sprintf("does not trust the certificate of the broker: %v", err),
			"set the PEM bundle of the CA that signed the brokers' certificates (empty: the system's CAs)")
	case errors.As(err, &hostname):
		return invalidSetting("kafka.tls.server-name", fmt.Sprintf("the broker's certificate is not for the name Switchboard checked: %v", err),
			"set the name the certificate carries, or list the brokers by that name in -kafka.brokers")
	case errors.As(err, &invalid):
		return invalidSetting("kafka.tls.ca-file", fmt.Sprintf("the broker's certificate cannot be trusted: %v", err),
			"check the brokers' certificates (expired?) and the CA bundle")
	case errors.As(err, &notTLS):
		return invalidSetting("kafka.tls.enabled", fmt.Sprintf("is true but the broker does not answer TLS on this port: %v", err),
			"list the brokers' TLS listener in -kafka.brokers, or set -kafka.tls.enabled=false for a plaintext listener")
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the broker: crypto/tls reports it so.
		if c.TLS.CertFile == "" {
			return invalidSetting("kafka.tls.cert-file", fmt.Sprintf("is empty and the broker ended the TLS handshake: %v", err),
				"the listener may require a client certificate: set -kafka.tls.cert-file and -kafka.tls.key-file")
		}
		return invalidSetting("kafka.tls.cert-file", fmt.Sprintf("the broker refused the TLS handshake: %v", err),
			"set a client certificate signed by a CA the brokers trust")
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return invalidSetting(passwordSet, fmt.Sprintf("Kafka refused the credentials of SASL user %q with mechanism %s: %v", c.SASL.Username, strings.ToLower(c.SASL.Mechanism), err),
			"check -kafka.sasl.username and the password, and that the listener accepts this mechanism")
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return invalidSetting("kafka.sasl.mechanism", fmt.Sprintf("the broker does not accept %s: %v", strings.ToLower(c.SASL.Mechanism), err),
			"set the mechanism of the brokers' listener: plain, scram-sha-256 or scram-sha-512")
	case errors.Is(err, kafka.IllegalSASLState) && c.SASL.Mechanism == "":
		return invalidSetting("kafka.sasl.mechanism", fmt.Sprintf("is empty and the broker requires SASL: %v", err),
			"set the mechanism, user and password of the brokers' listener")
	case closedAtOnce(err) && !c.TLS.Enabled:
		return fmt.Errorf("%w (a listener that requires TLS closes plaintext connections so: set -kafka.tls.enabled=true if it does)", err)
	case closedAtOnce(err) && c.SASL.Mechanism == "":
		return fmt.Errorf("%w (a listener that requires SASL closes unauthenticated connections so: set -kafka.sasl.mechanism if it does)", err)
	case closedAtOnce(err):
		return fmt.Errorf("%w (a broker closes the connection so when it refuses the SASL credentials: if this repeats, check -kafka.sasl.username, -%s and -kafka.sasl.mechanism)", err, passwordSet)
	}
	return err
}

// closedAtOnce reports whether err is the broker closing the connection
// before it answered.
func closedAtOnce(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}
