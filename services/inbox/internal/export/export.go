// Package export renders a conversation for people outside the agent's
// screen: a printable HTML page and a PDF ([004] "Imprimer le fil de
// discussion"), and the text of a mail that sends it to an outsider
// ([000] "Envoyer la conversation par email"). One model, Conversation,
// feeds every output; it is built by the API from the store and the blob
// store, so that this package does no I/O but writing its output.
package export

import (
	"bytes"
	"fmt"
	"image"
	// The image types shown inline.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxMessages is how many messages an export holds: the last ones, as
// [004] prints "only the last 200 messages".
const MaxMessages = 200

// Bounds of the images shown inline; a larger one is shown as a file.
const (
	// MaxImageBytes bounds one image's file.
	MaxImageBytes = 5 << 20
	// MaxImagesBytes bounds the images of one export together.
	MaxImagesBytes = 40 << 20
	// MaxImagePixels bounds an image's width times height, so that a
	// small file cannot decode into gigabytes.
	MaxImagePixels = 40_000_000
)

// TimeLayout is how times are written: UTC, with its offset named, so
// that a printout reads the same in every tenant's time zone.
const TimeLayout = "2006-01-02 15:04:05 -07:00 (MST)"

// TimeNote says how times are written, at the top of every export.
const TimeNote = "All times are in UTC (offset +00:00)."

// AnonymisedText replaces the content of an anonymised message.
const AnonymisedText = "This message was anonymised"

// Conversation is what an export shows of a conversation.
type Conversation struct {
	// ID is the conversation's id.
	ID string
	// Subject is the conversation's subject (an email's), "" if none.
	Subject string
	// Channel is chat, email or sms.
	Channel string
	// State is the conversation's state (new, assigned, done...).
	State string
	// Queue is the queue's name, "" when in none.
	Queue string
	// Assignees are the names of its assignees.
	Assignees []string
	// Contact is the customer's name.
	Contact string
	// Unread: no agent read its last customer message yet.
	Unread bool
	// StartedAt is when its first message came.
	StartedAt time.Time
	// Total is how many messages the conversation has; Messages are the
	// last MaxMessages of them, oldest first.
	Total    int
	Messages []Message
	// GeneratedAt is when the export was made.
	GeneratedAt time.Time
}

// Direction of a message.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Message is one message of an export.
type Message struct {
	// At is when the message was received or written.
	At time.Time
	// Direction is Inbound (the customer's) or Outbound.
	Direction string
	// Author is who wrote it: the customer, an agent, a bot.
	Author string
	// Role says what the author is: "Customer", "Agent", "Bot",
	// "Automatic message".
	Role string
	// Subject is an email's subject.
	Subject string
	// Text is the message's text (an email's plain text).
	Text string
	// Status is the message's status as the store has it: the delivery
	// status of what was sent ("delivered", "failed: ..."), "received"
	// for the customer's.
	Status string
	// Anonymised: nothing of the content is shown, only that it was
	// anonymised.
	Anonymised bool
	// Attachments are its files, in their order.
	Attachments []Attachment
}

// Attachment is a file of a message: an image shown inline, or a file
// shown as an icon with its name and size.
type Attachment struct {
	// Name is the file's name.
	Name string
	// ContentType is its media type, as stored.
	ContentType string
	// Size is its size in bytes.
	Size int64
	// Image is set when the file is shown inline.
	Image *Image
	// Note says why a file that could be an image is not shown, or why
	// its content was not kept.
	Note string
}

// Image is an image checked to decode: its format (png, jpeg or gif),
// its file and its size in pixels.
type Image struct {
	// Format is png, jpeg or gif (image.DecodeConfig's names).
	Format string
	// Data is the file as stored.
	Data []byte
	// Width and Height are in pixels.
	Width, Height int
}

// NewImage checks data as an image to show inline: a PNG, JPEG or GIF
// within the bounds.
func NewImage(data []byte) (*Image, error) {
	if len(data) > MaxImageBytes {
		return nil, fmt.Errorf("the image is larger than %d bytes", MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a PNG, JPEG or GIF image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxImagePixels {
		return nil, fmt.Errorf("the image is %dx%d pixels, over the limit", cfg.Width, cfg.Height)
	}
	return &Image{Format: format, Data: data, Width: cfg.Width, Height: cfg.Height}, nil
}

// ImageType reports whether a content type is one an export shows
// inline.
func ImageType(contentType string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	switch strings.TrimSpace(mt) {
	case "image/png", "image/jpeg", "image/jpg", "image/gif":
		return true
	}
	return false
}

// Title is the heading of the export.
func (c Conversation) Title() string {
	if c.Subject != "" {
		return c.Subject
	}
	if c.Contact != "" {
		return "Conversation with " + c.Contact
	}
	return "Conversation " + c.ID
}

// Field is a line of the header: a label and its value.
type Field struct {
	// Label names the line, Value is what it says.
	Label, Value string
}

// Fields are the header's lines.
func (c Conversation) Fields() []Field {
	none := func(s string) string {
		if s == "" {
			return "none"
		}
		return s
	}
	unread := "no"
	if c.Unread {
		unread = "yes"
	}
	return []Field{
		{"Subject", none(c.Subject)},
		{"Contact", none(c.Contact)},
		{"Channel", c.Channel},
		{"State", c.State},
		{"Queue", none(c.Queue)},
		{"Assignees", none(strings.Join(c.Assignees, ", "))},
		{"Unread", unread},
		{"Started", FormatTime(c.StartedAt)},
		{"Conversation", c.ID},
	}
}

// Extent says which messages the export holds.
func (c Conversation) Extent() string {
	if c.Total > len(c.Messages) {
		return fmt.Sprintf("The last %d of %d messages, oldest first.", len(c.Messages), c.Total)
	}
	if len(c.Messages) == 1 {
		return "1 message."
	}
	return fmt.Sprintf("All %d messages, oldest first.", len(c.Messages))
}

// Generated says when the export was made.
func (c Conversation) Generated() string {
	return "Exported " + FormatTime(c.GeneratedAt) + ". " + TimeNote
}

// FileName is a safe name for the export's file: ASCII, no path, the
// conversation's id and the day it was made.
func (c Conversation) FileName(ext string) string {
	id := strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-') {
			return r
		}
		return -1
	}, c.ID)
	if id == "" {
		id = "conversation"
	}
	return "conversation-" + id + "-" + c.GeneratedAt.UTC().Format("20060102") + "." + ext
}

