package mailparse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jhillyerd/enmime/v2"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// maxFileNameBytes is what most file systems allow.
const maxFileNameBytes = 255

// attachments stores the attachments and inlines of env and lists them in
// m. It fails only when the store does, so the caller retries the mail.
func (p *Parser) attachments(ctx context.Context, env *enmime.Envelope, m *Mail, w *warnings) error {
	seen := make(map[*enmime.Part]bool)
	stored := 0
	add := func(part *enmime.Part, inline bool) error {
		if seen[part] || isBodyPart(part) {
			return nil
		}
		seen[part] = true
		if len(m.Attachments)+len(m.Inlines) >= events.MaxAttachments {
			m.OmittedAttachments++
			return nil
		}
		a := Attachment{
			FileName:    fileName(part.FileName),
			ContentType: truncateUTF8(strings.ToLower(cleanLine(part.ContentType)), events.MaxMIMETypeBytes),
			Size:        int64(len(part.Content)),
			ContentID:   truncateUTF8(cleanLine(part.ContentID), events.MaxIDBytes),
		}
		if a.ContentType == "" {
			a.ContentType = "application/octet-stream"
		}
		switch {
		case p.store == nil:
			a.Skipped = SkipNoStore
		case a.Size > p.limits.MaxAttachmentBytes:
			a.Skipped = SkipTooLarge
		case stored >= p.limits.MaxAttachments:
			a.Skipped = SkipTooMany
		default:
			ref, err := p.store.Put(ctx, p.namespace, bytes.NewReader(part.Content), p.limits.MaxAttachmentBytes)
			switch {
			case errors.Is(err, blob.ErrTooLarge):
				a.Skipped = SkipTooLarge
			case err != nil:
				return fmt.Errorf("mailparse: store part %s (%q): %w", part.PartID, a.FileName, err)
			default:
				stored++
				a.Blob = &ref
			}
		}
		if inline {
			m.Inlines = append(m.Inlines, a)
		} else {
			m.Attachments = append(m.Attachments, a)
		}
		return nil
	}

	for _, part := range env.Attachments {
		if err := add(part, false); err != nil {
			return err
		}
	}
	for _, part := range env.Inlines {
		if err := add(part, true); err != nil {
			return err
		}
	}
	// Parts with neither disposition: images of a multipart/related (by
	// Content-ID), delivery reports, forwarded messages.
	for _, part := range env.OtherParts {
		if err := add(part, part.ContentID != ""); err != nil {
			return err
		}
	}
	if m.OmittedAttachments > 0 {
		w.add(fmt.Sprintf("%d attachments neither stored nor listed", m.OmittedAttachments))
	}
	return nil
}

// isBodyPart reports whether part is a text body that enmime also lists as
// inline (mail clients mark body parts "Content-Disposition: inline"): it
// is already in Text or HTML. A multipart leaf is one without a boundary
// parameter, never a file.
func isBodyPart(part *enmime.Part) bool {
	if strings.HasPrefix(part.ContentType, "multipart/") {
		return true
	}
	if part.Disposition == "attachment" || part.FileName != "" {
		return false
	}
	switch part.ContentType {
	case "", "text/plain", "text/html":
		return true
	}
	return false
}

// fileName returns the last element of a file name, on one line of valid
// UTF-8 and at most maxFileNameBytes: senders write "C:\Users\x\a.pdf",
// and the name may end up on someone's disk.
func fileName(s string) string {
	s = cleanLine(s)
	if i := strings.LastIndexAny(s, `/\`); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if s == "." || s == ".." {
		return ""
	}
	return truncateUTF8(s, maxFileNameBytes)
}
