package postgres

import "database/sql"

// PoolOf returns the connection pool of s, for tests of its settings.
func PoolOf(s *Store) *sql.DB { return s.db }
