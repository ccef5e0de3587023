-- identities' primary key becomes (open_id, app_id) instead of (app_id,
-- open_id), and identities_open_id_idx, which only repeated its second
-- column for the search by openid, goes. Every statement finds identities
-- by (app_id, open_id), by open_id, or by subject (identities_subject_app_idx);
-- the new key serves the first two. A sign-up then writes one index entry
-- keyed by a random openid instead of two (docs/scale.md). SQLite cannot
-- change a primary key in place: the table is built again, with its
-- columns in the same order.

-- +goose Up
CREATE TABLE identities_new (
    app_id        TEXT   NOT NULL,
    open_id       TEXT   NOT NULL,
    union_id      TEXT,
    subject       TEXT   NOT NULL REFERENCES users (subject) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    kind          TEXT   NOT NULL DEFAULT '',
    last_login_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (open_id, app_id)
);
INSERT INTO identities_new (app_id, open_id, union_id, subject, created_at, kind, last_login_at)
    SELECT app_id, open_id, union_id, subject, created_at, kind, last_login_at FROM identities;
DROP TABLE identities;
ALTER TABLE identities_new RENAME TO identities;
CREATE UNIQUE INDEX identities_subject_app_idx ON identities (subject, app_id);

-- +goose Down
CREATE TABLE identities_old (
    app_id        TEXT   NOT NULL,
    open_id       TEXT   NOT NULL,
    union_id      TEXT,
    subject       TEXT   NOT NULL REFERENCES users (subject) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    kind          TEXT   NOT NULL DEFAULT '',
    last_login_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, open_id)
);
INSERT INTO identities_old (app_id, open_id, union_id, subject, created_at, kind, last_login_at)
    SELECT app_id, open_id, union_id, subject, created_at, kind, last_login_at FROM identities;
DROP TABLE identities;
ALTER TABLE identities_old RENAME TO identities;
CREATE UNIQUE INDEX identities_subject_app_idx ON identities (subject, app_id);
CREATE INDEX identities_open_id_idx ON identities (open_id);
