package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// fastDevice makes devices poll every second.
func fastDevice(c *provider.Config) { c.DevicePollInterval = time.Second }

func (e *env) deviceConfig(clientID, secret string, scopes ...string) *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.DeviceAuthURL = e.issuer + "/oauth2/device/authorize"
	return &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: ep, Scopes: scopes}
}

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// verify calls /oauth2/device/verify as a Mini Program.
func (m mp) verify(method, bearer string, form url.Values) (int, map[string]any) {
	m.e.t.Helper()
	if method == http.MethodPost {
		status, body, _ := m.post("/oauth2/device/verify", bearer, form)
		return status, body
	}
	req, _ := http.NewRequest(http.MethodGet, m.e.issuer+"/oauth2/device/verify?"+form.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := m.e.client.Do(req)
	if err != nil {
		m.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestDeviceFlow_ApprovedInMiniProgram(t *testing.T) {
	e := newEnv(t, fastDevice)
	m := mp{e: e}
	conf := e.deviceConfig(tvClient, "", "openid", "profile", "offline_access")
	da, err := conf.DeviceAuth(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !userCodeRE.MatchString(da.UserCode) || da.VerificationURI != e.issuer+"/device" ||
		da.VerificationURIComplete != e.issuer+"/device?user_code="+da.UserCode || da.Interval != 1 || da.Expiry.IsZero() {
		t.Fatalf("device authorization response %+v", da)
	}

	body, bob := m.login(miniClient, miniApp, "bob", "openid")
	at := body["access_token"].(string)
	status, shown := m.verify(http.MethodGet, at, url.Values{"user_code": {strings.ToLower(da.UserCode)}})
	if status != 200 || shown["client_id"] != tvClient || shown["client_name"] != tvName || shown["scope"] != "openid profile offline_access" {
		t.Fatalf("GET verify: %d %v", status, shown)
	}
	go func() {
		time.Sleep(1500 * time.Millisecond) // the device is polling meanwhile
		if status, body := m.verify(http.MethodPost, at, url.Values{"user_code": {da.UserCode}, "action": {"approve"}}); status != 204 {
			t.Errorf("POST verify: %d %v", status, body)
		}
	}()
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Error("offline_access granted, but no refresh token")
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: tvClient}).Verify(e.ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR []string `json:"amr"`
	}
	idt.Claims(&claims)
	if idt.Subject != bob || !slices.Equal(claims.AMR, []string{"wechat", "miniprogram"}) {
		t.Fatalf("ID token sub %s amr %v; want bob %s, [wechat miniprogram]", idt.Subject, claims.AMR, bob)
	}
	// The refresh token works like any other.
	if _, err := conf.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	// The login is in the audit trail, as a device login of the TV.
	events, _, err := e.store.Events(e.ctx, storage.EventQuery{Subject: bob, Type: storage.EventLogin, ClientID: tvClient})
	if err != nil || len(events) != 1 || events[0].Details["method"] != "device" {
		t.Fatalf("login events %+v, %v; want one with method device", events, err)
	}
	// Redeemed once: the device code is spent.
	_, err = conf.DeviceAccessToken(ctx, da)
	requireOAuthError(t, err, "invalid_grant")
	// The approval is over: approving again is refused.
	if status, body := m.verify(http.MethodPost, at, url.Values{"user_code": {da.UserCode}, "action": {"approve"}}); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("second approval: %d %v", status, body)
	}
}

func requireOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("got %v, want OAuth error %s", err, code)
	}
}

// poll posts one device_code grant request.
func (e *env) poll(clientID, deviceCode string) (int, map[string]any) {
	e.t.Helper()
	resp, body := e.postForm("/oauth2/token", "", "", url.Values{
		"grant_type": {provider.GrantTypeDeviceCode}, "client_id": {clientID}, "device_code": {deviceCode},
	})
	return resp.StatusCode, body
}

