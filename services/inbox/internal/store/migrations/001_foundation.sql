-- Tenants, their API tokens and channel accounts; contacts; conversations
-- and their messages. Tables live in the inbox schema (search_path is set
-- by the migrator).

CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- API tokens are stored as SHA-256 hashes: a database leak does not leak
-- usable tokens, and a random 256-bit token needs no slow hash.
CREATE TABLE api_tokens (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    token_hash bytea       NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- A channel account is what a message arrives on: a chat channel, a
-- mailbox, a phone number. settings holds what its connector needs.
CREATE TABLE channel_accounts (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel    text        NOT NULL CHECK (channel IN ('chat', 'email', 'sms')),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    settings   jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX channel_accounts_tenant ON channel_accounts (tenant_id);

CREATE TABLE contacts (
    id         uuid PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text        NOT NULL DEFAULT '',
    avatar_url text        NOT NULL DEFAULT '',
    source     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_tenant ON contacts (tenant_id, created_at);

-- How channels know a contact. The foreign key is checked at commit so
-- that ingestion can claim the identity before creating the contact.
CREATE TABLE contact_identities (
    tenant_id  uuid NOT NULL,
    channel    text NOT NULL,
    identity   text NOT NULL,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (tenant_id, channel, identity)
);
CREATE INDEX contact_identities_contact ON contact_identities (contact_id);

-- One conversation per customer thread of a channel account.
CREATE TABLE conversations (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    contact_id         uuid        NOT NULL REFERENCES contacts (id),
    channel            text        NOT NULL,
    channel_account_id uuid        NOT NULL REFERENCES channel_accounts (id),
    thread_key         text        NOT NULL,
    state              text        NOT NULL DEFAULT 'new',
    started_at         timestamptz NOT NULL,
    last_message_at    timestamptz NOT NULL,
    UNIQUE (channel_account_id, thread_key)
);
-- The default list: a tenant's conversations, oldest first (FIFO).
CREATE INDEX conversations_tenant_started ON conversations (tenant_id, started_at, id);

CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    -- No foreign key: ingestion takes the id from the conversation it just
    -- upserted, and a per-row referential check would cost a fifth of the
    -- insert. Deleting a conversation deletes its messages explicitly.
    conversation_id    uuid        NOT NULL,
    -- The event that brought it, for tracing.
    event_id           text        NOT NULL,
    channel_account_id uuid        NOT NULL,
    -- The channel's own id: a message stored once per channel account and
    -- external id, however often its event is delivered or the channel
    -- sends it.
    external_id        text        NOT NULL,
    direction          text        NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    sender             text        NOT NULL,
    body               text        NOT NULL,
    metadata           jsonb,
    sent_at            timestamptz,
    -- When Switchboard accepted it from the channel, and when it was stored.
    received_at        timestamptz NOT NULL,
    stored_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (channel_account_id, external_id)
);
CREATE INDEX messages_conversation ON messages (conversation_id, received_at, id);
