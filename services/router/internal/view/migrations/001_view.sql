-- The router's view of what it routes, built from sb.config.v1 and
-- sb.conversations.v1: enough to rebuild its Redis state after Redis
-- loses its data, and to find what an agent who went silent holds.

-- Agents: what routing needs of each user, and the presence they set.
CREATE TABLE agents (
    id             uuid PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    capacity       int         NOT NULL,
    queue_ids      uuid[]      NOT NULL DEFAULT '{}',
    skill_ids      uuid[]      NOT NULL DEFAULT '{}',
    languages      text[]      NOT NULL DEFAULT '{}',
    disabled       boolean     NOT NULL DEFAULT false,
    presence       text        NOT NULL DEFAULT 'offline',
    -- When the agent was last seen leaving (presence offline, or
    -- heartbeats stopped); NULL while connected.
    offline_since  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agents_tenant ON agents (tenant_id);

-- Queues and their routing settings (events.QueueRouting).
CREATE TABLE queues (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL,
    routing    jsonb,
    deleted    boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queues_tenant ON queues (tenant_id);

-- Conversations: their routing fields, who holds them, and the agents
-- excluded from their next offer (those who missed or rejected it). A
-- done conversation keeps its row, so that an older event delivered again
-- cannot bring it back to life.
CREATE TABLE conversations (
    id                uuid PRIMARY KEY,
    tenant_id         uuid        NOT NULL,
    key               bytea       NOT NULL,
    channel           text        NOT NULL,
    queue_id          uuid,
    state             text        NOT NULL,
    version           bigint      NOT NULL,
    state_version     bigint      NOT NULL,
    state_since       timestamptz NOT NULL,
    assignee_ids      uuid[]      NOT NULL DEFAULT '{}',
    required_skill_id uuid,
    required_language text        NOT NULL DEFAULT '',
    priority          int         NOT NULL DEFAULT 0,
    bypass            boolean     NOT NULL DEFAULT false,
    excluded          uuid[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX conversations_tenant ON conversations (tenant_id) WHERE state <> 'done';
CREATE INDEX conversations_assignees ON conversations USING gin (assignee_ids);
