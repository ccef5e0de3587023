-- The sender of each recorded push (the official account's openid of the
-- person), so that erasing a user, or unlinking the identity, deletes the
-- pushes that name them. Pushes recorded before carry the openid only in
-- their data (JSON written by wxoidc): it is copied out here, by a
-- pattern that cannot fail on a row that is not JSON.

-- +goose Up
ALTER TABLE push_events ADD COLUMN open_id TEXT NOT NULL DEFAULT '';
UPDATE push_events SET open_id = COALESCE(substring(convert_from(data, 'UTF8') from '"openid":"([^"\\]*)"'), '');
CREATE INDEX push_events_open_id_idx ON push_events (open_id);

-- +goose Down
DROP INDEX push_events_open_id_idx;
ALTER TABLE push_events DROP COLUMN open_id;
