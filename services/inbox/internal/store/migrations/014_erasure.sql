-- The admin's duties on data ([000], [002], GDPR art. 17): anonymised
-- messages, erased contacts, the blobs an erasure still has to delete, and
-- the admin audit log, which outlives the conversations it speaks of.

-- An anonymised message keeps the fact that it arrived (its times,
-- channel account, direction, author kind and author id, delivery
-- status); its content is gone for good. anonymised_by is the actor
-- (kind:id) who did it.
ALTER TABLE messages
    ADD COLUMN anonymised_at timestamptz,
    ADD COLUMN anonymised_by text;

-- An erased contact keeps its id (its conversations stay as facts) and
-- nothing that names the person.
ALTER TABLE contacts ADD COLUMN erased_at timestamptz;

-- Whether another message of the tenant still names a blob, before an
-- erasure deletes it (blobs are content-addressed, so two messages with
-- the same file share one).
CREATE INDEX messages_attachment_keys ON messages USING gin (attachments jsonb_path_ops) WHERE attachments IS NOT NULL;

-- Blobs an erasure removed every reference to, written in its
-- transaction and deleted from the blob store after it commits; a row
-- left by a failed deletion is retried by the next erasure's sweep.
CREATE TABLE blob_erasures (
    blob_key  text        PRIMARY KEY,
    tenant_id uuid        NOT NULL,
    queued_at timestamptz NOT NULL
);

-- Who anonymised, deleted or erased what, when: ids only, never content.
-- Not in conversation_audit, which a deleted conversation takes with it.
CREATE TABLE admin_audit (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    actor_kind      text        NOT NULL CHECK (actor_kind IN ('user', 'api_token')),
    actor_id        text        NOT NULL,
    action          text        NOT NULL CHECK (action IN ('anonymise', 'delete_message', 'delete_conversation', 'erase_contact')),
    conversation_id uuid,
    message_id      uuid,
    contact_id      uuid,
    -- Counts of what went with it (messages, conversations, blobs).
    data            jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX admin_audit_tenant ON admin_audit (tenant_id, at DESC, id DESC);
