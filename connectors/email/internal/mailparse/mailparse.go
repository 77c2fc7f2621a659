// Package mailparse turns a raw RFC 5322 message, as fetched over IMAP, into
// the fields the email connector needs: threading headers, parties, a
// plain-text and a sanitised HTML body, attachments stored in a blob.Store,
// and whether the mail was sent by a machine (auto-reply, bounce, list).
//
// The MIME structure and transfer encodings are enmime's
// (github.com/jhillyerd/enmime/v2), chosen by the design for its tolerance
// of the broken mail found in real mailboxes; HTML is sanitised with
// bluemonday. This package adds what the rest of Switchboard relies on:
//
//   - every string it returns is valid UTF-8 without NUL, because PostgreSQL
//     text refuses NUL and the events are JSON;
//   - charsets are its own (charset.go): declared ones are checked, missing
//     or wrong ones detected, in bodies and headers alike;
//   - the bodies and files are those a reader sees (layout.go): every body
//     part in order, the signed part of signed mail, the contents of a
//     winmail.dat, encrypted content as a file with a label in the text;
//   - HTML is never returned unsanitised;
//   - sizes are bounded (Limits), and a mail that is too big or not a mail
//     at all is an error the caller can branch on (ErrTooLarge,
//     ErrUnparseable) and dead-letter raw;
//   - what it recovered from is reported as Warnings rather than logged.
package mailparse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jhillyerd/enmime/v2"
	"github.com/microcosm-cc/bluemonday"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
)

// Errors callers branch on.
var (
	// ErrTooLarge: the raw mail is longer than Limits.MaxRawBytes. The
	// caller dead-letters it raw.
	ErrTooLarge = errors.New("mailparse: mail too large")
	// ErrUnparseable: the input is not a mail that can be parsed at all.
	// The wrapping error says why. The caller dead-letters it raw.
	ErrUnparseable = errors.New("mailparse: unparseable mail")
)

// errParserPanic marks an ErrUnparseable that comes from a panic recovered
// in a third-party parser; the fuzz test fails on it.
var errParserPanic = errors.New("parser panic")

// Default limits, used for every zero field of Limits.
const (
	// DefaultMaxRawBytes is above the 25 MB most providers accept once
	// base64 has grown the attachments by a third.
	DefaultMaxRawBytes = 40 << 20
	// DefaultMaxHTMLBytes bounds the HTML body kept: what the inbound
	// event carries.
	DefaultMaxHTMLBytes = events.MaxHTMLBytes
	// DefaultMaxAttachmentBytes bounds one stored attachment.
	DefaultMaxAttachmentBytes = 25 << 20
	// DefaultMaxAttachments bounds how many attachments and inlines of one
	// mail are stored.
	DefaultMaxAttachments = 32
	// DefaultMaxMultiparts bounds the multipart containers of one mail.
	DefaultMaxMultiparts = 100
)

// TruncationMarker ends a Text that was cut to fit Limits.MaxTextBytes.
const TruncationMarker = "\n\n[message truncated]"

// maxWarnings bounds Mail.Warnings; a broken mail can have thousands.
const maxWarnings = 50

