// Package smtpsend is the sending side of the email connector: it turns a
// send command (events.SendMessage) into an RFC 5322 message that threads in
// the customer's mail client, submits it over SMTP, and reports the outcome
// as an events.Delivery.
//
// # Pieces
//
//   - Compose builds the message: From, To, Cc, Subject, a Message-ID that is
//     deterministic for the command's message id, In-Reply-To and References
//     (RFC 5322 section 3.6.4), Reply-To, X-Loop and a multipart/alternative
//     body (text/plain and text/html, UTF-8, quoted-printable).
//   - Sender submits one composed message to the mailbox's SMTP server (no
//     TLS, STARTTLS or implicit TLS; AUTH PLAIN/LOGIN or XOAUTH2) and says
//     whether a failure is worth retrying (*SendError).
//   - Ledger, the send ledger every connector shares (pkg/sendledger) in
//     PostgreSQL schema email, remembers what became of each message id,
//     so that a replayed command is never sent twice once its outcome is
//     recorded.
//   - Handler ties them together for one command.
//
// # Delivery guarantee, and its one window
//
// The ledger row of a message goes attempting -> sent or failed (through
// pending between retries), and a final status is never left: a command
// replayed after its outcome was
// recorded (a rebalance, a crash after sending but before the Kafka offset
// was committed) sends nothing and only publishes the recorded delivery
// status again.
//
// One window remains and cannot be closed from this side: SMTP has no
// idempotency key, so if the process dies (or PostgreSQL is unreachable)
// after the server answered 250 to the message but before 'sent' was
// recorded, the replay finds the attempt in doubt and submits the message a
// second time (after the attempt's lease ran out, so that a consumer still
// sending it is never raced). Toward SMTP the
// connector is therefore at-least-once, with a duplicate possible only in
// that window. The duplicate carries the same Message-ID, since Message-ID
// is derived from the command's message id and never from time or
// randomness, and mail clients and many stores (Gmail, Outlook, IMAP servers
// with duplicate suppression, Sieve "duplicate") collapse messages with the
// same Message-ID, so the customer normally sees one message.
package smtpsend
