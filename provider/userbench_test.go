package provider_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fositestorage "github.com/ory/fosite/storage"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/seed"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// benchSeed is what BenchmarkUsers seeds: WXOIDC_BENCH_SEED (see package
// storage/seed), default users=1000000.
func benchSeed(b *testing.B) seed.Spec {
	text := os.Getenv("WXOIDC_BENCH_SEED")
	if text == "" {
		text = "users=1000000"
	}
	spec, err := seed.ParseSpec(text)
	if err != nil {
		b.Fatalf("WXOIDC_BENCH_SEED: %v", err)
	}
	if spec.Users < 1 {
		b.Fatalf("WXOIDC_BENCH_SEED=%q seeds no users", text)
	}
	return spec
}

// benchStore opens a migrated, empty store of backend and a plain
// connection to its database.
func benchStore(b *testing.B, backend string) (storage.Storage, *sql.DB) {
	ctx := context.Background()
	switch backend {
	case "sqlite":
		path := filepath.Join(b.TempDir(), "bench.db")
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close(); s.Close() })
		return s, db
	}
	dsn := os.Getenv("WXOIDC_TEST_POSTGRES_DSN")
	if dsn == "" {
		b.Skip("WXOIDC_TEST_POSTGRES_DSN not set: skipping the PostgreSQL benchmark")
	}
	schema := fmt.Sprintf("wxoidc_bench_%d", time.Now().UnixNano())
	if err := execSQL(ctx, dsn, "CREATE SCHEMA "+schema); err != nil {
		b.Fatal(err)
	}
	s, db := openPGBench(b, dsn, schema)
	b.Cleanup(func() {
		db.Close()
		s.Close()
		execSQL(context.Background(), dsn, "DROP SCHEMA "+schema+" CASCADE")
	})
	return s, db
}

// openPGBench opens a migrated store on schema of dsn and a plain
// connection to it; the store's connections carry the schema as their
// application_name (see pgBackends).
func openPGBench(b *testing.B, dsn, schema string) (storage.Storage, *sql.DB) {
	ctx := context.Background()
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	plain := u.String()
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	s, err := postgres.Open(ctx, u.String(), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		b.Fatal(err)
	}
	db, err := sql.Open("pgx", plain)
	if err != nil {
		s.Close()
		b.Fatal(err)
	}
	return pgBenchStore{Storage: s, Transactional: s, dsn: dsn, app: schema}, db
}

// pgBenchStore is a PostgreSQL store that names its backends (pgBackends).
type pgBenchStore struct {
	storage.Storage
	fositestorage.Transactional
	dsn, app string
}

func (s pgBenchStore) pgBackends() (string, string) { return s.dsn, s.app }

// seededStores are BenchmarkUsers' seeded stores by backend and spec, kept
// for the other -count rounds of this process when WXOIDC_BENCH_SEED_KEEP
// is set (and then for later runs too: PostgreSQL schema
// wxoidc_bench_users_NAME, SQLite $TMPDIR/wxoidc-bench-users-NAME.db, NAME
// spec.Name(), which carries seed.Version; drop them by hand). A kept
// SQLite database has a copy as seeded beside it (….db.pristine), which
// each process starts from; a kept PostgreSQL schema keeps what earlier
// runs added.
var seededStores = struct {
	sync.Mutex
	m map[string]storage.Storage
}{m: map[string]storage.Storage{}}

// seededStore returns a store of backend seeded with spec. Without
// WXOIDC_BENCH_SEED_KEEP it is made afresh and dropped at the end of b.
func seededStore(b *testing.B, backend string, spec seed.Spec) storage.Storage {
	if os.Getenv("WXOIDC_BENCH_SEED_KEEP") == "" {
		s, db := benchStore(b, backend)
		if err := seed.Seed(context.Background(), db, backend, spec, time.Now(), b.Logf); err != nil {
			b.Fatal(err)
		}
		return s
	}
	seededStores.Lock()
	defer seededStores.Unlock()
	key := backend + "/" + spec.String()
	if s, ok := seededStores.m[key]; ok {
		return s
	}
	ctx := context.Background()
	name := "wxoidc_bench_users_" + spec.Name()
	var (
		s      storage.Storage
		db     *sql.DB
		seeded bool
		mark   func() error
	)
	switch backend {
	case "sqlite":
		path := filepath.Join(os.TempDir(), strings.ReplaceAll(name, "_", "-")+".db")
		marker, pristine := path+".seeded", path+".pristine"
		// Each process starts from the database as seeded (a copy kept
		// beside it), not with the users and tokens that earlier runs'
		// grants added, which an empty database never has.
		if got, err := os.ReadFile(marker); err == nil && string(got) == spec.String() && restoreSeeded(pristine, path) == nil {
			seeded = true
		} else {
			for _, f := range []string{path, path + "-wal", path + "-shm", marker, pristine} {
				os.Remove(f)
			}
		}
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		if db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)"); err != nil {
			b.Fatal(err)
		}
		s, mark = st, func() error {
			var busy, log, done int
			if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil || busy != 0 {
				return fmt.Errorf("checkpoint the seeded database: busy %d, %v", busy, err)
			}
			if err := copyFile(path, pristine); err != nil {
				return err
			}
			return os.WriteFile(marker, []byte(spec.String()), 0o600)
		}
	default:
		dsn := os.Getenv("WXOIDC_TEST_POSTGRES_DSN")
		if dsn == "" {
			b.Skip("WXOIDC_TEST_POSTGRES_DSN not set: skipping the PostgreSQL benchmark")
		}
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer admin.Close()
		var comment sql.NullString
		err = admin.QueryRowContext(ctx, "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", name).Scan(&comment)
		seeded = err == nil && comment.String == spec.String()
		if !seeded {
			if _, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
				b.Fatal(err)
			}
			if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
				b.Fatal(err)
			}
		}
		s, db = openPGBench(b, dsn, name)
		mark = func() error {
			_, err := admin.ExecContext(ctx, "COMMENT ON SCHEMA "+name+" IS '"+spec.String()+"'")
			return err
		}
	}
	defer db.Close()
	if seeded {
		b.Logf("reusing the seeded %s %s", backend, name)
	} else {
		if err := seed.Seed(ctx, db, backend, spec, time.Now(), b.Logf); err != nil {
			b.Fatal(err)
		}
		if err := mark(); err != nil {
			b.Fatal(err)
		}
	}
	seededStores.m[key] = s
	return s
}

