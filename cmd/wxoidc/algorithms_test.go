package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// A signing algorithm that has no key is refused wherever it is chosen:
// access_token.alg and config clients by serve --check, clients at
// registration, stored clients at start.
func TestAlgorithms_MismatchRefused(t *testing.T) {
	secret := "secret: " + strings.Repeat("k", 40) + "\n"
	base := "issuer: https://id.example.com\n" + secret + "keys:\n  algorithms: [RS256]\n"

	// access_token.alg defaults to ES256.
	_, err := runCmd(t, noEnv, "serve", "--config", writeFile(t, "c.yaml", base+"storage:\n  dsn: memory://\n"), "--check")
	if err == nil || !strings.Contains(err.Error(), "access_token.alg: ES256 has no signing key (keys.algorithms keeps RS256); add ES256 to keys.algorithms or set access_token.alg to RS256") {
		t.Fatalf("serve --check with keys.algorithms [RS256]: %v", err)
	}

	withRS := base + "access_token:\n  alg: RS256\n"
	_, err = runCmd(t, noEnv, "serve", "--config", writeFile(t, "c.yaml", withRS+"storage:\n  dsn: memory://\n"+`clients:
  - client_id: web
    client_secret_env: WEB_SECRET
    redirect_uris: [https://rp.example/cb]
    id_token_signed_response_alg: ES256
`), "--check")
	if err == nil || !strings.Contains(err.Error(), "clients[0] (web): invalid_client_metadata: id_token_signed_response_alg ES256 has no signing key") {
		t.Fatalf("serve --check with a client wanting ES256: %v", err)
	}

	// Registration through the CLI (the admin API in process).
	db := filepath.Join(t.TempDir(), "w.db")
	cfg := writeFile(t, "c.yaml", withRS+"storage:\n  dsn: sqlite://"+db+"\n")
	out, err := runCmd(t, noEnv, "clients", "--config", cfg, "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb", "--id-token-alg", "ES256")
	if err == nil || !strings.Contains(err.Error(), "id_token_signed_response_alg ES256 has no signing key") {
		t.Fatalf("clients create --id-token-alg ES256: %v %s", err, out)
	}

	// A client stored while ES256 was kept stops serve from starting once
	// it is not.
	all := writeFile(t, "all.yaml", "issuer: https://id.example.com\n"+secret+"storage:\n  dsn: sqlite://"+db+"\n")
	if out, err := runCmd(t, noEnv, "clients", "--config", all, "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb", "--id-token-alg", "ES256"); err != nil {
		t.Fatalf("create with every algorithm kept: %v %s", err, out)
	}
	c, err := loadConfig(cfg, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = buildStack(context.Background(), c, true, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "client shop: invalid_client_metadata: id_token_signed_response_alg ES256 has no signing key") ||
		!strings.Contains(err.Error(), "wxoidc clients update shop --id-token-alg RS256") {
		t.Fatalf("start with a stored ES256 client: %v", err)
	}
}
