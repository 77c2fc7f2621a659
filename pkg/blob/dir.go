package blob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

const (
	// tmpDir holds blobs being written. Namespace segments cannot start
	// with a dot, so no namespace can reach it.
	tmpDir = ".tmp"
	// hashDir is the directory of a namespace's blobs. Segments cannot
	// hold '~', so a namespace and a child namespace never collide.
	hashDir  = "~sha256"
	dirPerm  = 0o750
	filePerm = 0o640
)

// Dir is a Store in a local directory. A blob lives at
// <root>/<namespace>/~sha256/<first two hex digits>/<hex sha256>; the
// two-digit level keeps directories small. Every access goes through an
// os.Root, so neither ".." nor a symbolic link can reach outside the
// directory, on top of the key syntax that already forbids them.
type Dir struct {
	root *os.Root
}

var _ Store = (*Dir)(nil)

// NewDir opens, creating it when missing, the directory dir as a Store.
// Close it when done.
func NewDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("create blob directory %q: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open blob directory %q: %w", dir, err)
	}
	if err := root.MkdirAll(tmpDir, dirPerm); err != nil {
		_ = root.Close()
		return nil, fmt.Errorf("create blob temporary directory in %q: %w", dir, err)
	}
	return &Dir{root: root}, nil
}

// Close releases the directory. Put and Open fail after Close.
func (d *Dir) Close() error {
	return d.root.Close()
}

// Put stores the content of r under namespace; see Store.Put. The content
// goes to a temporary file that is fsynced, then renamed into place and its
// directory fsynced, so a crash leaves either the whole blob or none of it
// under its key (a stray temporary file at worst).
func (d *Dir) Put(ctx context.Context, namespace string, r io.Reader, limit int64) (Ref, error) {
	if err := ValidateNamespace(namespace); err != nil {
		return Ref{}, err
	}
	if limit <= 0 {
		return Ref{}, fmt.Errorf("blob: put: limit must be positive, got %d", limit)
	}
	if err := ctx.Err(); err != nil {
		return Ref{}, fmt.Errorf("blob: put: %w", err)
	}

	tmp, f, err := d.createTemp()
	if err != nil {
		return Ref{}, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = d.root.Remove(tmp)
		}
	}()

	h := sha256.New()
	// Read one byte more than allowed to tell "exactly limit" from "more".
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, limit+1))
	if err != nil {
		return Ref{}, fmt.Errorf("blob: put: write %s: %w", tmp, err)
	}
	if n > limit {
		return Ref{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err := f.Sync(); err != nil {
		return Ref{}, fmt.Errorf("blob: put: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return Ref{}, fmt.Errorf("blob: put: close %s: %w", tmp, err)
	}

	sum := hex.EncodeToString(h.Sum(nil))
	ref := Ref{Key: makeKey(namespace, sum), Size: n, SHA256: sum}
	dir, final := blobPath(namespace, sum)
	if err := d.root.MkdirAll(dir, dirPerm); err != nil {
		return Ref{}, fmt.Errorf("blob: put: create %s: %w", dir, err)
	}
	if _, err := d.root.Lstat(final); err == nil {
		// Same content already stored: nothing to do. The file was
		// renamed into place whole, so it is complete.
		_ = d.root.Remove(tmp)
		committed = true
		return ref, nil
	}
	// Two concurrent Puts of the same content may both get here; rename
	// replaces atomically and both files hold the same bytes.
	if err := d.root.Rename(tmp, final); err != nil {
		return Ref{}, fmt.Errorf("blob: put: rename into %s: %w", final, err)
	}
	committed = true
	if err := d.syncDir(dir); err != nil {
		return Ref{}, err
	}
	return ref, nil
}

// Open opens the blob named key; see Store.Open.
func (d *Dir) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	ns, sum, err := splitKey(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	_, name := blobPath(ns, sum)
	f, err := d.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrNotFound, key)
	}
	return f, nil
}

// Delete removes the blob named key; see Store.Delete. The directory is
// fsynced, so that the removal survives a crash.
func (d *Dir) Delete(ctx context.Context, key string) error {
	ns, sum, err := splitKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	dir, name := blobPath(ns, sum)
	if err := d.root.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return d.syncDir(dir)
}

// createTemp creates a new, empty temporary file. os.Root has no
// CreateTemp, so the name is random and O_EXCL guards against a clash.
func (d *Dir) createTemp() (string, *os.File, error) {
	var b [16]byte
	for range 4 {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		name := path.Join(tmpDir, hex.EncodeToString(b[:])+".part")
		f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("blob: put: create temporary file: %w", err)
		}
		return name, f, nil
	}
	return "", nil, errors.New("blob: put: create temporary file: name clashes")
}

// syncDir fsyncs a directory so that a rename into it survives a crash.
func (d *Dir) syncDir(dir string) error {
	f, err := d.root.Open(dir)
	if err != nil {
		return fmt.Errorf("blob: put: open %s to sync: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("blob: put: sync %s: %w", dir, err)
	}
	return nil
}

// blobPath returns the directory and file name of a blob, relative to the
// root, from an already validated namespace and hash.
func blobPath(ns, sum string) (dir, name string) {
	dir = path.Join(ns, hashDir, sum[:2])
	return dir, path.Join(dir, sum)
}
