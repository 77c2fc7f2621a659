package blob_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
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

func dirHarness(t *testing.T) harness {
	d, root := newDir(t)
	return harness{
		store: d,
		objects: func(t *testing.T) []string {
			t.Helper()
			var files []string
			err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if e.IsDir() && e.Name() == ".tmp" {
					return filepath.SkipDir
				}
				if !e.IsDir() {
					rel, _ := filepath.Rel(root, p)
					files = append(files, filepath.ToSlash(rel))
				}
				return nil
			})
			require.NoError(t, err)
			return files
		},
		leftovers: func(t *testing.T) []string {
			t.Helper()
			entries, err := os.ReadDir(filepath.Join(root, ".tmp"))
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return names
		},
	}
}

func TestDirLayout(t *testing.T) {
	d, root := newDir(t)
	content := []byte("%PDF-1.4 an invoice")
	_, err := d.Put(context.Background(), "tenant-1/mailbox_2", bytes.NewReader(content), 1<<20)
	require.NoError(t, err)

	// The file is where the documentation says.
	_, err = os.Stat(filepath.Join(root, "tenant-1", "mailbox_2", "~sha256", sum(content)[:2], sum(content)))
	require.NoError(t, err)
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
