-- Templates (prepared answers, [002]) and their keyword shortcuts ([004]).
-- A template belongs to the tenant (queue_id NULL) or to one queue; its
-- bodies are per channel (chat, sms: text; email: subject, text and/or
-- sanitised HTML), kept as one JSON object whose keys are the channels
-- that have one. Attachments are copies of uploads (name, type, size,
-- blob key), at most 3.
CREATE TABLE templates (
    id          uuid PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    queue_id    uuid        REFERENCES queues (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- keyword: lower-case letters, digits, - and _; unique per scope.
    keyword     text        CHECK (keyword ~ '^[a-z0-9_-]{1,32}$'),
    bodies      jsonb       NOT NULL,
    attachments jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(attachments) = 'array' AND jsonb_array_length(attachments) <= 3),
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX templates_tenant ON templates (tenant_id, created_at, id);
-- One keyword per scope: the tenant's own (no queue) or one queue's.
CREATE UNIQUE INDEX templates_keyword_scope ON templates
    (tenant_id, coalesce(queue_id, '00000000-0000-0000-0000-000000000000'::uuid), keyword)
    WHERE keyword IS NOT NULL;
-- The shortcut search: a keyword prefix range within the tenant, on each
-- keystroke.
CREATE INDEX templates_keyword_prefix ON templates (tenant_id, keyword text_pattern_ops)
    WHERE keyword IS NOT NULL;

-- Custom fields of contacts: a flat map of names to string values, filled
-- by agents and used by templates as {{contact.<name>}}.
ALTER TABLE contacts ADD COLUMN custom_fields jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(custom_fields) = 'object');
