package api

import (
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// The SMS account routes: a tenant's Twilio accounts, which the SMS
// connector receives texts for and sends replies through. Like a
// mailbox's, secrets (the auth token, an API key's secret) are written,
// never read back (see accountRoutes).

func (a *API) registerSMSAccounts(r Router) {
	accountRoutes[store.SMSAccountSpec, store.SMSAccount, SMSAccountRequest, SMSAccountUpdate]{api: a,
		list: (*store.Store).ListSMSAccounts, get: (*store.Store).GetSMSAccount, create: (*store.Store).CreateSMSAccount,
		update: (*store.Store).UpdateSMSAccount, remove: (*store.Store).DeleteSMSAccount,
		position: func(s store.SMSAccount) store.Position { return store.Position{At: s.CreatedAt, ID: s.ID} },
	}.register(r, "/v1/admin/sms-accounts")
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

func (in SMSAccountRequest) name() string { return in.Name }

func (in SMSAccountRequest) spec() (store.SMSAccountSpec, error) {
	return store.SMSAccountSpec{Name: in.Name, AccountSID: in.AccountSID, AuthToken: in.AuthToken, APIKeySID: in.APIKeySID,
		APIKeySecret: in.APIKeySecret, Numbers: in.Numbers, MessagingServiceSIDs: in.MessagingServiceSIDs}, nil
}

func (u SMSAccountUpdate) newName() *string { return u.Name }

func (u SMSAccountUpdate) apply(spec *store.SMSAccountSpec) error {
	old := *spec
	if u.APIKeySID != nil && *u.APIKeySID == "" && u.APIKeySecret == nil {
		// An empty api_key_sid removes the key, its secret with it.
		spec.APIKeySecret = ""
	}
	set(&spec.Name, u.Name)
	set(&spec.AccountSID, u.AccountSID)
	set(&spec.AuthToken, u.AuthToken)
	set(&spec.APIKeySID, u.APIKeySID)
	set(&spec.APIKeySecret, u.APIKeySecret)
	set(&spec.Numbers, u.Numbers)
	set(&spec.MessagingServiceSIDs, u.MessagingServiceSIDs)
	// What is wrong in itself is said first; then what is wrong with the
	// change.
	if err := spec.Validate(); err != nil {
		return err
	}
	// Credentials belong to one Twilio account, a secret to one key:
	// keeping the old ones with a new SID would fail only later, on the
	// first webhook or reply.
	if spec.AccountSID != old.AccountSID {
		if u.AuthToken == nil {
			return domain.Invalid("auth_token", "is required when account_sid changes: a token belongs to one account")
		}
		if spec.APIKeySID != "" && u.APIKeySID == nil {
			return domain.Invalid("api_key_sid", "must be given (or emptied) when account_sid changes: an API key belongs to one account")
		}
	}
	if spec.APIKeySID != "" && spec.APIKeySID != old.APIKeySID && u.APIKeySecret == nil {
		return domain.Invalid("api_key_secret", "is required when api_key_sid changes: a secret belongs to one key")
	}
	return nil
}
