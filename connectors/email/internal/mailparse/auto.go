package mailparse

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	"github.com/jhillyerd/enmime/v2"
	"github.com/jhillyerd/enmime/v2/mediatype"
)

const (
	// maxBounceRecipients bounds Bounce.Recipients.
	maxBounceRecipients = 100
	// maxDiagnosticBytes bounds BounceRecipient.Diagnostic.
	maxDiagnosticBytes = 1024
)

// classify sets m.Automatic, m.AutomaticReason and m.Bounce.
//
// Automatic means "a machine wrote this; never answer it automatically"
// (RFC 3834 section 2), not "drop it": the connector still ingests it.
// Mailing-list mail (List-Id, List-Unsubscribe) counts as automatic too: a
// support mailbox receives newsletters and notifications through lists,
// and an auto-acknowledgement to a list would go to every subscriber or to
// a robot. A human writing to the support address through a list is rare
// enough to be answered by an agent by hand.
func (p *Parser) classify(root *enmime.Part, env *enmime.Envelope, m *Mail) {
	get := func(name string) string { return strings.ToLower(cleanLine(root.Header.Get(name))) }
	nullReturnPath := strings.Join(strings.Fields(get("Return-Path")), "") == "<>"
	ctype, ctParams, _, _ := mediatype.Parse(root.Header.Get("Content-Type"))
	reportType := strings.ToLower(ctParams["report-type"])

	if isDSN(root, ctype, reportType, m.From.Address, nullReturnPath) {
		m.Bounce = bounceInfo(root, env)
		m.Automatic, m.AutomaticReason = true, "delivery status notification"
		return
	}

	var reason string
	// RFC 3834 section 5: a keyword, then parameters or comments.
	autoSubmitted := get("Auto-Submitted")
	if i := strings.IndexAny(autoSubmitted, " \t;("); i >= 0 {
		autoSubmitted = autoSubmitted[:i]
	}
	precedence := get("Precedence")
	switch {
	case ctype == "multipart/report":
		// Read receipts (disposition-notification, RFC 8098), abuse
		// feedback (feedback-report, RFC 5965) and the like.
		reason = "multipart/report; report-type=" + reportType
	case autoSubmitted != "" && autoSubmitted != "no":
		reason = "Auto-Submitted: " + autoSubmitted
	case get("X-Autoreply") != "":
		reason = "X-Autoreply"
	case get("X-Autorespond") != "":
		reason = "X-Autorespond"
	case precedence == "bulk" || precedence == "junk" || precedence == "list" || precedence == "auto_reply":
		reason = "Precedence: " + precedence
	case p.ownLoop(root):
		reason = "X-Loop"
	case get("List-Id") != "":
		reason = "List-Id"
	case get("List-Unsubscribe") != "":
		reason = "List-Unsubscribe"
	case nullReturnPath:
		// RFC 5321 section 4.5.5: only notifications use the null
		// reverse-path.
		reason = "Return-Path: <>"
	}
	m.Automatic, m.AutomaticReason = reason != "", reason
}

// ownLoop reports whether an X-Loop header carries one of our values.
func (p *Parser) ownLoop(root *enmime.Part) bool {
	for _, v := range root.Header.Values("X-Loop") {
		v = strings.ToLower(cleanLine(v))
		for _, own := range p.loopValues {
			if strings.Contains(v, own) {
				return true
			}
		}
	}
	return false
}

// isDSN reports whether the mail is a delivery status notification: a
// multipart/report of type delivery-status (RFC 3464), any
// message/delivery-status part (some MTAs nest the report), or a mail from
// MAILER-DAEMON or postmaster with the null reverse-path (bounces of MTAs
// that predate RFC 3464).
func isDSN(root *enmime.Part, ctype, reportType, from string, nullReturnPath bool) bool {
	if ctype == "multipart/report" && (reportType == "delivery-status" || reportType == "global-delivery-status") {
		return true
	}
	if root.DepthMatchFirst(func(part *enmime.Part) bool { return isStatusType(part.ContentType) }) != nil {
		return true
	}
	local, _, _ := strings.Cut(from, "@")
	return nullReturnPath && (local == "mailer-daemon" || local == "postmaster")
}

