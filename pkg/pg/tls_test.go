package pg_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// withParams returns the URL raw with its query parameters set to params,
// and its host name replaced by host when host is not empty.
func withParams(t *testing.T, raw, host string, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("the test database is not given as a postgres:// URL (%v): its TLS parameters cannot be set", err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	if host != "" {
		u.Host = net.JoinHostPort(host, u.Port())
	}
	return u.String()
}

// usesTLS reports whether the connection of pool's URL went over TLS.
func usesTLS(t *testing.T, rawURL string) bool {
	t.Helper()
	pool, err := pg.Connect(context.Background(), pg.Config{URL: rawURL, MaxConns: 2, ConnectTimeout: 5 * time.Second})
	require.NoError(t, err)
	defer pool.Close()
	var ssl bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl))
	return ssl
}

// TestConnectOverTLS: DATABASE_URL's sslmode and sslrootcert reach
// PostgreSQL over TLS, and a certificate the CA did not sign is refused
// with a message that says what to set. It runs when the test cluster has
// ssl on, as Debian's has with its snakeoil certificate.
func TestConnectOverTLS(t *testing.T) {
	base := testkit.DatabaseURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	var ssl, certFile string
	require.NoError(t, conn.QueryRow(ctx, "SHOW ssl").Scan(&ssl))
	if ssl != "on" {
		conn.Close(ctx)
		t.Skipf("the test PostgreSQL has ssl=%s: no TLS to test against (turn ssl on in postgresql.conf to run this test)", ssl)
	}
	// Superusers and pg_read_all_settings members see the path.
	_ = conn.QueryRow(ctx, "SHOW ssl_cert_file").Scan(&certFile)
	conn.Close(ctx)

	require.True(t, usesTLS(t, withParams(t, base, "", map[string]string{"sslmode": "require"})), "sslmode=require")

	t.Run("verify-ca and verify-full", func(t *testing.T) {
		data, err := os.ReadFile(certFile)
		if err != nil {
			t.Skipf("the server's certificate %q cannot be read (%v): nothing to verify it against", certFile, err)
		}
		block, _ := pem.Decode(data)
		require.NotNil(t, block, "%s holds no PEM", certFile)
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		// Self-signed, as Debian's snakeoil is, it is its own root.
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots}); err != nil {
			t.Skipf("the server's certificate %s is signed by a CA this test does not know: %v", certFile, err)
		}
		require.True(t, usesTLS(t, withParams(t, base, "", map[string]string{"sslmode": "verify-ca", "sslrootcert": certFile})), "sslmode=verify-ca")
		if cert.VerifyHostname("localhost") == nil {
			require.True(t, usesTLS(t, withParams(t, base, "localhost", map[string]string{"sslmode": "verify-full", "sslrootcert": certFile})), "sslmode=verify-full")
		}
	})

	t.Run("a CA that did not sign the certificate", func(t *testing.T) {
		other := testkit.NewPKI(t).CAFile
		_, err := pg.Connect(ctx, pg.Config{URL: withParams(t, base, "", map[string]string{"sslmode": "verify-ca", "sslrootcert": other}), MaxConns: 2, ConnectTimeout: 5 * time.Second})
		require.Error(t, err)
		require.ErrorContains(t, err, "Set sslrootcert in DATABASE_URL")
		require.NotErrorIs(t, err, pg.ErrUnreachable)
	})
}
