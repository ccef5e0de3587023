-- +goose Up
-- Counting events per type and day (storage.Stats.CountEvents, the
-- console's overview) reads only the events of the asked types.
CREATE INDEX events_type_time_idx ON events (type, time);

-- +goose Down
DROP INDEX events_type_time_idx;
