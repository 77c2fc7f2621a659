package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The email parser of commit dc2acc1, before Outlook threading, the sender
// fallback and the machine-mail rules of issue 16, measured by the same
// benchmark over the same corpus (68 mails) on the two-core reference
// machine: the medians of 15 runs of 50 iterations each, interleaved with
// 15 runs of the parser after it (168 and 399 µs, ratios 1.04 and 1.02).
const (
	mailparseBaselineP50us = 162.0
	mailparseBaselineP99us = 391.0
	// mailparseTarget is the largest ratio to the baseline the issue
	// allows: within 10% of the parser of before.
	mailparseTarget = 1.10
)

// MailparseResult is one run of the mailparse scenario.
type MailparseResult struct {
	// Mails is the size of the corpus.
	Mails int `json:"mails"`
	// P50us and P99us are the median and 99th percentile, across the
	// corpus's mails, of the time one mail takes (each mail's own time is
	// its median over the run's iterations), in microseconds.
	P50us float64 `json:"per_mail_p50_us"`
	P99us float64 `json:"per_mail_p99_us"`
}

// mailparseScenario runs the email parser's corpus benchmark
// (BenchmarkCorpus in connectors/email/internal/mailparse, an internal
// package this module cannot import) o.mailparseRuns times through go
// test, and prints the medians beside the parser of before.
func mailparseScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	if o.mailparseRuns < 1 {
		return fmt.Errorf("-mailparse-runs must be at least 1, got %d", o.mailparseRuns)
	}
	fmt.Fprintf(w, "\nmailparse scenario: the email parser over its test corpus, %d runs of %s iterations\n\n", o.mailparseRuns, o.mailparseBenchtime)
	out, err := goBench(ctx, o.mailparseModule, o.mailparseRuns, o.mailparseBenchtime)
	if err != nil {
		return err
	}
	results, err := parseMailparseBench(out)
	if err != nil {
		return err
	}
	for i, r := range results {
		fmt.Fprintf(w, "run %d: %d mails, per mail p50 %.0f µs p99 %.0f µs\n", i+1, r.Mails, r.P50us, r.P99us)
	}
	med := medianOver(results)
	m := MailparseResult{
		Mails: results[0].Mails,
		P50us: med(func(r MailparseResult) float64 { return r.P50us }),
		P99us: med(func(r MailparseResult) float64 { return r.P99us }),
	}
	p50Ratio, p99Ratio := m.P50us/mailparseBaselineP50us, m.P99us/mailparseBaselineP99us
	fmt.Fprintf(w, "\nmedians over %d runs, %d mails (the baseline is the parser of dc2acc1 on the reference machine)\n", len(results), m.Mails)
	fmt.Fprintf(w, "  mailparse  per mail  p50   %8.0f µs   baseline %6.0f µs   ratio %.2f   target <= %.2f: %s\n",
		m.P50us, mailparseBaselineP50us, p50Ratio, mailparseTarget, verdict(p50Ratio <= mailparseTarget))
	fmt.Fprintf(w, "  mailparse  per mail  p99   %8.0f µs   baseline %6.0f µs   ratio %.2f   target <= %.2f: %s\n",
		m.P99us, mailparseBaselineP99us, p99Ratio, mailparseTarget, verdict(p99Ratio <= mailparseTarget))
	report["mailparse"] = map[string]any{"runs": results, "median": m,
		"baseline": MailparseResult{Mails: 68, P50us: mailparseBaselineP50us, P99us: mailparseBaselineP99us}}
	return nil
}

// goBench runs BenchmarkCorpus in module dir and returns go test's output.
func goBench(ctx context.Context, dir string, count int, benchtime string) ([]byte, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkCorpus$",
		"-benchtime", benchtime, "-count", strconv.Itoa(count), "./internal/mailparse")
	cmd.Dir = abs
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -bench BenchmarkCorpus in %s: %w: %s%s", abs, err, out, stderr.Bytes())
	}
	return out, nil
}

// parseMailparseBench reads the BenchmarkCorpus lines of go test's output:
// the name, the iterations, then value and unit pairs.
func parseMailparseBench(out []byte) ([]MailparseResult, error) {
	var results []MailparseResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.HasPrefix(fields[0], "BenchmarkCorpus") {
			continue
		}
		var r MailparseResult
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchmark line %q: %w", sc.Text(), err)
			}
			switch fields[i+1] {
			case "mails/op":
				r.Mails = int(v)
			case "ns/mail-p50":
				r.P50us = v / 1e3
			case "ns/mail-p99":
				r.P99us = v / 1e3
			}
		}
		if r.Mails == 0 || r.P50us == 0 {
			return nil, fmt.Errorf("benchmark line %q lacks mails/op or ns/mail-p50", sc.Text())
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return nil, fmt.Errorf("no BenchmarkCorpus result in go test's output:\n%s", out)
	}
	return results, nil
}
