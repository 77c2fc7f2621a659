package inbound

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Consent values of the "consent" metadata of a message that was an
// opt-out keyword.
const (
	ConsentOptedOut = "opted_out"
	ConsentOptedIn  = "opted_in"
	ConsentHelp     = "help"
)

// keywords are Twilio's standard opt-out, opt-in and help keywords, plus
// the French ARRET / ARRÊT that French carriers and customers use. Twilio
// matches the whole message, trimmed and case-insensitively; so do we.
var keywords = map[string]string{
	"STOP":        ConsentOptedOut,
	"STOPALL":     ConsentOptedOut,
	"UNSUBSCRIBE": ConsentOptedOut,
	"CANCEL":      ConsentOptedOut,
	"END":         ConsentOptedOut,
	"QUIT":        ConsentOptedOut,
	"ARRET":       ConsentOptedOut,
	"ARRÊT":       ConsentOptedOut,
	"START":       ConsentOptedIn,
	"YES":         ConsentOptedIn,
	"UNSTOP":      ConsentOptedIn,
	"HELP":        ConsentHelp,
	"INFO":        ConsentHelp,
}

// Keyword returns what a message body means for consent: ConsentOptedOut,
// ConsentOptedIn, ConsentHelp, or "" for an ordinary message. Only a body
// that is nothing but the keyword counts: "stop calling me at work" is a
// message for an agent, not an opt-out. optOutType, when Twilio's Advanced
// Opt-Out recognised a keyword of its own configuration, wins.
func Keyword(body, optOutType string) string {
	switch optOutType {
	case "STOP":
		return ConsentOptedOut
	case "START":
		return ConsentOptedIn
	case "HELP":
		return ConsentHelp
	}
	// NFC first: a phone may send Ê as E followed by a combining
	// circumflex.
	w := strings.ToUpper(norm.NFC.String(strings.TrimSpace(body)))
	return keywords[w]
}
