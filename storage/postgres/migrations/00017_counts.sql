-- The admin console's overview without reading users or events (issue 18):
-- the number of users, kept by triggers, and hourly roll-ups of the audit
-- trail, written by the janitor (storage.Stats). Times are Unix
-- microseconds.
--
-- user_counts: the number of users is the sum of n. A statement that
-- inserts or deletes users adds its row count to one of 16 shards, chosen
-- by the connection (pg_backend_pid() % 16): concurrent sign-ups on
-- different connections do not queue on one row, and a transaction only
-- ever writes its connection's shard. The count starts from the users
-- there are, counted while the table is locked against writes (nothing is
-- counted twice or missed while replicas keep signing people up).
--
-- event_counts: the events of one UTC hour (hour is its start) per type
-- and details.method ('' for none). event_rollup.through is the
-- watermark: every hour before it is in event_counts (0: none yet).
-- RollUpEvents moves it by compare-and-swap in the transaction that writes
-- the hours' counts, so replicas' janitors may race.

-- +goose Up
LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE user_counts (
    shard INTEGER NOT NULL PRIMARY KEY,
    n     BIGINT  NOT NULL
);
INSERT INTO user_counts (shard, n) SELECT s, 0 FROM generate_series(0, 15) AS s;
UPDATE user_counts SET n = (SELECT COUNT(*) FROM users) WHERE shard = 0;

-- +goose StatementBegin
CREATE FUNCTION wxoidc_users_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT;
BEGIN
    SELECT COUNT(*) INTO delta FROM inserted_users;
    IF delta > 0 THEN
        UPDATE user_counts SET n = n + delta WHERE shard = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION wxoidc_users_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT;
BEGIN
    SELECT COUNT(*) INTO delta FROM deleted_users;
    IF delta > 0 THEN
        UPDATE user_counts SET n = n - delta WHERE shard = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION wxoidc_users_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_counts SET n = 0;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER users_count_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS inserted_users
    FOR EACH STATEMENT EXECUTE FUNCTION wxoidc_users_inserted();
CREATE TRIGGER users_count_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS deleted_users
    FOR EACH STATEMENT EXECUTE FUNCTION wxoidc_users_deleted();
CREATE TRIGGER users_count_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION wxoidc_users_truncated();

CREATE TABLE event_counts (
    type   TEXT   NOT NULL,
    hour   BIGINT NOT NULL,
    method TEXT   NOT NULL,
    n      BIGINT NOT NULL,
    PRIMARY KEY (type, hour, method)
);
CREATE TABLE event_rollup (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    through BIGINT  NOT NULL
);
INSERT INTO event_rollup (id, through) VALUES (1, 0);

-- +goose Down
DROP TABLE event_rollup;
DROP TABLE event_counts;
DROP TRIGGER users_count_truncate ON users;
DROP TRIGGER users_count_delete ON users;
DROP TRIGGER users_count_insert ON users;
DROP FUNCTION wxoidc_users_truncated();
DROP FUNCTION wxoidc_users_deleted();
DROP FUNCTION wxoidc_users_inserted();
DROP TABLE user_counts;
