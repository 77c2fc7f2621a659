package mailparse

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input panics the parser (a recovered panic in
// enmime counts as one) and that every parsed mail keeps the package's
// promises: valid UTF-8 without NUL everywhere, no <script in HTML, text
// within its limit.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	corpus, err := filepath.Glob(filepath.Join("testdata", "corpus", "*", "*.eml"))
	if err != nil {
		f.Fatal(err)
	}
	files = append(files, corpus...)
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("From: a@b\r\nContent-Type: text/html\r\n\r\n<scr<script>ipt>alert(1)</script><p onclick=x>hi\x00</p>"))
	f.Add([]byte("From: a@b\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/html; charset=utf-16\r\n\r\n\xff\xfe<\x00s\x00\r\n--x--"))
	f.Add(bigMail(300, 300))
	f.Add(unterminated(8))

	p := newParser(f, Options{Store: &memStore{}, Limits: Limits{MaxRawBytes: 1 << 20}})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := p.Parse(context.Background(), raw)
		if errors.Is(err, errParserPanic) {
			t.Fatalf("parser panicked: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrUnparseable) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		checkInvariants(t, m, p.limits)
	})
}
