package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults of [Options].
const (
	DefaultMaxConns             = 8
	DefaultConnMaxLifetime      = 30 * time.Minute
	DefaultConnMaxIdleTime      = 5 * time.Minute
	DefaultStatementTimeout     = 10 * time.Second
	DefaultMigrationLockTimeout = 5 * time.Minute
)

// Options tunes the connection pool. The zero value means the defaults.
//
// The pool settings may also be given in the DSN with pgxpool's parameter
// names (pool_max_conns=16, pool_max_conn_lifetime=1h,
// pool_max_conn_idle_time=10m), and the statement timeout with PostgreSQL's
// own statement_timeout=5000 (milliseconds); a non-zero field of Options
// wins over the DSN.
type Options struct {
	// MaxConns is the size of the pool: the most connections open at once,
	// all of which are kept when idle. 0 means DefaultMaxConns. A replica
	// needs about as many as it has concurrent token requests in flight
	// beyond what its CPUs can serve; more only adds lock contention.
	MaxConns int
	// ConnMaxLifetime is how long a connection is reused before it is
	// replaced (so that the pool follows failovers and DNS changes). 0
	// means DefaultConnMaxLifetime; negative means forever.
	ConnMaxLifetime time.Duration
	// ConnMaxIdleTime is how long an unused connection stays open. 0 means
	// DefaultConnMaxIdleTime; negative means forever.
	ConnMaxIdleTime time.Duration
	// StatementTimeout bounds every statement on the server
	// (statement_timeout, set when each connection starts, so it costs no
	// round trip); a statement past it fails with SQLSTATE 57014. Waiting
	// for a row lock counts. 0 means the DSN's statement_timeout, else
	// DefaultStatementTimeout; negative means the server's setting.
	// Migrations run without it.
	StatementTimeout time.Duration
	// MigrationLockTimeout is how long Migrate waits for the migration of
	// another replica to finish. 0 means DefaultMigrationLockTimeout.
	MigrationLockTimeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ReadOnly makes every transaction read-only on the server
	// (default_transaction_read_only): for checks that must not change
	// the database (wxoidc serve --check). Migrate fails on such a store.
	ReadOnly bool

	tracer pgx.QueryTracer // sees every statement; tests only
}

// Store is a [storage.Storage] on one PostgreSQL schema, for any number of
// provider replicas. It also implements fosite's storage.Transactional
// (READ COMMITTED transactions). It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	db *sql.DB // the pool, closed by Store.Close; never nil after Open
	// migrateCfg opens Migrate's own connections: the store's configuration
	// without a statement timeout. Never nil after Open.
	migrateCfg *pgx.ConnConfig
}

var _ storage.Storage = (*Store)(nil)

// Open returns a Store on the database of dsn, a PostgreSQL URL
// (postgres://user:password@host:5432/db?sslmode=verify-full) or key=value
// connection string as pgx accepts it (see [pgx.ParseConfig] and [Options]
// for the parameters this package adds). It checks that the database
// answers, but does not migrate the schema; call [Store.Migrate].
//
// Prepared statements are cached per connection (by database/sql and pgx),
// so a pooler in front of PostgreSQL must support protocol-level prepared
// statements (PgBouncer ≥ 1.21 with max_prepared_statements) or be in
// session mode.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx redacts the password
	}
	if err := opts.fromDSN(cfg.RuntimeParams); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	switch {
	case opts.StatementTimeout > 0:
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(1, opts.StatementTimeout.Milliseconds()), 10)
	case opts.StatementTimeout == 0 && cfg.RuntimeParams["statement_timeout"] == "":
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "wxoidc"
	}
	if opts.ReadOnly {
		cfg.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cfg.Tracer = opts.tracer
	mc := cfg.Copy()
	mc.Tracer = nil
	mc.RuntimeParams["statement_timeout"] = "0"

	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	db.SetConnMaxLifetime(max(0, opts.ConnMaxLifetime))
	db.SetConnMaxIdleTime(max(0, opts.ConnMaxIdleTime))
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := sqlstore.New(sqlstore.Config{Dialect: dialect(opts.MigrationLockTimeout), DB: db, Now: opts.Now})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{Store: s, db: db, migrateCfg: mc}, nil
}

// Migrate applies the embedded migrations that the schema lacks. It may run
// from several replicas at once: each takes a session-level advisory lock
// keyed by the schema's name (goose's PostgreSQL session locker), so one
// migrates while the others wait up to Options.MigrationLockTimeout and
// then find nothing left to do. It runs on connections of its own, without
// the statement timeout, and closes them before it returns.
func (s *Store) Migrate(ctx context.Context) error {
	db := stdlib.OpenDB(*s.migrateCfg)
	defer db.Close()
	// goose holds the lock on one connection and refuses a pool of one.
	db.SetMaxOpenConns(2)
	return s.Store.MigrateOn(ctx, db)
}

