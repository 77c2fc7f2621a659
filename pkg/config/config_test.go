package config_test

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"kafka.brokers":            "SB_KAFKA_BROKERS",
		"http.max-body-bytes":      "SB_HTTP_MAX_BODY_BYTES",
		"target":                   "SB_TARGET",
		"chat.signature-tolerance": "SB_CHAT_SIGNATURE_TOLERANCE",
	} {
		if got := config.EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	newSet := func() (*flag.FlagSet, *string, *time.Duration, *config.StringList) {
		f := flag.NewFlagSet("t", flag.ContinueOnError)
		url := f.String("database.url", "default-url", "")
		d := f.Duration("http.timeout", time.Second, "")
		var brokers config.StringList
		f.Var(&brokers, "kafka.brokers", "")
		return f, url, d, &brokers
	}
	env := func(m map[string]string) config.LookupEnv {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	aliases := config.Aliases{"database.url": "DATABASE_URL", "kafka.brokers": "KAFKA_BROKERS"}

	f, url, d, brokers := newSet()
	if err := config.Load(f, nil, env(nil), aliases); err != nil {
		t.Fatal(err)
	}
	if *url != "default-url" || *d != time.Second || len(*brokers) != 0 {
		t.Errorf("defaults: got %q %s %v", *url, *d, *brokers)
	}

	f, url, d, brokers = newSet()
	if err := config.Load(f, nil, env(map[string]string{"DATABASE_URL": "alias", "SB_HTTP_TIMEOUT": "3s", "KAFKA_BROKERS": "a:1, b:2"}), aliases); err != nil {
		t.Fatal(err)
	}
	if *url != "alias" || *d != 3*time.Second || strings.Join(*brokers, "|") != "a:1|b:2" {
		t.Errorf("from environment: got %q %s %v", *url, *d, *brokers)
	}

	f, url, _, _ = newSet()
	if err := config.Load(f, nil, env(map[string]string{"DATABASE_URL": "alias", "SB_DATABASE_URL": "prefixed"}), aliases); err != nil {
		t.Fatal(err)
	}
	if *url != "prefixed" {
		t.Errorf("SB_ variable should win over the alias: got %q", *url)
	}

	f, url, _, _ = newSet()
	if err := config.Load(f, []string{"-database.url=flag"}, env(map[string]string{"SB_DATABASE_URL": "prefixed"}), aliases); err != nil {
		t.Fatal(err)
	}
	if *url != "flag" {
		t.Errorf("the flag should win over the environment: got %q", *url)
	}

	f, _, _, _ = newSet()
	err := config.Load(f, nil, env(map[string]string{"SB_HTTP_TIMEOUT": "soon"}), aliases)
	if err == nil || !strings.Contains(err.Error(), "SB_HTTP_TIMEOUT") {
		t.Errorf("a bad environment value should name its variable, got %v", err)
	}
}

func TestCheckerNamesSettingAndFix(t *testing.T) {
	ck := config.NewChecker("inbox.")
	ck.Positive("poll", 0)
	ck.AtLeast("batch", 0, 1)
	ck.Check(true, "fine", "never", "never")
	err := ck.Err()
	var cfgErr *config.Error
	if !errors.As(err, &cfgErr) {
		t.Fatalf("Err() = %v, want a *config.Error", err)
	}
	msg := err.Error()
	for _, want := range []string{"-inbox.poll", "SB_INBOX_POLL", "-inbox.batch", "SB_INBOX_BATCH", "set a value of 1 or more"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "fine") {
		t.Errorf("error %q mentions a valid setting", msg)
	}
}
