-- identities' primary key becomes (open_id, app_id) instead of (app_id,
-- open_id), and identities_open_id_idx, which only repeated its second
-- column for the search by openid, goes. Every statement finds identities
-- by (app_id, open_id), by open_id, or by subject (identities_subject_app_idx);
-- the new key serves the first two. A sign-up then writes one index entry
-- keyed by a random openid instead of two: with a million real openids,
-- one page read and one full-page image less per sign-up (docs/scale.md).
--
-- Built CONCURRENTLY, outside a transaction, so that the upgrade does not
-- stop logins; the swap of the constraint takes the table's lock only for
-- a moment. Each step can be run again.

-- +goose NO TRANSACTION
-- +goose Up
DROP INDEX CONCURRENTLY IF EXISTS identities_open_id_app_idx;
CREATE UNIQUE INDEX CONCURRENTLY identities_open_id_app_idx ON identities (open_id, app_id);
ALTER TABLE identities DROP CONSTRAINT identities_pkey, ADD CONSTRAINT identities_pkey PRIMARY KEY USING INDEX identities_open_id_app_idx;
DROP INDEX CONCURRENTLY IF EXISTS identities_open_id_idx;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS identities_open_id_idx ON identities (open_id);
DROP INDEX CONCURRENTLY IF EXISTS identities_app_open_id_idx;
CREATE UNIQUE INDEX CONCURRENTLY identities_app_open_id_idx ON identities (app_id, open_id);
ALTER TABLE identities DROP CONSTRAINT identities_pkey, ADD CONSTRAINT identities_pkey PRIMARY KEY USING INDEX identities_app_open_id_idx;