// Limits bound what one mail may cost. A zero field takes its default.
type Limits struct {
	// MaxRawBytes is the largest raw mail parsed; a larger one fails with
	// ErrTooLarge. Default DefaultMaxRawBytes.
	MaxRawBytes int64
	// MaxTextBytes is the largest Text returned, TruncationMarker included.
	// Default and maximum events.MaxTextBytes, which the inbox enforces.
	MaxTextBytes int
	// MaxHTMLBytes bounds the HTML body: a longer one is cut before
	// sanitising, and the sanitised result, which the policy's added
	// attributes can grow, is cut again between tags. Default and maximum
	// events.MaxHTMLBytes, which the inbox enforces.
	MaxHTMLBytes int
	// MaxAttachmentBytes is the largest attachment or inline image stored;
	// a larger one is listed with Skipped set to SkipTooLarge. Default
	// DefaultMaxAttachmentBytes.
	MaxAttachmentBytes int64
	// MaxAttachments is how many attachments and inlines, counted together
	// in MIME order, are stored; the next ones are listed with Skipped set
	// to SkipTooMany, up to events.MaxAttachments entries in all, which is
	// what the inbound event carries; the rest are counted in
	// Mail.OmittedAttachments. Default DefaultMaxAttachments, maximum
	// events.MaxAttachments.
	MaxAttachments int
	// MaxMultiparts bounds the multipart containers of a mail; a mail with
	// more fails with ErrUnparseable. enmime parses nested multiparts
	// recursively with a buffer per level, so without this bound a small
	// mail of deeply nested parts costs gigabytes. The count is an upper
	// bound taken on the raw bytes (occurrences of "multipart/"), so text
	// that merely mentions the media type counts too. Default
	// DefaultMaxMultiparts.
	MaxMultiparts int
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.MaxRawBytes <= 0 {
		l.MaxRawBytes = DefaultMaxRawBytes
	}
	if l.MaxTextBytes <= 0 || l.MaxTextBytes > events.MaxTextBytes {
		l.MaxTextBytes = events.MaxTextBytes
	}
	// The marker must fit.
	l.MaxTextBytes = max(l.MaxTextBytes, len(TruncationMarker)+1)
	if l.MaxHTMLBytes <= 0 || l.MaxHTMLBytes > events.MaxHTMLBytes {
		l.MaxHTMLBytes = DefaultMaxHTMLBytes
	}
	if l.MaxAttachmentBytes <= 0 {
		l.MaxAttachmentBytes = DefaultMaxAttachmentBytes
	}
	if l.MaxAttachments <= 0 || l.MaxAttachments > events.MaxAttachments {
		l.MaxAttachments = DefaultMaxAttachments
	}
	if l.MaxMultiparts <= 0 {
		l.MaxMultiparts = DefaultMaxMultiparts
	}
	return l
}

// Options configure a Parser.
type Options struct {
	// Limits bound each mail; zero fields take their defaults.
	Limits Limits
	// Store keeps attachments and inline images. When nil, nothing is
	// stored and every attachment is listed with Skipped set to
	// SkipNoStore (useful in tests and tools, not in the connector).
	Store blob.Store
	// BlobNamespace scopes the blobs, typically "<tenant>/<mailbox>"; see
	// blob.ValidateNamespace for its syntax.
	BlobNamespace string
	// LoopValues are this mailbox's own X-Loop values (usually its address).
	// A mail whose X-Loop contains one of them, compared without case, came
	// back from ourselves and is Automatic.
	LoopValues []string
	// OwnDomains are the domains of the tenant's own mailboxes. A mail
	// whose Message-ID is on one of them or on a subdomain was written by
	// Switchboard or the tenant's own systems, and is Automatic. Case and
	// a leading "@" are ignored.
	OwnDomains []string
}

// Parser parses mails. Build one per mailbox with NewParser; it is safe for
// concurrent use.
type Parser struct {
	limits     Limits
	store      blob.Store
	namespace  string
	loopValues []string
	ownDomains []string
	mime       *enmime.Parser
	policy     *bluemonday.Policy
}

