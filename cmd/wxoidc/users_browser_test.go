package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

const usersAdminToken = "users-browser-test-admin-token-0123456789"

// simConfirm selects the simulator's confirm button of user on its QR page.
func simConfirm(user string) chromedp.CSS {
	return chromedp.CSS(`form:has(input[name="user"][value="` + user + `"]) button`)
}

// disabledUser: a person signs in to the demo in the browser by website QR
// login (the simulator's page); an operator disables them through the
// admin API (of the second replica, with replicas); the browser's next
// authorize finds no session any more, and when the person signs in with
// WeChat again the provider shows the page that says the account is
// disabled, whose way back gives the demo access_denied.
func disabledUser(t *testing.T, lang string, replicas int) {
	d := startDevRun(t, devRunOptions{
		replicas:  replicas,
		sim:       wechattest.Config{AnyUserAgent: true},
		configure: func(cfg *Config) { cfg.Admin.Token = usersAdminToken },
	})
	admin := d.admin(t, replicas)
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)

	var sub, loc, htmlLang string
	steps(t, ctx, "sign in by QR login",
		chromedp.Navigate(d.issuer+"/demo"),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="qr"]`)),
		chromedp.Click(chromedp.CSS(`a[data-login="qr"]`)),
		chromedp.WaitVisible(simConfirm("alice")),
		store(&loc, chromedp.Location()),
		shots.shot("wechat-qr-page"),
		chromedp.Click(simConfirm("alice")),
		chromedp.WaitVisible(chromedp.ID("claims")),
		store(&sub, chromedp.Text(chromedp.ID("sub"))),
		shots.shot("demo-signed-in"),
	)
	if !strings.Contains(loc, "/wechat-sim/connect/qrconnect") || sub == "" {
		t.Fatalf("signed in through %s as %q", loc, sub)
	}

	// The operator disables alice.
	req, _ := http.NewRequest(http.MethodPatch, admin+"/admin/users/"+url.PathEscape(sub), strings.NewReader(`{"disabled": true}`))
	req.Header.Set("Authorization", "Bearer "+usersAdminToken)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc struct{ Disabled bool }
	if json.Unmarshal(b, &doc); resp.StatusCode != http.StatusOK || !doc.Disabled {
		t.Fatalf("PATCH disabled: %d %s", resp.StatusCode, b)
	}

	// The next authorize (the demo signs in afresh): the browser's
	// session has ended, so the provider asks how to sign in instead of
	// signing alice in.
	qrPages := d.sim.Calls("/connect/qrconnect")
	var message, back string
	steps(t, ctx, "the next authorize",
		chromedp.Navigate(d.issuer+"/demo/login"),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="qr"]`)),
		store(&loc, chromedp.Location()),
		shots.shot("login-page-again"),
	)
	if strings.Contains(loc, "/demo") {
		t.Fatalf("a disabled user's browser was signed in silently (at %s)", loc)
	}
	steps(t, ctx, "alice signs in again: the account is disabled",
		chromedp.Click(chromedp.CSS(`a[data-login="qr"]`)),
		chromedp.WaitVisible(simConfirm("alice")),
		chromedp.Click(simConfirm("alice")),
		chromedp.WaitVisible(chromedp.CSS(`[data-error="errDisabled"]`)),
		store(&message, chromedp.Text(chromedp.CSS(`[data-error="errDisabled"]`))),
		store(&back, chromedp.Text(chromedp.CSS(`[data-action="back"]`))),
		store(&htmlLang, chromedp.Evaluate[string]("document.documentElement.lang")),
		shots.shot("account-disabled"),
	)
	if d.sim.Calls("/connect/qrconnect") == qrPages {
		t.Fatal("the disabled page came without a WeChat sign-in")
	}
	want := map[string][2]string{
		"zh-CN": {"你的账号已被停用", "返回"},
		"en":    {"Your account is disabled", "Back"},
	}[lang]
	if htmlLang != lang || !strings.Contains(message, want[0]) || !strings.Contains(back, want[1]) {
		t.Fatalf("disabled page in %q: %q, button %q; want %s %q %q", htmlLang, message, back, lang, want[0], want[1])
	}

	// The way back tells the client: access_denied (SPEC §10).
	var problem string
	steps(t, ctx, "back to the app",
		chromedp.Click(chromedp.CSS(`[data-action="back"]`)),
		chromedp.WaitVisible(chromedp.ID("problem")),
		store(&problem, chromedp.Text(chromedp.ID("problem"))),
		store(&loc, chromedp.Location()),
		shots.shot("demo-access-denied"),
	)
	if !strings.Contains(problem, "access_denied") || !strings.HasPrefix(loc, d.issuer+"/demo/callback") {
		t.Fatalf("the demo at %s says %q; want access_denied", loc, problem)
	}
}

// TestBrowser_DisabledUser: SPEC §10, issue 11 — an admin disables a web
// user whose browser is signed in, and the next authorize ends on the
// disabled page (zh-CN and English); on two replicas the admin API of the
// second disables the user the first signed in.
func TestBrowser_DisabledUser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Run("zh-CN", func(t *testing.T) { disabledUser(t, "zh-CN", 0) })
	t.Run("en", func(t *testing.T) { disabledUser(t, "en", 0) })
	t.Run("replicas en", func(t *testing.T) { disabledUser(t, "en", 1) })
}
