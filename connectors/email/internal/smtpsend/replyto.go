package smtpsend

import "strings"

// LoopHeader is the header field in which Switchboard marks the mail it
// sends, so that the inbound side recognises its own mail coming back (a
// customer's forwarding rule pointing at the support address, a mailing
// list that includes it) and never answers it. X-Loop is the de facto
// convention for this (procmail, RT, mailing list managers).
const LoopHeader = "X-Loop"

// LoopValue is the X-Loop value of mail sent from a mailbox. It names the
// mailbox, not just the product, so that mail one Switchboard mailbox sends
// to another (two tenants writing to each other) is not taken for a loop.
func LoopValue(mailboxAddress string) string {
	return "switchboard " + strings.ToLower(strings.TrimSpace(mailboxAddress))
}

// IsLoop reports whether any of the X-Loop values of an inbound message
// (values of LoopHeader, in any case) says that mailboxAddress sent it.
func IsLoop(values []string, mailboxAddress string) bool {
	want := LoopValue(mailboxAddress)
	for _, v := range values {
		if strings.EqualFold(strings.TrimSpace(v), want) {
			return true
		}
	}
	return false
}
