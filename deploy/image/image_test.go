package image

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// goBuild builds the package in dir into out, statically for linux/arch.
func goBuild(t *testing.T, dir, out, arch string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the test binary: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, b)
	}
}

// helloBinary is a small static binary standing in for switchboard.
func helloBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hello")
	goBuild(t, filepath.Join("testdata", "hello"), out, "amd64")
	return out
}

// testCerts writes a bundle of one self-signed certificate.
func testCerts(t *testing.T) (string, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Switchboard test root"},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Unix(0, 0).Add(100 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

func testOptions(t *testing.T) Options {
	t.Helper()
	certs, _ := testCerts(t)
	return Options{
		Binary:   helloBinary(t),
		CACerts:  certs,
		Source:   "https://github.com/switchboard-oss/switchboard",
		Version:  "1.2.3",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Licenses: "Apache-2.0",
	}
}

func build(t *testing.T, o Options) (v1.Image, Digests) {
	t.Helper()
	img, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DigestsOf(img)
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

// copyFile copies src to dst with mode, and gives it another mtime.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dst, time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	t.Parallel()
	o := testOptions(t)
	_, first := build(t, o)

	// The same content elsewhere, with another mode and time on the host.
	o2 := o
	dir := t.TempDir()
	o2.Binary = filepath.Join(dir, "switchboard-copy")
	copyFile(t, o.Binary, o2.Binary, 0o700)
	o2.CACerts = filepath.Join(dir, "bundle.crt")
	copyFile(t, o.CACerts, o2.CACerts, 0o600)
	_, second := build(t, o2)
	if first != second {
		t.Fatalf("two builds of the same inputs differ: %+v and %+v", first, second)
	}

	// What should change the digest does.
	o3 := o
	o3.Created = time.Unix(1700000000, 0)
	if _, d := build(t, o3); d.Manifest == first.Manifest || d.Config == first.Config {
		t.Error("another creation time gives the same image")
	}
	o4 := o
	o4.Version = "1.2.4"
	if _, d := build(t, o4); d.Manifest == first.Manifest {
		t.Error("another version label gives the same image")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	o := testOptions(t)
	img, _ := build(t, o)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cf.OS, cf.Architecture)
	}
	if !cf.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created %s, want the epoch", cf.Created)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/switchboard"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if len(c.Cmd) != 0 {
		t.Errorf("cmd %q: a cmd would hide SB_TARGET", c.Cmd)
	}
	if c.WorkingDir != "/home/nonroot" {
		t.Errorf("working dir %q", c.WorkingDir)
	}
	env := map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if !slices.Contains(filepath.SplitList(env["PATH"]), "/usr/local/bin") {
		t.Errorf("PATH %q lacks /usr/local/bin", env["PATH"])
	}
	if env["SSL_CERT_FILE"] != "/etc/ssl/certs/ca-certificates.crt" || env["SB_DATA_DIR"] != "/var/lib/switchboard" {
		t.Errorf("env %q", c.Env)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("exposed ports %v, want 8080/tcp", c.ExposedPorts)
	}
	for k, want := range map[string]string{
		LabelTitle:    "switchboard",
		LabelSource:   o.Source,
		LabelVersion:  o.Version,
		LabelRevision: o.Revision,
		LabelLicenses: o.Licenses,
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if _, ok := c.Labels[LabelCreated]; ok {
		t.Error("created label at the epoch")
	}
	if len(cf.History) != 2 || len(cf.RootFS.DiffIDs) != 2 {
		t.Errorf("%d history entries and %d layers, want 2 and 2", len(cf.History), len(cf.RootFS.DiffIDs))
	}

	// Nothing of the build machine.
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	wd, _ := os.Getwd()
	for _, s := range []string{filepath.Dir(o.Binary), filepath.Dir(o.CACerts), wd, host} {
		if s != "" && s != "/" && bytes.Contains(raw, []byte(s)) {
			t.Errorf("configuration mentions %q of the build machine:\n%s", s, raw)
		}
	}

	mt, err := img.MediaType()
	if err != nil || mt != types.DockerManifestSchema2 {
		t.Errorf("manifest media type %s, %v", mt, err)
	}

	// Labels left out when empty; the created label follows Created.
	o.Revision, o.Licenses, o.Created = "", "", time.Unix(1700000000, 0)
	cfg := Config(o)
	if _, ok := cfg.Labels[LabelRevision]; ok {
		t.Error("empty revision label kept")
	}
	if _, ok := cfg.Labels[LabelLicenses]; ok {
		t.Error("empty licenses label kept")
	}
	if cfg.Labels[LabelCreated] != "2023-11-14T22:13:20Z" {
		t.Errorf("created label %q", cfg.Labels[LabelCreated])
	}
}

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

// layerEntries reads the entries of each layer of img.
func layerEntries(t *testing.T, img v1.Image) [][]tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var all [][]tarEntry
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil || mt != types.DockerLayer {
			t.Errorf("layer %d media type %s, %v", i, mt, err)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var es []tarEntry
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			es = append(es, tarEntry{h, b})
		}
		rc.Close()
		all = append(all, es)
	}
	return all
}

