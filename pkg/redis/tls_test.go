package redis_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// tlsRedis starts the machine's redis-server with TLS only, on a free
// port, with the certificates of pki (client certificates checked when
// given) and ACL user "agent" (password "agent-pw"); it is stopped when the
// test ends. A missing redis-server, or one built without TLS, fails the
// test: scripts/services.sh installs Debian's, which has TLS.
func tlsRedis(t *testing.T, pki *testkit.PKI) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: no TLS Redis to test against (scripts/services.sh redis installs it)")
	}
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	var out bytes.Buffer
	cmd := exec.Command(bin, "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", pki.ServerCertFile, "--tls-key-file", pki.ServerKeyFile, "--tls-ca-cert-file", pki.CAFile,
		"--tls-auth-clients", "optional", "--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--user", "default", "off", "--user", "agent", "on", ">agent-pw", "~*", "+@all")
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			if strings.Contains(out.String(), "Bad directive") || strings.Contains(out.String(), "TLS") && strings.Contains(out.String(), "not supported") {
				t.Fatalf("redis-server was built without TLS support:\n%s", out.String())
			}
			t.Fatalf("redis-server exited:\n%s", out.String())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server does not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectOverTLS: a rediss:// URL with an ACL user reaches a Redis
// that speaks TLS only, trusting the CA of -redis.tls.ca-file, with or
// without a client certificate; each wrong setting fails with a message
// naming it.
func TestConnectOverTLS(t *testing.T) {
	pki := testkit.NewPKI(t)
	addr := tlsRedis(t, pki)
	ctx := testkit.Context(t)
	url := "rediss://agent:agent-pw@" + addr + "/0"

	for name, tc := range map[string]config.TLS{
		"CA only":            {CAFile: pki.CAFile},
		"client certificate": {CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile},
		"server name":        {CAFile: pki.CAFile, ServerName: "localhost"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := redis.Config{URL: url, TLS: tc}
			require.NoError(t, cfg.Validate(""))
			rdb, err := redis.Connect(ctx, cfg)
			require.NoError(t, err)
			defer rdb.Close()
			who, err := rdb.Do(ctx, "ACL", "WHOAMI").Text()
			require.NoError(t, err)
			require.Equal(t, "agent", who)
			key := testkit.RandomName("sbtest:tls:")
			require.NoError(t, rdb.Set(ctx, key, "v", time.Minute).Err())
			require.Equal(t, "v", rdb.Get(ctx, key).Val())
		})
	}

	short := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		t.Cleanup(cancel)
		return c
	}
	t.Run("wrong password", func(t *testing.T) {
		_, err := redis.Connect(short(), redis.Config{URL: "rediss://agent:nope@" + addr + "/0", TLS: config.TLS{CAFile: pki.CAFile}})
		require.ErrorContains(t, err, "rejected the connection")
		require.NotContains(t, err.Error(), "nope")
	})
	t.Run("CA not given", func(t *testing.T) {
		_, err := redis.Connect(short(), redis.Config{URL: url})
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, "redis.tls.ca-file", ce.Flag)
		require.NotContains(t, err.Error(), "agent-pw")
	})
	t.Run("server name not in the certificate", func(t *testing.T) {
		_, err := redis.Connect(short(), redis.Config{URL: url, TLS: config.TLS{CAFile: pki.CAFile, ServerName: "redis.example.com"}})
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, "redis.tls.server-name", ce.Flag)
	})
	t.Run("plaintext URL", func(t *testing.T) {
		_, err := redis.Connect(short(), redis.Config{URL: "redis://agent:agent-pw@" + addr + "/0"})
		require.Error(t, err)
		require.ErrorContains(t, err, "rediss://")
	})
	t.Run("TLS settings need rediss://", func(t *testing.T) {
		err := (&redis.Config{URL: "redis://" + addr + "/0", TLS: config.TLS{CAFile: pki.CAFile}}).Validate("")
		var ce *config.Error
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, "redis.url", ce.Flag)
		err = (&redis.Config{URL: url, TLS: config.TLS{CertFile: pki.ClientCertFile}}).Validate("")
		require.ErrorContains(t, err, "-redis.tls.key-file")
	})
}
