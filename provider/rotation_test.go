package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// jwksKIDs fetches the published JWKS and returns its kids.
func (e *env) jwksKIDs() []string {
	e.t.Helper()
	resp, err := e.client.Get(e.issuer + "/.well-known/jwks.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
			Use string `json:"use"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &set); err != nil {
		e.t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.KID == "" || k.Alg == "" || k.Use != "sig" || k.D != "" {
			e.t.Fatalf("JWKS entry %+v: want kid, alg, use=sig and no private part", k)
		}
		kids = append(kids, k.KID)
	}
	return kids
}

// login runs the code flow for the web client and returns the tokens.
func (e *env) login() *oauth2.Token {
	e.t.Helper()
	conf := e.oauth2Config(webClient, webSecret, webRedirect, "openid", "offline_access")
	v := oauth2.GenerateVerifier()
	loc := e.authorize(conf.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(v)))
	tok, err := conf.Exchange(e.ctx, loc.Query().Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	before := e.login()
	oldIDKid := headerOf(t, before.Extra("id_token").(string))["kid"].(string)
	oldATKid := headerOf(t, before.AccessToken)["kid"].(string)

	// Rotate: the new keys are published at once but do not sign yet.
	infos, err := e.keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	published := e.jwksKIDs()
	for _, k := range infos {
		if !slices.Contains(published, k.KID) {
			t.Fatalf("rotated key %s (%s) is not in the JWKS before it signs: %v", k.KID, k.Algorithm, published)
		}
	}
	pending := e.login()
	if kid := headerOf(t, pending.Extra("id_token").(string))["kid"]; kid != oldIDKid {
		t.Fatalf("a token was signed with %v during the publish delay, want the old key %s", kid, oldIDKid)
	}

	// After the publish delay the new keys sign.
	e.clock.Add(11 * time.Minute)
	after := e.login()
	newIDKid := headerOf(t, after.Extra("id_token").(string))["kid"].(string)
	newATKid := headerOf(t, after.AccessToken)["kid"].(string)
	if newIDKid == oldIDKid || newATKid == oldATKid {
		t.Fatal("tokens are still signed with the old keys after the publish delay")
	}
	if !slices.Contains(published, newIDKid) || !slices.Contains(published, newATKid) {
		t.Fatal("the signing keys were not in the JWKS fetched before they signed")
	}

	// Tokens signed before the rotation still verify, from the JWKS and at
	// the provider's own endpoints.
	verifier := e.provider.Verifier(&oidc.Config{ClientID: webClient})
	for name, raw := range map[string]string{"old ID token": before.Extra("id_token").(string), "old access token": before.AccessToken, "new ID token": after.Extra("id_token").(string)} {
		if _, err := verifier.Verify(e.ctx, raw); err != nil {
			t.Errorf("%s after rotation: %v", name, err)
		}
	}
	if _, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(before)); err != nil {
		t.Errorf("userinfo with a pre-rotation access token: %v", err)
	}
	_, intro := e.postForm("/oauth2/introspect", webClient, webSecret, url.Values{"token": {before.AccessToken}})
	if intro["active"] != true {
		t.Errorf("pre-rotation access token introspects as %v", intro)
	}
	// A pre-rotation ID token is still a valid id_token_hint.
	resp, err := e.client.Get(e.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {before.Extra("id_token").(string)}, "post_logout_redirect_uri": {webLogout}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout with a pre-rotation id_token_hint: %d", resp.StatusCode)
	}

	// Once the retention has passed, the old key leaves the JWKS.
	e.clock.Add(25 * time.Hour)
	if err := e.keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(e.jwksKIDs(), oldIDKid) {
		t.Errorf("retired key %s is still published after the retention", oldIDKid)
	}
}
