-- The answers of recent refreshes, for the refresh-token reuse grace
-- (storage.RefreshGraceStore): signature is the hex SHA-256 of the rotated
-- token's signature, successor the new refresh token's signature, response
-- the answer encrypted by the provider, expires_at (Unix microseconds) the
-- end of the grace.

-- +goose Up
CREATE TABLE refresh_successors (
    signature  TEXT   NOT NULL PRIMARY KEY,
    successor  TEXT   NOT NULL,
    response   BLOB   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX refresh_successors_expires_at_idx ON refresh_successors (expires_at);

-- +goose Down
DROP TABLE refresh_successors;
