package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// Clients of the interoperability tests.
const (
	roClient       = "ro" // signed request objects (ES256, jwks)
	roSecret       = "ro-secret-0123456789abcdef0123456789abcdef"
	roNoneClient   = "ro-none"   // unsigned request objects (registered none)
	loopConfClient = "loop-conf" // confidential, loopback redirect
	loopConfSecret = "loop-secret-0123456789abcdef0123456789abc"
	loopPubClient  = "loop-pub" // public native app, loopback redirect
	loopRedirect   = "http://127.0.0.1:8400/cb"
	otherKID       = "not-the-client-key"
	requestObjPath = "/request.jwt"
)

// interopKey is the relying party's request-object signing key.
var interopKey = sync.OnceValue(func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
})

// interopRP serves the request objects of the roClient by reference.
type interopRP struct {
	srv *httptest.Server
	obj atomic.Value // string: the request object served at requestObjPath
}

// addInteropClients registers the interoperability clients and starts the
// relying party that serves request objects by reference.
func (e *env) addInteropClients() *interopRP {
	e.t.Helper()
	rp := &interopRP{}
	rp.obj.Store("")
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/oauth-authz-req+jwt")
		io.WriteString(w, rp.obj.Load().(string))
	}))
	e.t.Cleanup(rp.srv.Close)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: interopKey().Public(), KeyID: "rp-1", Algorithm: "ES256", Use: "sig"}}})
	now := time.Now().UTC()
	for _, c := range []storage.Client{
		{
			ID: roClient, SecretHash: provider.HashClientSecret(testSecret, roSecret),
			RedirectURIs: []string{webRedirect}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid", "profile"}, TokenEndpointAuthMethod: storage.AuthMethodBasic,
			JWKS: jwks, RequestObjectSigningAlg: "ES256", RequestURIs: []string{rp.srv.URL + requestObjPath},
		},
		{
			ID: roNoneClient, RedirectURIs: []string{spaRedirect}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid"}, TokenEndpointAuthMethod: storage.AuthMethodNone, RequestObjectSigningAlg: "none",
		},
		{
			ID: loopConfClient, SecretHash: provider.HashClientSecret(testSecret, loopConfSecret),
			RedirectURIs: []string{loopRedirect}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid"}, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		},
		{
			ID: loopPubClient, RedirectURIs: []string{loopRedirect}, GrantTypes: []string{"authorization_code"},
			Scopes: []string{"openid"}, TokenEndpointAuthMethod: storage.AuthMethodNone,
		},
	} {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := provider.ValidateClient(c, false); err != nil {
			e.t.Fatalf("client %s: %v", c.ID, err)
		}
		if err := e.store.CreateClient(e.ctx, c); err != nil {
			e.t.Fatal(err)
		}
	}
	return rp
}

