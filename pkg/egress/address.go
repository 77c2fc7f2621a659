package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrForbiddenAddress matches (with errors.Is) every refusal of a
// destination address. Such a refusal is permanent: the tenant entered a URL
// that points inside the network, and retrying will not change that.
var ErrForbiddenAddress = errors.New("destination address is not allowed")

// AddressError is a destination that Switchboard refuses to connect to: a
// loopback, private, link-local, metadata or otherwise non-public address
// that is not on the operator's allow-list. It matches ErrForbiddenAddress.
type AddressError struct {
	// Host is the host name of the URL when the address came from resolving
	// it; empty when the URL holds the address itself.
	Host string
	// Addr is the refused address, as connected to (or written in the URL).
	Addr netip.Addr
	// Kind says what kind of address it is: "loopback", "private",
	// "link-local", "cloud metadata", "IPv4-mapped loopback", ...
	Kind string
}

// Reason is the refusal in words fit for the tenant, e.g. "host
// evil.example resolves to a private address 10.0.0.5".
func (e *AddressError) Reason() string {
	if e.Host != "" {
		return fmt.Sprintf("host %s resolves to %s %s address %s", e.Host, article(e.Kind), e.Kind, e.Addr)
	}
	return fmt.Sprintf("host %s is %s %s address", e.Addr, article(e.Kind), e.Kind)
}

func (e *AddressError) Error() string {
	return e.Reason() + ", which outbound calls to tenant URLs may not reach"
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *AddressError) Is(target error) bool { return target == ErrForbiddenAddress }

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// rule is a range of addresses refused for what it is.
type rule struct {
	prefix netip.Prefix
	kind   string
}

// denyRules lists the ranges that the netip predicates (IsLoopback,
// IsPrivate, IsLinkLocalUnicast, IsMulticast, IsUnspecified) do not cover:
// the special-purpose ranges of the IANA IPv4 and IPv6 registries that are
// not reachable on the public internet or have no business being a tenant's
// endpoint.
func denyRules() []rule {
	r := func(p, kind string) rule { return rule{netip.MustParsePrefix(p), kind} }
	return []rule{
		r("0.0.0.0/8", "this-network"),
		r("100.64.0.0/10", "shared (carrier-grade NAT)"),
		r("192.0.0.0/24", "IETF protocol assignment"),
		r("192.0.2.0/24", "documentation"),
		r("192.88.99.0/24", "reserved (6to4 relay)"),
		r("198.18.0.0/15", "benchmarking"),
		r("198.51.100.0/24", "documentation"),
		r("203.0.113.0/24", "documentation"),
		r("240.0.0.0/4", "reserved"),
		r("64:ff9b:1::/48", "NAT64 local-use"),
		r("100::/64", "discard-only"),
		r("2001::/32", "Teredo"),
		r("2001:2::/48", "benchmarking"),
		r("2001:10::/28", "non-routable (ORCHID)"),
		r("2001:20::/28", "non-routable (ORCHID)"),
		r("2001:db8::/32", "documentation"),
		r("3fff::/20", "documentation"),
		r("fec0::/10", "site-local"),
	}
}

// Well-known cloud instance metadata endpoints, refused by name so that the
// message says so (they are link-local, unique local or shared anyway).
const (
	metadataV4        = "169.254.169.254" // AWS, GCP, Azure, OpenStack, ...
	metadataV4Alibaba = "100.100.100.200"
	metadataV6        = "fd00:ec2::254" // AWS IPv6
)

// classifier decides which addresses are not public.
type classifier struct {
	rules     []rule
	metadata  []netip.Addr
	nat64     netip.Prefix
	sixToFour netip.Prefix
	global6   netip.Prefix
}

func newClassifier() classifier {
	return classifier{
		rules: denyRules(),
		metadata: []netip.Addr{
			netip.MustParseAddr(metadataV4), netip.MustParseAddr(metadataV4Alibaba), netip.MustParseAddr(metadataV6),
		},
		nat64:     netip.MustParsePrefix("64:ff9b::/96"),
		sixToFour: netip.MustParsePrefix("2002::/16"),
		global6:   netip.MustParsePrefix("2000::/3"),
	}
}

// kind returns what kind of non-public address a is, or "" when a is a
// public unicast address.
func (c classifier) kind(a netip.Addr) string {
	a = a.WithZone("")
	if !a.IsValid() {
		return "invalid"
	}
	if a.Is4In6() {
		if k := c.kind(a.Unmap()); k != "" {
			return "IPv4-mapped " + k
		}
		return ""
	}
	if a.Is6() {
		b := a.As16()
		if c.nat64.Contains(a) {
			if k := c.kind(netip.AddrFrom4([4]byte(b[12:16]))); k != "" {
				return "NAT64-mapped " + k
			}
			return ""
		}
		if c.sixToFour.Contains(a) {
			if k := c.kind(netip.AddrFrom4([4]byte(b[2:6]))); k != "" {
				return "6to4-mapped " + k
			}
			return ""
		}
	}
	for _, m := range c.metadata {
		if a == m {
			return "cloud metadata"
		}
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast():
		return "multicast"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	for _, r := range c.rules {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	if a.Is6() && !c.global6.Contains(a) {
		return "reserved"
	}
	return ""
}