func TestLayers(t *testing.T) {
	t.Parallel()
	o := testOptions(t)
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := build(t, o)
	layers := layerEntries(t, img)
	if len(layers) != 2 {
		t.Fatalf("%d layers, want 2", len(layers))
	}

	type want struct {
		mode     int64
		uid, gid int
		dir      bool
	}
	wants := map[string]want{
		"etc/":                              {0o755, 0, 0, true},
		"etc/group":                         {0o644, 0, 0, false},
		"etc/nsswitch.conf":                 {0o644, 0, 0, false},
		"etc/passwd":                        {0o644, 0, 0, false},
		"etc/ssl/":                          {0o755, 0, 0, true},
		"etc/ssl/certs/":                    {0o755, 0, 0, true},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0, false},
		"home/":                             {0o755, 0, 0, true},
		"home/nonroot/":                     {0o700, 65532, 65532, true},
		"root/":                             {0o700, 0, 0, true},
		"tmp/":                              {0o1777, 0, 0, true},
		"var/":                              {0o755, 0, 0, true},
		"var/lib/":                          {0o755, 0, 0, true},
		"var/lib/switchboard/":              {0o750, 65532, 65532, true},
		"usr/":                              {0o755, 0, 0, true},
		"usr/local/":                        {0o755, 0, 0, true},
		"usr/local/bin/":                    {0o755, 0, 0, true},
		"usr/local/bin/switchboard":         {0o755, 0, 0, false},
	}
	seen := map[string]bool{}
	files := map[string][]byte{}
	for i, es := range layers {
		var names []string
		for _, e := range es {
			h := e.hdr
			names = append(names, h.Name)
			if seen[h.Name] {
				t.Errorf("%s twice", h.Name)
			}
			seen[h.Name] = true
			w, ok := wants[h.Name]
			if !ok {
				t.Errorf("layer %d: unexpected entry %s", i, h.Name)
				continue
			}
			if h.Mode != w.mode || h.Uid != w.uid || h.Gid != w.gid {
				t.Errorf("%s: mode %o uid %d gid %d, want %o %d %d", h.Name, h.Mode, h.Uid, h.Gid, w.mode, w.uid, w.gid)
			}
			if (h.Typeflag == tar.TypeDir) != w.dir || (!w.dir && h.Typeflag != tar.TypeReg) {
				t.Errorf("%s: type %c", h.Name, h.Typeflag)
			}
			if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" || h.Gname != "" || len(h.PAXRecords) != 0 {
				t.Errorf("%s: mtime %s, uname %q, gname %q, PAX %v", h.Name, h.ModTime, h.Uname, h.Gname, h.PAXRecords)
			}
			if h.Format != tar.FormatUSTAR {
				t.Errorf("%s: format %s, want USTAR", h.Name, h.Format)
			}
			files[h.Name] = e.body
		}
		if !slices.IsSorted(names) {
			t.Errorf("layer %d entries not sorted: %q", i, names)
		}
	}
	for n := range wants {
		if !seen[n] {
			t.Errorf("no %s", n)
		}
	}
	if !bytes.Equal(files["etc/ssl/certs/ca-certificates.crt"], certs) {
		t.Error("the CA bundle is not the one given")
	}
	if !bytes.Equal(files["usr/local/bin/switchboard"], bin) {
		t.Error("the binary is not the one given")
	}
	if !strings.Contains(string(files["etc/passwd"]), "\nnonroot:x:65532:65532:") || !strings.HasPrefix(string(files["etc/passwd"]), "root:x:0:0:") {
		t.Errorf("passwd:\n%s", files["etc/passwd"])
	}
	if !strings.Contains(string(files["etc/group"]), "\nnonroot:x:65532:") {
		t.Errorf("group:\n%s", files["etc/group"])
	}

	// The binary in the image is static.
	out := filepath.Join(t.TempDir(), "switchboard")
	if err := os.WriteFile(out, files["usr/local/bin/switchboard"], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckStatic(out, "amd64"); err != nil {
		t.Error(err)
	}
}

