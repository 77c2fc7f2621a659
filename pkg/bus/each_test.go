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

func TestByTypeRoutesEachRunInOrder(t *testing.T) {
	msg := func(typ string, n int) bus.Message {
		ev, err := events.New(typ, "test", "t1", time.Now(), map[string]int{"n": n})
		require.NoError(t, err)
		return bus.Message{Event: ev}
	}
	var calls []string
	record := func(name string, fail error) bus.Handler {
		return func(_ context.Context, msgs []bus.Message) error {
			calls = append(calls, name+":"+string(rune('0'+len(msgs))))
			return fail
		}
	}
	stop := errors.New("stop")
	h := bus.ByType(map[string]bus.Handler{"sb.erase.v1": record("erase", nil)}, record("send", nil))
	batch := []bus.Message{msg("sb.send.v1", 1), msg("sb.send.v1", 2), msg("sb.erase.v1", 3), msg("sb.send.v1", 4)}
	require.NoError(t, h(context.Background(), batch))
	require.Equal(t, []string{"send:2", "erase:1", "send:1"}, calls, "runs of one type together, in order")

	calls = nil
	h = bus.ByType(map[string]bus.Handler{"sb.erase.v1": record("erase", stop)}, record("send", nil))
	require.ErrorIs(t, h(context.Background(), batch), stop)
	require.Equal(t, []string{"send:2", "erase:1"}, calls, "nothing after a failure")
}
