-- PostgreSQL's migration 00024 rebuilds oauth2_code with its columns in
-- an order that makes the code's invalidation log less; SQLite logs whole
-- pages, whatever the order, so it needs nothing. The version is kept so
-- that both databases number their migrations alike.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
