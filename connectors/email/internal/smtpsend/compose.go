package smtpsend

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/switchboard-oss/switchboard/connectors/email/internal/subject"
	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// ErrCompose is wrapped by Compose's errors: the command or the mailbox
// cannot make a valid message, and trying again will not change that.
var ErrCompose = errors.New("cannot compose the message")

// Thread is what Compose needs to know of the message being answered, as
// the inbound side recorded it when it ingested that message. The parent's
// own Message-ID is the command's InReplyTo.
type Thread struct {
	// ParentMessageID is the Message-ID of the message answered, without
	// angle brackets; when empty, the command's InReplyTo stands for it.
	ParentMessageID string
	// ParentReferences are the message ids of the parent's References
	// field, without angle brackets, in order.
	ParentReferences []string
	// ParentInReplyTo are the message ids of the parent's In-Reply-To
	// field, without angle brackets. They stand in for ParentReferences
	// when the parent has none (RFC 5322 section 3.6.4).
	ParentInReplyTo []string
	// Subject is the thread's original subject, decoded; it gives the
	// reply's subject ("Re: ...") when the command has none.
	Subject string
	// ReplyAddress, when set, is the reply's Reply-To: an address that
	// names the thread (reply+<token>@<reply domain>), so that an answer
	// from a client that drops In-Reply-To and References still joins it.
	ReplyAddress string
	// SubjectTag, when set, is added once at the end of the subject
	// ("[#<token>]"), for the same reason.
	SubjectTag string
}

// Outgoing is a composed message, ready for SMTP.
type Outgoing struct {
	// MessageID is the Message-ID field's identifier, without angle
	// brackets.
	MessageID string
	// From is the envelope sender (MAIL FROM): the mailbox's address.
	From string
	// Recipients are the envelope recipients (RCPT TO): To then Cc, each
	// once.
	Recipients []string
	// Raw is the whole RFC 5322 message, header and body, lines ending in
	// CRLF.
	Raw []byte
}

// MessageID returns the Message-ID identifier (without angle brackets) of
// the message with id messageID sent from a mailbox of domain. It depends
// on nothing else, so that a command sent twice (see the package comment)
// carries the same Message-ID both times and receivers collapse the copies.
func MessageID(messageID, domain string) string {
	local := messageID
	if len(local) > 128 || !dotAtom.MatchString(local) {
		// The id-left of a msg-id is a dot-atom (RFC 5322 section 3.6.4):
		// an id that is not one is replaced by its digest, still stable.
		sum := sha256.Sum256([]byte(messageID))
		local = "h" + hex.EncodeToString(sum[:16])
	}
	return "sb." + local + "@" + strings.ToLower(domain)
}

