package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MemoryPath is the path of a private in-memory database, for tests. It is
// served by a single connection (reads queue behind writes) and vanishes on
// Close.
const MemoryPath = ":memory:"

// busyTimeoutMS is how long a connection waits for a lock held by another
// process (another wxoidc command on the same file) before SQLITE_BUSY.
const busyTimeoutMS = 10000

// mmapSize is the PRAGMA mmap_size of every connection of [Open]: SQLite
// reads the first mmapSize bytes of the database file through a memory
// mapping of the operating system's page cache instead of a read() call
// into each connection's own page cache (2 MB, SQLite's default). The
// mapping is address space, not memory: the pages are the page cache's,
// shared by every connection and process, and the kernel drops them
// under memory pressure as it would after read(). 0x7fff0000 (2 GB less
// 64 KB) is SQLite's largest on Linux (SQLITE_MAX_MMAP_SIZE); a larger
// file reads its pages beyond that with read() as before. Pages in the
// WAL are still read from the WAL file. An I/O error on a mapped page
// (a failing disk) stops the process instead of failing one statement;
// see docs/deploy.md.
const mmapSize = 0x7fff0000

// Store is a [storage.Storage] on one SQLite database file. It also
// implements fosite's storage.Transactional. It is safe for concurrent use
// within one process; run a single provider process per database file
// (other processes, such as `wxoidc clients`, may write to it briefly).
type Store struct {
	*sqlstore.Store
	ckpt *checkpointer // nil for MemoryPath
}

var _ storage.Storage = (*Store)(nil)

// Open opens (creating it if needed) the SQLite database at path and
// returns a Store on it. It does not migrate the schema; call
// [Store.Migrate].
//
// Writes and transactions go through one connection (so writers queue in Go
// instead of failing with SQLITE_BUSY) that begins transactions IMMEDIATE;
// reads outside transactions use a separate pool of read-only connections,
// which in WAL mode see every committed write without waiting for the
// writer. The database is put in WAL mode with synchronous=NORMAL (durable
// across process crashes; the last commits may be lost on power failure),
// busy_timeout and foreign keys on. A connection of its own checkpoints
// the WAL in the background until Close (checkpoint.go).
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: path %q: '?' and '#' are not supported", path)
	}
	w, r, err := openPools(ctx, path)
	if err != nil {
		return nil, err
	}
	s, err := sqlstore.New(sqlstore.Config{Dialect: dialect(), DB: w, ReadDB: r})
	if err != nil {
		w.Close()
		if r != nil {
			r.Close()
		}
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	st := &Store{Store: s}
	if path != MemoryPath {
		if st.ckpt, err = startCheckpointer(path); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: open %s: checkpoint connection: %w", path, err)
		}
	}
	return st, nil
}

// Close stops the background checkpoints and closes the database.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		err = s.ckpt.Close()
	}
	return errors.Join(s.Store.Close(), err)
}

