package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/provider"
)

func TestConfig_AdminListener(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"loopback without token", map[string]string{"WXOIDC_ADMIN_ADDR": "127.0.0.1:8081"}, ""},
		{"localhost without token", map[string]string{"WXOIDC_ADMIN_ADDR": "localhost:8081"}, ""},
		{"off", map[string]string{"WXOIDC_ADMIN_ADDR": "off"}, ""},
		{"all interfaces without token", map[string]string{"WXOIDC_ADMIN_ADDR": ":8081"}, "admin.addr"},
		{"public without token", map[string]string{"WXOIDC_ADMIN_ADDR": "10.0.0.1:8081"}, "admin.addr"},
		{"public with token", map[string]string{"WXOIDC_ADMIN_ADDR": "0.0.0.0:8081", "WXOIDC_ADMIN_TOKEN": "a-long-enough-admin-token"}, ""},
		{"short token", map[string]string{"WXOIDC_ADMIN_TOKEN": "short"}, "admin.token"},
		{"bad addr", map[string]string{"WXOIDC_ADMIN_ADDR": "8081"}, "admin.addr"},
		{"proxies", map[string]string{"WXOIDC_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1,::1"}, ""},
		{"bad proxy", map[string]string{"WXOIDC_HTTP_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"}, "http.trusted_proxies"},
		{"shutdown", map[string]string{"WXOIDC_HTTP_SHUTDOWN_TIMEOUT": "0s"}, "http.shutdown_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"WXOIDC_ISSUER": "https://id.example.com", "WXOIDC_SECRET": opsSecret, "WXOIDC_STORAGE_DSN": "memory://"}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := loadConfig("", func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error about %s", err, tc.wantErr)
			}
		})
	}
}

// TestClientsCommand runs `wxoidc clients` through the admin API (--admin)
// and on storage directly.
func TestClientsCommand(t *testing.T) {
	r := startRunning(t, nil)
	remote := func(k string) string {
		return map[string]string{"WXOIDC_ADMIN_TOKEN": opsAdminToken}[k]
	}
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "cli.db")
	local := func(k string) string {
		return map[string]string{"WXOIDC_SECRET": opsSecret, "WXOIDC_STORAGE_DSN": dsn, "WXOIDC_ISSUER": "https://id.example.com"}[k]
	}
	for name, mode := range map[string]struct {
		getenv func(string) string
		args   []string
	}{
		"admin API": {remote, []string{"--admin", r.admin}},
		"storage":   {local, nil},
	} {
		t.Run(name, func(t *testing.T) {
			cli := func(args ...string) (string, error) {
				var out bytes.Buffer
				err := run(context.Background(), append(args, mode.args...), mode.getenv, &out, &out)
				return out.String(), err
			}
			out, err := cli("clients", "create", "--id", "cli-"+strings.ReplaceAll(name, " ", "-"), "--grant-type", "client_credentials", "--scope", "a b")
			if err != nil {
				t.Fatalf("create: %v\n%s", err, out)
			}
			var created provider.ClientMetadata
			if err := json.Unmarshal([]byte(out), &created); err != nil || created.ClientSecret == "" {
				t.Fatalf("create printed %q (%v), want the client with its secret", out, err)
			}
			id := created.ClientID
			out, err = cli("clients", "get", id)
			if err != nil || strings.Contains(out, created.ClientSecret) || !strings.Contains(out, `"scope": "a b"`) {
				t.Fatalf("get: %v\n%s", err, out)
			}
			out, err = cli("clients", "update", id, "--scope", "a", "--rotate-secret")
			var updated provider.ClientMetadata
			json.Unmarshal([]byte(out), &updated)
			if err != nil || updated.Scope != "a" || updated.ClientSecret == "" || updated.ClientSecret == created.ClientSecret {
				t.Fatalf("update: %v\n%s", err, out)
			}
			out, err = cli("clients", "list")
			if err != nil || !strings.Contains(out, `"client_id": "`+id+`"`) || strings.Contains(out, `"client_secret":`) {
				t.Fatalf("list: %v\n%s", err, out)
			}
			if out, err := cli("clients", "create", "--redirect-uri", "https://rp.example/cb#fragment"); err == nil || !strings.Contains(err.Error(), "invalid_redirect_uri") {
				t.Fatalf("create with a fragment in the redirect: %v\n%s", err, out)
			}
			// Initial access tokens for Dynamic Client Registration.
			out, err = cli("clients", "initial-tokens", "create", "--description", "partner", "--uses", "3", "--expires-in", "2h")
			var iat map[string]any
			json.Unmarshal([]byte(out), &iat)
			tok, _ := iat["token"].(string)
			iatID, _ := iat["id"].(string)
			if err != nil || tok == "" || iatID == "" || iat["uses_left"] != float64(3) {
				t.Fatalf("initial-tokens create: %v\n%s", err, out)
			}
			out, err = cli("clients", "initial-tokens", "list")
			if err != nil || !strings.Contains(out, iatID) || strings.Contains(out, tok) || !strings.Contains(out, "partner") {
				t.Fatalf("initial-tokens list: %v\n%s", err, out)
			}
			if out, err := cli("clients", "initial-tokens", "revoke", iatID); err != nil {
				t.Fatalf("initial-tokens revoke: %v\n%s", err, out)
			}
			if out, err := cli("clients", "initial-tokens", "revoke", iatID); err == nil || !strings.Contains(err.Error(), "not_found") {
				t.Fatalf("revoke twice: %v\n%s", err, out)
			}
			if out, err := cli("clients", "delete", id); err != nil {
				t.Fatalf("delete: %v\n%s", err, out)
			}
			if _, err := cli("clients", "get", id); err == nil || !strings.Contains(err.Error(), "not_found") {
				t.Fatalf("get after delete: %v", err)
			}
		})
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"clients", "list", "--admin", r.admin}, func(string) string { return "" }, &out, &out); err == nil || !strings.Contains(err.Error(), "invalid_token") {
		t.Errorf("--admin without a token: %v", err)
	}
}