// NewParser builds a Parser. It fails when opts.BlobNamespace is malformed.
func NewParser(opts Options) (*Parser, error) {
	if err := blob.ValidateNamespace(opts.BlobNamespace); err != nil {
		return nil, fmt.Errorf("mailparse: blob namespace: %w", err)
	}
	// A key is the namespace, a slash and 64 hex digits.
	if n := len(opts.BlobNamespace) + 1 + 64; n > events.MaxBlobKeyBytes {
		return nil, fmt.Errorf("mailparse: blob namespace %q makes keys of %d bytes, at most %d fit an event", opts.BlobNamespace, n, events.MaxBlobKeyBytes)
	}
	var loops []string
	for _, v := range opts.LoopValues {
		if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
			loops = append(loops, v)
		}
	}
	return &Parser{
		limits:     opts.Limits.withDefaults(),
		store:      opts.Store,
		namespace:  opts.BlobNamespace,
		loopValues: loops,
		ownDomains: domains(opts.OwnDomains),
		mime: enmime.NewParser(
			// A broken part is reported and skipped; the rest of the
			// mail is still worth having.
			enmime.SkipMalformedParts(true),
			enmime.MultipartWOBoundaryAsSinglePart(true),
			// Keep what decodes of a text part with corrupt base64.
			enmime.SetReadPartErrorPolicy(enmime.AllowCorruptTextPartErrorPolicy),
			enmime.MaxStoredPartErrors(maxWarnings),
			// Text is derived from the sanitised HTML instead, so that
			// the contents of <script> and <style> never become text.
			enmime.DisableTextConversion(true),
			// Charsets are decoded here (charset.go): enmime gets every
			// text part as UTF-8 and passes its bytes through.
			enmime.SetCustomParseMediaType(passCharsets),
			enmime.DisableCharacterDetection(true),
		),
		policy: newPolicy(),
	}, nil
}

// newPolicy returns the HTML policy: bluemonday's policy for user-generated
// content, plus cid: URLs so inline images (RFC 2392) keep their reference
// to Attachment.ContentID. Links open in a new tab without a referrer, so
// the agent's inbox URL does not leak to the sender's site. Remote images
// stay: blocking them (tracking pixels) is the agent UI's job.
func newPolicy() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	p.AllowURLSchemes("cid")
	p.RequireNoReferrerOnLinks(true)
	p.AddTargetBlankToFullyQualifiedLinks(true)
	return p
}

// Address is a mailbox of a From, To, Cc or Reply-To header.
type Address struct {
	// Name is the display name, RFC 2047 decoded, possibly empty.
	Name string `json:"name,omitempty"`
	// Address is the addr-spec, lowercased: Switchboard matches contacts
	// by address and no mail system in use treats case as significant.
	Address string `json:"address"`
}

// SkipReason says why an attachment was not stored.
type SkipReason string

// Reasons for not storing an attachment.
const (
	// SkipTooLarge: larger than Limits.MaxAttachmentBytes.
	SkipTooLarge SkipReason = "too_large"
	// SkipTooMany: beyond Limits.MaxAttachments.
	SkipTooMany SkipReason = "too_many"
	// SkipNoStore: the Parser has no Store.
	SkipNoStore SkipReason = "no_store"
)

// Attachment is an attachment or an inline part (an image a HTML body shows
// by cid: URL, for instance).
type Attachment struct {
	// FileName is the decoded file name without any directory, possibly
	// empty.
	FileName string `json:"file_name,omitempty"`
	// ContentType is the media type without parameters, lowercase.
	ContentType string `json:"content_type"`
	// Size is the decoded length in bytes.
	Size int64 `json:"size"`
	// ContentID is the Content-ID without angle brackets, possibly empty.
	ContentID string `json:"content_id,omitempty"`
	// Blob is where the content is stored; nil when Skipped is set.
	Blob *blob.Ref `json:"blob,omitempty"`
	// Skipped says why the content was not stored; empty when it was.
	Skipped SkipReason `json:"skipped,omitempty"`
}

// Bounce describes a delivery status notification (RFC 3464) or a bounce
// that looks like one.
type Bounce struct {
	// OriginalMessageID is the Message-ID, without angle brackets, of the
	// mail this one reports on, when the report carries it. Empty when not
	// found.
	OriginalMessageID string `json:"original_message_id,omitempty"`
	// Recipients are the per-recipient fields of the message/delivery-status
	// part; empty for a bounce without one.
	Recipients []BounceRecipient `json:"recipients,omitempty"`
}

// BounceRecipient is one per-recipient block of a delivery status.
type BounceRecipient struct {
	// Address is the Final-Recipient (else Original-Recipient) address,
	// lowercased.
	Address string `json:"address,omitempty"`
	// Action is failed, delayed, delivered, relayed or expanded (RFC 3464
	// section 2.3.3), lowercased.
	Action string `json:"action,omitempty"`
	// Status is the enhanced status code, such as 5.1.1 (RFC 3463).
	Status string `json:"status,omitempty"`
	// Diagnostic is the Diagnostic-Code, such as the remote server's reply.
	Diagnostic string `json:"diagnostic,omitempty"`
}

