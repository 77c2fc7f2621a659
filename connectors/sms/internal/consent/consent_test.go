package consent_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/connectors/sms/internal/consent"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestLatestChangeWins(t *testing.T) {
	ctx := testkit.Context(t)
	s := consent.New(testkit.Postgres(t))
	require.NoError(t, s.Migrate(ctx))
	const acct, num = "acct-1", "+33612345678"
	out, err := s.OptedOut(ctx, acct, num)
	require.NoError(t, err)
	require.False(t, out, "a number never seen may be written to")

	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	require.NoError(t, s.Set(ctx, acct, num, true, t0.Add(time.Minute)))
	out, err = s.OptedOut(ctx, acct, num)
	require.NoError(t, err)
	require.True(t, out)

	// A START older than the STOP arrives late: the STOP stands.
	require.NoError(t, s.Set(ctx, acct, num, false, t0))
	out, err = s.OptedOut(ctx, acct, num)
	require.NoError(t, err)
	require.True(t, out)

	// A newer START opts back in; other accounts are not affected.
	require.NoError(t, s.Set(ctx, acct, num, false, t0.Add(2*time.Minute)))
	out, err = s.OptedOut(ctx, acct, num)
	require.NoError(t, err)
	require.False(t, out)
	require.NoError(t, s.Set(ctx, "acct-2", num, true, t0))
	out, err = s.OptedOut(ctx, acct, num)
	require.NoError(t, err)
	require.False(t, out)
}
