package api

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/password"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// Limits are what the API refuses for coming too often: the request
// rates of each caller and each tenant, and logins after failures.
type Limits struct {
	// Token is the request rate of one caller: an API token, or a user
	// whatever their sessions. Off when its rate is 0.
	Token ratelimit.Rule
	// Tenant is the request rate of all callers of one tenant together,
	// so that one tenant's flood does not slow the others. Off when its
	// rate is 0.
	Tenant ratelimit.Rule
	// Account delays the logins of one account (tenant and email, whether
	// a user has it or not) after failures; Address those from one client
	// address (an IPv6 /64), whatever the account. Zero rules take their
	// defaults.
	Account, Address ratelimit.BackoffRule
	// Passwords is what a new password must be.
	Passwords password.Policy
	// AuditRetention is how long login attempts stay in the login audit.
	AuditRetention time.Duration
}

// Defaults of the login limits and the audit.
const (
	DefaultAccountFree   = 5
	DefaultAddressFree   = 20
	DefaultLoginBase     = time.Second
	DefaultAccountMax    = 15 * time.Minute
	DefaultAddressMax    = 5 * time.Minute
	DefaultLoginForget   = time.Hour
	DefaultAuditRetain   = 90 * 24 * time.Hour
	defaultTokenRate     = 20
	defaultTokenBurst    = 100
	defaultTenantRate    = 200
	defaultTenantBurst   = 1000
	maxUserAgentBytes    = 512
	ipv6AddressPrefixLen = 64
)

// WithDefaults names the rules and fills the zero login rules and
// retention; rates left at zero stay off.
func (l Limits) WithDefaults() Limits {
	l.Token.Name, l.Tenant.Name = "token", "tenant"
	if l.Account.Base == 0 {
		l.Account = ratelimit.BackoffRule{Free: DefaultAccountFree, Base: DefaultLoginBase, Max: DefaultAccountMax, Forget: DefaultLoginForget}
	}
	if l.Address.Base == 0 {
		l.Address = ratelimit.BackoffRule{Free: DefaultAddressFree, Base: DefaultLoginBase, Max: DefaultAddressMax, Forget: DefaultLoginForget}
	}
	l.Account.Name, l.Address.Name = "account", "address"
	if l.AuditRetention == 0 {
		l.AuditRetention = DefaultAuditRetain
	}
	return l
}

// RegisterFlags declares the flags under prefix.
func (l *Limits) RegisterFlags(prefix string, f *flag.FlagSet) {
	*l = l.WithDefaults()
	l.Token.RegisterFlags(f, prefix+"inbox.api.token", defaultTokenRate, defaultTokenBurst, "one API token (or one user, whatever their sessions) on the inbox API", "")
	l.Tenant.RegisterFlags(f, prefix+"inbox.api.tenant", defaultTenantRate, defaultTenantBurst, "all the callers of one tenant together on the inbox API",
		"It keeps one tenant's flood from slowing the others.")
	l.Account.RegisterFlags(f, prefix+"inbox.login.account", "logins to one account (a tenant and an email, whether a user has it or not)")
	l.Address.RegisterFlags(f, prefix+"inbox.login.address", "logins from one client address (an IPv6 /64; see -http.trusted-proxies), whatever the account")
	f.IntVar(&l.Passwords.MinLength, prefix+"inbox.password.min-length", password.MinLength, fmt.Sprintf("Fewest characters of a user's password, when it is set (at least %d); passwords among the 10,000 most common are refused whatever their length.", password.LeastMinLength))
	f.DurationVar(&l.AuditRetention, prefix+"inbox.login.audit-retention", DefaultAuditRetain, "How long every login attempt (success or failure, with its email, user, client address and user agent) is kept in the login audit (GET /v1/admin/login-audit).")
}

// Validate checks the settings.
func (l *Limits) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	l.Token.Check(ck, "inbox.api.token")
	l.Tenant.Check(ck, "inbox.api.tenant")
	l.Account.Check(ck, "inbox.login.account")
	l.Address.Check(ck, "inbox.login.address")
	ck.Check(l.Passwords.MinLength >= password.LeastMinLength && l.Passwords.MinLength <= 128, "inbox.password.min-length",
		fmt.Sprintf("must be from %d to 128, got %d", password.LeastMinLength, l.Passwords.MinLength), "set 10 or more")
	ck.Check(l.AuditRetention >= 24*time.Hour, "inbox.login.audit-retention", fmt.Sprintf("%s is shorter than a day", l.AuditRetention), "set 2160h (90 days)")
	return ck.Err()
}

