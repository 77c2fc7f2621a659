-- The ledger is now the send ledger every connector shares (table
-- send_ledger, created by its own migrations, which run before these):
-- the rows of earlier versions move there, their doubts with them, so
-- that a send under way during the upgrade is neither lost nor sent
-- twice, and this table goes.
INSERT INTO send_ledger (id, tenant_id, channel_account_id, conversation_id, state, attempts, provider_id,
    last_error, in_doubt_since, details, created_at, updated_at)
SELECT message_id, tenant_id, account_id, conversation_id,
       CASE status WHEN 'sending' THEN 'pending' ELSE status END,
       attempts, twilio_sid, last_error,
       CASE WHEN status = 'sending' THEN in_doubt_since END,
       jsonb_build_object('to', to_number, 'sender', sender, 'encoding', encoding, 'segments', segments),
       created_at, updated_at
FROM sent_messages
ON CONFLICT (id) DO NOTHING;

DROP TABLE sent_messages;
