package store

import (
	"context"
	"net/mail"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Mailboxes are channel accounts of the email channel: a tenant's shared
// mailbox, read over IMAP and answered over SMTP by the email connector,
// which hears of them on the config topic (events.Mailbox). Their
// settings hold the servers' credentials, sealed for the connector
// (docs/adr/0022): stored and published sealed, opened by the connector
// only, and never shown by the API, which says only whether they are
// set.

// Limits of a mailbox's fields.
const (
	// MaxFolderBytes bounds IMAP folder names; servers allow far less
	// than this in practice.
	MaxFolderBytes = 255
	// MaxSecretBytes bounds a password or an OAuth2 access token (a JWT
	// of several kilobytes is common).
	MaxSecretBytes = 8192
	// MaxUsernameBytes bounds a server login, often an email address.
	MaxUsernameBytes = 320
	// MaxAddressBytes bounds an email address (RFC 5321 paths).
	MaxAddressBytes = 320
)

// MailServerInfo is an IMAP or SMTP server of a mailbox as the API shows
// it: whether the secrets are set, never the secrets.
type MailServerInfo struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// TLS is none, starttls or tls.
	TLS                string `json:"tls"`
	Username           string `json:"username"`
	PasswordSet        bool   `json:"password_set"`
	OAuth2TokenSet     bool   `json:"oauth2_token_set"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify"`
}

// Mailbox is a mailbox as the API shows it.
type Mailbox struct {
	ID          uuid.UUID      `json:"id"`
	Name        string         `json:"name"`
	Address     string         `json:"address"`
	DisplayName string         `json:"display_name"`
	IMAP        MailServerInfo `json:"imap"`
	Folder      string         `json:"folder"`
	MarkSeen    bool           `json:"mark_seen"`
	MoveTo      string         `json:"move_to"`
	SMTP        MailServerInfo `json:"smtp"`
	SentFolder  string         `json:"sent_folder"`
	ReplyDomain string         `json:"reply_domain"`
	CreatedAt   time.Time      `json:"created_at"`
}

// MailboxSpec is what defines a mailbox, secrets included.
type MailboxSpec struct {
	Name        string
	Address     string
	DisplayName string
	IMAP        events.MailServer
	Folder      string
	MarkSeen    bool
	MoveTo      string
	SMTP        events.MailServer
	SentFolder  string
	ReplyDomain string
}

// mailboxSettings is the settings column of a mailbox: the spec but its
// name, which has a column of its own.
type mailboxSettings struct {
	Address     string            `json:"address"`
	DisplayName string            `json:"display_name,omitempty"`
	IMAP        events.MailServer `json:"imap"`
	Folder      string            `json:"folder,omitempty"`
	MarkSeen    bool              `json:"mark_seen,omitempty"`
	MoveTo      string            `json:"move_to,omitempty"`
	SMTP        events.MailServer `json:"smtp"`
	SentFolder  string            `json:"sent_folder,omitempty"`
	ReplyDomain string            `json:"reply_domain,omitempty"`
}

func (s MailboxSpec) settings() mailboxSettings {
	return mailboxSettings{Address: s.Address, DisplayName: s.DisplayName, IMAP: s.IMAP, Folder: s.Folder, MarkSeen: s.MarkSeen,
		MoveTo: s.MoveTo, SMTP: s.SMTP, SentFolder: s.SentFolder, ReplyDomain: s.ReplyDomain}
}

func (st mailboxSettings) spec(name string) MailboxSpec {
	return MailboxSpec{Name: name, Address: st.Address, DisplayName: st.DisplayName, IMAP: st.IMAP, Folder: st.Folder, MarkSeen: st.MarkSeen,
		MoveTo: st.MoveTo, SMTP: st.SMTP, SentFolder: st.SentFolder, ReplyDomain: st.ReplyDomain}
}

func serverInfo(m events.MailServer) MailServerInfo {
	return MailServerInfo{Host: m.Host, Port: m.Port, TLS: m.TLS, Username: m.Username, PasswordSet: m.Password != "",
		OAuth2TokenSet: m.OAuth2Token != "", InsecureSkipVerify: m.InsecureSkipVerify}
}

