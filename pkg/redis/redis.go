// Package redis holds Switchboard's use of Redis: the connection settings,
// assignment locks with fencing tokens (Locker) and agent presence kept
// alive by heartbeats (Presence).
//
// Redis holds nothing durable. Locks and presence are both leases that
// expire on their own, so losing Redis loses at most a few seconds of
// "who is online" and lets a conversation be assigned twice concurrently;
// the second hazard is closed by fencing tokens, checked where the
// assignment is written (PostgreSQL), not in Redis. See Locker.
//
// Every key is built from a caller-supplied prefix, so that several
// deployments, or several tests, share one Redis without seeing each
// other's keys.
package redis

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// pingTimeout bounds the first PING in Connect, so that a wrong address fails
// the start quickly with a useful message instead of hanging.
const pingTimeout = 5 * time.Second

// Config holds the connection settings.
type Config struct {
	// URL is a Redis URL such as redis://host:6379/0. Empty means "start the
	// embedded Redis", which only the all-in-one target allows; the caller
	// enforces that because only it knows the target.
	URL string
	// TLS holds the CA bundle, client certificate and server name of a
	// rediss:// URL.
	TLS config.TLS
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.URL, prefix+"redis.url", "", "Redis URL such as redis://host:6379/0; rediss:// for TLS, redis://user:password@host:6379/0 for an ACL user. Also read from REDIS_URL. Empty with -target=all: an embedded Redis (miniredis) is started. Redis holds presence and assignment locks only; nothing durable lives there.")
	c.TLS.RegisterFlags(prefix, "redis.tls", "Redis", f)
}

// Validate checks the settings. An empty URL is valid here: whether the
// embedded Redis may stand in depends on the target, which the caller checks.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	if c.URL != "" {
		_, err := parseURL(c.URL)
		ck.Check(err == nil, "redis.url", fmt.Sprintf("cannot be parsed: %v", err), "set a URL such as redis://host:6379/0 (rediss:// for TLS, redis://:password@host:6379/0 with a password)")
	}
	if c.TLS.Given() {
		ck.Check(strings.HasPrefix(c.URL, "rediss://"), "redis.url", "is not a rediss:// URL while -"+prefix+"redis.tls settings are set",
			"use rediss://host:6379/0 to connect over TLS, or remove the -"+prefix+"redis.tls settings")
		c.TLS.Check(ck, "redis.tls")
	}
	return ck.Err()
}

// parseURL is goredis.ParseURL without echoing the URL in its error: a
// malformed URL makes net/url quote the whole string, password included,
// and these errors end up in logs.
func parseURL(raw string) (*goredis.Options, error) {
	opts, err := goredis.ParseURL(raw)
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return nil, uerr.Err
	}
	return opts, err
}

// Connect opens a client on the Redis at cfg.URL, over TLS with cfg.TLS
// for a rediss:// URL, and checks with a PING that it answers. Its errors
// say what to start or set; the client is closed when it returns an error.
func Connect(ctx context.Context, cfg Config) (*goredis.Client, error) {
	opts, err := parseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse Redis URL (REDIS_URL, flag -redis.url): %w", err)
	}
	if opts.TLSConfig != nil {
		tc, err := cfg.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("Redis TLS: %w", err)
		}
		if tc.ServerName == "" {
			tc.ServerName = opts.TLSConfig.ServerName // the URL's host
		}
		tc.InsecureSkipVerify = opts.TLSConfig.InsecureSkipVerify // ?skip_verify=true
		opts.TLSConfig = tc
	}
	rdb := goredis.NewClient(opts)
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		// A reply from the server (WRONGPASS, NOAUTH, DB index out of
		// range) means it is reachable and the URL is wrong; saying
		// "unreachable" would send the operator looking at the network.
		var (
			rerr      goredis.Error
			unknownCA x509.UnknownAuthorityError
			hostname  x509.HostnameError
		)
		switch {
		case errors.As(err, &rerr):
			return nil, fmt.Errorf("Redis at %s rejected the connection: %w; check the user, password and database number in REDIS_URL (flag -redis.url)", opts.Addr, err)
		case errors.As(err, &unknownCA):
			return nil, config.Invalid("redis.tls.ca-file", fmt.Sprintf("does not trust the certificate of Redis at %s: %v", opts.Addr, err), "set the PEM bundle of the CA that signed it (empty: the system's CAs)")
		case errors.As(err, &hostname):
			return nil, config.Invalid("redis.tls.server-name", fmt.Sprintf("the certificate of Redis at %s is not for the name checked: %v", opts.Addr, err), "set the name the certificate carries, or use it as the host of REDIS_URL")
		case opts.TLSConfig == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
			return nil, fmt.Errorf("Redis at %s closed the connection: %w; if it listens with TLS, use a rediss:// URL in REDIS_URL (flag -redis.url)", opts.Addr, err)
		}
		return nil, fmt.Errorf("Redis at %s is unreachable: %w; start it or set REDIS_URL (flag -redis.url)", opts.Addr, err)
	}
	return rdb, nil
}
