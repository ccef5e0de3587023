-- When the side waiting on a pending authorization (a desktop login page)
-- last showed it is still there (storage.DeviceAuth.SeenAt), Unix
-- microseconds; 0 when it said it left. A scan of a login whose page is
-- gone is refused rather than approved for nobody.

-- +goose Up
ALTER TABLE device_auths ADD COLUMN seen_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE device_auths DROP COLUMN seen_at;
