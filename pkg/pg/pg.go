// Package pg connects to PostgreSQL with pgx and keeps each service in its
// own schema, migrated at start from SQL files embedded in the binary.
//
// No service reads another service's schema; what one needs of another
// travels on Kafka.
package pg

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// DefaultURL is the local server's switchboard database, as the README's
// quick start expects.
const DefaultURL = "postgres://127.0.0.1:5432/switchboard?sslmode=disable"

// Config holds the connection settings.
type Config struct {
	// URL is a PostgreSQL connection URL or keyword/value string.
	URL string
	// MaxConns bounds the pool.
	MaxConns int
	// CreateDatabase creates the database named in URL when it is missing.
	CreateDatabase bool
	// ConnectTimeout bounds the first connection at start.
	ConnectTimeout time.Duration
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.URL, prefix+"database.url", DefaultURL, "PostgreSQL connection URL. Also read from DATABASE_URL. Each service keeps its tables in its own schema of this database. TLS is set in the URL: sslmode=require encrypts, sslmode=verify-full also checks the server's certificate against sslrootcert=/path/ca.pem and its name; sslcert= and sslkey= give a client certificate.")
	f.IntVar(&c.MaxConns, prefix+"database.max-conns", 16, "Largest number of connections the process keeps open to PostgreSQL.")
	f.BoolVar(&c.CreateDatabase, prefix+"database.create", true, "Create the database named in the URL when it does not exist (needs the CREATEDB privilege).")
	f.DurationVar(&c.ConnectTimeout, prefix+"database.connect-timeout", 10*time.Second, "Longest wait for PostgreSQL at start before giving up with an error.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	_, err := pgxpool.ParseConfig(c.URL)
	ck.Check(err == nil, "database.url", fmt.Sprintf("cannot be parsed: %v", err), "set a URL such as postgres://user:password@host:5432/switchboard")
	ck.AtLeast("database.max-conns", c.MaxConns, 2)
	ck.Positive("database.connect-timeout", c.ConnectTimeout)
	return ck.Err()
}

// ErrUnreachable is wrapped by Connect's error when no PostgreSQL answers.
var ErrUnreachable = errors.New("PostgreSQL is unreachable")

// Connect opens a pool, creating the database first when it is missing and
// allowed. Its errors say what to start or set.
func Connect(ctx context.Context, cfg Config) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	pcfg.MaxConns = int32(cfg.MaxConns)
	pcfg.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	where := fmt.Sprintf("%s:%d database %q as user %q", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port, pcfg.ConnConfig.Database, pcfg.ConnConfig.User)

	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	err = ping(ctx, pcfg)
	if isMissingDatabase(err) && cfg.CreateDatabase {
		if cerr := createDatabase(ctx, pcfg.ConnConfig); cerr != nil {
			return nil, fmt.Errorf("create database %q at %s: %w", pcfg.ConnConfig.Database, where, cerr)
		}
		err = ping(ctx, pcfg)
	}
	if err != nil {
		return nil, explain(err, where)
	}
	pool, err := pgxpool.NewWithConfig(context.WithoutCancel(ctx), pcfg)
	if err != nil {
		return nil, fmt.Errorf("open pool to %s: %w", where, err)
	}
	return pool, nil
}

func ping(ctx context.Context, pcfg *pgxpool.Config) error {
	conn, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func isMissingDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "3D000"
}

