package events

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Event types. The payload struct of each is below.
const (
	// TypeMessageReceived: a customer message arrived on a channel.
	TypeMessageReceived = "sb.message.received.v1"
	// TypeChatChannel: a chat channel was created, changed or deleted.
	TypeChatChannel = "sb.config.chat_channel.v1"
	// TypeConversationChanged: an action changed a conversation.
	TypeConversationChanged = "sb.conversation.changed.v1"
	// TypeConversationMessage: a message joined a conversation.
	TypeConversationMessage = "sb.conversation.message.v1"
	// TypeMessageTranslated: a message's translation changed (requested,
	// done or failed); its data is a ConversationMessage whose message
	// carries the translation.
	TypeMessageTranslated = "sb.conversation.message_translated.v1"
	// TypeSendMessage: a command to a connector to send a message.
	TypeSendMessage = "sb.message.send.v1"
	// TypeDelivery: what a channel says of a sent message.
	TypeDelivery = "sb.message.delivery.v1"
	// TypeQueue, TypeSkill, TypeUser: configuration for routing.
	TypeQueue = "sb.config.queue.v1"
	TypeSkill = "sb.config.skill.v1"
	TypeUser  = "sb.config.user.v1"
)

// Channels.
const (
	ChannelChat  = "chat"
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// Limits shared by the connectors that produce and the inbox that consumes.
const (
	// MaxTextBytes bounds the text of one message.
	MaxTextBytes = 64 << 10
	// MaxIDBytes bounds identifiers that come from outside (message ids,
	// thread keys, identities).
	MaxIDBytes = 256
	// MaxNameBytes bounds display names.
	MaxNameBytes = 256
)

// Party is a customer as a channel identifies them.
type Party struct {
	// Identity is the channel's address of the customer: a chat user id, an
	// email address, an E.164 phone number.
	Identity string `json:"identity"`
	// Name is the display name, when the channel gives one.
	Name string `json:"name,omitempty"`
	// AvatarURL is the customer's picture, when the channel gives one.
	AvatarURL string `json:"avatar_url,omitempty"`
}

// MessageReceived is the data of TypeMessageReceived. The key of its record
// is ConversationKey(TenantID, Channel, ChannelAccountID, ThreadKey).
type MessageReceived struct {
	// TenantID owns the channel account.
	TenantID string `json:"tenant_id"`
	// Channel is chat, email or sms.
	Channel string `json:"channel"`
	// ChannelAccountID is the chat channel, mailbox or number it arrived on.
	ChannelAccountID string `json:"channel_account_id"`
	// ExternalID is the channel's own id of the message; the inbox stores a
	// message once per (channel account, external id).
	ExternalID string `json:"external_id"`
	// ThreadKey names the customer thread inside the channel account: a
	// chat session, a phone number pair, an email thread root.
	ThreadKey string `json:"thread_key"`
	// From is the customer.
	From Party `json:"from"`
	// Text is the plain-text body.
	Text string `json:"text"`
	// SentAt is when the customer sent it, as the channel reports it.
	SentAt time.Time `json:"sent_at,omitzero"`
	// ReceivedAt is when Switchboard accepted it from the channel.
	ReceivedAt time.Time `json:"received_at"`
	// Metadata carries channel-specific fields, shown to agents as is.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Subject is the subject of an email.
	Subject string `json:"subject,omitempty"`
	// HTML is the body as HTML, already sanitised, when the channel has
	// one (email); Text is always set too.
	HTML string `json:"html,omitempty"`
	// Automatic marks a message a machine sent (an auto-reply, a bounce, a
	// list's mail): nothing answers it automatically.
	Automatic bool `json:"automatic,omitempty"`
	// Attachments are the message's files, stored in the blob store.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Bot marks a chat message the channel's bot wrote to the customer
	// (a chat platform's own bot answering before an agent): shown as the
	// bot's in the conversation, not as the customer's.
	Bot *BotAuthor `json:"bot,omitempty"`
}

// BotAuthor is the bot that wrote a message.
type BotAuthor struct {
	// Name is what agents see, such as the bot platform's bot name.
	Name string `json:"name"`
}

// Attachment is a file of a message, kept in the blob store under BlobKey.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	// BlobKey locates the content in the blob store; empty when Skipped.
	BlobKey string `json:"blob_key,omitempty"`
	// ContentID is set on inline parts that the HTML body refers to.
	ContentID string `json:"content_id,omitempty"`
	Inline    bool   `json:"inline,omitempty"`
	// Skipped says why the content was not kept (too large, too many).
	Skipped string `json:"skipped,omitempty"`
}

