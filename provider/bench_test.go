package provider_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/postgres/pgtest"
)

// postgresStore opens a fresh schema on WXOIDC_TEST_POSTGRES_DSN, or skips.
func postgresStore(b *testing.B) storage.Storage {
	ctx := context.Background()
	dsn := pgtest.Schema(b, "wxoidc_bench_", "the PostgreSQL benchmark")
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

func execSQL(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// benchClient is a keep-alive client with enough idle connections for the
// parallel benchmark goroutines.
func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// runHTTPBench drives one request shape in parallel over loopback and
// reports requests per second. Every response must have status want.
func runHTTPBench(b *testing.B, want int, newReq func() *http.Request) {
	c := benchClient()
	b.SetParallelism(8) // 16 client goroutines on this 2-core machine
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Do(newReq())
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("status %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func formRequest(target, user, pass string, form url.Values) func() *http.Request {
	body := form.Encode()
	return func() *http.Request {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		return req
	}
}

// BenchmarkClientCredentials: the service client authenticates as it is
// registered, with client_secret_post (HTTP Basic is refused with 401).
func BenchmarkClientCredentials(b *testing.B) {
	e := newPlainEnv(b)
	runHTTPBench(b, http.StatusOK, formRequest(e.issuer+"/oauth2/token", "", "",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {serviceClient}, "client_secret": {serviceSecret}, "scope": {"orders.read"}}))
}

// BenchmarkIntrospection: the resource server a client_credentials token
// is for introspects it (HTTP Basic, as it is registered).
func BenchmarkIntrospection(b *testing.B) {
	e := newPlainEnv(b)
	_, body := e.postForm("/oauth2/token", "", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {serviceClient}, "client_secret": {serviceSecret},
		"scope": {"orders.read"}, "audience": {resourceClient},
	})
	token, _ := body["access_token"].(string)
	if token == "" {
		b.Fatalf("no token: %v", body)
	}
	runHTTPBench(b, http.StatusOK, formRequest(e.issuer+"/oauth2/introspect", resourceClient, resourceSecret,
		url.Values{"token": {token}}))
}

func BenchmarkDiscovery(b *testing.B) {
	e := newPlainEnv(b)
	runHTTPBench(b, http.StatusOK, func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/openid-configuration", nil)
		return req
	})
}

func BenchmarkJWKS(b *testing.B) {
	e := newPlainEnv(b)
	runHTTPBench(b, http.StatusOK, func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/jwks.json", nil)
		return req
	})
}

// benchmarkWeChatGrant drives the whole Mini Program grant (jscode2session
// at the in-process simulator, identity link, session key, ES256 JWT access
// token, ES256 ID token, refresh token) over loopback on SQLite. Users cycle
// through a pool of 1,000, so most logins are returning users, as in
// production; each call has a pool of its own, so a store that outlives
// a call (BenchmarkUsers' seeded one) meets new users as an empty one
// does. Besides grants/s it reports the CPU of this process per grant
// (driver, simulator and provider: cpu-ms/op) and, for a store that
// knows its PostgreSQL backends (pgBackends), theirs (pgcpu-ms/op).
func benchmarkWeChatGrant(b *testing.B, store storage.Storage, parallel bool) {
	round := grantRounds.Add(1)
	e := newPlainEnvOn(b, store, func(c *provider.Config) {
		c.GrantLimitPerClient = provider.RateLimit{Rate: -1}
	})
	c := benchClient()
	var n atomic.Int64
	do := func() {
		i := n.Add(1)
		code, err := e.sim.LoginCode(miniApp, fmt.Sprintf("user%d.%d-%d", grantStamp, round, i%1000))
		if err != nil {
			b.Fatal(err)
		}
		req := formRequest(e.issuer+"/oauth2/token", "", "", url.Values{
			"grant_type": {provider.GrantTypeWeChat}, "client_id": {miniClient},
			"js_code": {code}, "scope": {"openid offline_access"},
		})()
		resp, err := c.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("status %d: %s", resp.StatusCode, body)
		}
	}
	b.ReportAllocs()
	pg, _ := store.(pgBackends)
	if pg != nil {
		if _, app := pg.pgBackends(); app == "" {
			pg = nil
		}
	}
	cpu0, pg0, reads0 := selfCPU(b), backendCPU(b, pg), selfReads()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				do()
			}
		})
	} else {
		for b.Loop() {
			do()
		}
	}
	b.StopTimer()
	ops := float64(b.N)
	b.ReportMetric(ops/b.Elapsed().Seconds(), "grants/s")
	b.ReportMetric(float64(selfCPU(b)-cpu0)/float64(time.Millisecond)/ops, "cpu-ms/op")
	if reads0 >= 0 {
		b.ReportMetric(float64(selfReads()-reads0)/ops, "reads/op")
	}
	if pg != nil {
		b.ReportMetric(float64(backendCPU(b, pg)-pg0)/float64(time.Millisecond)/ops, "pgcpu-ms/op")
	}
}

