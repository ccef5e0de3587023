package postgres

import (
	"database/sql"

	"github.com/jackc/pgx/v5"
)

// PoolOf returns the connection pool of s, for tests of its settings.
func PoolOf(s *Store) *sql.DB { return s.db }

// WithTracer returns o with a tracer that sees every statement of the pool.
func WithTracer(o Options, t pgx.QueryTracer) Options {
	o.tracer = t
	return o
}
