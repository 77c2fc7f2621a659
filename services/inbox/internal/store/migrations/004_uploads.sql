-- Files agents upload to attach to their replies. The content is in the
-- blob store under blob_key (namespace "<tenant>/uploads"); a reply copies
-- name, type, size and key into its message's attachments, so an upload
-- may be attached to several replies and outlives none of them.
CREATE TABLE uploads (
    id           uuid PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- Who uploaded it: a user or an API token, as in conversation_audit.
    actor_kind   text        NOT NULL CHECK (actor_kind IN ('user', 'api_token')),
    actor_id     uuid        NOT NULL,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    content_type text        NOT NULL CHECK (length(content_type) BETWEEN 1 AND 255),
    size         bigint      NOT NULL CHECK (size > 0),
    blob_key     text        NOT NULL CHECK (length(blob_key) BETWEEN 1 AND 512),
    created_at   timestamptz NOT NULL
);
CREATE INDEX uploads_tenant ON uploads (tenant_id, created_at);