// Limits of the email-specific fields of MessageReceived.
const (
	MaxSubjectBytes  = 1024
	MaxHTMLBytes     = 256 << 10
	MaxAttachments   = 64
	MaxBlobKeyBytes  = 512
	MaxMIMETypeBytes = 255
)

// FieldError names a field of a payload and what is wrong with it.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the payload; the error is a *FieldError.
func (m *MessageReceived) Validate() error {
	checks := []struct {
		ok            bool
		field, reason string
	}{
		{m.TenantID != "", "tenant_id", "is required"},
		{m.Channel == ChannelChat || m.Channel == ChannelEmail || m.Channel == ChannelSMS, "channel", fmt.Sprintf("must be chat, email or sms, got %q", m.Channel)},
		{m.ChannelAccountID != "", "channel_account_id", "is required"},
		{idOK(m.ExternalID), "external_id", "is required, at most 256 bytes of valid UTF-8"},
		{idOK(m.ThreadKey), "thread_key", "is required, at most 256 bytes of valid UTF-8"},
		{idOK(m.From.Identity), "from.identity", "is required, at most 256 bytes of valid UTF-8"},
		{len(m.From.Name) <= MaxNameBytes && textOK(m.From.Name), "from.name", "must be at most 256 bytes of valid UTF-8"},
		{len(m.From.AvatarURL) <= 2048 && textOK(m.From.AvatarURL), "from.avatar_url", "must be at most 2048 bytes of valid UTF-8"},
		{strings.TrimSpace(m.Text) != "", "text", "is required"},
		{len(m.Text) <= MaxTextBytes && textOK(m.Text), "text", "must be at most 65536 bytes of valid UTF-8 without NUL"},
		{!m.ReceivedAt.IsZero(), "received_at", "is required"},
	}
	for _, c := range checks {
		if !c.ok {
			return &FieldError{Field: c.field, Reason: c.reason}
		}
	}
	if err := m.validateMail(); err != nil {
		return err
	}
	return ValidateMetadata(m.Metadata)
}

func (m *MessageReceived) validateMail() error {
	if len(m.Subject) > MaxSubjectBytes || !textOK(m.Subject) {
		return &FieldError{Field: "subject", Reason: "must be at most 1024 bytes of valid UTF-8 without NUL"}
	}
	if len(m.HTML) > MaxHTMLBytes || !textOK(m.HTML) {
		return &FieldError{Field: "html", Reason: "must be at most 262144 bytes of valid UTF-8 without NUL"}
	}
	if len(m.Attachments) > MaxAttachments {
		return &FieldError{Field: "attachments", Reason: fmt.Sprintf("has %d entries, at most %d are allowed", len(m.Attachments), MaxAttachments)}
	}
	for i, a := range m.Attachments {
		field := fmt.Sprintf("attachments[%d]", i)
		switch {
		case len(a.Name) > MaxNameBytes || !textOK(a.Name):
			return &FieldError{Field: field + ".name", Reason: "must be at most 256 bytes of valid UTF-8 without NUL"}
		case len(a.ContentType) > MaxMIMETypeBytes || !textOK(a.ContentType):
			return &FieldError{Field: field + ".content_type", Reason: "must be at most 255 bytes of valid UTF-8 without NUL"}
		case a.Size < 0:
			return &FieldError{Field: field + ".size", Reason: "must not be negative"}
		case len(a.BlobKey) > MaxBlobKeyBytes || !textOK(a.BlobKey):
			return &FieldError{Field: field + ".blob_key", Reason: "must be at most 512 bytes of valid UTF-8 without NUL"}
		case (a.BlobKey == "") == (a.Skipped == ""):
			return &FieldError{Field: field + ".blob_key", Reason: "is required unless skipped says why the content was not kept, and only then"}
		case len(a.ContentID) > MaxIDBytes || !textOK(a.ContentID) || len(a.Skipped) > MaxNameBytes || !textOK(a.Skipped):
			return &FieldError{Field: field + ".content_id", Reason: "content_id and skipped must be at most 256 bytes of valid UTF-8"}
		}
	}
	return nil
}

