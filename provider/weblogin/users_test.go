package weblogin_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// TestQRLogin_DisabledUser: disabling a signed-in web user ends their
// session at once; signing in again ends on a page that says the account
// is disabled, whose way back gives the client access_denied.
func TestQRLogin_DisabledUser(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	sub := e.redeem(conf, v, p).Subject

	if err := e.store.SetUserDisabled(context.Background(), sub, true); err != nil {
		t.Fatal(err)
	}
	qr := e.sim.Calls(wechat.PathQRConnect)
	p, _ = b.follow(authURL(conf, oauth2.GenerateVerifier()))
	if e.sim.Calls(wechat.PathQRConnect) == qr {
		t.Fatal("the browser session of a disabled user still signs in")
	}
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `data-error="errDisabled"`) || !strings.Contains(p.body, "account is disabled") {
		t.Fatalf("disabled user: %d %.400s", p.status, p.body)
	}
	back := regexp.MustCompile(`href="([^"]+)" data-action="back"`).FindStringSubmatch(p.body)
	if back == nil {
		t.Fatalf("no way back to the app: %s", p.body)
	}
	u, err := url.Parse(html.UnescapeString(back[1]))
	if err != nil || !strings.HasPrefix(u.String(), firstRedirect) || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != stateFromTheTest {
		t.Fatalf("back link %s: want %s with error=access_denied and the state", back[1], firstRedirect)
	}
}

// TestRegistrationExisting_MiniProgramThenQR: in login-only mode a
// pre-provisioned person signs in first through the Mini Program with the
// phone number the operator entered, then by QR login on the web, and
// lands on the same sub (through the unionid). A stranger's QR login ends
// on the page that says registration is closed.
func TestRegistrationExisting_MiniProgramThenQR(t *testing.T) {
	var store storage.Storage
	e := newEnv(t, func(c *weblogin.Config) {
		store = c.Storage
		c.Users = &provider.Users{Storage: c.Storage, Registration: provider.RegistrationExisting}
	})
	ctx := context.Background()
	if err := store.CreateUser(ctx, storage.User{Subject: "pre-alice", Name: "Alice", PhoneNumber: "+8613800138000"}); err != nil {
		t.Fatal(err)
	}
	code, err := e.sim.LoginCode(miniApp, "alice")
	if err != nil {
		t.Fatal(err)
	}
	phoneCode, err := e.sim.PhoneCode(miniApp, "alice", "13800138000")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(e.issuer+"/oauth2/token", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {miniClient}, "js_code": {code}, "phone_code": {phoneCode}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Mini Program sign-in with the pre-provisioned phone: %d", resp.StatusCode)
	}

	e.sim.SetAutoConfirm("alice")
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := e.browser(desktopUA).follow(authURL(conf, v))
	if sub := e.redeem(conf, v, p).Subject; sub != "pre-alice" {
		t.Fatalf("QR login: sub %s, want pre-alice", sub)
	}

	e.sim.SetAutoConfirm("bob")
	p, _ = e.browser(desktopUA).follow(authURL(conf, oauth2.GenerateVerifier()))
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `data-error="errNoAccount"`) || !strings.Contains(p.body, "access_denied") {
		t.Fatalf("stranger: %d %.400s", p.status, p.body)
	}
}

// TestAccountPage_DeleteMyAccount: the account page offers "Delete my
// account"; a confirmation page comes first, with a CSRF-bound form; the
// erasure needs a recent sign-in and ends the session.
func TestAccountPage_DeleteMyAccount(t *testing.T) {
	var skew atomic.Int64
	var store storage.Storage
	e := newEnv(t, func(c *weblogin.Config) {
		store = c.Storage
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	e.sim.SetAutoConfirm("carol")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	sub := e.redeem(conf, v, p).Subject

	page := b.get(e.issuer + weblogin.PathConsents)
	if !strings.Contains(page.body, `data-action="delete-account"`) || !strings.Contains(page.body, weblogin.PathAccountDelete) {
		t.Fatalf("account page without Delete my account: %.600s", page.body)
	}
	confirm := b.get(e.issuer + weblogin.PathAccountDelete)
	m := reHidden.FindStringSubmatch(confirm.body)
	if confirm.status != http.StatusOK || m == nil || !strings.Contains(confirm.body, "cannot be undone") {
		t.Fatalf("confirmation page: %d %.600s", confirm.status, confirm.body)
	}
	if p := b.post(e.issuer+weblogin.PathAccountDelete, url.Values{"csrf_token": {"forged"}}, nil); p.status != http.StatusForbidden {
		t.Fatalf("forged form: %d", p.status)
	}
	skew.Store(int64(11 * time.Minute))
	if p := b.post(e.issuer+weblogin.PathAccountDelete, url.Values{"csrf_token": {m[1]}}, nil); p.status != http.StatusForbidden || !strings.Contains(p.body, "errRecentSignIn") || !strings.Contains(p.body, "within the last 10 minutes.") {
		t.Fatalf("old sign-in: %d %.300s", p.status, p.body)
	}
	if _, err := store.User(context.Background(), sub); err != nil {
		t.Fatalf("a refused erasure erased: %v", err)
	}
	skew.Store(0)
	p = b.post(e.issuer+weblogin.PathAccountDelete, url.Values{"csrf_token": {m[1]}}, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, `data-status="account-deleted"`) {
		t.Fatalf("delete: %d %.300s", p.status, p.body)
	}
	if _, err := store.User(context.Background(), sub); err == nil {
		t.Fatal("the user survived")
	}
	if page := b.get(e.issuer + weblogin.PathConsents); page.status != http.StatusUnauthorized {
		t.Fatalf("still signed in after erasure: %d", page.status)
	}
}
