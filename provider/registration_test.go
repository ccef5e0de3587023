package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// withDCR turns Dynamic Client Registration on, without its rate
// limit (every test request comes from one address).
func withDCR(c *provider.Config) {
	c.Registration = provider.RegistrationConfig{Enabled: true, LimitPerIP: provider.RateLimit{Rate: -1}}
}

// initialAccessToken stores a new initial access token of uses uses that
// expires after ttl, and returns it.
func (e *env) initialAccessToken(id string, uses int, ttl time.Duration) string {
	e.t.Helper()
	tok, hash := provider.NewRegistrationTokens(testSecret).New()
	now := time.Now().UTC()
	err := e.store.CreateInitialAccessToken(context.Background(), storage.InitialAccessToken{
		ID: id, Hash: hash, Uses: uses, UsesLeft: uses, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// registration sends a JSON request to the registration endpoints (path
// relative to the issuer, or an absolute registration_client_uri) with a
// bearer token, and returns the response with its body decoded.
func (e *env) registration(method, path, token string, doc any) (*http.Response, map[string]any) {
	e.t.Helper()
	if !strings.HasPrefix(path, "https://") {
		path = e.issuer + path
	}
	var body io.Reader
	if doc != nil {
		b, _ := json.Marshal(doc)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, path, body)
	if doc != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp, out
}

// registerWeb registers a confidential web client and returns the client
// information response.
func (e *env) registerWeb(iat string, extra map[string]any) map[string]any {
	e.t.Helper()
	doc := map[string]any{"client_name": "Registered RP", "redirect_uris": []string{"https://dcr.example/callback"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid profile offline_access"}
	for k, v := range extra {
		doc[k] = v
	}
	resp, out := e.registration(http.MethodPost, "/oauth2/register", iat, doc)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("register: status %d: %v", resp.StatusCode, out)
	}
	return out
}

func TestRegistration_Off(t *testing.T) {
	e := newEnv(t)
	var doc map[string]any
	if err := e.provider.Claims(&doc); err != nil {
		t.Fatal(err)
	}
	if _, ok := doc["registration_endpoint"]; ok {
		t.Fatalf("discovery lists registration_endpoint with registration off")
	}
	iat := e.initialAccessToken("iat-off", 1, time.Hour)
	resp, _ := e.registration(http.MethodPost, "/oauth2/register", iat, map[string]any{"redirect_uris": []string{"https://dcr.example/cb"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("register with registration off: status %d, want 404", resp.StatusCode)
	}
}

// TestRegistration_Metadata: unknown members are ignored (not stored, not
// echoed); fields only an operator sets cannot be registered, and an
// update keeps the operator's values; an update replaces the rest.
func TestRegistration_Metadata(t *testing.T) {
	e := newEnv(t, withDCR)
	iat := e.initialAccessToken("iat-meta", 5, time.Hour)
	out := e.registerWeb(iat, map[string]any{
		"logo_uri": "https://dcr.example/logo.png", "contacts": []string{"ops@dcr.example"}, "software_statement": "eyJ.x.y",
		"example_extension_parameter": map[string]any{"nested": true},
		"skip_consent":                true, "wechat_appid": miniApp, "audience": []string{resourceClient},
		"client_id": "chosen-by-client", "client_secret": "chosen-secret", "client_id_issued_at": 1,
	})
	for _, k := range []string{"logo_uri", "contacts", "software_statement", "example_extension_parameter", "skip_consent", "wechat_appid", "audience"} {
		if _, ok := out[k]; ok {
			t.Errorf("response echoes %s: %v", k, out[k])
		}
	}
	id, _ := out["client_id"].(string)
	if id == "" || id == "chosen-by-client" || out["client_secret"] == "chosen-secret" {
		t.Fatalf("client_id/client_secret must be the server's: %v", out)
	}
	if out["client_secret_expires_at"] != float64(0) || out["client_id_issued_at"] == nil {
		t.Errorf("client_secret_expires_at %v, client_id_issued_at %v", out["client_secret_expires_at"], out["client_id_issued_at"])
	}
	if out["registration_client_uri"] != e.issuer+"/oauth2/register/"+id {
		t.Errorf("registration_client_uri %v", out["registration_client_uri"])
	}
	c, err := e.store.Client(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.SkipConsent || c.WeChatAppID != "" || len(c.Audience) != 0 {
		t.Fatalf("operator-only fields were registered: %+v", c)
	}

	// An operator makes it first-party; the client's update keeps that,
	// and replaces what it sends (omitted fields are deleted; no scope
	// means the default, openid).
	err = e.store.UpdateClient(context.Background(), id, func(c storage.Client) (storage.Client, error) {
		c.SkipConsent = true
		return c, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rat, _ := out["registration_access_token"].(string)
	resp, got := e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{
		"client_id": id, "client_secret": out["client_secret"], "client_name": "Renamed",
		"redirect_uris": []string{"https://dcr.example/cb2"}, "skip_consent": false, "logo_uri": "https://x.example/l.png",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("update: status %d: %v", resp.StatusCode, got)
	}
	if got["client_name"] != "Renamed" || got["skip_consent"] != true || got["scope"] != "openid" || got["logo_uri"] != nil {
		t.Fatalf("update answer: %v", got)
	}
	if got["registration_access_token"] != rat || got["client_secret"] != nil {
		t.Fatalf("update must keep the registration access token and not show the secret: %v", got)
	}
	c, _ = e.store.Client(context.Background(), id)
	if !c.SkipConsent || len(c.Scopes) != 1 || len(c.GrantTypes) != 1 || c.RedirectURIs[0] != "https://dcr.example/cb2" {
		t.Fatalf("stored after update: %+v", c)
	}

	// Becoming public drops the secret; becoming confidential again shows
	// a new one, once.
	resp, got = e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{
		"client_id": id, "redirect_uris": []string{"https://dcr.example/cb2"}, "token_endpoint_auth_method": "none"})
	if resp.StatusCode != http.StatusOK || got["client_secret"] != nil || got["client_secret_expires_at"] != nil {
		t.Fatalf("to public: %d %v", resp.StatusCode, got)
	}
	resp, got = e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{
		"client_id": id, "redirect_uris": []string{"https://dcr.example/cb2"}})
	if resp.StatusCode != http.StatusOK || got["client_secret"] == nil || got["client_secret"] == out["client_secret"] {
		t.Fatalf("to confidential: %d %v", resp.StatusCode, got)
	}
}

// TestRegistration_AdminDeleteEndsToken: a client deleted by an operator
// takes its registration access token with it; one re-created with the
// same id does not inherit it.
func TestRegistration_AdminDeleteEndsToken(t *testing.T) {
	e := newEnv(t, withDCR)
	out := e.registerWeb(e.initialAccessToken("iat-del", 1, time.Hour), nil)
	id, rat := out["client_id"].(string), out["registration_access_token"].(string)
	if resp, _ := e.registration(http.MethodGet, "/oauth2/register/"+id, rat, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("read: %d", resp.StatusCode)
	}
	ctx := context.Background()
	if err := e.store.DeleteClient(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateClient(ctx, storage.Client{ID: id, TokenEndpointAuthMethod: storage.AuthMethodNone}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		resp, body := e.registration(m, "/oauth2/register/"+id, rat, nil)
		if resp.StatusCode != http.StatusUnauthorized || body["error"] != "invalid_token" || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("%s after admin delete: %d %v %q", m, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if _, err := e.store.Client(ctx, id); err != nil {
		t.Fatalf("the re-created client must survive: %v", err)
	}
}

func TestRegistration_RateLimit(t *testing.T) {
	e := newEnv(t, func(c *provider.Config) {
		c.Registration = provider.RegistrationConfig{Enabled: true, LimitPerIP: provider.RateLimit{Rate: 0.001, Burst: 2}}
	})
	for i := range 3 {
		resp, body := e.registration(http.MethodPost, "/oauth2/register", "unknown", map[string]any{})
		want := http.StatusUnauthorized
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d: %v", i, resp.StatusCode, want, body)
		}
		if i == 2 && resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
}

// TestRegistration_SecretsStayOut: initial access tokens, registration
// access tokens and client secrets appear in no log line, no audit event
// and no error answer.
func TestRegistration_SecretsStayOut(t *testing.T) {
	e := newEnv(t, withDCR)
	iat := e.initialAccessToken("iat-leak", 1, time.Hour)
	out := e.registerWeb(iat, nil)
	id, rat, secret := out["client_id"].(string), out["registration_access_token"].(string), out["client_secret"].(string)
	var answers []string
	record := func(resp *http.Response, body map[string]any) {
		b, _ := json.Marshal(body)
		answers = append(answers, string(b)+resp.Header.Get("WWW-Authenticate"))
	}
	record(e.registration(http.MethodPost, "/oauth2/register", iat, map[string]any{"redirect_uris": []string{"https://dcr.example/cb"}})) // used up
	record(e.registration(http.MethodGet, "/oauth2/register/"+id, rat+"x", nil))
	record(e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{"client_id": id, "client_secret": secret + "x"}))
	record(e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{"client_id": "other", "client_secret": secret}))
	record(e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{"client_id": id, "client_secret": secret, "redirect_uris": []string{"ftp://x"}}))
	if resp, _ := e.registration(http.MethodPut, "/oauth2/register/"+id, rat, map[string]any{"client_id": id, "client_secret": secret, "redirect_uris": []string{"https://dcr.example/cb"}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	if resp, _ := e.registration(http.MethodDelete, "/oauth2/register/"+id, rat, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	events, _, err := e.store.Events(context.Background(), storage.EventQuery{ClientID: id})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
		if ev.Details["registration"] != "dynamic" {
			t.Errorf("event %s does not say it came through registration: %v", ev.Type, ev.Details)
		}
	}
	if strings.Join(types, ",") != "client_deleted,client_updated,client_created" {
		t.Fatalf("events %v", types)
	}
	evJSON, _ := json.Marshal(events)
	for name, s := range map[string]string{"initial access token": iat, "registration access token": rat, "client secret": secret} {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("the log holds the %s", name)
		}
		if bytes.Contains(evJSON, []byte(s)) {
			t.Errorf("an event holds the %s", name)
		}
		for _, a := range answers {
			if strings.Contains(a, s) {
				t.Errorf("an error answer holds the %s: %s", name, a)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "client_created") {
		t.Fatal("the audit log line of the registration is missing (the check above would prove nothing)")
	}
}
