package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage/memory"
)

// serve --check finds what serve would refuse: storage it cannot open, a
// client it would refuse, a secret that is not the deployment's; and it
// writes nothing.
func TestServeCheck_ChecksWhatServeChecks(t *testing.T) {
	secret := strings.Repeat("k", 40)
	base := "issuer: https://id.example.com\nsecret: " + secret + "\n"

	missingDir := filepath.Join(t.TempDir(), "no", "such", "dir")
	_, err := runCmd(t, noEnv, "serve", "--check", "--config", writeFile(t, "c.yaml", base+"storage:\n  dsn: sqlite://"+missingDir+"/w.db\n"))
	if err == nil || !strings.Contains(err.Error(), "storage.dsn: the database "+missingDir+"/w.db does not exist and its directory "+missingDir+" is not writable") {
		t.Fatalf("storage in a missing directory: %v", err)
	}
	if _, err := os.Stat(missingDir); err == nil {
		t.Fatal("--check created the directory")
	}

	_, err = runCmd(t, noEnv, "serve", "--check", "--config", writeFile(t, "c.yaml", base+`storage:
  dsn: memory://
clients:
  - client_id: shop
    client_secret: shop-secret-0123456789abcdef0123456789
    redirect_uris: [http://shop.example/cb]
`))
	if err == nil || !strings.Contains(err.Error(), `clients[0] (shop): invalid_redirect_uri: redirect_uri "http://shop.example/cb"`) {
		t.Fatalf("client with an http redirect: %v", err)
	}

	// A deployment that has started once (keys and a client stored).
	db := filepath.Join(t.TempDir(), "w.db")
	cfg := writeFile(t, "c.yaml", base+"storage:\n  dsn: sqlite://"+db+"\n")
	if out, err := runCmd(t, noEnv, "clients", "--config", cfg, "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatalf("create: %v %s", err, out)
	}
	before, _ := os.ReadFile(db)
	out, err := runCmd(t, noEnv, "serve", "--check", "--config", cfg)
	if err != nil || !strings.Contains(out, "opened read-only") || !strings.Contains(out, "configuration OK (config "+cfg+")") {
		t.Fatalf("check of a good deployment: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(db); string(after) != string(before) {
		t.Error("--check changed the database file")
	}

	other := writeFile(t, "other.yaml", "issuer: https://id.example.com\nsecret: "+strings.Repeat("x", 40)+"\nstorage:\n  dsn: sqlite://"+db+"\n")
	_, err = runCmd(t, noEnv, "serve", "--check", "--config", other)
	if err == nil || !strings.Contains(err.Error(), "secret: keys: the system secret is not this deployment's") {
		t.Fatalf("check with another secret: %v", err)
	}
}

// The CLI refuses a system secret that is not the deployment's before it
// writes anything made with it, and says how to fix it.
func TestCLI_WrongSecretRefused(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	good := writeFile(t, "good.yaml", "issuer: https://id.example.com\nsecret: "+strings.Repeat("k", 40)+"\nstorage:\n  dsn: sqlite://"+db+"\n")
	if out, err := runCmd(t, noEnv, "keys", "--config", good, "list"); err != nil {
		t.Fatalf("keys list: %v %s", err, out)
	}
	wrong := writeFile(t, "wrong.yaml", "issuer: https://id.example.com\nstorage:\n  dsn: sqlite://"+db+"\n")
	env := envOf(map[string]string{"WXOIDC_SECRET": strings.Repeat("w", 40)})
	for _, args := range [][]string{
		{"clients", "--config", wrong, "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb"},
		{"clients", "--config", wrong, "list"},
		{"keys", "--config", wrong, "list"},
	} {
		out, err := runCmd(t, env, args...)
		if err == nil {
			t.Fatalf("%v succeeded with the wrong secret: %s", args, out)
		}
		for _, want := range []string{"the system secret is not this deployment's", "use the secret serve runs with", "(used config " + wrong + ")", "--config FILE", "--admin URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error %q lacks %q", args[:2], err, want)
			}
		}
		if strings.Contains(out, "client_secret") {
			t.Errorf("%v printed a secret: %s", args, out)
		}
	}
	if out, err := runCmd(t, noEnv, "clients", "--config", good, "list"); err != nil || strings.Contains(out, "shop") {
		t.Fatalf("a client was created with the wrong secret: %v %s", err, out)
	}
}