// Mail is a parsed mail. Every string is valid UTF-8 without NUL.
type Mail struct {
	// MessageID is the Message-ID without angle brackets; empty when the
	// mail has none.
	MessageID string `json:"message_id,omitempty"`
	// InReplyTo is the first message id of In-Reply-To, without angle
	// brackets.
	InReplyTo string `json:"in_reply_to,omitempty"`
	// References are the message ids of References, oldest first, without
	// angle brackets. Very long chains keep the first (the thread root) and
	// the most recent ones.
	References []string `json:"references,omitempty"`
	// ThreadIndex is Outlook's Thread-Index header, base64 without spaces,
	// cut to maxThreadIndexBytes: its first 22 bytes name the conversation
	// (a FILETIME and a GUID), each reply appends 5. Empty when absent.
	ThreadIndex string `json:"thread_index,omitempty"`
	// ThreadTopic is Outlook's Thread-Topic header, decoded: the
	// conversation's subject without reply and forward prefixes. Empty when
	// absent.
	ThreadTopic string `json:"thread_topic,omitempty"`
	// From is the first address of From. When From is missing, empty
	// ("From: <>") or unreadable, it is the first address of Reply-To, else
	// Sender, else Return-Path, and a warning says which; zero when none
	// has one.
	From Address `json:"from"`
	// To are the addresses of To.
	To []Address `json:"to,omitempty"`
	// Cc are the addresses of Cc.
	Cc []Address `json:"cc,omitempty"`
	// ReplyTo are the addresses of Reply-To.
	ReplyTo []Address `json:"reply_to,omitempty"`
	// Subject is the decoded subject (RFC 2047), on one line, at most
	// events.MaxSubjectBytes.
	Subject string `json:"subject"`
	// Date is the Date header; zero when missing or unreadable.
	Date time.Time `json:"date,omitzero"`
	// Text is the plain-text body with LF line ends, derived from the HTML
	// when the mail has no text part. At most Limits.MaxTextBytes; see
	// TextTruncated.
	Text string `json:"text"`
	// TextTruncated reports that Text was cut and ends in TruncationMarker.
	TextTruncated bool `json:"text_truncated,omitempty"`
	// HTML is the HTML body, sanitised; empty when the mail has none.
	HTML string `json:"html,omitempty"`
	// Attachments are the parts to download, in MIME order.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Inlines are the parts shown inside the body, in MIME order.
	Inlines []Attachment `json:"inlines,omitempty"`
	// OmittedAttachments counts the attachments and inlines beyond
	// events.MaxAttachments, neither stored nor listed.
	OmittedAttachments int `json:"omitted_attachments,omitempty"`
	// Automatic reports that a machine sent this mail (auto-reply, bounce,
	// mailing list): it must never trigger an automatic answer (RFC 3834).
	Automatic bool `json:"automatic"`
	// AutomaticReason says which header or structure made it Automatic,
	// such as "Auto-Submitted: auto-replied".
	AutomaticReason string `json:"automatic_reason,omitempty"`
	// Bounce is set when the mail is a delivery status notification.
	Bounce *Bounce `json:"bounce,omitempty"`
	// ContentHash is the hex SHA-256 of From.Address, Date, Subject and
	// Text; it recognises the same mail after a UIDVALIDITY resync gives it
	// a new UID.
	ContentHash string `json:"content_hash"`
	// Warnings are the problems the parser recovered from.
	Warnings []string `json:"warnings,omitempty"`
}

