package blob

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// Config chooses and locates the process's Store: a bucket of an
// S3-compatible service when S3.Endpoint is set, else a local directory.
type Config struct {
	// Dir is the directory of a Dir store; empty means the default the
	// caller gives Open.
	Dir string
	// S3 locates the bucket of an S3 store.
	S3 S3Config
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Dir, prefix+"blob.dir", "", "Directory where message attachments (mail attachments and inline images) are kept, by content hash; empty means the blobs directory under -data-dir. Every replica of the inbox and the email connector must see the same directory (a shared volume); with several replicas, an S3 bucket (-blob.s3.endpoint) is usually simpler. Cannot be combined with -blob.s3.endpoint.")
	f.StringVar(&c.S3.Endpoint, prefix+"blob.s3.endpoint", "", "Host and optional port of an S3-compatible service that keeps message attachments instead of -blob.dir, without scheme: s3.eu-west-1.amazonaws.com for AWS, minio:9000, <account>.r2.cloudflarestorage.com. Empty keeps attachments in the directory. Needs -blob.s3.bucket, -blob.s3.access-key and -blob.s3.secret-key. Objects are named like the files of -blob.dir, so `aws s3 sync <blob.dir> s3://<bucket>/<prefix> --exclude '.tmp/*'` moves existing attachments over.")
	f.StringVar(&c.S3.Bucket, prefix+"blob.s3.bucket", "", "Bucket that keeps message attachments, with -blob.s3.endpoint. It must exist: the process checks at start and does not create it. The credentials need s3:GetObject, s3:PutObject and s3:ListBucket on it; without ListBucket, AWS answers 403 instead of 404 for a blob not stored yet, and every Put fails.")
	f.StringVar(&c.S3.Region, prefix+"blob.s3.region", "", "Region of the bucket, used to sign requests (us-east-1 for most self-hosted services). Also read from AWS_REGION. Empty asks the service for the bucket's location at start.")
	f.StringVar(&c.S3.AccessKey, prefix+"blob.s3.access-key", "", "Access key ID for -blob.s3.endpoint. Also read from AWS_ACCESS_KEY_ID.")
	f.StringVar(&c.S3.SecretKey, prefix+"blob.s3.secret-key", "", "Secret access key for -blob.s3.endpoint. Also read from AWS_SECRET_ACCESS_KEY; prefer the environment to the command line, where other users of the machine can see it. Never logged.")
	f.BoolVar(&c.S3.UseTLS, prefix+"blob.s3.tls", true, "Talk HTTPS to -blob.s3.endpoint; set false only for a service on a trusted network, such as MinIO beside the process.")
	f.BoolVar(&c.S3.PathStyle, prefix+"blob.s3.path-style", false, "Address the bucket in the path (https://endpoint/bucket/key) rather than the host name (https://bucket.endpoint/key). MinIO, Ceph and most self-hosted services need true; false lets the client choose, which suits AWS and R2.")
	f.StringVar(&c.S3.Prefix, prefix+"blob.s3.prefix", "", "Slash-separated prefix of every object name, so that several deployments can share -blob.s3.bucket, such as switchboard/prod. Segments are letters, digits, '.', '_' and '-', not starting with a dot. Empty puts the objects at the top of the bucket.")
}

// Validate checks the settings. Nothing is checked against the service;
// Open does that.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	s := c.S3
	if s.Endpoint == "" {
		ck.Check(s.Bucket == "", "blob.s3.bucket", fmt.Sprintf("is %q but -%sblob.s3.endpoint is empty, so attachments would go to the local directory", s.Bucket, prefix),
			"set -"+prefix+"blob.s3.endpoint to the service, such as s3.eu-west-1.amazonaws.com, or leave the bucket empty")
		return ck.Err()
	}
	ck.Check(validEndpoint(s.Endpoint), "blob.s3.endpoint", fmt.Sprintf("must be a host and optional port, got %q", s.Endpoint),
		"leave out the scheme and path, such as minio:9000, and set -"+prefix+"blob.s3.tls=false for plain HTTP")
	ck.Check(c.Dir == "", "blob.dir", fmt.Sprintf("is %q but -%sblob.s3.endpoint is set too", c.Dir, prefix),
		"set one: -"+prefix+"blob.dir for a local directory, or -"+prefix+"blob.s3.endpoint for a bucket")
	ck.Check(s.Bucket != "", "blob.s3.bucket", "is empty but -"+prefix+"blob.s3.endpoint is set", "set the name of an existing bucket")
	ck.Check(s.AccessKey != "", "blob.s3.access-key", "is empty but -"+prefix+"blob.s3.endpoint is set", "set the access key ID, or AWS_ACCESS_KEY_ID")
	ck.Check(s.SecretKey != "", "blob.s3.secret-key", "is empty but -"+prefix+"blob.s3.endpoint is set", "set the secret access key, or AWS_SECRET_ACCESS_KEY")
	err := ValidateNamespace(strings.TrimSuffix(s.Prefix, "/"))
	ck.Check(err == nil, "blob.s3.prefix", fmt.Sprintf("%v", err), "use slash-separated segments of letters, digits, '.', '_' and '-', such as switchboard/prod")
	return ck.Err()
}

// Open builds the Store cfg describes: an S3 store when cfg.S3.Endpoint is
// set, else a Dir at cfg.Dir, or at defaultDir when cfg.Dir is empty. Call
// the returned function to close it when done.
func Open(ctx context.Context, cfg Config, defaultDir string) (Store, func() error, error) {
	if cfg.S3.Endpoint != "" {
		s, err := NewS3(ctx, cfg.S3)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
	dir := cfg.Dir
	if dir == "" {
		dir = defaultDir
	}
	d, err := NewDir(dir)
	if err != nil {
		return nil, nil, err
	}
	return d, d.Close, nil
}
