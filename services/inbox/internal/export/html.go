package export

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// page is the printable HTML page: self-contained (inline CSS, images as
// data: URIs), every text escaped by html/template.
var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"dataURI":    dataURI,
	"size":       HumanSize,
	"anonymised": func() string { return AnonymisedText },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.C.Title}}</title>
<style>
@page { size: A4; margin: 15mm 15mm 18mm; }
body { font-family: "Go", "Noto Sans", "DejaVu Sans", Arial, sans-serif; font-size: 10.5pt; line-height: 1.4; color: #111; max-width: 50em; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 16pt; margin: 0 0 .4em; overflow-wrap: anywhere; }
table.fields { border-collapse: collapse; margin-bottom: .6em; }
table.fields th { text-align: left; font-weight: bold; padding: .1em 1em .1em 0; vertical-align: top; white-space: nowrap; }
table.fields td { padding: .1em 0; overflow-wrap: anywhere; }
p.note { color: #555; font-size: 9pt; margin: .2em 0; }
p.sent-note { border-left: 3px solid #999; padding-left: .6em; white-space: pre-wrap; overflow-wrap: anywhere; }
article { border-top: 1px solid #bbb; padding: .6em 0; break-inside: avoid-page; }
article.outbound { padding-left: 1.2em; border-left: 3px solid #d9e3f0; }
.who { font-weight: bold; }
.meta { color: #555; font-size: 9pt; }
.subject { font-weight: bold; margin-top: .3em; overflow-wrap: anywhere; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: .3em 0; }
.anonymised { color: #666; font-style: italic; margin: .3em 0; }
figure { margin: .4em 0; }
figure img { max-width: 100%; max-height: 12cm; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 8.5pt; overflow-wrap: anywhere; }
.file { display: flex; align-items: center; gap: .5em; margin: .3em 0; overflow-wrap: anywhere; }
.icon { flex: none; width: 2.2em; height: 2.7em; border: 1px solid #666; border-radius: 2px 9px 2px 2px; font-size: 6.5pt; font-weight: bold; display: flex; align-items: center; justify-content: center; color: #333; background: #f4f4f4; }
@media print {
  body { margin: 0; max-width: none; padding: 0; }
  article { break-inside: avoid; }
}
</style>
</head>
<body>
<header>
<h1>{{.C.Title}}</h1>
{{- if .Note}}
<p class="sent-note">{{.Note}}</p>
{{- end}}
<table class="fields">
{{- range .C.Fields}}
<tr><th scope="row">{{.Label}}</th><td>{{.Value}}</td></tr>
{{- end}}
</table>
<p class="note">{{.C.Extent}}</p>
<p class="note">{{.C.Generated}}</p>
</header>
<main>
{{- range .C.Messages}}
<article class="{{.Direction}}">
<div><span class="who">{{.Heading}}</span></div>
<div class="meta">{{.Meta}}</div>
{{- if .Anonymised}}
<p class="anonymised">{{anonymised}}</p>
{{- else}}
{{- if .Subject}}
<div class="subject">Subject: {{.Subject}}</div>
{{- end}}
{{- if .Text}}
<div class="text">{{.Text}}</div>
{{- end}}
{{- range .Attachments}}
{{- if and .Image $.Images}}
<figure><img src="{{dataURI .Image}}" alt="{{.Name}}" width="{{.Image.Width}}" height="{{.Image.Height}}" style="width:auto;height:auto"><figcaption>{{.Name}} ({{size .Size}})</figcaption></figure>
{{- else}}
<div class="file"><span class="icon" aria-hidden="true">{{.Extension}}</span><span>{{.Label}}{{if and .Image (not $.Images)}} — shown in the attached PDF{{end}}</span></div>
{{- end}}
{{- end}}
{{- end}}
</article>
{{- end}}
</main>
</body>
</html>
`))

// dataURI is an image as a data: URI. Only images that NewImage checked
// get here, with a format it names, so the URI is safe as an img src.
func dataURI(img *Image) template.URL {
	return template.URL(fmt.Sprintf("data:image/%s;base64,%s", img.Format, base64.StdEncoding.EncodeToString(img.Data)))
}

// HTMLOptions change what the page shows.
type HTMLOptions struct {
	// Images shows images inline (data: URIs); without it they are files
	// "shown in the attached PDF", as in a mail, which mail clients and
	// size limits do not let carry them.
	Images bool
	// Note is a text shown above the header: the sender's note of a mail.
	Note string
}

// HTML writes c as a printable HTML page.
func HTML(w io.Writer, c Conversation, opts HTMLOptions) error {
	c = clean(c)
	if err := page.Execute(w, struct {
		C      Conversation
		Images bool
		Note   string
	}{c, opts.Images, cleanText(opts.Note)}); err != nil {
		return fmt.Errorf("render the conversation as HTML: %w", err)
	}
	return nil
}

// Text writes c as plain text: the text part of a mail.
func Text(c Conversation, note string) string {
	c = clean(c)
	var b strings.Builder
	if note = cleanText(note); note != "" {
		b.WriteString(note + "\n\n---\n\n")
	}
	b.WriteString(c.Title() + "\n\n")
	for _, f := range c.Fields() {
		fmt.Fprintf(&b, "%s: %s\n", f.Label, f.Value)
	}
	b.WriteString("\n" + c.Extent() + "\n" + c.Generated() + "\n")
	for _, m := range c.Messages {
		fmt.Fprintf(&b, "\n--- %s\n%s\n", m.Heading(), m.Meta())
		if m.Anonymised {
			b.WriteString("\n" + AnonymisedText + "\n")
			continue
		}
		if m.Subject != "" {
			b.WriteString("Subject: " + m.Subject + "\n")
		}
		if m.Text != "" {
			b.WriteString("\n" + m.Text + "\n")
		}
		for _, a := range m.Attachments {
			b.WriteString("[file] " + a.Label() + "\n")
		}
	}
	return b.String()
}

// clean makes c's texts safe to render: valid UTF-8, no control
// characters but line breaks (tabs become spaces), and nothing of an
// anonymised message.
func clean(c Conversation) Conversation {
	c.Subject, c.Contact, c.Queue = cleanLine(c.Subject), cleanLine(c.Contact), cleanLine(c.Queue)
	assignees := make([]string, len(c.Assignees))
	for i, a := range c.Assignees {
		assignees[i] = cleanLine(a)
	}
	c.Assignees = assignees
	msgs := make([]Message, len(c.Messages))
	for i, m := range c.Messages {
		m.Author, m.Status = cleanLine(m.Author), cleanLine(m.Status)
		if m.Anonymised {
			m.Subject, m.Text, m.Attachments = "", "", nil
		} else {
			m.Subject, m.Text = cleanLine(m.Subject), cleanText(m.Text)
			atts := make([]Attachment, len(m.Attachments))
			for j, a := range m.Attachments {
				a.Name, a.Note = cleanLine(a.Name), cleanLine(a.Note)
				if a.Name == "" {
					a.Name = "attachment"
				}
				atts[j] = a
			}
			m.Attachments = atts
		}
		msgs[i] = m
	}
	c.Messages = msgs
	return c
}

// cleanText keeps line breaks and printable characters; tabs become four
// spaces, invalid UTF-8 the replacement character.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r == '\t' || r == '\r':
			return ' '
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029':
			return -1
		}
		return r
	}, strings.ReplaceAll(strings.TrimRight(s, " \n\t\r"), "\t", "    "))
}

// cleanLine is cleanText on one line.
func cleanLine(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(cleanText(s), "\n", " "))
}
