package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/ory/fosite/handler/openid"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/conformance"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/postgres/pgtest"
)

// testDSN returns $WXOIDC_TEST_POSTGRES_DSN or skips the test.
func testDSN(tb testing.TB) string {
	tb.Helper()
	return pgtest.DSN(tb, "the PostgreSQL tests")
}

// newSchema is a fresh schema for the test (pgtest.Schema).
func newSchema(tb testing.TB) string {
	tb.Helper()
	return pgtest.Schema(tb, "wxoidc_test_", "the PostgreSQL tests")
}

// newStore is a conformance.NewStorage: a migrated store on a fresh schema.
func newStore(t *testing.T) storage.Storage {
	t.Helper()
	dsn := newSchema(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	testDSN(t) // skip once, not in every subtest
	conformance.RunTests(t, newStore)
}

func TestConcurrency(t *testing.T) {
	testDSN(t)
	conformance.RunConcurrencyTests(t, newStore)
}

// TestMigrate_concurrent starts three replicas on one fresh schema and
// migrates them at once: each must succeed, one by migrating and the
// others by waiting for it.
func TestMigrate_concurrent(t *testing.T) {
	dsn := newSchema(t)
	const replicas = 3
	stores := make([]*postgres.Store, replicas)
	for i := range stores {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			errs[i] = s.Migrate(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	for i, s := range stores {
		if err := s.CreateClient(t.Context(), storage.Client{ID: "client-" + string(rune('a'+i))}); err != nil {
			t.Errorf("replica %d: CreateClient after Migrate: %v", i, err)
		}
	}
	cs, err := stores[0].ListClients(t.Context())
	if err != nil || len(cs) != replicas {
		t.Errorf("ListClients = %d clients, %v; want %d", len(cs), err, replicas)
	}
}

func TestMigrate_twice(t *testing.T) {
	s := newStore(t).(*postgres.Store)
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}

// TestMigrate_mirrorsSQLite checks that every SQLite migration has a
// PostgreSQL twin of the same name.
func TestMigrate_mirrorsSQLite(t *testing.T) {
	names := func(dir string) []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".sql") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	sqlite, pg := names("../sqlite/migrations"), names("migrations")
	if strings.Join(sqlite, ",") != strings.Join(pg, ",") {
		t.Errorf("migrations differ:\nsqlite:   %v\npostgres: %v", sqlite, pg)
	}
}

// TestOpen_options checks that the pool settings of Options and of the DSN
// reach the pool, and that pool parameters are not sent to the server
// (which would refuse them).
func TestOpen_options(t *testing.T) {
	dsn := newSchema(t)
	tests := []struct {
		name    string
		dsn     string
		opts    postgres.Options
		want    int
		timeout string
	}{
		{name: "defaults", dsn: dsn, want: postgres.DefaultMaxConns, timeout: "10s"},
		{name: "options", dsn: dsn, opts: postgres.Options{MaxConns: 3, StatementTimeout: 2500 * 1e6}, want: 3, timeout: "2500ms"},
		{name: "dsn", dsn: dsn + "&pool_max_conns=5&pool_max_conn_lifetime=1h&pool_max_conn_idle_time=1m&statement_timeout=4000", want: 5, timeout: "4s"},
		{name: "options win", dsn: dsn + "&pool_max_conns=5&statement_timeout=4000", opts: postgres.Options{MaxConns: 2, StatementTimeout: 1e9}, want: 2, timeout: "1s"},
		{name: "server default", dsn: dsn, opts: postgres.Options{StatementTimeout: -1}, want: postgres.DefaultMaxConns, timeout: "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tc.dsn, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			// The pool size is what database/sql reports; the statement
			// timeout is what the server runs with.
			db := postgres.PoolOf(s)
			if got := db.Stats().MaxOpenConnections; got != tc.want {
				t.Errorf("MaxOpenConnections = %d, want %d", got, tc.want)
			}
			var timeout string
			if err := db.QueryRowContext(t.Context(), "SHOW statement_timeout").Scan(&timeout); err != nil {
				t.Fatal(err)
			}
			if timeout != tc.timeout {
				t.Errorf("statement_timeout = %q, want %q", timeout, tc.timeout)
			}
		})
	}
}

// statements counts the round trips a pool makes: each statement sent
// alone (prepared ones included; BEGIN and COMMIT are statements too) and
// each batch.
type statements struct{ n atomic.Int64 }

func (c *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statements) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statements) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statements) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *statements) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestRefreshFlow_roundTrips pins the number of round trips of what a
// refresh asks of storage: one read (token, client and user together), then
// the rotation and the two inserts as one batch at Commit.
func TestRefreshFlow_roundTrips(t *testing.T) {
	var count statements
	s, err := postgres.Open(t.Context(), newSchema(t), postgres.WithTracer(postgres.Options{MaxConns: 1}, &count))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := storage.Client{ID: "client", GrantTypes: []string{"refresh_token"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	req := benchRequest(&c, "family")
	if _, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app", OpenID: "o", NewSubject: "sub"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(ctx, "rt-0", "at-0", req); err != nil {
		t.Fatal(err)
	}
	refresh := func(i int) int64 {
		before := count.n.Load()
		pctx, pre := storage.WithPrefetch(ctx)
		got, err := s.GetRefreshTokenSession(pctx, fmt.Sprint("rt-", i), new(openid.DefaultSession))
		if err != nil {
			t.Fatal(err)
		}
		if got.GetClient().GetID() != c.ID {
			t.Fatalf("client %q, want %q", got.GetClient().GetID(), c.ID)
		}
		if _, ok := pre.User("sub"); !ok {
			t.Fatal("the token's user was not read with it")
		}
		txCtx, err := s.BeginTX(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RotateRefreshToken(txCtx, "family", fmt.Sprint("rt-", i)); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateAccessTokenSession(txCtx, fmt.Sprint("at-", i+1), req); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateRefreshTokenSession(txCtx, fmt.Sprint("rt-", i+1), fmt.Sprint("at-", i+1), req); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(txCtx); err != nil {
			t.Fatal(err)
		}
		return count.n.Load() - before
	}
	refresh(0) // statements get prepared
	if got, want := refresh(1), int64(2); got != want {
		t.Errorf("a refresh took %d statements, want %d", got, want)
	}
}

// TestMigrateToUsers migrates a database built with the schema before
// users and accounts.
func TestMigrateToUsers(t *testing.T) {
	ctx := t.Context()
	dsn := newSchema(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.MigrateUpTo(ctx, conformance.SchemaBeforeUsers); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) error { _, err := db.ExecContext(ctx, q); return err }
	conformance.TestMigrationToUsers(t, s, exec, func() error { return s.Migrate(ctx) })
}

// TestErasureLeavesNothing dumps every table after an erasure.
func TestErasureLeavesNothing(t *testing.T) {
	dsn := newSchema(t)
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conformance.TestErasureLeavesNothing(t, s, func() (string, error) {
		var tables []string
		rows, err := db.Query("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return "", err
			}
			tables = append(tables, n)
		}
		rows.Close()
		var b strings.Builder
		for _, table := range tables {
			rows, err := db.Query(`SELECT * FROM "` + table + `"`)
			if err != nil {
				return "", err
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return "", err
				}
				fmt.Fprintf(&b, "%s:", table)
				for _, v := range vals {
					if bs, ok := v.([]byte); ok {
						v = string(bs) // bytea as its bytes
					}
					fmt.Fprintf(&b, " %v", v)
				}
				b.WriteByte('\n')
			}
			rows.Close()
		}
		return b.String(), nil
	})
}

