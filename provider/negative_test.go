package provider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// hostileCase is one malformed or hostile request and the exact answer it
// must get.
type hostileCase struct {
	name   string
	method string
	path   string
	query  url.Values
	form   url.Values
	body   string // raw body, instead of form
	ctype  string // Content-Type, default form
	user   string // HTTP Basic user; pass is the password
	pass   string
	bearer string
	// want: HTTP status, and the error code in the JSON body — or, for an
	// authorization error sent back to the client, in the redirect.
	wantStatus int
	wantError  string
	wantHeader [2]string // a response header that must be present
}

func TestNegative_Table(t *testing.T) {
	e := newEnv(t, withDCR)
	rp := e.addInteropClients()
	web := e.oauth2Config(webClient, webSecret, webRedirect, "openid", "offline_access")
	spa := e.oauth2Config(spaClient, "", spaRedirect, "openid", "offline_access")

	// Material for the cases: a used code, a live code, tokens.
	verifier := oauth2.GenerateVerifier()
	usedCode := e.authorize(web.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier))).Query().Get("code")
	tok, err := web.Exchange(e.ctx, usedCode, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// tok is revoked by the code replay below; live is not.
	liveVerifier := oauth2.GenerateVerifier()
	live, err := web.Exchange(e.ctx, e.authorize(web.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(liveVerifier))).Query().Get("code"), oauth2.VerifierOption(liveVerifier))
	if err != nil {
		t.Fatal(err)
	}
	spaVerifier := oauth2.GenerateVerifier()
	spaCode := func() string {
		return e.authorize(spa.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(spaVerifier))).Query().Get("code")
	}
	webCode := func() string {
		return e.authorize(web.AuthCodeURL("state-0123456789")).Query().Get("code")
	}
	_, cc := e.postForm("/oauth2/token", "", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {serviceClient}, "client_secret": {serviceSecret}})
	ccToken, _ := cc["access_token"].(string)

	authz := func(kv ...string) url.Values {
		v := url.Values{"client_id": {webClient}, "response_type": {"code"}, "redirect_uri": {webRedirect},
			"scope": {"openid"}, "state": {"state-0123456789"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	spaAuthz := func(kv ...string) url.Values {
		v := authz("client_id", spaClient, "redirect_uri", spaRedirect)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	tokenForm := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	roAuthz := func(obj string) url.Values {
		return url.Values{"client_id": {roClient}, "response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-0123456789"}, "request": {obj}}
	}
	loopAuthz := func(client, redirect string) url.Values {
		return url.Values{"client_id": {client}, "response_type": {"code"}, "redirect_uri": {redirect}, "scope": {"openid"}, "state": {"state-0123456789"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	}
	get := http.MethodGet
	post := http.MethodPost

	// Dynamic Client Registration: an initial access token with uses to
	// spare (refused requests take none), one used up, one expired, and a
	// registered client with its registration access token.
	iat := e.initialAccessToken("iat-negative", 100, time.Hour)
	usedIAT := e.initialAccessToken("iat-used", 1, time.Hour)
	e.registerWeb(usedIAT, nil)
	expiredIAT := e.initialAccessToken("iat-expired", 1, -time.Second)
	dyn := e.registerWeb(iat, nil)
	dynID, dynRAT := dyn["client_id"].(string), dyn["registration_access_token"].(string)
	other := e.registerWeb(iat, nil)
	otherRAT := other["registration_access_token"].(string)
	reg := func(kv ...any) string {
		doc := map[string]any{"redirect_uris": []string{"https://dcr.example/cb"}}
		for i := 0; i+1 < len(kv); i += 2 {
			doc[kv[i].(string)] = kv[i+1]
		}
		b, _ := json.Marshal(doc)
		return string(b)
	}
	put, del := http.MethodPut, http.MethodDelete
	jsonType := "application/json"
	dynPath := "/oauth2/register/" + dynID

	cases := []hostileCase{
		// Authorization endpoint: errors that must not redirect.
		{name: "authorize unknown client", method: get, path: "/oauth2/authorize", query: authz("client_id", "nobody"), wantStatus: 401, wantError: "invalid_client"},
		{name: "authorize unregistered redirect_uri", method: get, path: "/oauth2/authorize", query: authz("redirect_uri", "https://evil.example/cb"), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize redirect_uri prefix match", method: get, path: "/oauth2/authorize", query: authz("redirect_uri", webRedirect+"/../evil"), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize redirect_uri with extra query", method: get, path: "/oauth2/authorize", query: authz("redirect_uri", webRedirect+"?x=1"), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize oversized parameter", method: get, path: "/oauth2/authorize", query: authz("state", strings.Repeat("s", 5000)), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize state over 1024 bytes", method: get, path: "/oauth2/authorize", query: authz("state", strings.Repeat("s", 1025)), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize nonce over 512 bytes", method: get, path: "/oauth2/authorize", query: authz("nonce", strings.Repeat("n", 513)), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize audience repeated 9 times", method: get, path: "/oauth2/authorize", query: func() url.Values {
			v := authz()
			for i := range 9 {
				v.Add("audience", strings.Repeat("a", i+1))
			}
			return v
		}(), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize repeated parameter", method: get, path: "/oauth2/authorize", query: func() url.Values { v := authz(); v.Add("scope", "profile"); return v }(), wantStatus: 400, wantError: "invalid_request"},
		// Authorization endpoint: errors sent back to the client.
		{name: "authorize public client without PKCE", method: get, path: "/oauth2/authorize", query: spaAuthz(), wantStatus: 303, wantError: "invalid_request"},
		{name: "authorize public client with plain PKCE", method: get, path: "/oauth2/authorize", query: spaAuthz("code_challenge", "abcdefghijabcdefghijabcdefghijabcdefghij1234", "code_challenge_method", "plain"), wantStatus: 303, wantError: "invalid_request"},
		{name: "authorize implicit response_type", method: get, path: "/oauth2/authorize", query: authz("response_type", "token"), wantStatus: 303, wantError: "unsupported_response_type"},
		{name: "authorize scope not allowed", method: get, path: "/oauth2/authorize", query: authz("scope", "openid admin"), wantStatus: 303, wantError: "invalid_scope"},
		{name: "authorize missing state", method: get, path: "/oauth2/authorize", query: authz("state", ""), wantStatus: 303, wantError: "invalid_request"},
		{name: "authorize short state", method: get, path: "/oauth2/authorize", query: authz("state", "abc"), wantStatus: 303, wantError: "invalid_request"},
		{name: "authorize unsigned request object from a client not registered with none", method: get, path: "/oauth2/authorize", query: authz("request", "eyJhbGciOiJub25lIn0.e30."), wantStatus: 303, wantError: "invalid_request_object"},
		{name: "authorize request object signed by another key", method: get, path: "/oauth2/authorize", query: roAuthz(requestObject(t, otherKID, e.roClaims())), wantStatus: 303, wantError: "invalid_request_object"},
		{name: "authorize unsigned request object from a client registered with ES256", method: get, path: "/oauth2/authorize", query: roAuthz(requestObject(t, "none", e.roClaims())), wantStatus: 303, wantError: "invalid_request_object"},
		{name: "authorize expired request object", method: get, path: "/oauth2/authorize", query: roAuthz(requestObject(t, "rp-1", e.roClaims("exp", time.Now().Add(-time.Hour).Unix()))), wantStatus: 303, wantError: "invalid_request_object"},
		{name: "authorize request object for another audience", method: get, path: "/oauth2/authorize", query: roAuthz(requestObject(t, "rp-1", e.roClaims("aud", "https://other.example"))), wantStatus: 303, wantError: "invalid_request_object"},
		{name: "authorize request object of another client", method: get, path: "/oauth2/authorize", query: roAuthz(requestObject(t, "rp-1", e.roClaims("iss", webClient))), wantStatus: 303, wantError: "invalid_request_object"},
		{name: "authorize unregistered request_uri", method: get, path: "/oauth2/authorize", query: authz("request_uri", rp.srv.URL+"/other.jwt"), wantStatus: 303, wantError: "invalid_request_uri"},
		{name: "authorize request and request_uri", method: get, path: "/oauth2/authorize", query: authz("request", "a.b.c", "request_uri", rp.srv.URL+requestObjPath), wantStatus: 303, wantError: "invalid_request"},
		{name: "authorize response_mode=query", method: get, path: "/oauth2/authorize", query: authz("response_mode", "query"), wantStatus: 303},
		{name: "authorize response_mode=fragment is not offered", method: get, path: "/oauth2/authorize", query: authz("response_mode", "fragment"), wantStatus: 303, wantError: "unsupported_response_mode"},
		{name: "authorize response_type=CODE", method: get, path: "/oauth2/authorize", query: authz("response_type", "CODE"), wantStatus: 303, wantError: "unsupported_response_type"},
		{name: "authorize 3-character code_challenge", method: get, path: "/oauth2/authorize", query: spaAuthz("code_challenge", "abc", "code_challenge_method", "S256"), wantStatus: 303, wantError: "invalid_request"},
		{name: "authorize loopback port change by a confidential client", method: get, path: "/oauth2/authorize", query: loopAuthz(loopConfClient, "http://127.0.0.1:9999/cb"), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize loopback registered port by a confidential client", method: get, path: "/oauth2/authorize", query: loopAuthz(loopConfClient, loopRedirect), wantStatus: 303},
		{name: "authorize loopback port change by a public native client", method: get, path: "/oauth2/authorize", query: loopAuthz(loopPubClient, "http://127.0.0.1:9999/cb"), wantStatus: 303},
		{name: "par loopback port change by a confidential client", method: post, path: "/oauth2/par", form: loopAuthz(loopConfClient, "http://127.0.0.1:9999/cb"), user: loopConfClient, pass: loopConfSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "par public client without PKCE", method: post, path: "/oauth2/par", form: spaAuthz("client_id", spaClient), wantStatus: 400, wantError: "invalid_request"},
		{name: "authorize unsupported code_challenge_method", method: get, path: "/oauth2/authorize", query: spaAuthz("code_challenge", challenge, "code_challenge_method", "S512"), wantStatus: 303, wantError: "invalid_request"},

		// Token endpoint.
		{name: "token unknown grant_type", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "password", "username", "a", "password", "b"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "token missing grant_type", method: post, path: "/oauth2/token", form: tokenForm("code", "x"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "token wrong client secret", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "code", "x", "redirect_uri", webRedirect), user: webClient, pass: "wrong", wantStatus: 401, wantError: "invalid_client", wantHeader: [2]string{"WWW-Authenticate", "Basic"}},
		{name: "token unknown client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials"), user: "nobody", pass: "x", wantStatus: 401, wantError: "invalid_client"},
		{name: "token code replay", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "code", usedCode, "redirect_uri", webRedirect, "code_verifier", verifier), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_grant"},
		{name: "token code with another redirect_uri", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "code", webCode(), "redirect_uri", "https://rp.example/other"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_grant"},
		{name: "token wrong PKCE verifier", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "client_id", spaClient, "code", spaCode(), "redirect_uri", spaRedirect, "code_verifier", oauth2.GenerateVerifier()), wantStatus: 400, wantError: "invalid_grant"},
		{name: "token missing PKCE verifier", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "client_id", spaClient, "code", spaCode(), "redirect_uri", spaRedirect), wantStatus: 400, wantError: "invalid_grant"},
		{name: "token code of another client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "code", spaCode(), "redirect_uri", spaRedirect, "code_verifier", spaVerifier), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_grant"},
		{name: "token forged code", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "authorization_code", "code", "forged.code", "redirect_uri", webRedirect), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_grant"},
		{name: "token forged refresh token", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "refresh_token", "refresh_token", "forged.token"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_grant"},
		{name: "token access token as refresh token", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "refresh_token", "refresh_token", tok.AccessToken), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_grant"},
		{name: "token JSON body", method: post, path: "/oauth2/token", body: `{"grant_type":"client_credentials"}`, ctype: "application/json", user: serviceClient, pass: serviceSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "token oversized body", method: post, path: "/oauth2/token", body: "grant_type=client_credentials&pad=" + strings.Repeat("x", 100<<10), user: serviceClient, pass: serviceSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "token GET", method: get, path: "/oauth2/token", query: tokenForm("grant_type", "client_credentials"), wantStatus: 405, wantError: "invalid_request"},
		{name: "token client_credentials by public client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", spaClient), wantStatus: 400, wantError: "unauthorized_client"},
		{name: "token client_credentials scope not allowed", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", serviceClient, "client_secret", serviceSecret, "scope", "orders.delete"), wantStatus: 400, wantError: "invalid_scope"},
		{name: "token client_credentials with openid", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "scope", "openid"), user: resourceClient, pass: resourceSecret, wantStatus: 400, wantError: "invalid_scope"},
		{name: "token client_secret_post by a client_secret_basic client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", resourceClient, "client_secret", resourceSecret), wantStatus: 401, wantError: "invalid_client"},
		{name: "token client_secret_basic by a client_secret_post client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials"), user: serviceClient, pass: serviceSecret, wantStatus: 401, wantError: "invalid_client"},
		{name: "token no secret by a confidential client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", serviceClient), wantStatus: 401, wantError: "invalid_client"},
		{name: "token two authentication methods", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", resourceClient, "client_secret", resourceSecret), user: resourceClient, pass: resourceSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "token client_secret_post by its client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", serviceClient, "client_secret", serviceSecret), wantStatus: 200},
		{name: "token audience matched by prefix", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", serviceClient, "client_secret", serviceSecret, "audience", resourceClient+"/evil"), wantStatus: 400, wantError: "invalid_request"},
		{name: "token registered audience", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", serviceClient, "client_secret", serviceSecret, "audience", resourceClient), wantStatus: 200},
		{name: "token refresh with a broader scope", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "refresh_token", "refresh_token", live.RefreshToken, "scope", "openid profile offline_access"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_scope"},
		{name: "token grant not allowed for client", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "unauthorized_client"},
		{name: "token client_id in body differs from Basic", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "client_credentials", "client_id", webClient), user: serviceClient, pass: serviceSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "token wechat grant client_id in body differs from Basic", method: post, path: "/oauth2/token", form: tokenForm("grant_type", "urn:wxoidc:params:oauth:grant-type:wechat-jscode", "client_id", "mini", "js_code", "x"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "token repeated parameter", method: post, path: "/oauth2/token", body: "grant_type=client_credentials&grant_type=client_credentials", user: serviceClient, pass: serviceSecret, wantStatus: 400, wantError: "invalid_request"},

		// Revocation (RFC 7009).
		{name: "revoke without client authentication", method: post, path: "/oauth2/revoke", form: tokenForm("token", tok.RefreshToken), wantStatus: 401, wantError: "invalid_client"},
		{name: "revoke wrong secret", method: post, path: "/oauth2/revoke", form: tokenForm("token", tok.RefreshToken), user: webClient, pass: "wrong", wantStatus: 401, wantError: "invalid_client", wantHeader: [2]string{"WWW-Authenticate", "Basic"}},
		{name: "revoke unknown token is fine", method: post, path: "/oauth2/revoke", form: tokenForm("token", "unknown"), user: webClient, pass: webSecret, wantStatus: 200},
		{name: "revoke client_id in body differs from Basic", method: post, path: "/oauth2/revoke", form: tokenForm("token", tok.RefreshToken, "client_id", spaClient), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "revoke missing token", method: post, path: "/oauth2/revoke", form: tokenForm("token_type_hint", "access_token"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},

		// Introspection (RFC 7662).
		{name: "introspect with a bearer token", method: post, path: "/oauth2/introspect", form: tokenForm("token", tok.AccessToken), bearer: tok.AccessToken, wantStatus: 401, wantError: "invalid_client"},
		{name: "introspect by public client", method: post, path: "/oauth2/introspect", form: tokenForm("token", tok.AccessToken, "client_id", spaClient), wantStatus: 401, wantError: "invalid_client"},
		{name: "introspect wrong secret", method: post, path: "/oauth2/introspect", form: tokenForm("token", tok.AccessToken), user: webClient, pass: "wrong", wantStatus: 401, wantError: "invalid_client"},
		{name: "introspect missing token", method: post, path: "/oauth2/introspect", form: tokenForm("token_type_hint", "access_token"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "introspect garbage token", method: post, path: "/oauth2/introspect", form: tokenForm("token", "garbage"), user: webClient, pass: webSecret, wantStatus: 200},

		// UserInfo (RFC 6750).
		{name: "userinfo without token", method: get, path: "/userinfo", wantStatus: 401, wantError: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", "Bearer"}},
		{name: "userinfo garbage token", method: get, path: "/userinfo", bearer: "garbage", wantStatus: 401, wantError: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `error="invalid_token"`}},
		{name: "userinfo refresh token", method: get, path: "/userinfo", bearer: tok.RefreshToken, wantStatus: 401, wantError: "invalid_token"},
		{name: "userinfo POST with the token in the header and no body", method: post, path: "/userinfo", bearer: live.AccessToken, wantStatus: 200},
		{name: "userinfo token in query string", method: get, path: "/userinfo", query: tokenForm("access_token", tok.AccessToken), wantStatus: 400, wantError: "invalid_request"},
		{name: "userinfo token without openid", method: get, path: "/userinfo", bearer: ccToken, wantStatus: 403, wantError: "insufficient_scope", wantHeader: [2]string{"WWW-Authenticate", `error="insufficient_scope"`}},

		// PAR (RFC 9126).
		{name: "par wrong secret", method: post, path: "/oauth2/par", form: authz(), user: webClient, pass: "wrong", wantStatus: 401, wantError: "invalid_client"},
		{name: "par client_id in body differs from Basic", method: post, path: "/oauth2/par", form: authz("client_id", spaClient), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},
		{name: "par unregistered redirect_uri", method: post, path: "/oauth2/par", form: authz("redirect_uri", "https://evil.example/cb"), user: webClient, pass: webSecret, wantStatus: 400, wantError: "invalid_request"},

		// Dynamic Client Registration (RFC 7591, RFC 7592).
		{name: "register without initial access token", method: post, path: "/oauth2/register", body: reg(), ctype: jsonType, wantStatus: 401, wantError: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", "Bearer realm="}},
		{name: "register unknown initial access token", method: post, path: "/oauth2/register", body: reg(), ctype: jsonType, bearer: "unknown-token", wantStatus: 401, wantError: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `error="invalid_token"`}},
		{name: "register used-up initial access token", method: post, path: "/oauth2/register", body: reg(), ctype: jsonType, bearer: usedIAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "register expired initial access token", method: post, path: "/oauth2/register", body: reg(), ctype: jsonType, bearer: expiredIAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "register registration access token as initial access token", method: post, path: "/oauth2/register", body: reg(), ctype: jsonType, bearer: dynRAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "register form body", method: post, path: "/oauth2/register", form: tokenForm("redirect_uris", "https://dcr.example/cb"), bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register malformed JSON", method: post, path: "/oauth2/register", body: `{"redirect_uris":`, ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register JSON array", method: post, path: "/oauth2/register", body: `[]`, ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register redirect_uris as a string", method: post, path: "/oauth2/register", body: `{"redirect_uris":"https://dcr.example/cb"}`, ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register oversized body", method: post, path: "/oauth2/register", body: reg("client_name", strings.Repeat("x", 70<<10)), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register without redirect_uris", method: post, path: "/oauth2/register", body: `{"client_name":"x"}`, ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_redirect_uri"},
		{name: "register http redirect_uri", method: post, path: "/oauth2/register", body: reg("redirect_uris", []string{"http://dcr.example/cb"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_redirect_uri"},
		{name: "register redirect_uri with fragment", method: post, path: "/oauth2/register", body: reg("redirect_uris", []string{"https://dcr.example/cb#x"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_redirect_uri"},
		{name: "register relative redirect_uri", method: post, path: "/oauth2/register", body: reg("redirect_uris", []string{"/cb"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_redirect_uri"},
		{name: "register http post_logout_redirect_uri", method: post, path: "/oauth2/register", body: reg("post_logout_redirect_uris", []string{"http://dcr.example/bye"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_redirect_uri"},
		{name: "register response_type token", method: post, path: "/oauth2/register", body: reg("response_types", []string{"token"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register response_type code without the authorization_code grant", method: post, path: "/oauth2/register", body: reg("grant_types", []string{"client_credentials"}, "response_types", []string{"code"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register implicit grant", method: post, path: "/oauth2/register", body: reg("grant_types", []string{"implicit"}), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register private_key_jwt", method: post, path: "/oauth2/register", body: reg("token_endpoint_auth_method", "private_key_jwt"), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register public client_credentials", method: post, path: "/oauth2/register", body: reg("grant_types", []string{"client_credentials"}, "token_endpoint_auth_method", "none"), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register the WeChat grant", method: post, path: "/oauth2/register", body: reg("grant_types", []string{"urn:wxoidc:params:oauth:grant-type:wechat-jscode"}, "token_endpoint_auth_method", "none", "wechat_appid", miniApp), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register unknown id_token_signed_response_alg", method: post, path: "/oauth2/register", body: reg("id_token_signed_response_alg", "HS256"), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register jwks and jwks_uri", method: post, path: "/oauth2/register", body: reg("jwks", map[string]any{"keys": []any{}}, "jwks_uri", "https://dcr.example/jwks"), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register jwks not an object", method: post, path: "/oauth2/register", body: reg("jwks", "keys"), ctype: jsonType, bearer: iat, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "register GET", method: get, path: "/oauth2/register", bearer: iat, wantStatus: 405, wantError: "invalid_request"},
		{name: "register a client", method: post, path: "/oauth2/register", body: reg(), ctype: jsonType, bearer: iat, wantStatus: 201},
		{name: "client configuration without token", method: get, path: dynPath, wantStatus: 401, wantError: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", "Bearer realm="}},
		{name: "client configuration wrong token", method: get, path: dynPath, bearer: dynRAT + "x", wantStatus: 401, wantError: "invalid_token", wantHeader: [2]string{"WWW-Authenticate", `error="invalid_token"`}},
		{name: "client configuration token of another client", method: get, path: dynPath, bearer: otherRAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "client configuration initial access token", method: get, path: dynPath, bearer: iat, wantStatus: 401, wantError: "invalid_token"},
		{name: "client configuration token in the query", method: get, path: dynPath, query: tokenForm("access_token", dynRAT), wantStatus: 401, wantError: "invalid_token"},
		{name: "client configuration of an operator's client", method: get, path: "/oauth2/register/" + webClient, bearer: dynRAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "client configuration of an unknown client", method: del, path: "/oauth2/register/nobody", bearer: dynRAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "client configuration read", method: get, path: dynPath, bearer: dynRAT, wantStatus: 200},
		{name: "client update without client_id", method: put, path: dynPath, body: reg(), ctype: jsonType, bearer: dynRAT, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "client update with another client_id", method: put, path: dynPath, body: reg("client_id", "other"), ctype: jsonType, bearer: dynRAT, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "client update with a wrong client_secret", method: put, path: dynPath, body: reg("client_id", dynID, "client_secret", "chosen"), ctype: jsonType, bearer: dynRAT, wantStatus: 400, wantError: "invalid_client_metadata"},
		{name: "client update with a bad redirect_uri", method: put, path: dynPath, body: reg("client_id", dynID, "redirect_uris", []string{"javascript:alert(1)"}), ctype: jsonType, bearer: dynRAT, wantStatus: 400, wantError: "invalid_redirect_uri"},
		{name: "client update wrong token", method: put, path: dynPath, body: reg("client_id", dynID), ctype: jsonType, bearer: otherRAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "client delete wrong token", method: del, path: dynPath, bearer: otherRAT, wantStatus: 401, wantError: "invalid_token"},
		{name: "client configuration POST", method: post, path: dynPath, body: reg(), ctype: jsonType, bearer: dynRAT, wantStatus: 405, wantError: "invalid_request"},

		// Logout.
		{name: "logout unregistered post_logout_redirect_uri", method: get, path: "/oauth2/logout", query: tokenForm("client_id", webClient, "post_logout_redirect_uri", "https://evil.example/"), wantStatus: 400},
		{name: "logout forged id_token_hint", method: get, path: "/oauth2/logout", query: tokenForm("id_token_hint", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.", "post_logout_redirect_uri", webLogout), wantStatus: 400},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := e.issuer + tc.path
			if tc.query != nil {
				target += "?" + tc.query.Encode()
			}
			var body io.Reader
			switch {
			case tc.body != "":
				body = strings.NewReader(tc.body)
			case tc.form != nil:
				body = strings.NewReader(tc.form.Encode())
			}
			req, _ := http.NewRequest(tc.method, target, body)
			if body != nil {
				ct := tc.ctype
				if ct == "" {
					ct = "application/x-www-form-urlencoded"
				}
				req.Header.Set("Content-Type", ct)
			}
			if tc.user != "" {
				req.SetBasicAuth(url.QueryEscape(tc.user), url.QueryEscape(tc.pass))
			}
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			resp, err := e.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d; body %s; location %s", resp.StatusCode, tc.wantStatus, raw, resp.Header.Get("Location"))
			}
			if h := tc.wantHeader; h[0] != "" && !strings.Contains(resp.Header.Get(h[0]), h[1]) {
				t.Errorf("header %s = %q, want it to contain %q", h[0], resp.Header.Get(h[0]), h[1])
			}
			for _, leak := range []string{"goroutine", ".go:", "panic", "sql", "debug"} {
				if strings.Contains(strings.ToLower(string(withoutTokens(raw))), leak) {
					t.Errorf("response leaks internals (%q): %s", leak, raw)
				}
			}
			if tc.wantError == "" {
				return
			}
			got := ""
			if resp.StatusCode == http.StatusSeeOther {
				loc, _ := url.Parse(resp.Header.Get("Location"))
				got = loc.Query().Get("error")
				if loc.Query().Get("iss") != e.issuer {
					t.Errorf("error redirect lacks iss (RFC 9207): %s", loc)
				}
			} else {
				var eb struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(raw, &eb); err != nil {
					t.Fatalf("error body is not JSON: %s", raw)
				}
				got = eb.Error
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
			}
			if got != tc.wantError {
				t.Fatalf("error %q, want %q; body %s", got, tc.wantError, raw)
			}
		})
	}
}

// withoutTokens returns a JSON token (or client information) response
// without its token and random id values:
// they are random base64url, which spells any short word now and then.
func withoutTokens(raw []byte) []byte {
	var v map[string]any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	for _, k := range []string{"access_token", "id_token", "refresh_token", "client_id", "client_secret", "registration_access_token", "registration_client_uri"} {
		delete(v, k)
	}
	b, _ := json.Marshal(v)
	return b
}
