package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wxoidc/wxoidc/provider/ops"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) lines(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, s := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if s == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		out = append(out, m)
	}
	return out
}

// seen is what the wrapped handler observed.
type seen struct {
	remote string
	header http.Header
}

func newMiddleware(t *testing.T, proxies ...string) (*ops.Middleware, *logBuf, *prometheus.Registry) {
	t.Helper()
	buf := &logBuf{}
	reg := prometheus.NewRegistry()
	m, err := ops.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var ps []netip.Prefix
	for _, p := range proxies {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	log := slog.New(ops.LogHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return &ops.Middleware{
		Logger:  log,
		Metrics: m,
		Route: func(r *http.Request) string {
			return map[string]string{"/oauth2/token": "/oauth2/token", "/healthz": "/healthz"}[r.URL.Path]
		},
		QuietRoutes:    []string{"/healthz"},
		TrustedProxies: ps,
	}, buf, reg
}

func TestMiddleware_RequestLine(t *testing.T) {
	mw, buf, reg := newMiddleware(t)
	var inner string
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = ops.RequestID(r.Context())
		slog.New(ops.LogHandler(slog.NewJSONHandler(buf, nil))).InfoContext(r.Context(), "inside")
		if r.URL.Path == "/oauth2/token" {
			ops.SetClientID(r.Context(), "body-client")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	req := httptest.NewRequest(http.MethodPost, "/oauth2/token?code=SECRET-CODE&state=s", strings.NewReader("client_secret=SECRET-BODY"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	id := rec.Header().Get(ops.RequestIDHeader)
	if id == "" || id != inner {
		t.Fatalf("X-Request-Id %q, handler saw %q", id, inner)
	}
	lines := buf.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2", len(lines))
	}
	if lines[0]["msg"] != "inside" || lines[0]["request_id"] != id {
		t.Errorf("handler line %v lacks the request id", lines[0])
	}
	l := lines[1]
	if l["msg"] != "request" || l["request_id"] != id || l["route"] != "/oauth2/token" || l["status"] != 429.0 ||
		l["client_id"] != "body-client" || l["method"] != "POST" || l["duration_ms"] == nil {
		t.Errorf("request line %v", l)
	}
	for _, s := range []string{"SECRET-CODE", "SECRET-BODY", "state=", "?"} {
		if strings.Contains(buf.b.String(), s) {
			t.Errorf("the log contains %q", s)
		}
	}
	if got := counterValue(t, reg, "wxoidc_rate_limited_total"); got != 1 {
		t.Errorf("rate-limited count %v, want 1", got)
	}

	// Unknown routes and odd methods stay bounded; Basic names the client.
	req = httptest.NewRequest("BREW", "/some/path/with-an-id-123", nil)
	req.SetBasicAuth("web%3Aapp", "pw")
	h.ServeHTTP(httptest.NewRecorder(), req)
	l = requestLines(t, buf)[1]
	if l["route"] != ops.RouteOther || l["method"] != "other" || l["client_id"] != "web:app" {
		t.Errorf("request line %v", l)
	}
	if n := testutil.CollectAndCount(reg, "wxoidc_http_requests_total"); n != 2 {
		t.Errorf("%d request series, want 2", n)
	}

	// Probes log at debug.
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if l := requestLines(t, buf)[2]; l["level"] != "DEBUG" {
		t.Errorf("health probe logged at %v", l["level"])
	}
}

func requestLines(t *testing.T, buf *logBuf) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range buf.lines(t) {
		if l["msg"] == "request" {
			out = append(out, l)
		}
	}
	return out
}

// counterValue is the value of the first series of the counter name.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestMiddleware_Proxies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		proxies    []string
		peer       string
		xff        string
		reqID      string
		wantRemote string
		wantXFF    bool
		wantID     string
	}{
		{"untrusted peer", nil, "203.0.113.7:5555", "198.51.100.1", "proxy-id-1", "203.0.113.7", false, ""},
		{"trusted proxy", []string{"10.0.0.0/8"}, "10.1.2.3:5555", "198.51.100.1", "proxy-id-1", "198.51.100.1", true, "proxy-id-1"},
		{"chain", []string{"10.0.0.0/8"}, "10.1.2.3:5555", "192.0.2.9, 198.51.100.1, 10.9.9.9", "", "198.51.100.1", true, ""},
		{"spoofed head", []string{"10.0.0.0/8"}, "10.1.2.3:5555", "1.1.1.1, 198.51.100.1", "", "198.51.100.1", true, ""},
		{"garbage", []string{"10.0.0.0/8"}, "10.1.2.3:5555", "not-an-ip", "", "10.1.2.3", true, ""},
		{"bad id", []string{"10.0.0.0/8"}, "10.1.2.3:5555", "", "has spaces\n", "10.1.2.3", false, ""},
		{"untrusted is not a proxy", []string{"10.0.0.0/8"}, "203.0.113.7:5555", "198.51.100.1", "x", "203.0.113.7", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mw, buf, _ := newMiddleware(t, tc.proxies...)
			var got seen
			h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = seen{remote: r.RemoteAddr, header: r.Header.Clone()}
			}))
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.RemoteAddr = tc.peer
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			req.Header.Set("X-Forwarded-Proto", "https")
			if tc.reqID != "" {
				req.Header.Set(ops.RequestIDHeader, tc.reqID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if remote := buf.lines(t)[0]["remote"]; remote != tc.wantRemote {
				t.Errorf("logged remote %v, want %s", remote, tc.wantRemote)
			}
			if !strings.HasPrefix(got.remote, tc.wantRemote) && !strings.HasPrefix(got.remote, "["+tc.wantRemote) {
				t.Errorf("handler saw RemoteAddr %q, want %s", got.remote, tc.wantRemote)
			}
			if has := got.header.Get("X-Forwarded-For") != ""; has != tc.wantXFF {
				t.Errorf("handler saw X-Forwarded-For: %v, want %v", has, tc.wantXFF)
			}
			if len(tc.proxies) == 0 && got.header.Get("X-Forwarded-Proto") != "" {
				t.Errorf("X-Forwarded-Proto from an untrusted peer reached the handler")
			}
			id := rec.Header().Get(ops.RequestIDHeader)
			if tc.wantID != "" && id != tc.wantID || tc.wantID == "" && (id == tc.reqID || len(id) != 24) {
				t.Errorf("request id %q (sent %q)", id, tc.reqID)
			}
		})
	}
}

func TestMiddleware_Panic(t *testing.T) {
	mw, buf, _ := newMiddleware(t)
	h := mw.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/oauth2/token", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("got %d, want 500", rec.Code)
	}
	if l := buf.lines(t)[0]; l["status"] != 500.0 || l["level"] != "ERROR" || l["panic"] != "boom" {
		t.Errorf("request line %v", l)
	}
}

// TestMiddleware_SetRoute: a route a router gave SetRoute names the
// request, and Route is not asked.
func TestMiddleware_SetRoute(t *testing.T) {
	mw, buf, _ := newMiddleware(t)
	asked := 0
	route := mw.Route
	mw.Route = func(r *http.Request) string { asked++; return route(r) }
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			ops.SetRoute(r.Context(), "/matched/{id}")
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/oauth2/token", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	lines := requestLines(t, buf)
	if len(lines) != 2 || lines[0]["route"] != "/matched/{id}" || lines[1]["route"] != "/healthz" {
		t.Fatalf("request lines %v; want routes /matched/{id} and /healthz", lines)
	}
	if asked != 1 {
		t.Errorf("Route asked %d times; want once (for the request no router named)", asked)
	}
	ops.SetRoute(context.Background(), "/nowhere") // without the middleware: nothing
}
