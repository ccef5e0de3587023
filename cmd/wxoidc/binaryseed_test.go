package main

// The seeded databases of BenchmarkBinary (WXOIDC_BENCH_SEED): made once
// per run of the test binary, reused by every -count, removed when the
// test binary ends; with WXOIDC_BENCH_SEED_KEEP=1 they stay (SQLite in
// $TMPDIR/wxoidc-bench-seed-SPEC, PostgreSQL as database
// wxoidc_bench_seed_SPEC) and the next run reuses them. Drop them by hand
// when done.

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/seed"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

func TestMain(m *testing.M) {
	code := m.Run()
	benchSeeds.cleanup()
	os.Exit(code)
}

// benchSeeds are the seeded databases of this process: SQLite data
// directories and PostgreSQL database names, by backend and spec.
var benchSeeds = seededDatabases{made: map[string]string{}}

type seededDatabases struct {
	mu       sync.Mutex
	made     map[string]string // backend/spec → data directory or database
	cleanups []func()
}

func (s *seededDatabases) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.cleanups {
		f()
	}
	s.cleanups = nil
}

// get returns the database of backend seeded with spec, making it with
// create (which returns it and its cleanup) the first time.
func (s *seededDatabases) get(b *testing.B, backend string, spec seed.Spec, create func() (string, func(), error)) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := backend + "/" + spec.String()
	if v, ok := s.made[key]; ok {
		return v
	}
	v, cleanup, err := create()
	if cleanup != nil {
		s.cleanups = append(s.cleanups, cleanup)
	}
	if err != nil {
		b.Fatalf("seed %s: %v", key, err)
	}
	s.made[key] = v
	return v
}

// seededSQLite returns a data directory for wxoidc dev whose wxoidc.db is
// migrated and seeded with spec.
func seededSQLite(b *testing.B, spec seed.Spec) string {
	return benchSeeds.get(b, "sqlite", spec, func() (string, func(), error) {
		dir := filepath.Join(os.TempDir(), "wxoidc-bench-seed-"+seedName(spec))
		marker := filepath.Join(dir, "seeded")
		if keepSeed() {
			if got, err := os.ReadFile(marker); err == nil && string(got) == spec.String() {
				b.Logf("reusing the seeded %s", dir)
				return dir, nil, nil
			}
		}
		os.RemoveAll(dir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if keepSeed() {
			cleanup = nil
		}
		ctx := context.Background()
		path := filepath.Join(dir, "wxoidc.db")
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return "", cleanup, err
		}
		err = s.Migrate(ctx)
		s.Close()
		if err != nil {
			return "", cleanup, err
		}
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return "", cleanup, err
		}
		defer db.Close()
		if err := seed.Seed(ctx, db, "sqlite", spec, time.Now(), b.Logf); err != nil {
			return "", cleanup, err
		}
		return dir, cleanup, os.WriteFile(marker, []byte(spec.String()), 0o600)
	})
}

// keepSeed reports whether seeded databases outlive the run
// (WXOIDC_BENCH_SEED_KEEP).
func keepSeed() bool { return os.Getenv("WXOIDC_BENCH_SEED_KEEP") != "" }

// seedName is spec in a database or file name, with seed.Version (a
// database seeded by another version is not reused).
func seedName(spec seed.Spec) string { return spec.Name() }

// seededPostgres returns a migrated database seeded with spec and an
// administrative connection (to the DSN's database) for this run.
func seededPostgres(b *testing.B, spec seed.Spec) (string, *sql.DB) {
	admin, err := sql.Open("pgx", os.Getenv("WXOIDC_TEST_POSTGRES_DSN"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	name := benchSeeds.get(b, "postgres", spec, func() (string, func(), error) {
		ctx := context.Background()
		name := "wxoidc_bench_seed_" + seedName(spec)
		if keepSeed() {
			var comment sql.NullString
			err := admin.QueryRowContext(ctx, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name).Scan(&comment)
			if err == nil && comment.String == spec.String() {
				b.Logf("reusing the seeded database %s", name)
				return name, nil, nil
			}
		}
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return "", nil, err
		}
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
			return "", nil, err
		}
		cleanup := func() {
			db, err := sql.Open("pgx", os.Getenv("WXOIDC_TEST_POSTGRES_DSN"))
			if err == nil {
				_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
				db.Close()
			}
		}
		dsn := benchDSN(name).String()
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			return "", cleanup, err
		}
		err = s.Migrate(ctx)
		s.Close()
		if err != nil {
			return "", cleanup, err
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return "", cleanup, err
		}
		defer db.Close()
		if err := seed.Seed(ctx, db, "postgres", spec, time.Now(), b.Logf); err != nil {
			return "", cleanup, err
		}
		if keepSeed() {
			cleanup = nil
		}
		_, err = admin.ExecContext(ctx, "COMMENT ON DATABASE "+name+" IS '"+spec.String()+"'")
		return name, cleanup, err
	})
	return name, admin
}

// benchDSN is WXOIDC_TEST_POSTGRES_DSN naming database name.
func benchDSN(name string) *url.URL {
	u, _ := url.Parse(os.Getenv("WXOIDC_TEST_POSTGRES_DSN"))
	u.Path = "/" + name
	return u
}

// openBenchDB opens the provider's database (read only on SQLite) for
// counting rows, closed at the end of the benchmark.
func openBenchDB(b *testing.B, backend, data, pgDB string) *sql.DB {
	var (
		db  *sql.DB
		err error
	)
	if backend == "postgres" {
		db, err = sql.Open("pgx", benchDSN(pgDB).String())
	} else {
		db, err = sql.Open("sqlite", filepath.Join(data, "wxoidc.db")+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// expiredRows counts the rows of the seeded token tables whose expiry has
// passed: what the janitor has still to delete.
func (st *benchStack) expiredRows(b *testing.B) int64 {
	b.Helper()
	var total int64
	now := time.Now().UnixMicro()
	for _, t := range seed.Tables {
		var n int64
		if err := st.db.QueryRow("SELECT count(*) FROM " + t.Name + " WHERE expires_at < " + fmt.Sprint(now)).Scan(&n); err != nil {
			b.Fatal(err)
		}
		total += n
	}
	return total
}
