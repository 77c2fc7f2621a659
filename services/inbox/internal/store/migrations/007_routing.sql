-- Push routing: each agent's presence as they set it (whether they are
-- still connected is in Redis), the offers they let lapse, and each
-- queue's routing settings (NULL: pull, as before push existed).

ALTER TABLE users
    ADD COLUMN presence        text        NOT NULL DEFAULT 'offline' CHECK (presence IN ('online', 'away', 'offline')),
    ADD COLUMN presence_since  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN presence_reason text        NOT NULL DEFAULT '',
    ADD COLUMN missed_offers   bigint      NOT NULL DEFAULT 0;

ALTER TABLE queues ADD COLUMN routing jsonb;
