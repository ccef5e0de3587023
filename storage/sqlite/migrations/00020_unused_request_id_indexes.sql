-- The short-lived fosite tables (authorization codes, PKCE, OpenID Connect
-- and PAR requests) had an index on request_id that no statement uses:
-- they are read and deleted by signature, and revocation by request ID
-- (fosite's TokenRevocationStorage) touches only access and refresh tokens.
-- Each web login wrote three entries into them for nothing (docs/scale.md).

-- +goose Up
DROP INDEX IF EXISTS oauth2_code_request_id_idx;
DROP INDEX IF EXISTS oauth2_pkce_request_id_idx;
DROP INDEX IF EXISTS oauth2_oidc_request_id_idx;
DROP INDEX IF EXISTS oauth2_par_request_id_idx;

-- +goose Down
CREATE INDEX IF NOT EXISTS oauth2_par_request_id_idx ON oauth2_par (request_id);
CREATE INDEX IF NOT EXISTS oauth2_oidc_request_id_idx ON oauth2_oidc (request_id);
CREATE INDEX IF NOT EXISTS oauth2_pkce_request_id_idx ON oauth2_pkce (request_id);
CREATE INDEX IF NOT EXISTS oauth2_code_request_id_idx ON oauth2_code (request_id);
