package inbound

import (
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
)

// Limits of Twilio's messaging webhook that the connector enforces.
const (
	// MaxBodyChars is the longest Body Twilio delivers: 1600 characters.
	MaxBodyChars = 1600
	// MaxMedia is the most media one MMS carries.
	MaxMedia = 10
	// maxURLBytes bounds one MediaUrlN.
	maxURLBytes = 2048
	// maxGeoBytes bounds one geographic field (FromCity, ToZip, ...).
	maxGeoBytes = 256
	// maxErrorMessageChars bounds the ErrorMessage kept from a status
	// callback.
	maxErrorMessageChars = 500
)

var (
	// e164 is an international number: a plus, a country code that does
	// not start with 0, 7 to 15 digits in all (ITU-T E.164).
	e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	// messageSID is a Twilio message id: SM for SMS, MM for MMS, then 32
	// lowercase hex digits.
	messageSID = regexp.MustCompile(`^(SM|MM)[0-9a-f]{32}$`)
	// accountSID is a Twilio account id.
	accountSID = regexp.MustCompile(`^AC[0-9a-f]{32}$`)
	// mediaSID is the last path segment of a Twilio media URL.
	mediaSID = regexp.MustCompile(`^ME[0-9a-f]{32}$`)
	// errorCode is a Twilio error code.
	errorCode = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// geoFields are the form fields kept as message metadata, with the
// metadata key each becomes. Twilio derives them from the numbers and
// sends them when it knows them.
var geoFields = []struct{ form, key string }{
	{"FromCity", "from_city"},
	{"FromState", "from_state"},
	{"FromZip", "from_zip"},
	{"FromCountry", "from_country"},
	{"ToCity", "to_city"},
	{"ToState", "to_state"},
	{"ToZip", "to_zip"},
	{"ToCountry", "to_country"},
	{"MessagingServiceSid", "messaging_service_sid"},
	{"NumSegments", "num_segments"},
}

// Message is a validated messaging webhook: an SMS or MMS a customer sent
// to one of the account's numbers.
type Message struct {
	// SID is Twilio's MessageSid, the idempotency key of the message.
	SID string
	// From is the customer's E.164 number.
	From string
	// To is the account's E.164 number the customer wrote to.
	To string
	// Body is the text, possibly empty when media are attached.
	Body string
	// Media are the MMS media, in Twilio's order.
	Media []Media
	// OptOutType is what Twilio's Advanced Opt-Out recognised in the body
	// (STOP, START or HELP), when it is enabled on the sender.
	OptOutType string
	// Metadata holds the geographic and messaging-service fields.
	Metadata map[string]string
}

// Media is one MMS medium as Twilio announces it.
type Media struct {
	// URL is where Twilio serves the content, with the account's
	// credentials.
	URL string
	// ContentType is the media type Twilio declares.
	ContentType string
}

// Status is a validated status callback of a message we sent.
type Status struct {
	// MessageID is our id of the message, from the callback URL's query.
	MessageID string
	// SID is Twilio's MessageSid.
	SID string
	// TwilioStatus is MessageStatus as Twilio sent it.
	TwilioStatus string
	// ErrorCode and ErrorMessage say why a message failed.
	ErrorCode    string
	ErrorMessage string
	// To is the customer's number; set only with ErrorUnsubscribed.
	To string
}

// single refuses a form where a field appears more than once: Twilio never
// sends one, and a second value would be read by no signature check.
func single(form url.Values) error {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if len(form[k]) > 1 {
			return httpx.Invalid(fieldName(k), "appears more than once")
		}
	}
	return nil
}

// fieldName makes a form key printable in an error.
func fieldName(k string) string {
	if !utf8.ValidString(k) || len(k) > 64 || strings.ContainsRune(k, 0) {
		return "body"
	}
	return k
}

