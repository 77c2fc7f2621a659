package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// Node is a switchboard binary running as a process, for end-to-end tests
// and benchmarks.
type Node struct {
	// Addr is its HTTP address, host:port.
	Addr string
	cmd  *exec.Cmd
	logs *syncBuffer
	// exited is closed once the process has exited.
	exited chan struct{}
}

// NodeOptions say how to run the binary.
type NodeOptions struct {
	// Binary is the path of the switchboard binary.
	Binary string
	// DatabaseURL is its DATABASE_URL.
	DatabaseURL string
	// DataDir holds the embedded Kafka's data.
	DataDir string
	// Addr is the HTTP address; empty picks a free loopback port.
	Addr string
	// Args are extra flags.
	Args []string
	// Targets is -target; empty means all, with embedded Kafka and Redis.
	// Other targets need KAFKA_BROKERS and REDIS_URL in Env.
	Targets string
	// Env are more environment variables, NAME=value.
	Env []string
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// StartNode starts `switchboard -target=all` (or o.Targets) and waits until
// /readyz says ready or ctx ends.
func StartNode(ctx context.Context, o NodeOptions) (*Node, error) {
	if o.Addr == "" {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		o.Addr = addr
	}
	if o.Targets == "" {
		o.Targets = "all"
	}
	args := append([]string{"-target=" + o.Targets, "-data-dir", o.DataDir, "-http.addr", o.Addr, "-log.level", "warn"}, o.Args...)
	cmd := exec.Command(o.Binary, args...)
	// Embedded Kafka and Redis, whatever the caller's environment says,
	// unless Env names others.
	cmd.Env = append(os.Environ(), "DATABASE_URL="+o.DatabaseURL, "SB_KAFKA_BROKERS=", "KAFKA_BROKERS=", "SB_REDIS_URL=", "REDIS_URL=")
	cmd.Env = append(cmd.Env, o.Env...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	n := &Node{Addr: o.Addr, cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.exited) }()
	for {
		select {
		case <-n.exited:
			return nil, fmt.Errorf("switchboard exited before it was ready:\n%s", logs)
		case <-ctx.Done():
			n.Kill()
			return nil, fmt.Errorf("switchboard not ready: %w:\n%s", ctx.Err(), logs)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := http.Get("http://" + o.Addr + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return n, nil
		}
	}
}

// Base is the node's URL.
func (n *Node) Base() string { return "http://" + n.Addr }

// Logs returns what the process printed.
func (n *Node) Logs() string { return n.logs.String() }

// Kill sends SIGKILL and waits for the process to exit.
func (n *Node) Kill() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// Stop sends SIGINT and waits for a graceful exit.
func (n *Node) Stop() {
	_ = n.cmd.Process.Signal(os.Interrupt)
	<-n.exited
}

// Terminate sends SIGTERM, as Kubernetes does to a pod it stops, and
// returns at once; Done tells when the process has exited.
func (n *Node) Terminate() error {
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM to %s: %w", n.Addr, err)
	}
	return nil
}

// Done is closed once the process has exited.
func (n *Node) Done() <-chan struct{} { return n.exited }

// ExitCode is the process's exit status once Done is closed: -1 while it
// runs or when a signal ended it.
func (n *Node) ExitCode() int {
	select {
	case <-n.exited:
		return n.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Bootstrap is what `switchboard admin create-tenant` prints.
type Bootstrap struct {
	Tenant struct {
		ID string `json:"id"`
	} `json:"tenant"`
	APIToken struct {
		Token string `json:"token"`
	} `json:"api_token"`
	ChatChannel struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	} `json:"chat_channel"`
	WebhookPath string `json:"chat_webhook_path"`
}

// CreateTenant runs `switchboard admin create-tenant`, with env (NAME=value)
// added to the environment, such as the keys file of the processes that
// will open the chat channel's secret.
func CreateTenant(binary, databaseURL, name string, env ...string) (Bootstrap, error) {
	cmd := exec.Command(binary, "admin", "create-tenant", "-name", name)
	cmd.Env = append(append(os.Environ(), "DATABASE_URL="+databaseURL), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return Bootstrap{}, fmt.Errorf("admin create-tenant: %w: %s", err, stderr.String())
	}
	var b Bootstrap
	if err := json.Unmarshal(out, &b); err != nil {
		return Bootstrap{}, fmt.Errorf("admin create-tenant output %q: %w", out, err)
	}
	return b, nil
}

// ChatRequest builds a signed chat webhook request for the tenant's channel.
func ChatRequest(base string, b Bootstrap, body []byte, now time.Time) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, base+b.WebhookPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderTimestamp, webhook.Timestamp(now))
	req.Header.Set(webhook.HeaderSignature, webhook.Sign([]byte(b.ChatChannel.Secret), now, body))
	return req, nil
}

// syncBuffer is a bytes.Buffer safe for a process's writes and our reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Pid is the process id, for reading its resource use in /proc.
func (n *Node) Pid() int { return n.cmd.Process.Pid }
