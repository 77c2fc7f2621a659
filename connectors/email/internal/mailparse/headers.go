package mailparse

import (
	"errors"
	"net/mail"
	"regexp"
	"strings"

	"github.com/jhillyerd/enmime/v2"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

const (
	// maxReferences bounds Mail.References; RFC 5322 section 3.6.4 lets
	// a client trim the middle of a long chain.
	maxReferences = 100
	// maxAddresses bounds each address list.
	maxAddresses = 100
	// maxAddressBytes is the longest address kept: RFC 5321 allows 254,
	// and an event's identity 256.
	maxAddressBytes = events.MaxIDBytes
)

// firstID returns the first message id of a Message-ID or In-Reply-To
// value, or "".
func firstID(v string) string {
	if ids := allIDs(v); len(ids) > 0 {
		return ids[0]
	}
	return ""
}

// allIDs returns the message ids of a header value without angle brackets.
// Folding whitespace inside brackets is dropped. A value without brackets,
// as some broken clients write, gives its words that contain '@', or its
// only word. Ids are cut to events.MaxIDBytes so that they fit an event's
// ExternalID; the cut is deterministic, so threading still matches.
func allIDs(v string) []string {
	v = cleanLine(v)
	var ids []string
	for rest := v; ; {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '>')
		if j < 0 {
			break
		}
		if id := normID(rest[i+1 : i+1+j]); id != "" {
			ids = append(ids, id)
		}
		rest = rest[i+1+j+1:]
	}
	if len(ids) > 0 {
		return ids
	}
	words := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '<' || r == '>' })
	if len(words) == 1 {
		if id := normID(words[0]); id != "" {
			return []string{id}
		}
		return nil
	}
	for _, word := range words {
		if strings.Contains(word, "@") {
			if id := normID(word); id != "" {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func normID(s string) string {
	s = strings.Join(strings.Fields(s), "")
	return truncateUTF8(s, events.MaxIDBytes)
}

// capReferences keeps the first id, the thread root, and the most recent
// ones.
func capReferences(ids []string) []string {
	if len(ids) <= maxReferences {
		return ids
	}
	return append([]string{ids[0]}, ids[len(ids)-maxReferences+1:]...)
}

// addrSpec finds addresses in a header that net/mail cannot parse.
var addrSpec = regexp.MustCompile(`[^\s<>()",;:\[\]]+@[^\s<>()",;:\[\]]+`)

// addresses returns the addresses of the header name, every line of it.
func (p *Parser) addresses(root *enmime.Part, name string, w *warnings) []Address {
	values := root.Header.Values(name)
	if len(values) == 0 {
		return nil
	}
	// Raw bytes, not enmime's decoded header: decoding RFC 2047 first
	// would turn an encoded comma in a display name into a separator.
	// ParseAddressList decodes the names itself, once addressHeader has
	// made the raw 8-bit bytes and the encoded words UTF-8.
	raw := newCharsets(root).addressHeader(strings.Join(values, ", "), name, w)
	var out []Address
	list, err := enmime.ParseAddressList(raw)
	switch {
	case errors.Is(err, mail.ErrHeaderNotPresent):
		return nil
	case err != nil:
		w.add("unreadable " + name + " header: " + cleanLine(err.Error()))
		for _, a := range addrSpec.FindAllString(raw, maxAddresses) {
			if addr := strings.ToLower(cleanLine(a)); len(addr) <= maxAddressBytes {
				out = append(out, Address{Address: addr})
			}
		}
		return out
	}
	for _, a := range list {
		addr := strings.ToLower(cleanLine(a.Address))
		if addr == "" {
			continue
		}
		if len(addr) > maxAddressBytes {
			w.add(name + " header has an address longer than any valid one, dropped")
			continue
		}
		if len(out) == maxAddresses {
			w.add(name + " header has too many addresses, the rest are dropped")
			break
		}
		out = append(out, Address{Name: truncateUTF8(cleanLine(a.Name), events.MaxNameBytes), Address: addr})
	}
	return out
}

// maxThreadIndexBytes bounds Mail.ThreadIndex: the 22-byte root and 5
// bytes per reply take about 700 base64 characters after 100 replies.
const maxThreadIndexBytes = 1024

// outlookThread returns the Thread-Index, spaces removed and cut on a
// base64 quantum so that what is kept still decodes, and the decoded
// Thread-Topic: Outlook's PidTagConversationIndex and
// PidTagConversationTopic (MS-OXOMSG).
func outlookThread(root *enmime.Part, cs *charsets, w *warnings) (index, topic string) {
	index = strings.Join(strings.Fields(cleanLine(root.Header.Get("Thread-Index"))), "")
	if len(index) > maxThreadIndexBytes {
		index = index[:maxThreadIndexBytes-maxThreadIndexBytes%4]
	}
	topic = truncateUTF8(cleanLine(cs.header(root.Header.Get("Thread-Topic"), "Thread-Topic", w)), events.MaxSubjectBytes)
	return index, topic
}

// sender returns the first address of From. A mail without one (no From,
// "From: <>", a From without an address) is still someone's: its sender
// is the first address of replyTo (the parsed Reply-To), else of Sender,
// else of Return-Path, and a warning says which was used.
func (p *Parser) sender(root *enmime.Part, replyTo []Address, w *warnings) Address {
	if !isNullPath(root.Header.Get("From")) {
		if from := p.addresses(root, "From", w); len(from) > 0 {
			return from[0]
		}
	}
	if len(replyTo) > 0 {
		w.add("no From address: the sender is taken from Reply-To")
		return replyTo[0]
	}
	for _, name := range []string{"Sender", "Return-Path"} {
		if isNullPath(root.Header.Get(name)) {
			continue
		}
		if a := p.addresses(root, name, w); len(a) > 0 {
			w.add("no From address: the sender is taken from " + name)
			return a[0]
		}
	}
	return Address{}
}

// isNullPath reports whether a header value is the null address "<>",
// spaces aside (RFC 5321 section 4.5.5's null reverse-path).
func isNullPath(v string) bool {
	return strings.Join(strings.Fields(v), "") == "<>"
}
