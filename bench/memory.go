package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MemoryResult is the memory scenario's figures for one setting of the
// embedded broker.
type MemoryResult struct {
	// KeepRecords is -kafka.embedded-keep-records (-1: no trimming).
	KeepRecords int64 `json:"keep_records"`
	// IdleRSSMiB is the resident memory of the all-in-one process, started
	// and idle (tenant created, chat channel live).
	IdleRSSMiB float64 `json:"idle_rss_mib"`
	// LoadedRSSMiB is its resident memory once the messages are stored and
	// a trimming pass has run.
	LoadedRSSMiB float64 `json:"loaded_rss_mib"`
	// IdleHeapMiB and LoadedHeapMiB are the Go heap in use at the same
	// moments, right after a garbage collection (go_memstats_heap_inuse_bytes
	// after /debug/pprof/heap?gc=1): what the process holds, where resident
	// memory also counts garbage and what the runtime has yet to return.
	IdleHeapMiB   float64 `json:"idle_heap_inuse_mib"`
	LoadedHeapMiB float64 `json:"loaded_heap_inuse_mib"`
	// KafkaDirMiB is the embedded broker's data directory by then.
	KafkaDirMiB float64 `json:"kafka_dir_mib"`
	Messages    int     `json:"messages"`
}

// memoryScenario measures the all-in-one process's memory idle and after
// o.memoryN chat messages, with the embedded broker trimming what its
// consumers have handled (the default) and keeping everything.
func memoryScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	fmt.Fprintf(w, "\nmemory scenario: the all-in-one process (embedded Kafka and Redis), idle %s, then %d chat messages\n", o.memoryIdle, o.memoryN)
	var results []MemoryResult
	for _, keep := range []int64{1000, -1} {
		res, err := memoryRun(ctx, o, keep)
		if err != nil {
			return err
		}
		results = append(results, res)
		what := fmt.Sprintf("keeps %d records per partition beyond what consumers handled", keep)
		if keep < 0 {
			what = "keeps every record (-kafka.embedded-keep-records=-1)"
		}
		fmt.Fprintf(w, "  embedded broker %s\n", what)
		fmt.Fprintf(w, "    idle                     resident %6.0f MiB   live Go heap %6.0f MiB\n", res.IdleRSSMiB, res.IdleHeapMiB)
		fmt.Fprintf(w, "    after %6d messages    resident %6.0f MiB   live Go heap %6.0f MiB   embedded Kafka data %6.1f MiB\n", res.Messages, res.LoadedRSSMiB, res.LoadedHeapMiB, res.KafkaDirMiB)
	}
	report["memory"] = results
	return nil
}

func memoryRun(ctx context.Context, o options, keep int64) (MemoryResult, error) {
	res := MemoryResult{KeepRecords: keep, Messages: o.memoryN}
	env, err := newRunEnv(ctx, o, "sbbench_mem_")
	if err != nil {
		return res, err
	}
	defer env.close()
	const trim = 5 * time.Second
	node, err := env.start(ctx, o, "", "-kafka.embedded-keep-records="+strconv.FormatInt(keep, 10), "-kafka.embedded-trim-interval="+trim.String(), "-http.pprof")
	if err != nil {
		return res, err
	}
	defer node.Stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: 30 * time.Second}
	if err := waitChatLive(ctx, client, node, env.boot); err != nil {
		return res, err
	}
	time.Sleep(o.memoryIdle)
	if res.IdleRSSMiB, err = rssMiB(node.Pid()); err != nil {
		return res, err
	}
	if res.IdleHeapMiB, err = heapMiB(client, node.Base()); err != nil {
		return res, err
	}

	sendChat(client, node.Base(), env.boot, "mem", o.memoryN, o.concurrency, o.perConv)
	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	var stored int
	err = poll(ctx, 5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		err := conn.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE external_id LIKE 'mem-%'`).Scan(&stored)
		return stored == o.memoryN, err
	})
	if errors.Is(err, errGaveUp) {
		return res, fmt.Errorf("only %d of %d messages stored after 5 minutes", stored, o.memoryN)
	}
	if err != nil {
		return res, err
	}
	time.Sleep(2 * trim) // a trimming pass after the last commits
	if res.LoadedRSSMiB, err = rssMiB(node.Pid()); err != nil {
		return res, err
	}
	if res.LoadedHeapMiB, err = heapMiB(client, node.Base()); err != nil {
		return res, err
	}
	res.KafkaDirMiB, err = dirMiB(filepath.Join(env.dataDir, "kafka"))
	return res, err
}

// rssMiB reads a process's resident memory from /proc.
func rssMiB(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("resident memory of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("resident memory of %d: %q: %w", pid, line, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("resident memory of %d: no VmRSS in /proc/%d/status", pid, pid)
}

// dirMiB is the size of the files under dir.
func dirMiB(dir string) (float64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return float64(total) / (1 << 20), nil
}

// heapMiB has the process collect its garbage, then reads
// go_memstats_heap_inuse_bytes from its /metrics.
func heapMiB(client *http.Client, base string) (float64, error) {
	gc, err := client.Get(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, fmt.Errorf("garbage collection: %w", err)
	}
	_, _ = io.Copy(io.Discard, gc.Body)
	gc.Body.Close()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return 0, fmt.Errorf("metrics: %q: %w", line, err)
			}
			return v / (1 << 20), nil
		}
	}
	return 0, errors.New("metrics: no go_memstats_heap_inuse_bytes")
}
