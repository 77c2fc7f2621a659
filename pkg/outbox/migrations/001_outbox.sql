-- The transactional outbox: events written in the same transaction as the
-- state they describe, published by the relay, then deleted.
CREATE TABLE outbox (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id   text        NOT NULL,
    topic      text        NOT NULL,
    key        bytea       NOT NULL,
    headers    jsonb       NOT NULL,
    value      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
