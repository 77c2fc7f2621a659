-- The Outlook conversations of a thread: the root of the Thread-Index its
-- mails carry (the first 22 bytes, hex), for replies whose client kept
-- Thread-Index and Thread-Topic but dropped In-Reply-To and References.
-- topic_hash is the SHA-256 (hex) of the conversation's topic as
-- subject.Key normalises it: a reply joins only when its own topic hashes
-- the same, and no subject text is kept here for erasure to blank.
CREATE TABLE thread_roots (
    mailbox_id text        NOT NULL,
    root       text        NOT NULL,
    topic_hash text        NOT NULL,
    thread_key text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, root, topic_hash)
);
CREATE INDEX thread_roots_thread ON thread_roots (mailbox_id, thread_key);
