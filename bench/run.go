package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// runEnv is what one run of a scenario works on: a fresh database, a data
// directory, and the tenant the binary created in it.
type runEnv struct {
	dbURL   string
	dataDir string
	boot    testkit.Bootstrap
	drop    func()
}

// newRunEnv creates the database (its name starting with prefix), the
// data directory and the tenant. close removes them.
func newRunEnv(ctx context.Context, o options, prefix string) (*runEnv, error) {
	dbURL, drop, err := freshDatabase(ctx, o.adminURL, prefix)
	if err != nil {
		return nil, err
	}
	e := &runEnv{dbURL: dbURL, drop: drop}
	if e.dataDir, err = os.MkdirTemp("", "sbbench-data-"); err != nil {
		drop()
		return nil, err
	}
	// The key the all-in-one process keeps in its data directory, made
	// first so that the tenant's chat secret is sealed under it.
	keys := filepath.Join(e.dataDir, seal.KeyFileName)
	if _, err := seal.EnsureKeysFile(keys, "bench"); err != nil {
		e.close()
		return nil, err
	}
	if e.boot, err = e.createTenant(o, "Bench"); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// createTenant creates a tenant with the admin command, sealing its
// secrets under the key of e's data directory.
func (e *runEnv) createTenant(o options, name string) (testkit.Bootstrap, error) {
	return testkit.CreateTenant(o.binary, e.dbURL, name, "SB_SECRETS_KEYS_FILE="+filepath.Join(e.dataDir, seal.KeyFileName))
}

func (e *runEnv) close() {
	os.RemoveAll(e.dataDir)
	e.drop()
}

// start starts the binary on e, listening on addr (empty: a free port),
// with args and then o's extra ones; it has a minute to come up. The chat
// and SMS webhooks' per-channel rates are off: the scenarios measure what
// the pipeline carries, far above one channel's default limit (the
// ratelimit scenario measures the limits).
func (e *runEnv) start(ctx context.Context, o options, addr string, args ...string) (*testkit.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return testkit.StartNode(ctx, testkit.NodeOptions{Binary: o.binary, DatabaseURL: e.dbURL, DataDir: e.dataDir, Addr: addr,
		Env:  []string{"SB_SECRETS_KEYS_FILE=" + filepath.Join(e.dataDir, seal.KeyFileName), "SB_CHAT_WEBHOOK_RATE=0", "SB_SMS_WEBHOOK_RATE=0"},
		Args: append(args, strings.Fields(o.extraArgs)...)})
}

// errGaveUp is poll's answer when its time ran out.
var errGaveUp = errors.New("gave up waiting")

// poll calls try until it is done or fails, pause apart, for at most limit;
// then it returns errGaveUp, and the caller says what it was waiting for.
func poll(ctx context.Context, limit, pause time.Duration, try func() (done bool, err error)) error {
	deadline := time.Now().Add(limit)
	for {
		done, err := try()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errGaveUp
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// adminCreate posts body as JSON to path of the admin API at base, with
// token, and returns the id of what it created; errors name what.
func adminCreate(ctx context.Context, base, token, path, what string, body any) (string, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", what, err)
	}
	defer resp.Body.Close()
	raw, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create %s: %d %s", what, resp.StatusCode, raw)
	}
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("create %s: no id in %s", what, raw)
	}
	return m.ID, nil
}
