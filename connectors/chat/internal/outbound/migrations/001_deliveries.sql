-- What the chat connector delivers to chat channels' endpoints: each reply,
-- bot command and state change, recorded when its command is read from
-- Kafka (before the offset is committed), with the exact body every
-- attempt sends. The send ledger (send_ledger, same schema) holds each
-- delivery's attempts, claim, next attempt and outcome; a delivery stays
-- open here until the ledger has its outcome and its delivery status is in
-- the outbox. seq orders the deliveries of a conversation: only the open
-- one with the lowest seq is attempted.
CREATE SEQUENCE delivery_seq;

CREATE TABLE deliveries (
    -- The message id, the bot control command's id, or the conversation
    -- event's id: the Idempotency-Key of every attempt.
    id              text PRIMARY KEY,
    seq             bigint NOT NULL DEFAULT nextval('delivery_seq'),
    tenant_id       text NOT NULL,
    channel_id      text NOT NULL,
    conversation_id text NOT NULL,
    session_id      text NOT NULL DEFAULT '',
    user_id         text NOT NULL DEFAULT '',
    -- message.created, bot.control or conversation.state_changed.
    event           text NOT NULL,
    body            bytea NOT NULL,
    -- The replay count of the send command last recorded: a command with
    -- a higher one opens a failed delivery again.
    replay          integer NOT NULL DEFAULT 0,
    recorded_at     timestamptz NOT NULL,
    -- When the first attempt since the delivery was recorded (or
    -- replayed) started: retries stop -chat.delivery.retry-for after it.
    window_start    timestamptz,
    done            boolean NOT NULL DEFAULT false,
    -- sent, failed, or skipped (an event the endpoint does not subscribe to).
    outcome         text NOT NULL DEFAULT '' CHECK (outcome IN ('', 'sent', 'failed', 'skipped')),
    done_at         timestamptz,
    CHECK (done = (outcome <> '') AND done = (done_at IS NOT NULL))
);
ALTER SEQUENCE delivery_seq OWNED BY deliveries.seq;

-- The open deliveries of an endpoint in order, and per conversation in
-- order (is there an earlier one?).
CREATE INDEX deliveries_queue ON deliveries (channel_id, seq) WHERE NOT done;
CREATE INDEX deliveries_open ON deliveries (channel_id, conversation_id, seq) WHERE NOT done;
-- Delivered ones, for their removal after -chat.delivery.retention.
CREATE INDEX deliveries_done ON deliveries (done_at) WHERE done AND outcome <> 'failed';
-- The customer a conversation's deliveries went to, for its state changes.
CREATE INDEX deliveries_user ON deliveries (conversation_id, seq) WHERE user_id <> '';
