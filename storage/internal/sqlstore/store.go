package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
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
	// answers with 503. The generic checks of Store.unavailable (broken
	// connections, network errors) apply in any case; nil adds none.
	IsUnavailable func(err error) bool

	// Compact, if set, is a statement DeleteExpired runs after it removed
	// rows, giving at most %d freed pages back to the file system (SQLite:
	// PRAGMA incremental_vacuum(%d)). Empty means the database reuses free
	// space by itself (PostgreSQL's autovacuum).
	Compact string
	// CompactLeft, if set, is a query of how many free pages Compact has
	// still to give back (SQLite: PRAGMA freelist_count); DeleteExpired
	// repeats Compact until it says 0. Empty means Compact runs once.
	CompactLeft string
	// JanitorStatement, if set, is how long one of the janitor's
	// statements on the writer (a JanitorPrefetch delete, a Compact step)
	// should take: batches start at 8 rows or pages, halve after a
	// statement that took longer and double after one that took under
	// half of it, up to deleteBatch rows and compactPages pages. Zero
	// means batches of those sizes. SQLite sets it: its one writer makes
	// every token write wait for the janitor's statement.
	JanitorStatement time.Duration
	// JanitorPrefetch makes DeleteExpired pick each batch on a reader
	// (rowid and indexed columns through the expires_at index), read the
	// batch's index entries there, and only then delete the rows by rowid
	// (still expired) on the writer (SQLite): with a database larger than
	// memory, the pages come from disk while the writer serves token
	// writes, and the delete holding the writer finds them cached.
	JanitorPrefetch bool
	// JanitorCheckpoint, if set, is a query the janitor runs on a reader
	// after each of its statements (SQLite: PRAGMA wal_checkpoint(PASSIVE),
	// three columns): the pages it changed go back to the database file
	// off the writer, instead of in the automatic checkpoint of whichever
	// token write next finds the WAL long.
	JanitorCheckpoint string

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
	// InvalidateCodeSessions is InvalidateCode that also deletes the PKCE
	// and OpenID Connect sessions kept in the code's row (pkce_form,
	// oidc_form). Empty means a conditional UPDATE checked by its row
	// count.
	InvalidateCodeSessions string
	// AsyncCommitFrom, if set, is a FROM item that, joined once into an
	// autocommitted UPDATE, makes its transaction commit without waiting
	// for the log flush (PostgreSQL: set_config('synchronous_commit',
	// 'off', true)). Device polls use it: the poll time they record may be
	// lost in a crash without harm, and a redemption is flushed by the
	// synchronous commit of the tokens it leads to, which follows it in
	// the log. Empty means every commit waits.
	AsyncCommitFrom string
	// DetachTxStatements runs the statements of a transaction with a
	// context that is never cancelled (SQLite). modernc's driver starts a
	// goroutine per statement run with a cancellable context, to interrupt
	// it when the context ends; in a transaction, where the statements are
	// short and the connection is already the transaction's, that costs
	// more than it saves. A request that ends still rolls its transaction
	// back (database/sql watches the context given to BeginTx), once the
	// statement running returns.
	DetachTxStatements bool
	// WritableCTE says the database runs data-modifying statements in WITH
	// (PostgreSQL): then steps that take several writes, such as
	// AdmitLoginState's rate limits and login state, are one statement
	// (one round trip and one commit). False means they run in one
	// transaction.
	WritableCTE bool
	// RecordLogin, if set, sets a user's last login time (placeholders:
	// the time, the subject) only if the user exists and is enabled,
	// failing like RotateRefresh otherwise. Empty means a conditional
	// UPDATE checked by its row count.
	RecordLogin string
	// RecordIdentityLogin, if set, is RecordLogin that also sets the last
	// login time of the identity signed in with (placeholders: the time,
	// the subject, the app ID, the OpenID), in one statement. Empty means
	// RecordLogin, then an UPDATE of the identity.
	RecordIdentityLogin string
	// EventMethod is the SQL expression of the "method" of an event's
	// details (a JSON object in the text column details), for
	// Store.CountEvents. Required.
	EventMethod string
	// Collate is appended to text columns compared for prefix search and
	// paging, so that they compare bytewise (PostgreSQL: ` COLLATE "C"`;
	// SQLite compares bytewise already).
	Collate string
	// IsGuardFailure reports whether err is the failure of RotateRefresh,
	// InvalidateCode or RecordLogin on a row that was not there. Required
	// when any of them is set.
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

	clients clientCache    // GetClient's recent reads
	decoded decodedClients // the client rows decoded last, by ID
	// refreshUsed is RotateRefreshToken's error for a token no longer
	// active, built once instead of on every refresh.
	refreshUsed error

	rebound sync.Map    // query → query with $n placeholders
	stmts   sync.Map    // stmtKey → *sql.Stmt, prepared on w or r
	warmed  atomic.Bool // txQueries are in stmts

	asyncQ asyncQueries // asynchronously committed variants; empty without Dialect.AsyncCommitFrom

	observer storage.Observer // sees every round trip; nil for none. Set before use.
	names    sync.Map         // query → its name for observers

	janitorIndexes sync.Map // table → first columns of its indexes (Dialect.JanitorPrefetch)
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
	s.asyncQ = newAsyncQueries(s.d.AsyncCommitFrom)
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
	return s.migrate(ctx, db, 0)
}

// MigrateUpTo applies the migrations up to and including version, on the
// writer: for tests that build a database with an older schema.
func (s *Store) MigrateUpTo(ctx context.Context, version int64) error {
	return s.migrate(ctx, s.w, version)
}

// migrate applies the pending migrations up to version (0: all).
func (s *Store) migrate(ctx context.Context, db *sql.DB, version int64) error {
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
	if version > 0 {
		_, err = p.UpTo(ctx, version)
	} else {
		_, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", s.d.Name, err)
	}
	return nil
}

// Ping implements storage.Storage.
func (s *Store) Ping(ctx context.Context) error {
	done := s.trip(ctx, "ping")
	err := s.w.PingContext(ctx)
	if err == nil && s.r != s.w {
		err = s.r.PingContext(ctx)
	}
	done(err)
	return s.wrap("ping", err)
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
	case errors.Is(err, storage.ErrUnavailable):
		return fmt.Errorf("%s: %s: %w", s.d.Name, op, err) // classified at the round trip
	case s.unavailable(err):
		return fmt.Errorf("%s: %s: %w (%w)", s.d.Name, op, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
}

// classify marks err, from a database round trip, as
// storage.ErrUnavailable when it says the database could not be reached
// or went away; other errors (nil too) pass unchanged.
func (s *Store) classify(err error) error {
	if err == nil || errors.Is(err, sql.ErrNoRows) || errors.Is(err, storage.ErrUnavailable) || !s.unavailable(err) {
		return err
	}
	return fmt.Errorf("%w (%w)", storage.ErrUnavailable, err)
}

// unavailable reports whether err, from database/sql or the driver, says
// the database could not be reached or went away (connection refused or
// reset, a broken pooled connection, a closed connection or transaction)
// rather than that a statement was wrong; the dialect adds its own signs.
// Only the database's errors are judged here: this is the one place that
// may read a network error as a storage outage.
func (s *Store) unavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return s.d.IsUnavailable != nil && s.d.IsUnavailable(err)
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
