package blob_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
)

const (
	testBucket = "attachments"
	testSecret = "s3cr3t-never-shown"
)

// fakeS3 starts an in-memory S3 service on 127.0.0.1 holding the given
// buckets and returns the settings that reach it.
func fakeS3(t *testing.T, buckets ...string) blob.S3Config {
	t.Helper()
	backend := s3mem.New()
	for _, b := range buckets {
		require.NoError(t, backend.CreateBucket(b))
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return blob.S3Config{
		Endpoint:  strings.TrimPrefix(srv.URL, "http://"),
		Bucket:    testBucket,
		Region:    "us-east-1",
		AccessKey: "switchboard",
		SecretKey: testSecret,
		PathStyle: true,
	}
}

// listObjects returns the names of every object in the bucket cfg names,
// seen through a client of its own.
func listObjects(t *testing.T, cfg blob.S3Config) []string {
	t.Helper()
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	require.NoError(t, err)
	var names []string
	for obj := range c.ListObjects(context.Background(), cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		require.NoError(t, obj.Err)
		names = append(names, obj.Key)
	}
	return names
}

func newS3(t *testing.T, cfg blob.S3Config) *blob.S3 {
	t.Helper()
	s, err := blob.NewS3(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func s3Harness(t *testing.T) harness {
	// S3.Put spools to os.TempDir; a directory of the test's own shows
	// what it leaves behind.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cfg := fakeS3(t, testBucket)
	return harness{
		store:   newS3(t, cfg),
		objects: func(t *testing.T) []string { return listObjects(t, cfg) },
		leftovers: func(t *testing.T) []string {
			t.Helper()
			entries, err := os.ReadDir(tmp)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			return names
		},
	}
}

func TestS3ObjectNames(t *testing.T) {
	for _, prefix := range []string{"switchboard/prod", "switchboard/prod/"} {
		cfg := fakeS3(t, testBucket)
		cfg.Prefix = prefix
		s := newS3(t, cfg)
		content := []byte("%PDF-1.4 an invoice")
		ref, err := s.Put(context.Background(), "tenant-1/mailbox_2", strings.NewReader(string(content)), 1<<20)
		require.NoError(t, err)
		// The object is named like the file of a Dir, under the prefix.
		h := sum(content)
		require.Equal(t, []string{"switchboard/prod/tenant-1/mailbox_2/~sha256/" + h[:2] + "/" + h}, listObjects(t, cfg), "prefix %q", prefix)
		require.Equal(t, content, readAll(t, s, ref.Key))
	}
}

func TestS3RegionFromService(t *testing.T) {
	cfg := fakeS3(t, testBucket)
	cfg.Region = ""
	s := newS3(t, cfg)
	ref, err := s.Put(context.Background(), "t", strings.NewReader("x"), 10)
	require.NoError(t, err)
	require.Equal(t, []byte("x"), readAll(t, s, ref.Key))
}

func TestNewS3MissingBucket(t *testing.T) {
	cfg := fakeS3(t, "other")
	_, err := blob.NewS3(context.Background(), cfg)
	require.Error(t, err)
	require.ErrorContains(t, err, `"attachments"`)
	require.ErrorContains(t, err, cfg.Endpoint)
	require.NotContains(t, err.Error(), testSecret)
}

func TestNewS3BadConfig(t *testing.T) {
	good := blob.S3Config{Endpoint: "minio:9000", Bucket: "b", AccessKey: "k", SecretKey: testSecret}
	for name, mutate := range map[string]func(*blob.S3Config){
		"no endpoint":        func(c *blob.S3Config) { c.Endpoint = "" },
		"scheme in endpoint": func(c *blob.S3Config) { c.Endpoint = "https://minio:9000" },
		"path in endpoint":   func(c *blob.S3Config) { c.Endpoint = "minio:9000/bucket" },
		"no bucket":          func(c *blob.S3Config) { c.Bucket = "" },
		"no access key":      func(c *blob.S3Config) { c.AccessKey = "" },
		"no secret key":      func(c *blob.S3Config) { c.SecretKey = "" },
		"bad prefix":         func(c *blob.S3Config) { c.Prefix = "../up" },
	} {
		cfg := good
		mutate(&cfg)
		_, err := blob.NewS3(context.Background(), cfg)
		if err == nil {
			t.Errorf("%s: NewS3 succeeded, want an error", name)
			continue
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error %q shows the secret key", name, err)
		}
	}
}

func TestNewS3Unreachable(t *testing.T) {
	cfg := fakeS3(t, testBucket)
	srv := httptest.NewServer(nil)
	cfg.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := blob.NewS3(ctx, cfg)
	require.Error(t, err)
	require.ErrorContains(t, err, `"attachments"`)
	require.ErrorContains(t, err, cfg.Endpoint)
	require.NotContains(t, err.Error(), testSecret)
}

// A service that fails is not a missing blob: callers would tell the user
// the attachment is gone.
func TestS3OpenServiceDownIsNotNotFound(t *testing.T) {
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket(testBucket))
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	cfg := blob.S3Config{Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: testBucket, Region: "us-east-1", AccessKey: "k", SecretKey: testSecret, PathStyle: true}
	s := newS3(t, cfg)
	ref, err := s.Put(context.Background(), "t", strings.NewReader("x"), 10)
	require.NoError(t, err)
	srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = s.Open(ctx, ref.Key)
	require.Error(t, err)
	require.NotErrorIs(t, err, blob.ErrNotFound)
	_, err = s.Put(ctx, "t", strings.NewReader("y"), 10)
	require.Error(t, err)
}

func TestS3ConfigHidesSecret(t *testing.T) {
	cfg := blob.S3Config{Endpoint: "minio:9000", Bucket: "b", AccessKey: "k", SecretKey: testSecret}
	for _, format := range []string{"%v", "%+v", "%s"} {
		if got := fmt.Sprintf(format, cfg); strings.Contains(got, testSecret) {
			t.Errorf("Sprintf(%q, cfg) = %q, shows the secret key", format, got)
		}
	}
	if got := fmt.Sprintf("%+v", blob.Config{S3: cfg}); strings.Contains(got, testSecret) {
		t.Errorf("Sprintf(%%+v, Config) = %q, shows the secret key", got)
	}
}
