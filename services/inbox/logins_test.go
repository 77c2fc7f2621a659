package inbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/pkg/ratelimit"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// lockDelay is the login delay of the tests: the base and the maximum at
// once, so that every delay is the configured one; far longer than the
// tests take, so that nothing expires behind their back. The clock is
// moved past it instead of waiting.
const lockDelay = 10 * time.Minute

// loginEnv is an inbox behind a trusted proxy (127.0.0.1, the tests'
// address): the client's address is the X-Forwarded-For each request
// sends. Logins are limited per account after 5 free failures and per
// address after 3.
func loginEnv(t *testing.T, clock *shiftClock) env {
	t.Helper()
	return startServed(t, clock, func(c *inbox.Config, _ *inbox.Deps) {
		c.Limits.Account = ratelimit.BackoffRule{Free: 5, Base: lockDelay, Max: lockDelay, Forget: time.Hour}
		c.Limits.Address = ratelimit.BackoffRule{Free: 3, Base: lockDelay, Max: lockDelay, Forget: time.Hour}
	}, func(c *httpx.Config) { c.TrustedProxies = config.StringList{"127.0.0.1/32"} })
}

// loginFrom posts a login from the client address addr (through the
// trusted proxy) and returns the answer.
func loginFrom(t *testing.T, e env, b inbox.Bootstrap, email, password, addr string) azResp {
	t.Helper()
	body := fmt.Sprintf(`{"tenant_id":%q,"email":%q,"password":%q}`, b.Tenant.ID, email, password)
	req, err := http.NewRequest(http.MethodPost, e.base+"/v1/auth/login", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", addr)
	req.Header.Set("User-Agent", "switchboard-test/1.0")
	resp, err := azClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	oaCheck(t, req, resp.StatusCode, resp.Header, raw)
	return azResp{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

type loginAuditEntry struct {
	ID         string  `json:"id"`
	Email      string  `json:"email"`
	UserID     *string `json:"user_id"`
	ClientAddr string  `json:"client_addr"`
	UserAgent  string  `json:"user_agent"`
	Outcome    string  `json:"outcome"`
	Reason     string  `json:"reason"`
}

func loginAudit(t *testing.T, e env, token, query string) []loginAuditEntry {
	t.Helper()
	var l list[loginAuditEntry]
	require.Equal(t, http.StatusOK, e.do(t, token, http.MethodGet, "/v1/admin/login-audit?limit=200&"+query, "", &l))
	return l.Items
}

// retryAfter checks a 429 and returns its Retry-After.
func retryAfter(t *testing.T, r azResp, what string) time.Duration {
	t.Helper()
	azMustProblem(t, r, http.StatusTooManyRequests, what)
	s, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	return time.Duration(s) * time.Second
}

// TestWrongPasswordsFromManyAddresses: 20 wrong passwords for one account,
// each from another address (so that no address limit helps), then the
// right one: the account's limit refuses the attempts past its free ones
// before checking them, every attempt is audited, and its owner logs in
// once the configured delay has passed, not later.
func TestWrongPasswordsFromManyAddresses(t *testing.T) {
	clock := &shiftClock{}
	e := loginEnv(t, clock)
	a := e.tenant(t, "Acme")
	_, admin := e.userToken(t, a, "admin")
	victim, err := e.admin.CreateUser(context.Background(), a.Tenant.ID, inbox.UserSpec{Email: testkit.RandomName("victim-") + "@example.com",
		Name: "Victim", Role: domain.RoleAgent, Password: azPassword})
	require.NoError(t, err)

	var unauthorized, limited int
	for i := range 20 {
		r := loginFrom(t, e, a, victim.Email, fmt.Sprintf("wrong horse battery %d", i), fmt.Sprintf("203.0.113.%d", i+1))
		switch r.Status {
		case http.StatusUnauthorized:
			unauthorized++
		case http.StatusTooManyRequests:
			limited++
			wait := retryAfter(t, r, "a locked account")
			require.LessOrEqual(t, wait, lockDelay, "the account waits longer than the configured maximum")
			require.Contains(t, string(r.Body), "for this account")
		default:
			t.Fatalf("wrong password %d answered %s", i, r)
		}
	}
	require.Equal(t, 6, unauthorized, "the 5 free failures and the one that locked the account are checked")
	require.Equal(t, 14, limited, "every attempt while the account waits is refused unchecked")

	failures := loginAudit(t, e, admin, "outcome=failure&email="+victim.Email)
	require.Len(t, failures, 20, "every failure is audited")
	addrs := map[string]bool{}
	reasons := map[string]int{}
	for _, f := range failures {
		addrs[f.ClientAddr] = true
		reasons[f.Reason]++
		require.Equal(t, "switchboard-test/1.0", f.UserAgent)
		require.NotNil(t, f.UserID, "a failure on a user's email does not name the user")
		require.Equal(t, victim.ID.String(), *f.UserID)
	}
	require.Len(t, addrs, 20, "the audit does not keep each client's address (from X-Forwarded-For): %v", addrs)
	require.Contains(t, addrs, "203.0.113.20")
	require.Equal(t, map[string]int{"bad_credentials": 6, "locked_account": 14}, reasons)

	// The owner, once the configured delay has passed (the clock moves; no
	// one waits), logs in at the first try from a new address.
	clock.shift(lockDelay)
	r := loginFrom(t, e, a, victim.Email, azPassword, "198.51.100.7")
	require.Equal(t, http.StatusOK, r.Status, "the owner is still locked out after the configured delay: %s", r)
	all := loginAudit(t, e, admin, "email="+victim.Email)
	require.Len(t, all, 21, "20 failures and the success")
	require.Equal(t, "success", all[0].Outcome, "the newest attempt is the success")
	require.Equal(t, "198.51.100.7", all[0].ClientAddr)
	require.Equal(t, victim.ID.String(), *all[0].UserID)

	// The success forgot the account's failures: a wrong password now is
	// checked (401), not refused.
	r = loginFrom(t, e, a, victim.Email, "wrong horse battery again", "198.51.100.8")
	azMustProblem(t, r, http.StatusUnauthorized, "a wrong password after a success")
}

// TestLoginsLimitedPerAddress: failures from one address on many accounts
// lock the address, for every account, the right password included, which
// is not even checked; other addresses are not concerned.
func TestLoginsLimitedPerAddress(t *testing.T) {
	clock := &shiftClock{}
	e := loginEnv(t, clock)
	a := e.tenant(t, "Acme")
	owner, _ := e.userToken(t, a, "agent")
	const sprayer = "192.0.2.66"
	for i := range 4 {
		r := loginFrom(t, e, a, fmt.Sprintf("guess-%d@example.com", i), "wrong horse battery", sprayer)
		azMustProblem(t, r, http.StatusUnauthorized, "a guess")
	}
	r := loginFrom(t, e, a, owner.Email, azPassword, sprayer)
	wait := retryAfter(t, r, "the right password from a locked address")
	require.Equal(t, lockDelay, wait)
	require.Contains(t, string(r.Body), "from this address")
	r = loginFrom(t, e, a, owner.Email, azPassword, "198.51.100.9")
	require.Equal(t, http.StatusOK, r.Status, "another address is locked too: %s", r)
	clock.shift(lockDelay)
	r = loginFrom(t, e, a, owner.Email, azPassword, sprayer)
	require.Equal(t, http.StatusOK, r.Status, "the address is locked past the configured delay: %s", r)
}

// TestLoginAuditQueries: the login audit's filters and their bad values.
func TestLoginAuditQueries(t *testing.T) {
	e := start(t)
	a := e.tenant(t, "Acme")
	adminUser, admin := e.userToken(t, a, "admin")
	agentUser, _ := e.userToken(t, a, "agent")
	r := loginFrom(t, e, a, agentUser.Email, "wrong horse battery", "203.0.113.1")
	azMustProblem(t, r, http.StatusUnauthorized, "a wrong password")

	// No proxy is trusted here: the address is the peer's.
	got := loginAudit(t, e, admin, "outcome=failure")
	require.Len(t, got, 1)
	require.Equal(t, "127.0.0.1", got[0].ClientAddr, "X-Forwarded-For was believed from an untrusted peer")
	require.Len(t, loginAudit(t, e, admin, "user_id="+adminUser.ID.String()), 1)
	require.Len(t, loginAudit(t, e, admin, "email="+strings.ToUpper(agentUser.Email)), 2, "the email filter minds the case")
	var page list[loginAuditEntry]
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/login-audit?limit=2", "", &page))
	require.Len(t, page.Items, 2)
	require.NotEmpty(t, page.NextCursor)
	require.Equal(t, http.StatusOK, e.do(t, admin, http.MethodGet, "/v1/admin/login-audit?limit=2&cursor="+page.NextCursor, "", &page))
	require.Len(t, page.Items, 1, "three attempts in all")

	for query, field := range map[string]string{
		"outcome=maybe":                     "outcome",
		"user_id=someone":                   "user_id",
		"limit=0":                           "limit",
		"cursor=garbage":                    "cursor",
		"email=" + strings.Repeat("x", 321): "email",
	} {
		p := azMustProblem(t, azCall(t, e, admin, http.MethodGet, "/v1/admin/login-audit?"+query, ""), http.StatusBadRequest, query)
		require.Equal(t, []string{field}, p.fields(), query)
	}
	var prob json.RawMessage
	require.Equal(t, http.StatusUnauthorized, e.do(t, "", http.MethodGet, "/v1/admin/login-audit", "", &prob))
}
