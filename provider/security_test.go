package provider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// TestPAR_StoresOnlyBoundedProtocolParameters: a pushed request padded
// with unknown parameters is stored without them, and without the client
// secret that authenticated it; an over-long protocol parameter is
// refused.
func TestPAR_StoresOnlyBoundedProtocolParameters(t *testing.T) {
	e := newEnv(t)
	const postClient, postSecret = "post-client", "post-secret-0123456789abcdef0123456789"
	now := time.Now().UTC()
	if err := e.store.CreateClient(e.ctx, storage.Client{
		ID: postClient, SecretHash: provider.HashClientSecret(testSecret, postSecret),
		RedirectURIs: []string{webRedirect}, GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid"}, TokenEndpointAuthMethod: storage.AuthMethodPost, CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	form := url.Values{
		"client_id": {postClient}, "client_secret": {postSecret}, "response_type": {"code"},
		"redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-par-0123456789"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
	}
	for i := range 12 {
		form.Set("pad"+strings.Repeat("x", i), strings.Repeat("p", 4000))
	}
	resp, body := e.postForm("/oauth2/par", "", "", form)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PAR: %d %v", resp.StatusCode, body)
	}
	ar, err := e.store.GetPARSession(e.ctx, body["request_uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	stored := ar.GetRequestForm()
	if stored.Get("state") != "state-par-0123456789" || stored.Get("redirect_uri") != webRedirect {
		t.Fatalf("the protocol parameters were not kept: %v", stored)
	}
	for k := range stored {
		if strings.HasPrefix(k, "pad") || k == "client_secret" {
			t.Fatalf("stored form keeps %q: %v", k, stored)
		}
	}
	if n := len(stored.Encode()); n > 2048 {
		t.Fatalf("stored form is %d bytes", n)
	}

	form.Set("state", strings.Repeat("s", 1025))
	resp, body = e.postForm("/oauth2/par", "", "", form)
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("PAR with a 1025-byte state: %d %v", resp.StatusCode, body)
	}
}

// TestAuthorize_RateLimitedPerAddress: /oauth2/authorize and /oauth2/par
// answer 429 with Retry-After beyond the per-address limit, and another
// address is not affected.
func TestAuthorize_RateLimitedPerAddress(t *testing.T) {
	e := newEnv(t, func(c *provider.Config) { c.AuthorizeLimitPerIP = provider.RateLimit{Rate: 0.001, Burst: 3} })
	authz := e.issuer + "/oauth2/authorize?" + url.Values{"client_id": {webClient}, "response_type": {"code"},
		"redirect_uri": {webRedirect}, "scope": {"openid"}, "state": {"state-0123456789"}}.Encode()
	var last *http.Response
	for range 4 {
		resp, err := e.client.Get(authz)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("4th authorization request in a burst of 3: %d, Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
	}
	resp, body := e.postForm("/oauth2/par", webClient, webSecret, url.Values{"response_type": {"code"}, "redirect_uri": {webRedirect}, "scope": {"openid"}})
	if resp.StatusCode != http.StatusTooManyRequests || body["error"] != "temporarily_unavailable" {
		t.Fatalf("PAR over the limit: %d %v", resp.StatusCode, body)
	}
}
