package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
)

// TestAdmin_InitialAccessTokens: issue (shown once, stored hashed, with
// uses and expiry), list (never the token), revoke; bad requests refused;
// the token is in no log line and no event.
func TestAdmin_InitialAccessTokens(t *testing.T) {
	store := memory.New()
	km, err := keys.New(store, keys.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := admin.New(admin.Config{Clients: store, Keys: km, Users: store, Registrations: store, Secret: testSecret, Token: testToken, Logger: logger,
		Audit: &provider.Audit{Storage: store, Logger: logger}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: store, h: h, token: testToken, host: "127.0.0.1:8081"}

	before := time.Now()
	status, iat, hdr := e.do(http.MethodPost, "/admin/initial-access-tokens", map[string]any{"description": "partner", "uses": 3, "expires_in": 600})
	tok, _ := iat["token"].(string)
	id, _ := iat["id"].(string)
	if status != http.StatusCreated || len(tok) < 43 || id == "" || iat["uses"] != float64(3) || iat["uses_left"] != float64(3) ||
		hdr.Get("Location") != "/admin/initial-access-tokens/"+id || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %v %v", status, iat, hdr)
	}
	stored, err := store.InitialAccessToken(context.Background(), provider.NewRegistrationTokens(testSecret).Hash(tok))
	if err != nil || stored.ID != id || bytes.Contains(stored.Hash, []byte(tok)) {
		t.Fatalf("stored: %+v %v", stored, err)
	}
	if exp := stored.ExpiresAt.Sub(before); exp < 9*time.Minute || exp > 11*time.Minute {
		t.Fatalf("expires in %v, want 10m", exp)
	}
	// Defaults: single use, a day.
	status, def, _ := e.do(http.MethodPost, "/admin/initial-access-tokens", "{}")
	if status != http.StatusCreated || def["uses"] != float64(1) {
		t.Fatalf("create with defaults: %d %v", status, def)
	}

	for _, bad := range []map[string]any{{"uses": -1}, {"uses": 10001}, {"expires_in": -5}, {"expires_in": 400 * 24 * 3600}, {"expires_in": int64(1) << 60},
		{"description": "a\nb"}, {"description": strings.Repeat("x", 201)}, {"token": "chosen"}} {
		if status, body, _ := e.do(http.MethodPost, "/admin/initial-access-tokens", bad); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("create %v: %d %v", bad, status, body)
		}
	}

	status, list, _ := e.do(http.MethodGet, "/admin/initial-access-tokens", nil)
	raw, _ := json.Marshal(list)
	if toks, _ := list["initial_access_tokens"].([]any); status != http.StatusOK || len(toks) != 2 || bytes.Contains(raw, []byte(tok)) || !bytes.Contains(raw, []byte("partner")) {
		t.Fatalf("list: %d %s", status, raw)
	}
	if status, _, _ := e.do(http.MethodDelete, "/admin/initial-access-tokens/"+id, nil); status != http.StatusNoContent {
		t.Fatalf("revoke: %d", status)
	}
	if status, body, _ := e.do(http.MethodDelete, "/admin/initial-access-tokens/"+id, nil); status != http.StatusNotFound || body["error"] != "not_found" {
		t.Fatalf("revoke twice: %d %v", status, body)
	}
	if _, err := store.InitialAccessToken(context.Background(), provider.NewRegistrationTokens(testSecret).Hash(tok)); err == nil {
		t.Fatal("a revoked token is still stored")
	}

	events, _, err := store.Events(context.Background(), storage.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	if strings.Join(types, ",") != "initial_access_token_revoked,initial_access_token_created,initial_access_token_created" {
		t.Fatalf("events %v", types)
	}
	evJSON, _ := json.Marshal(events)
	if bytes.Contains(evJSON, []byte(tok)) || strings.Contains(logs.String(), tok) {
		t.Fatal("the initial access token is in an event or the log")
	}
	if !strings.Contains(logs.String(), "initial_access_token_created") {
		t.Fatal("no audit log line: the check above proves nothing")
	}

	// Without a registration store the resource does not exist.
	plain := newEnv(t, testToken)
	if status, _, _ := plain.do(http.MethodGet, "/admin/initial-access-tokens", nil); status != http.StatusNotFound {
		t.Fatalf("without Registrations: %d", status)
	}
}
