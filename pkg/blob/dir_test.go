package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
)

func newDir(t *testing.T) (*blob.Dir, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "blobs")
	d, err := blob.NewDir(root)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d, root
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readAll(t *testing.T, d blob.Store, key string) []byte {
	t.Helper()
	rc, err := d.Open(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// tmpFiles lists what is left in the temporary directory.
func tmpFiles(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, ".tmp"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestPutOpenRoundTrip(t *testing.T) {
	d, root := newDir(t)
	ctx := context.Background()
	content := []byte("%PDF-1.4 an invoice")

	ref, err := d.Put(ctx, "tenant-1/mailbox_2", bytes.NewReader(content), 1<<20)
	require.NoError(t, err)
	require.Equal(t, blob.Ref{Key: "tenant-1/mailbox_2/" + sum(content), Size: int64(len(content)), SHA256: sum(content)}, ref)
	require.Equal(t, content, readAll(t, d, ref.Key))
	require.Empty(t, tmpFiles(t, root))

	// The file is where the documentation says.
	_, err = os.Stat(filepath.Join(root, "tenant-1", "mailbox_2", "~sha256", sum(content)[:2], sum(content)))
	require.NoError(t, err)
}

func TestPutIsIdempotent(t *testing.T) {
	d, root := newDir(t)
	ctx := context.Background()
	content := []byte("same attachment")

	first, err := d.Put(ctx, "t", bytes.NewReader(content), 100)
	require.NoError(t, err)
	second, err := d.Put(ctx, "t", bytes.NewReader(content), 100)
	require.NoError(t, err)
	require.Equal(t, first, second)
	require.Empty(t, tmpFiles(t, root))

	entries, err := os.ReadDir(filepath.Join(root, "t", "~sha256", first.SHA256[:2]))
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestPutEmptyNamespaceAndEmptyContent(t *testing.T) {
	d, _ := newDir(t)
	ref, err := d.Put(context.Background(), "", strings.NewReader(""), 1)
	require.NoError(t, err)
	require.Equal(t, sum(nil), ref.Key)
	require.Equal(t, int64(0), ref.Size)
	require.Empty(t, readAll(t, d, ref.Key))
}

func TestNamespacesAreIsolated(t *testing.T) {
	d, _ := newDir(t)
	ctx := context.Background()
	content := []byte("secret")
	a, err := d.Put(ctx, "tenant-a", bytes.NewReader(content), 100)
	require.NoError(t, err)
	b, err := d.Put(ctx, "tenant-b", bytes.NewReader(content), 100)
	require.NoError(t, err)
	require.NotEqual(t, a.Key, b.Key)
	require.Equal(t, a.SHA256, b.SHA256)

	_, err = d.Open(ctx, "tenant-c/"+a.SHA256)
	require.ErrorIs(t, err, blob.ErrNotFound)
}

func TestPutLimit(t *testing.T) {
	d, root := newDir(t)
	ctx := context.Background()

	ref, err := d.Put(ctx, "t", bytes.NewReader(make([]byte, 10)), 10)
	require.NoError(t, err, "exactly the limit is allowed")
	require.Equal(t, int64(10), ref.Size)

	_, err = d.Put(ctx, "t", bytes.NewReader(make([]byte, 11)), 10)
	require.ErrorIs(t, err, blob.ErrTooLarge)
	require.Empty(t, tmpFiles(t, root), "a refused blob leaves no temporary file")

	_, err = d.Put(ctx, "t", strings.NewReader("x"), 0)
	require.Error(t, err)
}

func TestPutCancelled(t *testing.T) {
	d, root := newDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := d.Put(ctx, "t", strings.NewReader("x"), 10)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, tmpFiles(t, root))
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestPutReaderError(t *testing.T) {
	d, root := newDir(t)
	_, err := d.Put(context.Background(), "t", io.MultiReader(strings.NewReader("partial"), failingReader{}), 100)
	require.ErrorContains(t, err, "connection reset")
	require.Empty(t, tmpFiles(t, root))
}

func TestRefusesTraversal(t *testing.T) {
	d, _ := newDir(t)
	ctx := context.Background()
	h := sum([]byte("x"))

	badNamespaces := []string{
		"..", "../x", "a/../../b", "/abs", "a//b", "a/", ".hidden", "a/.tmp", `a\b`, "a\x00b",
		"~sha256", "a b", "é", strings.Repeat("a", 129), strings.Repeat("a/", 8) + "a",
	}
	for _, ns := range badNamespaces {
		_, err := d.Put(ctx, ns, strings.NewReader("x"), 10)
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(namespace %q) error = %v, want ErrInvalidKey", ns, err)
		}
	}

	badKeys := []string{
		"", "x", "../" + h, "/" + h, "a/../" + h, ".tmp/" + h, h + "/x", strings.ToUpper(h),
		"a/" + h[:63], "a/" + h + "0", "a//" + h, `..\` + h,
	}
	for _, k := range badKeys {
		_, err := d.Open(ctx, k)
		if !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Open(%q) error = %v, want ErrInvalidKey", k, err)
		}
	}
}

func TestOpenDoesNotFollowSymlinkOutside(t *testing.T) {
	d, root := newDir(t)
	outside := filepath.Join(t.TempDir(), "outside")
	require.NoError(t, os.WriteFile(outside, []byte("not yours"), 0o600))
	h := sum([]byte("not yours"))
	dir := filepath.Join(root, "t", "~sha256", h[:2])
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, h)))

	_, err := d.Open(context.Background(), "t/"+h)
	require.Error(t, err)
}

func TestOpenNotFound(t *testing.T) {
	d, _ := newDir(t)
	_, err := d.Open(context.Background(), "t/"+sum([]byte("never stored")))
	require.ErrorIs(t, err, blob.ErrNotFound)
}

func TestConcurrentPutsOfSameContent(t *testing.T) {
	d, root := newDir(t)
	content := bytes.Repeat([]byte("inline image "), 1000)
	var wg sync.WaitGroup
	refs := make([]blob.Ref, 16)
	errs := make([]error, len(refs))
	for i := range refs {
		wg.Go(func() {
			refs[i], errs[i] = d.Put(context.Background(), "t", bytes.NewReader(content), 1<<20)
		})
	}
	wg.Wait()
	for i := range refs {
		require.NoError(t, errs[i])
		require.Equal(t, refs[0], refs[i])
	}
	require.Equal(t, content, readAll(t, d, refs[0].Key))
	require.Empty(t, tmpFiles(t, root))
}
