package seed_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/postgres/pgtest"
	"github.com/wxoidc/wxoidc/storage/seed"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		name, in string
		want     seed.Spec
		wantErr  bool
	}{
		{name: "all", in: "users=1000000,logins=2000000,tokens=10000000,expired=0.25", want: seed.Spec{Users: 1_000_000, Logins: 2_000_000, Tokens: 10_000_000, Expired: 0.25}},
		{name: "default expired", in: "tokens=5", want: seed.Spec{Tokens: 5, Expired: seed.DefaultExpired}},
		{name: "spaces and order", in: " expired=0 , users=3 ", want: seed.Spec{Users: 3}},
		{name: "empty", in: "", want: seed.Spec{Expired: seed.DefaultExpired}},
		{name: "unknown key", in: "rows=3", wantErr: true},
		{name: "no value", in: "users", wantErr: true},
		{name: "negative", in: "users=-1", wantErr: true},
		{name: "share above one", in: "expired=1.5", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := seed.ParseSpec(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseSpec(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("ParseSpec(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if err == nil {
				again, err := seed.ParseSpec(got.String())
				if err != nil || again != got {
					t.Fatalf("ParseSpec(%q) = %+v, %v: String does not round-trip", got.String(), again, err)
				}
			}
		})
	}
}

func TestExpiredRows(t *testing.T) {
	for _, tc := range []struct {
		n       int
		expired float64
		want    int
	}{{0, 0.3, 0}, {999, 0.3, 300}, {1000, 0.3, 300}, {1299, 0.3, 599}, {2500, 1, 2500}, {2500, 0, 0}} {
		if got := seed.ExpiredRows(tc.n, tc.expired); got != tc.want {
			t.Errorf("ExpiredRows(%d, %g) = %d, want %d", tc.n, tc.expired, got, tc.want)
		}
	}
	total := 0
	for _, tb := range seed.Tables {
		total += seed.Rows(10_000_000, tb)
	}
	if total != 10_000_000 {
		t.Errorf("Rows over Tables sum to %d, want 10000000", total)
	}
}

// TestWeChatIDs: seeded openids and unionids have the simulator's format
// ("o" and 27 base64url characters), differ from each other, and are
// spread over the key space (their first characters take many values).
func TestWeChatIDs(t *testing.T) {
	format := regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)
	seen := map[string]bool{}
	first := map[byte]int{}
	const n = 10_000
	for i := range n {
		for _, id := range []string{seed.OpenID(i), seed.UnionID(i)} {
			if !format.MatchString(id) {
				t.Fatalf("user %d: %q is not in WeChat's format", i, id)
			}
			if seen[id] {
				t.Fatalf("user %d: %q seen before", i, id)
			}
			seen[id] = true
			first[id[1]]++
		}
	}
	if len(first) != 64 {
		t.Errorf("second characters take %d values, want all 64", len(first))
	}
	for c, k := range first {
		if k > 2*2*n/64 {
			t.Errorf("second character %q in %d of %d IDs, want about %d", c, k, 2*n, 2*n/64)
		}
	}
	if got, want := seed.OpenID(1), seed.OpenID(1); got != want {
		t.Errorf("OpenID(1) = %q, then %q", got, want)
	}
}

func TestSpecName(t *testing.T) {
	for _, tc := range []struct {
		spec seed.Spec
		want string
	}{
		{seed.Spec{Users: 1_000_000, Expired: 0.3}, "s2_u1000000_t0_e300"},
		{seed.Spec{Users: 1_000_000, Logins: 1_000_000, Tokens: 10_000_000, Expired: 0.3}, "s2_u1000000_l1000000_t10000000_e300"},
	} {
		if got := tc.spec.Name(); got != tc.want {
			t.Errorf("%v.Name() = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func TestSeed(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "seed.db")
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		checkSeed(t, "sqlite", s, db)
	})
	t.Run("postgres", func(t *testing.T) {
		s, db := postgresSchema(t)
		checkSeed(t, "postgres", s, db)
	})
}

// postgresSchema opens a migrated store in a schema of its own, dropped
// at the end, and a plain connection to it.
func postgresSchema(t *testing.T) (storage.Storage, *sql.DB) {
	ctx := context.Background()
	dsn := pgtest.Schema(t, "wxoidc_seed_", "the PostgreSQL seed test")
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		s.Close()
	})
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s, db
}

