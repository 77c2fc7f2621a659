-- Chat both ways: agents block, unblock or run a chat channel's bot on a
-- conversation; the bot's own messages are stored as the bot's; a failed
-- delivery can be sent again (a replay), on every channel.

-- An agent blocked the channel's bot on the conversation.
ALTER TABLE conversations ADD COLUMN bot_blocked boolean NOT NULL DEFAULT false;

-- author_kind is 'bot' on a message the chat channel's bot wrote to the
-- customer (direction outbound, sender the bot's name, no delivery
-- status: Switchboard did not send it); NULL on the others, whose author
-- the direction says (inbound: the customer; outbound: author_id).
--
-- reply_to and choices keep what an outbound message's send command
-- carried besides its stored fields, so that a replay sends the same.
--
-- replays counts the times an admin sent a failed message again;
-- replayed_after is the time of the failure the last replay answered, as
-- the channel reported it: a report of that time or earlier is about an
-- earlier attempt, and does not move the replayed message.
ALTER TABLE messages
    ADD COLUMN author_kind    text CHECK (author_kind IN ('bot')),
    ADD COLUMN reply_to       text,
    ADD COLUMN choices        jsonb,
    ADD COLUMN replays        int  NOT NULL DEFAULT 0 CHECK (replays >= 0),
    ADD COLUMN replayed_after timestamptz;

-- The failed deliveries of a tenant, oldest failure first
-- (GET /v1/admin/deliveries, POST /v1/admin/deliveries/replay).
CREATE INDEX messages_failed ON messages (tenant_id, delivery_updated_at, id) WHERE delivery_status = 'failed';
