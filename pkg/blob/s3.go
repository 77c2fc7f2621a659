package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// bucketCheckTimeout bounds the bucket check in NewS3, so that a wrong
// endpoint fails the start quickly with a useful message instead of
// hanging through the client's retries.
const bucketCheckTimeout = 10 * time.Second

// S3Config locates a bucket of an S3-compatible service (AWS S3, MinIO,
// Ceph RGW, Cloudflare R2, ...).
type S3Config struct {
	// Endpoint is the service's host and optional port, without a scheme:
	// s3.eu-west-1.amazonaws.com, minio:9000. Empty means no S3 store.
	Endpoint string
	// Bucket holds the blobs; it must exist.
	Bucket string
	// Region signs the requests; empty asks the service for the bucket's
	// region once (one more request at start).
	Region string
	// AccessKey is the access key ID.
	AccessKey string
	// SecretKey is the secret access key. It is never logged nor put in
	// an error.
	SecretKey string
	// UseTLS selects HTTPS.
	UseTLS bool
	// PathStyle forces path-style requests (http://endpoint/bucket/key),
	// which MinIO and most self-hosted services need; otherwise the client
	// picks virtual-host style (http://bucket.endpoint/key) where the
	// endpoint is known to support it, as AWS does.
	PathStyle bool
	// Prefix, when not empty, is prepended with a slash to every object
	// name, so that several deployments can share a bucket. It follows the
	// rules of a namespace (see ValidateNamespace); a trailing slash is
	// ignored.
	Prefix string
}

// String describes the configuration without the secret key, so that
// printing a Config by mistake does not leak it.
func (c S3Config) String() string {
	secret := ""
	if c.SecretKey != "" {
		secret = "(redacted)"
	}
	return fmt.Sprintf("{Endpoint:%s Bucket:%s Region:%s AccessKey:%s SecretKey:%s UseTLS:%t PathStyle:%t Prefix:%s}",
		c.Endpoint, c.Bucket, c.Region, c.AccessKey, secret, c.UseTLS, c.PathStyle, c.Prefix)
}

// url is the endpoint as a URL, for messages.
func (c S3Config) url() string {
	if c.UseTLS {
		return "https://" + c.Endpoint
	}
	return "http://" + c.Endpoint
}

// prefix returns the object name prefix, empty or ending in a slash.
func (c S3Config) prefix() string {
	p := strings.TrimSuffix(c.Prefix, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// check returns the first problem of the configuration, in words that do
// not depend on how it was set (Config.Validate names the flags).
func (c S3Config) check() error {
	switch {
	case c.Endpoint == "":
		return errors.New("no endpoint")
	case !validEndpoint(c.Endpoint):
		return fmt.Errorf("endpoint %q must be a host and optional port, without scheme or path", c.Endpoint)
	case c.Bucket == "":
		return errors.New("no bucket")
	case c.AccessKey == "" || c.SecretKey == "":
		return errors.New("no access key or secret key")
	}
	if err := ValidateNamespace(strings.TrimSuffix(c.Prefix, "/")); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

// validEndpoint reports whether e looks like a host and optional port; a
// scheme or a path is the usual mistake, and minio-go's own message for it
// does not say what to do.
func validEndpoint(e string) bool {
	return !strings.Contains(e, "://") && !strings.ContainsAny(e, "/?#")
}

// S3 is a Store in a bucket of an S3-compatible service. A blob is the
// object <prefix>/<namespace>/~sha256/<first two hex digits>/<hex sha256>:
// the same path as in a Dir, so a Dir can be moved to a bucket by copying
// its tree (leaving out .tmp), for example with `aws s3 sync`. The "~sha256"
// level also keeps a namespace's blob from being the parent of another
// namespace's objects, which S3 allows but MinIO refuses.
type S3 struct {
	client    *minio.Client
	transport *http.Transport
	bucket    string
	prefix    string
}

var _ Store = (*S3)(nil)

// NewS3 connects to the service and checks that the bucket exists. Close
// the store when done.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("blob: S3 store at %s: %w", cfg.url(), err)
	}
	tr, err := minio.DefaultTransport(cfg.UseTLS)
	if err != nil {
		return nil, fmt.Errorf("blob: S3 store at %s: transport: %w", cfg.url(), err)
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.UseTLS,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("blob: S3 store at %s: %w", cfg.url(), err)
	}
	s := &S3{client: client, transport: tr, bucket: cfg.Bucket, prefix: cfg.prefix()}

	cctx, cancel := context.WithTimeout(ctx, bucketCheckTimeout)
	defer cancel()
	ok, err := client.BucketExists(cctx, cfg.Bucket)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("blob: check S3 bucket %q at %s: %w", cfg.Bucket, cfg.url(), err)
	}
	if !ok {
		s.Close()
		return nil, fmt.Errorf("blob: S3 bucket %q does not exist at %s: create it, or set the name of an existing bucket", cfg.Bucket, cfg.url())
	}
	return s, nil
}

