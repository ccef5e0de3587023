package postgres_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/postgres"
)

// devicePollEnv is a provider on a traced PostgreSQL pool, served in
// process (no sockets), with a public device client.
type devicePollEnv struct {
	h     http.Handler
	count *statements
	store *postgres.Store
}

const pollIssuer = "https://id.example.test"

func newDevicePollEnv(tb testing.TB, interval time.Duration) *devicePollEnv {
	tb.Helper()
	var count statements
	s, err := postgres.Open(tb.Context(), newSchema(tb), postgres.WithTracer(postgres.Options{}, &count))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	ctx := tb.Context()
	if err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	secret := []byte(strings.Repeat("device-poll-secret-", 3))
	km, err := keys.New(s, keys.Config{Secret: secret})
	if err != nil {
		tb.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.CreateClient(ctx, storage.Client{ID: "tv", GrantTypes: []string{provider.GrantTypeDeviceCode}, Scopes: []string{"openid"},
		TokenEndpointAuthMethod: storage.AuthMethodNone, CreatedAt: now, UpdatedAt: now}); err != nil {
		tb.Fatal(err)
	}
	p, err := provider.New(provider.Config{Issuer: pollIssuer, Secret: secret, Storage: s, Keys: km, DevicePollInterval: interval})
	if err != nil {
		tb.Fatal(err)
	}
	return &devicePollEnv{h: p.Handler(), count: &count, store: s}
}

func (e *devicePollEnv) post(path string, form url.Values) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, pollIssuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func (e *devicePollEnv) authorize(tb testing.TB) string {
	status, body := e.post("/oauth2/device/authorize", url.Values{"client_id": {"tv"}, "scope": {"openid"}})
	if status != 200 {
		tb.Fatalf("device authorization: %d %v", status, body)
	}
	return body["device_code"].(string)
}

func pollForm(deviceCode string) url.Values {
	return url.Values{"grant_type": {provider.GrantTypeDeviceCode}, "client_id": {"tv"}, "device_code": {deviceCode}}
}

// TestDevicePoll_oneStatement pins a pending poll at one database round
// trip: the client comes from the store's client cache, and the poll's
// read, interval check and write are one UPDATE … RETURNING.
func TestDevicePoll_oneStatement(t *testing.T) {
	e := newDevicePollEnv(t, time.Second)
	codes := []string{e.authorize(t), e.authorize(t), e.authorize(t)}
	e.post("/oauth2/token", pollForm(codes[0])) // prepares the statement, fills the client cache
	for _, c := range codes[1:] {
		before := e.count.n.Load()
		status, body := e.post("/oauth2/token", pollForm(c))
		if status != 400 || body["error"] != "authorization_pending" {
			t.Fatalf("poll: %d %v", status, body)
		}
		if got := e.count.n.Load() - before; got != 1 {
			t.Errorf("a pending poll took %d round trips, want 1", got)
		}
	}
}

// BenchmarkDevicePoll: 1,000 pending device codes, each polled at its
// interval (all together 1,000 polls per interval), served in process on
// PostgreSQL. Reported: the provider's CPU per poll (process CPU time, so
// it includes this benchmark's own small share), p50/p99 latency, and
// database round trips per poll.
//
//	WXOIDC_TEST_POSTGRES_DSN=… go test ./storage/postgres -run '^$' -bench DevicePoll -benchtime 3000x -count 3
func BenchmarkDevicePoll(b *testing.B) {
	const pending = 1000
	interval := time.Second // 1,000 polls a second in all
	e := newDevicePollEnv(b, interval)
	codes := make([]string, pending)
	for i := range codes {
		codes[i] = e.authorize(b)
	}
	// One round first: statements prepared, every code polled once.
	for _, c := range codes {
		e.post("/oauth2/token", pollForm(c))
	}
	time.Sleep(interval)

	lat := make([]time.Duration, b.N)
	var mu sync.Mutex
	outcomes := map[string]int{}
	step := interval / pending
	start := time.Now()
	before := e.count.n.Load()
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range b.N {
		// Poll number i is due at start + i·step: each code every interval.
		if d := time.Until(start.Add(time.Duration(i) * step)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			t0 := time.Now()
			status, body := e.post("/oauth2/token", pollForm(codes[i%pending]))
			lat[i] = time.Since(t0)
			mu.Lock()
			outcomes[statusKey(status, body)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	trips := e.count.n.Load() - before
	slices.Sort(lat)
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/poll")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(trips)/float64(b.N), "queries/poll")
	if outcomes["400 authorization_pending"] != b.N {
		b.Errorf("outcomes %v: every poll should be authorization_pending", outcomes)
	}
}

func statusKey(status int, body map[string]any) string {
	e, _ := body["error"].(string)
	return fmt.Sprint(status, " ", e)
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
