-- Exports: a tenant's setting for sending a conversation by email to an
-- outsider ([000]). Printing and PDF export need no setting; sending by
-- email is off until an admin turns it on and names the mailbox that
-- sends it. A tenant without a row has it off.
CREATE TABLE export_settings (
    tenant_id     uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    send_by_email boolean     NOT NULL DEFAULT false,
    -- The mailbox (an email channel account of the tenant) whose SMTP
    -- server and address send the mail; required while send_by_email is
    -- on. A mailbox deleted later stays named here, and sending refuses
    -- until another is chosen.
    mailbox_id    uuid REFERENCES channel_accounts (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT send_by_email OR mailbox_id IS NOT NULL)
);

-- Transcripts sent by email: their PDF stays in the blob store for the
-- email connector to attach. An erasure of any message of the
-- conversation deletes the PDF (it holds the message) and the row.
CREATE TABLE transcripts (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    blob_key        text        NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX transcripts_conversation ON transcripts (conversation_id);
