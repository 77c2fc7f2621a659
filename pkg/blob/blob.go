// Package blob stores the bytes of message attachments (mail attachments
// and inline images, MMS media, agents' uploads) apart from the events that
// mention them.
//
// Blobs are content-addressed: the key of a blob is its namespace followed by
// the hex SHA-256 of its content, so storing the same attachment twice (an
// IMAP resync after a UIDVALIDITY change, a redelivery after a crash) is
// idempotent and costs no space. The namespace scopes blobs, typically to a
// tenant and mailbox: the same content stored for two tenants gives two keys,
// so one tenant can never open another's blob by guessing a hash.
//
// Two Stores exist: Dir, a local directory, the default; and S3, a bucket of
// any S3-compatible service (AWS S3, MinIO, Ceph, R2), for deployments whose
// replicas share no volume. Both name a blob's file or object the same way,
// and Open builds the one a Config chooses.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Store keeps blobs. Implementations are safe for concurrent use.
type Store interface {
	// Put reads r to its end and stores its content under namespace. It
	// fails with an error wrapping ErrTooLarge, storing nothing, when r
	// holds more than limit bytes; limit must be positive. Putting the same
	// content twice under the same namespace returns the same Ref.
	Put(ctx context.Context, namespace string, r io.Reader, limit int64) (Ref, error)
	// Open returns the content of the blob whose Ref.Key is key. It fails
	// with an error wrapping ErrNotFound when there is no such blob and
	// ErrInvalidKey when key is not a key this store could have made.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the blob whose Ref.Key is key, for good (an erasure:
	// a message anonymised or deleted). Deleting a blob that is not there
	// succeeds; a key this store could not have made fails with
	// ErrInvalidKey. Blobs are content-addressed, so the caller checks
	// that nothing else it keeps names the key before deleting it.
	Delete(ctx context.Context, key string) error
}

// Ref names a stored blob.
type Ref struct {
	// Key opens the blob with Store.Open: the namespace, a slash when the
	// namespace is not empty, and SHA256.
	Key string `json:"key"`
	// Size is the length of the content in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the content.
	SHA256 string `json:"sha256"`
}

// Errors callers branch on.
var (
	// ErrTooLarge: the content is longer than the limit given to Put.
	ErrTooLarge = errors.New("blob: content too large")
	// ErrNotFound: no blob has this key.
	ErrNotFound = errors.New("blob: not found")
	// ErrInvalidKey: a key or namespace is malformed or tries to leave the
	// store (path traversal).
	ErrInvalidKey = errors.New("blob: invalid key")
)

const (
	// maxSegments bounds the depth of a namespace, so a key cannot build
	// arbitrarily deep directory trees.
	maxSegments = 8
	// maxSegmentBytes bounds one segment; most file systems allow 255.
	maxSegmentBytes = 128
	// hashHexLen is the length of a hex SHA-256.
	hashHexLen = 64
)

// ValidateNamespace checks that ns is empty or one to eight slash-separated
// segments of ASCII letters, digits, '.', '_' and '-', none starting with a
// dot and none longer than 128 bytes. The rules leave no room for "..",
// absolute paths, backslashes or NUL, whatever the operating system.
func ValidateNamespace(ns string) error {
	if ns == "" {
		return nil
	}
	segs := strings.Split(ns, "/")
	if len(segs) > maxSegments {
		return fmt.Errorf("%w: namespace %q has more than %d segments", ErrInvalidKey, ns, maxSegments)
	}
	for _, s := range segs {
		if !validSegment(s) {
			return fmt.Errorf("%w: namespace segment %q must be 1 to %d bytes of [A-Za-z0-9._-] not starting with a dot", ErrInvalidKey, s, maxSegmentBytes)
		}
	}
	return nil
}

// splitKey checks a key and returns its namespace and hash.
func splitKey(key string) (ns, hash string, err error) {
	ns, hash = "", key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		ns, hash = key[:i], key[i+1:]
		if ns == "" {
			return "", "", fmt.Errorf("%w: key %q starts with a slash", ErrInvalidKey, key)
		}
	}
	if !isHexHash(hash) {
		return "", "", fmt.Errorf("%w: key %q does not end in a lowercase hex SHA-256", ErrInvalidKey, key)
	}
	if err := ValidateNamespace(ns); err != nil {
		return "", "", err
	}
	return ns, hash, nil
}

func validSegment(s string) bool {
	if s == "" || len(s) > maxSegmentBytes || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func isHexHash(s string) bool {
	if len(s) != hashHexLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func makeKey(ns, hash string) string {
	if ns == "" {
		return hash
	}
	return ns + "/" + hash
}

// ctxReader fails reads once its context is done, so that a long copy
// stops when the caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
