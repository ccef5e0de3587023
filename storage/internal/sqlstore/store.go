package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ory/fosite"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/wxoidc/wxoidc/storage"
)

var (
	_ storage.Storage             = (*Store)(nil)
	_ fositestorage.Transactional = (*Store)(nil)
)

// Dialect is what differs between the SQL databases sqlstore runs on.
type Dialect struct {
	// Name prefixes error messages ("sqlite", "postgres").
	Name string
	// NumberedPlaceholders selects $1, $2, … placeholders instead of ?.
	NumberedPlaceholders bool
	// IsUniqueViolation reports whether err is a unique or primary-key
	// constraint violation (mapped to storage.ErrAlreadyExists). Required.
	IsUniqueViolation func(err error) bool
	// IsRetryable reports whether err is a transient conflict after which
	// the whole transaction may be retried: a serialization failure or
	// deadlock (PostgreSQL 40001, 40P01), a busy database (SQLite). Such
	// errors are returned wrapping fosite.ErrSerializationFailure, which
	// fosite answers with "please retry". Nil means none is.
	IsRetryable func(err error) bool
	// IsUnavailable reports whether err says the database went away (a
	// closed or broken connection, the server shutting down). Such errors
	// are returned wrapping storage.ErrUnavailable, which the provider
	// answers with 503. storage.IsUnavailable's generic checks apply in any
	// case; nil adds none.
	IsUnavailable func(err error) bool

	// Goose is goose's name for the database.
	Goose goose.Dialect
	// Migrations holds the dialect's goose SQL migrations at its root.
	Migrations fs.FS
	// RotateRefresh, if set, is one statement that does RotateRefreshToken's
	// two (deactivate the refresh token by key if it is active, then delete
	// the access tokens of its request ID, only if it was), saving a round
	// trip in fosite's refresh transaction. Its placeholders are the key and
	// the request ID, and it returns one row: how many refresh tokens it
	// deactivated (0 or 1). Empty means the two statements.
	RotateRefresh string

	// SessionLocker, if set, makes Migrate hold a database lock so that
	// replicas starting together migrate once (for PostgreSQL,
	// lock.NewPostgresSessionLocker). Nil means no lock.
	SessionLocker lock.SessionLocker
}

// Config configures a Store.
type Config struct {
	Dialect Dialect
	// DB serves transactions and every write. Required.
	DB *sql.DB
	// ReadDB, if set, serves reads outside transactions (SQLite's pool of
	// read connections, while DB is its one writer). Nil means DB.
	ReadDB *sql.DB
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Store implements storage.Storage and fosite's storage.Transactional on
// database/sql. It is safe for concurrent use. Close closes its databases.
type Store struct {
	d   Dialect
	w   *sql.DB          // writes and transactions; never nil
	r   *sql.DB          // reads outside transactions; never nil (may be w)
	now func() time.Time // never nil

	rebound sync.Map    // query → query with $n placeholders
	stmts   sync.Map    // stmtKey → *sql.Stmt, prepared on w or r
	warmed  atomic.Bool // txQueries are in stmts
}

type stmtKey struct {
	db    *sql.DB
	query string
}

// New returns a Store on cfg's databases. It does not migrate them; call
// [Store.Migrate].
func New(cfg Config) (*Store, error) {
	if cfg.DB == nil {
		return nil, errors.New("sqlstore: nil DB")
	}
	if cfg.Dialect.IsUniqueViolation == nil {
		return nil, errors.New("sqlstore: dialect without IsUniqueViolation")
	}
	s := &Store{d: cfg.Dialect, w: cfg.DB, r: cfg.ReadDB, now: cfg.Now}
	if s.r == nil {
		s.r = s.w
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.d.Name == "" {
		s.d.Name = "sqlstore"
	}
	return s, nil
}

// Migrate applies the dialect's pending migrations with goose, on the
// writer.
func (s *Store) Migrate(ctx context.Context) error { return s.MigrateOn(ctx, s.w) }

// MigrateOn is Migrate on db, which must reach the store's database and
// schema: a backend passes a pool opened for the migration alone when its
// writer's connections carry settings unfit for schema changes (say,
// PostgreSQL's statement_timeout). The dialect's SessionLocker, if any, is
// held on one of db's connections. MigrateOn does not close db.
func (s *Store) MigrateOn(ctx context.Context, db *sql.DB) error {
	if db == nil {
		return fmt.Errorf("%s: migrate: nil DB", s.d.Name)
	}
	if s.d.Migrations == nil {
		return fmt.Errorf("%s: migrate: dialect has no migrations", s.d.Name)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if s.d.SessionLocker != nil {
		opts = append(opts, goose.WithSessionLocker(s.d.SessionLocker))
	}
	p, err := goose.NewProvider(s.d.Goose, db, s.d.Migrations, opts...)
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", s.d.Name, err)
	}
	// p.Close would close db, which the caller owns.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("%s: migrate: %w", s.d.Name, err)
	}
	return nil
}

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return s.wrap("ping", err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return s.wrap("ping", err)
		}
	}
	return nil
}

