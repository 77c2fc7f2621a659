// Package email is the email connector: it synchronises tenants' mailboxes
// over IMAP into sb.inbound.v1 and sends the agents' replies over SMTP from
// sb.outbound.email.v1.
package email