// restoreSeeded puts the copy of a seeded SQLite database back at path,
// without the WAL of the runs since.
func restoreSeeded(pristine, path string) error {
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return copyFile(pristine, path)
}

// copyFile copies the file from to the file to (through a temporary file
// beside it, synced before it takes to's name), so that a copy of a large
// seeded database is on disk before a benchmark measures anything.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(to), filepath.Base(to)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(out.Name(), to)
}

// sharedStore lets benchmark rounds share one seeded store: the harness
// registers its clients again (already there) and closes the store after
// each round (it stays open).
type sharedStore struct {
	storage.Storage
	fositestorage.Transactional
}

func (s sharedStore) CreateClient(ctx context.Context, c storage.Client) error {
	if err := s.Storage.CreateClient(ctx, c); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	return nil
}

func (sharedStore) Close() error { return nil }

func (s sharedStore) pgBackends() (string, string) {
	if pg, ok := s.Storage.(pgBackends); ok {
		return pg.pgBackends()
	}
	return "", ""
}

// BenchmarkUsers measures, on SQLite and on PostgreSQL, user search by
// phone number and by openid among the users of WXOIDC_BENCH_SEED (default
// users=1000000; median and p99 per lookup, as p50-µs and p99-µs), and the
// Mini Program grant's throughput on an empty database and on the seeded
// one (grants/s, and the CPU per grant: cpu-ms/op of this process, which
// is driver, simulator and provider, and pgcpu-ms/op of PostgreSQL). Run
// it alone, on a quiet machine; -count repeats each sub-benchmark in a
// block, so to interleave empty and seeded run it several times with
// WXOIDC_BENCH_SEED_KEEP=1 (the seeded users stay for the next run):
//
//	WXOIDC_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  WXOIDC_BENCH_SEED_KEEP=1 \
//	  go test ./provider -run '^$' -bench BenchmarkUsers -benchtime 2000x -count 1 -timeout 30m
func BenchmarkUsers(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			parent := b // the seeded store lives as long as this benchmark
			spec := benchSeed(b)
			n := spec.Users
			var (
				once   sync.Once
				seeded storage.Storage
			)
			full := func(b *testing.B) storage.Storage {
				once.Do(func() { seeded = seededStore(parent, backend, spec) })
				if seeded == nil {
					b.Skip("no seeded store")
				}
				return seeded
			}
			b.Run("grant-empty", func(b *testing.B) {
				s, _ := benchStore(b, backend)
				benchmarkWeChatGrant(b, s, true)
			})
			search := func(b *testing.B, q func(i int) storage.UserQuery) {
				s := full(b)
				ctx := context.Background()
				rng := rand.New(rand.NewPCG(1, 2))
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for b.Loop() {
					i := rng.IntN(n)
					t0 := time.Now()
					us, _, err := s.SearchUsers(ctx, q(i))
					lat = append(lat, time.Since(t0))
					if err != nil || len(us) != 1 {
						b.Fatalf("search %d: %d users, %v", i, len(us), err)
					}
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
			b.Run("search-phone", func(b *testing.B) {
				search(b, func(i int) storage.UserQuery { return storage.UserQuery{PhoneNumber: seed.PhoneNumber(i)} })
			})
			b.Run("search-openid", func(b *testing.B) {
				search(b, func(i int) storage.UserQuery { return storage.UserQuery{OpenID: seed.OpenID(i)} })
			})
			b.Run("grant-seeded", func(b *testing.B) {
				s := full(b)
				benchmarkWeChatGrant(b, sharedStore{Storage: s, Transactional: s.(fositestorage.Transactional)}, true)
			})
		})
	}
}
