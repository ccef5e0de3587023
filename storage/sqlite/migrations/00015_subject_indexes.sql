-- Signing a user out everywhere, disabling and erasing them (EndUserSessions,
-- SetUserDisabled, DeleteUser) find the user's refresh and access tokens
-- and browser sessions by subject; without these indexes each of them read
-- whole tables (on PostgreSQL 15 s and 36 s with 10,000,000 token rows; docs/scale.md). The
-- short-lived tables (codes, PKCE, OIDC and PAR requests: minutes of
-- logins) are still scanned.

-- +goose Up
CREATE INDEX oauth2_refresh_subject_idx ON oauth2_refresh (subject);
CREATE INDEX oauth2_access_subject_idx ON oauth2_access (subject);
CREATE INDEX browser_sessions_subject_idx ON browser_sessions (subject);

-- +goose Down
DROP INDEX browser_sessions_subject_idx;
DROP INDEX oauth2_access_subject_idx;
DROP INDEX oauth2_refresh_subject_idx;
