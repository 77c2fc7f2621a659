package export

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"strings"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/draw"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/sfnt"
)

// The PDF's page, in millimetres.
const (
	pdfMargin       = 15.0
	pdfBottomMargin = 18.0
	pdfLine         = 5.0
	// pdfImageWidth and pdfImageHeight bound an image on the page.
	pdfImageWidth  = 120.0
	pdfImageHeight = 100.0
	// pdfImagePixels bounds the longer side of an image as embedded: a
	// larger one is scaled down, which keeps the file small.
	pdfImagePixels = 1600
)

// font is the embedded UTF-8 TrueType font (the Go fonts: Latin, Greek,
// Cyrillic and more) and the runes it draws.
type font struct {
	regular, bold []byte
	parsed        *sfnt.Font
}

func loadFont() (*font, error) {
	f, err := sfnt.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("parse the embedded font: %w", err)
	}
	return &font{regular: goregular.TTF, bold: gobold.TTF, parsed: f}, nil
}

// drawable replaces the runes the font has no glyph for by '?', for the
// PDF library refuses runes outside the font's range and draws nothing
// for those inside it without a glyph.
func (f *font) drawable(s string) string {
	var buf sfnt.Buffer
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == ' ' {
			return r
		}
		if i, err := f.parsed.GlyphIndex(&buf, r); err != nil || i == 0 {
			return '?'
		}
		return r
	}, s)
}

// PDF writes c as a PDF: A4, the header, then each message with its
// images drawn and its other files as icons; page numbers in the footer.
func PDF(w io.Writer, c Conversation) error {
	fnt, err := loadFont()
	if err != nil {
		return err
	}
	c = clean(c)
	p := fpdf.New("P", "mm", "A4", "")
	p.SetCompression(true)
	p.SetCatalogSort(true)
	p.SetCreationDate(c.GeneratedAt)
	p.SetModificationDate(c.GeneratedAt)
	p.SetTitle(fnt.drawable(c.Title()), true)
	p.SetCreator("Switchboard", false)
	p.SetProducer("Switchboard", false)
	p.AddUTF8FontFromBytes("go", "", fnt.regular)
	p.AddUTF8FontFromBytes("go", "B", fnt.bold)
	p.SetMargins(pdfMargin, pdfMargin, pdfMargin)
	p.SetAutoPageBreak(true, pdfBottomMargin)
	p.AliasNbPages("{nb}")
	footer := fnt.drawable(c.Title())
	p.SetFooterFunc(func() {
		p.SetY(-12)
		p.SetFont("go", "", 8)
		p.SetTextColor(110, 110, 110)
		width, _ := p.GetPageSize()
		half := (width - 2*pdfMargin) / 2
		p.CellFormat(half, 4, fit(p, footer, half-2), "", 0, "L", false, 0, "")
		p.CellFormat(half, 4, fmt.Sprintf("Page %d of {nb}", p.PageNo()), "", 0, "R", false, 0, "")
	})
	p.AddPage()

	r := pdfRenderer{p: p, fnt: fnt}
	r.header(c)
	for i, m := range c.Messages {
		r.message(i, m)
	}
	if p.Err() {
		return fmt.Errorf("render the conversation as PDF: %w", p.Error())
	}
	if err := p.Output(w); err != nil {
		return fmt.Errorf("write the PDF: %w", err)
	}
	return nil
}

type pdfRenderer struct {
	p   *fpdf.Fpdf
	fnt *font
}

func (r pdfRenderer) text(style string, size float64, gray int, s string) {
	r.p.SetFont("go", style, size)
	r.p.SetTextColor(gray, gray, gray)
	r.p.MultiCell(0, size*0.45, r.fnt.drawable(s), "", "L", false)
}

func (r pdfRenderer) header(c Conversation) {
	r.text("B", 16, 0, c.Title())
	r.p.Ln(2)
	for _, f := range c.Fields() {
		r.p.SetFont("go", "B", 9.5)
		r.p.SetTextColor(0, 0, 0)
		r.p.CellFormat(32, pdfLine, f.Label, "", 0, "L", false, 0, "")
		r.p.SetFont("go", "", 9.5)
		r.p.MultiCell(0, pdfLine, r.fnt.drawable(f.Value), "", "L", false)
	}
	r.p.Ln(2)
	r.text("", 8.5, 90, c.Extent())
	r.text("", 8.5, 90, c.Generated())
	r.p.Ln(3)
}

// room starts a new page unless h millimetres are left on this one.
func (r pdfRenderer) room(h float64) {
	_, height := r.p.GetPageSize()
	if r.p.GetY()+h > height-pdfBottomMargin {
		r.p.AddPage()
	}
}

func (r pdfRenderer) message(i int, m Message) {
	p := r.p
	// The heading stays with the first lines of the message.
	r.room(4 * pdfLine)
	width, _ := p.GetPageSize()
	p.SetDrawColor(180, 180, 180)
	p.Line(pdfMargin, p.GetY(), width-pdfMargin, p.GetY())
	p.Ln(1.5)
	r.text("B", 10, 0, m.Heading())
	r.text("", 8.5, 90, m.Meta())
	p.Ln(1)
	if m.Anonymised {
		r.text("", 10, 100, AnonymisedText)
		p.Ln(3)
		return
	}
	if m.Subject != "" {
		r.text("B", 10, 0, "Subject: "+m.Subject)
	}
	if m.Text != "" {
		r.text("", 10, 0, m.Text)
	}
	for j, a := range m.Attachments {
		if a.Image != nil && r.image(fmt.Sprintf("m%d-a%d", i, j), a) {
			continue
		}
		r.file(a)
	}
	p.Ln(3)
}

