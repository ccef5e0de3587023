package main

import (
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The dev banner's links open and its commands work as printed: the
// Mini Program grant, userinfo and refresh (run with bash and curl), and
// the admin commands.
func TestDev_BannerWorksAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed")
	}
	addr, adminAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLockedBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--addr", addr, "--data", t.TempDir(), "--admin-addr", adminAddr}, noEnv, out, &syncWriter{})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Try the Mini Program grant") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	banner := out.String()

	m := regexp.MustCompile(`WeChat +(\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("banner names no WeChat link:\n%s", banner)
	}
	resp, err := http.Get(m[1])
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the banner's WeChat link %s: %v %v", m[1], err, resp)
	}
	resp.Body.Close()

	script := banner[strings.Index(banner, "Try the Mini Program grant"):]
	script = script[:strings.Index(script, "Manage clients")]
	script = script[strings.Index(script, "\n"):]
	cmd := exec.Command("bash", "-e", "-c", script)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the banner's commands failed: %v\n%s\n%s", err, script, got)
	}
	if strings.Count(string(got), `"access_token"`) != 2 || !strings.Contains(string(got), `"sub"`) {
		t.Fatalf("grant, userinfo and refresh did not all answer:\n%s", got)
	}

	for _, line := range []string{"wxoidc clients --admin http://" + adminAddr + " list", "wxoidc keys --admin http://" + adminAddr + " list"} {
		if !strings.Contains(banner, line) {
			t.Fatalf("banner lacks %q", line)
		}
		args := strings.Fields(line)[1:]
		if o, err := runCmd(t, noEnv, args...); err != nil {
			t.Fatalf("%s: %v %s", line, err, o)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
