-- Signing a user out everywhere, disabling and erasing them (EndUserSessions,
-- SetUserDisabled, DeleteUser) find the user's refresh and access tokens
-- and browser sessions by subject; without these indexes each of them read
-- whole tables (on PostgreSQL 15 s and 36 s with 10,000,000 token rows; docs/scale.md). The
-- short-lived tables (codes, PKCE, OIDC and PAR requests: minutes of
-- logins) are still scanned.
--
-- Built CONCURRENTLY, outside a transaction, so that upgrading a database
-- with millions of tokens does not stop the token endpoint's writes while
-- they build. A build interrupted half-way leaves an invalid index; each is
-- dropped first, so migrating again builds it afresh.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS oauth2_refresh_subject_idx;
CREATE INDEX CONCURRENTLY oauth2_refresh_subject_idx ON oauth2_refresh (subject);
DROP INDEX CONCURRENTLY IF EXISTS oauth2_access_subject_idx;
CREATE INDEX CONCURRENTLY oauth2_access_subject_idx ON oauth2_access (subject);
DROP INDEX CONCURRENTLY IF EXISTS browser_sessions_subject_idx;
CREATE INDEX CONCURRENTLY browser_sessions_subject_idx ON browser_sessions (subject);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS browser_sessions_subject_idx;
DROP INDEX CONCURRENTLY IF EXISTS oauth2_access_subject_idx;
DROP INDEX CONCURRENTLY IF EXISTS oauth2_refresh_subject_idx;
