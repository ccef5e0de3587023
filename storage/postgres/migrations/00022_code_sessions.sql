-- An authorization code's PKCE and OpenID Connect sessions ride in the
-- code's own row when they are created in the code's write set (the
-- authorization response): their form values (pkce_form, oidc_form; the
-- rest of their request is the code's) and the SHA-256 of the raw code that
-- keys the OpenID Connect session (oidc_key). One insert instead of three;
-- at the exchange, the code's invalidation deletes both sessions in the
-- same HOT update (wxoidc_invalidate_code_sessions) instead of two deletes.
--
-- Sessions created apart from their code still go to oauth2_pkce and
-- oauth2_oidc, and rows there from before the upgrade stay readable: codes
-- in flight keep working. A replica of an older version does not see the
-- sessions kept in a code's row: roll replicas over together, or expect
-- the exchanges, on old replicas, of the codes issued meanwhile by new ones
-- (they live minutes) to fail or to issue no ID token. Down drops the
-- columns: codes issued with sessions in their row lose them (the person
-- signs in again).
--
-- The index is built CONCURRENTLY, outside a transaction, so that the
-- upgrade does not stop logins. It is partial (a code without an OpenID
-- Connect session in its row has no entry), and the invalidation stays HOT
-- (oidc_key never changes once written).

-- +goose NO TRANSACTION
-- +goose Up
ALTER TABLE oauth2_code ADD COLUMN IF NOT EXISTS pkce_form TEXT,
    ADD COLUMN IF NOT EXISTS oidc_key TEXT,
    ADD COLUMN IF NOT EXISTS oidc_form TEXT;
CREATE INDEX CONCURRENTLY IF NOT EXISTS oauth2_code_oidc_key_idx ON oauth2_code (oidc_key) WHERE oidc_key IS NOT NULL;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION wxoidc_invalidate_code_sessions(sig TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    -- wxoidc_invalidate_code that also deletes the PKCE and OpenID
    -- Connect sessions kept in the code's row.
    UPDATE oauth2_code SET active = FALSE, pkce_form = NULL, oidc_form = NULL WHERE signature = sig AND active;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'authorization code is not active' USING ERRCODE = 'no_data_found';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS wxoidc_invalidate_code_sessions(TEXT);
DROP INDEX CONCURRENTLY IF EXISTS oauth2_code_oidc_key_idx;
ALTER TABLE oauth2_code DROP COLUMN IF EXISTS oidc_form,
    DROP COLUMN IF EXISTS oidc_key,
    DROP COLUMN IF EXISTS pkce_form;
