package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestRun(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the test binary: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command(gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..", "image", "testdata", "hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}

	args := []string{"-binary", bin, "-ca-certs", certs, "-tag", "ghcr.io/switchboard-oss/switchboard:t",
		"-version", "t", "-revision", "abc", "-oci", filepath.Join(dir, "oci"), "-tar", filepath.Join(dir, "sb.tar")}
	env := func(epoch string) func(string) string {
		return func(k string) string {
			if k == "SOURCE_DATE_EPOCH" {
				return epoch
			}
			return ""
		}
	}
	var out1, out2, out3, errs bytes.Buffer
	if code := run(args, env(""), &out1, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	re := regexp.MustCompile(`^ghcr\.io/switchboard-oss/switchboard@sha256:[0-9a-f]{64}\nimage ID sha256:[0-9a-f]{64}\n$`)
	if !re.MatchString(out1.String()) {
		t.Errorf("printed %q", out1.String())
	}
	if code := run(args, env("0"), &out2, &errs); code != 0 || out2.String() != out1.String() {
		t.Errorf("again with SOURCE_DATE_EPOCH=0: exit %d, %q, want %q", code, out2.String(), out1.String())
	}
	if code := run(args, env("1700000000"), &out3, &errs); code != 0 || out3.String() == out1.String() {
		t.Errorf("SOURCE_DATE_EPOCH=1700000000: exit %d, %q", code, out3.String())
	}
	tag, _ := name.NewTag("ghcr.io/switchboard-oss/switchboard:t")
	img, err := tarball.ImageFromPath(filepath.Join(dir, "sb.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil || !strings.Contains(out3.String(), d.String()) {
		t.Errorf("tarball holds %s (%v), printed %q", d, err, out3.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "oci", "index.json")); err != nil {
		t.Error(err)
	}

	for _, bad := range []struct {
		args  []string
		epoch string
	}{
		{nil, ""},
		{[]string{"-binary", bin, "extra"}, ""},
		{[]string{"-binary", bin, "-tag", "Not A Tag"}, ""},
		{[]string{"-binary", bin}, "yesterday"},
		{[]string{"-binary", bin}, "-5"},
	} {
		errs.Reset()
		if code := run(bad.args, env(bad.epoch), &out1, &errs); code != 2 {
			t.Errorf("%q with SOURCE_DATE_EPOCH=%q: exit %d, want 2 (%s)", bad.args, bad.epoch, code, errs.String())
		}
	}
	if code := run([]string{"-binary", certs, "-ca-certs", certs}, env(""), &out1, &errs); code != 1 {
		t.Errorf("a PEM file as binary: exit %d, want 1", code)
	}
}
