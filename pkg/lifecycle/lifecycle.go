// Package lifecycle runs the components of one Switchboard process, the way
// Grafana Loki runs its modules: every component has a name, the names it
// depends on, an Init that builds it, a Run that works until its context is
// cancelled, and optionally a readiness check.
//
// A run names targets (-target=all, or -target=inbox,chat); the manager
// resolves them with their dependencies, initialises and starts them in
// dependency order, and reports ready only when every started component is.
// When the run's context is cancelled (SIGTERM), it marks the process not
// ready, stops ingress components first (no new requests), then every other
// component in reverse dependency order, each draining and committing its
// in-flight work before its dependencies go away. If any component fails,
// the whole process stops and Run returns that error.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// TargetAll names every target module.
const TargetAll = "all"

// Service is a started component.
type Service interface {
	// Run works until ctx is cancelled, then drains and returns. A non-nil
	// error, or a return before cancellation, stops the process.
	Run(ctx context.Context) error
}

// Readier is implemented by services that can be unready while running.
type Readier interface {
	Ready(ctx context.Context) error
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context) error

// Run calls f.
func (f ServiceFunc) Run(ctx context.Context) error { return f(ctx) }

// Idle is a service with nothing to do but wait, then close.
func Idle(closeFn func() error) Service {
	return ServiceFunc(func(ctx context.Context) error {
		<-ctx.Done()
		if closeFn == nil {
			return nil
		}
		return closeFn()
	})
}

// Module declares a component.
type Module struct {
	// Name identifies the module in -target and in logs.
	Name string
	// Deps are initialised and started before this module and stopped after.
	Deps []string
	// Target modules can be named in -target and are part of "all".
	Target bool
	// Ingress modules take traffic from outside the process (the HTTP
	// server): they start after every other module of the run and stop
	// before all of them, so no request arrives before its handler is
	// ready or after what it needs is gone.
	Ingress bool
	// Init builds the module once its dependencies run. It may return a nil
	// Service when there is nothing to run.
	Init func(ctx context.Context) (Service, error)
}

// Manager holds the modules of a program.
type Manager struct {
	log         *slog.Logger
	modules     map[string]Module
	stopTimeout time.Duration

	mu      sync.Mutex
	started []started
	state   state
}

type state int

const (
	stateNew state = iota
	stateStarting
	stateRunning
	stateStopping
)

type started struct {
	name string
	svc  Service
}

// New returns a manager; stopTimeout bounds the wait for each component to
// stop.
func New(log *slog.Logger, stopTimeout time.Duration) *Manager {
	return &Manager{log: log, modules: map[string]Module{}, stopTimeout: stopTimeout}
}

// Register adds a module; registering a name twice is a programming error
// reported by Resolve.
func (m *Manager) Register(mod Module) error {
	if _, dup := m.modules[mod.Name]; dup {
		return fmt.Errorf("module %q registered twice", mod.Name)
	}
	m.modules[mod.Name] = mod
	return nil
}

// Targets lists the names accepted by -target, sorted.
func (m *Manager) Targets() []string {
	names := []string{TargetAll}
	for name, mod := range m.modules {
		if mod.Target {
			names = append(names, name)
		}
	}
	sort.Strings(names[1:])
	return names
}

// Resolve expands targets ("all" or target module names) into every module
// to run, dependencies first, ingress modules last.
func (m *Manager) Resolve(targets []string) ([]string, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("no target given; choose from %s", strings.Join(m.Targets(), ", "))
	}
	var roots []string
	for _, t := range targets {
		if t == TargetAll {
			for name, mod := range m.modules {
				if mod.Target {
					roots = append(roots, name)
				}
			}
			continue
		}
		mod, ok := m.modules[t]
		if !ok || !mod.Target {
			return nil, fmt.Errorf("unknown target %q; choose from %s", t, strings.Join(m.Targets(), ", "))
		}
		roots = append(roots, t)
	}
	sort.Strings(roots) // deterministic order

	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(path, name), " -> "))
		case 2:
			return nil
		}
		mod, ok := m.modules[name]
		if !ok {
			return fmt.Errorf("module %q depends on unknown module %q", path[len(path)-1], name)
		}
		state[name] = 1
		for _, d := range mod.Deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, r := range roots {
		if err := visit(r, nil); err != nil {
			return nil, err
		}
	}
	// Ingress modules go last, keeping their relative order.
	slices.SortStableFunc(order, func(a, b string) int {
		ai, bi := m.modules[a].Ingress, m.modules[b].Ingress
		switch {
		case ai == bi:
			return 0
		case bi:
			return -1
		default:
			return 1
		}
	})
	return order, nil
}

