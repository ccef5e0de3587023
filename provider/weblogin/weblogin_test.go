package weblogin_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// TestQRLogin_SSOAndMiniProgramSub: a desktop browser signs in by website
// QR login; the sub equals the Mini Program grant's; a second authorization
// needs no second scan.
func TestQRLogin_SSOAndMiniProgramSub(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	v := oauth2.GenerateVerifier()
	p, seen := b.follow(authURL(conf, v))
	if !strings.Contains(strings.Join(seen, " "), e.issuer+"/login?") || !strings.Contains(strings.Join(seen, " "), wechat.PathQRConnect) {
		t.Fatalf("want /login then the QR page, visited %v", seen)
	}
	for _, u := range seen {
		if strings.Contains(u, wechat.PathQRConnect) {
			q, _ := url.Parse(u)
			if q.Query().Get("appid") != websiteApp || q.Query().Get("scope") != wechat.ScopeLogin {
				t.Fatalf("QR login URL %s: want website appid and snsapi_login", u)
			}
		}
	}
	idt := e.redeem(conf, v, p)
	var claims struct {
		Name     string  `json:"name"`
		AuthTime float64 `json:"auth_time"`
	}
	idt.Claims(&claims)
	if claims.Name != "Alice" || claims.AuthTime == 0 {
		t.Fatalf("claims %+v: want name Alice and auth_time", claims)
	}
	if mp := e.miniProgramSub("alice"); mp != idt.Subject {
		t.Fatalf("web sub %s, Mini Program sub %s: want the same user", idt.Subject, mp)
	}

	// SSO: no second trip to WeChat.
	qr := e.sim.Calls(wechat.PathQRConnect)
	v2 := oauth2.GenerateVerifier()
	p, _ = b.follow(authURL(conf, v2))
	idt2 := e.redeem(conf, v2, p)
	if idt2.Subject != idt.Subject || e.sim.Calls(wechat.PathQRConnect) != qr {
		t.Fatalf("second sign-in: sub %s (want %s), QR page calls %d → %d", idt2.Subject, idt.Subject, qr, e.sim.Calls(wechat.PathQRConnect))
	}
}

// TestCallback_State: a tampered, replayed, missing or foreign state ends
// at an error page, not at the client and not signed in.
func TestCallback_State(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	// Stop at the QR page (no auto-confirm) to get a real state.
	p, seen := b.follow(authURL(conf, oauth2.GenerateVerifier()))
	if p.status != http.StatusOK || !strings.Contains(seen[len(seen)-1], wechat.PathQRConnect) {
		t.Fatalf("want the QR page, got %d after %v", p.status, seen)
	}
	qrURL, _ := url.Parse(seen[len(seen)-1])
	state := qrURL.Query().Get("state")
	callback := qrURL.Query().Get("redirect_uri")
	if callback != e.issuer+"/login/wechat/callback" || len(state) < 32 {
		t.Fatalf("redirect_uri %q state length %d", callback, len(state))
	}
	code := func() string {
		// What the QR page's confirm does: the simulator issues a code.
		resp := b.post(e.simURL+wechat.PathQRConnect, url.Values{
			"appid": {websiteApp}, "redirect_uri": {callback}, "response_type": {"code"},
			"scope": {wechat.ScopeLogin}, "state": {state}, "user": {"alice"}, "action": {"confirm"},
		}, nil)
		return resp.location.Query().Get("code")
	}
	// Change the last character (to one it is not: a fixed suffix would
	// sometimes equal the real one).
	tampered := state[:len(state)-1] + "0"
	if tampered == state {
		tampered = state[:len(state)-1] + "1"
	}
	cases := []struct {
		name  string
		b     *browser
		state string
		want  string
	}{
		{"tampered", b, tampered, "errStateExpired"},
		{"missing", b, "", "errNoState"},
		{"other browser", e.browser(desktopUA), state, "errOtherBrowser"},
		{"replayed", b, state, "errStateExpired"}, // consumed by "other browser"
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"code": {code()}}
			if tc.state != "" {
				q.Set("state", tc.state)
			}
			p := tc.b.get(callback + "?" + q.Encode())
			if p.status != http.StatusBadRequest || p.location != nil || !strings.Contains(p.body, `data-error="`+tc.want+`"`) {
				t.Fatalf("status %d location %v: want 400 page %s; body %.400s", p.status, p.location, tc.want, p.body)
			}
		})
	}
	// Nobody got signed in: prompt=none is login_required.
	p = b.get(authURL(conf, oauth2.GenerateVerifier(), "prompt", "none"))
	e.clientError(firstRedirect, p, "login_required")
}