// limit counts a request of p against its caller's and its tenant's
// rates: one round trip to Redis, after authentication (the caller must
// be known) and before any work. Every answer says where the caller
// stands (RateLimit headers); a refusal is a 429 with Retry-After. When
// Redis does not answer, the request goes on (see package ratelimit).
func (a *API) limit(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if a.Rates == nil {
		return nil
	}
	caller := "token:" + p.TokenID
	if p.UserID != "" {
		caller = "user:" + p.UserID
	}
	d := a.Rates.Allow(r.Context(), ratelimit.Limit{Key: caller, Rule: a.Limits.Token}, ratelimit.Limit{Key: "tenant:" + p.Tenant, Rule: a.Limits.Tenant})
	ratelimit.SetHeaders(w.Header(), d, a.Limits.Token, a.Limits.Tenant)
	if d.Allowed {
		return nil
	}
	what := "requests of this caller"
	if d.Rule.Name == "tenant" {
		what = "requests of this tenant"
	}
	return ratelimit.TooMany(w.Header(), d, what)
}

// loginSubjects are the two subjects of a login's backoff: the account
// and the client address. An IPv6 client is counted by its /64, which a
// single host usually holds whole.
func (a *API) loginSubjects(tenant uuid.UUID, email string, addr netip.Addr) []ratelimit.Subject {
	out := []ratelimit.Subject{{Key: "login:account:" + tenant.String() + ":" + strings.ToLower(strings.TrimSpace(email)), Rule: a.Limits.Account}}
	if addr.IsValid() {
		if addr.Is6() {
			addr = netip.PrefixFrom(addr, ipv6AddressPrefixLen).Masked().Addr()
		}
		out = append(out, ratelimit.Subject{Key: "login:address:" + addr.String(), Rule: a.Limits.Address})
	}
	return out
}

// Login outcomes and reasons, as the login audit records them.
const (
	loginSuccess        = "success"
	loginFailure        = "failure"
	reasonBadCredential = "bad_credentials"
)

// checkedLogin runs a login under the backoff and audits it: a subject
// still waiting after past failures is refused before the password is
// looked at (429, Retry-After); a failure makes both subjects wait
// longer; a success forgets the account's failures (not the address's:
// one good password does not clear a spray from that address).
func (a *API) checkedLogin(w http.ResponseWriter, r *http.Request, tenant uuid.UUID, email, pw string) (store.Tokens, error) {
	ctx := r.Context()
	attempt := store.LoginAttempt{TenantID: tenant, Email: email, ClientAddr: httpx.ClientAddr(r), UserAgent: userAgent(r), At: a.Clock.Now()}
	var subjects []ratelimit.Subject
	if a.Logins != nil {
		subjects = a.loginSubjects(tenant, email, attempt.ClientAddr)
		if wait, who := a.Logins.Wait(ctx, subjects...); wait > 0 {
			attempt.Outcome, attempt.Reason = loginFailure, "locked_"+who.Rule.Name
			a.auditLogin(ctx, attempt)
			w.Header().Set("Retry-After", fmt.Sprint(ratelimit.Seconds(wait)))
			p := httpx.NewProblem(http.StatusTooManyRequests, fmt.Sprintf("too many failed logins %s: retry in %d s", map[string]string{
				"account": "for this account", "address": "from this address"}[who.Rule.Name], ratelimit.Seconds(wait)))
			p.Extra = map[string]any{"retry_after": ratelimit.Seconds(wait)}
			return store.Tokens{}, p
		}
	}
	t, err := a.Store.Login(ctx, tenant, email, pw, attempt.At)
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		if a.Logins != nil {
			a.Logins.Fail(ctx, subjects...)
		}
		attempt.Outcome, attempt.Reason = loginFailure, reasonBadCredential
		a.auditLogin(ctx, attempt)
		return store.Tokens{}, err
	case err != nil:
		return store.Tokens{}, err
	}
	if a.Logins != nil {
		a.Logins.Reset(ctx, subjects[0])
	}
	attempt.Outcome, attempt.UserID = loginSuccess, &t.UserID
	a.auditLogin(ctx, attempt)
	return t, nil
}

// auditLogin records a login attempt. The answer does not wait on it
// failing: the database is then down and the log says so.
func (a *API) auditLogin(ctx context.Context, at store.LoginAttempt) {
	if err := a.Store.RecordLogin(ctx, at); err != nil {
		a.Log.ErrorContext(ctx, "login attempt not audited", "tenant_id", at.TenantID, "outcome", at.Outcome, "reason", at.Reason, "error", err)
	}
}

// userAgent is the request's User-Agent as text a column can keep: valid
// UTF-8, no NUL, at most maxUserAgentBytes.
func userAgent(r *http.Request) string {
	ua := strings.ToValidUTF8(strings.ReplaceAll(r.UserAgent(), "\x00", ""), "\uFFFD")
	for len(ua) > maxUserAgentBytes {
		ua = strings.ToValidUTF8(ua[:maxUserAgentBytes], "")
	}
	return ua
}
