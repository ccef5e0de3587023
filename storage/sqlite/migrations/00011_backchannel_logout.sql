-- Back-channel logout (storage.BackchannelStore): which clients received an
-- ID token in which browser session (session_clients, id = sid/client_id),
-- and the logouts waiting for delivery (logout_jobs). Times are Unix
-- microseconds.

-- +goose Up
CREATE TABLE session_clients (
    id         TEXT   NOT NULL PRIMARY KEY,
    sid        TEXT   NOT NULL,
    client_id  TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX session_clients_sid_idx ON session_clients (sid);
CREATE INDEX session_clients_subject_idx ON session_clients (subject);
CREATE INDEX session_clients_expires_at_idx ON session_clients (expires_at);

CREATE TABLE logout_jobs (
    id           TEXT    NOT NULL PRIMARY KEY,
    client_id    TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    sid          TEXT    NOT NULL,
    attempts     INTEGER NOT NULL,
    next_attempt BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX logout_jobs_next_attempt_idx ON logout_jobs (next_attempt);
CREATE INDEX logout_jobs_expires_at_idx ON logout_jobs (expires_at);

-- +goose Down
DROP TABLE logout_jobs;
DROP TABLE session_clients;