// TestCallback_Replay: a callback that worked cannot be replayed.
func TestCallback_Replay(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("bob")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	_, seen := b.follow(authURL(conf, oauth2.GenerateVerifier()))
	var cb string
	for _, u := range seen {
		if strings.Contains(u, "/login/wechat/callback") {
			cb = u
		}
	}
	if cb == "" {
		t.Fatalf("no callback in %v", seen)
	}
	p := b.get(cb)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "errStateExpired") {
		t.Fatalf("replayed callback: status %d, body %.300s", p.status, p.body)
	}
}

// TestQRLogin_Cancel: refusing at WeChat is access_denied at the client.
func TestQRLogin_Cancel(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	_, seen := b.follow(authURL(conf, oauth2.GenerateVerifier()))
	qrURL, _ := url.Parse(seen[len(seen)-1])
	q := qrURL.Query()
	resp := b.post(e.simURL+wechat.PathQRConnect, url.Values{
		"appid": {q.Get("appid")}, "redirect_uri": {q.Get("redirect_uri")}, "response_type": {"code"},
		"scope": {q.Get("scope")}, "state": {q.Get("state")}, "action": {"cancel"},
	}, nil)
	p, _ := b.follow(resp.location.String())
	e.clientError(firstRedirect, p, "access_denied")
}

// TestPrompt: prompt=none without a session; prompt=login and max_age force
// a new WeChat login; unregistered redirect URIs are never redirected to.
func TestPrompt(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	e.clientError(firstRedirect, b.get(authURL(conf, oauth2.GenerateVerifier(), "prompt", "none")), "login_required")

	e.sim.SetAutoConfirm("carol")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	first := e.redeem(conf, v, p)

	// prompt=none with a session works.
	v = oauth2.GenerateVerifier()
	e.redeem(conf, v, b.get(authURL(conf, v, "prompt", "none")))

	for _, extra := range [][]string{{"prompt", "login"}, {"max_age", "0"}, {"max_age", "1"}} {
		if extra[1] == "1" {
			time.Sleep(2100 * time.Millisecond) // auth_time has whole seconds
		}
		qr := e.sim.Calls(wechat.PathQRConnect)
		v = oauth2.GenerateVerifier()
		p, _ = b.follow(authURL(conf, v, extra...))
		idt := e.redeem(conf, v, p)
		if e.sim.Calls(wechat.PathQRConnect) != qr+1 || idt.Subject != first.Subject {
			t.Fatalf("%v: want one new WeChat login as the same user", extra)
		}
	}
	// max_age that the session satisfies: no new login.
	qr := e.sim.Calls(wechat.PathQRConnect)
	v = oauth2.GenerateVerifier()
	p, _ = b.follow(authURL(conf, v, "max_age", "3600"))
	e.redeem(conf, v, p)
	if e.sim.Calls(wechat.PathQRConnect) != qr {
		t.Fatal("max_age=3600 after a fresh login went to WeChat again")
	}

	// An unregistered redirect URI: an error page, no redirect.
	bad := e.config(firstParty, firstSecret, "https://evil.example/cb", "openid")
	p = b.get(authURL(bad, oauth2.GenerateVerifier()))
	if p.status < 400 || p.location != nil {
		t.Fatalf("unregistered redirect_uri: status %d location %v", p.status, p.location)
	}
}

// consentPage runs an authorization of the third-party client and returns
// the consent page.
func consentForm(t *testing.T, p page) url.Values {
	t.Helper()
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="consent"`) {
		t.Fatalf("want the consent page, got %d %v %.300s", p.status, p.location, p.body)
	}
	form := url.Values{}
	for _, name := range []string{"consent", "csrf_token"} {
		i := strings.Index(p.body, `name="`+name+`" value="`)
		rest := p.body[i+len(`name="`+name+`" value="`):]
		form.Set(name, rest[:strings.Index(rest, `"`)])
	}
	return form
}

