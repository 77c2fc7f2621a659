package inbound

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// maxRedirects bounds the redirects of one media fetch; Twilio answers
// with one, to its storage.
const maxRedirects = 5

// errMediaUnavailable marks a media fetch that may work later (network,
// timeout, 5xx, 429, refused credentials): the webhook is answered 503
// so that Twilio retries rather than the media being lost.
var errMediaUnavailable = errors.New("media unavailable")

// mediaClient returns base, or a client, that follows redirects only to
// https, or to the host it started on, at most maxRedirects times. Go
// drops the Authorization header on a redirect to another domain, so the
// account's credentials never reach Twilio's storage host.
func mediaClient(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if req.URL.Scheme != "https" && req.URL.Host != via[0].URL.Host {
			return fmt.Errorf("refused redirect to %s: neither https nor the same host", req.URL.Redacted())
		}
		return nil
	}
	return c
}

// fetchMedia fetches every medium of an MMS at once (Twilio waits 15 s at
// most for the answer), stores each in the blob store and returns their
// attachments in Twilio's order. A medium over the size limit, or one
// Twilio no longer has (404, 410), is attached as skipped; any other
// failure fails the whole message with errMediaUnavailable.
func (h *Handler) fetchMedia(ctx context.Context, acct events.SMSAccount, media []Media) ([]events.Attachment, error) {
	if len(media) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.MediaTimeout)
	defer cancel()
	atts := make([]events.Attachment, len(media))
	errs := make([]error, len(media))
	var wg sync.WaitGroup
	for i, m := range media {
		wg.Go(func() { atts[i], errs[i] = h.fetchOne(ctx, acct, i, m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return atts, nil
}

// fetchOne fetches and stores medium i.
func (h *Handler) fetchOne(ctx context.Context, acct events.SMSAccount, i int, m Media) (events.Attachment, error) {
	att := events.Attachment{Name: mediaName(i, m), ContentType: m.ContentType}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return att, fmt.Errorf("media %d: %w", i, err)
	}
	// Twilio serves media with HTTP basic authentication when the
	// account enforces it: the API key when there is one, else the auth
	// token.
	user, pass := acct.AccountSID, acct.AuthToken
	if acct.APIKeySID != "" && acct.APIKeySecret != "" {
		user, pass = acct.APIKeySID, acct.APIKeySecret
	}
	req.SetBasicAuth(user, pass)
	resp, err := h.client.Do(req)
	if err != nil {
		h.mediaOutcome(ctx, "unavailable")
		return att, fmt.Errorf("%w: fetch media %d: %w", errMediaUnavailable, i, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		h.mediaOutcome(ctx, "gone")
		att.Skipped = fmt.Sprintf("Twilio no longer has this media (HTTP %d)", resp.StatusCode)
		return att, nil
	case resp.StatusCode != http.StatusOK:
		// 401 and 403 mean the account's credentials are wrong: retried,
		// they may work once the account is fixed.
		h.mediaOutcome(ctx, "unavailable")
		return att, fmt.Errorf("%w: fetch media %d: HTTP %d", errMediaUnavailable, i, resp.StatusCode)
	}
	limit := h.opts.MaxMediaBytes
	if resp.ContentLength > limit {
		h.mediaOutcome(ctx, "too_large")
		att.Size = resp.ContentLength
		att.Skipped = tooLarge(limit)
		return att, nil
	}
	ref, err := h.opts.Blobs.Put(ctx, h.namespace(acct), resp.Body, limit)
	switch {
	case errors.Is(err, blob.ErrTooLarge):
		h.mediaOutcome(ctx, "too_large")
		att.Skipped = tooLarge(limit)
		return att, nil
	case err != nil && ctx.Err() != nil:
		h.mediaOutcome(ctx, "unavailable")
		return att, fmt.Errorf("%w: read media %d: %w", errMediaUnavailable, i, err)
	case err != nil:
		h.mediaOutcome(ctx, "error")
		return att, fmt.Errorf("%w: store media %d: %w", errMediaUnavailable, i, err)
	}
	h.mediaOutcome(ctx, "stored")
	att.BlobKey, att.Size = ref.Key, ref.Size
	return att, nil
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("larger than %d bytes", limit)
}

// namespace scopes an account's media in the blob store: <tenant>/<account>.
func (h *Handler) namespace(acct events.SMSAccount) string {
	return safeSegment(acct.TenantID) + "/" + safeSegment(acct.ID)
}

// safeSegment keeps what a blob namespace segment may hold.
func safeSegment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
	if len(s) > 128 {
		s = s[:128]
	}
	if s == "" {
		return "_"
	}
	return s
}

// extensions gives file names a usual extension for the media types MMS
// carry. mime.ExtensionsByType depends on the host's mime.types, so
// names would differ between machines.
var extensions = map[string]string{
	"image/jpeg":      ".jpg",
	"image/png":       ".png",
	"image/gif":       ".gif",
	"image/webp":      ".webp",
	"image/heic":      ".heic",
	"video/mp4":       ".mp4",
	"video/3gpp":      ".3gp",
	"video/quicktime": ".mov",
	"audio/mpeg":      ".mp3",
	"audio/amr":       ".amr",
	"audio/ogg":       ".ogg",
	"audio/mp4":       ".m4a",
	"text/vcard":      ".vcf",
	"text/x-vcard":    ".vcf",
	"text/plain":      ".txt",
	"application/pdf": ".pdf",
}

// mediaName names medium i after its media SID (the last segment of its
// URL, ME...), with the extension of its type: ME1f...e3.jpg. A URL
// without a media SID gives media-<i>.
func mediaName(i int, m Media) string {
	name := "media-" + strconv.Itoa(i)
	if u, err := url.Parse(m.URL); err == nil {
		if last := path.Base(u.Path); mediaSID.MatchString(last) {
			name = last
		}
	}
	if mt, _, err := mime.ParseMediaType(m.ContentType); err == nil {
		name += extensions[mt]
	}
	return name
}

// mediaOutcome counts one medium by what became of it.
func (h *Handler) mediaOutcome(ctx context.Context, outcome string) {
	h.media.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome)))
}
