package mailparse

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkCorpus parses every mail of testdata/corpus once per iteration.
// Besides ns/op (the whole corpus), it reports the time per mail over the
// corpus: each mail's time is its median over the iterations, which keeps
// what the machine's other work adds to a few of them out, and
// ns/mail-p50 and ns/mail-p99 are the median and 99th percentile of those
// times across the mails. The bench program's mailparse scenario prints
// them beside the parser of before (bench/mailparse.go).
func BenchmarkCorpus(b *testing.B) {
	paths, err := filepath.Glob(filepath.Join("testdata", "corpus", "*", "*.eml"))
	if err != nil {
		b.Fatal(err)
	}
	if len(paths) == 0 {
		b.Skip("no corpus")
	}
	raws := make([][]byte, len(paths))
	for i, path := range paths {
		if raws[i], err = os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
	p := newParser(b, Options{Store: newMemStore()})
	ctx := context.Background()
	times := make([][]time.Duration, len(raws))
	b.ResetTimer()
	for range b.N {
		for i, raw := range raws {
			start := time.Now()
			// A mail the parser refuses costs its time too.
			_, _ = p.Parse(ctx, raw)
			times[i] = append(times[i], time.Since(start))
		}
	}
	b.StopTimer()
	perMail := make([]time.Duration, len(raws))
	for i, ts := range times {
		slices.Sort(ts)
		perMail[i] = ts[len(ts)/2]
	}
	slices.Sort(perMail)
	b.ReportMetric(float64(len(raws)), "mails/op")
	b.ReportMetric(float64(perMail[len(perMail)/2].Nanoseconds()), "ns/mail-p50")
	b.ReportMetric(float64(perMail[(len(perMail)-1)*99/100].Nanoseconds()), "ns/mail-p99")
}