// image draws an image attachment scaled to fit; false when it cannot
// be embedded, to show it as a file instead.
func (r pdfRenderer) image(name string, a Attachment) bool {
	data, typ, w, h, err := pdfImage(a.Image)
	if err != nil {
		return false
	}
	p := r.p
	if p.Err() {
		return false
	}
	info := p.RegisterImageOptionsReader(name, fpdf.ImageOptions{ImageType: typ}, bytes.NewReader(data))
	if p.Err() || info == nil {
		// The library's error is sticky: an image it refuses would fail
		// the whole document, so the error is cleared and the image shown
		// as a file. The re-encoding above makes this unexpected.
		p.ClearError()
		return false
	}
	// 96 dpi, bounded by the box.
	mmW, mmH := float64(w)*25.4/96, float64(h)*25.4/96
	if s := min(pdfImageWidth/mmW, pdfImageHeight/mmH, 1); s < 1 {
		mmW, mmH = mmW*s, mmH*s
	}
	r.room(mmH + 2*pdfLine)
	p.Ln(1)
	p.ImageOptions(name, pdfMargin, p.GetY(), mmW, mmH, true, fpdf.ImageOptions{ImageType: typ}, 0, "")
	r.text("", 8, 90, a.Name+" ("+HumanSize(a.Size)+")")
	return true
}

// file draws a file's icon, with its type, then its name and size.
func (r pdfRenderer) file(a Attachment) {
	p := r.p
	r.room(12)
	p.Ln(1)
	x, y := p.GetX(), p.GetY()
	const iw, ih, fold = 8.0, 10.0, 2.5
	p.SetDrawColor(90, 90, 90)
	p.SetFillColor(244, 244, 244)
	p.Polygon([]fpdf.PointType{{X: x, Y: y}, {X: x + iw - fold, Y: y}, {X: x + iw, Y: y + fold}, {X: x + iw, Y: y + ih}, {X: x, Y: y + ih}}, "FD")
	p.Line(x+iw-fold, y, x+iw-fold, y+fold)
	p.Line(x+iw-fold, y+fold, x+iw, y+fold)
	p.SetFont("go", "B", 5)
	p.SetTextColor(50, 50, 50)
	p.SetXY(x, y+ih/2-1.5)
	p.CellFormat(iw, 3, a.Extension(), "", 0, "C", false, 0, "")
	p.SetXY(x+iw+2.5, y+ih/2-2.5)
	p.SetFont("go", "", 9)
	p.SetTextColor(0, 0, 0)
	p.MultiCell(0, 5, r.fnt.drawable(a.Label()), "", "L", false)
	if p.GetY() < y+ih+1 {
		p.SetY(y + ih + 1)
	}
	p.SetX(pdfMargin)
}

// pdfImage decodes an image and encodes it again as the PDF library
// takes it, whatever the original's variant (16-bit or interlaced PNG,
// progressive JPEG, animated GIF: its first frame), scaled down to
// pdfImagePixels: JPEG when opaque, PNG otherwise.
func pdfImage(img *Image) (data []byte, typ string, w, h int, err error) {
	src, _, err := image.Decode(bytes.NewReader(img.Data))
	if err != nil {
		return nil, "", 0, 0, fmt.Errorf("decode image: %w", err)
	}
	b := src.Bounds()
	w, h = b.Dx(), b.Dy()
	if w <= 0 || h <= 0 {
		return nil, "", 0, 0, fmt.Errorf("empty image")
	}
	if longer := max(w, h); longer > pdfImagePixels {
		w, h = max(1, w*pdfImagePixels/longer), max(1, h*pdfImagePixels/longer)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
	var out bytes.Buffer
	if dst.Opaque() {
		rgb := image.NewRGBA(dst.Bounds())
		draw.Draw(rgb, rgb.Bounds(), &image.Uniform{C: color.White}, image.Point{}, draw.Src)
		draw.Draw(rgb, rgb.Bounds(), dst, image.Point{}, draw.Over)
		if err := jpeg.Encode(&out, rgb, &jpeg.Options{Quality: 85}); err != nil {
			return nil, "", 0, 0, fmt.Errorf("encode image: %w", err)
		}
		return out.Bytes(), "JPG", w, h, nil
	}
	if err := png.Encode(&out, dst); err != nil {
		return nil, "", 0, 0, fmt.Errorf("encode image: %w", err)
	}
	return out.Bytes(), "PNG", w, h, nil
}

// fit shortens s with an ellipsis to fit width millimetres in the current
// font.
func fit(p *fpdf.Fpdf, s string, width float64) string {
	if p.GetStringWidth(s) <= width {
		return s
	}
	runes := []rune(s)
	for n := len(runes) - 1; n > 0; n-- {
		t := string(runes[:n]) + "…"
		if p.GetStringWidth(t) <= width {
			return t
		}
	}
	return ""
}
