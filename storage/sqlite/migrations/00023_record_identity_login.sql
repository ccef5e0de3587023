-- PostgreSQL's migration 00023 adds a function that records a login on the
-- user and on the identity in one statement of a batch; SQLite runs its
-- writes in one local transaction and checks row counts instead, so it
-- needs nothing. The version is kept so that both databases number their
-- migrations alike.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
