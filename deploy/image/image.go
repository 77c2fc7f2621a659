// Package image builds the Switchboard container image without a container
// engine: a static switchboard binary, the CA certificates and the few files
// a non-root process expects (/etc/passwd, /etc/group, /tmp, a home), in two
// layers, with the same configuration as deploy/Dockerfile (user
// 65532:65532, entrypoint /usr/local/bin/switchboard, port 8080).
//
// The image is reproducible: every entry has a fixed owner, mode and
// modification time (Options.Created, from SOURCE_DATE_EPOCH or the Unix
// epoch), entries are in a fixed order, and nothing of the build machine goes
// in but the binary and the CA bundle given. The same inputs and the same Go
// toolchain (which compresses the layers) give the same digest.
//
// `make image` runs it through deploy/cmd/imagebuild.
package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identity inside the image.
const (
	BinaryPath  = "/usr/local/bin/switchboard"
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	HomeDir     = "/home/nonroot"
	// DataDir is the default -data-dir (SB_DATA_DIR), owned by the
	// non-root user so that a volume mounted there is writable.
	DataDir = "/var/lib/switchboard"
	UID     = 65532
	GID     = 65532
	User    = "65532:65532"
	Port    = "8080/tcp"

	// DefaultCACerts is where Debian and Ubuntu keep the bundle of
	// ca-certificates, the default source of the image's bundle.
	DefaultCACerts = "/etc/ssl/certs/ca-certificates.crt"
)

// OCI annotation keys used as labels.
const (
	LabelTitle    = "org.opencontainers.image.title"
	LabelDesc     = "org.opencontainers.image.description"
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelLicenses = "org.opencontainers.image.licenses"
	LabelCreated  = "org.opencontainers.image.created"
)

// Options are the inputs of Build.
type Options struct {
	// Binary is the path of a statically linked switchboard binary for
	// linux/Arch (CGO_ENABLED=0). Build refuses a dynamically linked one.
	Binary string
	// CACerts is the path of the PEM bundle of trusted CA certificates
	// copied to /etc/ssl/certs/ca-certificates.crt; DefaultCACerts when
	// empty.
	CACerts string
	// Arch is the GOARCH of the binary: amd64 or arm64; amd64 when empty.
	Arch string
	// Created is the time of every file and of the image configuration;
	// the Unix epoch when zero. Seconds only.
	Created time.Time
	// Labels are the OCI labels Source, Version, Revision and Licenses;
	// empty ones are left out. The title and description are fixed.
	Source, Version, Revision, Licenses string
}

// elfMachines are the architectures the image can be built for.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// Build makes the image. The layers are compressed in memory once; the
// image can then be written any number of times.
func Build(o Options) (v1.Image, error) {
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.CACerts == "" {
		o.CACerts = DefaultCACerts
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	if o.Created.Before(time.Unix(0, 0)) {
		return nil, fmt.Errorf("image: creation time %s is before 1970", o.Created)
	}
	if err := CheckStatic(o.Binary, o.Arch); err != nil {
		return nil, err
	}
	certs, err := os.ReadFile(o.CACerts)
	if err != nil {
		return nil, fmt.Errorf("image: CA certificates: %w", err)
	}
	if err := checkCerts(certs); err != nil {
		return nil, fmt.Errorf("image: CA certificates %s: %w", o.CACerts, err)
	}

	base, err := layer(o.Created, baseEntries(certs))
	if err != nil {
		return nil, err
	}
	bin, err := os.Open(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer bin.Close()
	st, err := bin.Stat()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	app, err := layer(o.Created, appEntries(bin, st.Size()))
	if err != nil {
		return nil, err
	}

	created := v1.Time{Time: o.Created}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: base, History: v1.History{Created: created, CreatedBy: "switchboard imagebuild: /etc (passwd, group, nsswitch.conf, CA certificates), /home/nonroot, /tmp, " + DataDir, Comment: "base"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: created, CreatedBy: "switchboard imagebuild: " + BinaryPath, Comment: "switchboard"}},
	)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS = "linux"
	cf.Architecture = o.Arch
	if o.Arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Config = Config(o)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// Config is the runtime configuration of the image. There is no Cmd: the
// binary's default target is all, and a Cmd would hide SB_TARGET (flags
// win over the environment).
func Config(o Options) v1.Config {
	labels := map[string]string{
		LabelTitle: "switchboard",
		LabelDesc:  "Switchboard, an omnichannel customer-service backend: one binary, every component (-target=all|inbox|router|scheduler|chat|email|sms)",
	}
	for k, v := range map[string]string{
		LabelSource:   o.Source,
		LabelVersion:  o.Version,
		LabelRevision: o.Revision,
		LabelLicenses: o.Licenses,
	} {
		if v != "" {
			labels[k] = v
		}
	}
	if !o.Created.IsZero() && o.Created.Unix() != 0 {
		labels[LabelCreated] = o.Created.UTC().Format(time.RFC3339)
	}
	return v1.Config{
		User:       User,
		Entrypoint: []string{BinaryPath},
		WorkingDir: HomeDir,
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			"SSL_CERT_FILE=" + CACertsPath,
			"SB_DATA_DIR=" + DataDir,
		},
		ExposedPorts: map[string]struct{}{Port: {}},
		Labels:       labels,
	}
}

