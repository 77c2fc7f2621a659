-- SMS: the numbers of SMS accounts, and customers' consent to SMS.

-- The numbers of live SMS accounts (channel_accounts of channel 'sms',
-- whose settings list them too): a number belongs to one live account of
-- a tenant, or an inbound text would have two conversations to go to and
-- a reply two accounts to go out through. Deleting an account frees its
-- numbers. Another tenant may hold the same number: each tenant answers
-- for its own configuration, and a conflict must not reveal the other.
CREATE TABLE sms_numbers (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number     text NOT NULL CHECK (number ~ '^\+[1-9][0-9]{6,14}$'),
    account_id uuid NOT NULL REFERENCES channel_accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, number)
);
CREATE INDEX sms_numbers_account ON sms_numbers (account_id);

-- What the customer last said of SMS: opted_out (STOP and its synonyms),
-- opted_in (START), NULL when they never said either. Set by ingestion
-- from the SMS connector's Metadata["consent"], on channel 'sms'
-- identities only; consent_changed_at is the received_at of the message
-- that set it, so that messages ingested out of order cannot undo a
-- later choice.
ALTER TABLE contact_identities
    ADD COLUMN consent            text CHECK (consent IN ('opted_out', 'opted_in')),
    ADD COLUMN consent_changed_at timestamptz;
