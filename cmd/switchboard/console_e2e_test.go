package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/web/console"
)

// TestConsoleEndToEnd: create-tenant with its first admin prints where
// the console is; the binary serves it there, beside the API, and the
// admin logs in to a browser session.
func TestConsoleEndToEnd(t *testing.T) {
	db := testkit.DatabaseURL(t)
	addr, err := testkit.FreeAddr()
	require.NoError(t, err)
	base := "http://" + addr
	cmd := exec.Command(binary, "admin", "create-tenant", "-name", "Acme",
		"-admin-email", "ada@example.com", "-console-url", base)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db, "SB_ADMIN_PASSWORD=correct horse battery")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	require.NoError(t, err, errOut.String())
	var b struct {
		Tenant struct {
			ID string `json:"id"`
		} `json:"tenant"`
		ConsoleURL string `json:"console_url"`
	}
	require.NoError(t, json.Unmarshal(out, &b))
	require.Equal(t, base+"/?tenant="+b.Tenant.ID, b.ConsoleURL)

	startNode(t, db, t.TempDir(), addr)
	client := &http.Client{}
	get := func(url string) (*http.Response, string) {
		resp, err := client.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(raw)
	}

	// The console, built or not, with its policy; the API beside it.
	for _, url := range []string{b.ConsoleURL, base + "/conversations/42"} {
		resp, body := get(url)
		require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
		require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html"), "GET %s: %s", url, resp.Header.Get("Content-Type"))
		require.Equal(t, console.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"), "GET %s", url)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), "GET %s", url)
	}
	resp, body := get(base + "/openapi.json")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `"Switchboard inbox API"`)
	resp, body = get(base + "/v1/no-such-route")
	require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	resp, _ = get(base + "/v1/me")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// The admin logs in as the console does: cookies, then the cookie
	// alone.
	req, err := http.NewRequest(http.MethodPost, base+"/v1/auth/session",
		strings.NewReader(fmt.Sprintf(`{"tenant_id":%q,"email":"ada@example.com","password":"correct horse battery"}`, b.Tenant.ID)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err = client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	req, err = http.NewRequest(http.MethodGet, base+"/v1/me", nil)
	require.NoError(t, err)
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, err = client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var me struct {
		Role string `json:"role"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&me))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "admin", me.Role)
}
