package egress_test

import (
	"errors"
	"flag"
	"net/netip"
	"strings"
	"testing"

	"github.com/switchboard-oss/switchboard/pkg/config"
	"github.com/switchboard-oss/switchboard/pkg/egress"
)

// newConfig returns the settings of the flags args, defaults elsewhere.
func newConfig(t *testing.T, args ...string) egress.Config {
	t.Helper()
	var c egress.Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags("", f)
	if err := f.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(""); err != nil {
		t.Fatal(err)
	}
	return c
}

func newPolicy(t *testing.T, args ...string) *egress.Policy {
	t.Helper()
	p, err := egress.NewPolicy(newConfig(t, args...))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFromEnvironment(t *testing.T) {
	var c egress.Config
	f := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags("chat.", f)
	env := map[string]string{"SB_CHAT_EGRESS_ALLOW": "127.0.0.1/32, 10.1.2.0/24", "SB_CHAT_EGRESS_ALLOW_HTTP": "true"}
	if err := config.Load(f, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate("chat."); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Allow, "|") != "127.0.0.1/32|10.1.2.0/24" || !c.AllowHTTP {
		t.Errorf("got allow %v, allow-http %v", c.Allow, c.AllowHTTP)
	}
	if c.MaxRedirects != 0 || c.MaxResponseBytes != 1<<20 {
		t.Errorf("defaults: max-redirects %d, max-response-bytes %d", c.MaxRedirects, c.MaxResponseBytes)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // substrings of the error
	}{
		{[]string{"-x.egress.allow=10.1.2.0/33"}, []string{"-x.egress.allow", "SB_X_EGRESS_ALLOW", `"10.1.2.0/33" is not an IP address or CIDR prefix`}},
		{[]string{"-x.egress.allow=127.0.0.1,localhost"}, []string{"-x.egress.allow", `"localhost" is not an IP address`}},
		{[]string{"-x.egress.allow=fe80::1%eth0"}, []string{"-x.egress.allow", "zone"}},
		{[]string{"-x.egress.connect-timeout=0s"}, []string{"-x.egress.connect-timeout", "greater than zero"}},
		{[]string{"-x.egress.response-header-timeout=-1s"}, []string{"-x.egress.response-header-timeout"}},
		{[]string{"-x.egress.request-timeout=5s", "-x.egress.response-header-timeout=10s"}, []string{"-x.egress.response-header-timeout", "longer than -x.egress.request-timeout"}},
		{[]string{"-x.egress.max-response-bytes=0"}, []string{"-x.egress.max-response-bytes"}},
		{[]string{"-x.egress.max-redirects=-1"}, []string{"-x.egress.max-redirects", "between 0 and 10"}},
		{[]string{"-x.egress.max-redirects=11"}, []string{"-x.egress.max-redirects"}},
	} {
		var c egress.Config
		f := flag.NewFlagSet("test", flag.ContinueOnError)
		c.RegisterFlags("x.", f)
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		err := c.Validate("x.")
		if err == nil {
			t.Errorf("%v: valid, want an error", tc.args)
			continue
		}
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Errorf("%v: %v is not a *config.Error", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", tc.args, err, w)
			}
		}
	}
}

