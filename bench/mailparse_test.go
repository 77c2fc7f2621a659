package main

import "testing"

func TestParseMailparseBench(t *testing.T) {
	out := []byte("goos: linux\nBenchmarkCorpus-2   \t      50\t  62324795 ns/op\t        68.00 mails/op\t    162410 ns/mail-p50\t    439108 ns/mail-p99\nPASS\n")
	got, err := parseMailparseBench(out)
	if err != nil {
		t.Fatal(err)
	}
	want := MailparseResult{Mails: 68, P50us: 162.41, P99us: 439.108}
	if len(got) != 1 || got[0] != want {
		t.Errorf("parseMailparseBench = %+v, want [%+v]", got, want)
	}
	for _, bad := range []string{"PASS\n", "BenchmarkCorpus-2 50 x ns/op\n", "BenchmarkCorpus-2 50 1 ns/op\n"} {
		if _, err := parseMailparseBench([]byte(bad)); err == nil {
			t.Errorf("parseMailparseBench(%q) succeeded", bad)
		}
	}
}