// TestConsent: third-party clients get a consent page whose form needs the
// CSRF token; the decision is remembered and can be withdrawn; prompt=none
// without consent is consent_required; deny is access_denied.
func TestConsent(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	b := e.browser(desktopUA)
	third := e.config(thirdParty, thirdSecret, thirdRedirect, "openid", "phone")

	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(third, v, "ui_locales", "zh-CN"))
	form := consentForm(t, p)
	if !strings.Contains(p.body, "授权确认") || !strings.Contains(p.body, "Third Party App") || !strings.Contains(p.body, `data-scope="phone"`) {
		t.Fatalf("consent page (zh) lacks title, client or scopes: %.800s", p.body)
	}
	action := e.issuer + "/login/consent"

	// Without the CSRF token, or from another site: refused.
	noToken := url.Values{"consent": form["consent"], "action": {"allow"}}
	if p := b.post(action, noToken, nil); p.status != http.StatusForbidden {
		t.Fatalf("consent without CSRF token: status %d", p.status)
	}
	crossSite := url.Values{"consent": form["consent"], "csrf_token": form["csrf_token"], "action": {"allow"}}
	if p := b.post(action, crossSite, http.Header{"Origin": {"https://evil.example"}}); p.status != http.StatusForbidden {
		t.Fatalf("cross-site consent post: status %d", p.status)
	}
	// Another browser (no binding cookie) with a stolen token and id.
	if p := e.browser(desktopUA).post(action, crossSite, nil); p.status != http.StatusForbidden {
		t.Fatalf("consent from another browser: status %d", p.status)
	}

	form.Set("action", "allow")
	p, _ = b.follow(e.issuer + "/login/consent") // GET is not served
	if p.status != http.StatusMethodNotAllowed && p.status != http.StatusNotFound {
		t.Fatalf("GET consent: status %d", p.status)
	}
	p = b.post(action, form, http.Header{"Origin": {e.issuer}})
	p, _ = b.follow(p.location.String())
	e.redeem(third, v, p)

	// Remembered: prompt=none works, no page.
	v = oauth2.GenerateVerifier()
	e.redeem(third, v, b.get(authURL(third, v, "prompt", "none")))
	// A new scope needs consent again.
	more := e.config(thirdParty, thirdSecret, thirdRedirect, "openid", "phone", "profile")
	e.clientError(thirdRedirect, b.get(authURL(more, oauth2.GenerateVerifier(), "prompt", "none")), "consent_required")

	// Withdraw it on the consents page.
	p = b.get(e.issuer + "/login/consents")
	if !strings.Contains(p.body, "Third Party App") {
		t.Fatalf("consents page lacks the client: %.500s", p.body)
	}
	i := strings.Index(p.body, `name="csrf_token" value="`)
	tok := p.body[i+len(`name="csrf_token" value="`):]
	tok = tok[:strings.Index(tok, `"`)]
	if p := b.post(e.issuer+"/login/consents", url.Values{"client_id": {thirdParty}}, nil); p.status != http.StatusForbidden {
		t.Fatalf("withdraw without CSRF token: status %d", p.status)
	}
	if p := b.post(e.issuer+"/login/consents", url.Values{"client_id": {thirdParty}, "csrf_token": {tok}}, nil); p.status != http.StatusSeeOther {
		t.Fatalf("withdraw: status %d %.300s", p.status, p.body)
	}
	if _, err := e.store.Consent(context.Background(), "x", thirdParty); err == nil {
		t.Fatal("unexpected consent")
	}
	e.clientError(thirdRedirect, b.get(authURL(third, oauth2.GenerateVerifier(), "prompt", "none")), "consent_required")

	// Deny.
	p, _ = b.follow(authURL(third, oauth2.GenerateVerifier(), "ui_locales", "en"))
	form = consentForm(t, p)
	if !strings.Contains(p.body, "Allow access?") {
		t.Fatalf("ui_locales=en: %.300s", p.body)
	}
	form.Set("action", "deny")
	e.clientError(thirdRedirect, b.post(action, form, nil), "access_denied")

	// First-party clients never see it.
	first := e.config(firstParty, firstSecret, firstRedirect, "openid", "phone")
	v = oauth2.GenerateVerifier()
	e.redeem(first, v, b.get(authURL(first, v, "prompt", "none")))
}

