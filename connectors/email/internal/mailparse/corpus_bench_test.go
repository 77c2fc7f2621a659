package mailparse

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParseCorpus parses every mail of the corpus once per iteration
// and reports the time per mail. Timings are read from it, never asserted.
func BenchmarkParseCorpus(b *testing.B) {
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
	// A store that keeps nothing: the parser's work, not the store's.
	p := newParser(b, Options{Store: &memStore{}})
	ctx := context.Background()
	for b.Loop() {
		for _, raw := range raws {
			if _, err := p.Parse(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(raws)), "ns/mail")
}
