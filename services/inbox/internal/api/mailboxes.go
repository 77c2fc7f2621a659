package api

import (
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The mailbox routes: a tenant's shared mailboxes, which the email
// connector reads and sends from. Every one needs manage_settings, reads
// included: a mailbox shows its servers and logins, which agents have no
// use for. Secrets (passwords, OAuth2 tokens) are written, never read
// back: answers say whether each is set.

func (a *API) registerMailboxes(r Router) {
	a.handle(r, "GET /v1/admin/mailboxes", a.listMailboxes)
	a.handle(r, "POST /v1/admin/mailboxes", a.createMailbox)
	a.handle(r, "GET /v1/admin/mailboxes/{id}", a.getMailbox)
	a.handle(r, "PATCH /v1/admin/mailboxes/{id}", a.updateMailbox)
	a.handle(r, "DELETE /v1/admin/mailboxes/{id}", a.deleteMailbox)
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

func (a *API) listMailboxes(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermManageSettings); err != nil {
		return err
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	limit, after, err := page(r)
	if err != nil {
		return err
	}
	items, err := a.Store.ListMailboxes(r.Context(), tenant, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, func(m store.Mailbox) store.Position { return store.Position{At: m.CreatedAt, ID: m.ID} }))
}

func (a *API) getMailbox(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermManageSettings); err != nil {
		return err
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	m, err := a.Store.GetMailbox(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, m)
}

func (a *API) createMailbox(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermManageSettings); err != nil {
		return err
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	var in MailboxRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := validName("name", in.Name); err != nil {
		return err
	}
	if in.IMAP == nil {
		return domain.Invalid("imap", "is required: the server the mailbox is read from")
	}
	if in.SMTP == nil {
		return domain.Invalid("smtp", "is required: the server replies are sent through")
	}
	spec := store.MailboxSpec{Name: in.Name, Address: in.Address, DisplayName: in.DisplayName, IMAP: in.IMAP.server(), Folder: in.Folder,
		MarkSeen: in.MarkSeen, MoveTo: in.MoveTo, SMTP: in.SMTP.server(), SentFolder: in.SentFolder, ReplyDomain: in.ReplyDomain}
	if err := spec.Validate(); err != nil {
		return err
	}
	var m store.Mailbox
	err = a.Store.InTx(r.Context(), func(tx pgx.Tx) error {
		m, err = a.Store.CreateMailbox(r.Context(), tx, tenant, spec, a.settingsNow())
		return err
	})
	if err != nil {
		return err
	}
	return created(w, m)
}

func (a *API) updateMailbox(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermManageSettings); err != nil {
		return err
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var in MailboxUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == (MailboxUpdate{}) {
		return domain.Invalid("body", "names nothing to change")
	}
	if in.Name != nil {
		if err := validName("name", *in.Name); err != nil {
			return err
		}
	}
	var m store.Mailbox
	err = a.Store.InTx(r.Context(), func(tx pgx.Tx) error {
		m, err = a.Store.UpdateMailbox(r.Context(), tx, tenant, id, a.settingsNow(), func(spec *store.MailboxSpec) {
			set(&spec.Name, in.Name)
			set(&spec.Address, in.Address)
			set(&spec.DisplayName, in.DisplayName)
			in.IMAP.apply(&spec.IMAP)
			set(&spec.Folder, in.Folder)
			set(&spec.MarkSeen, in.MarkSeen)
			set(&spec.MoveTo, in.MoveTo)
			in.SMTP.apply(&spec.SMTP)
			set(&spec.SentFolder, in.SentFolder)
			set(&spec.ReplyDomain, in.ReplyDomain)
		})
		return err
	})
	if err != nil {
		return err
	}
	return ok(w, m)
}

// deleteMailbox stops the mailbox: the connector no longer reads nor
// sends from it. Its conversations stay.
func (a *API) deleteMailbox(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermManageSettings); err != nil {
		return err
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	err = a.Store.InTx(r.Context(), func(tx pgx.Tx) error {
		return a.Store.DeleteMailbox(r.Context(), tx, tenant, id, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return noContent(w)
}
