package main

// The binary benchmark: it measures the built wxoidc as an operator runs
// it, from outside. The provider and the WeChat simulator run as separate
// processes; this test process is the load driver, over loopback with
// keep-alive clients. Besides ns/op it reports, per completed operation:
//
//	ops/s       throughput of the whole run
//	p50-ms      median latency of one operation (all its requests)
//	p99-ms      99th percentile latency
//	cpu-ms/op   the provider's CPU (utime+stime from /proc/PID/stat)
//	sys-ms/op   the part of it the kernel spent (stime: syscalls, page
//	            faults, the network stack of loopback)
//	pgcpu-ms/op PostgreSQL's CPU for the backends of the provider's database
//	pgxact/op   PostgreSQL transactions (each autocommit statement is one)
//	pgrt/op     round trips to PostgreSQL: what the provider sends through
//	            a counting proxy in this process, as Sync and simple
//	            Query messages (one each per round trip)
//	pgstmt/op   statements PostgreSQL ran (Execute and simple Query
//	            messages; BEGIN and COMMIT count)
//	pgparse/op  statements PostgreSQL parsed (Parse messages): 0 when
//	            every statement comes from a connection's statement cache
//	store/op    what the provider's storage metric counts: database round
//	            trips (storage operations in builds before the storage
//	            observer, commit 424139f)
//	mallocs/op  the provider's heap allocations (go_memstats_mallocs_total)
//
// A figure only counts with zero errors: any failed operation fails the
// benchmark. Run it (Linux only; PostgreSQL variants need the DSN):
//
//	WXOIDC_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	go test ./cmd/wxoidc -run '^$' -bench '^BenchmarkBinary' -benchtime 2000x -count 3
//
// WXOIDC_BENCH_BIN names the binary to measure (default: this tree, built
// once per run). An A/B comparison builds the other revision with
// `go build -o /tmp/wxoidc-a ./cmd/wxoidc` in a worktree of it and runs the
// benchmark with each binary in turn (A B A B …), then compares with
// benchstat.
//
// WXOIDC_BENCH_SEED=users=1000000,tokens=10000000 (see package
// storage/seed; expired=0.3 by default) adds, after each backend's run on
// an empty database, the same flows on a seeded one (BACKEND-seeded) and
// the grant and refresh with the janitor running every second through the
// seeded expired rows (BACKEND-seeded-janitor; janitor-rows/s says how
// fast it deleted while measured, left-expired how many it had still to
// go). The seeded database is made once per run of the test binary and
// reused by every -count; the other runs keep the janitor idle. Seeding
// 10,000,000 token rows takes minutes and about 15 GB of disk per
// backend, removed at the end.
//
// WXOIDC_BENCH_PROFILE=DIR turns on admin.pprof and writes, per benchmark,
// a CPU profile of the measured run's first seconds (NAME.cpu.pprof) and
// the allocation profiles before and after it (NAME.allocs0.pprof,
// NAME.allocs1.pprof; compare with `go tool pprof -base`).
//
// WXOIDC_BENCH_STATEMENTS=1 logs, per benchmark, the storage round trips
// of one operation by name ("select oauth2_refresh", "commit", …), from
// the provider's wxoidc_storage_operation_duration_seconds.
//
// WXOIDC_BENCH_WRAP="valgrind --tool=callgrind" runs the provider under
// that command (the simulator is not wrapped). Under valgrind it also sets
// GODEBUG=asyncpreemptoff=1 (callgrind asserts on Go's preemption
// signals). With callgrind, the benchmark zeroes the counters before each
// measured run and dumps them after it, and reports Minstr/op: the
// instructions the provider executed per operation, a figure that holds
// on a loaded machine where CPU time does not (it leaves out the kernel's
// work: syscalls, page faults). The dumps, NAME.callgrind, go where
// --callgrind-out-file says, else to WXOIDC_BENCH_PROFILE, else to the
// benchmark's temporary directory (read them with callgrind_annotate; a
// wrapped provider writes no pprof profiles). Everything runs some 50
// times slower: use -benchtime 300x or so.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wxoidc/wxoidc/storage/seed"
)

// benchWorkers is how many keep-alive clients drive the provider at once.
const benchWorkers = 8