// explain turns a connection failure into a message that says what to do.
func explain(err error, where string) error {
	var (
		pgErr     *pgconn.PgError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
	)
	switch {
	case errors.As(err, &unknownCA) || errors.As(err, &hostname):
		return fmt.Errorf("PostgreSQL at %s: its certificate does not pass the check sslmode asks for: %v. Set sslrootcert in DATABASE_URL (flag -database.url) to the CA that signed it, and with sslmode=verify-full connect by a name the certificate carries", where, err)
	case strings.Contains(err.Error(), "server refused TLS connection"):
		return fmt.Errorf("PostgreSQL at %s does not accept TLS, and sslmode in DATABASE_URL (flag -database.url) requires it: %v. Turn ssl on in the server, or set sslmode=disable on a trusted network", where, err)
	case errors.Is(err, syscall.ECONNREFUSED) || isNetError(err) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w at %s: %v. Start PostgreSQL there, or point Switchboard at yours with DATABASE_URL (flag -database.url), for example postgres://user:password@db.example:5432/switchboard", ErrUnreachable, where, err)
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000"):
		return fmt.Errorf("PostgreSQL at %s refused the credentials: %v. Set the user and password in DATABASE_URL (flag -database.url)", where, err)
	case isMissingDatabase(err):
		return fmt.Errorf("PostgreSQL at %s has no such database: %v. Create it, or allow Switchboard to with -database.create=true", where, err)
	}
	return fmt.Errorf("connect to PostgreSQL at %s: %w", where, err)
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

func createDatabase(ctx context.Context, cc *pgx.ConnConfig) error {
	admin := cc.Copy()
	admin.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to the postgres maintenance database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cc.Database}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another process
		return nil
	}
	return err
}

var schemaName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Migrate creates schema when missing and applies the migrations in fsys
// (files named 001_what.sql, 002_...) that are not applied yet, each in its
// own transaction, under an advisory lock so that replicas starting together
// migrate once. Each migration runs with search_path set to schema, so it
// names its tables without it. versionTable tells apart independent sets of
// migrations in one schema (the service's own, the outbox's).
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema, versionTable string, fsys fs.FS) error {
	if !schemaName.MatchString(schema) || !schemaName.MatchString(versionTable) {
		return fmt.Errorf("migrate: invalid schema or table name %q.%q", schema, versionTable)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: acquire connection: %w", schema, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		var pgErr *pgconn.PgError
		// Two processes creating the schema at once: one loses the race on
		// the catalog's unique index; the schema exists either way.
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	m, err := migrate.NewMigrator(ctx, conn.Conn(), schema+"."+versionTable)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	names, err := migrate.FindMigrations(fsys)
	if err != nil {
		return fmt.Errorf("find %s migrations: %w", schema, err)
	}
	for _, name := range names {
		sql, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", name, err)
		}
		// The migrator resets every setting after each migration: each one
		// sets the search path again, for its own transaction only.
		m.AppendMigration(name, "SET LOCAL search_path TO "+schema+";\n"+string(sql), "")
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return nil
}

// IsTransient reports whether err means PostgreSQL is unavailable for a
// while (connection lost, server shutting down, too many connections), as
// opposed to a problem with the statement or the data.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || isNetError(err) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources
			strings.HasPrefix(pgErr.Code, "57"), // operator intervention (shutdown)
			pgErr.Code == "40001",               // serialization failure
			pgErr.Code == "40P01":               // deadlock detected
			return true
		}
		return false
	}
	// Errors from the pool (closed, acquire failed) have no SQLSTATE.
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr)
}

// IsDataError reports whether PostgreSQL refused the data itself (SQLSTATE
// class 22, data exception, or 23, integrity constraint violation): sending
// the same data again fails the same way.
func IsDataError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23"))
}

// Dedicated takes a connection out of pool for good, for a session that
// holds a LISTEN or a session-level lock: it must never go back to the
// pool, whatever happens. Closing it ends the session and releases both.
func Dedicated(ctx context.Context, pool *pgxpool.Pool) (*pgx.Conn, error) {
	pooled, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire connection: %w", err)
	}
	return pooled.Hijack(), nil
}

// Listen makes conn listen on channel.
func Listen(ctx context.Context, conn *pgx.Conn, channel string) error {
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen on %s: %w", channel, err)
	}
	return nil
}

// Wait waits up to d for a notification on conn, a listening connection.
// It reports whether one came (false: d passed, or ctx ended).
func Wait(ctx context.Context, conn *pgx.Conn, d time.Duration) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(wctx)
	switch {
	case err == nil:
		return true, nil
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return false, nil
	}
	return false, fmt.Errorf("wait for notification: %w", err)
}
