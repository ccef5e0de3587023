-- The sender of each recorded push (the official account's openid of the
-- person), so that erasing a user, or unlinking the identity, deletes the
-- pushes that name them. Pushes recorded before carry the openid only in
-- their data: it is copied out here.

-- +goose Up
ALTER TABLE push_events ADD COLUMN open_id TEXT NOT NULL DEFAULT '';
UPDATE push_events SET open_id = COALESCE(json_extract(CAST(data AS TEXT), '$.openid'), '')
WHERE json_valid(CAST(data AS TEXT));
CREATE INDEX push_events_open_id_idx ON push_events (open_id);

-- +goose Down
DROP INDEX push_events_open_id_idx;
ALTER TABLE push_events DROP COLUMN open_id;
