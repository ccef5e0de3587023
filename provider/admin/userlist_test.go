package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// TestAdmin_UserListRoundTrips: a page of 50 users with their identities
// is two statements (the search and the page's identities), not one per
// user as well (51 before).
func TestAdmin_UserListRoundTrips(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		ops []string
	)
	st.Observe(func(_ context.Context, op string) func(error) {
		if op == "prepare" { // once per statement text and connection
			return func(error) {}
		}
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
		return func(error) {}
	})
	km, err := keys.New(st, keys.Config{Secret: testSecret, Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Clients: st, Keys: km, Users: st, Secret: testSecret, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		union := ""
		if i%2 == 0 { // every other user has a second app's identity too
			union = fmt.Sprintf("union-%02d", i)
		}
		if _, err := st.LinkIdentity(ctx, storage.LinkRequest{AppID: "wxapp", OpenID: fmt.Sprintf("open-%02d", i), UnionID: union,
			NewSubject: fmt.Sprintf("sub-%02d", i), Kind: "miniprogram", Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if union != "" {
			if _, err := st.LinkIdentity(ctx, storage.LinkRequest{AppID: "wxweb", OpenID: fmt.Sprintf("web-%02d", i), UnionID: union, Kind: "website", Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mu.Lock()
	ops = nil
	mu.Unlock()
	req := httptest.NewRequest(http.MethodGet, "/admin/users?limit=50", nil)
	req.Host = "127.0.0.1:8081"
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /admin/users: %d %s", rec.Code, rec.Body)
	}
	var list struct {
		Users []struct {
			Sub        string `json:"sub"`
			Identities []struct {
				AppID  string `json:"appid"`
				OpenID string `json:"openid"`
			} `json:"identities"`
		} `json:"users"`
		Next string `json:"next_page_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Users) != 50 || list.Next == "" {
		t.Fatalf("%d users, next %q", len(list.Users), list.Next)
	}
	for i, u := range list.Users {
		want := 1 + (i+1)%2
		if u.Sub != fmt.Sprintf("sub-%02d", i) || len(u.Identities) != want || u.Identities[0].OpenID != fmt.Sprintf("open-%02d", i) ||
			(want == 2 && u.Identities[1].OpenID != fmt.Sprintf("web-%02d", i)) {
			t.Fatalf("user %d: %+v", i, u)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ops) != 2 {
		t.Fatalf("round trips %q, want the search and the page's identities", ops)
	}
}
