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
	// the access tokens of its request ID), saving a round trip. Its
	// placeholders are the key and the request ID; when the token was not
	// active it changes nothing and fails with an error IsGuardFailure
	// recognises. Empty means the two statements, the first checked by its
	// row count.
	RotateRefresh string
	// InvalidateCode, if set, deactivates an authorization code by key,
	// failing like RotateRefresh when the code was not active. Empty means
	// a conditional UPDATE checked by its row count.
	InvalidateCode string
	// IsGuardFailure reports whether err is the failure of RotateRefresh or
	// InvalidateCode on a token that was not active. Required when either
	// is set.
	IsGuardFailure func(err error) bool
	// ExecBatch, if set, runs the statements of a write set on conn in one
	// round trip and one transaction: all of them or none. It returns the
	// index of the statement that failed with the error, or -1 for an error
	// of the batch as a whole. Nil means BEGIN, each statement, COMMIT.
	ExecBatch func(ctx context.Context, conn *sql.Conn, stmts []Stmt) (failed int, err error)

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

	clients clientCache // GetClient's recent reads
	// refreshUsed is RotateRefreshToken's error for a token no longer
	// active, built once instead of on every refresh.
	refreshUsed error

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
	s.refreshUsed = fmt.Errorf("%s: rotate oauth2_refresh: no active token: %w", s.d.Name, storage.ErrNotFound)
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

// txState is a transaction in a context. One begun by BeginTX starts as a
// write set: the writes fosite's token steps make (token rows, rotations,
// invalidations, the session key) are only queued, with their arguments
// already encoded, and Commit sends them to the database at once: in one
// round trip and implicit transaction where the dialect has ExecBatch, else
// in one short transaction on the writer (so SQLite's single writer is held
// for the statements alone, never while a request encodes or signs). The
// first statement that needs a result (a read after a queued write, a
// row-counted write, a read-modify-write helper) turns the write set into a
// database transaction, running the queued writes in it first; reads before
// any write go to the reader, outside a transaction. Either way the effects
// are those of one transaction, and a conditional write that finds its row
// already used fails the whole set: at Commit, when it was queued.
type txState struct {
	s       *Store
	tx      *sql.Tx // the database transaction; nil while only queueing
	pending []Stmt  // queued writes, in order
	done    bool    // committed or rolled back (or failed trying)
}

// Stmt is one queued write: a statement and its arguments. Queued, Query
// has ? placeholders; ExecBatch receives it with the dialect's.
type Stmt struct {
	Query string
	Args  []any
	op    string // error context
	// guard, if set, is the error of a conditional write that found no
	// active row: it changed no row, or failed with the dialect's guard
	// error.
	guard error
}

func (s *Store) state(ctx context.Context) *txState {
	if st, ok := ctx.Value(txKey{}).(*txState); ok && st.s == s {
		return st
	}
	return nil
}

// txFrom returns the context's database transaction, beginning it (and
// running the queued writes in it) if the context holds a write set.
func (s *Store) txFrom(ctx context.Context) (*sql.Tx, error) {
	st := s.state(ctx)
	if st == nil {
		return nil, nil
	}
	if err := st.begin(ctx); err != nil {
		return nil, err
	}
	return st.tx, nil
}

// begin turns a write set into a database transaction.
func (st *txState) begin(ctx context.Context) error {
	if st.tx != nil {
		return nil
	}
	if st.done {
		return fmt.Errorf("%s: the transaction has already ended", st.s.d.Name)
	}
	s := st.s
	s.warm(ctx)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("begin", err)
	}
	st.tx = tx
	pending := st.pending
	st.pending = nil
	for _, p := range pending {
		if err := s.run(ctx, tx, p); err != nil {
			return err
		}
	}
	return nil
}

// run executes one write in tx.
func (s *Store) run(ctx context.Context, tx *sql.Tx, p Stmt) error {
	var (
		res sql.Result
		err error
	)
	if st := s.cached(p.Query); st != nil {
		ts := tx.StmtContext(ctx, st)
		res, err = ts.ExecContext(ctx, p.Args...)
		ts.Close()
	} else {
		res, err = tx.ExecContext(ctx, s.q(p.Query), p.Args...)
	}
	return s.result(p, res, err)
}

// result is the error of write p that returned res and err: p.guard for a
// conditional write that found no active row, else err wrapped.
func (s *Store) result(p Stmt, res sql.Result, err error) error {
	if err != nil {
		if p.guard != nil && s.d.IsGuardFailure != nil && s.d.IsGuardFailure(err) {
			return p.guard
		}
		return s.wrap(p.op, err)
	}
	if p.guard != nil {
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return p.guard
		}
	}
	return nil
}