func TestRefusesWhatCannotRun(t *testing.T) {
	t.Parallel()
	o := testOptions(t)

	bad := o
	bad.Arch = "arm64"
	if _, err := Build(bad); err == nil || !strings.Contains(err.Error(), "GOARCH=arm64") {
		t.Errorf("amd64 binary as arm64: %v", err)
	}

	bad = o
	bad.Binary = o.CACerts
	if _, err := Build(bad); err == nil {
		t.Error("a PEM file taken for a binary")
	}

	bad = o
	bad.CACerts = o.Binary
	if _, err := Build(bad); err == nil || !strings.Contains(err.Error(), "CA certificates") {
		t.Errorf("a binary taken for the CA bundle: %v", err)
	}

	empty := filepath.Join(t.TempDir(), "empty.crt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bad = o
	bad.CACerts = empty
	if _, err := Build(bad); err == nil {
		t.Error("an empty CA bundle accepted")
	}

	// A dynamically linked executable of the machine, where there is one.
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		for _, p := range []string{"/bin/sh", "/usr/bin/env", "/bin/ls"} {
			if err := CheckStatic(p, "amd64"); err != nil {
				if !strings.Contains(err.Error(), "CGO_ENABLED=0") {
					t.Errorf("%s: %v", p, err)
				}
				return
			}
		}
		t.Log("no dynamically linked executable found to refuse")
	}
}

func TestWriteAndLoadBack(t *testing.T) {
	t.Parallel()
	o := testOptions(t)
	img, d := build(t, o)
	tag, err := name.NewTag("ghcr.io/switchboard-oss/switchboard:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "switchboard.tar")
	ociDir := filepath.Join(dir, "oci")

	if err := WriteTarball(tarPath, tag, img); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(ociDir, tag, img); err != nil {
		t.Fatal(err)
	}

	// docker load's format, read back.
	loaded, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatal(err)
	}
	ld, err := DigestsOf(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if ld != d {
		t.Errorf("tarball loads back as %+v, built %+v", ld, d)
	}

	// The OCI layout, read back.
	idx, err := layout.ImageIndexFromPath(ociDir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%d manifests in the layout", len(im.Manifests))
	}
	m := im.Manifests[0]
	if m.Digest != d.Manifest || m.Platform == nil || m.Platform.OS != "linux" || m.Platform.Architecture != "amd64" ||
		m.Annotations["org.opencontainers.image.ref.name"] != "1.2.3" {
		t.Errorf("layout descriptor %+v (platform %+v), want %s linux/amd64 1.2.3", m, m.Platform, d.Manifest)
	}
	fromLayout, err := idx.Image(m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DigestsOf(fromLayout); err != nil || got != d {
		t.Errorf("layout image %+v, %v; want %+v", got, err, d)
	}

	// Written again, over the first: the same bytes.
	sum := func(p string) [32]byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	tar1, idx1 := sum(tarPath), sum(filepath.Join(ociDir, "index.json"))
	img2, _ := build(t, o)
	if err := WriteTarball(tarPath, tag, img2); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(ociDir, tag, img2); err != nil {
		t.Fatal(err)
	}
	if sum(tarPath) != tar1 || sum(filepath.Join(ociDir, "index.json")) != idx1 {
		t.Error("writing the same image again gives other bytes")
	}
	blobs, err := os.ReadDir(filepath.Join(ociDir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 4 { // manifest, config, two layers
		t.Errorf("%d blobs in the layout, want 4", len(blobs))
	}
	for _, b := range blobs {
		if fi, err := b.Info(); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("blob %s: mode %v, %v; want 0644", b.Name(), fi.Mode(), err)
		}
	}

	// A directory that is not a layout is not replaced.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(other, tag, img); err == nil {
		t.Error("a directory that is not a layout was replaced")
	}
	if _, err := os.Stat(filepath.Join(other, "precious")); err != nil {
		t.Error(err)
	}
}

// TestRealBinary puts the switchboard binary in an image and runs the
// binary taken back out of the layer. Building switchboard statically takes
// minutes, so `make test` builds it once with `make image` and names it in
// SB_TEST_IMAGE_BINARY; without it the test builds it here, as make image
// does.
func TestRealBinary(t *testing.T) {
	bin := os.Getenv("SB_TEST_IMAGE_BINARY")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "switchboard")
		goBuild(t, filepath.Join("..", "..", "cmd", "switchboard"), bin, runtime.GOARCH)
	}
	if err := CheckStatic(bin, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	certs, _ := testCerts(t)
	start := time.Now()
	img, d1 := build(t, Options{Binary: bin, CACerts: certs, Arch: runtime.GOARCH})
	t.Logf("built in %s: %s", time.Since(start).Round(time.Millisecond), d1.Manifest)
	_, d2 := build(t, Options{Binary: bin, CACerts: certs, Arch: runtime.GOARCH})
	if d1 != d2 {
		t.Errorf("two builds differ: %+v, %+v", d1, d2)
	}

	var inImage []byte
	for _, es := range layerEntries(t, img) {
		for _, e := range es {
			if e.hdr.Name == strings.TrimPrefix(BinaryPath, "/") {
				inImage = e.body
			}
		}
	}
	out := filepath.Join(t.TempDir(), "switchboard")
	if err := os.WriteFile(out, inImage, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(out, "-help")
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("switchboard -help: %v\n%s", err, b)
	}
	if !bytes.Contains(b, []byte("Usage: switchboard")) || !bytes.Contains(b, []byte("-target")) {
		t.Errorf("switchboard -help printed:\n%s", b)
	}
}
