-- Dynamic Client Registration (storage.RegistrationStore): the initial
-- access tokens operators issue (keyed hashes, never the tokens) and the
-- registration access token hash of each client registered with one.
-- Times are Unix microseconds.

-- +goose Up
CREATE TABLE initial_access_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    token_hash   BLOB    NOT NULL UNIQUE,
    description  TEXT    NOT NULL,
    uses         INTEGER NOT NULL,
    uses_left    INTEGER NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL
);
CREATE INDEX initial_access_tokens_expires_at_idx ON initial_access_tokens (expires_at);

CREATE TABLE client_registrations (
    client_id        TEXT   NOT NULL PRIMARY KEY,
    token_hash       BLOB  NOT NULL,
    initial_token_id TEXT   NOT NULL,
    created_at       BIGINT NOT NULL
);

-- +goose Down
DROP TABLE client_registrations;
DROP TABLE initial_access_tokens;