// TestLogout: RP-initiated logout ends the login session; unregistered
// post_logout_redirect_uri is refused and leaves it.
func TestLogout(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	code := p.location.Query().Get("code")
	tok, err := conf.Exchange(e.ctx, code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	hint := tok.Extra("id_token").(string)

	bad := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"s1"}}
	if p := b.get(e.issuer + "/oauth2/logout?" + bad.Encode()); p.status != http.StatusBadRequest || p.location != nil {
		t.Fatalf("unregistered post_logout_redirect_uri: status %d location %v", p.status, p.location)
	}
	v = oauth2.GenerateVerifier()
	e.redeem(conf, v, b.get(authURL(conf, v, "prompt", "none"))) // still signed in

	good := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {firstLogout}, "state": {"bye-123"}}
	p = b.get(e.issuer + "/oauth2/logout?" + good.Encode())
	if p.location == nil || p.location.String() != firstLogout+"?state=bye-123" {
		t.Fatalf("logout: status %d location %v", p.status, p.location)
	}
	e.clientError(firstRedirect, b.get(authURL(conf, oauth2.GenerateVerifier(), "prompt", "none")), "login_required")
}

// TestWeChatBrowser: inside WeChat the official account is used: a
// snsapi_base round, then snsapi_userinfo for a person not linked yet; the
// next time snsapi_base alone. The sub is the same as on the website.
func TestWeChatBrowser(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	web := e.browser(desktopUA)
	v := oauth2.GenerateVerifier()
	p, _ := web.follow(authURL(conf, v))
	webSub := e.redeem(conf, v, p).Subject

	scopes := func(seen []string) []string {
		var out []string
		for _, u := range seen {
			if strings.Contains(u, wechat.PathOAuth2Authorize) {
				q, _ := url.Parse(u)
				if q.Query().Get("appid") != officialApp {
					t.Fatalf("official authorize with appid %s", q.Query().Get("appid"))
				}
				out = append(out, q.Query().Get("scope"))
			}
			if strings.Contains(u, wechat.PathQRConnect) {
				t.Fatal("the WeChat browser was sent to QR login")
			}
		}
		return out
	}
	wx := e.browser(wechatUA)
	v = oauth2.GenerateVerifier()
	p, seen := wx.follow(authURL(conf, v))
	if got := strings.Join(scopes(seen), ","); got != "snsapi_base,snsapi_userinfo" {
		t.Fatalf("first in-WeChat login scopes %s", got)
	}
	if sub := e.redeem(conf, v, p).Subject; sub != webSub {
		t.Fatalf("in-WeChat sub %s, website sub %s", sub, webSub)
	}
	wx2 := e.browser(wechatUA)
	v = oauth2.GenerateVerifier()
	p, seen = wx2.follow(authURL(conf, v))
	if got := strings.Join(scopes(seen), ","); got != "snsapi_base" {
		t.Fatalf("second in-WeChat login scopes %s, want silent snsapi_base", got)
	}
	e.redeem(conf, v, p)

	// profile asks for snsapi_userinfo at once.
	wx3 := e.browser(wechatUA)
	pc := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	v = oauth2.GenerateVerifier()
	p, seen = wx3.follow(authURL(pc, v))
	if got := strings.Join(scopes(seen), ","); got != "snsapi_userinfo" {
		t.Fatalf("in-WeChat login with profile: scopes %s", got)
	}
	e.redeem(pc, v, p)
}

// TestWeChatBrowser_Snapshot: a snapshot-mode visitor is never linked.
func TestWeChatBrowser_Snapshot(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("snapshot")
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	p, _ := e.browser(wechatUA).follow(authURL(conf, oauth2.GenerateVerifier()))
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "errSnapshot") {
		t.Fatalf("snapshot user: status %d %.300s", p.status, p.body)
	}
	// Nothing was linked: not the real openid, and the provider stopped
	// before even fetching the virtual profile.
	if _, err := e.store.Identity(context.Background(), officialApp, e.sim.OpenID(officialApp, "snapshot")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("identity lookup: %v, want not found", err)
	}
	if n := e.sim.Calls(wechat.PathUserInfo); n != 0 {
		t.Fatalf("%d userinfo calls for a snapshot visitor, want 0", n)
	}
}
