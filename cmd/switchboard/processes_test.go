package main_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// processes are the switchboard processes a test starts (split targets,
// restarts); they are killed when the test ends, and their last log lines
// printed if it failed.
type processes struct {
	mu    sync.Mutex
	nodes []*testkit.Node
}

func newProcesses(t *testing.T) *processes {
	p := &processes{}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, n := range p.nodes {
			n.Kill()
			if t.Failed() {
				t.Logf("switchboard output:\n%s", lastLines(n.Logs(), 100))
			}
		}
	})
	return p
}

// start starts a process with o; it has 90 seconds to be ready.
func (p *processes) start(t *testing.T, o testkit.NodeOptions) *testkit.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := testkit.StartNode(ctx, o)
	require.NoError(t, err)
	p.mu.Lock()
	p.nodes = append(p.nodes, n)
	p.mu.Unlock()
	return n
}

// logMetrics logs the lines of a process's /metrics that contain one of
// the names (histograms' buckets left out), for a failing test to show
// where the process stood.
func logMetrics(t *testing.T, what, base string, names ...string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Logf("%s metrics: %v", what, err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(raw), "\n") {
		for _, n := range names {
			if strings.Contains(l, n) && !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket{") {
				t.Logf("%s metric: %s", what, l)
				break
			}
		}
	}
}
