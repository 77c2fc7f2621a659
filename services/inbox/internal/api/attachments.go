package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// DefaultMaxUploadBytes bounds an uploaded file when Deps.MaxUploadBytes
// is not set.
const DefaultMaxUploadBytes = 20 << 20

// maxFileNameBytes bounds an uploaded file's name, as most file systems
// do.
const maxFileNameBytes = 255

func (a *API) registerAttachments(r Router) {
	// The body is the file: the route's own limit replaces the server's,
	// which is sized for JSON.
	a.handle(r, "POST /v1/attachments", a.upload, httpx.WithBodyLimit(a.maxUpload()))
	a.handle(r, "GET /v1/messages/{id}/attachments/{index}", a.download)
}

func (a *API) maxUpload() int64 {
	if a.MaxUploadBytes > 0 {
		return a.MaxUploadBytes
	}
	return DefaultMaxUploadBytes
}

// uploadNamespace is the blob store namespace of a tenant's uploads.
func uploadNamespace(tenant string) string { return tenant + "/uploads" }

// upload stores the body as a file to attach to replies. Every user and
// API token of the tenant may: whoever may reply may attach.
func (a *API) upload(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	// A body declared too large is refused before anything is read.
	if r.ContentLength > a.maxUpload() {
		return a.uploadError(blob.ErrTooLarge)
	}
	name, contentType, err := uploadParams(r)
	if err != nil {
		return err
	}
	tenant, err := uuid.Parse(p.Tenant)
	if err != nil {
		return domain.ErrNotFound
	}
	actor, err := uuid.Parse(p.ActorID())
	if err != nil {
		return fmt.Errorf("upload: principal without an id: %w", err)
	}
	// An empty body is refused before anything is stored.
	body := bufio.NewReader(r.Body)
	if _, err := body.Peek(1); errors.Is(err, io.EOF) {
		return domain.Invalid("body", "is empty: send the file's bytes")
	} else if err != nil {
		return a.uploadError(err)
	}
	ref, err := a.Blobs.Put(r.Context(), uploadNamespace(p.Tenant), body, a.maxUpload())
	if err != nil {
		return a.uploadError(err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("upload id: %w", err)
	}
	u := store.Upload{ID: id, Tenant: tenant, ActorKind: p.ActorKind(), ActorID: actor, Name: name, ContentType: contentType,
		Size: ref.Size, BlobKey: ref.Key, CreatedAt: a.Clock.Now()}
	if err := a.Store.CreateUpload(r.Context(), u); err != nil {
		return err
	}
	return created(w, u)
}

func (a *API) uploadError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.Is(err, blob.ErrTooLarge) || errors.As(err, &tooLarge) {
		return httpx.NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the file is larger than %d bytes", a.maxUpload()))
	}
	return fmt.Errorf("store upload: %w", err)
}

