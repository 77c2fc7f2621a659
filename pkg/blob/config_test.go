package blob_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/config"
)

// parse registers the flags under prefix and parses args, as a process
// would.
func parse(t *testing.T, prefix string, args ...string) blob.Config {
	t.Helper()
	var cfg blob.Config
	f := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(prefix, f)
	require.NoError(t, config.Load(f, args, func(string) (string, bool) { return "", false }, nil))
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := parse(t, "")
	require.NoError(t, cfg.Validate(""))
	require.Equal(t, blob.Config{S3: blob.S3Config{UseTLS: true}}, cfg)
}

func TestConfigValidate(t *testing.T) {
	s3 := []string{"-x.blob.s3.endpoint=minio:9000", "-x.blob.s3.bucket=b", "-x.blob.s3.access-key=k", "-x.blob.s3.secret-key=" + testSecret}
	for _, tc := range []struct {
		name string
		args []string
		want []string // every flag the error must name; none means valid
	}{
		{"directory", []string{"-x.blob.dir=/var/lib/blobs"}, nil},
		{"S3", s3, nil},
		{"S3 with prefix", append(s3, "-x.blob.s3.prefix=switchboard/prod/"), nil},
		{"S3 without bucket or keys", []string{"-x.blob.s3.endpoint=minio:9000"}, []string{"-x.blob.s3.bucket", "-x.blob.s3.access-key", "-x.blob.s3.secret-key"}},
		{"S3 endpoint with scheme", append(s3, "-x.blob.s3.endpoint=https://minio:9000"), []string{"-x.blob.s3.endpoint", "SB_X_BLOB_S3_ENDPOINT"}},
		{"S3 and directory", append(s3, "-x.blob.dir=/var/lib/blobs"), []string{"-x.blob.dir", "-x.blob.s3.endpoint"}},
		{"bucket without endpoint", []string{"-x.blob.s3.bucket=b"}, []string{"-x.blob.s3.bucket", "-x.blob.s3.endpoint"}},
		{"bad prefix", append(s3, "-x.blob.s3.prefix=../up"), []string{"-x.blob.s3.prefix"}},
	} {
		cfg := parse(t, "x.", tc.args...)
		err := cfg.Validate("x.")
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: Validate() = %v, want nil", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: Validate() = nil, want an error naming %v", tc.name, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate() = %q, does not name %s", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: Validate() = %q, shows the secret key", tc.name, err)
		}
	}
}

func TestOpenDefaultsToDir(t *testing.T) {
	def := filepath.Join(t.TempDir(), "blobs")
	s, closeFn, err := blob.Open(context.Background(), parse(t, ""), def)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeFn()) })
	require.IsType(t, &blob.Dir{}, s)
	_, err = os.Stat(filepath.Join(def, ".tmp"))
	require.NoError(t, err, "the default directory is the store")

	dir := filepath.Join(t.TempDir(), "elsewhere")
	s, closeFn, err = blob.Open(context.Background(), parse(t, "", "-blob.dir="+dir), def)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeFn()) })
	require.IsType(t, &blob.Dir{}, s)
	_, err = os.Stat(filepath.Join(dir, ".tmp"))
	require.NoError(t, err, "-blob.dir is the store")
}

func TestOpenS3WhenEndpointSet(t *testing.T) {
	fake := fakeS3(t, testBucket)
	cfg := parse(t, "", "-blob.s3.endpoint="+fake.Endpoint, "-blob.s3.bucket="+testBucket, "-blob.s3.region=us-east-1",
		"-blob.s3.access-key=k", "-blob.s3.secret-key="+testSecret, "-blob.s3.tls=false", "-blob.s3.path-style")
	require.NoError(t, cfg.Validate(""))
	def := filepath.Join(t.TempDir(), "blobs")
	s, closeFn, err := blob.Open(context.Background(), cfg, def)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeFn()) })
	require.IsType(t, &blob.S3{}, s)

	ref, err := s.Put(context.Background(), "t", strings.NewReader("x"), 10)
	require.NoError(t, err)
	require.Len(t, listObjects(t, fake), 1)
	require.Equal(t, []byte("x"), readAll(t, s, ref.Key))
	_, err = os.Stat(def)
	require.ErrorIs(t, err, os.ErrNotExist, "no directory with S3")

	cfg.S3.Bucket = "missing"
	_, _, err = blob.Open(context.Background(), cfg, def)
	require.ErrorContains(t, err, `"missing"`)
}