// Info is the mailbox as the API shows it.
func (s MailboxSpec) Info(id uuid.UUID, createdAt time.Time) Mailbox {
	return Mailbox{ID: id, Name: s.Name, Address: s.Address, DisplayName: s.DisplayName, IMAP: serverInfo(s.IMAP), Folder: s.Folder,
		MarkSeen: s.MarkSeen, MoveTo: s.MoveTo, SMTP: serverInfo(s.SMTP), SentFolder: s.SentFolder, ReplyDomain: s.ReplyDomain,
		CreatedAt: createdAt}
}

// Validate checks a mailbox spec; the error names the field, as the API's
// body spells it ("imap.port").
func (s MailboxSpec) Validate() error {
	if err := CheckName("name", s.Name); err != nil {
		return err
	}
	if !textOK(s.Name) {
		return domain.Invalid("name", "must be valid UTF-8 without control characters")
	}
	if a, err := mail.ParseAddress(s.Address); err != nil || a.Address != s.Address || len(s.Address) > MaxAddressBytes {
		return domain.Invalid("address", "must be a plain email address such as support@example.com, at most 320 bytes")
	}
	// The display name goes into the From header of replies: a line
	// break there would let it add headers of its own.
	if len(s.DisplayName) > 200 || !textOK(s.DisplayName) {
		return domain.Invalid("display_name", "must be at most 200 bytes of text without line breaks or control characters")
	}
	if err := checkServer("imap", s.IMAP); err != nil {
		return err
	}
	if err := checkServer("smtp", s.SMTP); err != nil {
		return err
	}
	for _, f := range []struct{ field, value string }{{"folder", s.Folder}, {"move_to", s.MoveTo}, {"sent_folder", s.SentFolder}} {
		if err := checkFolder(f.field, f.value); err != nil {
			return err
		}
	}
	folder := s.Folder
	if folder == "" {
		folder = "INBOX"
	}
	// IMAP names INBOX case-insensitively (RFC 3501 section 5.1).
	if s.MoveTo != "" && (s.MoveTo == folder || strings.EqualFold(folder, "INBOX") && strings.EqualFold(s.MoveTo, "INBOX")) {
		return domain.Invalid("move_to", "must differ from the folder synchronised, or mail would be ingested in a loop")
	}
	if s.ReplyDomain != "" && !hostnameOK(s.ReplyDomain) {
		return domain.Invalid("reply_domain", "must be a domain name such as reply.example.com")
	}
	return nil
}

// checkServer validates an IMAP or SMTP server, naming fields under
// prefix.
func checkServer(prefix string, m events.MailServer) error {
	field := func(f string) string { return prefix + "." + f }
	if m.Host == "" {
		return domain.Invalid(field("host"), "is required")
	}
	if !hostnameOK(m.Host) {
		if _, err := netip.ParseAddr(m.Host); err != nil || strings.Contains(m.Host, "%") {
			return domain.Invalid(field("host"), "must be a host name or an IP address, without a port")
		}
	}
	if m.Port < 1 || m.Port > 65535 {
		return domain.Invalid(field("port"), "must be from 1 to 65535")
	}
	switch m.TLS {
	case events.TLSNone, events.TLSStartTLS, events.TLSImplicit:
	default:
		return domain.Invalid(field("tls"), "must be none, starttls or tls")
	}
	if len(m.Username) > MaxUsernameBytes || !textOK(m.Username) {
		return domain.Invalid(field("username"), "must be at most 320 bytes of text without control characters")
	}
	// Line breaks would end an IMAP or SMTP command early; the servers
	// take nothing else from them. A sealed secret was checked when it
	// was given.
	for _, sf := range []struct{ name, value string }{{"password", m.Password}, {"oauth2_token", m.OAuth2Token}} {
		if seal.IsSealed(sf.value) {
			continue
		}
		if len(sf.value) > MaxSecretBytes || !utf8.ValidString(sf.value) || strings.ContainsAny(sf.value, "\r\n\x00") {
			return domain.Invalid(field(sf.name), "must be at most 8192 bytes of valid UTF-8 without line breaks")
		}
	}
	switch {
	case m.Username != "" && m.Password == "" && m.OAuth2Token == "":
		return domain.Invalid(field("password"), "a password or an oauth2_token is required with a username")
	case m.Username == "" && (m.Password != "" || m.OAuth2Token != ""):
		return domain.Invalid(field("username"), "is required with a password or an oauth2_token")
	}
	return nil
}