// uploadParams reads the file's name from the query string and its type
// from Content-Type.
func uploadParams(r *http.Request) (name, contentType string, err error) {
	q := r.URL.Query()
	for k := range q {
		if k != "filename" {
			return "", "", domain.Invalid(k, "is not a known parameter; only filename is")
		}
	}
	switch names := q["filename"]; {
	case len(names) == 0 || names[0] == "":
		return "", "", domain.Invalid("filename", "is required: the file's name, in the query string")
	case len(names) > 1:
		return "", "", domain.Invalid("filename", "must be given once")
	default:
		name = names[0]
	}
	if len(name) > maxFileNameBytes || !utf8.ValidString(name) || strings.ContainsAny(name, `/\`) ||
		strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.TrimSpace(name) != name || name == "." || name == ".." {
		return "", "", domain.Invalid("filename", "must be a file name of at most 255 bytes of UTF-8, without a path, control characters or surrounding spaces")
	}
	contentType = r.Header.Get("Content-Type")
	if contentType == "" {
		return name, "application/octet-stream", nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	// ParseMediaType takes a lone token ("pdf") too: a type needs both halves.
	if typ, sub, _ := strings.Cut(mt, "/"); err != nil || typ == "" || sub == "" || len(contentType) > events.MaxMIMETypeBytes {
		return "", "", domain.Invalid("Content-Type", "must be the file's media type, such as application/pdf")
	}
	if strings.HasPrefix(mt, "multipart/") {
		return "", "", domain.Invalid("Content-Type", "must be the file's media type: send the file's bytes as the body, not a form")
	}
	return name, mime.FormatMediaType(mt, params), nil
}

// download serves an attachment of a message the caller may see.
func (a *API) download(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	// An index is a plain decimal number; anything else names nothing.
	raw := r.PathValue("index")
	index, err := strconv.Atoi(raw)
	if err != nil || index < 0 || strconv.Itoa(index) != raw {
		return domain.ErrNotFound
	}
	tenant, err := uuid.Parse(p.Tenant)
	if err != nil {
		return domain.ErrNotFound
	}
	convID, atts, err := a.Store.MessageAttachments(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	c, err := a.Store.GetConversation(r.Context(), tenant, convID)
	if err != nil {
		return err
	}
	if !c.VisibleTo(p) || index >= len(atts) || atts[index].BlobKey == "" {
		return domain.ErrNotFound
	}
	return a.serveAttachment(w, r, atts[index], "message", id, "index", index)
}

// serveAttachment streams an attachment's content from the blob store;
// logged says which one it is, in the logs.
func (a *API) serveAttachment(w http.ResponseWriter, r *http.Request, att events.Attachment, logged ...any) error {
	content, err := a.Blobs.Open(r.Context(), att.BlobKey)
	if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidKey) {
		a.Log.ErrorContext(r.Context(), "attachment content missing from the blob store", append(logged, "key", att.BlobKey, "error", err)...)
		return httpx.NewProblem(http.StatusInternalServerError, "the attachment's content is missing from the blob store; it has been logged")
	}
	if err != nil {
		return fmt.Errorf("open attachment %v (blob %s): %w", logged, att.BlobKey, err)
	}
	defer content.Close()

	contentType, disposition := servedAs(att.ContentType)
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", disposition+"; filename*=UTF-8''"+encodeRFC5987(fileName(att.Name)))
	h.Set("Content-Length", strconv.FormatInt(att.Size, 10))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "private, no-cache")
	w.WriteHeader(http.StatusOK)
	if n, err := io.CopyN(w, content, att.Size); err != nil {
		// The status is sent: all that is left is to log and cut the
		// answer short, which the client sees as a truncated body.
		a.Log.ErrorContext(r.Context(), "attachment download failed", append(logged, "key", att.BlobKey, "sent", n, "size", att.Size, "error", err)...)
	}
	return nil
}

// servedAs is the Content-Type and disposition an attachment is served
// with. Only types a browser shows without running anything are served
// as themselves, inline; anything else (HTML, SVG, scripts, unknown
// types) is served as application/octet-stream to download, so that a
// customer's file never runs as active content on the API's origin.
func servedAs(stored string) (contentType, disposition string) {
	mt, params, err := mime.ParseMediaType(stored)
	if err != nil {
		return "application/octet-stream", "attachment"
	}
	switch mt {
	case "image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/avif", "application/pdf":
		return mt, "inline"
	case "text/plain":
		// The charset is kept, and only it: the text must decode as sent.
		if cs := params["charset"]; cs != "" {
			if ct := mime.FormatMediaType(mt, map[string]string{"charset": cs}); ct != "" {
				return ct, "inline"
			}
		}
		return mt, "inline"
	}
	return "application/octet-stream", "attachment"
}

// fileName is the name a download is saved under.
func fileName(name string) string {
	if name == "" {
		return "attachment"
	}
	return name
}

// encodeRFC5987 percent-encodes s as the value of an ext-value (RFC 8187
// section 3.2.1): attr-chars stay, every other byte is %XX.
func encodeRFC5987(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