// fromDSN moves pgxpool's pool parameters out of the runtime parameters
// (where pgx puts every setting it does not know, to send to the server)
// into the zero fields of o.
func (o *Options) fromDSN(params map[string]string) error {
	if v, ok := params["pool_max_conns"]; ok {
		delete(params, "pool_max_conns")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("postgres: DSN: pool_max_conns=%q is not a positive integer", v)
		}
		if o.MaxConns == 0 {
			o.MaxConns = n
		}
	}
	for _, p := range []struct {
		name string
		d    *time.Duration
	}{
		{"pool_max_conn_lifetime", &o.ConnMaxLifetime},
		{"pool_max_conn_idle_time", &o.ConnMaxIdleTime},
	} {
		v, ok := params[p.name]
		if !ok {
			continue
		}
		delete(params, p.name)
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("postgres: DSN: %s=%q is not a positive duration", p.name, v)
		}
		if *p.d == 0 {
			*p.d = d
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.ConnMaxLifetime == 0 {
		o.ConnMaxLifetime = DefaultConnMaxLifetime
	}
	if o.ConnMaxIdleTime == 0 {
		o.ConnMaxIdleTime = DefaultConnMaxIdleTime
	}
	if o.MigrationLockTimeout <= 0 {
		o.MigrationLockTimeout = DefaultMigrationLockTimeout
	}
	return o
}

// dialect is the sqlstore dialect of PostgreSQL through pgx, with the
// embedded migrations.
func dialect(lockTimeout time.Duration) sqlstore.Dialect {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sqlstore.Dialect{
		Name:                   "postgres",
		EventMethod:            "(details::jsonb ->> 'method')",
		NumberedPlaceholders:   true,
		IsUniqueViolation:      isUniqueViolation,
		IsRetryable:            isRetryable,
		IsUnavailable:          isUnavailable,
		Goose:                  goose.DialectPostgres,
		Migrations:             sub,
		SessionLocker:          schemaLocker{timeout: lockTimeout},
		RotateRefresh:          "SELECT wxoidc_rotate_refresh(?, ?)",
		AsyncCommitFrom:        "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit",
		InvalidateCode:         "SELECT wxoidc_invalidate_code(?)",
		InvalidateCodeSessions: "SELECT wxoidc_invalidate_code_sessions(?)",
		WritableCTE:            true,
		RecordLogin:            "SELECT wxoidc_record_login(?, ?)",
		RecordIdentityLogin:    "SELECT wxoidc_record_identity_login(?, ?, ?, ?)",
		Collate:                ` COLLATE "C"`,
		IsGuardFailure:         func(err error) bool { return sqlState(err) == codeNoDataFound },
		ExecBatch:              execBatch,
	}
}

// execBatch implements sqlstore.Dialect.ExecBatch with a pgx batch: every
// statement is sent at once, followed by one Sync, so PostgreSQL runs them
// as one implicit transaction that a failing statement rolls back whole.
// Statements are prepared and cached on the connection by pgx.
func execBatch(ctx context.Context, conn *sql.Conn, stmts []sqlstore.Stmt) (failed int, err error) {
	failed = -1
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: batch on a %T connection", dc)
		}
		var b pgx.Batch
		for _, st := range stmts {
			b.Queue(st.Query, st.Args...)
		}
		br := c.Conn().SendBatch(ctx, &b)
		for i := range stmts {
			if _, err := br.Exec(); err != nil {
				failed = i
				br.Close()
				return err
			}
		}
		return br.Close()
	})
	return failed, err
}

// SQLSTATEs this package acts on
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeNoDataFound          = "P0002" // raised by the guards of migration 00003
)

func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func isUniqueViolation(err error) bool { return sqlState(err) == codeUniqueViolation }

// isUnavailable reports a connection pgx closed or could not use (the
// server restarted or went away), and the SQLSTATE classes 08 (connection
// exception) and 57P (operator intervention: admin shutdown, crash
// shutdown, cannot connect now).
func isUnavailable(err error) bool {
	if errors.Is(err, pgconn.ErrConnClosed) || pgconn.SafeToRetry(err) {
		return true
	}
	st := sqlState(err)
	return strings.HasPrefix(st, "08") || strings.HasPrefix(st, "57P")
}

func isRetryable(err error) bool {
	switch sqlState(err) {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	}
	return false
}

// schemaLocker is goose's PostgreSQL session locker
// ([lock.NewPostgresSessionLocker]) with a lock ID derived from the
// connection's current schema, so that migrations of one schema exclude
// each other and those of different schemas (other deployments, parallel
// tests) do not. The waiting side polls once a second.
type schemaLocker struct {
	timeout time.Duration // how long SessionLock waits; > 0
}

var _ lock.SessionLocker = schemaLocker{}

// SessionLock implements lock.SessionLocker.
func (l schemaLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	gl, err := l.locker(ctx, conn)
	if err != nil {
		return err
	}
	return gl.SessionLock(ctx, conn)
}

// SessionUnlock implements lock.SessionLocker.
func (l schemaLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	gl, err := l.locker(ctx, conn)
	if err != nil {
		return err
	}
	return gl.SessionUnlock(ctx, conn)
}

func (l schemaLocker) locker(ctx context.Context, conn *sql.Conn) (lock.SessionLocker, error) {
	var schema sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("current schema: %w", err)
	}
	if !schema.Valid {
		return nil, errors.New("no schema of the search_path exists")
	}
	return lock.NewPostgresSessionLocker(
		lock.WithLockID(lockID(schema.String)),
		lock.WithLockTimeout(1, uint64(max(1, l.timeout/time.Second))),
	)
}

// lockID is the advisory lock key of migrations in schema.
func lockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("wxoidc migrate " + schema))
	return int64(h.Sum64())
}
