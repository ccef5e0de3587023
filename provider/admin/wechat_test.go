package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/provider/ops"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
)

func TestAdmin_WeChatHealth(t *testing.T) {
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	km, err := keys.New(store, keys.Config{Secret: testSecret, Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	log := &ops.WeChatLog{}
	log.Observe("wx-mini")("jscode2session", time.Millisecond, &wechat.APIError{Code: 40029})
	exp := time.Now().Add(90 * time.Minute).UTC().Truncate(time.Second)
	if _, err := store.SaveServerToken(context.Background(), storage.ServerToken{AppID: "wx-mini", Token: []byte("sealed-token-bytes"), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Clients: store, Keys: km, Secret: testSecret, Token: testToken,
		WeChat: &admin.WeChatHealth{Apps: []admin.WeChatApp{{AppID: "wx-mini", Kind: "miniprogram"}, {AppID: "wx-web", Kind: "website"}}, Tokens: store, Log: log}})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/admin/wechat", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if strings.Contains(rec.Body.String(), "sealed-token-bytes") || strings.Contains(rec.Body.String(), "c2VhbGVk") {
		t.Fatalf("the answer holds the token: %s", rec.Body)
	}
	var body struct {
		Apps []struct {
			AppID                string     `json:"appid"`
			ServerTokenExpiresAt *time.Time `json:"server_token_expires_at"`
			Calls                struct {
				Failed int `json:"failed"`
				Recent []struct {
					Errcode string `json:"errcode"`
				} `json:"recent_failures"`
			} `json:"calls"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK || len(body.Apps) != 2 {
		t.Fatalf("GET /admin/wechat: %d %s", rec.Code, rec.Body)
	}
	mini, web := body.Apps[0], body.Apps[1]
	if mini.ServerTokenExpiresAt == nil || !mini.ServerTokenExpiresAt.Equal(exp) || mini.Calls.Failed != 1 || mini.Calls.Recent[0].Errcode != "40029" {
		t.Errorf("mini program: %s", rec.Body)
	}
	if web.ServerTokenExpiresAt != nil {
		t.Errorf("an app without a stored token shows an expiry: %s", rec.Body)
	}
}
