-- Web login: pending login states, browser sessions and consents. Keys of
-- login states and sessions are the hex SHA-256 of the browser-held ID.

-- +goose Up
CREATE TABLE login_states (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    data       BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_states_expires_at_idx ON login_states (expires_at);

CREATE TABLE browser_sessions (
    id_hash    TEXT   NOT NULL PRIMARY KEY,
    subject    TEXT   NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_expires_at_idx ON browser_sessions (expires_at);

CREATE TABLE consents (
    subject    TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    scopes     TEXT   NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id)
);

-- +goose Down
DROP TABLE consents;
DROP TABLE browser_sessions;
DROP TABLE login_states;
