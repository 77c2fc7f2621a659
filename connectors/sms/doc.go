// Package sms is the SMS connector: Twilio's messaging webhooks in, and the
// agents' replies out through Twilio's API.
//
// Inbound (package internal/inbound): Twilio posts each SMS or MMS to
// MessagesPath and each status of a sent message to StatusPath. Both are
// verified with X-Twilio-Signature against the configured public base URL
// (-sms.public-base-url) plus the request's path and query, never the Host
// header; an unknown or deleted account, a missing or wrong signature gets
// 403 and is counted (switchboard.sms.webhooks.rejected{reason}). A message
// becomes an sb.message.received.v1 event on sb.inbound.v1, keyed by its
// conversation (our number and the customer's), with an id derived from
// (account, MessageSid) so that Twilio's retries are stored once; the
// webhook is answered only after Kafka acknowledged it, with 503 when it
// did not. MMS media are fetched with the account's credentials and kept in
// the blob store. STOP, ARRÊT, START and the other standard keywords change
// the number's consent before the answer, and the message still reaches
// the agents. Status callbacks become sb.message.delivery.v1 events on
// sb.delivery.v1; Twilio's error 21610 opts the number out too.
//
// The connector learns its accounts (events.SMSAccount: the Twilio account,
// its auth token or API key, its numbers) from sb.config.v1; a deleted one
// refuses every webhook at once. Its schema, sms, holds the consent of
// customers' numbers (internal/consent).
package sms
