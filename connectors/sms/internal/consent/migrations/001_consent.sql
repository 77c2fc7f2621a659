-- Whether a customer's number may be written to from an account: a STOP
-- (or Twilio's error 21610) opts it out, a START opts it back in. The
-- latest change wins; changes arriving late never override newer ones.
CREATE TABLE consent (
    account_id text        NOT NULL,
    number     text        NOT NULL,
    opted_out  boolean     NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, number)
);
