package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	tpsLine   = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	redisLine = regexp.MustCompile(`SET: ([0-9.]+) requests per second`)
)

// pgbenchInsert measures single-row INSERTs (one row per transaction,
// autocommit, durable) at the benchmark's concurrency: the database's own
// ceiling for one stored row.
func pgbenchInsert(ctx context.Context, o options) (float64, error) {
	url, drop, err := freshDatabase(ctx, o.adminURL, "sbbench_pgbench_")
	if err != nil {
		return 0, err
	}
	defer drop()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	_, err = conn.Exec(ctx, `CREATE TABLE rows (id bigserial PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`)
	conn.Close(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgbench table: %w", err)
	}
	dir, err := os.MkdirTemp("", "sbbench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "insert.sql")
	if err := os.WriteFile(script, []byte("INSERT INTO rows (body) VALUES ('a customer message of ordinary length');\n"), 0o644); err != nil {
		return 0, err
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-f", script,
		"-c", strconv.Itoa(o.concurrency), "-j", "2", "-T", strconv.Itoa(int(o.pgbenchTime/time.Second)),
		"-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, cfg.Database)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w: %s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no tps: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// redisSet measures SET on the local Redis.
func redisSet(ctx context.Context, concurrency int) (float64, error) {
	out, err := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", "6379", "-t", "set", "-n", "200000",
		"-c", strconv.Itoa(concurrency), "-q").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w: %s", err, out)
	}
	m := redisLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("redis-benchmark printed no rate: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
