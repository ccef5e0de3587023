-- The admin console's overview without reading users or events (issue 18):
-- the number of users, kept by triggers, and hourly roll-ups of the audit
-- trail, written by the janitor (storage.Stats). Times are Unix
-- microseconds.
--
-- user_counts: the number of users is the sum of n; SQLite has one writer,
-- so one row (shard 0) is enough. It starts from the users there are.
--
-- event_counts: the events of one UTC hour (hour is its start) per type
-- and details.method ('' for none). event_rollup.through is the
-- watermark: every hour before it is in event_counts (0: none yet).
-- RollUpEvents moves it by compare-and-swap in the transaction that writes
-- the hours' counts, so replicas' janitors may race.

-- +goose Up
CREATE TABLE user_counts (
    shard INTEGER NOT NULL PRIMARY KEY,
    n     BIGINT  NOT NULL
);
INSERT INTO user_counts (shard, n) SELECT 0, COUNT(*) FROM users;

-- +goose StatementBegin
CREATE TRIGGER users_count_insert AFTER INSERT ON users
BEGIN
    UPDATE user_counts SET n = n + 1 WHERE shard = 0;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER users_count_delete AFTER DELETE ON users
BEGIN
    UPDATE user_counts SET n = n - 1 WHERE shard = 0;
END;
-- +goose StatementEnd

CREATE TABLE event_counts (
    type   TEXT   NOT NULL,
    hour   BIGINT NOT NULL,
    method TEXT   NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (type, hour, method)
) WITHOUT ROWID;
CREATE TABLE event_rollup (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    through BIGINT  NOT NULL
);
INSERT INTO event_rollup (id, through) VALUES (1, 0);

-- +goose Down
DROP TABLE event_rollup;
DROP TABLE event_counts;
DROP TRIGGER users_count_delete;
DROP TRIGGER users_count_insert;
DROP TABLE user_counts;
