package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsersCLI drives wxoidc users and wxoidc events on a SQLite
// deployment: table view for people, --json for scripts.
func TestUsersCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	cfg := writeFile(t, "c.yaml", "issuer: https://id.example.com\nsecret: "+strings.Repeat("k", 40)+"\nstorage:\n  dsn: sqlite://"+db+"\n")
	run := func(args ...string) string {
		t.Helper()
		out, err := runCmd(t, noEnv, append([]string{args[0], "--config", cfg}, args[1:]...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	var u struct {
		Sub   string   `json:"sub"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal([]byte(run("users", "create", "--json", "--name", "Alice", "--phone", "+8613800138000", "--external-id", "emp-1", "--role", "viewer")), &u); err != nil || len(u.Sub) != 32 {
		t.Fatalf("create: %v %+v", err, u)
	}
	out := run("users", "list")
	if !strings.Contains(out, "SUB") || !strings.Contains(out, u.Sub) || !strings.Contains(out, "+8613800138000") || !strings.Contains(out, "emp-1") {
		t.Fatalf("list:\n%s", out)
	}
	if out := run("users", "list", "--phone", "+8613900000000"); strings.Contains(out, u.Sub) {
		t.Fatalf("list by another phone:\n%s", out)
	}
	if out := run("users", "disable", u.Sub); !strings.Contains(out, "disabled") {
		t.Fatalf("disable:\n%s", out)
	}
	if out := run("users", "update", u.Sub, "--name", "Alice Li", "--external-id", ""); !strings.Contains(out, "Alice Li") || strings.Contains(out, "emp-1") {
		t.Fatalf("update:\n%s", out)
	}
	if out := run("users", "enable", u.Sub); !strings.Contains(out, "enabled") {
		t.Fatalf("enable:\n%s", out)
	}
	out = run("events", "--sub", u.Sub)
	for _, typ := range []string{"user_created", "user_disabled", "user_updated", "user_enabled"} {
		if !strings.Contains(out, typ) {
			t.Fatalf("events lack %s:\n%s", typ, out)
		}
	}
	if out := run("users", "delete", u.Sub); !strings.Contains(out, "erased "+u.Sub) {
		t.Fatalf("delete:\n%s", out)
	}
	if _, err := runCmd(t, noEnv, "users", "--config", cfg, "get", u.Sub); err == nil || !strings.Contains(err.Error(), "not_found") {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := runCmd(t, noEnv, "users", "--config", cfg, "create", "--phone", "138"); err == nil || !strings.Contains(err.Error(), "phone_number: must be in E.164 form") {
		t.Fatalf("bad phone: %v", err)
	}
}
