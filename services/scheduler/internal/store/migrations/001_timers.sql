-- The scheduler's own view of conversations and automation settings,
-- built from sb.conversations.v1 and sb.config.v1, and its timers.

-- What the scheduler knows of each conversation (rules.View).
CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    key              bytea       NOT NULL,
    channel          text        NOT NULL,
    queue_id         uuid,
    state            text        NOT NULL,
    version          bigint      NOT NULL,
    state_version    bigint      NOT NULL,
    state_since      timestamptz NOT NULL,
    deferred_until   timestamptz,
    offer_expires_at timestamptz,
    closing_asked_at timestamptz,
    activity_version bigint      NOT NULL DEFAULT 0,
    activity_at      timestamptz NOT NULL,
    ack_version      bigint      NOT NULL DEFAULT 0,
    answer           text        NOT NULL DEFAULT '',
    answer_version   bigint      NOT NULL DEFAULT 0,
    answer_at        timestamptz
) WITH (fillfactor = 80);
-- A settings change revisits the conversations of a tenant (or a queue)
-- that can have timers: not done ones.
CREATE INDEX conversations_open ON conversations (tenant_id, id) WHERE state <> 'done';
CREATE INDEX conversations_open_queue ON conversations (queue_id, id) WHERE state <> 'done';

-- Automation settings, as sb.config.v1 announces them.
CREATE TABLE tenant_settings (
    tenant_id uuid PRIMARY KEY,
    settings  jsonb NOT NULL
);
CREATE TABLE queue_settings (
    queue_id  uuid PRIMARY KEY,
    tenant_id uuid  NOT NULL,
    settings  jsonb NOT NULL
);
CREATE TABLE waiting_messages (
    id        uuid PRIMARY KEY,
    tenant_id uuid  NOT NULL,
    hours     jsonb NOT NULL
);
CREATE INDEX waiting_messages_tenant ON waiting_messages (tenant_id);

-- A timer: the command it sends the inbox when it comes due. id names
-- what it is for and the occurrence (rules.Timer); a fired timer stays,
-- with fired_at, until its occurrence is over, so that the same
-- occurrence never fires twice.
CREATE TABLE timers (
    id              text PRIMARY KEY,
    conversation_id uuid        NOT NULL,
    tenant_id       uuid        NOT NULL,
    kind            text        NOT NULL,
    due_at          timestamptz NOT NULL,
    command         jsonb       NOT NULL,
    key             bytea       NOT NULL,
    fired_at        timestamptz
) WITH (fillfactor = 80);
-- The fire loop reads the pending timers in due order.
CREATE INDEX timers_due ON timers (due_at) WHERE fired_at IS NULL;
CREATE INDEX timers_conversation ON timers (conversation_id);