func BenchmarkBinary(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc: Linux only")
	}
	bin := benchBinary(b)
	backends := []string{"sqlite"}
	if os.Getenv("WXOIDC_TEST_POSTGRES_DSN") != "" {
		backends = append(backends, "postgres")
	} else {
		b.Log("WXOIDC_TEST_POSTGRES_DSN not set: PostgreSQL variants skipped")
	}
	var spec *seed.Spec
	if text := os.Getenv("WXOIDC_BENCH_SEED"); text != "" {
		s, err := seed.ParseSpec(text)
		if err != nil {
			b.Fatalf("WXOIDC_BENCH_SEED: %v", err)
		}
		spec = &s
	}
	flows := func(st *benchStack, b *testing.B) {
		b.Run("grant", func(b *testing.B) { st.measure(b, st.prepareGrant, st.grant) })
		b.Run("refresh", func(b *testing.B) { st.measure(b, st.prepareRefresh, st.refresh) })
		b.Run("client_credentials", func(b *testing.B) { st.measure(b, nil, st.clientCredentials) })
		b.Run("introspect", func(b *testing.B) { st.measure(b, st.prepareIntrospect, st.introspect) })
		b.Run("weblogin", func(b *testing.B) { st.measure(b, nil, st.webLogin) })
	}
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			flows(startBenchStack(b, bin, backend, benchOptions{}), b)
		})
		if spec == nil {
			continue
		}
		b.Run(backend+"-seeded", func(b *testing.B) {
			flows(startBenchStack(b, bin, backend, benchOptions{seed: spec}), b)
		})
		b.Run(backend+"-seeded-janitor", func(b *testing.B) {
			st := startBenchStack(b, bin, backend, benchOptions{seed: spec, janitor: time.Second})
			b.Run("grant", func(b *testing.B) { st.measure(b, st.prepareGrant, st.grant) })
			b.Run("refresh", func(b *testing.B) { st.measure(b, st.prepareRefresh, st.refresh) })
		})
	}
}

// benchSecret is the system secret of the PostgreSQL runs (see
// startBenchStack).
const benchSecret = "bench-system-secret-0123456789abcdef0123456789"

// benchClients numbers the client_credentials clients of this process.
var benchClients atomic.Int64

// benchOptions vary the stack of a run.
type benchOptions struct {
	seed    *seed.Spec    // nil: an empty database
	janitor time.Duration // 0: a janitor that never runs during the benchmark
}

var (
	benchBinOnce sync.Once
	benchBinPath string
	benchBinErr  error
)