// flush writes a write set that never became a database transaction.
func (st *txState) flush(ctx context.Context) error {
	s := st.s
	if len(st.pending) == 0 {
		return nil
	}
	if s.d.ExecBatch == nil {
		if err := st.begin(ctx); err != nil {
			if st.tx != nil {
				st.tx.Rollback() // the failure that stopped it is the one to report
			}
			return err
		}
		return s.wrap("commit", st.tx.Commit())
	}
	stmts := make([]Stmt, len(st.pending))
	for i, p := range st.pending {
		p.Query = s.q(p.Query)
		stmts[i] = p
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.wrap("commit", err)
	}
	defer conn.Close()
	i, err := s.d.ExecBatch(ctx, conn, stmts)
	switch {
	case err == nil:
		return nil
	case i < 0 || i >= len(stmts):
		return s.wrap("commit", err)
	}
	return s.result(stmts[i], nil, err)
}

// BeginTX implements fosite's storage.Transactional: it returns a context
// that carries a new write set (see txState). Every Store method called
// with that context belongs to the transaction.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if s.state(ctx) != nil {
		return ctx, fmt.Errorf("%s: begin: a transaction is already in progress", s.d.Name)
	}
	return context.WithValue(ctx, txKey{}, &txState{s: s}), nil
}

// Commit implements fosite's storage.Transactional. A queued conditional
// write that finds its token already used fails here, with the error its
// method documents, and nothing of the transaction is written.
func (s *Store) Commit(ctx context.Context) error {
	st := s.state(ctx)
	if st == nil {
		return fmt.Errorf("%s: commit: no transaction in context", s.d.Name)
	}
	if st.done {
		return fmt.Errorf("%s: commit: the transaction has already ended", s.d.Name)
	}
	if st.tx == nil {
		err := st.flush(ctx)
		st.pending, st.done = nil, true
		return err
	}
	st.done = true
	return s.wrap("commit", st.tx.Commit())
}

// Rollback implements fosite's storage.Transactional. Rolling back a
// transaction that has ended (a failed Commit, say) does nothing.
func (s *Store) Rollback(ctx context.Context) error {
	st := s.state(ctx)
	if st == nil {
		return fmt.Errorf("%s: rollback: no transaction in context", s.d.Name)
	}
	st.pending = nil
	if st.done {
		return nil
	}
	st.done = true
	if st.tx == nil {
		return nil
	}
	return s.wrap("rollback", st.tx.Rollback())
}

// maxAttempts bounds the retries of inTx on unique violations and
// retryable conflicts.
const maxAttempts = 10

// inTx runs fn in the context's transaction, or else in a new one that it
// commits, retrying fn on unique violations and retryable conflicts when the
// transaction is its own (fn must then be safe to rerun).
func (s *Store) inTx(ctx context.Context, op string, retry bool, fn func(ctx context.Context) error) error {
	if st := s.state(ctx); st != nil {
		if err := st.begin(ctx); err != nil {
			return err
		}
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
	for _, q := range []string{s.d.RotateRefresh, s.d.InvalidateCode} {
		if q != "" {
			qs = append(qs[:len(qs):len(qs)], q)
		}
	}
	for _, q := range qs {
		if _, err := s.prepared(ctx, s.w, q); err != nil {
			return
		}
	}
	s.warmed.Store(true)
}

// write runs a write whose result nobody needs: queued when the context
// holds a write set, else run in the context's transaction or on the
// writer. guard, if set, makes it a conditional write (see Stmt). Errors
// are wrapped with op.
func (s *Store) write(ctx context.Context, op string, guard error, query string, args ...any) error {
	p := Stmt{Query: query, Args: args, op: op, guard: guard}
	if st := s.state(ctx); st != nil {
		if st.tx == nil {
			if st.done {
				return fmt.Errorf("%s: %s: the transaction has already ended", s.d.Name, op)
			}
			st.pending = append(st.pending, p)
			return nil
		}
		return s.run(ctx, st.tx, p)
	}
	res, err := s.exec(ctx, query, args...)
	return s.result(p, res, err)
}

// exec runs a statement in the context's transaction or on the writer.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tx, err := s.txFrom(ctx)
	if err != nil {
		return nil, err
	}
	if tx != nil {
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

// readTx returns the transaction a read in ctx must use: none (the reader)
// outside transactions and in a write set with nothing queued yet.
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	st := s.state(ctx)
	if st == nil || (st.tx == nil && len(st.pending) == 0) {
		return nil, nil
	}
	if err := st.begin(ctx); err != nil {
		return nil, err
	}
	return st.tx, nil
}

// queryRow runs a one-row query in the context's transaction or on the
// reader and scans the row into dest; no row is sql.ErrNoRows.
func (s *Store) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	tx, err := s.readTx(ctx)
	if err != nil {
		return err
	}
	if tx != nil {
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
	tx, err := s.readTx(ctx)
	if err != nil {
		return err
	}
	var rows *sql.Rows
	if tx != nil {
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
