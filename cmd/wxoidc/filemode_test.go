package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfig_RefusesLooseSecretFiles: a secret file readable by group or
// others is refused with the key and the fix; insecure_secret_files
// accepts it (serve then warns).
func TestConfig_RefusesLooseSecretFiles(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("s", 40)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secret, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.Issuer = "https://id.example.com"
	cfg.SecretFile = secret
	cfg.Storage.DSN = "memory://"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "secret_file: "+secret+" is accessible to group or others (mode 0644): run chmod 600") {
		t.Fatalf("loose secret_file: %v", err)
	}
	cfg.InsecureSecretFiles = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with insecure_secret_files: %v", err)
	}
	cfg.InsecureSecretFiles = false
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a 0600 secret file: %v", err)
	}
}

// TestDev_TightensDataDir: dev makes an existing data directory private.
func TestDev_TightensDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	for _, name := range []string{"wxoidc.db", "wxoidc.db-wal", "secret"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o644)
	}
	if err := tightenDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %04o, want 0700", fi.Mode().Perm())
	}
	for _, name := range []string{"wxoidc.db", "wxoidc.db-wal", "secret"} {
		if fi, _ := os.Stat(filepath.Join(dir, name)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
}

// TestDev_RefusesNonLoopbackAddr: dev, which mounts the simulator and
// prints secrets, listens beyond this machine only when asked to.
func TestDev_RefusesNonLoopbackAddr(t *testing.T) {
	for _, addr := range []string{":8080", "0.0.0.0:8080", "192.0.2.1:8080", "[::]:8080"} {
		_, err := runCmd(t, noEnv, "dev", "--addr", addr, "--data", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") || !strings.Contains(err.Error(), "--allow-non-loopback") {
			t.Fatalf("dev --addr %s: %v", addr, err)
		}
	}
}

// TestHSTS_WhenServingTLS: a listener that terminates TLS itself tells
// browsers to keep to https.
func TestHSTS_WhenServingTLS(t *testing.T) {
	rec := httptest.NewRecorder()
	hsts(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://id.example.com/", nil))
	if got := rec.Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Fatalf("Strict-Transport-Security %q", got)
	}
}
