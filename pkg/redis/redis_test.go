package redis_test

import (
	"context"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/redis"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestConfig(t *testing.T) {
	var c redis.Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags("x.", f)
	fl := f.Lookup("x.redis.url")
	require.NotNil(t, fl)
	require.Empty(t, fl.DefValue)
	require.Contains(t, fl.Usage, "REDIS_URL")

	require.NoError(t, c.Validate("x."), "empty selects the embedded Redis")
	require.NoError(t, f.Set("x.redis.url", "redis://127.0.0.1:6379/0"))
	require.NoError(t, c.Validate("x."))

	for _, bad := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:6379/notanumber", "redis://user:s3cret@host:port/0"} {
		c.URL = bad
		err := c.Validate("x.")
		var cerr *config.Error
		require.True(t, errors.As(err, &cerr), "%q: %v", bad, err)
		require.Equal(t, "x.redis.url", cerr.Flag)
		require.NotContains(t, err.Error(), "s3cret", "the password must not reach the logs")
	}
}

func TestConnect(t *testing.T) {
	ctx := testkit.Context(t)

	mr := miniredis.RunT(t)
	rdb, err := redis.Connect(ctx, redis.Config{URL: "redis://" + mr.Addr() + "/0"})
	require.NoError(t, err)
	require.NoError(t, rdb.Ping(ctx).Err())
	require.NoError(t, rdb.Close())

	mr.RequireAuth("right")
	_, err = redis.Connect(ctx, redis.Config{URL: "redis://:wrong@" + mr.Addr() + "/0"})
	require.ErrorContains(t, err, "Redis at "+mr.Addr()+" rejected the connection")
	require.NotContains(t, err.Error(), "unreachable")

	// Nothing listens on port 1; the deadline keeps go-redis's retries short.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = redis.Connect(short, redis.Config{URL: "redis://127.0.0.1:1/0"})
	require.ErrorContains(t, err, "Redis at 127.0.0.1:1 is unreachable")
	require.ErrorContains(t, err, "start it or set REDIS_URL (flag -redis.url)")

	_, err = redis.Connect(ctx, redis.Config{URL: "mysql://x"})
	require.ErrorContains(t, err, "parse Redis URL")
}
