-- What became of each message the connector was asked to send. The
-- primary key on message_id is what makes a replayed command harmless.
CREATE TABLE sent_messages (
    message_id      text PRIMARY KEY,
    tenant_id       text NOT NULL,
    mailbox_id      text NOT NULL,
    conversation_id text NOT NULL DEFAULT '',
    smtp_message_id text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- A bounce names the mail it reports on by its Message-ID.
CREATE INDEX sent_messages_smtp_message_id ON sent_messages (smtp_message_id);
