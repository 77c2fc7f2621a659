-- What became of each SMS the connector was asked to send. The primary key
-- on message_id is what makes a replayed command harmless.
CREATE TABLE sent_messages (
    message_id      text PRIMARY KEY,
    tenant_id       text NOT NULL,
    account_id      text NOT NULL,
    conversation_id text NOT NULL DEFAULT '',
    to_number       text NOT NULL DEFAULT '',
    -- The number (E.164) or Messaging Service (MG...) sent from.
    sender          text NOT NULL DEFAULT '',
    twilio_sid      text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text NOT NULL DEFAULT '',
    -- GSM-7 or UCS-2, and how many SMS segments the body takes.
    encoding        text NOT NULL DEFAULT '',
    segments        integer NOT NULL DEFAULT 0 CHECK (segments >= 0),
    -- Start of the earliest attempt that may have created the message at
    -- Twilio without our knowing (no answer, a 5xx, a crash): before sending
    -- again, Twilio's message list is searched for it. NULL when no attempt
    -- is in doubt.
    in_doubt_since  timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- A Twilio message belongs to one of ours at most: a message found while
-- resolving a doubtful attempt is adopted only if no other row has it. The
-- status callbacks name messages by this SID too.
CREATE UNIQUE INDEX sent_messages_twilio_sid ON sent_messages (twilio_sid) WHERE twilio_sid <> '';
