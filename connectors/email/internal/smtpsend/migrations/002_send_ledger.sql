-- The ledger is now the send ledger every connector shares (table
-- send_ledger, created by its own migrations, which run before these):
-- the rows of earlier versions move there, so that a send under way
-- during the upgrade is neither lost nor sent twice, and this table goes.
INSERT INTO send_ledger (id, tenant_id, channel_account_id, conversation_id, state, attempts, provider_id,
    last_error, in_doubt_since, created_at, updated_at)
SELECT message_id, tenant_id, mailbox_id, conversation_id,
       CASE status WHEN 'sending' THEN 'pending' ELSE status END,
       attempts,
       -- A Message-ID is derived from the message id, so no two rows
       -- should share one; if they do, the first keeps it (a bounce
       -- names that one), as the unique index asks.
       CASE WHEN smtp_message_id <> '' AND row_number() OVER (
                PARTITION BY tenant_id, smtp_message_id ORDER BY created_at, message_id) = 1
            THEN smtp_message_id ELSE '' END,
       last_error,
       -- A message still sending may have reached the server in its last
       -- attempt: in doubt, which email resolves by sending it again with
       -- the same Message-ID, as earlier versions did.
       CASE WHEN status = 'sending' AND attempts > 0 THEN updated_at END,
       created_at, updated_at
FROM sent_messages
ON CONFLICT (id) DO NOTHING;

DROP TABLE sent_messages;