// grantRounds numbers the calls of benchmarkWeChatGrant (their user
// pools), grantStamp tells the pools of this process from those of earlier
// ones in a kept store.
var (
	grantRounds atomic.Int64
	grantStamp  = time.Now().UnixNano()
)

// selfCPU is this process's CPU time (user and system).
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfReads is the number of read system calls this process has made
// (syscr of /proc/self/io: SQLite's page reads, and the HTTP and
// simulator sockets'), or -1 where that file is missing. Unlike time, it
// does not move with the machine's load.
func selfReads() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// pgBackends is a PostgreSQL store that can name its server backends:
// the DSN, and the application_name its connections carry.
type pgBackends interface {
	pgBackends() (dsn, application string)
}

// backendCPU sums the CPU time (utime+stime of /proc/PID/stat) of the
// PostgreSQL backends of pg (0 for nil). The server must run on this
// machine; the store's pool keeps its connections, so none ends between
// two readings.
func backendCPU(b *testing.B, pg pgBackends) time.Duration {
	if pg == nil {
		return 0
	}
	dsn, app := pg.pgBackends()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var total time.Duration
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // not on this machine, or gone
		}
		// Fields after the command name (which may hold spaces): utime
		// and stime are the 12th and 13th, in ticks of 1/100 s.
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		for _, v := range f[11:13] {
			t, _ := strconv.ParseInt(v, 10, 64)
			total += time.Duration(t) * 10 * time.Millisecond
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return total
}

func BenchmarkWeChatGrant(b *testing.B) { benchmarkWeChatGrant(b, nil, false) }

func BenchmarkWeChatGrantParallel(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkWeChatGrant(b, nil, true) })
	b.Run("postgres", func(b *testing.B) { benchmarkWeChatGrant(b, postgresStore(b), true) })
}

// BenchmarkRefresh drives the refresh grant (rotation, ES256 ID and access
// tokens) in parallel over loopback on SQLite; each goroutine keeps its own
// token family. The grace variants run with serve's default
// refresh_token.reuse_grace (each refresh also keeps its answer).
func BenchmarkRefresh(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkRefresh(b, nil, 0) })
	b.Run("postgres", func(b *testing.B) { benchmarkRefresh(b, postgresStore(b), 0) })
	b.Run("sqlite-grace", func(b *testing.B) { benchmarkRefresh(b, nil, 5*time.Second) })
	b.Run("postgres-grace", func(b *testing.B) { benchmarkRefresh(b, postgresStore(b), 5*time.Second) })
}

func benchmarkRefresh(b *testing.B, store storage.Storage, grace time.Duration) {
	e := newPlainEnvOn(b, store, func(c *provider.Config) {
		c.GrantLimitPerClient = provider.RateLimit{Rate: -1}
		c.RefreshReuseGrace = grace
	})
	m := mp{e: e}
	c := benchClient()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		b.StopTimer()
		body, _ := m.login(miniClient, miniApp, fmt.Sprintf("r%d", n.Add(1)), "openid offline_access")
		b.StartTimer()
		rt := body["refresh_token"].(string)
		for pb.Next() {
			resp, err := c.Do(formRequest(e.issuer+"/oauth2/token", "", "", url.Values{
				"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {rt}})())
			if err != nil {
				b.Error(err)
				return
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("refresh: %d %v", resp.StatusCode, out)
				return
			}
			rt = out["refresh_token"].(string)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refreshes/s")
}
