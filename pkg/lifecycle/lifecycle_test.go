package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/lifecycle"
)

// journal records what modules did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

func module(j *journal, name string, target, ingress bool, deps ...string) lifecycle.Module {
	return lifecycle.Module{Name: name, Target: target, Ingress: ingress, Deps: deps,
		Init: func(context.Context) (lifecycle.Service, error) {
			j.add("init " + name)
			return lifecycle.ServiceFunc(func(ctx context.Context) error {
				<-ctx.Done()
				j.add("stop " + name)
				return nil
			}), nil
		}}
}

func newManager(t *testing.T, mods ...lifecycle.Module) *lifecycle.Manager {
	m := lifecycle.New(slog.New(slog.NewTextHandler(io.Discard, nil)), 5*time.Second)
	for _, mod := range mods {
		require.NoError(t, m.Register(mod))
	}
	return m
}

func TestResolve(t *testing.T) {
	j := &journal{}
	m := newManager(t,
		module(j, "server", false, true),
		module(j, "db", false, false),
		module(j, "kafka", false, false),
		module(j, "producer", false, false, "kafka"),
		module(j, "inbox", true, false, "server", "db", "producer"),
		module(j, "chat", true, false, "server", "producer"),
	)
	got, err := m.Resolve([]string{"all"})
	require.NoError(t, err)
	require.Equal(t, []string{"kafka", "producer", "chat", "db", "inbox", "server"}, got)

	got, err = m.Resolve([]string{"chat"})
	require.NoError(t, err)
	require.Equal(t, []string{"kafka", "producer", "chat", "server"}, got)

	_, err = m.Resolve([]string{"router"})
	require.ErrorContains(t, err, `unknown target "router"; choose from all, chat, inbox`)
	_, err = m.Resolve([]string{"db"})
	require.ErrorContains(t, err, "unknown target")
	require.Equal(t, []string{"all", "chat", "inbox"}, m.Targets())
}

func TestResolveCycle(t *testing.T) {
	j := &journal{}
	m := newManager(t, module(j, "a", true, false, "b"), module(j, "b", false, false, "a"))
	_, err := m.Resolve([]string{"a"})
	require.ErrorContains(t, err, "dependency cycle: a -> b -> a")
}

func TestRunStopsIngressFirstThenReverseOrder(t *testing.T) {
	j := &journal{}
	m := newManager(t,
		module(j, "server", false, true),
		module(j, "db", false, false),
		module(j, "inbox", true, false, "server", "db"),
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, []string{"all"}) }()
	require.Eventually(t, func() bool { return m.Ready(context.Background()) == nil }, 5*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, []string{"init db", "init inbox", "init server", "stop server", "stop inbox", "stop db"}, j.get())
	require.ErrorContains(t, m.Ready(context.Background()), "shutting down")
}

type unready struct{ lifecycle.Service }

func (unready) Ready(context.Context) error { return errors.New("catching up") }

func TestReadyNamesTheModuleThatIsNot(t *testing.T) {
	m := newManager(t, lifecycle.Module{Name: "table", Target: true, Init: func(context.Context) (lifecycle.Service, error) {
		return unready{lifecycle.Idle(nil)}, nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.Run(ctx, []string{"table"}) }()
	require.Eventually(t, func() bool {
		err := m.Ready(context.Background())
		return err != nil && err.Error() == "table: catching up"
	}, 5*time.Second, 10*time.Millisecond)
}

func TestFailingModuleStopsTheProcess(t *testing.T) {
	j := &journal{}
	boom := errors.New("boom")
	m := newManager(t,
		module(j, "db", false, false),
		lifecycle.Module{Name: "worker", Target: true, Deps: []string{"db"}, Init: func(context.Context) (lifecycle.Service, error) {
			return lifecycle.ServiceFunc(func(ctx context.Context) error { return boom }), nil
		}},
	)
	err := m.Run(context.Background(), []string{"all"})
	require.ErrorIs(t, err, boom)
	require.Contains(t, j.get(), "stop db")
}

func TestInitFailureStopsWhatStarted(t *testing.T) {
	j := &journal{}
	m := newManager(t,
		module(j, "db", false, false),
		lifecycle.Module{Name: "inbox", Target: true, Deps: []string{"db"}, Init: func(context.Context) (lifecycle.Service, error) {
			return nil, errors.New("database unreachable")
		}},
	)
	err := m.Run(context.Background(), []string{"inbox"})
	require.ErrorContains(t, err, "start inbox: database unreachable")
	require.Equal(t, []string{"init db", "stop db"}, j.get())
}

func TestShutdownWhileStartingIsNoFailure(t *testing.T) {
	j := &journal{}
	ctx, cancel := context.WithCancel(context.Background())
	m := newManager(t,
		module(j, "db", false, false),
		// Its migration is cut short by SIGTERM.
		lifecycle.Module{Name: "inbox", Target: true, Deps: []string{"db"}, Init: func(ctx context.Context) (lifecycle.Service, error) {
			cancel()
			<-ctx.Done()
			return nil, fmt.Errorf("migrate inbox: %w", ctx.Err())
		}},
	)
	require.NoError(t, m.Run(ctx, []string{"inbox"}))
	require.Equal(t, []string{"init db", "stop db"}, j.get())
}

func TestRunAll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stopped sync.WaitGroup
	stopped.Add(1)
	waiter := lifecycle.ServiceFunc(func(ctx context.Context) error { <-ctx.Done(); stopped.Done(); return nil })
	failing := lifecycle.ServiceFunc(func(ctx context.Context) error { return errors.New("relay broke") })
	err := lifecycle.RunAll(ctx, waiter, failing)
	cancel()
	require.ErrorContains(t, err, "relay broke")
	stopped.Wait()

	ctx, cancel = context.WithCancel(context.Background())
	go cancel()
	require.NoError(t, lifecycle.RunAll(ctx, lifecycle.Idle(nil), lifecycle.Idle(nil)))
}
