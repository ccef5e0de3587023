-- Users and accounts (issue 11): the user fields of SPEC §10, identity
-- kinds and last logins, indexes for the admin search, and the audit
-- trail. Existing users keep their subjects; a phone number they have came
-- from WeChat, so it is verified.

-- +goose Up
ALTER TABLE users ADD COLUMN phone_number_verified BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET phone_number_verified = TRUE WHERE phone_number <> '';
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN last_login_at BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX users_external_id_idx ON users (external_id);
CREATE INDEX users_phone_number_idx ON users (phone_number);
CREATE INDEX users_name_idx ON users (name);

ALTER TABLE identities ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN last_login_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX identities_open_id_idx ON identities (open_id);
-- At most one identity per app and user (unlink names it by appid).
CREATE UNIQUE INDEX identities_subject_app_idx ON identities (subject, app_id);
DROP INDEX identities_subject_idx;

CREATE TABLE events (
    id        TEXT   NOT NULL PRIMARY KEY,
    time      BIGINT NOT NULL,
    type      TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    client_id TEXT   NOT NULL,
    ip        TEXT   NOT NULL,
    details   TEXT   NOT NULL
);
CREATE INDEX events_time_idx ON events (time, id);
CREATE INDEX events_subject_idx ON events (subject, time, id);

-- +goose Down
DROP TABLE events;
CREATE INDEX identities_subject_idx ON identities (subject);
DROP INDEX identities_subject_app_idx;
DROP INDEX identities_open_id_idx;
ALTER TABLE identities DROP COLUMN last_login_at;
ALTER TABLE identities DROP COLUMN kind;
DROP INDEX users_name_idx;
DROP INDEX users_phone_number_idx;
DROP INDEX users_external_id_idx;
ALTER TABLE users DROP COLUMN last_login_at;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users DROP COLUMN roles;
ALTER TABLE users DROP COLUMN external_id;
ALTER TABLE users DROP COLUMN phone_number_verified;