// TestCodeExchange_readsOnce pins that fosite's two reads of an
// authorization code in one exchange (with a storage.Prefetch) cost one
// statement, and that both return the stored request.
func TestCodeExchange_readsOnce(t *testing.T) {
	var count statements
	s, err := postgres.Open(t.Context(), newSchema(t), postgres.WithTracer(postgres.Options{MaxConns: 1}, &count))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := storage.Client{ID: "client", GrantTypes: []string{"authorization_code"}}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	req := benchRequest(&c, "family")
	for _, code := range []string{"code-0", "code-1"} {
		if err := s.CreateAuthorizeCodeSession(ctx, code, req); err != nil {
			t.Fatal(err)
		}
	}
	exchange := func(code string) int64 {
		before := count.n.Load()
		pctx, _ := storage.WithPrefetch(ctx)
		for range 2 {
			got, err := s.GetAuthorizeCodeSession(pctx, code, new(openid.DefaultSession))
			if err != nil {
				t.Fatal(err)
			}
			if got.GetID() != req.GetID() || got.GetClient().GetID() != c.ID {
				t.Fatalf("got request %q of client %q, want %q of %q", got.GetID(), got.GetClient().GetID(), req.GetID(), c.ID)
			}
		}
		return count.n.Load() - before
	}
	exchange("code-0") // statements get prepared
	if got, want := exchange("code-1"), int64(1); got != want {
		t.Errorf("two reads of a code took %d statements, want %d", got, want)
	}
	// Without a Prefetch every read is a read.
	before := count.n.Load()
	for range 2 {
		if _, err := s.GetAuthorizeCodeSession(ctx, "code-1", new(openid.DefaultSession)); err != nil {
			t.Fatal(err)
		}
	}
	if got := count.n.Load() - before; got != 2 {
		t.Errorf("two reads without a Prefetch took %d statements, want 2", got)
	}
}
