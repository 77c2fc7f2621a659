package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// configDoc renders every flag of a serving process as the configuration
// reference: the flag help is the documentation, and this keeps the file in
// step with it.
func configDoc() string {
	f := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	var cfg Config
	cfg.RegisterFlags(f)
	aliases := envAliases()
	var b strings.Builder
	b.WriteString("# Configuration reference\n\n")
	b.WriteString("Generated from the flags of `switchboard` by `make docs`; do not edit by hand.\n\n")
	b.WriteString("Every setting is a flag and an environment variable: the flag wins, then the `SB_` variable, then the\n")
	b.WriteString("conventional variable where there is one, then the default. `switchboard -help` prints the same.\n\n")
	b.WriteString("| flag | environment | default | what it does |\n| --- | --- | --- | --- |\n")
	f.VisitAll(func(fl *flag.Flag) {
		env := "`" + config.EnvName(fl.Name) + "`"
		if alias, ok := aliases[fl.Name]; ok {
			env += ", `" + alias + "`"
		}
		def := fl.DefValue
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `-%s` | %s | `%s` | %s |\n", fl.Name, env, def, strings.ReplaceAll(fl.Usage, "|", "\\|"))
	})
	return b.String()
}

func TestConfigurationReferenceIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "configuration.md")
	want := configDoc()
	if os.Getenv("SB_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run `make docs`)", path, err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with the flags: run `make docs`", path)
	}
}
