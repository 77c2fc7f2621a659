-- Every mail the connector ingested or sent, by Message-ID, with the
-- thread it belongs to: a reply's In-Reply-To and References find their
-- thread here.
CREATE TABLE messages (
    mailbox_id  text        NOT NULL,
    message_id  text        NOT NULL,
    thread_key  text        NOT NULL,
    -- external_id is the id the inbox knows the message by: the event's
    -- external id of an ingested mail, the inbox's message id of a reply.
    external_id text        NOT NULL,
    direction   text        NOT NULL CHECK (direction IN ('in', 'out')),
    subject     text        NOT NULL DEFAULT '',
    refs        text[]      NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, message_id)
);
CREATE INDEX messages_external ON messages (mailbox_id, external_id);

-- A thread's token, carried by replies in their Reply-To address and
-- subject, for clients that drop In-Reply-To and References.
CREATE TABLE threads (
    mailbox_id text        NOT NULL,
    thread_key text        NOT NULL,
    token      text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, thread_key)
);
