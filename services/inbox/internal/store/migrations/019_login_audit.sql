-- The login audit (ADR 23): every attempt to log in to an account of a
-- tenant, successful or not, with where it came from and why it failed.
-- Attempts naming a tenant that does not exist are not kept (see
-- Store.RecordLogin): no one could read them, and anyone could fill them.
CREATE TABLE login_audit (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    -- The email as typed; user_id is the user of the tenant it names, if
    -- any (a failure for an unknown email has none).
    email       text        NOT NULL,
    user_id     uuid,
    -- The client's address (see -http.trusted-proxies); NULL when unknown.
    client_addr inet,
    user_agent  text        NOT NULL DEFAULT '',
    outcome     text        NOT NULL CHECK (outcome IN ('success', 'failure')),
    -- For a failure: bad_credentials, locked_account or locked_address.
    reason      text        NOT NULL DEFAULT ''
);
CREATE INDEX login_audit_tenant ON login_audit (tenant_id, at DESC, id DESC);
CREATE INDEX login_audit_at ON login_audit (at);
