-- Outbound conversations ([002]): an agent starts a conversation by email
-- or SMS toward a contact of the customer base.
--
-- recipient is the contact's identity the conversation was started
-- toward (an email address, an E.164 number): until the customer writes,
-- replies go there (afterwards, to the sender of their last message).
-- An erasure of the contact clears it.
--
-- started_by (the user) and idempotency_key (the request's
-- Idempotency-Key header) let a client retry a start without sending the
-- message twice: a key names one conversation per user and tenant.
ALTER TABLE conversations
    ADD COLUMN recipient       text,
    ADD COLUMN started_by      uuid,
    ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX conversations_idempotency ON conversations (tenant_id, started_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