// Metadata limits.
const (
	MaxMetadataEntries    = 32
	MaxMetadataKeyBytes   = 64
	MaxMetadataValueBytes = 1024
)

// ValidateMetadata checks channel metadata: at most 32 entries, keys of at
// most 64 bytes and values of at most 1024, valid UTF-8 without NUL.
func ValidateMetadata(md map[string]string) error {
	if len(md) > MaxMetadataEntries {
		return &FieldError{Field: "metadata", Reason: fmt.Sprintf("has %d entries, at most %d are allowed", len(md), MaxMetadataEntries)}
	}
	for k, v := range md {
		if k == "" || len(k) > MaxMetadataKeyBytes || !textOK(k) {
			return &FieldError{Field: "metadata", Reason: fmt.Sprintf("key %q must be 1 to 64 bytes of valid UTF-8", k)}
		}
		if len(v) > MaxMetadataValueBytes || !textOK(v) {
			return &FieldError{Field: "metadata." + k, Reason: "must be at most 1024 bytes of valid UTF-8"}
		}
	}
	return nil
}

func idOK(s string) bool {
	return s != "" && len(s) <= MaxIDBytes && textOK(s)
}

// textOK accepts valid UTF-8 without NUL, which PostgreSQL text refuses.
func textOK(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// ConversationKey is the Kafka key of every record about one customer
// thread, so that all of them land on one partition, in order.
func ConversationKey(tenantID, channel, channelAccountID, threadKey string) []byte {
	return []byte(tenantID + "/" + channel + "/" + channelAccountID + "/" + threadKey)
}

// ChatChannel is the data of TypeChatChannel, published on TopicConfig with
// key ConfigKey("chat_channel", ID).
type ChatChannel struct {
	// ID identifies the channel in its webhook URL.
	ID string `json:"id"`
	// TenantID owns the channel.
	TenantID string `json:"tenant_id"`
	// Name is what agents see.
	Name string `json:"name"`
	// Secrets sign webhooks; more than one during a rotation.
	Secrets []string `json:"secrets"`
	// Deleted channels refuse every webhook.
	Deleted bool `json:"deleted,omitempty"`
	// Outbound is where the channel's replies, bot commands and state
	// changes are delivered; nil when the tenant set no endpoint (replies
	// then wait, pending, until one is set).
	Outbound *ChatOutbound `json:"outbound,omitempty"`
}

// ConfigKey is the key of a configuration entity on TopicConfig.
func ConfigKey(kind, id string) []byte { return []byte(kind + "/" + id) }

// Actor says who did something.
type Actor struct {
	// Kind is user, api_token, customer or system.
	Kind string `json:"kind"`
	// ID is the user, token or contact id.
	ID string `json:"id,omitempty"`
}

// ConversationChanged is the data of TypeConversationChanged: the action,
// who did it, the state before and after, and the conversation after it.
// Conversation is the inbox's representation (see its API), passed as is.
type ConversationChanged struct {
	Action string `json:"action"`
	Actor  Actor  `json:"actor"`
	From   string `json:"from_state,omitempty"`
	To     string `json:"to_state"`
	Reason string `json:"reason,omitempty"`
	// Data is what the audit log records of the action (the missed
	// agent of an expired offer, a transfer's target), as is.
	Data         json.RawMessage `json:"data,omitempty"`
	Conversation json.RawMessage `json:"conversation"`
}

// ConversationMessage is the data of TypeConversationMessage: the message,
// and of its conversation the id, state, queue and assignees.
type ConversationMessage struct {
	Message      json.RawMessage `json:"message"`
	Conversation json.RawMessage `json:"conversation"`
}

// SendMessage is the data of TypeSendMessage, on TopicOutbound(channel),
// keyed by conversation.
type SendMessage struct {
	MessageID        string `json:"message_id"`
	ConversationID   string `json:"conversation_id"`
	TenantID         string `json:"tenant_id"`
	Channel          string `json:"channel"`
	ChannelAccountID string `json:"channel_account_id"`
	ThreadKey        string `json:"thread_key"`
	// To is the customer's identity on the channel.
	To string `json:"to"`
	// InReplyTo is the channel's id of the customer message answered.
	InReplyTo string   `json:"in_reply_to,omitempty"`
	Text      string   `json:"text"`
	Subject   string   `json:"subject,omitempty"`
	CC        []string `json:"cc,omitempty"`
	AuthorID  string   `json:"author_id,omitempty"`
	// HTML, when set, is the text's alternative as sanitised HTML (email):
	// it goes out as the text/html part instead of the escaped text.
	HTML string `json:"html,omitempty"`
	// ReplyTo, when set, is where the customer's answer should go (an
	// agent's own address) instead of the channel account's.
	ReplyTo string `json:"reply_to,omitempty"`
	// Attachments are files to send with the text, in the blob store.
	Attachments []Attachment `json:"attachments,omitempty"`
	// Automatic marks a message Switchboard sent on its own (an
	// acknowledgement, a waiting message, the smart-close question): email
	// carries Auto-Submitted: auto-replied (RFC 3834) so that the
	// customer's auto-responder does not answer it.
	Automatic bool `json:"automatic,omitempty"`
	// Choices are answers the customer may pick instead of typing, where
	// the channel shows buttons (chat): a chat front end posts the chosen
	// one back as a message whose metadata "choice" is its ID.
	Choices []Choice `json:"choices,omitempty"`
	// Replay counts the times an admin asked to send the message again
	// after it failed: a connector whose ledger holds the send as failed
	// sends it again when Replay is higher than the replays it made.
	Replay int `json:"replay,omitempty"`
}

// Choice is one answer offered with a message.
type Choice struct {
	// ID comes back in the customer's message metadata "choice".
	ID string `json:"id"`
	// Label is what the button shows.
	Label string `json:"label"`
}

// Delivery statuses, in the order a message goes through them.
const (
	DeliveryPending   = "pending"
	DeliverySent      = "sent"
	DeliveryDelivered = "delivered"
	DeliveryRead      = "read"
	DeliveryFailed    = "failed"
)

// DeliveryRank orders statuses: a status never replaces one of a higher
// rank (callbacks arrive out of order). Failed outranks everything but
// read: a message read was delivered, whatever came after.
func DeliveryRank(status string) int {
	switch status {
	case DeliveryPending:
		return 0
	case DeliverySent:
		return 1
	case DeliveryDelivered:
		return 2
	case DeliveryFailed:
		return 3
	case DeliveryRead:
		return 4
	}
	return -1
}

// Delivery is the data of TypeDelivery, on TopicDelivery.
type Delivery struct {
	MessageID string    `json:"message_id"`
	TenantID  string    `json:"tenant_id"`
	Status    string    `json:"status"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
	// OptedOut says the recipient opted out of the channel (an SMS
	// customer who texted STOP, as Twilio's error 21610 reports): nothing
	// more may be sent to them until they opt back in.
	OptedOut bool `json:"opted_out,omitempty"`
}

// Queue, Skill and User are configuration for routing, on TopicConfig.
type Queue struct {
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	Deleted  bool   `json:"deleted,omitempty"`
	// Automation is what the scheduler needs of the queue's own settings;
	// nil on skills.
	Automation *QueueAutomation `json:"automation,omitempty"`
	// Routing is how the queue hands out its conversations; nil on
	// skills, and on queues announced before routing settings existed
	// (read as DefaultQueueRouting).
	Routing *QueueRouting `json:"routing,omitempty"`
}

// QueueAutomation is a queue's own automation: where set, it wins over the
// tenant's.
type QueueAutomation struct {
	// WaitingMessageID is the waiting message assigned to the queue.
	WaitingMessageID string `json:"waiting_message_id,omitempty"`
	// Acknowledgement says the queue has its own acknowledgement.
	Acknowledgement bool `json:"acknowledgement,omitempty"`
	// InactivityMinutes, when positive, raises an inactivity alert on an
	// assigned conversation of the queue that saw no activity for that
	// long.
	InactivityMinutes float64 `json:"inactivity_minutes,omitempty"`
}

// Routing modes of a queue.
const (
	// RoutingPull: agents take conversations from the queue themselves.
	RoutingPull = "pull"
	// RoutingPush: the router offers each conversation to one agent.
	RoutingPush = "push"
	// RoutingBoth: the router offers, and agents may also take.
	RoutingBoth = "both"
)

// QueueRouting is a queue's routing settings.
type QueueRouting struct {
	// Mode is RoutingPull, RoutingPush or RoutingBoth.
	Mode string `json:"mode"`
	// OfferSeconds is how long an agent has to accept an offer.
	OfferSeconds int `json:"offer_seconds"`
	// MissedOfferAway makes an agent who lets an offer lapse away.
	MissedOfferAway bool `json:"missed_offer_away,omitempty"`
	// Weights is what one conversation of each channel counts against an
	// agent's capacity (chat 1, SMS 1, email 0.5, say); a channel not
	// named counts 1.
	Weights map[string]float64 `json:"weights,omitempty"`
	// AgingSeconds is how long a conversation waits to gain one level of
	// priority: a waiting conversation overtakes one of a higher priority
	// that arrived that much later per level, so none starves.
	AgingSeconds int `json:"aging_seconds"`
	// RequeueOfflineSeconds, when positive, puts the conversations held
	// by an agent offline for that long back in the queue.
	RequeueOfflineSeconds int `json:"requeue_offline_seconds,omitempty"`
}

// DefaultQueueRouting is the routing of a queue nobody configured: pull,
// as before push routing existed.
func DefaultQueueRouting() QueueRouting {
	return QueueRouting{Mode: RoutingPull, OfferSeconds: 30, AgingSeconds: 600}
}

// Weight is what a conversation of channel counts against capacity.
func (r QueueRouting) Weight(channel string) float64 {
	if w, ok := r.Weights[channel]; ok {
		return w
	}
	return 1
}

// Validate checks the settings; the error is a *FieldError.
func (r QueueRouting) Validate() error {
	switch r.Mode {
	case RoutingPull, RoutingPush, RoutingBoth:
	default:
		return &FieldError{Field: "mode", Reason: fmt.Sprintf("must be pull, push or both, got %q", r.Mode)}
	}
	if r.OfferSeconds < 5 || r.OfferSeconds > 3600 {
		return &FieldError{Field: "offer_seconds", Reason: "must be between 5 and 3600"}
	}
	if r.AgingSeconds < 1 || r.AgingSeconds > 7*24*3600 {
		return &FieldError{Field: "aging_seconds", Reason: "must be between 1 and 604800"}
	}
	if r.RequeueOfflineSeconds < 0 || r.RequeueOfflineSeconds > 7*24*3600 {
		return &FieldError{Field: "requeue_offline_seconds", Reason: "must be between 0 (never) and 604800"}
	}
	for ch, w := range r.Weights {
		switch ch {
		case ChannelChat, ChannelEmail, ChannelSMS:
		default:
			return &FieldError{Field: "weights." + ch, Reason: "is not a channel (chat, email, sms)"}
		}
		if w < 0.01 || w > 100 || math.IsNaN(w) {
			return &FieldError{Field: "weights." + ch, Reason: "must be between 0.01 and 100"}
		}
	}
	return nil
}

// TypePresence: an agent's presence changed, on TopicConfig with key
// ConfigKey("presence", UserID); compaction keeps each agent's latest.
const TypePresence = "sb.config.presence.v1"

// Presence is an agent's presence as they set it. Whether they are still
// connected is in Redis (heartbeats); this says what they chose, and when.
type Presence struct {
	TenantID string `json:"tenant_id"`
	UserID   string `json:"user_id"`
	// Status is online, away or offline.
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
	// Reason says why, when it was not the agent's choice
	// (missed_offer).
	Reason string `json:"reason,omitempty"`
}

// Skill is a category agents are good at.
type Skill = Queue

// User is what routing knows of a user; never credentials.
type User struct {
	ID          string   `json:"id"`
	TenantID    string   `json:"tenant_id"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
	Languages   []string `json:"languages"`
	Capacity    int      `json:"capacity"`
	QueueIDs    []string `json:"queue_ids"`
	SkillIDs    []string `json:"skill_ids"`
	Disabled    bool     `json:"disabled,omitempty"`
}

// TypeMailbox: a mailbox was created, changed or deleted, on TopicConfig
// with key ConfigKey("mailbox", ID).
const TypeMailbox = "sb.config.mailbox.v1"

// Transport security of an IMAP or SMTP connection.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
)

