package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

func TestEachDecodesAndClassifies(t *testing.T) {
	type cmd struct {
		N int `json:"n"`
	}
	msg := func(data any) bus.Message {
		ev, err := events.New("sb.test.v1", "test", "t1", time.Now(), data)
		require.NoError(t, err)
		return bus.Message{Event: ev}
	}
	errInvalid := errors.New("invalid command")
	var seen []int
	var fail error
	h := bus.Each(func(_ context.Context, c cmd) error {
		seen = append(seen, c.N)
		return fail
	}, errInvalid)
	ctx := context.Background()

	require.NoError(t, h(ctx, []bus.Message{msg(cmd{1}), msg(cmd{2})}))
	require.Equal(t, []int{1, 2}, seen, "in order, each decoded")

	err := h(ctx, []bus.Message{msg("not an object")})
	require.Error(t, err)
	require.True(t, bus.IsPermanent(err), "data that does not decode is for the dead-letter topic")

	fail = errors.Join(errors.New("mailbox settings"), errInvalid)
	require.True(t, bus.IsPermanent(h(ctx, []bus.Message{msg(cmd{3})})), "a listed error is permanent")

	fail = errors.New("server down")
	err = h(ctx, []bus.Message{msg(cmd{4})})
	require.Error(t, err)
	require.False(t, bus.IsPermanent(err), "any other error is retried")
}
