-- The folder of the account a checkpoint's UIDs belong to. UIDVALIDITY
-- only tells apart the incarnations of one folder (RFC 9051 2.3.1.1): two
-- folders, or the INBOXes of two accounts, may well share one. A mailbox
-- moved to another folder or account must start over there, not resume at
-- the old folder's UID. Empty for checkpoints written before this column,
-- which the next sync adopts as its own.
ALTER TABLE imap_checkpoints ADD COLUMN source text NOT NULL DEFAULT '';
