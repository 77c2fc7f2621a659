-- One row per synchronised mailbox: how far its IMAP folder has been handed
-- on. UIDs and UIDVALIDITY are 32-bit unsigned on the wire (RFC 9051 2.3.1.1),
-- hence bigint with a range check.
CREATE TABLE imap_checkpoints (
    mailbox_id   text PRIMARY KEY,
    uid_validity bigint NOT NULL CHECK (uid_validity BETWEEN 1 AND 4294967295),
    last_uid     bigint NOT NULL CHECK (last_uid BETWEEN 0 AND 4294967295),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