// Close closes the prepared statements and the databases.
func (s *Store) Close() error {
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if err != nil {
		return fmt.Errorf("%s: close: %w", s.d.Name, err)
	}
	return nil
}

// txKey is the context key of the transaction begun by BeginTX.
type txKey struct{}

type txState struct {
	s  *Store
	tx *sql.Tx
}

func (s *Store) txFrom(ctx context.Context) *sql.Tx {
	if st, ok := ctx.Value(txKey{}).(*txState); ok && st.s == s {
		return st.tx
	}
	return nil
}

// BeginTX implements fosite's storage.Transactional: it begins a
// transaction and returns a context that carries it. Every Store method
// called with that context runs in the transaction.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if s.txFrom(ctx) != nil {
		return ctx, fmt.Errorf("%s: begin: a transaction is already in progress", s.d.Name)
	}
	s.warm(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return ctx, s.wrap("begin", err)
	}
	return context.WithValue(ctx, txKey{}, &txState{s: s, tx: tx}), nil
}

// Commit implements fosite's storage.Transactional.
func (s *Store) Commit(ctx context.Context) error {
	tx := s.txFrom(ctx)
	if tx == nil {
		return fmt.Errorf("%s: commit: no transaction in context", s.d.Name)
	}
	return s.wrap("commit", tx.Commit())
}

// Rollback implements fosite's storage.Transactional.
func (s *Store) Rollback(ctx context.Context) error {
	tx := s.txFrom(ctx)
	if tx == nil {
		return fmt.Errorf("%s: rollback: no transaction in context", s.d.Name)
	}
	return s.wrap("rollback", tx.Rollback())
}

// maxAttempts bounds the retries of inTx on unique violations and
// retryable conflicts.
const maxAttempts = 10

// inTx runs fn in the context's transaction, or else in a new one that it
// commits, retrying fn on unique violations and retryable conflicts when the
// transaction is its own (fn must then be safe to rerun).
func (s *Store) inTx(ctx context.Context, op string, retry bool, fn func(ctx context.Context) error) error {
	if s.txFrom(ctx) != nil {
		return fn(ctx)
	}
	var err error
	for range maxAttempts {
		err = s.runTx(ctx, op, fn)
		if !retry || err == nil || !(errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, fosite.ErrSerializationFailure)) {
			return err
		}
	}
	return err
}

func (s *Store) runTx(ctx context.Context, op string, fn func(ctx context.Context) error) (err error) {
	s.warm(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(op, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{}, &txState{s: s, tx: tx})); err != nil {
		return err
	}
	return s.wrap(op, tx.Commit())
}