func TestCheckAddr(t *testing.T) {
	p := newPolicy(t)
	for addr, kind := range map[string]string{
		"127.0.0.1":        "loopback",
		"127.255.0.9":      "loopback",
		"::1":              "loopback",
		"::ffff:127.0.0.1": "IPv4-mapped loopback",
		"::ffff:10.0.0.1":  "IPv4-mapped private",
		"10.0.0.1":         "private",
		"172.16.5.4":       "private",
		"172.31.255.255":   "private",
		"192.168.1.1":      "private",
		"169.254.169.254":  "cloud metadata",
		"fd00:ec2::254":    "cloud metadata",
		"100.100.100.200":  "cloud metadata",
		"169.254.1.1":      "link-local",
		"fe80::1":          "link-local",
		"fe80::1%eth0":     "link-local",
		"fc00::1":          "private",
		"fd12:3456::1":     "private",
		"100.64.0.1":       "shared (carrier-grade NAT)",
		"0.0.0.0":          "unspecified",
		"::":               "unspecified",
		"0.1.2.3":          "this-network",
		"224.0.0.1":        "multicast",
		"239.255.255.250":  "multicast",
		"ff02::1":          "multicast",
		"255.255.255.255":  "broadcast",
		"240.0.0.1":        "reserved",
		"192.0.0.8":        "IETF protocol assignment",
		"192.0.2.1":        "documentation",
		"198.51.100.1":     "documentation",
		"203.0.113.1":      "documentation",
		"198.18.0.1":       "benchmarking",
		"198.19.255.1":     "benchmarking",
		"2001:db8::1":      "documentation",
		"3fff::1":          "documentation",
		"2001:2::1":        "benchmarking",
		"2001::1":          "Teredo",
		"64:ff9b::a00:1":   "NAT64-mapped private",
		"64:ff9b::7f00:1":  "NAT64-mapped loopback",
		"64:ff9b:1::1":     "NAT64 local-use",
		"2002:a00:1::1":    "6to4-mapped private",
		"::7f00:1":         "reserved", // IPv4-compatible, deprecated
		"fec0::1":          "site-local",
		"100::1":           "discard-only",
	} {
		err := p.CheckAddr(netip.MustParseAddr(addr))
		var ae *egress.AddressError
		if !errors.As(err, &ae) || !errors.Is(err, egress.ErrForbiddenAddress) {
			t.Errorf("%s: got %v, want a refusal", addr, err)
			continue
		}
		if ae.Kind != kind {
			t.Errorf("%s: kind %q, want %q", addr, ae.Kind, kind)
		}
	}
	for _, addr := range []string{"1.2.3.4", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::102:304", "2002:102:304::1", "::ffff:1.2.3.4"} {
		if err := p.CheckAddr(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("%s: %v, want it allowed as public", addr, err)
		}
	}
}

func TestCheckAddrAllowList(t *testing.T) {
	p := newPolicy(t, "-egress.allow=127.0.0.1/32,10.1.2.0/24,fd00:1::/64")
	for addr, allowed := range map[string]bool{
		"127.0.0.1":        true,
		"::ffff:127.0.0.1": true,
		"127.0.0.2":        false,
		"::1":              false,
		"10.1.2.200":       true,
		"10.1.3.1":         false,
		"fd00:1::5":        true,
		"fd00:2::5":        false,
		"169.254.169.254":  false,
	} {
		err := p.CheckAddr(netip.MustParseAddr(addr))
		if allowed != (err == nil) {
			t.Errorf("%s: got %v, want allowed=%v", addr, err, allowed)
		}
	}
}

