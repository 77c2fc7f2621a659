-- Notifications: what users are told ([002] "notifié"), their choice of
-- email when they are away, the tenant's mailbox that sends those emails,
-- and when each user was last emailed about each conversation (to
-- coalesce).

-- One row per (conversation event, user): the notifier consumes
-- sb.conversations.v1 at least once, the unique key makes it idempotent.
CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id        text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('assigned', 'help_request', 'expert_question', 'expert_answer', 'customer_message')),
    conversation_id uuid        NOT NULL,
    actor_kind      text        NOT NULL,
    actor_id        text        NOT NULL,
    data            jsonb,
    created_at      timestamptz NOT NULL,
    read_at         timestamptz,
    UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_user ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_user_unread ON notifications (user_id, created_at DESC, id DESC) WHERE read_at IS NULL;

-- A user without a row gets the defaults (email when offline).
CREATE TABLE notification_preferences (
    user_id            uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email_when_offline boolean     NOT NULL DEFAULT true,
    updated_at         timestamptz NOT NULL
);

-- The tenant's mailbox that sends notification emails; none (no row or
-- NULL) means the operator's SMTP setting of the email connector.
CREATE TABLE notification_settings (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    mailbox_id uuid REFERENCES channel_accounts (id) ON DELETE SET NULL,
    updated_at timestamptz NOT NULL
);

-- The last notification email of a user about a conversation: at most
-- one per -inbox.notify.email-interval.
CREATE TABLE notification_emails (
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL,
    sent_at         timestamptz NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