// Close releases idle connections. Put and Open still work after Close,
// opening new connections; the store holds nothing else.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Put stores the content of r under namespace; see Store.Put. The content
// is spooled to a temporary file (in os.TempDir, so TMPDIR must have room
// for the largest blobs being put at once) while it is hashed and counted,
// because the object name is its hash and S3 needs the length up front.
// The object is then uploaded unless it already exists. An upload is
// atomic in S3: the object appears whole or not at all, and two concurrent
// Puts of the same content write the same bytes.
func (s *S3) Put(ctx context.Context, namespace string, r io.Reader, limit int64) (Ref, error) {
	if err := ValidateNamespace(namespace); err != nil {
		return Ref{}, err
	}
	if limit <= 0 {
		return Ref{}, fmt.Errorf("blob: put: limit must be positive, got %d", limit)
	}
	if err := ctx.Err(); err != nil {
		return Ref{}, fmt.Errorf("blob: put: %w", err)
	}

	f, err := os.CreateTemp("", "switchboard-blob-*.part")
	if err != nil {
		return Ref{}, fmt.Errorf("blob: put: create temporary file: %w", err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()

	h := sha256.New()
	// Read one byte more than allowed to tell "exactly limit" from "more".
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(ctxReader{ctx, r}, limit+1))
	if err != nil {
		return Ref{}, fmt.Errorf("blob: put: write %s: %w", f.Name(), err)
	}
	if n > limit {
		return Ref{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}

	sum := hex.EncodeToString(h.Sum(nil))
	ref := Ref{Key: makeKey(namespace, sum), Size: n, SHA256: sum}
	name := s.objectName(namespace, sum)

	_, err = s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err == nil {
		return ref, nil // same content already stored
	}
	if !isNoSuchKey(err) {
		return Ref{}, fmt.Errorf("blob: put: look for %s in bucket %q: %w", name, s.bucket, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Ref{}, fmt.Errorf("blob: put: rewind %s: %w", f.Name(), err)
	}
	_, err = s.client.PutObject(ctx, s.bucket, name, f, n, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		// Send the content unsigned (UNSIGNED-PAYLOAD) with its length,
		// as minio-go already does over TLS, rather than in signed
		// aws-chunked encoding, which it uses over plain HTTP: that
		// encoding is not accepted by every S3-compatible service, and
		// for empty content minio-go sends it without a Content-Length,
		// which S3 refuses (MissingContentLength). One request shape over
		// HTTP and HTTPS; integrity in transit is TLS's job.
		DisableContentSha256: true,
	})
	if err != nil {
		return Ref{}, fmt.Errorf("blob: put: upload %s to bucket %q: %w", name, s.bucket, err)
	}
	return ref, nil
}

// Open opens the blob named key; see Store.Open. The content is read from
// the service as the caller reads, under ctx.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	ns, sum, err := splitKey(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	name := s.objectName(ns, sum)
	obj, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err == nil {
		// GetObject is lazy: Stat sends the GET, so that a missing
		// object is reported here rather than at the first Read.
		_, err = obj.Stat()
		if err != nil {
			_ = obj.Close()
		}
	}
	if isNoSuchKey(err) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	return obj, nil
}

// Delete removes the blob named key; see Store.Delete. S3 answers a
// removal of a missing object with success too.
func (s *S3) Delete(ctx context.Context, key string) error {
	ns, sum, err := splitKey(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	name := s.objectName(ns, sum)
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !isNoSuchKey(err) {
		return fmt.Errorf("blob: delete %s from bucket %q: %w", name, s.bucket, err)
	}
	return nil
}

// objectName returns the name of a blob's object from an already validated
// namespace and hash.
func (s *S3) objectName(ns, sum string) string {
	_, name := blobPath(ns, sum)
	return s.prefix + name
}

func isNoSuchKey(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.Code == minio.NoSuchKey
}
