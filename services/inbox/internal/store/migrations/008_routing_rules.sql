-- Where a new conversation goes: each channel account's default queue,
-- and each tenant's ordered routing rules, applied by ingestion when it
-- creates a conversation.

-- Deleting the queue leaves the account without a default.
ALTER TABLE channel_accounts ADD COLUMN default_queue_id uuid REFERENCES queues (id) ON DELETE SET NULL;
CREATE INDEX channel_accounts_default_queue ON channel_accounts (default_queue_id) WHERE default_queue_id IS NOT NULL;

-- A rule: conditions (domain.RoutingConditions as JSON: every one given
-- must hold) and what it sets, NULL for what it leaves alone. position
-- orders a tenant's rules from 1, without gaps; the first that matches
-- wins. Unique at the end of each statement (DEFERRABLE), so that one
-- statement may renumber them. A deleted queue or skill leaves its rules
-- in place, setting the rest.
CREATE TABLE routing_rules (
    id                uuid PRIMARY KEY,
    tenant_id         uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position          int         NOT NULL CHECK (position >= 1),
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    conditions        jsonb       NOT NULL DEFAULT '{}',
    queue_id          uuid        REFERENCES queues (id) ON DELETE SET NULL,
    required_skill_id uuid        REFERENCES skills (id) ON DELETE SET NULL,
    required_language text        CHECK (required_language ~ '^[a-z]{2}$'),
    priority          int         CHECK (priority BETWEEN -10 AND 10),
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CONSTRAINT routing_rules_position UNIQUE (tenant_id, position) DEFERRABLE,
    CONSTRAINT routing_rules_name UNIQUE (tenant_id, name)
);
CREATE INDEX routing_rules_queue ON routing_rules (queue_id) WHERE queue_id IS NOT NULL;
CREATE INDEX routing_rules_skill ON routing_rules (required_skill_id) WHERE required_skill_id IS NOT NULL;
