-- Ask an expert ([004]): an agent working on a conversation asks a named
-- user of the tenant a question of at most 300 characters, optionally with
-- an excerpt of the conversation's last 20 messages (at most 1,500
-- characters), the customer's and the agents' names replaced by "Client"
-- and "Agent". The expert answers once, inside Switchboard.

CREATE TABLE expert_questions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id  uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    asker_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expert_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE CHECK (expert_id <> asker_id),
    question         text        NOT NULL CHECK (length(question) BETWEEN 1 AND 300),
    include_messages boolean     NOT NULL,
    created_at       timestamptz NOT NULL,
    answer           text        CHECK (octet_length(answer) BETWEEN 1 AND 4000),
    answered_at      timestamptz,
    CHECK ((answer IS NULL) = (answered_at IS NULL))
);
-- An expert's or an asker's questions, oldest first, open or answered.
CREATE INDEX expert_questions_expert ON expert_questions (tenant_id, expert_id, created_at, id);
CREATE INDEX expert_questions_asker ON expert_questions (tenant_id, asker_id, created_at, id);
CREATE INDEX expert_questions_conversation ON expert_questions (conversation_id, created_at, id);

-- The excerpt sent with a question: a copy of each shared message, in the
-- conversation's order (position from 0), its author as "Client" or
-- "Agent" and names replaced in its text. attachments are the message's
-- files as the blob store keeps them (events.Attachment), served by
-- GET /v1/expert-questions/{id}/attachments/{message_id}/{index} for a
-- week. Anonymising a message blanks text and attachments here by
-- message_id; deleting it deletes its rows.
CREATE TABLE expert_question_messages (
    question_id uuid        NOT NULL REFERENCES expert_questions (id) ON DELETE CASCADE,
    message_id  uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position    int         NOT NULL CHECK (position BETWEEN 0 AND 19),
    author      text        NOT NULL CHECK (author IN ('Client', 'Agent')),
    text        text        NOT NULL,
    attachments jsonb,
    sent_at     timestamptz NOT NULL,
    PRIMARY KEY (question_id, position),
    UNIQUE (question_id, message_id)
);
CREATE INDEX expert_question_messages_message ON expert_question_messages (message_id);
