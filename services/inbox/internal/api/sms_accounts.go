package api

import (
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The SMS account routes: a tenant's Twilio accounts, which the SMS
// connector receives texts for and sends replies through. Like mailboxes,
// every one needs manage_settings, reads included, and secrets (the auth
// token, an API key's secret) are written, never read back: answers say
// whether each is set.

func (a *API) registerSMSAccounts(r Router) {
	a.handle(r, "GET /v1/admin/sms-accounts", a.listSMSAccounts)
	a.handle(r, "POST /v1/admin/sms-accounts", a.createSMSAccount)
	a.handle(r, "GET /v1/admin/sms-accounts/{id}", a.getSMSAccount)
	a.handle(r, "PATCH /v1/admin/sms-accounts/{id}", a.updateSMSAccount)
	a.handle(r, "DELETE /v1/admin/sms-accounts/{id}", a.deleteSMSAccount)
}

// SMSAccountRequest is the body of POST /v1/admin/sms-accounts, as
// events.SMSAccount spells it.
type SMSAccountRequest struct {
	Name                 string   `json:"name"`
	AccountSID           string   `json:"account_sid"`
	AuthToken            string   `json:"auth_token"`
	APIKeySID            string   `json:"api_key_sid,omitempty"`
	APIKeySecret         string   `json:"api_key_secret,omitempty"`
	Numbers              []string `json:"numbers,omitempty"`
	MessagingServiceSIDs []string `json:"messaging_service_sids,omitempty"`
}

// SMSAccountUpdate is the body of PATCH /v1/admin/sms-accounts/{id}:
// absent fields stay as they are, secrets included. A list given replaces
// the list; an empty api_key_sid removes the API key, its secret with it.
type SMSAccountUpdate struct {
	Name                 *string   `json:"name,omitempty"`
	AccountSID           *string   `json:"account_sid,omitempty"`
	AuthToken            *string   `json:"auth_token,omitempty"`
	APIKeySID            *string   `json:"api_key_sid,omitempty"`
	APIKeySecret         *string   `json:"api_key_secret,omitempty"`
	Numbers              *[]string `json:"numbers,omitempty"`
	MessagingServiceSIDs *[]string `json:"messaging_service_sids,omitempty"`
}

func (a *API) listSMSAccounts(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
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
	items, err := a.Store.ListSMSAccounts(r.Context(), tenant, after, limit+1)
	if err != nil {
		return err
	}
	return ok(w, pageOf(items, limit, func(s store.SMSAccount) store.Position { return store.Position{At: s.CreatedAt, ID: s.ID} }))
}

func (a *API) getSMSAccount(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
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
	s, err := a.Store.GetSMSAccount(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	return ok(w, s)
}

func (a *API) createSMSAccount(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if err := need(p, domain.PermManageSettings); err != nil {
		return err
	}
	tenant, err := tenantOf(p)
	if err != nil {
		return err
	}
	var in SMSAccountRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := validName("name", in.Name); err != nil {
		return err
	}
	spec := store.SMSAccountSpec{Name: in.Name, AccountSID: in.AccountSID, AuthToken: in.AuthToken, APIKeySID: in.APIKeySID,
		APIKeySecret: in.APIKeySecret, Numbers: in.Numbers, MessagingServiceSIDs: in.MessagingServiceSIDs}
	if err := spec.Validate(); err != nil {
		return err
	}
	var s store.SMSAccount
	err = a.Store.InTx(r.Context(), func(tx pgx.Tx) error {
		s, err = a.Store.CreateSMSAccount(r.Context(), tx, tenant, spec, a.settingsNow())
		return err
	})
	if err != nil {
		return err
	}
	return created(w, s)
}

func (a *API) updateSMSAccount(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
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
	var in SMSAccountUpdate
	if err := decode(r, &in); err != nil {
		return err
	}
	if in == (SMSAccountUpdate{}) {
		return domain.Invalid("body", "names nothing to change")
	}
	if in.Name != nil {
		if err := validName("name", *in.Name); err != nil {
			return err
		}
	}
	var s store.SMSAccount
	err = a.Store.InTx(r.Context(), func(tx pgx.Tx) error {
		s, err = a.Store.UpdateSMSAccount(r.Context(), tx, tenant, id, a.settingsNow(), func(spec *store.SMSAccountSpec) error {
			old := *spec
			if in.APIKeySID != nil && *in.APIKeySID == "" && in.APIKeySecret == nil {
				// An empty api_key_sid removes the key, its secret with it.
				spec.APIKeySecret = ""
			}
			set(&spec.Name, in.Name)
			set(&spec.AccountSID, in.AccountSID)
			set(&spec.AuthToken, in.AuthToken)
			set(&spec.APIKeySID, in.APIKeySID)
			set(&spec.APIKeySecret, in.APIKeySecret)
			set(&spec.Numbers, in.Numbers)
			set(&spec.MessagingServiceSIDs, in.MessagingServiceSIDs)
			// What is wrong in itself is said first; then what is wrong
			// with the change.
			if err := spec.Validate(); err != nil {
				return err
			}
			// Credentials belong to one Twilio account, a secret to one
			// key: keeping the old ones with a new SID would fail only
			// later, on the first webhook or reply.
			if spec.AccountSID != old.AccountSID {
				if in.AuthToken == nil {
					return domain.Invalid("auth_token", "is required when account_sid changes: a token belongs to one account")
				}
				if spec.APIKeySID != "" && in.APIKeySID == nil {
					return domain.Invalid("api_key_sid", "must be given (or emptied) when account_sid changes: an API key belongs to one account")
				}
			}
			if spec.APIKeySID != "" && spec.APIKeySID != old.APIKeySID && in.APIKeySecret == nil {
				return domain.Invalid("api_key_secret", "is required when api_key_sid changes: a secret belongs to one key")
			}
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	return ok(w, s)
}

// deleteSMSAccount stops the account: the connector refuses its webhooks
// and sends nothing more through it. Its conversations stay.
func (a *API) deleteSMSAccount(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
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
		return a.Store.DeleteSMSAccount(r.Context(), tx, tenant, id, a.settingsNow())
	})
	if err != nil {
		return err
	}
	return noContent(w)
}
