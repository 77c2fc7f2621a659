-- Email: what a received email carries besides its text, and mailboxes as
-- channel accounts.

-- subject was added by 002 for replies; inbound email fills it too.
-- html is the sanitised HTML body (the text stays in body); automatic
-- marks what a machine sent (an auto-reply, a bounce, a list's mail);
-- attachments lists the files kept in the blob store, NULL when none.
ALTER TABLE messages
    ADD COLUMN html        text,
    ADD COLUMN automatic   boolean NOT NULL DEFAULT false,
    ADD COLUMN attachments jsonb;

-- Two live mailboxes of a tenant on one address would ingest its mail
-- twice.
CREATE UNIQUE INDEX channel_accounts_mailbox_address ON channel_accounts (tenant_id, lower(settings ->> 'address'))
    WHERE channel = 'email' AND deleted_at IS NULL;
