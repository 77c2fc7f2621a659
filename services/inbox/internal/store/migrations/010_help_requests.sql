-- Help requests ([000] "Demander de l'aide", "Envoyer et demander de
-- l'aide"): an agent hands a conversation to those who answer help
-- requests, with a comment; the answer sends it back to the agent when
-- they are still connected, else to its queue. External agents ([003])
-- need no table: the conversation's state (external) and its audit log
-- hold all of it.

-- One request and its answer. A conversation has at most one open
-- (unanswered) request: it is help_requested while it has one.
-- reply_message_id is the message sent with the request ("send and ask for
-- help"). outcome is where the answer sent the conversation: back to the
-- requester, or to its queue.
CREATE TABLE help_requests (
    id               uuid PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    requester_id     uuid        NOT NULL,
    comment          text        NOT NULL DEFAULT '',
    reply_message_id uuid,
    created_at       timestamptz NOT NULL,
    answered_at      timestamptz,
    answered_by      uuid,
    answer           text,
    outcome          text CHECK (outcome IN ('requester', 'queue')),
    CHECK (num_nulls(answered_at, answered_by, answer, outcome) IN (0, 4))
);
CREATE INDEX help_requests_conversation ON help_requests (conversation_id, created_at, id);
CREATE UNIQUE INDEX help_requests_open ON help_requests (conversation_id) WHERE answered_at IS NULL;

-- A tenant's help settings ([000] "Ordre des messages prioritaires"): the
-- priority a conversation takes when an answered help request sends it
-- back to its queue; NULL keeps the conversation's own. The bounds are
-- the routing rules' (domain.MinRoutingPriority, MaxRoutingPriority).
CREATE TABLE help_settings (
    tenant_id         uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    answered_priority int CHECK (answered_priority BETWEEN -10 AND 10),
    updated_at        timestamptz NOT NULL
);
