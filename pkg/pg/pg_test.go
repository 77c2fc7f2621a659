package pg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestConnectCreatesAMissingDatabase(t *testing.T) {
	url := testkit.DatabaseURL(t)
	// Drop the database testkit made, keeping its name: Connect must
	// create it again. testkit drops it (IF EXISTS) at the end.
	admin := testkit.Postgres(t)
	name := url[strings.LastIndex(url, "/")+1:]
	if i := strings.Index(name, "?"); i >= 0 {
		name = name[:i]
	}
	_, err := admin.Exec(context.Background(), "DROP DATABASE "+name)
	require.NoError(t, err)

	cfg := pg.Config{URL: url, MaxConns: 2, ConnectTimeout: 5 * time.Second}
	_, err = pg.Connect(context.Background(), cfg)
	require.ErrorContains(t, err, "has no such database")

	cfg.CreateDatabase = true
	pool, err := pg.Connect(context.Background(), cfg)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pool.Ping(context.Background()))
}

func TestConnectToNothingSaysWhatToDo(t *testing.T) {
	cfg := pg.Config{URL: "postgres://127.0.0.1:1/switchboard?sslmode=disable", MaxConns: 2, ConnectTimeout: 2 * time.Second, CreateDatabase: true}
	_, err := pg.Connect(context.Background(), cfg)
	require.ErrorIs(t, err, pg.ErrUnreachable)
	require.ErrorContains(t, err, "DATABASE_URL")
	require.ErrorContains(t, err, "127.0.0.1:1")
}

func TestMigrateOnceEvenWhenStartedTogether(t *testing.T) {
	pool := testkit.Postgres(t)
	fsys := fstest.MapFS{
		"001_things.sql": {Data: []byte(`CREATE TABLE things (id int PRIMARY KEY);`)},
		"002_more.sql":   {Data: []byte(`ALTER TABLE things ADD COLUMN name text; INSERT INTO things VALUES (1, 'one');`)},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pg.Migrate(context.Background(), pool, "svc", "schema_version", fsys)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM svc.things`).Scan(&n))
	require.Equal(t, 1, n, "a migration ran twice")
	var v int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT version FROM svc.schema_version`).Scan(&v))
	require.Equal(t, 2, v)

	// The pooled connections got their search_path back.
	var path string
	require.NoError(t, pool.QueryRow(context.Background(), `SHOW search_path`).Scan(&path))
	require.NotContains(t, path, "svc")

	require.Error(t, pg.Migrate(context.Background(), pool, "Bad-Name", "v", fsys))
}

func TestIsTransient(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "22021"}, false},
		{context.DeadlineExceeded, true},
		{errors.New("something else"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := pg.IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if !pg.IsDataError(&pgconn.PgError{Code: "22021"}) || pg.IsDataError(&pgconn.PgError{Code: "08006"}) {
		t.Error("IsDataError misclassifies")
	}
}
