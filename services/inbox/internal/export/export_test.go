package export

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pngOf is a small real PNG.
func pngOf(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			img.Set(x, y, color.NRGBA{R: uint8(x * 8), G: 120, B: uint8(y * 8), A: 200})
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func sample(t *testing.T) Conversation {
	t.Helper()
	img, err := NewImage(pngOf(t, 32, 24))
	require.NoError(t, err)
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	return Conversation{
		ID: "0190f5c2-0000-7000-8000-000000000001", Subject: "Commande 42 <urgent>", Channel: "email", State: "assigned",
		Queue: "Support", Assignees: []string{"Zoé Agent"}, Contact: "Ada Lovelace", Unread: true, StartedAt: at,
		Total: 4, GeneratedAt: at.Add(time.Hour),
		Messages: []Message{
			{At: at, Direction: Inbound, Author: "Ada Lovelace", Role: "Customer", Subject: "Commande 42", Status: "received",
				Text: "Καλημέρα, здравствуйте!\n<script>alert(1)</script>\t" + strings.Repeat("long", 80),
				Attachments: []Attachment{{Name: "photo.png", ContentType: "image/png", Size: int64(len(img.Data)), Image: img},
					{Name: "facture.pdf", ContentType: "application/pdf", Size: 123456}}},
			{At: at.Add(time.Minute), Direction: Outbound, Author: "Zoé Agent", Role: "Agent", Status: "failed: mailbox full", Text: "On it 🙂"},
			{At: at.Add(2 * time.Minute), Direction: Inbound, Author: "Ada Lovelace", Role: "Customer", Anonymised: true, Text: "my card 4111",
				Attachments: []Attachment{{Name: "secret.txt", Size: 4}}},
		},
	}
}

func TestHTMLEscapesAndIsSelfContained(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, HTML(&b, sample(t), HTMLOptions{Images: true, Note: "See <b>below</b>"}))
	out := b.String()
	require.NotContains(t, out, "<script>")
	require.Contains(t, out, "&lt;script&gt;alert(1)&lt;/script&gt;")
	require.Contains(t, out, "Commande 42 &lt;urgent&gt;")
	require.Contains(t, out, "See &lt;b&gt;below&lt;/b&gt;")
	require.Contains(t, out, `src="data:image/png;base64,`)
	require.Contains(t, out, "facture.pdf (120.6 KiB)")
	require.Contains(t, out, AnonymisedText)
	require.NotContains(t, out, "4111")
	require.NotContains(t, out, "secret.txt")
	require.Contains(t, html.UnescapeString(out), "2026-03-01 08:30:00 +00:00 (UTC)")
	require.Contains(t, out, "failed: mailbox full")
	require.NotContains(t, out, "http://")
	require.NotContains(t, out, "https://")

	b.Reset()
	require.NoError(t, HTML(&b, sample(t), HTMLOptions{}))
	require.NotContains(t, b.String(), "data:image")
	require.Contains(t, b.String(), "photo.png (")
	require.Contains(t, b.String(), "shown in the attached PDF")
}

func TestText(t *testing.T) {
	out := Text(sample(t), "Please have a look")
	require.True(t, strings.HasPrefix(out, "Please have a look\n"))
	require.Contains(t, out, "Zoé Agent (Agent)")
	require.Contains(t, out, "[file] facture.pdf (120.6 KiB)")
	require.Contains(t, out, AnonymisedText)
	require.NotContains(t, out, "4111")
}

func TestFileName(t *testing.T) {
	c := sample(t)
	require.Equal(t, "conversation-0190f5c2-0000-7000-8000-000000000001-20260301.pdf", c.FileName("pdf"))
	c.ID = `../"é x`
	require.Equal(t, "conversation-x-20260301.html", c.FileName("html"))
}

func TestNewImageRefusesWhatIsNotAnImage(t *testing.T) {
	_, err := NewImage([]byte("\x89PNG\r\n\x1a\nnot really"))
	require.Error(t, err)
	_, err = NewImage(make([]byte, MaxImageBytes+1))
	require.Error(t, err)
	require.True(t, ImageType("image/JPEG; name=x.jpg"))
	require.False(t, ImageType("image/svg+xml"))
}

// TestPDFText renders the sample and reads it back with poppler's
// pdftotext (scripts/services.sh poppler installs it).
func TestPDFText(t *testing.T) {
	pdftotext, err := exec.LookPath("pdftotext")
	require.NoError(t, err, "pdftotext is missing: run scripts/services.sh poppler (Debian: apt-get install poppler-utils)")
	var b bytes.Buffer
	require.NoError(t, PDF(&b, sample(t)))
	require.True(t, bytes.HasPrefix(b.Bytes(), []byte("%PDF-")))
	path := filepath.Join(t.TempDir(), "c.pdf")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	out, err := exec.Command(pdftotext, "-layout", path, "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	text := string(out)
	for _, want := range []string{"Commande 42 <urgent>", "Καλημέρα, здравствуйте!", "<script>alert(1)</script>", "Zoé Agent (Agent)",
		"photo.png", "facture.pdf (120.6 KiB)", AnonymisedText, "Page 1 of", "failed: mailbox full", "2026-03-01 08:30:00 +00:00 (UTC)"} {
		require.Contains(t, text, want)
	}
	require.NotContains(t, text, "4111")
	require.NotContains(t, text, "{nb}")
}

// TestPDFImageVariants draws the image variants the PDF library takes
// badly as they are (16-bit PNG, GIF, JPEG), and a file that only claims
// to be an image, without failing the document.
func TestPDFImageVariants(t *testing.T) {
	img16 := image.NewNRGBA64(image.Rect(0, 0, 20, 10))
	for x := 0; x < 20; x++ {
		img16.Set(x, 5, color.NRGBA64{R: 65535, A: 65535})
	}
	var p16, g, j bytes.Buffer
	require.NoError(t, png.Encode(&p16, img16))
	pal := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.White, color.Black})
	require.NoError(t, gif.EncodeAll(&g, &gif.GIF{Image: []*image.Paletted{pal, pal}, Delay: []int{10, 10}}))
	require.NoError(t, jpeg.Encode(&j, image.NewGray(image.Rect(0, 0, 3000, 10)), nil))
	c := sample(t)
	var atts []Attachment
	for i, data := range [][]byte{p16.Bytes(), g.Bytes(), j.Bytes()} {
		img, err := NewImage(data)
		require.NoError(t, err, "image %d", i)
		atts = append(atts, Attachment{Name: fmt.Sprintf("image-%d.%s", i, img.Format), Size: int64(len(data)), Image: img})
	}
	// Claims to be a PNG, decodes as one by its header, but is cut.
	atts = append(atts, Attachment{Name: "cut.png", Size: 40, Image: &Image{Format: "png", Data: p16.Bytes()[:40], Width: 20, Height: 10}})
	c.Messages[1].Attachments = atts
	var b bytes.Buffer
	require.NoError(t, PDF(&b, c))
	pdftotext, err := exec.LookPath("pdftotext")
	require.NoError(t, err, "pdftotext is missing: run scripts/services.sh poppler (Debian: apt-get install poppler-utils)")
	path := filepath.Join(t.TempDir(), "c.pdf")
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o600))
	out, err := exec.Command(pdftotext, path, "-").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, want := range []string{"image-0.png", "image-1.gif", "image-2.jpeg", "cut.png"} {
		require.Contains(t, string(out), want)
	}
}