// Ready reports nil when every started module is ready and the process is
// neither starting nor stopping.
func (m *Manager) Ready(ctx context.Context) error {
	m.mu.Lock()
	st := m.state
	svcs := slices.Clone(m.started)
	m.mu.Unlock()
	switch st {
	case stateNew, stateStarting:
		return errors.New("starting")
	case stateStopping:
		return errors.New("shutting down")
	}
	for _, s := range svcs {
		if r, ok := s.svc.(Readier); ok {
			if err := r.Ready(ctx); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
	}
	return nil
}

type exit struct {
	name string
	err  error
}

// Run initialises and runs the modules of targets until ctx is cancelled or
// one of them fails, then stops them all. It returns the first failure.
func (m *Manager) Run(ctx context.Context, targets []string) error {
	order, err := m.Resolve(targets)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.state = stateStarting
	m.mu.Unlock()
	m.log.Info("starting", "targets", strings.Join(targets, ","), "modules", strings.Join(order, ","))

	exits := make(chan exit, len(order))
	cancels := map[string]context.CancelFunc{}
	done := map[string]chan struct{}{}
	var runErr error

	for _, name := range order {
		if ctx.Err() != nil {
			break
		}
		svc, err := m.modules[name].Init(ctx)
		if err != nil {
			if ctx.Err() != nil {
				// SIGTERM while starting (a rollout that moved on, a scale
				// down): Init gave up because it was asked to, which is a
				// stop, not a failure.
				m.log.Info("shutdown requested while starting", "module", name, "error", err)
				break
			}
			runErr = fmt.Errorf("start %s: %w", name, err)
			break
		}
		if svc == nil {
			continue
		}
		// Each module gets its own context: shutdown cancels them one by
		// one, in order, not all at once.
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[name] = cancel
		ch := make(chan struct{})
		done[name] = ch
		m.mu.Lock()
		m.started = append(m.started, started{name: name, svc: svc})
		m.mu.Unlock()
		go func() {
			defer close(ch)
			err := svc.Run(runCtx)
			exits <- exit{name: name, err: err}
		}()
	}
	m.mu.Lock()
	m.state = stateRunning
	m.mu.Unlock()

	if runErr == nil {
		if ctx.Err() == nil {
			m.log.Info("started", "modules", len(cancels))
		}
		select {
		case <-ctx.Done():
			m.log.Info("shutdown requested")
		case e := <-exits:
			if e.err == nil {
				e.err = errors.New("stopped unexpectedly")
			}
			runErr = fmt.Errorf("%s: %w", e.name, e.err)
			m.log.Error("module failed; stopping", "module", e.name, "error", e.err)
			// Put it back so the stop loop sees this module as finished.
			exits <- e
		}
	}

	m.mu.Lock()
	m.state = stateStopping
	startedNow := slices.Clone(m.started)
	m.mu.Unlock()

	for i := len(startedNow) - 1; i >= 0; i-- {
		name := startedNow[i].name
		cancels[name]()
		select {
		case <-done[name]:
		case <-time.After(m.stopTimeout):
			m.log.Error("module did not stop in time; abandoning it", "module", name, "timeout", m.stopTimeout)
			continue
		}
		m.log.Info("stopped", "module", name)
	}
	// A module abandoned above may still send later: never close exits.
	for {
		select {
		case e := <-exits:
			if e.err != nil && runErr == nil {
				runErr = fmt.Errorf("%s: %w", e.name, e.err)
			}
		default:
			return runErr
		}
	}
}

// RunAll runs services side by side, for a component made of several loops.
// When one fails, or returns before ctx is cancelled, the others are
// cancelled too; RunAll returns once all have returned, with the first
// failure.
func RunAll(ctx context.Context, svcs ...Service) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(svcs))
	for _, s := range svcs {
		go func() {
			err := s.Run(ctx)
			if err == nil && ctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	var first error
	for range svcs {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