// benchBinary returns WXOIDC_BENCH_BIN, or this tree's wxoidc built once
// (benchmarks and the tests that run the binary).
func benchBinary(b testing.TB) string {
	if p := os.Getenv("WXOIDC_BENCH_BIN"); p != "" {
		return p
	}
	benchBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wxoidc-bench-bin")
		if err != nil {
			benchBinErr = err
			return
		}
		benchBinPath = filepath.Join(dir, "wxoidc")
		out, err := exec.Command("go", "build", "-o", benchBinPath, ".").CombinedOutput()
		if err != nil {
			benchBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	return benchBinPath
}

// benchStack is a running simulator and provider.
type benchStack struct {
	issuer, sim, admin, adminToken string
	providerPID                    int
	callgrind                      string       // the provider's callgrind output file ("%p" for its pid), "" when not under callgrind
	pg                             *sql.DB      // nil on SQLite
	pgDB                           string       // the provider's database on PostgreSQL
	db                             *sql.DB      // the provider's database, for counting expired rows
	janitor                        bool         // the janitor runs: report its progress
	pgWire                         *pgWireCount // counts what the provider sends PostgreSQL
	ccClient, ccSecret             string
	users                          string // names this stack's pool of WeChat users

	// Per-measurement inputs prepared outside the timed part.
	codes         chan string // js_codes for grant
	refreshTokens []string    // one refresh token per worker, for refresh
	accessToken   string      // the token introspect asks about
}

func startBenchStack(b *testing.B, bin, backend string, o benchOptions) *benchStack {
	b.Helper()
	dir := b.TempDir()
	st := &benchStack{adminToken: "bench-admin-token-0123456789abcdef", janitor: o.janitor > 0}
	simAddr, addr, adminAddr := benchFreeAddr(b), benchFreeAddr(b), benchFreeAddr(b)
	st.sim, st.issuer, st.admin = "http://"+simAddr, "http://"+addr, "http://"+adminAddr

	startBenchProcess(b, dir, "sim", bin, nil, "wechat-sim", "--addr", simAddr, "--auto-confirm", "alice")
	benchWaitUp(b, st.sim+"/sim/", filepath.Join(dir, "sim.log"))

	data := filepath.Join(dir, "data")
	if backend == "sqlite" && o.seed != nil {
		data = seededSQLite(b, *o.seed)
	}
	args := []string{"dev", "--addr", addr, "--data", data,
		"--wechat-api", st.sim, "--wechat-open", st.sim,
		"--admin-addr", adminAddr, "--admin-token", st.adminToken}
	if backend == "postgres" {
		// The provider's signing keys live in the database, sealed with
		// the system secret that dev keeps in its data directory: a kept
		// seeded database (WXOIDC_BENCH_SEED_KEEP) opens only with the
		// secret of the run that made it, so every run uses the same one.
		if err := os.MkdirAll(data, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, "secret"), []byte(benchSecret+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		if o.seed != nil {
			st.pgDB, st.pg = seededPostgres(b, *o.seed)
		} else {
			st.pgDB, st.pg = createBenchDatabase(b)
		}
		cfg := filepath.Join(dir, "postgres.yaml")
		u := benchDSN(st.pgDB)
		st.pgWire = startPGWireCount(b, u.Host)
		u.Host = st.pgWire.addr
		q := u.Query()
		q.Set("pool_max_conns", "8")
		u.RawQuery = q.Encode()
		if err := os.WriteFile(cfg, []byte("storage:\n  dsn: "+u.String()+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		args = append(args, "--config", cfg)
	}
	if st.janitor {
		st.db = openBenchDB(b, backend, data, st.pgDB)
	}
	janitor := 24 * time.Hour // not during the benchmark
	if o.janitor > 0 {
		janitor = o.janitor
	}
	// Logs go to a file at the configured level (info), as an operator's
	// would: their cost is part of what is measured.
	env := []string{"WXOIDC_STORAGE_JANITOR_INTERVAL=" + janitor.String()}
	cmdline := append([]string{bin}, args...)
	if wrap := strings.Fields(os.Getenv("WXOIDC_BENCH_WRAP")); len(wrap) > 0 {
		if filepath.Base(wrap[0]) == "valgrind" {
			env = append(env, "GODEBUG=asyncpreemptoff=1")
		}
		if slices.Contains(wrap, "--tool=callgrind") {
			out := dir
			if d := os.Getenv("WXOIDC_BENCH_PROFILE"); d != "" {
				out = d
			}
			st.callgrind = filepath.Join(out, "callgrind.out.%p")
			for _, a := range wrap {
				if f, ok := strings.CutPrefix(a, "--callgrind-out-file="); ok {
					st.callgrind = f
				}
			}
			if !strings.Contains(st.callgrind, "%p") {
				b.Fatalf("WXOIDC_BENCH_WRAP: --callgrind-out-file=%s needs %%p", st.callgrind)
			}
			// Each dump on its own: callgrind_annotate reads a dump's
			// compressed names only from the first.
			wrap = append(wrap, "--callgrind-out-file="+st.callgrind, "--compress-strings=no", "--compress-pos=no")
		}
		cmdline = append(wrap, cmdline...)
	}
	st.providerPID = startBenchProcess(b, dir, "provider", cmdline[0], env, cmdline[1:]...)
	benchWaitUp(b, st.issuer+"/.well-known/openid-configuration", filepath.Join(dir, "provider.log"))

	// A confidential client for client_credentials, through the admin API
	// (a new one in a seeded database that earlier runs used).
	st.ccClient, st.ccSecret = fmt.Sprintf("bench-cc-%d-%d", os.Getpid(), benchClients.Add(1)), ""
	// Every stack signs in users of its own, so that a seeded database
	// that earlier runs signed the pool into does not skip the sign-ups
	// an empty one makes.
	st.users = fmt.Sprintf("%d.%d", os.Getpid(), benchClients.Load())
	body := `{"client_id":"` + st.ccClient + `","client_name":"bench","grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_basic","scope":"openid"}`
	req, _ := http.NewRequest(http.MethodPost, st.admin+"/admin/clients", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+st.adminToken)
	req.Header.Set("Content-Type", "application/json")
	var created map[string]any
	if status := benchDo(b, http.DefaultClient, req, &created); status != http.StatusCreated {
		b.Fatalf("create client: status %d: %v", status, created)
	}
	st.ccSecret, _ = created["client_secret"].(string)
	if st.ccSecret == "" {
		b.Fatalf("create client: no secret in %v", created)
	}
	return st
}

// startBenchProcess runs bin with args until the benchmark ends; its output
// goes to a file in dir (shown if it fails to start).
func startBenchProcess(b *testing.B, dir, name, bin string, env []string, args ...string) int {
	b.Helper()
	out, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// wxoidc's own rate limits would measure themselves: all the load
	// comes from one address and one client.
	cmd.Env = append(os.Environ(),
		"WXOIDC_RATE_LIMIT_WECHAT_GRANT_PER_CLIENT_RATE=-1",
		"WXOIDC_RATE_LIMIT_WECHAT_GRANT_PER_IP_RATE=-1",
		"WXOIDC_RATE_LIMIT_AUTHORIZE_PER_IP_RATE=-1",
		"WXOIDC_RATE_LIMIT_AUTHORIZE_PENDING_PER_IP=-1",
	)
	cmd.Env = append(cmd.Env, env...)
	if os.Getenv("WXOIDC_BENCH_PROFILE") != "" && os.Getenv("WXOIDC_BENCH_WRAP") == "" {
		cmd.Env = append(cmd.Env, "WXOIDC_ADMIN_PPROF=true")
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		out.Close()
	})
	return cmd.Process.Pid
}

func benchFreeAddr(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// benchWaitUp waits for u to answer; if it does not, the failure shows
// the end of the process's log.
func benchWaitUp(b *testing.B, u, log string) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	if os.Getenv("WXOIDC_BENCH_WRAP") != "" {
		deadline = time.Now().Add(10 * time.Minute) // valgrind starts slowly
	}
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log)
			b.Fatalf("%s did not come up: %v\n%s", u, err, out[max(0, len(out)-2000):])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createBenchDatabase creates a fresh database for one run (dropped at
// the end), so pg_stat_activity and pg_stat_database name only the
// provider's backends.
func createBenchDatabase(b *testing.B) (string, *sql.DB) {
	b.Helper()
	admin, err := sql.Open("pgx", os.Getenv("WXOIDC_TEST_POSTGRES_DSN"))
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("wxoidc_bench_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	})
	return name, admin
}

// measure runs b.N operations of op on benchWorkers clients after
// prepare (untimed) and a short warm-up, and reports the figures.
func (st *benchStack) measure(b *testing.B, prepare func(b *testing.B, n int), op func(c *http.Client, worker int) error) {
	warm := min(b.N, 50)
	if prepare != nil {
		prepare(b, b.N+warm)
	}
	clients := make([]*http.Client, benchWorkers)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, MaxConnsPerHost: 4}, Timeout: 30 * time.Second}
	}
	run := func(n int) ([]time.Duration, error) {
		var next atomic.Int64
		lat := make([]time.Duration, n)
		errs := make(chan error, benchWorkers)
		var wg sync.WaitGroup
		for w := range benchWorkers {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					start := time.Now()
					if err := op(clients[w], w); err != nil {
						errs <- err
						return
					}
					lat[i] = time.Since(start)
				}
			})
		}
		wg.Wait()
		close(errs)
		return lat, <-errs
	}
	if _, err := run(warm); err != nil {
		b.Fatalf("warm-up: %v", err)
	}

	profDir := os.Getenv("WXOIDC_BENCH_PROFILE")
	profName := filepath.Join(profDir, strings.ReplaceAll(strings.TrimPrefix(b.Name(), "BenchmarkBinary/"), "/", "_"))
	if profDir != "" && st.callgrind == "" {
		st.saveProfile(b, "allocs", profName+".allocs0.pprof")
	}
	var expired0 int64
	if st.janitor {
		expired0 = st.expiredRows(b)
	}
	cpu0 := procCPU(b, st.providerPID)
	sys0 := procSysCPU(b, st.providerPID)
	pg0 := st.pgFigures(b)
	m0 := st.metrics(b)
	w0 := st.pgWire.snapshot()
	var profiled sync.WaitGroup
	if profDir != "" && st.callgrind == "" { // callgrind asserts on SIGPROF
		profiled.Go(func() { st.saveProfile(b, "profile?seconds=5", profName+".cpu.pprof") })
	}
	st.callgrindControl(b, "-z") // after the metrics scrape: only the operations count
	b.ResetTimer()
	start := time.Now()
	lat, err := run(b.N)
	wall := time.Since(start)
	b.StopTimer()
	st.callgrindControl(b, "-d")
	profiled.Wait()
	if err != nil {
		b.Fatal(err)
	}
	cpu1 := procCPU(b, st.providerPID)
	sys1 := procSysCPU(b, st.providerPID)
	pg1 := st.pgFigures(b)
	m1 := st.metrics(b)
	w1 := st.pgWire.snapshot()
	if profDir != "" && st.callgrind == "" {
		st.saveProfile(b, "allocs", profName+".allocs1.pprof")
	}

	n := float64(b.N)
	slices.Sort(lat)
	b.ReportMetric(n/wall.Seconds(), "ops/s")
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	b.ReportMetric(ms(cpu1-cpu0)/n, "cpu-ms/op")
	b.ReportMetric(ms(sys1-sys0)/n, "sys-ms/op")
	b.ReportMetric((m1.mallocs-m0.mallocs)/n, "mallocs/op")
	if st.callgrind != "" {
		dump := st.callgrindDump(b, filepath.Base(profName))
		b.ReportMetric(float64(callgrindTotal(b, dump))/n/1e6, "Minstr/op")
	}
	b.ReportMetric((m1.storageOps-m0.storageOps)/n, "store/op")
	if st.pg != nil {
		b.ReportMetric(ms(pg1.cpu-pg0.cpu)/n, "pgcpu-ms/op")
		b.ReportMetric(float64(pg1.xacts-pg0.xacts)/n, "pgxact/op")
		b.ReportMetric(float64(w1.roundTrips-w0.roundTrips)/n, "pgrt/op")
		b.ReportMetric(float64(w1.statements-w0.statements)/n, "pgstmt/op")
		b.ReportMetric(float64(w1.parses-w0.parses)/n, "pgparse/op")
		if pg0.stmts && pg1.stmts {
			b.ReportMetric(float64(pg1.calls-pg0.calls)/n, "pgcalls/op")
			b.ReportMetric(float64(pg1.rows-pg0.rows)/n, "pgrows/op")
			b.ReportMetric(float64(pg1.blksHit-pg0.blksHit)/n, "pgblkhit/op")
			b.ReportMetric(float64(pg1.blksDirtied-pg0.blksDirtied)/n, "pgdirtied/op")
			b.ReportMetric(float64(pg1.blksWrt-pg0.blksWrt)/n, "pgwritten/op")
			b.ReportMetric(float64(pg1.walRecords-pg0.walRecords)/n, "pgwalrec/op")
			b.ReportMetric(float64(pg1.walFPI-pg0.walFPI)/n, "pgfpi/op")
			b.ReportMetric(float64(pg1.walBytes-pg0.walBytes)/n, "pgwal-B/op")
			b.ReportMetric(float64(pg1.clusterWALBytes-pg0.clusterWALBytes)/n, "pgclusterwal-B/op")
		}
	}
	if os.Getenv("WXOIDC_BENCH_STATEMENTS") != "" && b.N > 1 {
		var lines []string
		for op, c := range m1.byOp {
			if d := (c - m0.byOp[op]) / n; d >= 0.005 {
				lines = append(lines, fmt.Sprintf("%5.2f %s", d, op))
			}
		}
		slices.Sort(lines)
		slices.Reverse(lines)
		// One line: the benchmark's log keeps only its first ten.
		b.Logf("storage round trips per operation: %s", strings.Join(lines, ", "))
	}
	if st.janitor {
		// Rows that expire meanwhile are few (the benchmark's own
		// tokens live longer than a run).
		expired1 := st.expiredRows(b)
		b.ReportMetric(float64(expired0-expired1)/wall.Seconds(), "janitor-rows/s")
		b.ReportMetric(float64(expired1), "left-expired")
		if expired1 == 0 {
			b.Log("the janitor ran out of expired rows during the measurement: seed more (WXOIDC_BENCH_SEED expired=, tokens=)")
		}
	}
}