func checkFolder(field, name string) error {
	if name == "" {
		return nil
	}
	if len(name) > MaxFolderBytes || !textOK(name) || strings.TrimSpace(name) == "" {
		return domain.Invalid(field, "must be at most 255 bytes of text without control characters, not blank")
	}
	return nil
}

// textOK accepts valid UTF-8 without control characters (NUL, line
// breaks, tabs...).
func textOK(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// hostnameOK accepts a DNS name of letters, digits and hyphens (RFC 1123
// section 2.1), with an optional final dot; an IP address is not one.
func hostnameOK(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	// A name of digits and dots only would read as a (malformed) IPv4
	// address to most resolvers.
	last := labels[len(labels)-1]
	return strings.IndexFunc(last, func(r rune) bool { return r < '0' || r > '9' }) >= 0
}

// mailboxKind is the email channel's accounts.
var mailboxKind = accountKind[MailboxSpec, mailboxSettings, Mailbox]{channel: "email", noun: "mailbox", plural: "mailboxes",
	configKind: events.KindMailbox, eventType: events.TypeMailbox, taken: mailboxAddressTaken,
	secrets: func(s *MailboxSpec) []seal.Field {
		return append(s.IMAP.SecretFields("imap"), s.SMTP.SecretFields("smtp")...)
	}}

func (s MailboxSpec) accountName() string { return s.Name }

// event announces the mailbox, secrets included (sealed): the email
// connector logs in with them.
func (s MailboxSpec) event(tenant, id uuid.UUID, deleted bool) any {
	return events.Mailbox{ID: id.String(), TenantID: tenant.String(), Name: s.Name, Address: s.Address, DisplayName: s.DisplayName,
		IMAP: s.IMAP, Folder: s.Folder, MarkSeen: s.MarkSeen, MoveTo: s.MoveTo, SMTP: s.SMTP, SentFolder: s.SentFolder,
		ReplyDomain: s.ReplyDomain, Deleted: deleted}
}

// withoutSecrets is spec with its credentials dropped.
func (s MailboxSpec) withoutSecrets() MailboxSpec {
	s.IMAP.Password, s.IMAP.OAuth2Token, s.SMTP.Password, s.SMTP.OAuth2Token = "", "", "", ""
	return s
}

// mailboxAddressTaken is the unique index of 003 on live mailboxes'
// addresses.
func mailboxAddressTaken(err error) error {
	if uniqueViolation(err) {
		return domain.Invalid("address", "another mailbox of this tenant has this address")
	}
	return nil
}

// CreateMailbox creates a mailbox of tenant and announces it to the email
// connector.
func (s *Store) CreateMailbox(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec MailboxSpec, now time.Time) (Mailbox, error) {
	return mailboxKind.create(ctx, s, tx, tenant, spec, now)
}

// ListMailboxes returns up to limit mailboxes of tenant after the
// position, oldest first; deleted ones are gone.
func (s *Store) ListMailboxes(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]Mailbox, error) {
	return mailboxKind.list(ctx, s.pool, tenant, after, limit)
}

// GetMailbox returns a mailbox of tenant.
func (s *Store) GetMailbox(ctx context.Context, tenant, id uuid.UUID) (Mailbox, error) {
	return mailboxKind.get(ctx, s.pool, tenant, id)
}

// UpdateMailbox changes a mailbox of tenant, its row locked meanwhile: fn
// changes its spec, secrets included (what fn leaves keeps its value) or
// refuses the change, then the spec is validated, written and announced.
func (s *Store) UpdateMailbox(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(spec *MailboxSpec) error) (Mailbox, error) {
	return mailboxKind.update(ctx, s, tx, tenant, id, now, fn)
}

// DeleteMailbox deletes a mailbox of tenant and tells the email connector
// to stop syncing and sending. The row stays, marked deleted, for its
// conversations refer to it; its credentials are dropped, since nothing
// will log in with them again.
func (s *Store) DeleteMailbox(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	return mailboxKind.remove(ctx, s, tx, tenant, id, now)
}
