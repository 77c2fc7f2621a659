package store

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// SMS accounts are channel accounts of the sms channel: a tenant's Twilio
// account and the numbers and Messaging Services it receives on, which the
// SMS connector hears of on the config topic (events.SMSAccount). Like a
// mailbox's, their secrets (the auth token, an API key's secret) are
// stored and published sealed for the connector (docs/adr/0022), and
// never shown by the API, which says only whether they are set.

// Limits of an SMS account's lists.
const (
	// MaxSMSNumbers bounds the numbers of one account: a webhook looks its
	// account up by number, and a larger pool belongs in a Messaging
	// Service.
	MaxSMSNumbers = 100
	// MaxMessagingServices bounds the Messaging Services of one account.
	MaxMessagingServices = 100
)

// The formats of Twilio's identifiers and secrets. SIDs are two letters
// and 32 lower-case hex digits; an auth token is 32 lower-case hex digits
// and an API key's secret 32 letters and digits, as Twilio issues them.
// Holding secrets to their exact form catches what a loose check would
// let through to fail later, in the connector, on the first webhook: a
// token pasted with a space, or the SID pasted where the token goes.
var (
	accountSIDRe   = regexp.MustCompile(`^AC[0-9a-f]{32}$`)
	apiKeySIDRe    = regexp.MustCompile(`^SK[0-9a-f]{32}$`)
	serviceSIDRe   = regexp.MustCompile(`^MG[0-9a-f]{32}$`)
	authTokenRe    = regexp.MustCompile(`^[0-9a-f]{32}$`)
	apiKeySecretRe = regexp.MustCompile(`^[0-9A-Za-z]{32}$`)
	// smsNumberRe is E.164 with at least 7 digits: shorter ones are
	// short codes, which Twilio names without a plus.
	smsNumberRe = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// SMSAccount is an SMS account as the API shows it: whether the secrets
// are set, never the secrets.
type SMSAccount struct {
	ID                   uuid.UUID `json:"id"`
	Name                 string    `json:"name"`
	AccountSID           string    `json:"account_sid"`
	AuthTokenSet         bool      `json:"auth_token_set"`
	APIKeySID            string    `json:"api_key_sid"`
	APIKeySecretSet      bool      `json:"api_key_secret_set"`
	Numbers              []string  `json:"numbers"`
	MessagingServiceSIDs []string  `json:"messaging_service_sids"`
	CreatedAt            time.Time `json:"created_at"`
}

// SMSAccountSpec is what defines an SMS account, secrets included.
type SMSAccountSpec struct {
	Name                 string
	AccountSID           string
	AuthToken            string
	APIKeySID            string
	APIKeySecret         string
	Numbers              []string
	MessagingServiceSIDs []string
}

// smsSettings is the settings column of an SMS account: the spec but its
// name, which has a column of its own.
type smsSettings struct {
	AccountSID           string   `json:"account_sid"`
	AuthToken            string   `json:"auth_token,omitempty"`
	APIKeySID            string   `json:"api_key_sid,omitempty"`
	APIKeySecret         string   `json:"api_key_secret,omitempty"`
	Numbers              []string `json:"numbers"`
	MessagingServiceSIDs []string `json:"messaging_service_sids"`
}

func (s SMSAccountSpec) settings() smsSettings {
	return smsSettings{AccountSID: s.AccountSID, AuthToken: s.AuthToken, APIKeySID: s.APIKeySID, APIKeySecret: s.APIKeySecret,
		Numbers: orEmpty(s.Numbers), MessagingServiceSIDs: orEmpty(s.MessagingServiceSIDs)}
}

func (st smsSettings) spec(name string) SMSAccountSpec {
	return SMSAccountSpec{Name: name, AccountSID: st.AccountSID, AuthToken: st.AuthToken, APIKeySID: st.APIKeySID,
		APIKeySecret: st.APIKeySecret, Numbers: st.Numbers, MessagingServiceSIDs: st.MessagingServiceSIDs}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Info is the account as the API shows it.
func (s SMSAccountSpec) Info(id uuid.UUID, createdAt time.Time) SMSAccount {
	return SMSAccount{ID: id, Name: s.Name, AccountSID: s.AccountSID, AuthTokenSet: s.AuthToken != "", APIKeySID: s.APIKeySID,
		APIKeySecretSet: s.APIKeySecret != "", Numbers: slices.Clone(orEmpty(s.Numbers)),
		MessagingServiceSIDs: slices.Clone(orEmpty(s.MessagingServiceSIDs)), CreatedAt: createdAt}
}

// Validate checks an SMS account spec; the error names the field as the
// API's body spells it ("numbers[2]").
func (s SMSAccountSpec) Validate() error {
	if err := CheckName("name", s.Name); err != nil {
		return err
	}
	if !textOK(s.Name) {
		return domain.Invalid("name", "must be valid UTF-8 without control characters")
	}
	if !accountSIDRe.MatchString(s.AccountSID) {
		return domain.Invalid("account_sid", "must be a Twilio account SID: AC and 32 lower-case hex digits")
	}
	// The auth token signs Twilio's webhooks: without it none could be
	// verified, so it is required even when an API key makes the calls.
	// A sealed secret was checked when it was given.
	if !authTokenRe.MatchString(s.AuthToken) && !seal.IsSealed(s.AuthToken) {
		return domain.Invalid("auth_token", "is required: the account's auth token, 32 lower-case hex digits as Twilio shows it")
	}
	switch {
	case s.APIKeySID != "" && !apiKeySIDRe.MatchString(s.APIKeySID):
		return domain.Invalid("api_key_sid", "must be a Twilio API key SID: SK and 32 lower-case hex digits")
	case s.APIKeySecret != "" && !apiKeySecretRe.MatchString(s.APIKeySecret) && !seal.IsSealed(s.APIKeySecret):
		return domain.Invalid("api_key_secret", "must be the API key's secret: 32 letters and digits as Twilio shows it")
	case s.APIKeySID != "" && s.APIKeySecret == "":
		return domain.Invalid("api_key_secret", "is required with api_key_sid: an API key is its SID and its secret")
	case s.APIKeySID == "" && s.APIKeySecret != "":
		return domain.Invalid("api_key_sid", "is required with api_key_secret: an API key is its SID and its secret")
	}
	if err := checkSIDList("numbers", s.Numbers, MaxSMSNumbers, smsNumberRe,
		"must be an E.164 phone number such as +14155550100"); err != nil {
		return err
	}
	if err := checkSIDList("messaging_service_sids", s.MessagingServiceSIDs, MaxMessagingServices, serviceSIDRe,
		"must be a Twilio Messaging Service SID: MG and 32 lower-case hex digits"); err != nil {
		return err
	}
	if len(s.Numbers) == 0 && len(s.MessagingServiceSIDs) == 0 {
		return domain.Invalid("numbers", "at least one number or messaging service is required: texts arrive on one of them")
	}
	return nil
}

// checkSIDList checks a list of distinct identifiers of one form.
func checkSIDList(field string, list []string, max int, re *regexp.Regexp, reason string) error {
	if len(list) > max {
		return domain.Invalid(field, fmt.Sprintf("must list at most %d", max))
	}
	for i, v := range list {
		if !re.MatchString(v) {
			return domain.Invalid(fmt.Sprintf("%s[%d]", field, i), reason)
		}
		if slices.Contains(list[:i], v) {
			return domain.Invalid(fmt.Sprintf("%s[%d]", field, i), "is listed twice")
		}
	}
	return nil
}

// withoutSecrets is spec with its credentials dropped.
func (s SMSAccountSpec) withoutSecrets() SMSAccountSpec {
	s.AuthToken, s.APIKeySecret = "", ""
	return s
}

// smsAccountKind is the sms channel's accounts. A number belongs to one
// live account of a tenant: inbox.sms_numbers holds the claims.
var smsAccountKind = accountKind[SMSAccountSpec, smsSettings, SMSAccount]{channel: "sms", noun: "SMS account", plural: "SMS accounts",
	configKind: events.KindSMSAccount, eventType: events.TypeSMSAccount,
	secrets: func(s *SMSAccountSpec) []seal.Field {
		return events.SMSSecretFields(&s.AuthToken, &s.APIKeySecret)
	},
	afterWrite: func(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, spec SMSAccountSpec, deleted bool) error {
		if deleted {
			return claimNumbers(ctx, tx, tenant, id, nil)
		}
		return claimNumbers(ctx, tx, tenant, id, spec.Numbers)
	}}

func (s SMSAccountSpec) accountName() string { return s.Name }

// event announces the account, secrets included (sealed): the connector
// verifies webhooks and calls Twilio with them.
func (s SMSAccountSpec) event(tenant, id uuid.UUID, deleted bool) any {
	return events.SMSAccount{ID: id.String(), TenantID: tenant.String(), Name: s.Name, AccountSID: s.AccountSID,
		AuthToken: s.AuthToken, APIKeySID: s.APIKeySID, APIKeySecret: s.APIKeySecret, Numbers: s.Numbers,
		MessagingServiceSIDs: s.MessagingServiceSIDs, Deleted: deleted}
}

// claimNumbers makes numbers the numbers of account, and only those,
// in inbox.sms_numbers; a number another live account of the tenant
// holds is refused, naming its position in the list. Numbers are
// inserted in order so that concurrent claims wait for each other
// instead of deadlocking.
func claimNumbers(ctx context.Context, tx pgx.Tx, tenant, account uuid.UUID, numbers []string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM inbox.sms_numbers WHERE account_id = $1`, account); err != nil {
		return fmt.Errorf("release SMS numbers: %w", err)
	}
	if len(numbers) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `INSERT INTO inbox.sms_numbers (tenant_id, number, account_id)
		SELECT $1, n, $2 FROM unnest($3::text[]) AS n ORDER BY n
		ON CONFLICT DO NOTHING
		RETURNING number`, tenant, account, numbers)
	if err != nil {
		return fmt.Errorf("claim SMS numbers: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("claim SMS numbers: %w", err)
	}
	for i, n := range numbers {
		if !slices.Contains(claimed, n) {
			return domain.Invalid(fmt.Sprintf("numbers[%d]", i), "belongs to another SMS account of this tenant")
		}
	}
	return nil
}

// CreateSMSAccount creates an SMS account of tenant and announces it to
// the SMS connector.
func (s *Store) CreateSMSAccount(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec SMSAccountSpec, now time.Time) (SMSAccount, error) {
	return smsAccountKind.create(ctx, s, tx, tenant, spec, now)
}

// ListSMSAccounts returns up to limit SMS accounts of tenant after the
// position, oldest first; deleted ones are gone.
func (s *Store) ListSMSAccounts(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]SMSAccount, error) {
	return smsAccountKind.list(ctx, s.pool, tenant, after, limit)
}

// GetSMSAccount returns an SMS account of tenant.
func (s *Store) GetSMSAccount(ctx context.Context, tenant, id uuid.UUID) (SMSAccount, error) {
	return smsAccountKind.get(ctx, s.pool, tenant, id)
}

// UpdateSMSAccount changes an SMS account of tenant, its row locked
// meanwhile: fn changes its spec, secrets included (what fn leaves keeps
// its value) or refuses the change, then the spec is validated, written
// and announced.
func (s *Store) UpdateSMSAccount(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(spec *SMSAccountSpec) error) (SMSAccount, error) {
	return smsAccountKind.update(ctx, s, tx, tenant, id, now, func(spec *SMSAccountSpec) error {
		// fn may change the lists in place.
		spec.Numbers, spec.MessagingServiceSIDs = slices.Clone(spec.Numbers), slices.Clone(spec.MessagingServiceSIDs)
		return fn(spec)
	})
}

// DeleteSMSAccount deletes an SMS account of tenant and tells the SMS
// connector to refuse its webhooks and send nothing more. The row stays,
// marked deleted, for its conversations refer to it; its secrets are
// dropped, since nothing will use them again, and its numbers are free
// for another account.
func (s *Store) DeleteSMSAccount(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	return smsAccountKind.remove(ctx, s, tx, tenant, id, now)
}
