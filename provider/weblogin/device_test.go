package weblogin_test

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

var reHidden = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (e *env) deviceConfig(scopes ...string) *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.DeviceAuthURL = e.issuer + "/oauth2/device/authorize"
	return &oauth2.Config{ClientID: tvClient, Endpoint: ep, Scopes: scopes}
}

func TestDevice_ApprovedOnTheWeb(t *testing.T) {
	e := newEnv(t, withScan(0))
	e.sim.SetAutoConfirm("alice")
	conf := e.deviceConfig("openid", "profile")
	da, err := conf.DeviceAuth(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(desktopUA)
	// Not signed in: the Mini Program code of this user code, and a way to
	// sign in here.
	p := b.get(da.VerificationURIComplete)
	if p.status != 200 || !strings.Contains(p.body, `data-state="signin"`) || !strings.Contains(p.body, "Living-room TV") {
		t.Fatalf("device page: %d %.500s", p.status, p.body)
	}
	m := reImage.FindStringSubmatch(p.body)
	if m == nil || decodeQR(t, html.UnescapeString(m[1])) != scanPage+"?scene="+strings.ReplaceAll(da.UserCode, "-", "") {
		t.Fatalf("the device page should show the Mini Program code of %s", da.UserCode)
	}
	signIn := choices(p.body)["qr"]
	if signIn == "" {
		t.Fatalf("no sign-in link: %.500s", p.body)
	}
	p, _ = b.follow(signIn)
	if !strings.Contains(p.body, `data-state="confirm"`) || !strings.Contains(p.body, da.UserCode) || !strings.Contains(p.body, `data-scope="profile"`) {
		t.Fatalf("after sign-in: %d %.600s", p.status, p.body)
	}
	csrf := html.UnescapeString(reHidden.FindStringSubmatch(p.body)[1])
	// A forged form is refused.
	if p := b.post(e.issuer+"/device", url.Values{"user_code": {da.UserCode}, "action": {"approve"}, "csrf_token": {"forged"}}, nil); p.status != 403 {
		t.Fatalf("forged form: %d", p.status)
	}
	p = b.post(e.issuer+"/device", url.Values{"user_code": {da.UserCode}, "action": {"approve"}, "csrf_token": {csrf}}, nil)
	if p.status != 200 || !strings.Contains(p.body, "data-done") {
		t.Fatalf("approve: %d %.400s", p.status, p.body)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: tvClient}).Verify(e.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	if alice := e.miniProgramSub("alice"); idt.Subject != alice {
		t.Fatalf("device signed in as %s, want alice %s", idt.Subject, alice)
	}
	// The third-party consent is remembered (and can be withdrawn).
	if c, err := e.store.Consent(e.ctx, idt.Subject, tvClient); err != nil || len(c.Scopes) != 2 {
		t.Fatalf("consent %+v, %v", c, err)
	}
}

func TestDevice_BadCodesAndLimits(t *testing.T) {
	e := newEnv(t)
	b := e.browser(desktopUA)
	p := b.get(e.issuer + "/device")
	if p.status != 200 || !strings.Contains(p.body, `data-state="enter"`) {
		t.Fatalf("entry page: %d %.300s", p.status, p.body)
	}
	p = b.get(e.issuer + "/device?user_code=BBBB-BBBB")
	if p.status != 400 || !strings.Contains(p.body, `data-error="unknown"`) {
		t.Fatalf("unknown code: %d %.300s", p.status, p.body)
	}
	// The browser's tries are bounded, and the page says so.
	var last page
	for range 12 {
		last = b.get(e.issuer + "/device?user_code=CCCC-CCCC")
	}
	if last.status != 429 || !strings.Contains(last.body, `data-error="too_many_tries"`) {
		t.Fatalf("after many tries: %d %.300s", last.status, last.body)
	}
	// Another browser on the same address has its own budget, up to the
	// address's.
	other := e.browser(desktopUA)
	if p := other.get(e.issuer + "/device?user_code=CCCC-CCCC"); p.status != 400 {
		t.Fatalf("other browser: %d", p.status)
	}
	for range 10 {
		last = e.browser(desktopUA).get(e.issuer + "/device?user_code=CCCC-CCCC")
	}
	if last.status != 429 {
		t.Fatalf("the address's limit: %d", last.status)
	}
}
