package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, getenv, &out, &errb)
	return out.String() + errb.String(), err
}

func TestServeCheck_InvalidConfigNamesTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		wantKeys   []string
	}{
		{"http issuer outside dev", "issuer: http://id.example.com\nsecret: " + strings.Repeat("s", 32) + "\n", nil, []string{"issuer"}},
		{"short secret", "issuer: https://id.example.com\nsecret: short\n", nil, []string{"secret"}},
		{"unknown storage", "issuer: https://id.example.com\nsecret: " + strings.Repeat("s", 32) + "\nstorage:\n  dsn: mongodb://x\n", nil, []string{"storage.dsn"}},
		{"missing app secret", "issuer: https://id.example.com\nsecret: " + strings.Repeat("s", 32) + "\nwechat:\n  apps:\n    - appid: wx1\n      kind: miniprogram\n", nil, []string{"wechat.apps[0].secret"}},
		{"bad env value", "issuer: https://id.example.com\nsecret: " + strings.Repeat("s", 32) + "\n", map[string]string{"WXOIDC_ACCESS_TOKEN_LIFESPAN": "soon"}, []string{"access_token.lifespan", "WXOIDC_ACCESS_TOKEN_LIFESPAN"}},
		{"unknown key", "issuer: https://id.example.com\nisuer: typo\n", nil, []string{"isuer"}},
		{"several problems at once", "issuer: ftp://x/\naccess_token:\n  format: paseto\n", nil, []string{"issuer", "secret", "access_token.format"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, envOf(tc.env), "serve", "--config", writeFile(t, "c.yaml", tc.yaml), "--check")
			if err == nil {
				t.Fatalf("accepted: %s", out)
			}
			for _, k := range tc.wantKeys {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error %q does not name %q", err, k)
				}
			}
		})
	}
}

func TestServeCheck_EnvironmentOverrides(t *testing.T) {
	cfg := writeFile(t, "c.yaml", "issuer: https://id.example.com\n")
	env := map[string]string{
		"WXOIDC_SECRET":          strings.Repeat("x", 40),
		"WXOIDC_STORAGE_DSN":     "memory://",
		"WXOIDC_KEYS_ALGORITHMS": "RS256,ES256",
	}
	out, err := runCmd(t, envOf(env), "serve", "--config", cfg, "--check")
	if err != nil || !strings.Contains(out, "configuration OK") {
		t.Fatalf("%v: %s", err, out)
	}
	c, err := loadConfig(cfg, envOf(env))
	if err != nil || c.Storage.DSN != "memory://" || len(c.Keys.Algorithms) != 2 || c.Secret != env["WXOIDC_SECRET"] {
		t.Fatalf("overrides not applied: %+v %v", c, err)
	}
}

func TestClientsAndKeysCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	cfg := writeFile(t, "c.yaml", "issuer: https://id.example.com\nsecret: "+strings.Repeat("k", 40)+"\nstorage:\n  dsn: sqlite://"+db+"\n")
	out, err := runCmd(t, noEnv, "clients", "--config", cfg, "create", "--id", "shop", "--redirect-uri", "https://shop.example/cb",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid offline_access")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var created map[string]any
	json.Unmarshal([]byte(out), &created)
	secret, _ := created["client_secret"].(string)
	if created["client_id"] != "shop" || len(secret) < 43 {
		t.Fatalf("create printed %s", out)
	}
	// Shown once: never again, and only its hash is stored.
	out, _ = runCmd(t, noEnv, "clients", "--config", cfg, "get", "shop")
	if strings.Contains(out, secret) || strings.Contains(out, "client_secret\"") {
		t.Fatalf("get shows the secret: %s", out)
	}
	raw, _ := os.ReadFile(db)
	wal, _ := os.ReadFile(db + "-wal")
	if bytes.Contains(raw, []byte(secret)) || bytes.Contains(wal, []byte(secret)) {
		t.Fatal("the client secret is stored in plain text")
	}
	if _, err := runCmd(t, noEnv, "clients", "--config", cfg, "update", "shop", "--redirect-uri", "ftp://bad"); err == nil || !strings.Contains(err.Error(), "invalid_redirect_uri") {
		t.Fatalf("bad redirect accepted: %v", err)
	}
	if out, err := runCmd(t, noEnv, "clients", "--config", cfg, "update", "shop", "--name", "Shop"); err != nil || !strings.Contains(out, `"client_name": "Shop"`) {
		t.Fatalf("update: %v %s", err, out)
	}
	if out, err := runCmd(t, noEnv, "clients", "--config", cfg, "list"); err != nil || !strings.Contains(out, "shop") {
		t.Fatalf("list: %v %s", err, out)
	}
	if _, err := runCmd(t, noEnv, "clients", "--config", cfg, "delete", "shop"); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, noEnv, "clients", "--config", cfg, "get", "shop"); err == nil {
		t.Fatal("deleted client still there")
	}

	// A deployment's first start creates its keys; rotate on fresh storage
	// does that too, then adds the pending ES256 key.
	out, err = runCmd(t, noEnv, "keys", "--config", cfg, "rotate", "ES256")
	if err != nil || !strings.Contains(out, "pending") {
		t.Fatalf("keys rotate: %v\n%s", err, out)
	}
	out, err = runCmd(t, noEnv, "keys", "--config", cfg, "list")
	if err != nil || strings.Count(out, "active") != 3 || strings.Count(out, "pending") != 1 {
		t.Fatalf("keys list after rotate: %v\n%s", err, out)
	}
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDev runs `wxoidc dev` until the test ends or stop is called.
func startDev(t *testing.T, data string) (issuer string, stop func()) {
	t.Helper()
	return startDevAt(t, data, freeAddr(t))
}

