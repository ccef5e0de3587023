-- Pushes WeChat sent to an official account (storage.PushEventStore),
-- recorded before they are acknowledged: the primary key recognises
-- WeChat's retries on every replica; claimed_until lets another replica
-- finish an event whose processor died. Times are Unix microseconds.

-- +goose Up
CREATE TABLE push_events (
    app_id        TEXT    NOT NULL,
    event_key     TEXT    NOT NULL,
    data          BYTEA   NOT NULL,
    received_at   BIGINT  NOT NULL,
    claimed_until BIGINT  NOT NULL,
    done          BOOLEAN NOT NULL,
    expires_at    BIGINT  NOT NULL,
    PRIMARY KEY (app_id, event_key)
);
CREATE INDEX push_events_due_idx ON push_events (done, claimed_until);
CREATE INDEX push_events_expires_at_idx ON push_events (expires_at);

-- +goose Down
DROP TABLE push_events;