func TestValidateURL(t *testing.T) {
	strict := newPolicy(t)
	lab := newPolicy(t, "-egress.allow=127.0.0.1/32,10.1.2.0/24", "-egress.allow-http")
	allowedNoHTTP := newPolicy(t, "-egress.allow=127.0.0.1/32")

	for _, tc := range []struct {
		policy    *egress.Policy
		url       string
		reason    string // substring of the reason; "" when the URL is accepted
		forbidden bool   // refused for its address
	}{
		{strict, "https://chat.example.com/hook", "", false},
		{strict, "https://CHAT.Example.com:8443/hook?x=1#f", "", false},
		{strict, "https://chat.example.com./hook", "", false},
		{strict, "https://my_bot.example.com/hook", "", false},
		{strict, "https://1.2.3.4/hook", "", false},
		{strict, "https://[2606:4700::1111]:443/hook", "", false},
		{strict, "https://intranet.example/hook", "", false}, // names are checked when connecting

		{strict, "http://chat.example.com/hook", "must use https", false},
		{strict, "ftp://chat.example.com/hook", "must use https", false},
		{strict, "HTTP://chat.example.com/hook", "must use https", false},
		{strict, "https://user:secret@chat.example.com/hook", "user name or password", false},
		{strict, "https://user@chat.example.com/hook", "user name or password", false},
		{strict, "/hook", "absolute URL", false},
		{strict, "//chat.example.com/hook", "absolute URL", false},
		{strict, "https:chat.example.com", "absolute URL", false},
		{strict, "https:///hook", "must have a host", false},
		{strict, "https://chat.example.com:0/", "invalid port", false},
		{strict, "https://chat.example.com:99999/", "invalid port", false},
		{strict, "https://chat example.com/", "not a valid URL", false},
		{strict, "https://" + strings.Repeat("a", 2100) + ".example/", "longer than 2048", false},
		{strict, "https://-bad.example/", "hyphen", false},
		{strict, "https://a..example/", "not a valid host name", false},
		{strict, "https://bücher.example/", "punycode", false},
		{strict, "https://localhost/hook", "loopback name", false},
		{strict, "https://api.localhost:8080/hook", "loopback name", false},
		{strict, "https://2130706433/", "usual form", false},
		{strict, "https://0x7f000001/", "usual form", false},
		{strict, "https://127.1/", "usual form", false},
		{strict, "https://0177.0.0.1/", "usual form", false},

		{strict, "https://127.0.0.1/hook", "host 127.0.0.1 is a loopback address", true},
		{strict, "https://[::1]/hook", "is a loopback address", true},
		{strict, "https://[::ffff:127.0.0.1]/hook", "is an IPv4-mapped loopback address", true},
		{strict, "https://10.0.0.1/hook", "host 10.0.0.1 is a private address", true},
		{strict, "https://172.16.5.4/hook", "is a private address", true},
		{strict, "https://192.168.1.1/hook", "is a private address", true},
		{strict, "https://169.254.169.254/latest/meta-data/", "is a cloud metadata address", true},
		{strict, "https://[fe80::1]/hook", "is a link-local address", true},
		{strict, "https://[fe80::1%25eth0]/hook", "IPv6 zone", false},
		{strict, "https://[fc00::1]/hook", "is a private address", true},
		{strict, "https://100.64.0.1/hook", "is a shared (carrier-grade NAT) address", true},
		{strict, "https://0.0.0.0/hook", "is an unspecified address", true},
		{strict, "https://[::]/hook", "is an unspecified address", true},
		{strict, "https://[64:ff9b::a00:5]/hook", "NAT64-mapped private", true},

		{lab, "http://127.0.0.1:8081/hook", "", false},
		{lab, "https://127.0.0.1:8443/hook", "", false},
		{lab, "http://10.1.2.3/hook", "", false},
		{lab, "http://10.1.3.3/hook", "must use https", false},
		{lab, "https://10.1.3.3/hook", "is a private address", true},
		{lab, "http://localhost:8081/hook", "must use https", false},
		{lab, "http://chat.example.com/hook", "must use https", false},
		{allowedNoHTTP, "http://127.0.0.1:8081/hook", "must use https", false},
		{allowedNoHTTP, "https://127.0.0.1:8443/hook", "", false},
	} {
		err := tc.policy.ValidateURL(tc.url)
		if tc.reason == "" {
			if err != nil {
				t.Errorf("%s: %v, want it accepted", tc.url, err)
			}
			continue
		}
		var ue *egress.URLError
		if !errors.As(err, &ue) {
			t.Errorf("%s: got %v, want a *URLError", tc.url, err)
			continue
		}
		if !strings.Contains(ue.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want it to contain %q", tc.url, ue.Reason, tc.reason)
		}
		if got := errors.Is(err, egress.ErrForbiddenAddress); got != tc.forbidden {
			t.Errorf("%s: errors.Is(ErrForbiddenAddress) = %v, want %v", tc.url, got, tc.forbidden)
		}
		if !egress.Permanent(err) {
			t.Errorf("%s: not permanent", tc.url)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error %q repeats the password", tc.url, err)
		}
	}
}
