-- The send ledger of a channel connector: one row per message it was asked
-- to send, recorded before each attempt and given its outcome after. The
-- primary key on id (the command's message id) is what makes a replayed
-- command harmless.
CREATE TABLE send_ledger (
    id                 text PRIMARY KEY,
    tenant_id          text NOT NULL,
    channel_account_id text NOT NULL DEFAULT '',
    conversation_id    text NOT NULL DEFAULT '',
    -- pending: no attempt runs (none yet, or the last one failed and
    -- another may follow at next_attempt_at); attempting: a worker holds
    -- the send (claim) until claimed_until; sent and failed are outcomes.
    state              text NOT NULL CHECK (state IN ('pending', 'attempting', 'sent', 'failed')),
    attempts           integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- The provider's id of the message: Message-ID for email, the Twilio
    -- SID for SMS, the id a chat endpoint answers with.
    provider_id        text NOT NULL DEFAULT '',
    -- What the provider answered to the attempt that settled the send, or
    -- to the last one.
    answer             text NOT NULL DEFAULT '',
    -- The last failure: a retried one, or why the send failed.
    last_error         text NOT NULL DEFAULT '',
    -- Start of the earliest attempt that may have reached the provider
    -- without our learning its outcome (no answer, a crash). NULL when no
    -- attempt is in doubt.
    in_doubt_since     timestamptz,
    claim              text NOT NULL DEFAULT '',
    claimed_until      timestamptz,
    next_attempt_at    timestamptz,
    -- What the channel records of the message and that nothing queries
    -- (an SMS's sender and segments, a chat endpoint's HTTP status).
    details            jsonb NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((state = 'attempting') = (claim <> '' AND claimed_until IS NOT NULL)),
    CHECK (state IN ('pending', 'attempting') OR (in_doubt_since IS NULL AND next_attempt_at IS NULL))
);
-- A provider's message is one of the tenant's sends at most: a message
-- found while resolving an attempt in doubt is adopted only if no other
-- send has it. Bounces and status callbacks name messages by this id too.
CREATE UNIQUE INDEX send_ledger_provider_id ON send_ledger (tenant_id, provider_id) WHERE provider_id <> '';
-- The failed sends of a tenant, newest first.
CREATE INDEX send_ledger_failed ON send_ledger (tenant_id, updated_at DESC, id DESC) WHERE state = 'failed';
-- The sends due for an attempt: pending ones at their next attempt, those
-- whose claim ran out at its end.
CREATE INDEX send_ledger_due ON send_ledger ((CASE state WHEN 'attempting' THEN claimed_until ELSE coalesce(next_attempt_at, updated_at) END), id)
    WHERE state IN ('pending', 'attempting');