// textOK accepts valid UTF-8 without NUL, which PostgreSQL text refuses.
func textOK(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// number checks that field holds an E.164 number.
func number(form url.Values, field string) (string, error) {
	v := form.Get(field)
	switch {
	case v == "":
		return "", httpx.Invalid(field, "is required")
	case strings.HasPrefix(v, "whatsapp:"):
		return "", httpx.Invalid(field, "is a WhatsApp address; the SMS connector handles SMS and MMS only, point WhatsApp senders elsewhere")
	case strings.Contains(v, ":"):
		return "", httpx.Invalid(field, "is a channel address other than a phone number; the SMS connector handles SMS and MMS only")
	case !e164.MatchString(v):
		return "", httpx.Invalid(field, "must be an E.164 number such as +33612345678")
	}
	return v, nil
}

// ParseMessage validates the form of a messaging webhook from the Twilio
// account whose SID is account. Errors are 400 problems naming the field.
// Fields it does not know are ignored: Twilio adds some over time.
func ParseMessage(form url.Values, account string) (Message, error) {
	if err := single(form); err != nil {
		return Message{}, err
	}
	if sid := form.Get("AccountSid"); sid == "" {
		return Message{}, httpx.Invalid("AccountSid", "is required")
	} else if sid != account {
		return Message{}, httpx.Invalid("AccountSid", "is not the Twilio account of this webhook URL")
	}
	var m Message
	m.SID = form.Get("MessageSid")
	if !messageSID.MatchString(m.SID) {
		return Message{}, httpx.Invalid("MessageSid", "must be SM or MM followed by 32 lowercase hex digits")
	}
	var err error
	if m.From, err = number(form, "From"); err != nil {
		return Message{}, err
	}
	if m.To, err = number(form, "To"); err != nil {
		return Message{}, err
	}
	if m.Media, err = parseMedia(form); err != nil {
		return Message{}, err
	}
	m.Body = form.Get("Body")
	switch {
	case !textOK(m.Body):
		return Message{}, httpx.Invalid("Body", "must be valid UTF-8 without NUL")
	case utf8.RuneCountInString(m.Body) > MaxBodyChars:
		return Message{}, httpx.Invalid("Body", fmt.Sprintf("must be at most %d characters", MaxBodyChars))
	case strings.TrimSpace(m.Body) == "" && len(m.Media) == 0:
		return Message{}, httpx.Invalid("Body", "is empty and the message has no media")
	}
	switch t := form.Get("OptOutType"); t {
	case "", "STOP", "START", "HELP":
		m.OptOutType = t
	default:
		return Message{}, httpx.Invalid("OptOutType", "must be STOP, START or HELP")
	}
	for _, g := range geoFields {
		v := form.Get(g.form)
		if v == "" {
			continue
		}
		if len(v) > maxGeoBytes || !textOK(v) {
			return Message{}, httpx.Invalid(g.form, fmt.Sprintf("must be at most %d bytes of valid UTF-8", maxGeoBytes))
		}
		if m.Metadata == nil {
			m.Metadata = map[string]string{}
		}
		m.Metadata[g.key] = v
	}
	return m, nil
}

// parseMedia reads NumMedia, MediaUrlN and MediaContentTypeN, which must
// agree: one URL and one type for each N below NumMedia, none beyond.
func parseMedia(form url.Values) ([]Media, error) {
	n := 0
	if v := form.Get("NumMedia"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > MaxMedia || strconv.Itoa(n) != v {
			return nil, httpx.Invalid("NumMedia", fmt.Sprintf("must be a whole number from 0 to %d", MaxMedia))
		}
	}
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var idx string
		switch {
		case strings.HasPrefix(k, "MediaUrl"):
			idx = k[len("MediaUrl"):]
		case strings.HasPrefix(k, "MediaContentType"):
			idx = k[len("MediaContentType"):]
		default:
			continue
		}
		i, err := strconv.Atoi(idx)
		if err != nil || strconv.Itoa(i) != idx || i < 0 || i >= n {
			return nil, httpx.Invalid(fieldName(k), fmt.Sprintf("does not match NumMedia=%d", n))
		}
	}
	media := make([]Media, 0, n)
	for i := range n {
		urlField, typeField := "MediaUrl"+strconv.Itoa(i), "MediaContentType"+strconv.Itoa(i)
		raw := form.Get(urlField)
		if raw == "" {
			return nil, httpx.Invalid(urlField, fmt.Sprintf("is required when NumMedia=%d", n))
		}
		u, err := url.Parse(raw)
		if err != nil || len(raw) > maxURLBytes || !textOK(raw) || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return nil, httpx.Invalid(urlField, fmt.Sprintf("must be an https URL of at most %d bytes", maxURLBytes))
		}
		ct := form.Get(typeField)
		if ct == "" {
			return nil, httpx.Invalid(typeField, fmt.Sprintf("is required when NumMedia=%d", n))
		}
		if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > events.MaxMIMETypeBytes || !textOK(ct) {
			return nil, httpx.Invalid(typeField, "must be a media type such as image/jpeg")
		}
		media = append(media, Media{URL: raw, ContentType: ct})
	}
	return media, nil
}

