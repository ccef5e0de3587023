-- Pending authorizations approved out of band (storage.DeviceAuthStore):
-- RFC 8628 device authorizations and desktop logins waiting for a scan.
-- device_hash is the hex SHA-256 of the device code; times are Unix
-- microseconds; scopes and amr are space-separated; outcome is what the
-- last poll found (returned by the poll's own UPDATE ... RETURNING).

-- +goose Up
CREATE TABLE device_auths (
    device_hash TEXT   NOT NULL PRIMARY KEY,
    user_code   TEXT   NOT NULL UNIQUE,
    kind        TEXT   NOT NULL,
    client_id   TEXT   NOT NULL,
    scopes      TEXT   NOT NULL,
    data        BYTEA  NOT NULL,
    status      TEXT   NOT NULL,
    subject     TEXT   NOT NULL DEFAULT '',
    auth_time   BIGINT NOT NULL DEFAULT 0,
    amr         TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    interval_us BIGINT NOT NULL,
    polled_at   BIGINT NOT NULL DEFAULT 0,
    outcome     TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX device_auths_expires_at_idx ON device_auths (expires_at);

-- +goose Down
DROP TABLE device_auths;
