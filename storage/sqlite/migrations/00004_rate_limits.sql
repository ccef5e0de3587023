-- Rate limits shared by every replica (storage.RateStore). expires_at is
-- the limit's theoretical arrival time (GCRA), Unix microseconds: when it
-- has refilled completely and the row can go.

-- +goose Up
CREATE TABLE rate_limits (
    name       TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX rate_limits_expires_at_idx ON rate_limits (expires_at);

-- +goose Down
DROP TABLE rate_limits;
