package smtpsend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// file is an attachment read back.
type file struct {
	name, contentType, content string
}

// mixed is a composed message with attachments read back with go-message.
type mixed struct {
	header  mail.Header
	replyTo []string
	// alternative are the parts of the first part, by content type.
	alternative map[string]string
	files       []file
	// raw are the attachments' headers as written.
	raw []message.Header
}

// parseMixed reads a multipart/mixed message: an alternative, then
// attachments.
func parseMixed(t *testing.T, raw []byte) mixed {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	require.NoError(t, err)
	mt, _, err := e.Header.ContentType()
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	h := mail.Header{Header: e.Header}
	out := mixed{header: h, alternative: map[string]string{}}
	rt, err := h.AddressList("Reply-To")
	require.NoError(t, err)
	for _, a := range rt {
		out.replyTo = append(out.replyTo, a.Address)
	}
	mr := e.MultipartReader()
	require.NotNil(t, mr)
	first := true
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		pt, _, err := part.Header.ContentType()
		require.NoError(t, err)
		if first {
			first = false
			require.Equal(t, "multipart/alternative", pt, "the text comes first")
			ar := part.MultipartReader()
			for {
				p, err := ar.NextPart()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				ct, _, err := p.Header.ContentType()
				require.NoError(t, err)
				b, err := io.ReadAll(p.Body)
				require.NoError(t, err)
				out.alternative[ct] = strings.ReplaceAll(string(b), "\r\n", "\n")
			}
			continue
		}
		ah := mail.AttachmentHeader{Header: part.Header}
		disp, _, err := ah.ContentDisposition()
		require.NoError(t, err)
		require.Equal(t, "attachment", disp)
		require.Equal(t, "base64", part.Header.Get("Content-Transfer-Encoding"))
		name, err := ah.Filename()
		require.NoError(t, err)
		b, err := io.ReadAll(part.Body) // decoded by go-message
		require.NoError(t, err)
		out.files = append(out.files, file{name: name, contentType: pt, content: string(b)})
		out.raw = append(out.raw, part.Header)
	}
	return out
}

// memBlobs is a blob store in memory: key to content.
type memBlobs map[string]string

func (m memBlobs) open(a events.Attachment) (io.ReadCloser, error) {
	c, ok := m[a.BlobKey]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", a.BlobKey, blob.ErrNotFound)
	}
	return io.NopCloser(strings.NewReader(c)), nil
}

func TestComposeAttachments(t *testing.T) {
	binary := string(bytes.Repeat([]byte{0, 1, 2, 0xff, '\r', '\n', '.'}, 4000))
	blobs := memBlobs{"k/pdf": "%PDF-1.4 invoice", "k/bin": binary, "k/txt": "héllo\n"}
	cmd := testCommand("m-attached")
	cmd.Attachments = []events.Attachment{
		{Name: "invoice.pdf", ContentType: "application/pdf", Size: 16, BlobKey: "k/pdf"},
		{Name: "relevé de compte été.bin", ContentType: "application/octet-stream", Size: int64(len(binary)), BlobKey: "k/bin"},
		{Name: "notes\r\nBcc: evil@x.example.txt", ContentType: "text/plain; charset=utf-8", Size: 7, BlobKey: "k/txt"},
		{Name: "", ContentType: "not a type", Size: 16, BlobKey: "k/pdf"},
	}
	now := time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC)
	out, err := Compose(cmd, testMailbox(), Thread{Subject: "Order"}, now, blobs.open)
	require.NoError(t, err)
	require.NotContains(t, string(out.Raw), "\n\n", "lines must end in CRLF")
	for _, line := range strings.Split(string(out.Raw), "\r\n") {
		require.LessOrEqual(t, len(line), 998, "a line longer than RFC 5322 allows")
		require.False(t, strings.HasPrefix(line, "Bcc:"), "a file name must not inject a header")
	}

	p := parseMixed(t, out.Raw)
	require.Equal(t, cmd.Text, p.alternative["text/plain"])
	require.Contains(t, p.alternative["text/html"], "<p>Hello Ann,</p>")
	require.Equal(t, []file{
		{name: "invoice.pdf", contentType: "application/pdf", content: "%PDF-1.4 invoice"},
		{name: "relevé de compte été.bin", contentType: "application/octet-stream", content: binary},
		{name: "notes\r\nBcc: evil@x.example.txt", contentType: "text/plain", content: "héllo\n"},
		{name: "attachment-4", contentType: "application/octet-stream", content: "%PDF-1.4 invoice"},
	}, p.files)
	// A name that is not ASCII is RFC 2231-encoded, not an RFC 2047
	// encoded word, which parameters may not hold.
	disp := p.raw[1].Get("Content-Disposition")
	require.Contains(t, disp, "filename*=utf-8''relev%C3%A9")
	require.NotContains(t, disp, "=?")

	// The same command composes the same bytes (boundaries included).
	again, err := Compose(cmd, testMailbox(), Thread{Subject: "Order"}, now, blobs.open)
	require.NoError(t, err)
	require.Equal(t, string(out.Raw), string(again.Raw))
}

func TestComposeMissingAttachment(t *testing.T) {
	cmd := testCommand("m-lost")
	cmd.Attachments = []events.Attachment{{Name: "lost.pdf", ContentType: "application/pdf", Size: 3, BlobKey: "k/lost"}}
	_, err := Compose(cmd, testMailbox(), Thread{}, time.Now(), memBlobs{}.open)
	require.ErrorIs(t, err, ErrCompose, "a missing blob will not come back: the reply fails")
	require.ErrorContains(t, err, "lost.pdf")

	_, err = Compose(cmd, testMailbox(), Thread{}, time.Now(), nil)
	require.ErrorIs(t, err, ErrCompose, "attachments without a blob store")

	down := func(events.Attachment) (io.ReadCloser, error) { return nil, errors.New("connection refused") }
	_, err = Compose(cmd, testMailbox(), Thread{}, time.Now(), down)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrCompose, "a blob store down is temporary")
}

func TestComposeReplyToFromTheCommand(t *testing.T) {
	thread := Thread{ReplyAddress: "reply+abcdefghijklmnopqrst@reply.shop.example"}
	for _, tt := range []struct{ replyTo, want string }{
		{"", thread.ReplyAddress},
		{"ada.agent@shop.example", "ada.agent@shop.example"},
		{"not an address", thread.ReplyAddress},
		{"Ada <ada@shop.example>", thread.ReplyAddress},
	} {
		cmd := testCommand("m-reply-to")
		cmd.ReplyTo = tt.replyTo
		out, err := Compose(cmd, testMailbox(), thread, time.Now(), nil)
		require.NoError(t, err)
		h := parseBack(t, out.Raw).header
		got, err := h.AddressList("Reply-To")
		require.NoError(t, err)
		require.Len(t, got, 1)
		if got[0].Address != tt.want {
			t.Errorf("Reply-To with cmd.ReplyTo %q = %q, want %q", tt.replyTo, got[0].Address, tt.want)
		}
	}
}
