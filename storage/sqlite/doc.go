// Package sqlite is the SQLite backend of [storage.Storage]: it opens a
// database file with the pure-Go driver modernc.org/sqlite, applies its
// embedded migrations and hands the SQL work to the shared
// storage/internal/sqlstore.
//
// It does not let several provider replicas share one database: SQLite is for
// a single node; use storage/postgres for replicas.
package sqlite