// entry is one file or directory of a layer.
type entry struct {
	name     string // without the leading slash; directories end with '/'
	mode     int64
	uid, gid int
	body     io.Reader // regular files
	size     int64
}

func dir(name string, mode int64, uid, gid int) entry {
	return entry{name: name, mode: mode, uid: uid, gid: gid}
}

func file(name string, mode int64, body []byte) entry {
	return entry{name: name, mode: mode, body: bytes.NewReader(body), size: int64(len(body))}
}

const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nonroot:x:65532:\n"
	// nsswitch.conf makes Go's resolver read /etc/hosts before DNS, as
	// glibc does.
	nsswitch = "hosts: files dns\n"
)

func baseEntries(certs []byte) []entry {
	return []entry{
		dir("etc/", 0o755, 0, 0),
		file("etc/group", 0o644, []byte(group)),
		file("etc/nsswitch.conf", 0o644, []byte(nsswitch)),
		file("etc/passwd", 0o644, []byte(passwd)),
		dir("etc/ssl/", 0o755, 0, 0),
		dir("etc/ssl/certs/", 0o755, 0, 0),
		file("etc/ssl/certs/ca-certificates.crt", 0o644, certs),
		dir("home/", 0o755, 0, 0),
		dir("home/nonroot/", 0o700, UID, GID),
		dir("root/", 0o700, 0, 0),
		dir("tmp/", 0o1777, 0, 0),
		dir("var/", 0o755, 0, 0),
		dir("var/lib/", 0o755, 0, 0),
		dir("var/lib/switchboard/", 0o750, UID, GID),
	}
}

func appEntries(bin io.Reader, size int64) []entry {
	return []entry{
		dir("usr/", 0o755, 0, 0),
		dir("usr/local/", 0o755, 0, 0),
		dir("usr/local/bin/", 0o755, 0, 0),
		{name: "usr/local/bin/switchboard", mode: 0o755, body: bin, size: size},
	}
}

// layer writes entries, sorted by name, as a gzip-compressed tar.
func layer(mtime time.Time, entries []entry) (v1.Layer, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz) // no name, no time: the header is fixed
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image: layer entry %s: %w", e.name, err)
		}
		if e.body != nil {
			n, err := io.Copy(tw, e.body)
			if err != nil {
				return nil, fmt.Errorf("image: layer entry %s: %w", e.name, err)
			}
			if n != e.size {
				return nil, fmt.Errorf("image: layer entry %s: %d bytes, want %d (changed while read?)", e.name, n, e.size)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.DockerLayer))
}

// CheckStatic returns an error unless path is an ELF executable for
// linux/arch that is statically linked: no program interpreter (PT_INTERP)
// and no shared library needed (DT_NEEDED). A distroless image has no C
// library to load.
func CheckStatic(path, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("image: architecture %q: want amd64 or arm64", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("image: binary %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("image: binary %s is for %s, not %s: build it with GOARCH=%s", path, f.Machine, arch, arch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("image: binary %s is not an executable (%s)", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("image: binary %s is dynamically linked (it has a program interpreter): build it with CGO_ENABLED=0", path)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("image: binary %s: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("image: binary %s needs shared libraries %s: build it with CGO_ENABLED=0", path, strings.Join(libs, ", "))
	}
	return nil
}

// checkCerts reports an error unless b holds PEM certificates only, at
// least one, each of which parses.
func checkCerts(b []byte) error {
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			if len(bytes.TrimSpace(rest)) > 0 && n == 0 {
				return errors.New("not a PEM bundle")
			}
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", n+1, blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no certificate")
	}
	return nil
}

// Digests are what identifies an image once written.
type Digests struct {
	// Manifest is the image's digest, as a registry knows it (name@digest).
	Manifest v1.Hash
	// Config is the image ID that `docker load` and `docker images` show.
	Config v1.Hash
}

// DigestsOf returns the digests of img.
func DigestsOf(img v1.Image) (Digests, error) {
	m, err := img.Digest()
	if err != nil {
		return Digests{}, err
	}
	c, err := img.ConfigName()
	if err != nil {
		return Digests{}, err
	}
	return Digests{Manifest: m, Config: c}, nil
}

// WriteLayout writes img as the only image of a new OCI image layout in
// dir, with the tag as its org.opencontainers.image.ref.name. A dir that
// exists must be empty or hold an OCI image layout, which is replaced.
func WriteLayout(dir string, tag name.Tag, img v1.Image) error {
	if err := clearLayout(dir); err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img,
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag.TagStr()}),
		layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}),
	); err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	// Blobs are written through temporary files (mode 0600): let other
	// users of the machine read the layout, as they can the tarball.
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(path, 0o644)
	})
}

func clearLayout(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("image: OCI layout %s: %w", dir, err)
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("image: %s is neither empty nor an OCI image layout; not replacing it", dir)
	}
	return os.RemoveAll(dir)
}

// WriteTarball writes img as a `docker load` tarball at path, tagged tag.
// The file is written beside path and renamed into place.
func WriteTarball(path string, tag name.Tag, img v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("image: tarball %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("image: %w", err)
	}
	return nil
}