// Parse parses a raw mail. It fails with ErrTooLarge or ErrUnparseable
// (wrapped with the reason) when the mail cannot be had, and with another
// error, worth retrying, when storing an attachment fails or ctx is done.
func (p *Parser) Parse(ctx context.Context, raw []byte) (*Mail, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mailparse: %w", err)
	}
	if int64(len(raw)) > p.limits.MaxRawBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(raw), p.limits.MaxRawBytes)
	}
	if n := countFold(raw, "multipart/"); n > p.limits.MaxMultiparts {
		return nil, fmt.Errorf("%w: more than %d multipart containers", ErrUnparseable, p.limits.MaxMultiparts)
	}
	raw, skipped := skipLead(raw)
	env, err := p.readEnvelope(ctx, raw)
	if err != nil {
		return nil, err
	}
	root := env.Root
	if !hasMailHeader(root) {
		return nil, fmt.Errorf("%w: no From, Sender, To, Date, Subject or Message-ID header", ErrUnparseable)
	}

	m := &Mail{}
	w := &warnings{}
	if skipped > 0 {
		w.add(fmt.Sprintf("%d line(s) before the header skipped", skipped))
	}
	for _, e := range env.Errors {
		if e.Name == enmime.ErrorPlainTextFromHTML && !e.Severe {
			continue // expected for HTML-only mail, not a problem
		}
		if e.Name == enmime.ErrorMissingContentType && !e.Severe {
			continue // text/plain, RFC 2045 section 5.2
		}
		w.add(cleanLine(e.Error()))
	}

	m.MessageID = firstID(root.Header.Get("Message-Id"))
	m.InReplyTo = firstID(root.Header.Get("In-Reply-To"))
	m.References = capReferences(allIDs(root.Header.Get("References")))
	m.To = p.addresses(root, "To", w)
	m.Cc = p.addresses(root, "Cc", w)
	m.ReplyTo = p.addresses(root, "Reply-To", w)
	m.From = p.sender(root, m.ReplyTo, w)
	cs := newCharsets(root)
	m.Subject = truncateUTF8(cleanLine(cs.header(root.Header.Get("Subject"), "Subject", w)), events.MaxSubjectBytes)
	m.ThreadIndex, m.ThreadTopic = outlookThread(root, cs, w)
	if root.Header.Get("Date") != "" {
		if d, err := env.Date(); err == nil {
			m.Date = d
		} else {
			w.add("unreadable Date header: " + cleanLine(err.Error()))
		}
	}

	lay := p.lay(ctx, root, cs, w)
	p.bodies(lay, m, w)
	if err := p.attachments(ctx, lay, m, w); err != nil {
		return nil, err
	}
	p.classify(root, env, m)
	m.ContentHash = contentHash(m)
	m.Warnings = w.list()
	return m, nil
}

// readEnvelope runs enmime, turning its failures, panics included, into
// ErrUnparseable.
func (p *Parser) readEnvelope(ctx context.Context, raw []byte) (*enmime.Envelope, error) {
	var env *enmime.Envelope
	err := p.guard(ctx, raw, func(r io.Reader) (err error) {
		env, err = p.mime.ReadEnvelope(r)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case env.Root == nil:
		return nil, fmt.Errorf("%w: no MIME structure", ErrUnparseable)
	}
	return env, nil
}

// readInner parses a mail found inside another (the content of S/MIME
// signed data) under the same bounds as the outer one.
func (p *Parser) readInner(ctx context.Context, raw []byte) (*enmime.Part, error) {
	if n := countFold(raw, "multipart/"); n > p.limits.MaxMultiparts {
		return nil, fmt.Errorf("%w: more than %d multipart containers", ErrUnparseable, p.limits.MaxMultiparts)
	}
	var root *enmime.Part
	err := p.guard(ctx, raw, func(r io.Reader) (err error) {
		root, err = p.mime.ReadParts(r)
		return err
	})
	if err == nil && root == nil {
		err = fmt.Errorf("%w: no MIME structure", ErrUnparseable)
	}
	return root, err
}

// guard runs an enmime read of raw, bounded by readBudget and ctx, and
// turns its failures, panics included, into ErrUnparseable.
func (p *Parser) guard(ctx context.Context, raw []byte, read func(io.Reader) error) (err error) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case abortParse:
			err = r.err
		default:
			// The input comes from anyone on the Internet; a bug in a
			// dependency must cost one dead-lettered mail, not the
			// connector.
			err = fmt.Errorf("%w: %w: %v", ErrUnparseable, errParserPanic, r)
		}
	}()
	br := &budgetReader{ctx: ctx, r: bytes.NewReader(raw), left: readBudget(len(raw))}
	if err := read(br); err != nil {
		return fmt.Errorf("%w: %s", ErrUnparseable, cleanLine(err.Error()))
	}
	return nil
}

