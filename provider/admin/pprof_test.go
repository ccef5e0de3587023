package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage/memory"
)

// TestAdmin_Profiling: /debug/pprof/ exists only when Profiling is on, and
// then only behind the admin token.
func TestAdmin_Profiling(t *testing.T) {
	const token = "admin-token-0123456789"
	newHandler := func(profiling bool) *admin.Handler {
		store := memory.New()
		t.Cleanup(func() { store.Close() })
		km, err := keys.New(store, keys.Config{Secret: testSecret, Algorithms: []string{"ES256"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := km.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		h, err := admin.New(admin.Config{Clients: store, Keys: km, Secret: testSecret, Token: token, Profiling: profiling})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	get := func(h *admin.Handler, path, bearer string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	on, off := newHandler(true), newHandler(false)
	if rec := get(on, "/debug/pprof/", token); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "goroutine") {
		t.Errorf("profiling on: GET /debug/pprof/ = %d, want 200 with the profile index", rec.Code)
	}
	if rec := get(on, "/debug/pprof/heap?debug=1", token); rec.Code != http.StatusOK {
		t.Errorf("profiling on: GET heap = %d, want 200", rec.Code)
	}
	if rec := get(on, "/debug/pprof/", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("profiling on, no token: %d, want 401", rec.Code)
	}
	if rec := get(off, "/debug/pprof/", token); rec.Code != http.StatusNotFound {
		t.Errorf("profiling off: %d, want 404", rec.Code)
	}
}
