-- An authorization code's PKCE and OpenID Connect sessions ride in the
-- code's own row when they are created in the code's write set (the
-- authorization response): their form values (pkce_form, oidc_form; the
-- rest of their request is the code's) and the SHA-256 of the raw code that
-- keys the OpenID Connect session (oidc_key). Sessions created apart from
-- their code still go to oauth2_pkce and oauth2_oidc, and rows there from
-- before the upgrade stay readable: codes in flight keep working. Down
-- drops the columns: codes issued with sessions in their row lose them
-- (the person signs in again). The index is partial: codes without an
-- OpenID Connect session in their row have no entry.

-- +goose Up
ALTER TABLE oauth2_code ADD COLUMN pkce_form TEXT;
ALTER TABLE oauth2_code ADD COLUMN oidc_key TEXT;
ALTER TABLE oauth2_code ADD COLUMN oidc_form TEXT;
CREATE INDEX oauth2_code_oidc_key_idx ON oauth2_code (oidc_key) WHERE oidc_key IS NOT NULL;

-- +goose Down
DROP INDEX IF EXISTS oauth2_code_oidc_key_idx;
ALTER TABLE oauth2_code DROP COLUMN oidc_form;
ALTER TABLE oauth2_code DROP COLUMN oidc_key;
ALTER TABLE oauth2_code DROP COLUMN pkce_form;
