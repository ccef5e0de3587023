package provider_test

import (
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
)

// TestRefreshReuseGrace: within the grace a rotated refresh token gets the
// answer of its first refresh (the same successor and access token, no new
// family member; no ID token, which OIDC Core §12.2 allows);
// once the successor is gone or the grace has passed, reuse revokes the
// family as before.
func TestRefreshReuseGrace(t *testing.T) {
	// The provider's clock runs ahead by skew, so "after the grace" needs
	// no sleep, and the grace is long enough for eight concurrent
	// refreshes on a slow machine (under -race, on busy cores).
	const grace = 5 * time.Second
	var skew atomic.Int64
	e := newEnv(t, func(c *provider.Config) {
		c.RefreshReuseGrace = grace
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	web := e.oauth2Config(webClient, webSecret, webRedirect, "openid", "offline_access")
	login := func() string {
		t.Helper()
		tok, err := web.Exchange(e.ctx, e.authorize(web.AuthCodeURL("state-0123456789")).Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		return tok.RefreshToken
	}
	refresh := func(rt string) (int, map[string]any) {
		resp, body := e.postForm("/oauth2/token", webClient, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		return resp.StatusCode, body
	}

	t.Run("concurrent refreshes share one successor", func(t *testing.T) {
		rt := login()
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]int{}
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, body := refresh(rt)
				mu.Lock()
				defer mu.Unlock()
				if status != 200 {
					t.Errorf("concurrent refresh: %d %v", status, body)
					return
				}
				got[body["refresh_token"].(string)+" "+body["access_token"].(string)]++
			}()
		}
		wg.Wait()
		if len(got) != 1 {
			t.Fatalf("%d different answers to one refresh token, want 1", len(got))
		}
	})

	t.Run("the successor rotated: reuse revokes", func(t *testing.T) {
		rt := login()
		_, first := refresh(rt)
		status, again := refresh(rt)
		if status != 200 || again["refresh_token"] != first["refresh_token"] || again["access_token"] != first["access_token"] {
			t.Fatalf("within the grace: %d %v, want the first answer", status, again)
		}
		status, next := refresh(first["refresh_token"].(string))
		if status != 200 {
			t.Fatalf("the successor does not refresh: %d %v", status, next)
		}
		if status, body := refresh(rt); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("rotated token whose successor rotated too: %d %v, want invalid_grant", status, body)
		}
		if status, body := refresh(next["refresh_token"].(string)); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("the family survived reuse detection: %d %v", status, body)
		}
	})

	t.Run("after the grace reuse revokes", func(t *testing.T) {
		rt := login()
		_, first := refresh(rt)
		skew.Add(int64(grace + time.Second))
		if status, body := refresh(rt); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("after the grace: %d %v, want invalid_grant", status, body)
		}
		if status, body := refresh(first["refresh_token"].(string)); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("the successor survived reuse detection: %d %v", status, body)
		}
	})

	t.Run("another client cannot use the grace", func(t *testing.T) {
		rt := login()
		refresh(rt)
		resp, body := e.postForm("/oauth2/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {spaClient}})
		if resp.StatusCode != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("rotated token of another client: %d %v", resp.StatusCode, body)
		}
	})
}