// ParseStatus validates a status callback from the Twilio account whose
// SID is account, for our message messageID (from the callback URL's
// query). Errors are 400 problems naming the field.
func ParseStatus(form url.Values, account, messageID string) (Status, error) {
	if err := single(form); err != nil {
		return Status{}, err
	}
	if _, err := uuid.Parse(messageID); err != nil || len(messageID) != 36 {
		return Status{}, httpx.Invalid("message_id", "must be the message id (a UUID) Switchboard put in the callback URL")
	}
	if sid := form.Get("AccountSid"); sid == "" {
		return Status{}, httpx.Invalid("AccountSid", "is required")
	} else if sid != account {
		return Status{}, httpx.Invalid("AccountSid", "is not the Twilio account of this webhook URL")
	}
	s := Status{MessageID: strings.ToLower(messageID), SID: form.Get("MessageSid"), TwilioStatus: form.Get("MessageStatus")}
	if !messageSID.MatchString(s.SID) {
		return Status{}, httpx.Invalid("MessageSid", "must be SM or MM followed by 32 lowercase hex digits")
	}
	if s.TwilioStatus == "" {
		return Status{}, httpx.Invalid("MessageStatus", "is required")
	}
	if len(s.TwilioStatus) > 32 || !textOK(s.TwilioStatus) {
		return Status{}, httpx.Invalid("MessageStatus", "is not a Twilio message status")
	}
	s.ErrorCode = form.Get("ErrorCode")
	if s.ErrorCode != "" && !errorCode.MatchString(s.ErrorCode) {
		return Status{}, httpx.Invalid("ErrorCode", "must be a Twilio error code (digits)")
	}
	s.ErrorMessage = form.Get("ErrorMessage")
	if !textOK(s.ErrorMessage) {
		return Status{}, httpx.Invalid("ErrorMessage", "must be valid UTF-8 without NUL")
	}
	if r := []rune(s.ErrorMessage); len(r) > maxErrorMessageChars {
		s.ErrorMessage = string(r[:maxErrorMessageChars]) + "…"
	}
	// To matters only when it opts a number out; other callbacks are
	// taken whatever it holds.
	if s.ErrorCode == ErrorUnsubscribed {
		var err error
		if s.To, err = number(form, "To"); err != nil {
			return Status{}, err
		}
	}
	return s, nil
}

// ErrorUnsubscribed is Twilio's error 21610: the recipient replied STOP to
// this sender; Twilio refuses to write to them until they reply START.
const ErrorUnsubscribed = "21610"

// DeliveryStatus maps a Twilio MessageStatus to a Switchboard delivery
// status; ok is false for statuses that say nothing of delivery (those of
// inbound messages) or that Twilio may add later.
func DeliveryStatus(twilioStatus string) (status string, ok bool) {
	switch twilioStatus {
	case "accepted", "scheduled", "queued", "sending":
		return events.DeliveryPending, true
	case "sent":
		return events.DeliverySent, true
	case "delivered":
		return events.DeliveryDelivered, true
	case "read":
		return events.DeliveryRead, true
	case "undelivered", "failed", "canceled":
		return events.DeliveryFailed, true
	}
	return "", false
}

// deliveryError is the error text of a failed delivery.
func deliveryError(s Status) string {
	switch {
	case s.ErrorCode != "" && s.ErrorMessage != "":
		return "Twilio error " + s.ErrorCode + ": " + s.ErrorMessage
	case s.ErrorCode != "":
		return "Twilio error " + s.ErrorCode
	case s.ErrorMessage != "":
		return "Twilio: " + s.ErrorMessage
	}
	return "Twilio reported the message " + s.TwilioStatus
}
