package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider/ops"
)

// flakyStore is a Pinger whose ping fails while down is set.
type flakyStore struct{ down atomic.Bool }

func (s *flakyStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errors.New("dial tcp 10.0.0.5:5432: connection refused")
	}
	return nil
}

// slowStore answers pings only when the context ends.
type slowStore struct{}

func (slowStore) Ping(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

type keysReady bool

func (k keysReady) Ready() bool { return bool(k) }

func probe(t *testing.T, h http.HandlerFunc) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return rec.Code, body
}

func TestHealth_ReadyFlipsWithStorage(t *testing.T) {
	st := &flakyStore{}
	h := &ops.Health{Storage: st, Keys: keysReady(true)}
	if code, _ := probe(t, h.Ready); code != http.StatusOK {
		t.Fatalf("up: got %d, want 200", code)
	}
	st.down.Store(true)
	code, body := probe(t, h.Ready)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("down: got %d, want 503", code)
	}
	checks := body["checks"].(map[string]any)
	if checks["storage"] != "unreachable" || checks["keys"] != "ok" {
		t.Errorf("checks = %v", checks)
	}
	if s, _ := json.Marshal(body); strings.Contains(string(s), "10.0.0.5") {
		t.Errorf("body leaks the storage error: %s", s)
	}
	st.down.Store(false)
	if code, _ := probe(t, h.Ready); code != http.StatusOK {
		t.Fatalf("up again: got %d, want 200", code)
	}
	if code, _ := probe(t, h.Live); code != http.StatusOK {
		t.Fatalf("live: got %d, want 200", code)
	}
}

func TestHealth_ReadyNeedsKeys(t *testing.T) {
	h := &ops.Health{Storage: &flakyStore{}, Keys: keysReady(false)}
	code, body := probe(t, h.Ready)
	if code != http.StatusServiceUnavailable || body["checks"].(map[string]any)["keys"] != "not loaded" {
		t.Fatalf("got %d %v, want 503 with keys not loaded", code, body)
	}
}

func TestHealth_PingTimeout(t *testing.T) {
	h := &ops.Health{Storage: slowStore{}, Keys: keysReady(true), PingTimeout: 20 * time.Millisecond}
	start := time.Now()
	if code, _ := probe(t, h.Ready); code != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("readyz took %v despite a 20ms ping timeout", d)
	}
}
