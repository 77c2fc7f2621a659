-- Commands from the scheduler and the router, and the automation settings
-- behind them: waiting messages, acknowledgements, smart close,
-- inactivity limits.

-- version counts the conversation's writes; state_version is the version
-- at which it entered its current state, state_since when. A command says
-- which of them it expects, so that a stale one changes nothing.
-- offer_expires_at is the end of a push offer; closing_asked_at is when
-- the smart-close question went out (NULL while smart close still waits
-- before asking).
ALTER TABLE conversations
    ADD COLUMN version          bigint NOT NULL DEFAULT 1,
    ADD COLUMN state_version    bigint NOT NULL DEFAULT 1,
    ADD COLUMN state_since      timestamptz,
    ADD COLUMN offer_expires_at timestamptz,
    ADD COLUMN closing_asked_at timestamptz;
UPDATE conversations SET state_since = updated_at;
ALTER TABLE conversations ALTER COLUMN state_since SET NOT NULL, ALTER COLUMN state_since SET DEFAULT now();

-- Every command applied, or found stale, once per id: a command delivered
-- again is recognised and skipped. due_at and applied_at measure how late
-- timers fire. Rows older than the retention are pruned.
CREATE TABLE applied_commands (
    id              text PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    kind            text        NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('applied', 'stale', 'missing')),
    reason          text        NOT NULL DEFAULT '',
    due_at          timestamptz,
    applied_at      timestamptz NOT NULL
);
CREATE INDEX applied_commands_applied_at ON applied_commands (applied_at);
CREATE INDEX applied_commands_conversation ON applied_commands (conversation_id);

-- A waiting message ([003]): sent to a customer whose conversation waits
-- in a state longer than its hours for that state; NULL hours: not sent
-- in that state.
CREATE TABLE waiting_messages (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    subject              text        NOT NULL,
    body                 text        NOT NULL,
    hours_new            double precision CHECK (hours_new > 0),
    hours_help_requested double precision CHECK (hours_help_requested > 0),
    hours_external       double precision CHECK (hours_external > 0),
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CHECK (num_nonnulls(hours_new, hours_help_requested, hours_external) > 0),
    UNIQUE (tenant_id, name)
);

-- Automation settings of a tenant and of its queues (JSON: the shape the
-- API shows), and the waiting message assigned to each: the queue's wins.
ALTER TABLE tenants
    ADD COLUMN automation         jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN waiting_message_id uuid REFERENCES waiting_messages (id) ON DELETE SET NULL;
ALTER TABLE queues
    ADD COLUMN automation         jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN waiting_message_id uuid REFERENCES waiting_messages (id) ON DELETE SET NULL;
CREATE INDEX queues_waiting_message ON queues (waiting_message_id) WHERE waiting_message_id IS NOT NULL;
