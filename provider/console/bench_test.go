package console_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/provider/console"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/postgres/pgtest"
	"github.com/wxoidc/wxoidc/storage/seed"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// consoleSeed is what BenchmarkConsole seeds: WXOIDC_BENCH_SEED (see
// package storage/seed), default users=1000000,logins=1000000.
func consoleSeed(b *testing.B) seed.Spec {
	text := os.Getenv("WXOIDC_BENCH_SEED")
	if text == "" {
		text = "users=1000000,logins=1000000"
	}
	spec, err := seed.ParseSpec(text)
	if err != nil {
		b.Fatalf("WXOIDC_BENCH_SEED: %v", err)
	}
	if spec.Users < 1000 {
		b.Fatalf("WXOIDC_BENCH_SEED=%q: BenchmarkConsole needs at least 1000 users", text)
	}
	return spec
}

// keepConsoleSeed reports whether the seeded database outlives the run
// (WXOIDC_BENCH_SEED_KEEP): SQLite $TMPDIR/wxoidc-console-seed-SPEC.db,
// PostgreSQL schema wxoidc_console_seed_SPEC. Remove them by hand.
func keepConsoleSeed() bool { return os.Getenv("WXOIDC_BENCH_SEED_KEEP") != "" }

// consoleSeedName is spec in a database or file name, with seed.Version
// (a database seeded by another version is not reused).
func consoleSeedName(spec seed.Spec) string { return spec.Name() }

// seededConsoleStore opens a migrated store of backend seeded with spec
// (reusing a kept one), with its events rolled up as the janitor does.
func seededConsoleStore(b *testing.B, backend string, spec seed.Spec) storage.Storage {
	ctx := context.Background()
	var (
		st     storage.Storage
		db     *sql.DB
		seeded bool
		mark   func() error
	)
	switch backend {
	case "sqlite":
		path := filepath.Join(os.TempDir(), "wxoidc-console-seed-"+consoleSeedName(spec)+".db")
		marker := path + ".seeded"
		if got, err := os.ReadFile(marker); keepConsoleSeed() && err == nil && string(got) == spec.String() {
			seeded = true
		} else {
			for _, f := range []string{path, path + "-wal", path + "-shm", marker} {
				os.Remove(f)
			}
		}
		if !keepConsoleSeed() {
			b.Cleanup(func() {
				for _, f := range []string{path, path + "-wal", path + "-shm", marker} {
					os.Remove(f)
				}
			})
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		st = s
		if db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)"); err != nil {
			b.Fatal(err)
		}
		mark = func() error { return os.WriteFile(marker, []byte(spec.String()), 0o600) }
	case "postgres":
		dsn := pgtest.DSN(b, "the PostgreSQL console benchmark")
		adm, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer adm.Close()
		schema := "wxoidc_console_seed_" + consoleSeedName(spec)
		var comment sql.NullString
		err = adm.QueryRowContext(ctx, "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1", schema).Scan(&comment)
		if keepConsoleSeed() && err == nil && comment.String == spec.String() {
			seeded = true
		} else {
			for _, q := range []string{"DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema} {
				if _, err := adm.ExecContext(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		}
		if !keepConsoleSeed() {
			b.Cleanup(func() {
				if adm, err := sql.Open("pgx", dsn); err == nil {
					adm.Exec("DROP SCHEMA IF EXISTS " + schema + " CASCADE")
					adm.Close()
				}
			})
		}
		dsn = pgtest.SearchPath(dsn, schema)
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st = s
		if db, err = sql.Open("pgx", dsn); err != nil {
			b.Fatal(err)
		}
		mark = func() error {
			_, err := db.ExecContext(ctx, fmt.Sprintf("COMMENT ON SCHEMA %s IS '%s'", schema, spec.String()))
			return err
		}
	}
	b.Cleanup(func() { db.Close(); st.Close() })
	if err := st.(interface{ Migrate(context.Context) error }).Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if seeded {
		b.Logf("%s: reusing the seeded %s", backend, consoleSeedName(spec))
	} else {
		if err := seed.Seed(ctx, db, backend, spec, time.Now(), b.Logf); err != nil {
			b.Fatal(err)
		}
		if err := mark(); err != nil {
			b.Fatal(err)
		}
	}
	t0 := time.Now()
	wm, err := st.RollUpEvents(ctx, time.Now().Add(-storage.RollUpLag))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: events rolled up to %v in %v", backend, wm.Format(time.RFC3339), time.Since(t0).Round(time.Millisecond))
	return st
}

// consolePage is one page BenchmarkConsole renders: path returns the
// path and query of the i-th request.
type consolePage struct {
	name string
	path func(rng *rand.Rand) string
}

// BenchmarkConsole renders each console page through the console's
// handler (and the admin API it calls in process) for an operator signed
// in with WeChat (a seeded user with the admin role, checked on every
// request as in production), on SQLite and on PostgreSQL seeded with
// WXOIDC_BENCH_SEED (default users=1000000,logins=1000000), and reports
// each page's median and 99th percentile (p50-ms, p99-ms). The events are
// rolled up first, as the janitor does. Run it alone:
//
//	WXOIDC_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable WXOIDC_BENCH_SEED_KEEP=1 \
//	  go test ./provider/console -run '^$' -bench BenchmarkConsole -benchtime 200x -timeout 2h
func BenchmarkConsole(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			spec := consoleSeed(b)
			st := seededConsoleStore(b, backend, spec)
			h, operator := consoleOn(b, st)
			n := spec.Users
			user := func(rng *rand.Rand) int { return 1 + rng.IntN(n-1) }
			day := func(rng *rand.Rand) string {
				return time.Now().UTC().AddDate(0, 0, -1-rng.IntN(28)).Format(time.DateOnly)
			}
			pages := []consolePage{
				{"overview", func(*rand.Rand) string { return "" }},
				{"users", func(*rand.Rand) string { return "users" }},
				{"users-phone", func(r *rand.Rand) string {
					return "users?by=phone_number&v=" + strings.TrimPrefix(seed.PhoneNumber(user(r)), "+86")
				}},
				{"users-openid", func(r *rand.Rand) string { return "users?by=openid&v=" + seed.OpenID(user(r)) }},
				{"users-name", func(r *rand.Rand) string {
					return "users?" + url.Values{"by": {"q"}, "v": {fmt.Sprintf("User %d", user(r))}}.Encode()
				}},
				{"user", func(r *rand.Rand) string { return "users/" + seed.Subject(user(r)) }},
				{"apps", func(*rand.Rand) string { return "apps" }},
				{"keys", func(*rand.Rand) string { return "keys" }},
				{"events", func(*rand.Rand) string { return "events" }},
				{"events-type", func(r *rand.Rand) string {
					return "events?type=" + []string{"login", "user_created", "client_created"}[r.IntN(3)]
				}},
				{"events-user", func(r *rand.Rand) string { return "events?sub=" + seed.Subject(user(r)) }},
				{"events-app", func(r *rand.Rand) string {
					return "events?client_id=" + []string{seed.ClientID, seed.WebClientID, "wxoidc-console"}[r.IntN(3)]
				}},
				{"events-time", func(r *rand.Rand) string { d := day(r); return "events?since=" + d + "&until=" + d }},
				{"events-type-app-time", func(r *rand.Rand) string {
					return "events?type=login&client_id=" + seed.WebClientID + "&until=" + day(r)
				}},
			}
			for _, p := range pages {
				b.Run(p.name, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(1, uint64(len(p.name))))
					lat := make([]time.Duration, 0, b.N)
					for b.Loop() {
						req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8081"+console.Prefix+p.path(rng), nil)
						req.AddCookie(operator)
						req.Header.Set("Accept-Language", "en")
						rec := httptest.NewRecorder()
						t0 := time.Now()
						h.ServeHTTP(rec, req)
						lat = append(lat, time.Since(t0))
						if rec.Code != http.StatusOK {
							b.Fatalf("GET %s: %d %.300s", req.URL, rec.Code, rec.Body)
						}
					}
					slices.Sort(lat)
					ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
					b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
					b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
				})
			}
		})
	}
}

