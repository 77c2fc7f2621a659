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

// attachments stores the files of the layout and lists them in m. It
// fails only when the store does, so the caller retries the mail.
func (p *Parser) attachments(ctx context.Context, lay *layout, m *Mail, w *warnings) error {
	stored := 0
	for _, f := range lay.files {
		if len(m.Attachments)+len(m.Inlines) >= events.MaxAttachments {
			m.OmittedAttachments++
			continue
		}
		a := Attachment{
			FileName:    fileName(f.name),
			ContentType: truncateUTF8(strings.ToLower(cleanLine(f.contentType)), events.MaxMIMETypeBytes),
			Size:        int64(len(f.content)),
			ContentID:   truncateUTF8(cleanLine(f.contentID), events.MaxIDBytes),
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
			ref, err := p.store.Put(ctx, p.namespace, bytes.NewReader(f.content), p.limits.MaxAttachmentBytes)
			switch {
			case errors.Is(err, blob.ErrTooLarge):
				a.Skipped = SkipTooLarge
			case err != nil:
				return fmt.Errorf("mailparse: store %s: %w", f.describe(a.FileName), err)
			default:
				stored++
				a.Blob = &ref
			}
		}
		if f.inline {
			m.Inlines = append(m.Inlines, a)
		} else {
			m.Attachments = append(m.Attachments, a)
		}
	}
	if m.OmittedAttachments > 0 {
		w.add(fmt.Sprintf("%d attachments neither stored nor listed", m.OmittedAttachments))
	}
	return nil
}

// describe names a file in an error.
func (f file) describe(name string) string {
	if f.part == nil {
		return fmt.Sprintf("file %q of a winmail.dat", name)
	}
	return fmt.Sprintf("part %s (%q)", f.part.PartID, name)
}

// fileName returns a part's file name: the filename parameter of its
// Content-Disposition, else the name parameter of its Content-Type, each
// decoded from RFC 2231 (continuations, charsets), RFC 2047 words or raw
// 8-bit bytes; enmime's reading when they give none.
func (wk *walker) fileName(part *enmime.Part) string {
	for _, h := range [...]struct{ header, param string }{{"Content-Disposition", "filename"}, {"Content-Type", "name"}} {
		if v := part.Header.Get(h.header); v != "" {
			if name := wk.cs.param(v, h.param, "file name", wk.w); name != "" {
				return name
			}
		}
	}
	return part.FileName
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
