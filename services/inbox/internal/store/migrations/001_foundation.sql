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
-- that ingest_inbound can claim the identity before creating the contact.
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
    conversation_id    uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    -- The event that brought it: a redelivered event is stored once.
    event_id           text        NOT NULL UNIQUE,
    channel_account_id uuid        NOT NULL,
    -- The channel's own id: a message the channel sent twice is stored once.
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

-- ingest_inbound stores one inbound message: it finds or creates the
-- contact by channel identity and the conversation by thread, then stores
-- the message unless it is already there. It runs server-side so that a
-- batch of messages costs one round trip. It raises SQLSTATE SB001 when the
-- channel account is unknown or belongs to another tenant or channel.
CREATE FUNCTION ingest_inbound(
    p_event_id text, p_tenant uuid, p_channel text, p_account uuid, p_external_id text,
    p_thread_key text, p_identity text, p_name text, p_avatar text, p_body text,
    p_metadata jsonb, p_sent_at timestamptz, p_received_at timestamptz,
    OUT message_id uuid, OUT conversation_id uuid, OUT contact_id uuid,
    OUT conversation_created boolean, OUT duplicate boolean)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    v_claimed uuid;
BEGIN
    PERFORM 1 FROM channel_accounts a
     WHERE a.id = p_account AND a.tenant_id = p_tenant AND a.channel = p_channel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'channel account % of tenant % on channel % does not exist', p_account, p_tenant, p_channel
            USING ERRCODE = 'SB001';
    END IF;

    -- Contact: claim the identity for a new contact; if someone holds it, use theirs.
    contact_id := gen_random_uuid();
    INSERT INTO contact_identities AS ci (tenant_id, channel, identity, contact_id)
    VALUES (p_tenant, p_channel, p_identity, contact_id)
    ON CONFLICT DO NOTHING
    RETURNING ci.contact_id INTO v_claimed;
    IF v_claimed IS NULL THEN
        SELECT ci.contact_id INTO contact_id FROM contact_identities ci
         WHERE ci.tenant_id = p_tenant AND ci.channel = p_channel AND ci.identity = p_identity;
    ELSE
        INSERT INTO contacts (id, tenant_id, name, avatar_url, source)
        VALUES (contact_id, p_tenant, p_name, p_avatar, p_channel);
    END IF;

    -- Conversation: the upsert also locks the row, so that messages of one
    -- thread are stored one after the other even across consumers.
    INSERT INTO conversations AS c (id, tenant_id, contact_id, channel, channel_account_id, thread_key, started_at, last_message_at)
    VALUES (gen_random_uuid(), p_tenant, contact_id, p_channel, p_account, p_thread_key, p_received_at, p_received_at)
    ON CONFLICT (channel_account_id, thread_key)
        DO UPDATE SET last_message_at = greatest(c.last_message_at, excluded.last_message_at)
    RETURNING c.id, (c.xmax = 0) INTO conversation_id, conversation_created;

    SELECT m.id INTO message_id FROM messages m
     WHERE m.event_id = p_event_id OR (m.channel_account_id = p_account AND m.external_id = p_external_id)
     LIMIT 1;
    IF FOUND THEN
        duplicate := true;
        RETURN;
    END IF;

    message_id := gen_random_uuid();
    INSERT INTO messages (id, tenant_id, conversation_id, event_id, channel_account_id, external_id, direction,
                          sender, body, metadata, sent_at, received_at)
    VALUES (message_id, p_tenant, conversation_id, p_event_id, p_account, p_external_id, 'inbound',
            p_identity, p_body, p_metadata, p_sent_at, p_received_at);
    duplicate := false;
END;
$$;