// MailServer is how the email connector reaches one IMAP or SMTP server.
// Password and OAuth2Token are secrets: they travel on the config topic
// (see docs/adr/0004) and are never logged nor returned by the API.
type MailServer struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// TLS is none, starttls or tls.
	TLS      string `json:"tls"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// OAuth2Token authenticates with XOAUTH2 instead of the password.
	OAuth2Token string `json:"oauth2_token,omitempty"`
	// InsecureSkipVerify accepts any server certificate (test servers only).
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// Mailbox is the data of TypeMailbox: a tenant's shared mailbox, read over
// IMAP and answered over SMTP.
type Mailbox struct {
	// ID is the channel account id of the mail it receives.
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	// Address is the mailbox's address, the From of replies.
	Address string `json:"address"`
	// DisplayName is the From display name of replies.
	DisplayName string     `json:"display_name,omitempty"`
	IMAP        MailServer `json:"imap"`
	// Folder is the IMAP folder synchronised; INBOX when empty.
	Folder string `json:"folder,omitempty"`
	// MarkSeen sets \Seen on ingested mail; MoveTo moves it to that folder.
	// By default the connector changes nothing on the server.
	MarkSeen bool       `json:"mark_seen,omitempty"`
	MoveTo   string     `json:"move_to,omitempty"`
	SMTP     MailServer `json:"smtp"`
	// SentFolder, when set, receives a copy of every reply over IMAP.
	SentFolder string `json:"sent_folder,omitempty"`
	// ReplyDomain, when set, makes replies carry Reply-To
	// reply+<conversation token>@ReplyDomain.
	ReplyDomain string `json:"reply_domain,omitempty"`
	// Deleted mailboxes stop syncing and sending.
	Deleted bool `json:"deleted,omitempty"`
}

// TypeSMSAccount: a Twilio account and the numbers it receives on, on
// TopicConfig with key ConfigKey("sms_account", ID).
const TypeSMSAccount = "sb.config.sms_account.v1"

// SMSAccount is the data of TypeSMSAccount. AuthToken and APIKeySecret are
// secrets: they travel on the config topic (see docs/adr/0004) and are
// never logged nor returned by the API.
type SMSAccount struct {
	// ID is the channel account id of the messages it receives.
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
	// AccountSID is the Twilio account (AC...).
	AccountSID string `json:"account_sid"`
	// AuthToken signs Twilio's webhooks to us; with no API key it also
	// authenticates our calls to Twilio.
	AuthToken string `json:"auth_token"`
	// APIKeySID and APIKeySecret, when set, authenticate our calls to
	// Twilio instead of the auth token.
	APIKeySID    string `json:"api_key_sid,omitempty"`
	APIKeySecret string `json:"api_key_secret,omitempty"`
	// Numbers are the E.164 numbers the account receives on and sends from.
	Numbers []string `json:"numbers,omitempty"`
	// MessagingServiceSIDs are the Messaging Services (MG...) it receives
	// on; replies to a conversation of one go out through it.
	MessagingServiceSIDs []string `json:"messaging_service_sids,omitempty"`
	// Deleted accounts refuse every webhook and send nothing.
	Deleted bool `json:"deleted,omitempty"`
}