// dotAtom matches a dot-atom-text: atoms of atext characters with single
// dots between them.
var dotAtom = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+)*$`)

// ContentFunc opens the content of one of a command's attachments. An
// error wrapping blob.ErrNotFound or blob.ErrInvalidKey says the content
// is gone for good; any other is taken as temporary.
type ContentFunc func(a events.Attachment) (io.ReadCloser, error)

// Compose builds the message answering cmd from mailbox mb, dated now.
//
// Headers: From is "DisplayName <Address>"; To and Cc come from the
// command; Subject is the command's, or "Re: " and the thread's subject
// (without stacking "Re: Re:"), RFC 2047-encoded when not ASCII;
// Message-ID is MessageID(cmd.MessageID, domain of mb.Address);
// In-Reply-To is cmd.InReplyTo and References the parent's References (or
// its In-Reply-To) followed by cmd.InReplyTo, as RFC 5322 section 3.6.4
// asks; Reply-To is the thread's ReplyAddress when it has one, else the
// mailbox itself, and cmd.ReplyTo instead of either when it is a valid
// address (an agent's own; an invalid one is ignored, the reply still
// going out); the subject ends with the thread's SubjectTag; X-Loop is
// LoopValue(mb.Address). Auto-Submitted is absent from an agent's reply:
// it is written by a person, and marking it auto-submitted (RFC 3834)
// would make the customer's own auto-responders and filters treat it as
// machine mail. A message Switchboard sends on its own (cmd.Automatic: an
// acknowledgement, a waiting message, the smart-close question) carries
// Auto-Submitted: auto-replied (RFC 3834 section 5) and
// X-Auto-Response-Suppress: All (Exchange's equivalent), so that the
// customer's auto-responder does not answer it in turn.
//
// The body is multipart/alternative with the text as text/plain and as
// escaped HTML (paragraphs at blank lines, <br> at line breaks), or
// cmd.HTML instead when it is set, both UTF-8 and quoted-printable. When cmd has attachments, the message is
// multipart/mixed: that alternative first, then each attachment in order,
// base64, its content read through content (which may be nil only when
// there is none), one at a time.
//
// Errors wrap ErrCompose when trying again cannot help, an attachment
// whose content is gone included; an error opening or reading content
// that does not wrap it is temporary.
func Compose(cmd events.SendMessage, mb events.Mailbox, thread Thread, now time.Time, content ContentFunc) (Outgoing, error) {
	if cmd.MessageID == "" {
		return Outgoing{}, fmt.Errorf("%w: the command has no message id", ErrCompose)
	}
	if strings.TrimSpace(cmd.Text) == "" {
		return Outgoing{}, fmt.Errorf("%w: message %s has no text", ErrCompose, cmd.MessageID)
	}
	from, err := mail.ParseAddress(mb.Address)
	if err != nil {
		return Outgoing{}, fmt.Errorf("%w: mailbox %s address %q: %v", ErrCompose, mb.ID, mb.Address, err)
	}
	if mb.DisplayName != "" {
		from.Name = mb.DisplayName
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]

	to, err := parseRecipients("to", []string{cmd.To})
	if err != nil {
		return Outgoing{}, err
	}
	cc, err := parseRecipients("cc", cmd.CC)
	if err != nil {
		return Outgoing{}, err
	}

	replyTo := &mail.Address{Name: from.Name, Address: from.Address}
	if thread.ReplyAddress != "" {
		a, err := mail.ParseAddress(thread.ReplyAddress)
		if err != nil {
			return Outgoing{}, fmt.Errorf("%w: reply address %q of message %s: %v", ErrCompose, thread.ReplyAddress, cmd.MessageID, err)
		}
		replyTo.Address = a.Address
	}
	if a, err := mail.ParseAddress(cmd.ReplyTo); cmd.ReplyTo != "" && err == nil && a.Address == strings.TrimSpace(cmd.ReplyTo) {
		// The agent's own address: answers go to them, not to the thread.
		replyTo = &mail.Address{Address: a.Address}
	}
	if len(cmd.Attachments) > 0 && content == nil {
		return Outgoing{}, fmt.Errorf("%w: message %s has attachments, and no blob store to read them from is configured", ErrCompose, cmd.MessageID)
	}

	msgID := MessageID(cmd.MessageID, domain)
	var refs []string
	parent := msgIDOf(cmd.InReplyTo)
	if thread.ParentMessageID != "" {
		parent = msgIDOf(thread.ParentMessageID)
	}
	if parent != "" {
		if !validMsgID(parent) {
			return Outgoing{}, fmt.Errorf("%w: in_reply_to %q is not a message id", ErrCompose, cmd.InReplyTo)
		}
		refs = references(thread, parent)
	}

	// go-message writes header fields last set first: they are set here
	// from the bottom up, so that the message reads Date, From, To...
	var h mail.Header
	if cmd.Automatic {
		h.Set("X-Auto-Response-Suppress", "All")
		h.Set("Auto-Submitted", "auto-replied")
	}
	h.Set(LoopHeader, LoopValue(from.Address))
	if parent != "" {
		h.SetMsgIDList("References", refs)
		h.SetMsgIDList("In-Reply-To", []string{parent})
	}
	h.SetMessageID(msgID)
	subject := replySubject(cmd.Subject, thread.Subject)
	if thread.SubjectTag != "" && !strings.Contains(strings.ToLower(subject), strings.ToLower(thread.SubjectTag)) {
		subject = strings.TrimSpace(subject + " " + thread.SubjectTag)
	}
	if subject != "" {
		h.SetSubject(subject) // RFC 2047 encoded when not printable ASCII
	}
	h.SetAddressList("Reply-To", []*mail.Address{replyTo})
	h.SetAddressList("Cc", cc)
	h.SetAddressList("To", to)
	h.SetAddressList("From", []*mail.Address{from})
	h.SetDate(now)

	var buf bytes.Buffer
	parts := textParts(cmd.Text)
	if cmd.HTML != "" {
		// The inbox sanitised it (a template's HTML body): it replaces the
		// escaped text.
		parts[1].body = cmd.HTML
	}
	if err := writeBody(&buf, h, msgID, parts, cmd.Attachments, content); err != nil {
		return Outgoing{}, fmt.Errorf("compose message %s: %w", cmd.MessageID, err)
	}
	return Outgoing{
		MessageID:  msgID,
		From:       from.Address,
		Recipients: envelope(to, cc),
		Raw:        buf.Bytes(),
	}, nil
}

// writeBody writes the header and the body: multipart/alternative, or
// multipart/mixed of that alternative and the attachments.
func writeBody(w io.Writer, h mail.Header, msgID string, alt []bodyPart, files []events.Attachment, content ContentFunc) error {
	// Boundaries derived from the Message-ID (instead of random ones) keep
	// the message bytes a function of the command, the contents and the
	// time.
	alternative := map[string]string{"boundary": boundary("boundary", msgID)}
	if len(files) == 0 {
		h.SetContentType("multipart/alternative", alternative)
		mw, err := message.CreateWriter(w, h.Header)
		if err != nil {
			return fmt.Errorf("write header: %w", err)
		}
		if err := writeAlternative(mw, alt); err != nil {
			return err
		}
		return closeWriter(mw, "body")
	}
	h.SetContentType("multipart/mixed", map[string]string{"boundary": boundary("mixed", msgID)})
	mw, err := message.CreateWriter(w, h.Header)
	if err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	var ah message.Header
	ah.SetContentType("multipart/alternative", alternative)
	aw, err := mw.CreatePart(ah)
	if err != nil {
		return fmt.Errorf("create alternative part: %w", err)
	}
	if err := writeAlternative(aw, alt); err != nil {
		return err
	}
	if err := closeWriter(aw, "alternative part"); err != nil {
		return err
	}
	for i, f := range files {
		if err := writeAttachment(mw, i, f, content); err != nil {
			return err
		}
	}
	return closeWriter(mw, "body")
}

// boundary is a multipart boundary for the message msgID.
func boundary(kind, msgID string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + msgID))
	return "sb-" + hex.EncodeToString(sum[:12])
}

func closeWriter(w *message.Writer, what string) error {
	if err := w.Close(); err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	return nil
}

// bodyPart is one part of a multipart/alternative body.
type bodyPart struct{ typ, body string }

// textParts are text as text/plain and as escaped HTML.
func textParts(text string) []bodyPart {
	text = normaliseLines(text)
	return []bodyPart{{"text/plain", text}, {"text/html", htmlBody(text)}}
}

// normaliseLines makes every line break a LF.
func normaliseLines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// writeAlternative writes parts (UTF-8, quoted-printable) to mw, a
// multipart/alternative writer.
func writeAlternative(mw *message.Writer, parts []bodyPart) error {
	for _, p := range parts {
		var ph message.Header
		ph.SetContentType(p.typ, map[string]string{"charset": "utf-8"})
		ph.Set("Content-Transfer-Encoding", "quoted-printable")
		pw, err := mw.CreatePart(ph)
		if err != nil {
			return fmt.Errorf("create %s part: %w", p.typ, err)
		}
		if _, err := io.WriteString(pw, p.body); err != nil {
			return fmt.Errorf("write %s part: %w", p.typ, err)
		}
		if err := pw.Close(); err != nil {
			return fmt.Errorf("close %s part: %w", p.typ, err)
		}
	}
	return nil
}

// writeAttachment writes attachment i as a base64 part of mw. Its name is
// in Content-Disposition's filename and Content-Type's name (for older
// clients), both RFC 2231-encoded when not ASCII: go-message's own
// helpers would use RFC 2047 encoded words, which RFC 2047 section 5
// forbids in parameters.
func writeAttachment(mw *message.Writer, i int, f events.Attachment, content ContentFunc) error {
	name := f.Name
	if strings.TrimSpace(name) == "" {
		name = fmt.Sprintf("attachment-%d", i+1)
	}
	ct := "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(f.ContentType); err == nil && !strings.HasPrefix(mt, "multipart/") && !strings.HasPrefix(mt, "message/") {
		// Parameters (a charset) are dropped: the part is base64 bytes.
		ct = mt
	}
	var ph message.Header
	ph.Set("Content-Type", mediaType(ct, map[string]string{"name": name}))
	ph.Set("Content-Disposition", mediaType("attachment", map[string]string{"filename": name}))
	ph.Set("Content-Transfer-Encoding", "base64")

	rc, err := content(f)
	if errors.Is(err, blob.ErrNotFound) || errors.Is(err, blob.ErrInvalidKey) {
		return fmt.Errorf("%w: attachment %d (%q) is missing from the blob store (key %s): %v", ErrCompose, i, f.Name, f.BlobKey, err)
	}
	if err != nil {
		return fmt.Errorf("open attachment %d (key %s): %w", i, f.BlobKey, err)
	}
	defer rc.Close()
	pw, err := mw.CreatePart(ph)
	if err != nil {
		return fmt.Errorf("create attachment part %d: %w", i, err)
	}
	if _, err := io.Copy(pw, rc); err != nil {
		return fmt.Errorf("read attachment %d (key %s): %w", i, f.BlobKey, err)
	}
	return closeWriter(pw, fmt.Sprintf("attachment part %d", i))
}

// mediaType formats a header value with parameters, RFC 2231-encoding
// those that are not ASCII; a value it cannot format loses its
// parameters rather than break the header.
func mediaType(v string, params map[string]string) string {
	if s := mime.FormatMediaType(v, params); s != "" {
		return s
	}
	return v
}

// paragraphBreak is a blank line, possibly holding spaces.
var paragraphBreak = regexp.MustCompile(`\n[ \t]*\n\s*`)

// htmlBody renders plain text as HTML: escaped, a paragraph per block
// separated by blank lines, <br> at the other line breaks.
func htmlBody(text string) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n")
	for _, para := range paragraphBreak.Split(strings.Trim(text, "\n"), -1) {
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(para), "\n", "<br>\n"))
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// replySubject is subj when set, else "Re: " and the thread's subject
// without its reply and forward prefixes, in whatever language ("AW: WG:
// Bestellung" is answered "Re: Bestellung"), else empty.
func replySubject(subj, threadSubject string) string {
	if s := strings.TrimSpace(subj); s != "" {
		return s
	}
	base := subject.TrimPrefixes(threadSubject)
	if base == "" {
		return ""
	}
	return "Re: " + base
}

// references builds the References of a reply to parent: the parent's
// References, or when it has none its In-Reply-To when that names one
// message, followed by the parent's Message-ID (RFC 5322 section 3.6.4).
// Invalid ids and repeats are dropped.
func references(thread Thread, parent string) []string {
	base := thread.ParentReferences
	if len(base) == 0 && len(thread.ParentInReplyTo) == 1 {
		base = thread.ParentInReplyTo
	}
	seen := make(map[string]bool, len(base)+1)
	out := make([]string, 0, len(base)+1)
	for _, id := range append(append([]string(nil), base...), parent) {
		id = msgIDOf(id)
		if id == "" || seen[id] || !validMsgID(id) {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

// msgIDOf trims spaces and one pair of angle brackets.
func msgIDOf(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

// validMsgID accepts what may stand between the angle brackets of a
// msg-id: printable ASCII without spaces or brackets, with an @. It is
// lenient on purpose (real mail carries ids that are not strict dot-atoms)
// but never lets a header be broken or injected.
func validMsgID(id string) bool {
	if id == "" || len(id) > 998-len("References: <>") || !strings.Contains(id, "@") {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c > '~' || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// parseRecipients parses addresses of field; an empty list entry is an
// error, an empty list is not (for cc).
func parseRecipients(field string, list []string) ([]*mail.Address, error) {
	out := make([]*mail.Address, 0, len(list))
	for _, s := range list {
		a, err := mail.ParseAddress(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s address %q: %v", ErrCompose, field, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// envelope lists each address of to and cc once, in order, ignoring case.
func envelope(to, cc []*mail.Address) []string {
	seen := make(map[string]bool, len(to)+len(cc))
	out := make([]string, 0, len(to)+len(cc))
	for _, a := range append(append([]*mail.Address(nil), to...), cc...) {
		k := strings.ToLower(a.Address)
		if !seen[k] {
			seen[k] = true
			out = append(out, a.Address)
		}
	}
	return out
}