// Without --config the CLI says it used the built-in defaults and how to
// point it at a deployment.
func TestCLI_NoConfigSaysHowToFix(t *testing.T) {
	for _, args := range [][]string{{"clients", "list"}, {"keys", "list"}} {
		_, err := runCmd(t, noEnv, args...)
		if err == nil {
			t.Fatalf("%v without --config succeeded", args)
		}
		for _, want := range []string{"secret: the system secret is 0 bytes, want at least 32 (set secret, secret_file or WXOIDC_SECRET)",
			"(used no config file (--config not given: built-in defaults and WXOIDC_* environment variables))", "--config FILE", "--admin URL"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%v: error %q lacks %q", args, err, want)
			}
		}
	}
	// With a secret but the default storage path, the failure to open it
	// names the key and the fix too.
	_, err := runCmd(t, envOf(map[string]string{"WXOIDC_SECRET": strings.Repeat("k", 40), "WXOIDC_STORAGE_DSN": "sqlite:///nonexistent-dir/wxoidc.db"}), "clients", "list")
	if err == nil || !strings.Contains(err.Error(), "storage.dsn: open storage sqlite:///nonexistent-dir/wxoidc.db") || !strings.Contains(err.Error(), "--config FILE") {
		t.Fatalf("unopenable default storage: %v", err)
	}
	_, err = runCmd(t, noEnv, "serve", "--check")
	if err == nil || !strings.Contains(err.Error(), "pass --config FILE") {
		t.Fatalf("serve without --config: %v", err)
	}
}

// keys --admin lists and rotates through a running provider's admin API.
func TestKeysCLI_Admin(t *testing.T) {
	store := memory.New()
	km, err := keys.New(store, keys.Config{Secret: []byte(strings.Repeat("k", 40))})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	token := "admin-token-0123456789"
	h, err := admin.New(admin.Config{Clients: store, Keys: km, Secret: []byte(strings.Repeat("k", 40)), Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	env := envOf(map[string]string{"WXOIDC_ADMIN_TOKEN": token})
	out, err := runCmd(t, env, "keys", "--admin", srv.URL, "list")
	if err != nil || strings.Count(out, "active") != 3 {
		t.Fatalf("keys --admin list: %v\n%s", err, out)
	}
	out, err = runCmd(t, env, "keys", "--admin", srv.URL, "rotate", "ES256")
	if err != nil || strings.Count(out, "pending") != 1 || !strings.Contains(out, "ES256") {
		t.Fatalf("keys --admin rotate: %v\n%s", err, out)
	}
	if _, err := runCmd(t, noEnv, "keys", "--admin", srv.URL, "list"); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "invalid_token") {
		t.Fatalf("keys --admin without the token: %v", err)
	}
}

// Config mistakes are named by key path, line and expected type; a
// secret_env names its variable; a relative SQLite path and a malformed
// appid are refused with the fix.
func TestServeCheck_ConfigErrorsNameTheKey(t *testing.T) {
	t.Setenv("WXOIDC_TEST_EMPTY", "")
	base := "issuer: https://id.example.com\nsecret: " + strings.Repeat("s", 32) + "\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown nested key", base + "storage:\n  dns: memory://\n", []string{"storage.dns (line 4): unknown key; did you mean storage.dsn?"}},
		{"unknown key far from any", base + "storage:\n  dns_typo: x\n", []string{"storage.dns_typo (line 4): unknown key (storage has dsn, migrate"}},
		{"wrong type", base + "access_token:\n  lifespan: soon\nstorage:\n  migrate: maybe\n", []string{
			`access_token.lifespan (line 4): want a duration such as 90s, 15m or 720h, got "soon"`,
			`storage.migrate (line 6): want true or false, got "maybe"`}},
		{"scalar for a list", base + "keys:\n  algorithms: RS256\n", []string{`keys.algorithms (line 4): want a list of strings, such as [a, b], got "RS256"`}},
		{"key in a list item", base + "wechat:\n  apps:\n    - appid: wxd0000000000000a1\n      knd: website\n", []string{"wechat.apps[0].knd (line 6): unknown key; did you mean wechat.apps[0].kind?"}},
		{"unset secret_env", base + "storage:\n  dsn: memory://\nwechat:\n  apps:\n    - appid: wxd0000000000000a1\n      kind: miniprogram\n      secret_env: WXOIDC_TEST_EMPTY\n",
			[]string{"wechat.apps[0].secret_env: the environment variable WXOIDC_TEST_EMPTY is unset or empty"}},
		{"unset client_secret_env", base + "storage:\n  dsn: memory://\nclients:\n  - client_id: shop\n    client_secret_env: WXOIDC_TEST_UNSET_VARIABLE\n    redirect_uris: [https://shop.example/cb]\n",
			[]string{"clients[0].client_secret_env: the environment variable WXOIDC_TEST_UNSET_VARIABLE is unset or empty"}},
		{"relative sqlite path", base + "storage:\n  dsn: sqlite://relative.db\n", []string{`storage.dsn: the SQLite path "relative.db" is relative`, "write the absolute path, sqlite:///"}},
		{"malformed appid", base + "storage:\n  dsn: memory://\nwechat:\n  apps:\n    - appid: wx123\n      kind: miniprogram\n      secret: s\n",
			[]string{`wechat.apps[0].appid: "wx123" is not a WeChat appid: wx followed by 16 hexadecimal digits`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, "c.yaml", tc.yaml)
			out, err := runCmd(t, noEnv, "serve", "--config", cfg, "--check")
			if err == nil {
				t.Fatalf("accepted: %s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "struct {") || strings.Contains(err.Error(), "time.Duration") {
				t.Errorf("error shows Go types: %q", err)
			}
		})
	}
	if _, err := os.Stat("relative.db"); err == nil {
		t.Error("--check created relative.db in the working directory")
	}
}
