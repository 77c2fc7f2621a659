package mailparse

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// corpusMinimum is the fewest mails the corpus must hold, and
// corpusAgreement the share of mails on which every field must agree with
// its expectation.
const (
	corpusMinimum   = 100
	corpusAgreement = 0.98
)

// corpusCase is the expectation stored beside each mail of
// testdata/corpus/<class>/<name>.eml, as <name>.json. Expectations are
// written by hand from what a person reading the mail in a mail client
// sees, never copied from the parser's output.
type corpusCase struct {
	// Subject is the decoded subject.
	Subject string `json:"subject"`
	// From is the sender's address, lowercased; empty when the mail has
	// none that can be trusted.
	From string `json:"from"`
	// Text is the text body, compared after normalizeCorpusText.
	Text string `json:"text"`
	// Attachments are the file names of Mail.Attachments, in order.
	Attachments []string `json:"attachments"`
	// Automatic says a machine sent the mail.
	Automatic bool `json:"automatic"`
	// Options are the parser options this mail needs (its mailbox's own
	// X-Loop values and domains).
	Options struct {
		LoopValues []string `json:"loop_values"`
		OwnDomains []string `json:"own_domains"`
	} `json:"options"`
}

// corpusFields are the fields compared, in report order.
var corpusFields = []string{"subject", "from", "text", "attachments", "automatic"}

var blankLines = regexp.MustCompile(`\n{3,}`)

// normalizeCorpusText makes a text comparable across clients: LF line
// ends, no trailing spaces, at most one blank line in a row, no leading or
// trailing blank lines.
func normalizeCorpusText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\u00a0")
	}
	s = blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.TrimSpace(s)
}

// TestCorpus parses every mail of the corpus and reports, per field, on
// how many mails the parser agrees with the expectation. It fails when
// any field agrees on fewer than corpusAgreement of the mails, or when the
// corpus is smaller than corpusMinimum.
func TestCorpus(t *testing.T) {
	mails, err := filepath.Glob(filepath.Join("testdata", "corpus", "*", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(mails)
	agree := map[string]int{}
	perClass := map[string][2]int{}
	for _, path := range mails {
		rel, _ := filepath.Rel(filepath.Join("testdata", "corpus"), path)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		js, err := os.ReadFile(strings.TrimSuffix(path, ".eml") + ".json")
		if err != nil {
			t.Fatalf("%s: no expectation: %v", rel, err)
		}
		var want corpusCase
		dec := json.NewDecoder(strings.NewReader(string(js)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("%s: expectation: %v", rel, err)
		}
		p := newParser(t, Options{
			Store:      newMemStore(),
			LoopValues: want.Options.LoopValues,
			OwnDomains: want.Options.OwnDomains,
		})
		got := map[string]bool{}
		m, err := p.Parse(context.Background(), raw)
		if err != nil {
			t.Errorf("%s: not parsed: %v", rel, err)
		} else {
			var names []string
			for _, a := range m.Attachments {
				names = append(names, a.FileName)
			}
			got["subject"] = m.Subject == want.Subject
			got["from"] = m.From.Address == want.From
			got["text"] = normalizeCorpusText(m.Text) == normalizeCorpusText(want.Text)
			got["attachments"] = strings.Join(names, "\x00") == strings.Join(want.Attachments, "\x00")
			got["automatic"] = m.Automatic == want.Automatic
			if !got["subject"] {
				t.Logf("%s: subject %q, want %q", rel, m.Subject, want.Subject)
			}
			if !got["from"] {
				t.Logf("%s: from %q, want %q", rel, m.From.Address, want.From)
			}
			if !got["text"] {
				t.Logf("%s: text\n%s\nwant\n%s", rel, normalizeCorpusText(m.Text), normalizeCorpusText(want.Text))
			}
			if !got["attachments"] {
				t.Logf("%s: attachments %q, want %q", rel, names, want.Attachments)
			}
			if !got["automatic"] {
				t.Logf("%s: automatic %v (%s), want %v", rel, m.Automatic, m.AutomaticReason, want.Automatic)
			}
		}
		class := filepath.Dir(rel)
		c := perClass[class]
		c[1]++
		all := true
		for _, f := range corpusFields {
			if got[f] {
				agree[f]++
			} else {
				all = false
			}
		}
		if all {
			c[0]++
		}
		perClass[class] = c
	}
	n := len(mails)
	if n < corpusMinimum {
		t.Fatalf("the corpus holds %d mails, at least %d are needed", n, corpusMinimum)
	}
	classes := make([]string, 0, len(perClass))
	for c := range perClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, c := range classes {
		t.Logf("class %-24s %3d of %3d mails agree on every field", c, perClass[c][0], perClass[c][1])
	}
	for _, f := range corpusFields {
		share := float64(agree[f]) / float64(n)
		t.Logf("%-12s %3d of %d mails agree (%.1f%%)", f, agree[f], n, 100*share)
		if share < corpusAgreement {
			t.Errorf("%s agrees on %.1f%% of the corpus, below %.0f%%", f, 100*share, 100*corpusAgreement)
		}
	}
}
