package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
)

// harness is one Store under test with ways to look behind it.
type harness struct {
	store blob.Store
	// objects lists what the store holds, one entry per stored blob.
	objects func(t *testing.T) []string
	// leftovers lists temporary files a Put left behind.
	leftovers func(t *testing.T) []string
}

// stores are the implementations every contract test runs against: the
// same tests for each, so that callers cannot tell them apart.
var stores = map[string]func(t *testing.T) harness{
	"Dir": dirHarness,
	"S3":  s3Harness,
}

// eachStore runs test once per Store implementation.
func eachStore(t *testing.T, test func(t *testing.T, h harness)) {
	for name, newHarness := range stores {
		t.Run(name, func(t *testing.T) { test(t, newHarness(t)) })
	}
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

func TestPutOpenRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		content := []byte("%PDF-1.4 an invoice")
		ref, err := h.store.Put(context.Background(), "tenant-1/mailbox_2", bytes.NewReader(content), 1<<20)
		require.NoError(t, err)
		require.Equal(t, blob.Ref{Key: "tenant-1/mailbox_2/" + sum(content), Size: int64(len(content)), SHA256: sum(content)}, ref)
		require.Equal(t, content, readAll(t, h.store, ref.Key))
		require.Empty(t, h.leftovers(t))
	})
}

func TestPutIsIdempotent(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		content := []byte("same attachment")
		first, err := h.store.Put(ctx, "t", bytes.NewReader(content), 100)
		require.NoError(t, err)
		second, err := h.store.Put(ctx, "t", bytes.NewReader(content), 100)
		require.NoError(t, err)
		require.Equal(t, first, second)
		require.Len(t, h.objects(t), 1)
		require.Empty(t, h.leftovers(t))
	})
}

// 16 MiB and a byte: over the size the S3 client uploads in one request,
// so a large attachment takes the multipart path.
func TestPutLarge(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		content := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
		content = append(content, 'x')
		ref, err := h.store.Put(context.Background(), "t", bytes.NewReader(content), 32<<20)
		require.NoError(t, err)
		require.Equal(t, int64(len(content)), ref.Size)
		require.Equal(t, sum(content), ref.SHA256)
		require.True(t, bytes.Equal(content, readAll(t, h.store, ref.Key)), "content differs")
		require.Len(t, h.objects(t), 1)
		require.Empty(t, h.leftovers(t))
	})
}

func TestPutEmptyNamespaceAndEmptyContent(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ref, err := h.store.Put(context.Background(), "", strings.NewReader(""), 1)
		require.NoError(t, err)
		require.Equal(t, sum(nil), ref.Key)
		require.Equal(t, int64(0), ref.Size)
		require.Empty(t, readAll(t, h.store, ref.Key))
	})
}

func TestNamespacesAreIsolated(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		content := []byte("secret")
		a, err := h.store.Put(ctx, "tenant-a", bytes.NewReader(content), 100)
		require.NoError(t, err)
		b, err := h.store.Put(ctx, "tenant-b", bytes.NewReader(content), 100)
		require.NoError(t, err)
		require.NotEqual(t, a.Key, b.Key)
		require.Equal(t, a.SHA256, b.SHA256)
		require.Len(t, h.objects(t), 2)

		_, err = h.store.Open(ctx, "tenant-c/"+a.SHA256)
		require.ErrorIs(t, err, blob.ErrNotFound)
	})
}

// A namespace whose last segment looks like a hash must not clash with the
// blob of that hash in the parent namespace.
func TestNamespaceNamedLikeAHash(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		parent, err := h.store.Put(ctx, "t", strings.NewReader("parent"), 100)
		require.NoError(t, err)
		child, err := h.store.Put(ctx, parent.Key, strings.NewReader("child"), 100)
		require.NoError(t, err)
		require.Equal(t, []byte("parent"), readAll(t, h.store, parent.Key))
		require.Equal(t, []byte("child"), readAll(t, h.store, child.Key))
	})
}

func TestPutLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		_, err := h.store.Put(ctx, "t", bytes.NewReader(make([]byte, 11)), 10)
		require.ErrorIs(t, err, blob.ErrTooLarge)
		require.Empty(t, h.objects(t), "a refused blob is not stored")
		require.Empty(t, h.leftovers(t), "a refused blob leaves no temporary file")

		ref, err := h.store.Put(ctx, "t", bytes.NewReader(make([]byte, 10)), 10)
		require.NoError(t, err, "exactly the limit is allowed")
		require.Equal(t, int64(10), ref.Size)

		_, err = h.store.Put(ctx, "t", strings.NewReader("x"), 0)
		require.Error(t, err)
	})
}

func TestPutCancelled(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.store.Put(ctx, "t", strings.NewReader("x"), 10)
		require.ErrorIs(t, err, context.Canceled)
		require.Empty(t, h.objects(t))
		require.Empty(t, h.leftovers(t))
	})
}

