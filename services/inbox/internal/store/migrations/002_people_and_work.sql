-- Queues, skills, users and their sessions; tag lists; contact notes; the
-- conversation state machine's columns and its audit log; what agents need
-- to list, qualify and answer.

CREATE TABLE queues (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE skills (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role          text        NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    permissions   text[]      NOT NULL DEFAULT '{}',
    languages     text[]      NOT NULL DEFAULT '{}',
    capacity      int         NOT NULL DEFAULT 5 CHECK (capacity BETWEEN 0 AND 100),
    -- argon2id in the PHC string format; NULL: the user cannot log in yet.
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

CREATE TABLE user_queues (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    queue_id uuid NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, queue_id)
);
CREATE INDEX user_queues_queue ON user_queues (queue_id);

CREATE TABLE user_skills (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    skill_id uuid NOT NULL REFERENCES skills (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, skill_id)
);

-- A login session: a short-lived access token and a refresh token, both
-- stored as SHA-256 hashes. Refreshing rotates both; presenting a refresh
-- token that was already rotated away revokes the session (it was stolen
-- or replayed).
CREATE TABLE sessions (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id            uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_hash        bytea       NOT NULL UNIQUE,
    access_expires_at  timestamptz NOT NULL,
    refresh_hash       bytea       NOT NULL UNIQUE,
    previous_refresh   bytea,
    refresh_expires_at timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz
);
CREATE INDEX sessions_previous_refresh ON sessions (previous_refresh) WHERE previous_refresh IS NOT NULL;
CREATE INDEX sessions_user ON sessions (user_id);

-- API tokens act with a role, like users.
ALTER TABLE api_tokens
    ADD COLUMN role        text   NOT NULL DEFAULT 'admin' CHECK (role IN ('agent', 'supervisor', 'admin')),
    ADD COLUMN permissions text[] NOT NULL DEFAULT '{}';

-- A tag list: the values an agent picks one of to qualify a message.
CREATE TABLE tag_lists (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    "values"   text[]      NOT NULL CHECK (cardinality("values") BETWEEN 1 AND 500),
    mandatory  boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

ALTER TABLE contacts ADD COLUMN preferred_language text NOT NULL DEFAULT '';
CREATE INDEX contacts_name ON contacts (tenant_id, lower(name) text_pattern_ops);

-- Internal notes on a contact ("annotations"); customers never see them.
CREATE TABLE contact_notes (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id uuid        NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    author_id  text        NOT NULL,
    body       text        NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_notes_contact ON contact_notes (contact_id, created_at);

ALTER TABLE conversations
    ADD CONSTRAINT conversations_state CHECK (state IN ('new', 'offered', 'assigned', 'answered', 'deferred', 'help_requested', 'external', 'closing', 'done')),
    ADD COLUMN previous_state    text,
    ADD COLUMN queue_id          uuid REFERENCES queues (id) ON DELETE SET NULL,
    ADD COLUMN assignee_ids      uuid[]      NOT NULL DEFAULT '{}',
    ADD COLUMN last_agent_id     uuid,
    -- The fencing token of the last assignment: an assignment carrying an
    -- older token (its Redis lease expired meanwhile) is refused.
    ADD COLUMN fence             bigint      NOT NULL DEFAULT 0,
    ADD COLUMN required_skill_id uuid REFERENCES skills (id) ON DELETE SET NULL,
    ADD COLUMN required_language text        NOT NULL DEFAULT '',
    ADD COLUMN priority          int         NOT NULL DEFAULT 0,
    ADD COLUMN language          text        NOT NULL DEFAULT '',
    -- The tags of the latest message, carried over to the next one.
    ADD COLUMN tags              jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN flagged           boolean     NOT NULL DEFAULT false,
    ADD COLUMN locked            boolean     NOT NULL DEFAULT false,
    ADD COLUMN ignored           boolean     NOT NULL DEFAULT false,
    ADD COLUMN muted             boolean     NOT NULL DEFAULT false,
    ADD COLUMN unread            boolean     NOT NULL DEFAULT true,
    ADD COLUMN last_writer       text        NOT NULL DEFAULT 'customer' CHECK (last_writer IN ('customer', 'agent')),
    ADD COLUMN deferred_until    timestamptz,
    ADD COLUMN disposition       text,
    ADD COLUMN completion_notes  text,
    ADD COLUMN updated_at        timestamptz NOT NULL DEFAULT now();

-- Room on each page for a row's next version: a conversation is updated
-- with every message, and an update that fits its page and changes no
-- indexed column touches no index (HOT).
ALTER TABLE conversations SET (fillfactor = 80);

-- The tabs: a tenant's conversations in a state, oldest first; the second
-- serves the received tab filtered on queue and channel.
CREATE INDEX conversations_tab ON conversations (tenant_id, state, started_at, id);
CREATE INDEX conversations_tab_queue ON conversations (tenant_id, state, queue_id, channel, started_at, id);
CREATE INDEX conversations_assignees ON conversations USING gin (assignee_ids);
CREATE INDEX conversations_tags ON conversations USING gin (tags jsonb_path_ops);
CREATE INDEX conversations_contact ON conversations (contact_id);

ALTER TABLE messages
    ADD COLUMN language            text        NOT NULL DEFAULT '',
    ADD COLUMN tags                jsonb       NOT NULL DEFAULT '{}',
    ADD COLUMN author_id           text,
    ADD COLUMN subject             text,
    ADD COLUMN cc                  text[],
    ADD COLUMN delivery_status     text CHECK (delivery_status IN ('pending', 'sent', 'delivered', 'read', 'failed')),
    ADD COLUMN delivery_error      text,
    ADD COLUMN delivery_updated_at timestamptz;
-- Full-text search over bodies, language-neutral ('simple': no stemming,
-- so that one index serves every language). An expression index, not a
-- stored column: the vector is only needed in the index.
CREATE INDEX messages_search ON messages USING gin (to_tsvector('simple', body));

-- Who did what to a conversation, when, from which state to which, and why.
CREATE TABLE conversation_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    actor_kind      text        NOT NULL CHECK (actor_kind IN ('user', 'api_token', 'customer', 'system')),
    actor_id        text        NOT NULL DEFAULT '',
    action          text        NOT NULL,
    from_state      text,
    to_state        text,
    reason          text        NOT NULL DEFAULT '',
    data            jsonb
);
CREATE INDEX conversation_audit_conversation ON conversation_audit (conversation_id, id);
