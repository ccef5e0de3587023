package provider_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/wxoidc/wxoidc/provider"
)

// TestOnRoute: Config.OnRoute hears, for each request the provider serves
// on a route, the template Route names; for requests on no route (or not
// with their method), nothing.
func TestOnRoute(t *testing.T) {
	var mu sync.Mutex
	var heard []string
	e := newEnv(t, func(c *provider.Config) {
		c.OnRoute = func(_ context.Context, route string) {
			mu.Lock()
			heard = append(heard, route)
			mu.Unlock()
		}
	})
	h := e.p.Handler()
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/.well-known/openid-configuration"},
		{http.MethodHead, "/.well-known/openid-configuration"},
		{http.MethodGet, "/.well-known/jwks.json"},
		{http.MethodGet, "/oauth2/authorize?client_id=nobody"},
		{http.MethodPost, "/oauth2/token"},
		{http.MethodGet, "/userinfo"},
		{http.MethodPut, "/oauth2/token"},
		{http.MethodGet, "/no/such/route"},
	} {
		mu.Lock()
		heard = nil
		mu.Unlock()
		r := httptest.NewRequest(c.method, e.issuer+c.path, nil)
		want := e.p.Route(r)
		h.ServeHTTP(httptest.NewRecorder(), r)
		mu.Lock()
		got := heard
		mu.Unlock()
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s %s: OnRoute heard %v; want nothing", c.method, c.path, got)
		case want != "" && (len(got) != 1 || got[0] != want):
			t.Errorf("%s %s: OnRoute heard %v; want [%s]", c.method, c.path, got, want)
		}
	}
}
