-- PostgreSQL's migration 00003 adds functions for conditional writes sent
-- in one batch; SQLite runs its writes in one local transaction and checks
-- row counts instead, so it needs nothing. The version is kept so that
-- both databases number their migrations alike.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
