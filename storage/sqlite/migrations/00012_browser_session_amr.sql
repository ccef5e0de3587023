-- How the person of a browser session signed in (RFC 8176 amr values,
-- space-separated), so ID tokens issued from the session say so. Sessions
-- from before carry none; the provider then says "wechat".

-- +goose Up
ALTER TABLE browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE browser_sessions DROP COLUMN amr;
