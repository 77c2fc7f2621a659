package email

import (
	"slices"
	"strings"

	"github.com/switchboard-oss/switchboard/connectors/email/internal/mailparse"
)

// ownDomains returns the domains of a tenant's mailboxes' addresses,
// sorted, without those of the mailbox providers that millions share: a
// mail whose Message-ID is on an own domain is taken for the tenant's own
// (mailparse.Options.OwnDomains), and Thunderbird and Apple Mail write
// their Message-IDs on the sender's domain, so a tenant answering from
// support.acme@gmail.com would otherwise take every Gmail customer who
// writes from Thunderbird for a machine.
func (m *mailboxes) ownDomains(tenantID string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, mb := range m.byID {
		if mb.TenantID != tenantID {
			continue
		}
		at := strings.LastIndexByte(mb.Address, '@')
		if at < 0 {
			continue
		}
		d := strings.ToLower(strings.TrimSuffix(mb.Address[at+1:], "."))
		if d == "" || sharedMailDomain(d) || slices.Contains(out, d) {
			continue
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// sharedMailDomains are the domains of the consumer mailbox providers of
// Switchboard's users (Europe, the Americas, East Asia): nobody owns them.
// A provider missing here costs a tenant on it only the automatic answers
// to its customers on the same provider, and only those who write from a
// desktop client.
var sharedMailDomains = map[string]bool{
	"gmail.com": true, "googlemail.com": true, "outlook.com": true, "hotmail.com": true, "live.com": true, "msn.com": true,
	"yahoo.com": true, "ymail.com": true, "aol.com": true, "icloud.com": true, "me.com": true, "mac.com": true,
	"proton.me": true, "protonmail.com": true, "pm.me": true, "zoho.com": true, "gmx.com": true, "gmx.net": true,
	"gmx.de": true, "gmx.at": true, "gmx.ch": true, "web.de": true, "t-online.de": true, "freenet.de": true,
	"posteo.de": true, "mailbox.org": true, "orange.fr": true, "wanadoo.fr": true, "free.fr": true, "laposte.net": true,
	"sfr.fr": true, "neuf.fr": true, "bbox.fr": true, "libero.it": true, "virgilio.it": true, "tiscali.it": true,
	"alice.it": true, "tim.it": true, "telefonica.net": true, "terra.com": true, "sapo.pt": true, "seznam.cz": true,
	"centrum.cz": true, "wp.pl": true, "o2.pl": true, "onet.pl": true, "interia.pl": true, "mail.ru": true,
	"yandex.ru": true, "yandex.com": true, "ukr.net": true, "abv.bg": true, "freemail.hu": true, "telenet.be": true,
	"skynet.be": true, "ziggo.nl": true, "kpnmail.nl": true, "bluewin.ch": true, "btinternet.com": true,
	"sky.com": true, "qq.com": true, "163.com": true, "126.com": true, "sina.com": true, "naver.com": true,
	"daum.net": true, "hanmail.net": true, "yahoo.co.jp": true, "uol.com.br": true, "bol.com.br": true,
}

// sharedMailDomain reports whether d is a consumer provider's domain: one
// of sharedMailDomains, or a national domain of the providers that have
// one per country (hotmail.fr, yahoo.de, live.co.uk, outlook.it).
func sharedMailDomain(d string) bool {
	if sharedMailDomains[d] {
		return true
	}
	name, _, _ := strings.Cut(d, ".")
	switch name {
	case "hotmail", "outlook", "live", "yahoo", "gmx", "windowslive":
		return true
	}
	return false
}

// mailParsers builds a mailbox's parser, and a new one when the tenant's
// own domains change: a mailbox added to the tenant, or moved to another
// domain, is learned by the running sync of every other mailbox of the
// tenant without restarting it. Used by that one sync only.
type mailParsers struct {
	opts    mailparse.Options
	domains []string
	parser  *mailparse.Parser
}

// get returns the parser for the tenant's current own domains.
func (p *mailParsers) get(domains []string) (*mailparse.Parser, error) {
	if p.parser != nil && slices.Equal(p.domains, domains) {
		return p.parser, nil
	}
	opts := p.opts
	opts.OwnDomains = domains
	parser, err := mailparse.NewParser(opts)
	if err != nil {
		return nil, err
	}
	p.parser, p.domains = parser, domains
	return parser, nil
}
