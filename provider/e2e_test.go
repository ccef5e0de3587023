package provider_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider"
)

// authorize runs the browser leg: GET the authorization URL and return the
// redirect back to the client.
func (e *env) authorize(authURL string) *url.URL {
	e.t.Helper()
	resp, err := e.client.Get(authURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("authorize: status %d: %s", resp.StatusCode, b)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	return loc
}

// postForm posts a form, with HTTP Basic credentials when user is set.
func (e *env) postForm(path, user, pass string, form url.Values) (*http.Response, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	return resp, body
}

func TestE2E_CodeFlowWithPKCE(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth2Config(webClient, webSecret, webRedirect, strings.Fields(allScopes)...)
	verifier := oauth2.GenerateVerifier()
	state, nonce := "state-0123456789", "nonce-0123456789"

	// 1. Authorization, with PKCE and a nonce; RFC 9207 iss comes back.
	loc := e.authorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != webRedirect {
		t.Fatalf("redirected to %s, want %s", got, webRedirect)
	}
	if q.Get("state") != state || q.Get("iss") != e.issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %v: want code, state %q and iss %q", q, state, e.issuer)
	}

	// 2. Code exchange.
	tok, err := conf.Exchange(e.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: webClient}).Verify(e.ctx, rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var claims struct {
		Nonce               string  `json:"nonce"`
		AuthTime            float64 `json:"auth_time"`
		Name                string  `json:"name"`
		PhoneNumber         string  `json:"phone_number"`
		PhoneNumberVerified bool    `json:"phone_number_verified"`
		UnionID             string  `json:"wechat_unionid"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != testSubject || claims.Nonce != nonce || claims.AuthTime == 0 {
		t.Fatalf("ID token sub %q nonce %q auth_time %v", idt.Subject, claims.Nonce, claims.AuthTime)
	}
	if claims.PhoneNumber != testPhoneNumber || !claims.PhoneNumberVerified || claims.Name != "Alice" || claims.UnionID != testUnionID {
		t.Fatalf("ID token claims %+v", claims)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	if alg := headerOf(t, rawID)["alg"]; alg != "RS256" {
		t.Fatalf("ID token of a client without id_token_signed_response_alg is %v, want RS256", alg)
	}

	// 3. The access token is an RFC 9068 JWT, verifiable from the JWKS.
	h := headerOf(t, tok.AccessToken)
	if h["typ"] != "at+jwt" || h["kid"] == "" || h["kid"] == nil {
		t.Fatalf("access token header %v: want typ at+jwt and a kid", h)
	}
	at, err := e.provider.Verifier(&oidc.Config{ClientID: webClient}).Verify(e.ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("verify access token from the JWKS: %v", err)
	}
	var atClaims map[string]any
	at.Claims(&atClaims)
	for _, c := range []string{"iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope"} {
		if _, ok := atClaims[c]; !ok {
			t.Errorf("access token lacks RFC 9068 claim %q: %v", c, atClaims)
		}
	}

	// 4. Userinfo.
	ui, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var uiClaims map[string]any
	ui.Claims(&uiClaims)
	if ui.Subject != idt.Subject || uiClaims["phone_number"] != testPhoneNumber {
		t.Fatalf("userinfo %v: want sub %s and phone", uiClaims, idt.Subject)
	}

	// 5. Introspection by the client itself.
	_, intro := e.postForm("/oauth2/introspect", webClient, webSecret, url.Values{"token": {tok.AccessToken}})
	if intro["active"] != true || intro["sub"] != testSubject || intro["client_id"] != webClient {
		t.Fatalf("introspection %v", intro)
	}

	// 6. Refresh rotates: the new pair works, the old refresh token is then
	// refused with invalid_grant.
	oldRT := tok.RefreshToken
	expired := &oauth2.Token{RefreshToken: oldRT, Expiry: time.Now().Add(-time.Hour)}
	tok2, err := conf.TokenSource(e.ctx, expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == oldRT || tok2.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	idt2, err := e.provider.Verifier(&oidc.Config{ClientID: webClient}).Verify(e.ctx, tok2.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var claims2 struct {
		AuthTime float64 `json:"auth_time"`
	}
	idt2.Claims(&claims2)
	if claims2.AuthTime != claims.AuthTime {
		t.Fatalf("auth_time changed on refresh: %v → %v (OIDC Core §12.2 keeps it)", claims.AuthTime, claims2.AuthTime)
	}
	_, err = conf.TokenSource(e.ctx, expired).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reusing the rotated refresh token: %v, want invalid_grant", err)
	}
	// Reuse detection revoked the family: the newest refresh token is dead too.
	_, err = conf.TokenSource(e.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after reuse detection: %v, want invalid_grant", err)
	}

	// 7. A fresh grant, then revocation (RFC 7009) and introspection of the
	// revoked token.
	verifier = oauth2.GenerateVerifier()
	loc = e.authorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	tok3, err := conf.Exchange(e.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := e.postForm("/oauth2/revoke", webClient, webSecret, url.Values{"token": {tok3.RefreshToken}, "token_type_hint": {"refresh_token"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
	_, intro = e.postForm("/oauth2/introspect", webClient, webSecret, url.Values{"token": {tok3.AccessToken}})
	if intro["active"] != false {
		t.Fatalf("access token of a revoked grant introspects as %v", intro)
	}
	if _, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok3)); err == nil {
		t.Fatal("userinfo accepted the access token of a revoked grant")
	}

	// 8. RP-initiated logout with id_token_hint, registered
	// post_logout_redirect_uri and state.
	lq := url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {webLogout}, "state": {"bye-123"}}
	resp, err = e.client.Get(e.issuer + "/oauth2/logout?" + lq.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != webLogout+"?state=bye-123" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("logout: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), b)
	}
	select {
	case <-e.auth.ended:
	default:
		t.Fatal("logout did not end the login session")
	}
}

func TestLogout_WithoutHintAsksFirst(t *testing.T) {
	e := newEnv(t)
	q := url.Values{"client_id": {webClient}, "post_logout_redirect_uri": {webLogout}, "state": {"s-123"}}
	resp, err := e.client.Get(e.issuer + "/oauth2/logout?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `name="confirm"`) {
		t.Fatalf("GET logout without id_token_hint: %d, want a confirmation page: %s", resp.StatusCode, page)
	}
	select {
	case <-e.auth.ended:
		t.Fatal("a GET without id_token_hint ended the session")
	default:
	}
	q.Set("confirm", "yes")
	resp, _ = e.postForm("/oauth2/logout", "", "", q)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != webLogout+"?state=s-123" {
		t.Fatalf("confirmed logout: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	select {
	case <-e.auth.ended:
	default:
		t.Fatal("the confirmed logout did not end the session")
	}
}

func TestE2E_PublicClientPKCEAndPAR(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth2Config(spaClient, "", spaRedirect, "openid", "offline_access")
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()

	// Push the request (RFC 9126), then authorize with the request_uri.
	form := url.Values{
		"client_id": {spaClient}, "response_type": {"code"}, "redirect_uri": {spaRedirect},
		"scope": {"openid offline_access"}, "state": {"state-par-0123"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	resp, body := e.postForm("/oauth2/par", "", "", form)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PAR: %d %v", resp.StatusCode, body)
	}
	requestURI, _ := body["request_uri"].(string)
	loc := e.authorize(e.issuer + "/oauth2/authorize?" + url.Values{"client_id": {spaClient}, "request_uri": {requestURI}}.Encode())
	tok, err := conf.Exchange(e.ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw := tok.Extra("id_token").(string)
	if alg := headerOf(t, raw)["alg"]; alg != "ES256" {
		t.Fatalf("ID token alg %v, want the client's ES256", alg)
	}
	if _, err := e.provider.Verifier(&oidc.Config{ClientID: spaClient, SupportedSigningAlgs: []string{"ES256"}}).Verify(e.ctx, raw); err != nil {
		t.Fatal(err)
	}
	// The request_uri is single use.
	resp, err = e.client.Get(e.issuer + "/oauth2/authorize?" + url.Values{"client_id": {spaClient}, "request_uri": {requestURI}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 300 || resp.StatusCode == http.StatusOK {
		t.Fatalf("second use of request_uri: %d, want an error", resp.StatusCode)
	}
}

func TestE2E_ClientCredentials(t *testing.T) {
	e := newEnv(t)
	resp, body := e.postForm("/oauth2/token", "", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {serviceClient}, "client_secret": {serviceSecret},
		"scope": {"orders.read"}, "audience": {resourceClient},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", resp.StatusCode, body)
	}
	at := body["access_token"].(string)
	if _, ok := body["refresh_token"]; ok {
		t.Fatal("client_credentials must not issue a refresh token")
	}
	// The resource server named in the audience may introspect it; the
	// RFC 9068 sub of a client_credentials token is the client.
	_, intro := e.postForm("/oauth2/introspect", resourceClient, resourceSecret, url.Values{"token": {at}})
	if intro["active"] != true || intro["sub"] != serviceClient || intro["scope"] != "orders.read" {
		t.Fatalf("introspection by the audience: %v", intro)
	}
	// A client that is neither the owner nor in the audience sees nothing.
	_, intro = e.postForm("/oauth2/introspect", webClient, webSecret, url.Values{"token": {at}})
	if intro["active"] != false {
		t.Fatalf("introspection by a stranger: %v, want inactive", intro)
	}
}

// headerOf decodes the JOSE header of a compact JWS.
func headerOf(t testing.TB, token string) map[string]any {
	t.Helper()
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("parse %q: %v", token, err)
	}
	h := obj.Signatures[0].Header
	out := map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
	for k, v := range h.ExtraHeaders {
		out[string(k)] = v
	}
	return out
}

func TestE2E_OpaqueAccessTokens(t *testing.T) {
	e := newEnv(t, func(c *provider.Config) { c.AccessTokenFormat = provider.AccessTokenOpaque })
	tok := e.login()
	if strings.Count(tok.AccessToken, ".") == 2 && strings.HasPrefix(tok.AccessToken, "eyJ") {
		t.Fatalf("access token %q is a JWT, want opaque", tok.AccessToken)
	}
	ui, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != testSubject {
		t.Fatalf("userinfo with an opaque token: %v %v", ui, err)
	}
	_, intro := e.postForm("/oauth2/introspect", webClient, webSecret, url.Values{"token": {tok.AccessToken}})
	if intro["active"] != true || intro["token_type"] != "Bearer" {
		t.Fatalf("introspection of an opaque token: %v", intro)
	}
	if _, err := e.provider.Verifier(&oidc.Config{ClientID: webClient}).Verify(e.ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("ID token with opaque access tokens: %v", err)
	}
}