// consoleOn returns the console on st, with the admin API it calls, a few
// apps, signing keys and the events of their making, and the session
// cookie of an operator: seeded user 0, given the admin role.
func consoleOn(b *testing.B, st storage.Storage) (http.Handler, *http.Cookie) {
	ctx := context.Background()
	km, err := keys.New(st, keys.Config{Secret: testSecret, Algorithms: []string{"RS256", "ES256"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		b.Fatal(err)
	}
	api, err := admin.New(admin.Config{Clients: st, Keys: km, Users: st, Secret: testSecret, Token: adminToken,
		WeChat: &admin.WeChatHealth{Apps: []admin.WeChatApp{{AppID: seed.AppID, Kind: "miniprogram"}}, Tokens: st}, Stats: st})
	if err != nil {
		b.Fatal(err)
	}
	consoleURL := "http://127.0.0.1:8081" + console.Prefix
	con, err := console.New(console.Config{
		Issuer: "http://127.0.0.1:8080", URL: consoleURL, Admin: api, AdminToken: adminToken,
		Secret: testSecret, WeChatApps: []admin.WeChatApp{{AppID: seed.AppID, Kind: "miniprogram"}}, GrantTypes: provider.GrantTypes(),
	})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	for _, c := range []storage.Client{
		{ID: seed.ClientID, Name: "Seeded Mini Program", GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"}, Scopes: provider.KnownScopes,
			TokenEndpointAuthMethod: storage.AuthMethodNone, WeChatAppID: seed.AppID, CreatedAt: now, UpdatedAt: now},
		{ID: seed.WebClientID, Name: "Seeded web app", SecretHash: provider.HashClientSecret(testSecret, "seed-web-secret"),
			RedirectURIs: []string{"https://app.example.com/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
			ResponseTypes: []string{"code"}, Scopes: provider.KnownScopes, TokenEndpointAuthMethod: storage.AuthMethodBasic, CreatedAt: now, UpdatedAt: now},
	} {
		if _, err := st.GetClient(ctx, c.ID); err == nil {
			continue // kept from an earlier run
		}
		if err := st.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.GetClient(ctx, console.ClientID); err != nil {
		c, err := console.ClientMetadata(consoleURL).Client(false, now)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	operator := seed.Subject(0)
	if err := st.UpdateUser(ctx, operator, func(u storage.User) (storage.User, error) {
		u.Roles = []string{"admin"}
		return u, nil
	}); err != nil {
		b.Fatal(err)
	}
	ck, err := con.SessionCookie(operator)
	if err != nil {
		b.Fatal(err)
	}
	return con, ck
}
