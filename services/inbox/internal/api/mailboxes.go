package api

import (
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The mailbox routes: a tenant's shared mailboxes, which the email
// connector reads and sends from. Secrets (passwords, OAuth2 tokens) are
// written, never read back (see accountRoutes).

func (a *API) registerMailboxes(r Router) {
	accountRoutes[store.MailboxSpec, store.Mailbox, MailboxRequest, MailboxUpdate]{api: a,
		list: (*store.Store).ListMailboxes, get: (*store.Store).GetMailbox, create: (*store.Store).CreateMailbox,
		update: (*store.Store).UpdateMailbox, remove: (*store.Store).DeleteMailbox,
		position: func(m store.Mailbox) store.Position { return store.Position{At: m.CreatedAt, ID: m.ID} },
	}.register(r, "/v1/admin/mailboxes")
}

// MailServerRequest is an IMAP or SMTP server in a mailbox's body, as
// events.MailServer spells it.
type MailServerRequest struct {
	Host               string `json:"host"`
	Port               int    `json:"port"`
	TLS                string `json:"tls"`
	Username           string `json:"username,omitempty"`
	Password           string `json:"password,omitempty"`
	OAuth2Token        string `json:"oauth2_token,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

func (m *MailServerRequest) server() events.MailServer {
	if m == nil {
		return events.MailServer{}
	}
	return events.MailServer{Host: m.Host, Port: m.Port, TLS: m.TLS, Username: m.Username, Password: m.Password,
		OAuth2Token: m.OAuth2Token, InsecureSkipVerify: m.InsecureSkipVerify}
}

// MailboxRequest is the body of POST /v1/admin/mailboxes, as
// events.Mailbox spells it.
type MailboxRequest struct {
	Name        string             `json:"name"`
	Address     string             `json:"address"`
	DisplayName string             `json:"display_name,omitempty"`
	IMAP        *MailServerRequest `json:"imap"`
	Folder      string             `json:"folder,omitempty"`
	MarkSeen    bool               `json:"mark_seen,omitempty"`
	MoveTo      string             `json:"move_to,omitempty"`
	SMTP        *MailServerRequest `json:"smtp"`
	SentFolder  string             `json:"sent_folder,omitempty"`
	ReplyDomain string             `json:"reply_domain,omitempty"`
}

// MailServerUpdate changes a server of a mailbox: absent fields stay as
// they are, a secret included; an empty secret removes it.
type MailServerUpdate struct {
	Host               *string `json:"host,omitempty"`
	Port               *int    `json:"port,omitempty"`
	TLS                *string `json:"tls,omitempty"`
	Username           *string `json:"username,omitempty"`
	Password           *string `json:"password,omitempty"`
	OAuth2Token        *string `json:"oauth2_token,omitempty"`
	InsecureSkipVerify *bool   `json:"insecure_skip_verify,omitempty"`
}

func (u *MailServerUpdate) apply(m *events.MailServer) {
	if u == nil {
		return
	}
	set(&m.Host, u.Host)
	set(&m.Port, u.Port)
	set(&m.TLS, u.TLS)
	set(&m.Username, u.Username)
	set(&m.Password, u.Password)
	set(&m.OAuth2Token, u.OAuth2Token)
	set(&m.InsecureSkipVerify, u.InsecureSkipVerify)
}

// MailboxUpdate is the body of PATCH /v1/admin/mailboxes/{id}: absent
// fields stay as they are.
type MailboxUpdate struct {
	Name        *string           `json:"name,omitempty"`
	Address     *string           `json:"address,omitempty"`
	DisplayName *string           `json:"display_name,omitempty"`
	IMAP        *MailServerUpdate `json:"imap,omitempty"`
	Folder      *string           `json:"folder,omitempty"`
	MarkSeen    *bool             `json:"mark_seen,omitempty"`
	MoveTo      *string           `json:"move_to,omitempty"`
	SMTP        *MailServerUpdate `json:"smtp,omitempty"`
	SentFolder  *string           `json:"sent_folder,omitempty"`
	ReplyDomain *string           `json:"reply_domain,omitempty"`
}

// set stores *v in dst when v is given.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func (in MailboxRequest) name() string { return in.Name }

func (in MailboxRequest) spec() (store.MailboxSpec, error) {
	if in.IMAP == nil {
		return store.MailboxSpec{}, domain.Invalid("imap", "is required: the server the mailbox is read from")
	}
	if in.SMTP == nil {
		return store.MailboxSpec{}, domain.Invalid("smtp", "is required: the server replies are sent through")
	}
	return store.MailboxSpec{Name: in.Name, Address: in.Address, DisplayName: in.DisplayName, IMAP: in.IMAP.server(), Folder: in.Folder,
		MarkSeen: in.MarkSeen, MoveTo: in.MoveTo, SMTP: in.SMTP.server(), SentFolder: in.SentFolder, ReplyDomain: in.ReplyDomain}, nil
}

func (u MailboxUpdate) newName() *string { return u.Name }

func (u MailboxUpdate) apply(spec *store.MailboxSpec) error {
	set(&spec.Name, u.Name)
	set(&spec.Address, u.Address)
	set(&spec.DisplayName, u.DisplayName)
	u.IMAP.apply(&spec.IMAP)
	set(&spec.Folder, u.Folder)
	set(&spec.MarkSeen, u.MarkSeen)
	set(&spec.MoveTo, u.MoveTo)
	u.SMTP.apply(&spec.SMTP)
	set(&spec.SentFolder, u.SentFolder)
	set(&spec.ReplyDomain, u.ReplyDomain)
	return nil
}