// q returns query with the dialect's placeholders. Queries are written with
// ? and contain no literal question marks.
func (s *Store) q(query string) string {
	if !s.d.NumberedPlaceholders {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	v, _ := s.rebound.LoadOrStore(query, b.String())
	return v.(string)
}

// prepared returns query prepared on db, preparing it once.
func (s *Store) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{db, query}
	if v, ok := s.stmts.Load(k); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// cached returns query's statement prepared on the writer, if it has been.
// Inside a transaction nothing may be prepared on the writer: with SQLite
// its only connection is the transaction's.
func (s *Store) cached(query string) *sql.Stmt {
	if v, ok := s.stmts.Load(stmtKey{s.w, query}); ok {
		return v.(*sql.Stmt)
	}
	return nil
}

// txQueries are the statements fosite runs in transactions (code exchange,
// refresh rotation, reuse detection), what they read, and the session key
// the Mini Program grant stores with its tokens; warm prepares them
// on the writer before the first transaction.
var txQueries = []string{
	insertRefresh, accessTokens.insert, codes.get, refreshTokens.get, accessTokens.get,
	accessTokens.del, refreshTokens.del, rotateRefresh, deleteAccessByRequest,
	revokeRefresh, invalidateCode, selectClient, putSessionKey,
}

// warm prepares txQueries on the writer once; it must run outside any
// transaction. A failure (say, before Migrate) is retried next time.
func (s *Store) warm(ctx context.Context) {
	if s.warmed.Load() {
		return
	}
	qs := txQueries
	if s.d.RotateRefresh != "" {
		qs = append(qs[:len(qs):len(qs)], s.d.RotateRefresh)
	}
	for _, q := range qs {
		if _, err := s.prepared(ctx, s.w, q); err != nil {
			return
		}
	}
	s.warmed.Store(true)
}

// exec runs a statement in the context's transaction or on the writer.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if tx := s.txFrom(ctx); tx != nil {
		if st := s.cached(query); st != nil {
			ts := tx.StmtContext(ctx, st)
			defer ts.Close()
			return ts.ExecContext(ctx, args...)
		}
		return tx.ExecContext(ctx, s.q(query), args...)
	}
	st, err := s.prepared(ctx, s.w, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// execN runs a statement and returns how many rows it changed.
func (s *Store) execN(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs a one-row query in the context's transaction or on the
// reader and scans the row into dest; no row is sql.ErrNoRows.
func (s *Store) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	if tx := s.txFrom(ctx); tx != nil {
		if st := s.cached(query); st != nil {
			ts := tx.StmtContext(ctx, st)
			defer ts.Close()
			return ts.QueryRowContext(ctx, args...).Scan(dest...)
		}
		return tx.QueryRowContext(ctx, s.q(query), args...).Scan(dest...)
	}
	st, err := s.prepared(ctx, s.r, query)
	if err != nil {
		return err
	}
	return st.QueryRowContext(ctx, args...).Scan(dest...)
}

// query runs a query in the context's transaction or on the reader and
// calls scan for each row.
func (s *Store) query(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	var rows *sql.Rows
	if tx := s.txFrom(ctx); tx != nil {
		var err error
		if st := s.cached(query); st != nil {
			ts := tx.StmtContext(ctx, st)
			defer ts.Close()
			rows, err = ts.QueryContext(ctx, args...)
		} else {
			rows, err = tx.QueryContext(ctx, s.q(query), args...)
		}
		if err != nil {
			return err
		}
	} else {
		st, err := s.prepared(ctx, s.r, query)
		if err != nil {
			return err
		}
		rows, err = st.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// wrap maps a database error to the storage sentinels, with context:
// sql.ErrNoRows to storage.ErrNotFound, unique violations to
// storage.ErrAlreadyExists, retryable conflicts to
// fosite.ErrSerializationFailure. It returns nil for nil.
func (s *Store) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrNotFound)
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrAlreadyExists),
		errors.Is(err, storage.ErrConflict), errors.Is(err, fosite.ErrSerializationFailure):
		return err // already mapped
	case s.d.IsUniqueViolation(err):
		return fmt.Errorf("%s: %s: %w (%w)", s.d.Name, op, storage.ErrAlreadyExists, err)
	case s.d.IsRetryable != nil && s.d.IsRetryable(err):
		return fmt.Errorf("%s: %s: %w (%w)", s.d.Name, op, fosite.ErrSerializationFailure, err)
	case storage.IsUnavailable(err) || (s.d.IsUnavailable != nil && s.d.IsUnavailable(err)):
		return fmt.Errorf("%s: %s: %w (%w)", s.d.Name, op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
}

// hash is the key of a signature, code, request URI or JTI.
func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// micros is how times are stored: Unix microseconds, 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reverses micros.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// nullIfEmpty stores "" as NULL (for UNIQUE columns where empty means
// none).
func nullIfEmpty(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