func isStatusType(ct string) bool {
	return ct == "message/delivery-status" || ct == "message/global-delivery-status"
}

// isOriginalType reports whether a part of a report holds the original
// message or its headers (RFC 6522 section 3, RFC 6533).
func isOriginalType(ct string) bool {
	switch ct {
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers", "message/global-headers":
		return true
	}
	return false
}

// inlineMessageID finds a Message-ID header quoted in the text of a bounce
// that carries no machine-readable copy of the original.
var inlineMessageID = regexp.MustCompile(`(?im)^[ \t>]*message-id:[ \t]*(<[^>\r\n]+>)`)

// bounceInfo reads the delivery status and the original Message-ID.
func bounceInfo(root *enmime.Part, env *enmime.Envelope) *Bounce {
	b := &Bounce{}
	for _, part := range root.DepthMatchAll(func(*enmime.Part) bool { return true }) {
		switch {
		case isStatusType(part.ContentType):
			for _, r := range statusRecipients(part.Content) {
				if len(b.Recipients) < maxBounceRecipients {
					b.Recipients = append(b.Recipients, r)
				}
			}
		case isOriginalType(part.ContentType) && b.OriginalMessageID == "":
			h := readHeader(part.Content)
			b.OriginalMessageID = firstID(h.Get("Message-Id"))
		}
	}
	if b.OriginalMessageID == "" {
		if sm := inlineMessageID.FindStringSubmatch(env.Text); sm != nil {
			b.OriginalMessageID = firstID(sm[1])
		}
	}
	return b
}

// readHeader reads the header block at the start of b, leniently.
func readHeader(b []byte) textproto.MIMEHeader {
	h, _ := enmime.ReadHeader(bufio.NewReader(bytes.NewReader(b)), ignoreErrors{})
	return h
}

// ignoreErrors is an enmime.ErrorCollector that drops what it is given: a
// damaged copy of the original is not worth a warning.
type ignoreErrors struct{}

func (ignoreErrors) AddError(string, string, ...any)   {}
func (ignoreErrors) AddWarning(string, string, ...any) {}

// statusRecipients parses the body of a message/delivery-status part: a
// per-message block and per-recipient blocks of header-like fields
// separated by blank lines (RFC 3464 section 2.1).
func statusRecipients(content []byte) []BounceRecipient {
	var out []BounceRecipient
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(content), strings.NewReader("\r\n\r\n"))))
	for len(out) < maxBounceRecipients {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			rcpt := h.Get("Final-Recipient")
			if rcpt == "" {
				rcpt = h.Get("Original-Recipient")
			}
			if rcpt != "" || h.Get("Action") != "" {
				out = append(out, BounceRecipient{
					Address:    recipientAddress(rcpt),
					Action:     strings.ToLower(cleanLine(h.Get("Action"))),
					Status:     cleanLine(h.Get("Status")),
					Diagnostic: truncateUTF8(cleanLine(h.Get("Diagnostic-Code")), maxDiagnosticBytes),
				})
			}
		}
		if err != nil {
			break
		}
		if len(h) == 0 {
			// A blank line between blocks, or the padding at the end.
			if _, err := r.R.Peek(1); err != nil {
				break
			}
		}
	}
	return out
}

// recipientAddress returns the address of "rfc822; user@example.com".
func recipientAddress(v string) string {
	if _, addr, ok := strings.Cut(v, ";"); ok {
		v = addr
	}
	v = strings.Trim(strings.TrimSpace(v), "<>")
	return strings.ToLower(cleanLine(v))
}

// contentHash hashes the fields that identify a mail whatever its UID.
// NUL separates them: no field holds one.
func contentHash(m *Mail) string {
	date := ""
	if !m.Date.IsZero() {
		date = m.Date.UTC().Format(time.RFC3339)
	}
	h := sha256.New()
	for _, f := range []string{m.From.Address, date, m.Subject, m.Text} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