// requestObject signs claims with the relying party's key (kid names the
// key), or leaves them unsigned when kid is "none".
func requestObject(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	payload, _ := json.Marshal(claims)
	if kid == "none" {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	}
	key := interopKey()
	if kid == otherKID {
		key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// roClaims are the claims of a valid request object of roClient.
func (e *env) roClaims(kv ...any) map[string]any {
	c := map[string]any{
		"iss": roClient, "aud": e.issuer, "client_id": roClient, "response_type": "code",
		"redirect_uri": webRedirect, "scope": "openid profile", "state": "state-from-object",
		"nonce": "nonce-from-object", "exp": time.Now().Add(5 * time.Minute).Unix(),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// TestInterop_RequestObject: a request object signed with the client's
// registered key, by value and by reference, supersedes the OAuth 2.0
// parameters (OpenID Connect Core §6.3); unsigned ones pass only for a
// client registered with none.
func TestInterop_RequestObject(t *testing.T) {
	e := newEnv(t)
	rp := e.addInteropClients()
	ro := e.oauth2Config(roClient, roSecret, webRedirect, "openid")
	exchange := func(t *testing.T, loc *url.URL, nonce string) {
		t.Helper()
		if errc := loc.Query().Get("error"); errc != "" {
			t.Fatalf("authorization failed: %s", loc)
		}
		if got := loc.Query().Get("state"); got != "state-from-object" {
			t.Fatalf("state %q, want the request object's", got)
		}
		tok, err := ro.Exchange(e.ctx, loc.Query().Get("code"))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := e.provider.Verifier(&oidc.Config{ClientID: roClient}).Verify(e.ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		if idt.Nonce != nonce {
			t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
		}
		if got := tok.Extra("scope"); got != "openid profile" {
			t.Fatalf("scope %v, want the request object's 'openid profile'", got)
		}
	}
	outer := url.Values{"client_id": {roClient}, "response_type": {"code"}, "scope": {"openid"}, "state": {"outer-state-123"}, "redirect_uri": {webRedirect}}

	t.Run("by value", func(t *testing.T) {
		q := url.Values{}
		for k, v := range outer {
			q[k] = v
		}
		q.Set("request", requestObject(t, "rp-1", e.roClaims()))
		exchange(t, e.authorize(e.issuer+"/oauth2/authorize?"+q.Encode()), "nonce-from-object")
	})
	t.Run("by registered reference", func(t *testing.T) {
		rp.obj.Store(requestObject(t, "rp-1", e.roClaims("nonce", "nonce-by-reference")))
		q := url.Values{"client_id": {roClient}, "response_type": {"code"}, "scope": {"openid"}, "request_uri": {rp.srv.URL + requestObjPath}}
		exchange(t, e.authorize(e.issuer+"/oauth2/authorize?"+q.Encode()), "nonce-by-reference")
	})
	t.Run("unsigned for a client registered with none", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		obj := requestObject(t, "none", map[string]any{"client_id": roNoneClient, "response_type": "code", "scope": "openid",
			"redirect_uri": spaRedirect, "state": "state-unsigned-1", "code_challenge": oauth2.S256ChallengeFromVerifier(verifier), "code_challenge_method": "S256"})
		q := url.Values{"client_id": {roNoneClient}, "response_type": {"code"}, "scope": {"openid"}, "request": {obj}}
		loc := e.authorize(e.issuer + "/oauth2/authorize?" + q.Encode())
		if loc.Query().Get("code") == "" || loc.Query().Get("state") != "state-unsigned-1" {
			t.Fatalf("unsigned request object refused: %s", loc)
		}
	})
}

// TestInterop_ResponseModes: every mode discovery advertises works when
// asked for explicitly, and nothing else is advertised.
func TestInterop_ResponseModes(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Modes []string `json:"response_modes_supported"`
	}
	if err := e.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if strings.Join(doc.Modes, " ") != "query form_post" {
		t.Fatalf("response_modes_supported %v", doc.Modes)
	}
	web := e.oauth2Config(webClient, webSecret, webRedirect, "openid")
	loc := e.authorize(web.AuthCodeURL("state-0123456789", oauth2.SetAuthURLParam("response_mode", "query")))
	if loc.Query().Get("code") == "" {
		t.Fatalf("response_mode=query: %s", loc)
	}
	resp, err := e.client.Get(web.AuthCodeURL("state-0123456789", oauth2.SetAuthURLParam("response_mode", "form_post")))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="code"`) || !strings.Contains(string(body), `action="`+webRedirect) {
		t.Fatalf("response_mode=form_post: %d %s", resp.StatusCode, body)
	}
}

// TestInterop_IDTokenHasNoRat: fosite's non-standard rat claim is not in
// ID tokens, from the code flow or a refresh.
func TestInterop_IDTokenHasNoRat(t *testing.T) {
	e := newEnv(t)
	web := e.oauth2Config(webClient, webSecret, webRedirect, "openid", "offline_access")
	tok, err := web.Exchange(e.ctx, e.authorize(web.AuthCodeURL("state-0123456789")).Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := web.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{tok.Extra("id_token").(string), refreshed.Extra("id_token").(string)} {
		idt, err := e.provider.Verifier(&oidc.Config{ClientID: webClient}).Verify(e.ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		idt.Claims(&claims)
		if _, ok := claims["rat"]; ok {
			t.Fatalf("ID token carries rat: %v", claims)
		}
		if _, ok := claims["auth_time"]; !ok {
			t.Fatalf("ID token lacks auth_time: %v", claims)
		}
	}
}

// TestInterop_RefreshNarrowScope: a refresh with a narrower scope gets an
// access token of that scope (and no ID token without openid), while the
// new refresh token keeps the whole grant (RFC 6749 §6).
func TestInterop_RefreshNarrowScope(t *testing.T) {
	e := newEnv(t)
	web := e.oauth2Config(webClient, webSecret, webRedirect, "openid", "profile", "offline_access")
	tok, err := web.Exchange(e.ctx, e.authorize(web.AuthCodeURL("state-0123456789")).Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func(rt, scope string) map[string]any {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			form.Set("scope", scope)
		}
		resp, body := e.postForm("/oauth2/token", webClient, webSecret, form)
		if resp.StatusCode != 200 {
			t.Fatalf("refresh (scope %q): %d %v", scope, resp.StatusCode, body)
		}
		return body
	}
	narrow := refresh(tok.RefreshToken, "profile offline_access")
	if narrow["scope"] != "profile offline_access" {
		t.Fatalf("narrowed scope %v", narrow["scope"])
	}
	if _, ok := narrow["id_token"]; ok {
		t.Fatal("an ID token was issued without openid")
	}
	ir, err := e.client.Do(func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
		r.Header.Set("Authorization", "Bearer "+narrow["access_token"].(string))
		return r
	}())
	if err != nil {
		t.Fatal(err)
	}
	ir.Body.Close()
	if ir.StatusCode != http.StatusForbidden {
		t.Fatalf("userinfo with an access token narrowed to no openid: %d, want 403", ir.StatusCode)
	}
	full := refresh(narrow["refresh_token"].(string), "")
	if full["scope"] != "openid profile offline_access" {
		t.Fatalf("the refresh token lost scope: %v", full["scope"])
	}
	if _, ok := full["id_token"]; !ok {
		t.Fatal("no ID token after the whole scope came back")
	}
}

// countingAuth counts how often the login step is reached.
type countingAuth struct {
	staticAuth
	calls atomic.Int32
}

func (a *countingAuth) Authenticate(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester) (*provider.Authentication, error) {
	a.calls.Add(1)
	return a.staticAuth.Authenticate(w, r, ar)
}

// TestInterop_RefusedBeforeLogin: requests that can never succeed are
// refused at the authorization endpoint before the login step, with the
// error at the client's redirect URI.
func TestInterop_RefusedBeforeLogin(t *testing.T) {
	auth := &countingAuth{staticAuth: staticAuth{subject: testSubject}}
	e := newEnv(t, func(c *provider.Config) { c.Authenticator = auth })
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	spa := func(kv ...string) string {
		q := url.Values{"client_id": {spaClient}, "response_type": {"code"}, "redirect_uri": {spaRedirect}, "scope": {"openid"}, "state": {"state-0123456789"}}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return e.issuer + "/oauth2/authorize?" + q.Encode()
	}
	for _, tc := range []struct{ name, url, wantError string }{
		{"no PKCE for a public client", spa(), "invalid_request"},
		{"plain PKCE", spa("code_challenge", challenge, "code_challenge_method", "plain"), "invalid_request"},
		{"PKCE without a method", spa("code_challenge", challenge), "invalid_request"},
		{"3-character challenge", spa("code_challenge", "abc", "code_challenge_method", "S256"), "invalid_request"},
		{"challenge not base64url", spa("code_challenge", strings.Repeat("+", 43), "code_challenge_method", "S256"), "invalid_request"},
		{"response_type=CODE", spa("code_challenge", challenge, "code_challenge_method", "S256", "response_type", "CODE"), "unsupported_response_type"},
		{"prompt=none login", spa("code_challenge", challenge, "code_challenge_method", "S256", "prompt", "none login"), "invalid_request"},
		{"negative max_age", spa("code_challenge", challenge, "code_challenge_method", "S256", "max_age", "-1"), "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := e.authorize(tc.url)
			if got := loc.Query().Get("error"); got != tc.wantError || !strings.HasPrefix(loc.String(), spaRedirect) {
				t.Fatalf("got %s, want %s at the redirect URI", loc, tc.wantError)
			}
			if n := auth.calls.Load(); n != 0 {
				t.Fatalf("the login step ran %d times", n)
			}
		})
	}
	if loc := e.authorize(spa("code_challenge", challenge, "code_challenge_method", "S256")); loc.Query().Get("code") == "" || auth.calls.Load() != 1 {
		t.Fatalf("a valid request did not reach the login step: %s", loc)
	}
}