// FormatTime writes t as TimeLayout, in UTC.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(TimeLayout)
}

// Meta is the line under a message's author: when, and its status.
func (m Message) Meta() string {
	s := FormatTime(m.At)
	if m.Status != "" {
		s += " · " + m.Status
	}
	return s
}

// Heading is a message's author and what they are.
func (m Message) Heading() string {
	if m.Role == "" {
		return m.Author
	}
	if m.Author == "" {
		return m.Role
	}
	return m.Author + " (" + m.Role + ")"
}

// HumanSize writes a size in bytes for people.
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 4; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// Extension is the upper-case extension of a file's name, for its icon
// ("PDF"), or "FILE".
func (a Attachment) Extension() string {
	i := strings.LastIndexByte(a.Name, '.')
	if i < 0 || i == len(a.Name)-1 || len(a.Name)-i > 6 {
		return "FILE"
	}
	ext := strings.ToUpper(a.Name[i+1:])
	for _, r := range ext {
		if r >= utf8.RuneSelf || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return "FILE"
		}
	}
	return ext
}

// Label is a file's name and size, and why it is not shown if it could
// have been.
func (a Attachment) Label() string {
	s := a.Name + " (" + HumanSize(a.Size) + ")"
	if a.Note != "" {
		s += " — " + a.Note
	}
	return s
}
