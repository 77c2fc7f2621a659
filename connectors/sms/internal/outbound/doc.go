// Package outbound is the sending side of the SMS connector: it turns a send
// command (events.SendMessage on events.TopicOutbound("sms")) into one
// message created through Twilio's REST API with twilio-go, and reports the
// outcome as an events.Delivery.
//
// # Pieces
//
//   - API builds a twilio-go client per account and call: the account's API
//     key, or else its account SID and auth token; the call's context bound
//     to every request; Twilio's hosts, or a configured base URL (an egress
//     proxy, or a test server).
//   - Segment says how a body travels: GSM-7 or UCS-2, and in how many SMS.
//   - Ledger, the send ledger every connector shares (pkg/sendledger) in
//     PostgreSQL schema sms, remembers what became of each message id, so
//     that a replayed command is not sent twice.
//   - Handler ties them together for one command, with the consent store:
//     a number that opted out (STOP) is never sent to.
//
// # Delivery guarantee, and its window
//
// The ledger row of a message goes attempting -> sent or failed (through
// pending between retries), and a final status is never left: a command
// replayed after its outcome was
// recorded (a rebalance, a crash after sending but before the Kafka offset
// was committed) calls Twilio for nothing and only publishes the recorded
// delivery status again.
//
// Twilio has no idempotency key, so an attempt whose outcome was not learnt
// (the process died after Twilio answered 201 but before 'sent' was
// recorded; a timeout; a 5xx, which a gateway may return after Twilio
// created the message) is recorded as in doubt, with the time it started.
// Before another attempt, Twilio's latest messages to the customer are
// listed and one created by the doubtful attempt is adopted instead of
// sending again: same sender, same body, direction outbound-api, created no
// earlier than the attempt (less clockSkew), and whose SID no other ledger
// row holds. An attempt cut short by a crash holds the message until its
// lease (the Twilio timeout and 30 s) runs out; only then does the replay
// look for it, so that a consumer still calling Twilio is never raced.
// What remains:
//
//   - If Twilio has not yet listed the message when the replay looks (the
//     list is not guaranteed to be immediately consistent), it is sent a
//     second time.
//   - If another message with the same body went from the same sender to
//     the same number in that interval without passing through this ledger
//     (sent from Twilio's console, or by another system), it may be adopted
//     in place of ours, and ours is then not sent.
//   - While Twilio's list cannot be read, an in-doubt message is neither
//     sent nor failed: Handle returns an error and the command is handled
//     again later.
//
// Toward Twilio the connector is therefore at-least-once with duplicates
// only in the first case, which needs a crash or a lost answer and a lagging
// list at once.
package outbound