// cancelAfterRead cancels a context once its content has been read, as a
// caller giving up during the upload would.
type cancelAfterRead struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelAfterRead) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

func TestPutCancelledWhileStoring(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r := cancelAfterRead{strings.NewReader("late"), cancel}
		ref, err := h.store.Put(ctx, "t", r, 10)
		// The store may finish (Dir has nothing left that waits) or
		// give up; either way it keeps its word.
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
			require.Empty(t, h.objects(t))
		} else {
			require.Equal(t, []byte("late"), readAll(t, h.store, ref.Key))
		}
		require.Empty(t, h.leftovers(t))
	})
}

func TestOpenCancelled(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ref, err := h.store.Put(context.Background(), "t", strings.NewReader("x"), 10)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = h.store.Open(ctx, ref.Key)
		require.ErrorIs(t, err, context.Canceled)
	})
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestPutReaderError(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		_, err := h.store.Put(context.Background(), "t", io.MultiReader(strings.NewReader("partial"), failingReader{}), 100)
		require.ErrorContains(t, err, "connection reset")
		require.Empty(t, h.objects(t))
		require.Empty(t, h.leftovers(t))
	})
}

func TestRefusesTraversal(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		hash := sum([]byte("x"))

		badNamespaces := []string{
			"..", "../x", "a/../../b", "/abs", "a//b", "a/", ".hidden", "a/.tmp", `a\b`, "a\x00b",
			"~sha256", "a b", "é", strings.Repeat("a", 129), strings.Repeat("a/", 8) + "a",
		}
		for _, ns := range badNamespaces {
			_, err := h.store.Put(ctx, ns, strings.NewReader("x"), 10)
			if !errors.Is(err, blob.ErrInvalidKey) {
				t.Errorf("Put(namespace %q) error = %v, want ErrInvalidKey", ns, err)
			}
		}

		badKeys := []string{
			"", "x", "../" + hash, "/" + hash, "a/../" + hash, ".tmp/" + hash, hash + "/x", strings.ToUpper(hash),
			"a/" + hash[:63], "a/" + hash + "0", "a//" + hash, `..\` + hash, "a/~sha256/" + hash[:2] + "/" + hash,
		}
		for _, k := range badKeys {
			_, err := h.store.Open(ctx, k)
			if !errors.Is(err, blob.ErrInvalidKey) {
				t.Errorf("Open(%q) error = %v, want ErrInvalidKey", k, err)
			}
		}
		require.Empty(t, h.objects(t))
	})
}

func TestOpenNotFound(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		_, err := h.store.Open(context.Background(), "t/"+sum([]byte("never stored")))
		require.ErrorIs(t, err, blob.ErrNotFound)
	})
}

func TestConcurrentPutsOfSameContent(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		content := bytes.Repeat([]byte("inline image "), 1000)
		var wg sync.WaitGroup
		refs := make([]blob.Ref, 16)
		errs := make([]error, len(refs))
		for i := range refs {
			wg.Go(func() {
				refs[i], errs[i] = h.store.Put(context.Background(), "t", bytes.NewReader(content), 1<<20)
			})
		}
		wg.Wait()
		for i := range refs {
			require.NoError(t, errs[i])
			require.Equal(t, refs[0], refs[i])
		}
		require.Equal(t, content, readAll(t, h.store, refs[0].Key))
		require.Len(t, h.objects(t), 1)
		require.Empty(t, h.leftovers(t))
	})
}

// TestDeleteRemovesTheBlobForGood deletes a stored blob: it cannot be
// opened any more, the store holds no object for it, deleting it again
// succeeds, and a malformed key is refused.
func TestDeleteRemovesTheBlobForGood(t *testing.T) {
	eachStore(t, func(t *testing.T, h harness) {
		ctx := context.Background()
		keep, err := h.store.Put(ctx, "tenant-1/mail", strings.NewReader("kept"), 1<<20)
		require.NoError(t, err)
		gone, err := h.store.Put(ctx, "tenant-1/mail", strings.NewReader("erased"), 1<<20)
		require.NoError(t, err)
		require.Len(t, h.objects(t), 2)

		require.NoError(t, h.store.Delete(ctx, gone.Key))
		_, err = h.store.Open(ctx, gone.Key)
		require.ErrorIs(t, err, blob.ErrNotFound)
		require.Len(t, h.objects(t), 1)
		require.Equal(t, []byte("kept"), readAll(t, h.store, keep.Key))

		require.NoError(t, h.store.Delete(ctx, gone.Key), "deleting again")
		require.ErrorIs(t, h.store.Delete(ctx, "../etc/passwd"), blob.ErrInvalidKey)
	})
}
