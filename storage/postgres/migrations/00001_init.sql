-- The initial wxoidc schema, the PostgreSQL twin of
-- storage/sqlite/migrations/00001_init.sql (keep them in step: same tables,
-- columns, keys and indexes). Times are Unix microseconds (UTC) in BIGINT;
-- blobs are BYTEA; keys of fosite artifacts are the hex SHA-256 of the
-- signature (see package storage/internal/sqlstore). Tables are created in
-- the connection's current schema (the first of its search_path).

-- +goose Up
CREATE TABLE oauth2_code (
    signature    TEXT    NOT NULL PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    requested_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    active       BOOLEAN NOT NULL,
    request      TEXT    NOT NULL
) WITH (fillfactor = 85); -- room for the HOT update of invalidation
CREATE INDEX oauth2_code_request_id_idx ON oauth2_code (request_id);
CREATE INDEX oauth2_code_expires_at_idx ON oauth2_code (expires_at);

CREATE TABLE oauth2_access (
    signature    TEXT    NOT NULL PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    requested_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    active       BOOLEAN NOT NULL,
    request      TEXT    NOT NULL
);
CREATE INDEX oauth2_access_request_id_idx ON oauth2_access (request_id);
CREATE INDEX oauth2_access_expires_at_idx ON oauth2_access (expires_at);

CREATE TABLE oauth2_refresh (
    signature    TEXT    NOT NULL PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    requested_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    active       BOOLEAN NOT NULL,
    access_signature TEXT    NOT NULL,
    request      TEXT    NOT NULL
) WITH (fillfactor = 85); -- room on each page for the HOT update of rotation
CREATE INDEX oauth2_refresh_request_id_idx ON oauth2_refresh (request_id);
CREATE INDEX oauth2_refresh_expires_at_idx ON oauth2_refresh (expires_at);

CREATE TABLE oauth2_pkce (
    signature    TEXT    NOT NULL PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    requested_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    active       BOOLEAN NOT NULL,
    request      TEXT    NOT NULL
);
CREATE INDEX oauth2_pkce_request_id_idx ON oauth2_pkce (request_id);
CREATE INDEX oauth2_pkce_expires_at_idx ON oauth2_pkce (expires_at);

CREATE TABLE oauth2_oidc (
    signature    TEXT    NOT NULL PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    requested_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    active       BOOLEAN NOT NULL,
    request      TEXT    NOT NULL
);
CREATE INDEX oauth2_oidc_request_id_idx ON oauth2_oidc (request_id);
CREATE INDEX oauth2_oidc_expires_at_idx ON oauth2_oidc (expires_at);

CREATE TABLE oauth2_par (
    signature    TEXT    NOT NULL PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    requested_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    active       BOOLEAN NOT NULL,
    request      TEXT    NOT NULL
);
CREATE INDEX oauth2_par_request_id_idx ON oauth2_par (request_id);
CREATE INDEX oauth2_par_expires_at_idx ON oauth2_par (expires_at);

CREATE TABLE oauth2_jti (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX oauth2_jti_expires_at_idx ON oauth2_jti (expires_at);

CREATE TABLE clients (
    id          TEXT   NOT NULL PRIMARY KEY,
    secret_hash BYTEA,
    metadata    TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    subject      TEXT   NOT NULL PRIMARY KEY,
    union_id     TEXT   UNIQUE,
    name         TEXT   NOT NULL,
    picture      TEXT   NOT NULL,
    phone_number TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE identities (
    app_id     TEXT   NOT NULL,
    open_id    TEXT   NOT NULL,
    union_id   TEXT,
    subject    TEXT   NOT NULL REFERENCES users (subject) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, open_id)
);
CREATE INDEX identities_subject_idx ON identities (subject);

CREATE TABLE signing_keys (
    kid          TEXT   NOT NULL PRIMARY KEY,
    algorithm    TEXT   NOT NULL,
    private_key  BYTEA  NOT NULL,
    public_key   BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);

CREATE TABLE wechat_session_keys (
    subject    TEXT   NOT NULL,
    app_id     TEXT   NOT NULL,
    open_id    TEXT   NOT NULL,
    ciphertext BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subject, app_id)
);

CREATE TABLE wechat_server_tokens (
    app_id     TEXT   NOT NULL PRIMARY KEY,
    token      BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE leases;
DROP TABLE wechat_server_tokens;
DROP TABLE wechat_session_keys;
DROP TABLE signing_keys;
DROP TABLE identities;
DROP TABLE users;
DROP TABLE clients;
DROP TABLE oauth2_jti;
DROP TABLE oauth2_par;
DROP TABLE oauth2_oidc;
DROP TABLE oauth2_pkce;
DROP TABLE oauth2_refresh;
DROP TABLE oauth2_access;
DROP TABLE oauth2_code;