func startDevAt(t *testing.T, data, addr string, extra ...string) (issuer string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		args := append([]string{"dev", "--addr", addr, "--data", data, "--admin-addr", freeAddr(t)}, extra...)
		done <- run(ctx, args, noEnv, &syncWriter{w: &out}, &syncWriter{w: &bytes.Buffer{}})
	}()
	issuer = "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dev did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	}
	t.Cleanup(stop)
	return issuer, stop
}

// syncWriter discards the dev banner and logs (run writes them from
// another goroutine).
type syncWriter struct{ w *bytes.Buffer }

func (s *syncWriter) Write(p []byte) (int, error) { return len(p), nil }

func miniProgramLogin(t *testing.T, issuer, user string) map[string]any {
	t.Helper()
	resp, err := http.PostForm(issuer+"/wechat-sim/sim/login", url.Values{"appid": {devMiniProgramAppID}, "user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	resp, err = http.PostForm(issuer+"/oauth2/token", url.Values{"grant_type": {"urn:wxoidc:params:oauth:grant-type:wechat-jscode"},
		"client_id": {devMiniClient}, "js_code": {c.Code}, "scope": {"openid offline_access phone wechat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 {
		t.Fatalf("grant: %d %v", resp.StatusCode, body)
	}
	return body
}

func userinfo(t *testing.T, issuer, token string) (int, map[string]any) {
	req, _ := http.NewRequest(http.MethodGet, issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestDev_RestartKeepsUsersAndTokens(t *testing.T) {
	data := t.TempDir()
	issuer, stop := startDev(t, data)
	before := miniProgramLogin(t, issuer, "alice")
	status, ui := userinfo(t, issuer, before["access_token"].(string))
	if status != 200 {
		t.Fatalf("userinfo: %d %v", status, ui)
	}
	sub := ui["sub"]
	stop()

	// Same data directory, same port: users, keys and tokens survive.
	issuer2, _ := startDevAt(t, data, strings.TrimPrefix(issuer, "http://"))
	if status, ui2 := userinfo(t, issuer2, before["access_token"].(string)); status != 200 || ui2["sub"] != sub {
		t.Fatalf("access token after restart: %d %v", status, ui2)
	}
	resp, err := http.PostForm(issuer2+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {devMiniClient}, "refresh_token": {before["refresh_token"].(string)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("refresh after restart: %d", resp.StatusCode)
	}
	after := miniProgramLogin(t, issuer2, "alice")
	if _, ui3 := userinfo(t, issuer2, after["access_token"].(string)); ui3["sub"] != sub {
		t.Fatalf("alice's sub changed across a restart: %v vs %v", ui3["sub"], sub)
	}
	if _, err := os.Stat(filepath.Join(data, "secret")); err != nil {
		t.Fatal("no secret kept in the data directory")
	}
}

func TestDev_ConfigOverlay(t *testing.T) {
	cfg := writeFile(t, "overlay.yaml", "access_token:\n  format: opaque\n")
	issuer, _ := startDevAt(t, t.TempDir(), freeAddr(t), "--config", cfg)
	body := miniProgramLogin(t, issuer, "bob")
	if at := body["access_token"].(string); strings.HasPrefix(at, "eyJ") {
		t.Fatalf("--config overlay ignored: access token %q is a JWT", at)
	}
	if status, ui := userinfo(t, issuer, body["access_token"].(string)); status != 200 || ui["sub"] == nil {
		t.Fatalf("userinfo with the overlay: %d %v", status, ui)
	}
}
