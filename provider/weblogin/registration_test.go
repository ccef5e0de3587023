package weblogin_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage"
)

// jsonCall sends doc (nil: no body) as JSON with a bearer token and
// decodes the JSON answer.
func jsonCall(t *testing.T, c *http.Client, method, u, token string, doc any) (*http.Response, map[string]any) {
	t.Helper()
	var body io.Reader
	if doc != nil {
		b, _ := json.Marshal(doc)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u, body)
	if doc != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", method, u, raw)
		}
	}
	return resp, out
}

// TestRegistration_EndToEnd: an operator issues an initial access token
// through the admin API; a relying party finds registration_endpoint in
// discovery, registers itself, signs a person in through WeChat's QR login
// (the simulator) and the consent page with golang.org/x/oauth2 and
// go-oidc, on two replicas; then reads, updates and deletes its
// registration with its registration access token.
func TestRegistration_EndToEnd(t *testing.T) {
	e := newEnvWith(t, func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true}
	})
	e.sim.SetAutoConfirm("alice")
	plain := http.DefaultClient

	// The operator's initial access token, for one registration.
	km, err := keys.New(e.store, keys.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	adm, err := admin.New(admin.Config{Clients: e.store, Keys: km, Users: e.store, Registrations: e.store, Secret: testSecret, Token: "admin-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	admSrv := httptest.NewServer(adm)
	t.Cleanup(admSrv.Close)
	resp, issued := jsonCall(t, plain, http.MethodPost, admSrv.URL+"/admin/initial-access-tokens", "admin-token-0123456789",
		map[string]any{"description": "partner RP", "uses": 1, "expires_in": 3600})
	iat, _ := issued["token"].(string)
	if resp.StatusCode != http.StatusCreated || iat == "" || issued["uses_left"] != float64(1) {
		t.Fatalf("issue initial access token: %d %v", resp.StatusCode, issued)
	}

	// Discovery names the registration endpoint.
	var disco struct {
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	if err := e.provider.Claims(&disco); err != nil || disco.RegistrationEndpoint != e.issuer+"/oauth2/register" {
		t.Fatalf("registration_endpoint %q (%v)", disco.RegistrationEndpoint, err)
	}

	// Registration.
	const redirect = "https://dcr.example/callback"
	doc := map[string]any{
		"client_name": "Registered RP", "redirect_uris": []string{redirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid profile offline_access", "token_endpoint_auth_method": "client_secret_basic",
		"id_token_signed_response_alg": "ES256", "logo_uri": "https://dcr.example/logo.png",
	}
	resp, reg := jsonCall(t, plain, http.MethodPost, disco.RegistrationEndpoint, iat, doc)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %v", resp.StatusCode, reg)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	clientID, _ := reg["client_id"].(string)
	secret, _ := reg["client_secret"].(string)
	rat, _ := reg["registration_access_token"].(string)
	config, _ := reg["registration_client_uri"].(string)
	if clientID == "" || secret == "" || rat == "" || config != e.issuer+"/oauth2/register/"+url.PathEscape(clientID) ||
		reg["client_secret_expires_at"] != float64(0) || reg["client_id_issued_at"] == nil || reg["client_name"] != "Registered RP" ||
		reg["scope"] != "openid profile offline_access" || reg["id_token_signed_response_alg"] != "ES256" || reg["logo_uri"] != nil {
		t.Fatalf("client information response: %v", reg)
	}
	// The token was for one registration only.
	if resp, body := jsonCall(t, plain, http.MethodPost, disco.RegistrationEndpoint, iat, doc); resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Fatalf("second registration with a single-use token: %d %v", resp.StatusCode, body)
	}
	resp, list := jsonCall(t, plain, http.MethodGet, admSrv.URL+"/admin/initial-access-tokens", "admin-token-0123456789", nil)
	if toks, _ := list["initial_access_tokens"].([]any); resp.StatusCode != http.StatusOK || len(toks) != 1 || toks[0].(map[string]any)["uses_left"] != float64(0) || toks[0].(map[string]any)["token"] != nil {
		t.Fatalf("admin list: %d %v", resp.StatusCode, list)
	}

	// The code flow: WeChat QR login, the consent page (a registered
	// client is never first-party), the code exchange and the ID token.
	conf := &oauth2.Config{ClientID: clientID, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: e.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}}
	b := e.browser(desktopUA)
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	form := consentForm(t, p)
	if !strings.Contains(p.body, "Registered RP") {
		t.Fatalf("the consent page does not name the registered client: %.500s", p.body)
	}
	form.Set("action", "allow")
	p = b.post(e.issuer+"/login/consent", form, http.Header{"Origin": {e.issuer}})
	p, _ = b.follow(p.location.String())
	idt := e.redeem(conf, v, p)
	if idt.Subject == "" || idt.Audience[0] != clientID {
		t.Fatalf("ID token sub %q aud %v", idt.Subject, idt.Audience)
	}

	// Read.
	resp, got := jsonCall(t, plain, http.MethodGet, config, rat, nil)
	if resp.StatusCode != http.StatusOK || got["client_id"] != clientID || got["registration_access_token"] != rat ||
		got["registration_client_uri"] != config || got["client_secret"] != nil || got["redirect_uris"].([]any)[0] != redirect {
		t.Fatalf("read: %d %v", resp.StatusCode, got)
	}
	// Update: the whole document, as read, with a new name and a second
	// redirect URI; the secret stays.
	delete(got, "registration_access_token")
	delete(got, "registration_client_uri")
	delete(got, "client_secret_expires_at")
	delete(got, "client_id_issued_at")
	got["client_name"] = "Registered RP v2"
	got["redirect_uris"] = []string{redirect, "https://dcr.example/callback2"}
	got["client_secret"] = secret
	resp, upd := jsonCall(t, plain, http.MethodPut, config, rat, got)
	if resp.StatusCode != http.StatusOK || upd["client_name"] != "Registered RP v2" || len(upd["redirect_uris"].([]any)) != 2 || upd["registration_access_token"] != rat {
		t.Fatalf("update: %d %v", resp.StatusCode, upd)
	}
	if _, err := conf.Exchange(e.ctx, "not-a-code"); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("after the update the secret must still work (invalid_grant for a bad code, not invalid_client): %v", err)
	}

	// Delete: 204, then the token and the client are gone.
	if resp, _ := jsonCall(t, plain, http.MethodDelete, config, rat, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if resp, body := jsonCall(t, plain, http.MethodGet, config, rat, nil); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("read after delete: %d %v", resp.StatusCode, body)
	}
	if _, err := conf.Exchange(e.ctx, "not-a-code"); err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Fatalf("a deleted client must not authenticate: %v", err)
	}

	// The audit trail names the registration.
	events, _, err := e.store.Events(t.Context(), storage.EventQuery{ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, ev := range events {
		if ev.Details["registration"] == "dynamic" {
			seen = append(seen, ev.Type)
		}
	}
	if strings.Join(seen, ",") != "client_deleted,client_updated,client_created" {
		t.Fatalf("registration events %v (all: %+v)", seen, events)
	}
}