// maxLeadLines bounds the lines skipLead looks through for a header.
const maxLeadLines = 8

// skipLead drops what stands before the header of a mail: a byte order
// mark, blank lines, an mbox "From " line or other lines that are not
// header fields, when a header field follows within maxLeadLines lines.
// enmime would take the first line for the start of a header and fail, or
// end the header at a blank line. It returns the mail and how many lines
// it dropped.
func skipLead(raw []byte) ([]byte, int) {
	b := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	if isHeaderLine(b) {
		return b, 0
	}
	rest := b
	for n := 1; n <= maxLeadLines; n++ {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if isHeaderLine(rest) {
			return rest, n
		}
	}
	return b, 0
}

// isHeaderLine reports whether b starts with a header field: a name of
// printable ASCII, then a colon (white space before it is tolerated).
func isHeaderLine(b []byte) bool {
	i := 0
	for i < len(b) && b[i] > ' ' && b[i] < 0x7f && b[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i < len(b) && b[i] == ':'
}

// readBudget is how many Read calls enmime may make on a raw mail of n
// bytes. Its bufio readers read 4 KiB at a time, so a sane parse makes
// about one call per 4 KiB plus a few per part. But when nested
// multiparts end without their closing boundaries, each level reads the
// end of its input through the level below two or three times: 2^depth
// calls, minutes for a 2 KiB mail of depth 30.
func readBudget(n int) int {
	return 50_000 + n/256
}

// abortParse is the panic value budgetReader aborts enmime with; err is
// what Parse returns.
type abortParse struct{ err error }

// budgetReader feeds enmime and stops it once it has read too often or its
// context is done. It stops it with a panic that guard recovers:
// an error would not do, because enmime's boundary reader retries on
// errors and the work it does grows rather than ends.
type budgetReader struct {
	ctx  context.Context
	r    *bytes.Reader
	left int
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		panic(abortParse{fmt.Errorf("%w: MIME structure too costly to parse (nested multiparts without closing boundaries)", ErrUnparseable)})
	}
	b.left--
	if b.left%256 == 0 {
		if err := b.ctx.Err(); err != nil {
			panic(abortParse{fmt.Errorf("mailparse: %w", err)})
		}
	}
	return b.r.Read(p)
}

// hasMailHeader reports whether the root has any header a mail has; it
// tells a mail from arbitrary bytes that happen to parse as MIME.
func hasMailHeader(root *enmime.Part) bool {
	for _, h := range []string{"From", "Sender", "To", "Date", "Subject", "Message-Id"} {
		if len(root.Header.Values(h)) > 0 {
			return true
		}
	}
	return false
}

// countFold counts the occurrences of the lowercase ASCII string sub in b,
// ignoring ASCII case (media types are ASCII tokens).
func countFold(b []byte, sub string) int {
	n := 0
	for i := 0; i+len(sub) <= len(b); i++ {
		j := 0
		for j < len(sub) && lowerASCII(b[i+j]) == sub[j] {
			j++
		}
		if j == len(sub) {
			n++
			i += len(sub) - 1
		}
	}
	return n
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// warnings collects Mail.Warnings up to maxWarnings.
type warnings struct {
	items   []string
	dropped int
}

func (w *warnings) add(s string) {
	if len(w.items) >= maxWarnings {
		w.dropped++
		return
	}
	w.items = append(w.items, truncateUTF8(s, 512))
}

func (w *warnings) list() []string {
	if w.dropped > 0 {
		return append(w.items, fmt.Sprintf("%d more warnings dropped", w.dropped))
	}
	return w.items
}
