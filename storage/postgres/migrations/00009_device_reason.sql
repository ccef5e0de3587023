-- Why a pending authorization was denied (storage.DeviceAuth.Reason), so
-- that the waiting page can say it: e.g. no_account when registration is
-- closed and the scan found no account.

-- +goose Up
ALTER TABLE device_auths ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE device_auths DROP COLUMN reason;
