package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/provider/console"
)

func TestConfig_Console(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"default", nil, ""},
		{"https", map[string]string{"WXOIDC_CONSOLE_URL": "https://admin.example.com/console/"}, ""},
		{"loopback http", map[string]string{"WXOIDC_CONSOLE_URL": "http://127.0.0.1:8081/console/"}, ""},
		{"public http", map[string]string{"WXOIDC_CONSOLE_URL": "http://admin.example.com/console/"}, "console.url"},
		{"wrong path", map[string]string{"WXOIDC_CONSOLE_URL": "https://admin.example.com/"}, "console.url"},
		{"relative", map[string]string{"WXOIDC_CONSOLE_URL": "/console/"}, "console.url"},
		{"lifetime", map[string]string{"WXOIDC_CONSOLE_SESSION_LIFETIME": "0s"}, "console.session_lifetime"},
		{"off", map[string]string{"WXOIDC_CONSOLE_ENABLED": "false", "WXOIDC_CONSOLE_URL": "nonsense"}, ""},
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

// TestConsole_OnAdminListener checks that serve mounts the console beside
// the admin API and registers its client for the listener's address.
func TestConsole_OnAdminListener(t *testing.T) {
	r := startRunning(t, nil)
	c, err := r.st.store.Client(context.Background(), console.ClientID)
	if err != nil {
		t.Fatalf("the console's client is not registered: %v", err)
	}
	if want := r.admin + "/console/callback"; len(c.RedirectURIs) != 1 || c.RedirectURIs[0] != want || !c.IsPublic() || !c.SkipConsent {
		t.Fatalf("console client %+v, want a public first-party client redirected to %s", c, want)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(r.admin + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
		t.Fatalf("GET /console/: %d %s, want a redirect to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = http.Get(r.admin + "/console/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("GET /console/login: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	// The admin API is still there, beside it.
	req, _ := http.NewRequest(http.MethodGet, r.admin+"/admin/keys", nil)
	req.Header.Set("Authorization", "Bearer "+opsAdminToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/keys: %d", resp.StatusCode)
	}
	if !r.log.waitContains(`"route":"/console/login"`) {
		t.Errorf("request logs do not name the console's route")
	}
}