// openPools opens Open's connections: for MemoryPath one connection (r
// nil), else the writer w and the pool of readers r.
func openPools(ctx context.Context, path string) (w, r *sql.DB, err error) {
	if path == MemoryPath {
		db, err := sql.Open("sqlite", MemoryPath+"?_pragma=foreign_keys(1)")
		if err != nil {
			return nil, nil, fmt.Errorf("sqlite: open: %w", err)
		}
		// The database lives in this one connection: never let it go.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		w, r = db, nil
	} else {
		if err := createPrivate(path); err != nil {
			return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		common := url.Values{}
		common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
		common.Add("_pragma", "foreign_keys(1)")
		common.Add("_pragma", "synchronous(NORMAL)")
		common.Add("_pragma", fmt.Sprintf("mmap_size(%d)", mmapSize))

		// The writer checkpoints only a WAL that the background has not
		// kept short (checkpoint.go).
		wp := append([]string{"journal_mode(WAL)"}, common["_pragma"]...)
		wp = append(wp, fmt.Sprintf("wal_autocheckpoint(%d)", writerCheckpointPages), fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
		wq := url.Values{"_pragma": wp, "_txlock": {"immediate"}}
		db, err := sql.Open("sqlite", path+"?"+wq.Encode())
		if err != nil {
			return nil, nil, fmt.Errorf("sqlite: open: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		// Create the file and switch it to WAL before readers connect.
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		if err := incrementalVacuum(ctx, db); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		w = db

		rq := url.Values{"_pragma": append([]string{"query_only(1)"}, common["_pragma"]...)}
		r, err = sql.Open("sqlite", path+"?"+rq.Encode())
		if err != nil {
			w.Close()
			return nil, nil, fmt.Errorf("sqlite: open: %w", err)
		}
		n := max(4, 2*runtime.GOMAXPROCS(0))
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		r.SetConnMaxLifetime(0)
	}
	return w, r, nil
}

// OpenReadOnly opens the existing SQLite database at path without writing
// to it (SQLite's mode=ro, and query_only): for checks that must not change
// the database or create it (wxoidc serve --check). A path that does not
// exist is an error wrapping fs.ErrNotExist.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == MemoryPath || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlite: read-only open of %q is not supported", path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	q := url.Values{"mode": {"ro"}, "_pragma": {"query_only(1)", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS)}}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s, err := sqlstore.New(sqlstore.Config{Dialect: dialect(), DB: db})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return &Store{Store: s}, nil
}

// createPrivate creates the database file, if it does not exist yet, as
// 0600: it holds phone numbers and unionids. SQLite creates the WAL and
// shared-memory files with the database file's permissions, so they are
// private too. An existing file keeps its mode, and the directory must
// exist (wxoidc dev makes and tightens its own; see docs/security.md).
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// incrementalVacuum puts the database in incremental auto-vacuum mode, in
// which the janitor's PRAGMA incremental_vacuum (Dialect.Compact, after
// DeleteExpired) returns the pages of deleted rows to the file system, so
// the file shrinks after a burst of short-lived rows instead of keeping its
// largest size forever. A new file takes the mode at once; an existing one
// (created before wxoidc set it) needs one VACUUM, which rewrites the file
// once, at this open.
func incrementalVacuum(ctx context.Context, db *sql.DB) error {
	const incremental = 2
	var mode int
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("read auto_vacuum: %w", err)
	}
	if mode == incremental {
		return nil
	}
	if _, err := db.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return fmt.Errorf("set auto_vacuum: %w", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("read auto_vacuum: %w", err)
	}
	if mode == incremental {
		return nil // a new, empty database
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum to enable incremental auto_vacuum: %w", err)
	}
	return nil
}

// Migrate applies the embedded migrations that the database lacks.
func (s *Store) Migrate(ctx context.Context) error { return s.Store.Migrate(ctx) }

// dialect is the sqlstore dialect of SQLite (modernc.org/sqlite), with the
// embedded migrations.
func dialect() sqlstore.Dialect {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sqlstore.Dialect{
		Name:              "sqlite",
		EventMethod:       "json_extract(details, '$.method')",
		IsUniqueViolation: isUniqueViolation,
		IsRetryable:       isRetryable,
		Compact:           "PRAGMA incremental_vacuum(%d)",
		CompactLeft:       "PRAGMA freelist_count",
		// The janitor's statements hold the one writer that every token
		// write waits for. With 10,000,000 token rows, a seeded expired
		// row took 0.2 to 1.5 ms to delete (five B-tree pages, mostly
		// read from disk): a batch of 1000 held the writer for seconds.
		// So each batch is read on a reader first and sized to 3 ms on
		// the writer (10 ms still raised the p99 of refresh, about 40 ms
		// there, by 80 % or more; 3 ms deleted as fast); see
		// docs/scale.md.
		JanitorStatement:  3 * time.Millisecond,
		JanitorPrefetch:   true,
		JanitorCheckpoint: "PRAGMA wal_checkpoint(PASSIVE)",
		// modernc's driver starts a goroutine per statement with a
		// cancellable context.
		DetachTxStatements: true,
		Goose:              goose.DialectSQLite3,
		Migrations:         sub,
	}
}

func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func isRetryable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// ParseDSN returns the database path of a storage DSN (SPEC §7):
//
//	sqlite:///var/lib/wxoidc/wxoidc.db  → /var/lib/wxoidc/wxoidc.db (absolute)
//	sqlite://data/wxoidc.db             → data/wxoidc.db (relative to the working directory)
//	sqlite://:memory:                   → :memory: (tests only; see MemoryPath)
//
// The path is everything after "sqlite://", taken literally (no percent
// decoding); query parameters and fragments are not supported.
func ParseDSN(dsn string) (string, error) {
	path, ok := strings.CutPrefix(dsn, "sqlite://")
	if !ok {
		return "", fmt.Errorf("sqlite: DSN %q does not start with sqlite://", dsn)
	}
	if path == "" || path == "/" {
		return "", fmt.Errorf("sqlite: DSN %q has no path", dsn)
	}
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("sqlite: DSN %q: query parameters and fragments are not supported", dsn)
	}
	return path, nil
}