// callgrindControl sends the provider's callgrind a command (-z zeroes
// the counters, -d dumps them); nothing when not under callgrind.
func (st *benchStack) callgrindControl(b *testing.B, command string) {
	if st.callgrind == "" {
		return
	}
	out, err := exec.Command("callgrind_control", command, strconv.Itoa(st.providerPID)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		b.Fatalf("callgrind_control %s: %v\n%s", command, err, out)
	}
}

// callgrindDump returns the provider's callgrind dump of the measured run,
// renamed to NAME.callgrind (the benchmark's name) next to the callgrind
// output file. Each dump is renamed once read, so the only one left is
// the newest; callgrind writes it after callgrind_control has returned, so
// it waits for its last line ("totals:").
func (st *benchStack) callgrindDump(b *testing.B, name string) string {
	b.Helper()
	pattern := strings.ReplaceAll(st.callgrind, "%p", strconv.Itoa(st.providerPID)) + ".*"
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		dumps, err := filepath.Glob(pattern)
		if err != nil {
			b.Fatal(err)
		}
		if len(dumps) == 1 {
			raw, err := os.ReadFile(dumps[0])
			if err == nil && strings.Contains(string(raw), "\ntotals: ") {
				dump := filepath.Join(filepath.Dir(st.callgrind), name+".callgrind")
				if err := os.Rename(dumps[0], dump); err != nil {
					b.Fatal(err)
				}
				return dump
			}
		}
		if len(dumps) > 1 || time.Now().After(deadline) {
			b.Fatalf("callgrind dumps %v: want one, finished", dumps)
		}
	}
}

