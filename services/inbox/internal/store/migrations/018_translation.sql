-- Translation ([002]): a tenant's translator, and the translations of
-- messages (ADR 20).

-- A tenant's translator: a LibreTranslate-compatible HTTP API. A tenant
-- without a row translates nothing. The URL passed the operator's egress
-- policy when it was saved; every call is checked again at connect time.
CREATE TABLE translation_settings (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    enabled    boolean     NOT NULL DEFAULT false,
    provider   text        NOT NULL CHECK (provider IN ('libretranslate')),
    url        text        NOT NULL DEFAULT '' CHECK (length(url) <= 2048),
    -- Sent to the translator, never shown by the API ('' for none).
    api_key    text        NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A message's translation, at most one: an inbound message translated for
-- the agents (text is the translation, the body the original), or a reply
-- sent translated (original is what the agent wrote, text and the body what
-- the customer got). Pending rows are the translation worker's queue.
CREATE TABLE message_translations (
    message_id      uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    tenant_id       uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    source_language text        NOT NULL DEFAULT '',
    target_language text        NOT NULL,
    text            text,
    original        text,
    error           text,
    -- Who asked: system (an inbound message no agent reads), or the user
    -- or token that asked for it.
    requested_by    text        NOT NULL,
    -- Each request (a new target language) is a new generation: a worker
    -- finishing an older one writes nothing.
    generation      bigint      NOT NULL DEFAULT 1,
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A worker holds a pending row until then; past it (the worker died),
    -- another takes it.
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_translations_pending ON message_translations (next_attempt_at) WHERE state = 'pending';
