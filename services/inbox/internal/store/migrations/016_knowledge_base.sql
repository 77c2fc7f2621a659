-- The reply assistant ([004]): the knowledge base that admins group and
-- maintain, and what finds past agents' answers fast.

-- A group of knowledge-base entries ("Livraison", "Facturation").
CREATE TABLE knowledge_groups (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX knowledge_groups_list ON knowledge_groups (tenant_id, created_at, id);

-- An entry: a prepared answer (body) to what its title and keywords say.
-- queue_id NULL: for every conversation of the tenant; else for those of
-- that queue only (a deleted queue leaves its entries to everyone: they
-- are the tenant's know-how, not a secret of the queue). A group with
-- entries cannot be deleted (the API answers 409).
--
-- search is what suggestions match: the title and keywords weigh more
-- (A) than the body (B). It is written with the entry from text folded by
-- the inbox (lower case, no accents), with the 'simple' configuration
-- like the messages' index: one vector serves every language.
CREATE TABLE knowledge_entries (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_id   uuid        NOT NULL REFERENCES knowledge_groups (id),
    queue_id   uuid        REFERENCES queues (id) ON DELETE SET NULL,
    title      text        NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body       text        NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
    keywords   text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(keywords) <= 20),
    search     tsvector    NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX knowledge_entries_list ON knowledge_entries (tenant_id, created_at, id);
CREATE INDEX knowledge_entries_group ON knowledge_entries (group_id);
CREATE INDEX knowledge_entries_search ON knowledge_entries USING gin (search);

-- Past answers: suggestions look for customers' messages like the one to
-- answer (messages_search, 002) and take the agent's reply that followed
-- each. That reply is found through messages_conversation; the index
-- below serves the question the other way round, without reading the
-- conversation's other messages: the agents' own replies (not automatic,
-- not the bot's) of a conversation, in order.
CREATE INDEX messages_agent_replies ON messages (conversation_id, received_at, id)
    WHERE direction = 'outbound' AND NOT automatic AND author_kind IS NULL;