func TestDeviceFlow_Errors(t *testing.T) {
	e := newEnv(t, fastDevice)
	m := mp{e: e}
	conf := e.deviceConfig(tvClient, "", "openid")
	body, _ := m.login(miniClient, miniApp, "carol", "openid")
	at := body["access_token"].(string)

	t.Run("pending and slow_down", func(t *testing.T) {
		da, err := conf.DeviceAuth(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st, b := e.poll(tvClient, da.DeviceCode); st != 400 || b["error"] != "authorization_pending" {
			t.Fatalf("first poll: %d %v", st, b)
		}
		if st, b := e.poll(tvClient, da.DeviceCode); st != 400 || b["error"] != "slow_down" {
			t.Fatalf("too fast: %d %v", st, b)
		}
		rec, err := e.store.DeviceAuth(e.ctx, da.DeviceCode)
		if err != nil || rec.Interval != 6*time.Second {
			t.Fatalf("interval %v, %v; want 6s after one slow_down", rec.Interval, err)
		}
		// x/oauth2 honours slow_down and still gets its tokens.
		go func() {
			time.Sleep(time.Second)
			m.verify(http.MethodPost, at, url.Values{"user_code": {da.UserCode}, "action": {"approve"}})
		}()
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		if _, err := conf.DeviceAccessToken(ctx, da); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("denied", func(t *testing.T) {
		da, _ := conf.DeviceAuth(e.ctx)
		if st, b := m.verify(http.MethodPost, at, url.Values{"user_code": {da.UserCode}, "action": {"deny"}}); st != 204 {
			t.Fatalf("deny: %d %v", st, b)
		}
		if st, b := m.verify(http.MethodPost, at, url.Values{"user_code": {da.UserCode}, "action": {"approve"}}); st != 400 || b["error"] != "invalid_grant" {
			t.Fatalf("approve after deny: %d %v", st, b)
		}
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		_, err := conf.DeviceAccessToken(ctx, da)
		requireOAuthError(t, err, "access_denied")
	})
	t.Run("another client's device code", func(t *testing.T) {
		da, _ := conf.DeviceAuth(e.ctx)
		if st, b := e.poll(spaClient, da.DeviceCode); st != 400 || b["error"] != "invalid_grant" && b["error"] != "unauthorized_client" {
			t.Fatalf("foreign client: %d %v", st, b)
		}
		if st, b := e.poll(tvClient, "not-a-device-code"); st != 400 || b["error"] != "invalid_grant" {
			t.Fatalf("unknown code: %d %v", st, b)
		}
		if st, b := e.poll(tvClient, ""); st != 400 || b["error"] != "invalid_request" {
			t.Fatalf("no code: %d %v", st, b)
		}
	})
	t.Run("authorization request", func(t *testing.T) {
		resp, b := e.postForm("/oauth2/device/authorize", "", "", url.Values{"client_id": {spaClient}})
		if resp.StatusCode != 400 || b["error"] != "unauthorized_client" {
			t.Fatalf("client without the grant: %d %v", resp.StatusCode, b)
		}
		resp, b = e.postForm("/oauth2/device/authorize", "", "", url.Values{"client_id": {tvClient}, "scope": {"openid phone"}})
		if resp.StatusCode != 400 || b["error"] != "invalid_scope" {
			t.Fatalf("scope the client may not have: %d %v", resp.StatusCode, b)
		}
		resp, b = e.postForm("/oauth2/device/authorize", "", "", url.Values{"client_id": {"nobody"}})
		if resp.StatusCode != 401 || b["error"] != "invalid_client" {
			t.Fatalf("unknown client: %d %v", resp.StatusCode, b)
		}
		resp, b = e.postForm("/oauth2/device/authorize", webClient, "wrong-secret", url.Values{})
		if resp.StatusCode != 401 || b["error"] != "invalid_client" {
			t.Fatalf("wrong secret: %d %v", resp.StatusCode, b)
		}
	})
	t.Run("verify input", func(t *testing.T) {
		da, _ := conf.DeviceAuth(e.ctx)
		for _, tc := range []struct {
			method string
			form   url.Values
			status int
			code   string
		}{
			{http.MethodGet, url.Values{}, 400, "invalid_request"},
			{http.MethodGet, url.Values{"user_code": {"AEIO-UUUU"}}, 400, "invalid_request"},
			{http.MethodGet, url.Values{"user_code": {"BBBB-BBBB"}}, 400, "invalid_grant"},
			{http.MethodPost, url.Values{"user_code": {da.UserCode}, "action": {"maybe"}}, 400, "invalid_request"},
		} {
			if st, b := m.verify(tc.method, at, tc.form); st != tc.status || b["error"] != tc.code {
				t.Errorf("%s %v: %d %v; want %d %s", tc.method, tc.form, st, b, tc.status, tc.code)
			}
		}
		if st, b := m.verify(http.MethodGet, "not-a-token", url.Values{"user_code": {da.UserCode}}); st != 401 || b["error"] != "invalid_token" {
			t.Errorf("bad token: %d %v", st, b)
		}
		// A web client's token may not approve: only Mini Programs of this provider.
		tok := e.spaToken(t)
		if st, b := m.verify(http.MethodGet, tok, url.Values{"user_code": {da.UserCode}}); st != 403 || b["error"] != "insufficient_scope" {
			t.Errorf("web client's token: %d %v", st, b)
		}
	})
}

func TestDeviceFlow_DisabledUser(t *testing.T) {
	e := newEnv(t, fastDevice)
	m := mp{e: e}
	conf := e.deviceConfig(tvClient, "", "openid")
	da, err := conf.DeviceAuth(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	body, erin := m.login(miniClient, miniApp, "erin", "openid")
	if st, b := m.verify(http.MethodPost, body["access_token"].(string), url.Values{"user_code": {da.UserCode}, "action": {"approve"}}); st != 204 {
		t.Fatalf("approve: %d %v", st, b)
	}
	if err := e.store.SetUserDisabled(e.ctx, erin, true); err != nil {
		t.Fatal(err)
	}
	// Disabling withdraws the user's approvals (storage.SetUserDisabled).
	if st, b := e.poll(tvClient, da.DeviceCode); st != 400 || b["error"] != "access_denied" {
		t.Fatalf("poll for a disabled user: %d %v", st, b)
	}
}

func TestDeviceFlow_Expired(t *testing.T) {
	e := newEnv(t, fastDevice, func(c *provider.Config) { c.DeviceCodeLifespan = time.Second })
	m := mp{e: e}
	conf := e.deviceConfig(tvClient, "", "openid")
	da, err := conf.DeviceAuth(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	body, _ := m.login(miniClient, miniApp, "dave", "openid")
	if st, b := m.verify(http.MethodGet, body["access_token"].(string), url.Values{"user_code": {da.UserCode}}); st != 400 || b["error"] != "expired_token" {
		t.Fatalf("verify expired: %d %v", st, b)
	}
	if st, b := e.poll(tvClient, da.DeviceCode); st != 400 || b["error"] != "expired_token" {
		t.Fatalf("poll expired: %d %v", st, b)
	}
}

// spaToken is an access token of the public web client, from the code
// flow.
func (e *env) spaToken(t *testing.T) string {
	t.Helper()
	conf := e.oauth2Config(spaClient, "", spaRedirect, "openid")
	verifier := oauth2.GenerateVerifier()
	loc := e.authorize(conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(e.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}