// callgrindTotal reads the instruction count of a callgrind dump (its
// "summary:" line; events: Ir).
func callgrindTotal(b *testing.B, file string) int64 {
	b.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "summary: "); ok {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				b.Fatalf("%s: %v", file, err)
			}
			return n
		}
	}
	b.Fatalf("%s: no summary line", file)
	return 0
}

// saveProfile writes the admin listener's /debug/pprof/WHAT to file.
func (st *benchStack) saveProfile(b *testing.B, what, file string) {
	req, _ := http.NewRequest(http.MethodGet, st.admin+"/debug/pprof/"+what, nil)
	req.Header.Set("Authorization", "Bearer "+st.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("profile %s: status %d (does this binary have admin.pprof?)", what, resp.StatusCode)
		return
	}
	f, err := os.Create(file)
	if err != nil {
		b.Error(err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Error(err)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// prepareGrant asks the simulator for n js_codes (wx.login), untimed.
func (st *benchStack) prepareGrant(b *testing.B, n int) {
	st.codes = make(chan string, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	per := (n + benchWorkers - 1) / benchWorkers
	for w := range benchWorkers {
		wg.Go(func() {
			for i := 0; i < per && w*per+i < n; i++ {
				resp, err := http.PostForm(st.sim+"/sim/login", url.Values{"appid": {devMiniProgramAppID}, "user": {fmt.Sprintf("bench%s-%d", st.users, (w*per+i)%500)}})
				if err != nil {
					failed.Store(err)
					return
				}
				var v struct{ Code string }
				err = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if err != nil || v.Code == "" {
					failed.Store(fmt.Errorf("sim/login: %v", err))
					return
				}
				st.codes <- v.Code
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

// grant is one Mini Program grant: ID, access and refresh token.
func (st *benchStack) grant(c *http.Client, _ int) error {
	_, err := st.grantWith(c, <-st.codes)
	return err
}

func (st *benchStack) grantWith(c *http.Client, code string) (map[string]any, error) {
	return benchToken(c, st.issuer, "", "", url.Values{
		"grant_type": {"urn:wxoidc:params:oauth:grant-type:wechat-jscode"},
		"client_id":  {devMiniClient}, "js_code": {code},
		"scope": {"openid offline_access"},
	})
}

// prepareRefresh gives each worker a refresh token of its own (rotation
// then runs a chain per worker).
func (st *benchStack) prepareRefresh(b *testing.B, _ int) {
	st.prepareGrant(b, benchWorkers)
	st.refreshTokens = make([]string, benchWorkers)
	for w := range benchWorkers {
		tok, err := st.grantWith(http.DefaultClient, <-st.codes)
		if err != nil {
			b.Fatal(err)
		}
		st.refreshTokens[w], _ = tok["refresh_token"].(string)
	}
}

// refresh rotates the worker's refresh token (new ID, access and refresh
// token).
func (st *benchStack) refresh(c *http.Client, w int) error {
	tok, err := benchToken(c, st.issuer, "", "", url.Values{
		"grant_type": {"refresh_token"}, "client_id": {devMiniClient}, "refresh_token": {st.refreshTokens[w]},
	})
	if err != nil {
		return err
	}
	rt, _ := tok["refresh_token"].(string)
	if rt == "" {
		return errors.New("refresh: no refresh_token")
	}
	st.refreshTokens[w] = rt
	return nil
}

func (st *benchStack) clientCredentials(c *http.Client, _ int) error {
	_, err := benchToken(c, st.issuer, st.ccClient, st.ccSecret, url.Values{"grant_type": {"client_credentials"}})
	return err
}

// prepareIntrospect gets the access token that introspect asks about.
func (st *benchStack) prepareIntrospect(b *testing.B, _ int) {
	tok, err := benchToken(http.DefaultClient, st.issuer, st.ccClient, st.ccSecret, url.Values{"grant_type": {"client_credentials"}})
	if err != nil {
		b.Fatal(err)
	}
	st.accessToken, _ = tok["access_token"].(string)
}

// introspect is a resource server (the client_credentials client)
// introspecting an active access token of its own (RFC 7662).
func (st *benchStack) introspect(c *http.Client, _ int) error {
	req, _ := http.NewRequest(http.MethodPost, st.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {st.accessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(st.ccClient), url.QueryEscape(st.ccSecret))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v struct{ Active bool }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusOK || !v.Active {
		return fmt.Errorf("introspect: status %d, active %v: %v", resp.StatusCode, v.Active, err)
	}
	return nil
}

// webLogin is a whole browser login of a new browser: authorize → /login
// (and, where the login page offers several ways in, the website QR) →
// the simulator's QR page (auto-confirmed) → callback → authorize → code
// at the redirect URI → token. Five requests reach the provider (six with
// the choice).
func (st *benchStack) webLogin(c *http.Client, _ int) error {
	jar, _ := cookiejar.New(nil)
	redirect := st.issuer + "/demo/callback"
	browser := &http.Client{Transport: c.Transport, Jar: jar, Timeout: c.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) {
				return http.ErrUseLastResponse
			}
			req.Header.Set("User-Agent", benchUA)
			return nil
		}}
	verifier := benchRandom()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {devWebClient}, "redirect_uri": {redirect},
		"scope": {"openid profile"}, "state": {benchRandom()}, "nonce": {benchRandom()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequest(http.MethodGet, st.issuer+"/oauth2/authorize?"+q.Encode(), nil)
	req.Header.Set("User-Agent", benchUA)
	resp, err := browser.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusOK {
		// A login page that offers several ways in: pick the website QR
		// (SPEC §9's data-login="qr"), as the person would.
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := qrChoice.FindSubmatch(page)
		if m == nil {
			return fmt.Errorf("web login: page %s offers no data-login=\"qr\"", resp.Request.URL.Path)
		}
		next, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
		if err != nil {
			return err
		}
		req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
		req.Header.Set("User-Agent", benchUA)
		if resp, err = browser.Do(req); err != nil {
			return err
		}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), redirect) {
		return fmt.Errorf("web login ended at %s with status %d, not the redirect URI", resp.Request.URL.Path, resp.StatusCode)
	}
	code := loc.Query().Get("code")
	if code == "" {
		return fmt.Errorf("web login: no code: %s", loc.RawQuery)
	}
	_, err = benchToken(c, st.issuer, devWebClient, devWebSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier},
	})
	return err
}

var qrChoice = regexp.MustCompile(`href="([^"]+)"[^>]*data-login="qr"`)

const benchUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"

func benchRandom() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// benchToken posts form to the token endpoint (with HTTP Basic when id is
// set) and decodes the 200 answer.
func benchToken(c *http.Client, issuer, id, secret string, form url.Values) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("token (%s): status %d: %w", form.Get("grant_type"), resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token (%s): status %d: %v", form.Get("grant_type"), resp.StatusCode, v)
	}
	return v, nil
}

func benchDo(b *testing.B, c *http.Client, req *http.Request, v any) int {
	b.Helper()
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// procCPU returns the CPU time (user + system) of pid.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	d, err := readProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// procSysCPU returns the system CPU time (stime: the kernel's work for the
// process) of pid.
func procSysCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	d, err := readProcStat(pid, 12, 13)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// readProcCPU reads utime and stime (fields 14 and 15 of /proc/PID/stat,
// in clock ticks of 1/100 s on Linux).
func readProcCPU(pid int) (time.Duration, error) { return readProcStat(pid, 11, 13) }

// readProcStat sums the clock-tick fields [from, to) of /proc/PID/stat,
// counted after the command name (11 is utime, 12 stime).
func readProcStat(pid, from, to int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after it
	// start after the last ')'.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < to {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[from:to] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

type pgFigures struct {
	cpu   time.Duration
	xacts int64
	// From pg_stat_statements (the provider's database) and the log's
	// position (the whole cluster), when the server has pg_stat_statements loaded
	// and its view in the DSN's database (a cluster of your own, see
	// README): work that does not move with the machine's load.
	stmts                         bool
	calls, rows                   int64
	blksHit, blksDirtied, blksWrt int64
	walRecords, walFPI, walBytes  int64 // statements'
	clusterWALBytes               int64 // the log's insert position: commits, vacuum, checkpoints too
}

// pgFigures sums the CPU of the backends connected to the provider's
// database and reads its transaction count. A backend that ends between
// two readings loses its CPU from the figure; the provider's pool keeps
// its connections open, so under load none do.
func (st *benchStack) pgFigures(b *testing.B) pgFigures {
	b.Helper()
	if st.pg == nil {
		return pgFigures{}
	}
	var f pgFigures
	rows, err := st.pg.Query("SELECT pid FROM pg_stat_activity WHERE datname = $1", st.pgDB)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		if d, err := readProcCPU(pid); err == nil {
			f.cpu += d
		}
	}
	rows.Close()
	// pg_stat_database is updated when a backend reports; force a fresh
	// snapshot for this session.
	if _, err := st.pg.Exec("SELECT pg_stat_clear_snapshot()"); err != nil {
		b.Fatal(err)
	}
	if err := st.pg.QueryRow("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", st.pgDB).Scan(&f.xacts); err != nil {
		b.Fatal(err)
	}
	// Without the library loaded the view errors: the figures stay out.
	// Top-level statements only: under pg_stat_statements.track = all a
	// function's statements are counted in the call as well.
	err = st.pg.QueryRow(`SELECT COALESCE(sum(calls), 0)::bigint, COALESCE(sum(rows), 0)::bigint,
		COALESCE(sum(shared_blks_hit), 0)::bigint, COALESCE(sum(shared_blks_dirtied), 0)::bigint, COALESCE(sum(shared_blks_written), 0)::bigint,
		COALESCE(sum(wal_records), 0)::bigint, COALESCE(sum(wal_fpi), 0)::bigint, COALESCE(sum(wal_bytes), 0)::bigint,
		(pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint
		FROM pg_stat_statements WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = $1)`, st.pgDB).Scan(
		&f.calls, &f.rows, &f.blksHit, &f.blksDirtied, &f.blksWrt, &f.walRecords, &f.walFPI, &f.walBytes, &f.clusterWALBytes)
	f.stmts = err == nil
	return f
}

type providerMetrics struct {
	mallocs, storageOps float64
	byOp                map[string]float64 // storage round trips by op label
}

// metrics reads the provider's allocation count and storage operation
// count from its Prometheus endpoint.
func (st *benchStack) metrics(b *testing.B) providerMetrics {
	b.Helper()
	m := providerMetrics{byOp: map[string]float64{}}
	for _, base := range []string{st.admin, st.issuer} {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+st.adminToken) // the admin listener's
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			// NAME{LABELS} VALUE, where label values may hold spaces
			// ("select oauth2_refresh").
			i := strings.LastIndexByte(line, ' ')
			if i < 0 || strings.HasPrefix(line, "#") {
				continue
			}
			name, value := line[:i], line[i+1:]
			v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			if err != nil {
				continue
			}
			switch {
			case name == "go_memstats_mallocs_total":
				m.mallocs = v
			case strings.HasPrefix(name, "wxoidc_storage_") && strings.Contains(name, "_count{"):
				m.storageOps += v
				if op := storageOpLabel.FindStringSubmatch(name); op != nil {
					m.byOp[op[1]] += v
				}
			}
		}
		resp.Body.Close()
		return m
	}
	b.Fatal("no /metrics on the admin or public listener")
	return m
}

var storageOpLabel = regexp.MustCompile(`op="([^"]*)"`)

// pgWireCount is a loopback TCP proxy in front of PostgreSQL that counts
// the messages of the frontend protocol the provider sends (PostgreSQL
// protocol 3.0: after the untyped startup message, each message is a type
// byte and a length). It needs sslmode=disable.
type pgWireCount struct {
	addr                           string
	roundTrips, statements, parses atomic.Int64
}

type pgWireFigures struct{ roundTrips, statements, parses int64 }

func (p *pgWireCount) snapshot() pgWireFigures {
	if p == nil {
		return pgWireFigures{}
	}
	return pgWireFigures{p.roundTrips.Load(), p.statements.Load(), p.parses.Load()}
}

func startPGWireCount(b *testing.B, upstream string) *pgWireCount {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &pgWireCount{addr: l.Addr().String()}
	var conns sync.WaitGroup
	b.Cleanup(func() { l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			conns.Go(func() { io.Copy(c, s); c.Close() })
			conns.Go(func() { p.forward(s, c); s.Close() })
		}
	}()
	return p
}

// forward copies the frontend's messages from c to s, counting them. It
// writes on when it has read all that has arrived, so that what the
// provider sends in one write reaches PostgreSQL in one.
func (p *pgWireCount) forward(s io.Writer, c io.Reader) {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(s, 64<<10)
	head := make([]byte, 5)
	copyMessage := func(head []byte, n int64) bool {
		if _, err := w.Write(head); err != nil {
			return false
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return false
		}
		return r.Buffered() > 0 || w.Flush() == nil
	}
	// The startup message: a length (including itself) and no type.
	if _, err := io.ReadFull(r, head[:4]); err != nil {
		return
	}
	if !copyMessage(head[:4], int64(binary.BigEndian.Uint32(head[:4]))-4) {
		return
	}
	for {
		if _, err := io.ReadFull(r, head); err != nil {
			return
		}
		switch head[0] {
		case 'S': // Sync ends an extended-protocol round trip
			p.roundTrips.Add(1)
		case 'Q': // a simple query is its own round trip
			p.roundTrips.Add(1)
			p.statements.Add(1)
		case 'E':
			p.statements.Add(1)
		case 'P':
			p.parses.Add(1)
		}
		if !copyMessage(head, int64(binary.BigEndian.Uint32(head[1:]))-4) {
			return
		}
	}
}
