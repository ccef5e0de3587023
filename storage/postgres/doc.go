// Package postgres is the PostgreSQL backend of [storage.Storage]: it opens
// a connection pool with github.com/jackc/pgx/v5 through database/sql
// (pgx/v5/stdlib), applies its embedded goose migrations under a
// per-schema advisory lock, maps PostgreSQL's error codes to the storage
// sentinels and hands the SQL work to the shared
// storage/internal/sqlstore.
//
// Several provider replicas may share one database (and schema): single use
// of codes and refresh tokens, compare-and-swap updates and leases are
// conditional statements that hold at READ COMMITTED across connections,
// and replicas that start together migrate the schema once.
//
// The schema is the connection's current schema, the first existing entry
// of its search_path (set it with the DSN parameter search_path=… to keep
// wxoidc in a schema of its own).
//
// It does not create databases or schemas, and it does not import the
// SQLite driver.
package postgres