func checkSeed(t *testing.T, backend string, s storage.Storage, db *sql.DB) {
	ctx := context.Background()
	spec := seed.Spec{Users: 2000, Logins: 3000, Tokens: 20_000, Expired: 0.3}
	now := time.Now()
	if err := seed.Seed(ctx, db, backend, spec, now, t.Logf); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{"users": spec.Users, "identities": spec.Users, "events": spec.Users + spec.Logins} {
		if got := count(t, db, "SELECT count(*) FROM "+table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	expired := 0
	for _, tb := range seed.Tables {
		n := seed.Rows(spec.Tokens, tb)
		if got := count(t, db, "SELECT count(*) FROM "+tb.Name); got != n {
			t.Errorf("%s: %d rows, want %d", tb.Name, got, n)
		}
		if got := count(t, db, "SELECT count(DISTINCT signature) FROM "+tb.Name); got != n {
			t.Errorf("%s: %d distinct signatures, want %d", tb.Name, got, n)
		}
		if got, want := count(t, db, "SELECT count(*) FROM "+tb.Name+" WHERE active"), n/10*tb.ActivePerTen; got != want {
			t.Errorf("%s: %d active rows, want %d", tb.Name, got, want)
		}
		if got := count(t, db, "SELECT count(*) FROM "+tb.Name+" t JOIN users u ON u.subject = t.subject"); got != n {
			t.Errorf("%s: %d rows name a seeded user, want %d", tb.Name, got, n)
		}
		expired += seed.ExpiredRows(n, spec.Expired)
		// The stored request is one the provider can read, and says
		// what the columns say.
		var sub, rid, data string
		if err := db.QueryRowContext(ctx, "SELECT subject, request_id, request FROM "+tb.Name+" WHERE expires_at > "+fmt.Sprint(now.UnixMicro())+" LIMIT 1").Scan(&sub, &rid, &data); err != nil {
			t.Fatalf("%s: %v", tb.Name, err)
		}
		var rec storage.RequestRecord
		if err := json.Unmarshal([]byte(data), &rec); err != nil {
			t.Fatalf("%s: request does not decode: %v", tb.Name, err)
		}
		if rec.Subject != sub || rec.ID != rid || rec.ClientID != seed.ClientID {
			t.Errorf("%s: request says %q %q %q, columns %q %q %q", tb.Name, rec.Subject, rec.ID, rec.ClientID, sub, rid, seed.ClientID)
		}
	}
	// Each refresh token's access token (same request ID) is there when
	// the access table has that many rows.
	if got, want := count(t, db, "SELECT count(*) FROM oauth2_refresh r JOIN oauth2_access a ON a.signature = r.access_signature AND a.request_id = r.request_id"),
		seed.Rows(spec.Tokens, seed.Tables[1]); got != want {
		t.Errorf("refresh tokens with their access token: %d, want %d", got, want)
	}
	for _, i := range []int{0, 1, 1234, spec.Users - 1} {
		for _, q := range []storage.UserQuery{{PhoneNumber: seed.PhoneNumber(i)}, {OpenID: seed.OpenID(i)}, {UnionID: seed.UnionID(i)}} {
			us, _, err := s.SearchUsers(ctx, q)
			if err != nil || len(us) != 1 || us[0].Subject != seed.Subject(i) {
				t.Fatalf("SearchUsers(%+v) = %+v, %v; want user %s", q, us, err, seed.Subject(i))
			}
		}
	}
	checkSeededEvents(t, s, spec, now)
	n, err := s.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(expired) {
		t.Errorf("DeleteExpired removed %d rows, want the %d seeded expired", n, expired)
	}
	if err := seed.Seed(ctx, db, backend, spec, now, nil); err == nil {
		t.Error("seeding the same spec twice succeeded, want a duplicate-key error")
	}
}

// checkSeededEvents: the user count (the triggers saw the seeded users),
// and the 30 days of sign-ins and new users, rolled up as the janitor
// would, are the seeded ones: every method in its share, logins by the
// seeded users, one in ten through the web client.
func checkSeededEvents(t *testing.T, s storage.Storage, spec seed.Spec, now time.Time) {
	t.Helper()
	ctx := context.Background()
	users, err := s.CountUsers(ctx)
	if err != nil || users != int64(spec.Users) {
		t.Errorf("CountUsers = %d, %v; want %d", users, err, spec.Users)
	}
	if _, err := s.RollUpEvents(ctx, now.Add(-storage.RollUpLag)); err != nil {
		t.Fatal(err)
	}
	counts, err := s.CountEvents(ctx, []string{storage.EventLogin, storage.EventUserCreated}, now.Add(-seed.EventSpan-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	days := map[time.Time]bool{}
	for _, c := range counts {
		got[c.Type+" "+c.Method] += int(c.Count)
		days[c.Day] = true
	}
	want := map[string]int{storage.EventUserCreated + " ": spec.Users}
	for k := range spec.Logins {
		want[storage.EventLogin+" "+seed.LoginMethodOf(k)]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counted %v, want %v", got, want)
	}
	if len(days) < 30 {
		t.Errorf("events on %d days, want them spread over 30", len(days))
	}
	evs, _, err := s.Events(ctx, storage.EventQuery{ClientID: seed.WebClientID, Limit: storage.MaxPageSize})
	if err != nil || len(evs) != spec.Logins/10 {
		t.Fatalf("web client's events: %d, %v; want %d", len(evs), err, spec.Logins/10)
	}
	for _, e := range evs[:3] {
		if _, err := s.User(ctx, e.Subject); err != nil || e.Type != storage.EventLogin {
			t.Errorf("login %+v: user %v", e, err)
		}
	}
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestSeedDSN seeds a database of your own for manual work (EXPLAIN at
// scale, a provider started on it):
//
//	WXOIDC_SEED=users=1000000,tokens=10000000 WXOIDC_SEED_DSN=sqlite:///tmp/big.db \
//	  go test ./storage/seed -run TestSeedDSN -timeout 2h -v
//
// WXOIDC_SEED_DSN is sqlite:///path or a postgres:// DSN; the database is
// migrated first.
func TestSeedDSN(t *testing.T) {
	dsn, text := os.Getenv("WXOIDC_SEED_DSN"), os.Getenv("WXOIDC_SEED")
	if dsn == "" || text == "" {
		t.Skip("WXOIDC_SEED_DSN and WXOIDC_SEED not set")
	}
	spec, err := seed.ParseSpec(text)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var (
		db      *sql.DB
		backend string
	)
	if path, err := sqlite.ParseDSN(dsn); err == nil {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		backend = "sqlite"
		db, err = sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
	} else {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		backend = "postgres"
		if db, err = sql.Open("pgx", dsn); err != nil {
			t.Fatal(err)
		}
	}
	defer db.Close()
	if err := seed.Seed(ctx, db, backend, spec, time.Now(), t.Logf); err != nil {
		t.Fatal(err)
	}
}
