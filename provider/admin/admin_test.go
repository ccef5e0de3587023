package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage/memory"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-admin-test")

const testToken = "admin-token-0123456789"

type env struct {
	t     *testing.T
	store *memory.Store
	h     *admin.Handler
	token string
	host  string
}

func newEnv(t *testing.T, token string) *env {
	t.Helper()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	km, err := keys.New(store, keys.Config{Secret: testSecret, Algorithms: []string{"RS256", "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Clients: store, Keys: km, Users: store, Secret: testSecret, Token: token,
		WeChatApps: map[string]wechat.AppKind{"wxd0000000000000a1": wechat.KindMiniProgram, "wxd0000000000000b2": wechat.KindWebsite}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, h: h, token: token, host: "127.0.0.1:8081"}
}

// do sends a request with the env's token and decodes a JSON answer into
// a map (nil for an empty body).
func (e *env) do(method, path string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	return e.doType(method, path, "application/json", body)
}

// doType is do with the given Content-Type for a body.
func (e *env) doType(method, path, contentType string, body any) (int, map[string]any, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = e.host
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			e.t.Fatalf("%s %s: body %q: %v", method, path, rec.Body, err)
		}
	}
	return rec.Code, out, rec.Header()
}

func TestAdmin_AuthRequired(t *testing.T) {
	e := newEnv(t, testToken)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", http.StatusUnauthorized},
		{"wrong", "Bearer not-the-token-at-all", http.StatusUnauthorized},
		{"prefix", "Bearer " + testToken[:10], http.StatusUnauthorized},
		{"basic", "Basic " + testToken, http.StatusUnauthorized},
		{"right", "Bearer " + testToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/admin/clients", "/admin/keys"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				e.h.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Errorf("%s: got %d, want %d", path, rec.Code, tc.want)
				}
				if tc.want == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: no Bearer challenge", path)
				}
			}
		})
	}
	// Writes are refused too, before anything is stored.
	e.token = ""
	if code, _, _ := e.do(http.MethodPost, "/admin/clients", map[string]any{"client_id": "x", "grant_types": []string{"client_credentials"}}); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated create: got %d, want 401", code)
	}
	if cs, _ := e.store.ListClients(context.Background()); len(cs) != 0 {
		t.Errorf("unauthenticated create stored %d clients", len(cs))
	}
}

func TestAdmin_TokenlessLoopbackOnly(t *testing.T) {
	e := newEnv(t, "")
	for host, want := range map[string]int{
		"127.0.0.1:8081":     http.StatusOK,
		"localhost:8081":     http.StatusOK,
		"[::1]:8081":         http.StatusOK,
		"evil.example:8081":  http.StatusForbidden,
		"10.1.2.3:8081":      http.StatusForbidden,
		"127.0.0.1.nip.io:1": http.StatusForbidden,
	} {
		e.host = host
		if code, _, _ := e.do(http.MethodGet, "/admin/clients", nil); code != want {
			t.Errorf("Host %s: got %d, want %d", host, code, want)
		}
	}
}

func TestAdmin_ClientCRUD(t *testing.T) {
	e := newEnv(t, testToken)
	ctx := context.Background()

	// Create: the secret is generated, shown once, stored hashed.
	code, created, hdr := e.do(http.MethodPost, "/admin/clients", map[string]any{
		"client_id":     "web",
		"client_name":   "Web app",
		"redirect_uris": []string{"https://rp.example/cb"},
		"grant_types":   []string{"authorization_code", "refresh_token"},
		"scope":         "openid profile offline_access",
		"skip_consent":  true,
	})
	if code != http.StatusCreated {
		t.Fatalf("create: got %d %v, want 201", code, created)
	}
	if hdr.Get("Location") != "/admin/clients/web" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("create headers: Location %q, Cache-Control %q", hdr.Get("Location"), hdr.Get("Cache-Control"))
	}
	secret, _ := created["client_secret"].(string)
	if len(secret) < 40 {
		t.Fatalf("create: client_secret %q, want a generated secret", secret)
	}
	if created["client_secret_expires_at"] != 0.0 || created["token_endpoint_auth_method"] != "client_secret_basic" ||
		created["skip_consent"] != true || created["client_id_issued_at"] == nil {
		t.Errorf("create: document %v", created)
	}
	stored, err := e.store.Client(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.SecretHash, provider.HashClientSecret(testSecret, secret)) {
		t.Errorf("stored secret hash is not the keyed hash of the shown secret")
	}
	if bytes.Contains(stored.SecretHash, []byte(secret)) {
		t.Errorf("the plain secret is stored")
	}

	// Read: never the secret again.
	code, got, _ := e.do(http.MethodGet, "/admin/clients/web", nil)
	if code != http.StatusOK || got["client_id"] != "web" || got["client_name"] != "Web app" {
		t.Fatalf("get: %d %v", code, got)
	}
	if _, ok := got["client_secret"]; ok {
		t.Errorf("get shows the secret")
	}
	code, list, _ := e.do(http.MethodGet, "/admin/clients", nil)
	cs, _ := list["clients"].([]any)
	if code != http.StatusOK || len(cs) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	if _, ok := cs[0].(map[string]any)["client_secret"]; ok {
		t.Errorf("list shows the secret")
	}

	// Replace: same secret hash; no secret shown.
	code, upd, _ := e.do(http.MethodPut, "/admin/clients/web", map[string]any{
		"client_name":   "Web app 2",
		"redirect_uris": []string{"https://rp.example/cb", "https://rp.example/cb2"},
		"grant_types":   []string{"authorization_code"},
		"scope":         "openid",
	})
	if code != http.StatusOK || upd["client_name"] != "Web app 2" || len(upd["redirect_uris"].([]any)) != 2 {
		t.Fatalf("replace: %d %v", code, upd)
	}
	if _, ok := upd["client_secret"]; ok {
		t.Errorf("replace shows a secret though none was issued")
	}
	if after, _ := e.store.Client(ctx, "web"); !bytes.Equal(after.SecretHash, stored.SecretHash) {
		t.Errorf("replace changed the secret")
	}

	// Rotate: a new secret, shown once; the old hash is gone.
	code, rot, _ := e.do(http.MethodPost, "/admin/clients/web/secret", "{}")
	newSecret, _ := rot["client_secret"].(string)
	if code != http.StatusOK || newSecret == "" || newSecret == secret {
		t.Fatalf("rotate: %d %v", code, rot)
	}
	if after, _ := e.store.Client(ctx, "web"); !bytes.Equal(after.SecretHash, provider.HashClientSecret(testSecret, newSecret)) {
		t.Errorf("rotate did not store the new secret's hash")
	}

	// Public and back: the secret is dropped, then a fresh one is issued.
	code, pub, _ := e.do(http.MethodPut, "/admin/clients/web", map[string]any{
		"redirect_uris": []string{"https://rp.example/cb"}, "token_endpoint_auth_method": "none",
	})
	if code != http.StatusOK || pub["client_secret"] != nil {
		t.Fatalf("to public: %d %v", code, pub)
	}
	if after, _ := e.store.Client(ctx, "web"); len(after.SecretHash) != 0 {
		t.Errorf("public client kept a secret hash")
	}
	if code, _, _ := e.do(http.MethodPost, "/admin/clients/web/secret", "{}"); code != http.StatusBadRequest {
		t.Errorf("rotate on public client: got %d, want 400", code)
	}
	code, conf, _ := e.do(http.MethodPut, "/admin/clients/web", map[string]any{
		"redirect_uris": []string{"https://rp.example/cb"},
	})
	if s, _ := conf["client_secret"].(string); code != http.StatusOK || s == "" {
		t.Fatalf("back to confidential: %d %v, want a new secret", code, conf)
	}

	// Delete.
	if code, _, _ := e.do(http.MethodDelete, "/admin/clients/web", nil); code != http.StatusNoContent {
		t.Fatalf("delete: got %d, want 204", code)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if code, body, _ := e.do(m, "/admin/clients/web", nil); code != http.StatusNotFound || body["error"] != "not_found" {
			t.Errorf("%s after delete: %d %v, want 404", m, code, body)
		}
	}
	if code, _, _ := e.do(http.MethodPut, "/admin/clients/web", map[string]any{"grant_types": []string{"client_credentials"}}); code != http.StatusNotFound {
		t.Errorf("PUT after delete: got %d, want 404", code)
	}

	// A generated client id, and a public client has no secret.
	code, gen, _ := e.do(http.MethodPost, "/admin/clients", map[string]any{
		"redirect_uris": []string{"http://127.0.0.1:9000/cb"}, "token_endpoint_auth_method": "none",
	})
	if id, _ := gen["client_id"].(string); code != http.StatusCreated || len(id) < 16 || gen["client_secret"] != nil {
		t.Errorf("generated public client: %d %v", code, gen)
	}
}

// testJWKS is a relying party's public key set.
const testJWKS = `{"keys":[{"kty":"EC","crv":"P-256","kid":"rp-1","use":"sig","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`

// TestAdmin_RequestObjectAndLogoutMetadata: the admin API accepts and
// returns jwks, jwks_uri, request_uris, request_object_signing_alg and the
// back-channel logout metadata.
func TestAdmin_RequestObjectAndLogoutMetadata(t *testing.T) {
	e := newEnv(t, testToken)
	doc := map[string]any{
		"client_id": "rp", "redirect_uris": []string{"https://rp.example/cb"},
		"jwks": json.RawMessage(testJWKS), "request_object_signing_alg": "ES256",
		"request_uris":           []string{"https://rp.example/request.jwt#v1"},
		"backchannel_logout_uri": "https://rp.example/bcl", "backchannel_logout_session_required": true,
	}
	if code, body, _ := e.do(http.MethodPost, "/admin/clients", doc); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	_, got, _ := e.do(http.MethodGet, "/admin/clients/rp", nil)
	for _, k := range []string{"jwks", "request_object_signing_alg", "request_uris", "backchannel_logout_uri", "backchannel_logout_session_required"} {
		want, _ := json.Marshal(doc[k])
		have, _ := json.Marshal(got[k])
		if k == "jwks" {
			var a, b any
			json.Unmarshal(want, &a)
			json.Unmarshal(have, &b)
			want, _ = json.Marshal(a)
			have, _ = json.Marshal(b)
		}
		if string(want) != string(have) {
			t.Errorf("%s = %s, want %s", k, have, want)
		}
	}
	doc["jwks"], doc["jwks_uri"] = nil, "https://rp.example/jwks.json"
	if code, body, _ := e.do(http.MethodPut, "/admin/clients/rp", doc); code != http.StatusOK || body["jwks_uri"] != "https://rp.example/jwks.json" || body["jwks"] != nil {
		t.Fatalf("replace with jwks_uri: %d %v", code, body)
	}
}

func TestAdmin_ValidationErrors(t *testing.T) {
	e := newEnv(t, testToken)
	if code, _, _ := e.do(http.MethodPost, "/admin/clients", map[string]any{"client_id": "dup", "grant_types": []string{"client_credentials"}}); code != http.StatusCreated {
		t.Fatalf("setup: got %d", code)
	}
	for _, tc := range []struct {
		name     string
		body     any
		want     int
		wantCode string
	}{
		{"http redirect", map[string]any{"redirect_uris": []string{"http://rp.example/cb"}}, 400, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://rp.example/cb#x"}}, 400, "invalid_redirect_uri"},
		{"no redirect", map[string]any{"grant_types": []string{"authorization_code"}}, 400, "invalid_redirect_uri"},
		{"bad logout uri", map[string]any{"grant_types": []string{"client_credentials"}, "post_logout_redirect_uris": []string{"javascript:alert(1)"}}, 400, "invalid_redirect_uri"},
		{"implicit", map[string]any{"grant_types": []string{"implicit"}}, 400, "invalid_client_metadata"},
		{"token response", map[string]any{"redirect_uris": []string{"https://rp.example/cb"}, "response_types": []string{"token"}}, 400, "invalid_client_metadata"},
		{"auth method", map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt"}, 400, "invalid_client_metadata"},
		{"public cc", map[string]any{"grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "none"}, 400, "invalid_client_metadata"},
		{"wechat without appid", map[string]any{"grant_types": []string{provider.GrantTypeWeChat}, "token_endpoint_auth_method": "none"}, 400, "invalid_client_metadata"},
		{"alg", map[string]any{"grant_types": []string{"client_credentials"}, "id_token_signed_response_alg": "HS256"}, 400, "invalid_client_metadata"},
		{"client id", map[string]any{"client_id": "a b", "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"client id with a slash", map[string]any{"client_id": "a/b", "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"client id with NUL", map[string]any{"client_id": "a\x00b", "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"client id with invalid UTF-8", "{\"client_id\": \"a\xff\xfeb\", \"grant_types\": [\"client_credentials\"]}", 400, "invalid_client_metadata"},
		{"client id not ASCII", map[string]any{"client_id": "客户端", "grant_types": []string{"client_credentials"}}, 400, "invalid_client_metadata"},
		{"wechat grant on a website app", map[string]any{"grant_types": []string{provider.GrantTypeWeChat}, "token_endpoint_auth_method": "none", "wechat_appid": "wxd0000000000000b2"}, 400, "invalid_client_metadata"},
		{"wechat grant on an unknown app", map[string]any{"grant_types": []string{provider.GrantTypeWeChat}, "token_endpoint_auth_method": "none", "wechat_appid": "wxd0000000000000ff"}, 400, "invalid_client_metadata"},
		{"unknown field", map[string]any{"redirect_uri": "https://rp.example/cb"}, 400, "invalid_client_metadata"},
		{"wrong type", map[string]any{"redirect_uris": "https://rp.example/cb"}, 400, "invalid_client_metadata"},
		{"secret given", map[string]any{"grant_types": []string{"client_credentials"}, "client_secret": "mine"}, 400, "invalid_client_metadata"},
		{"not json", "client_id=x", 400, "invalid_client_metadata"},
		{"taken", map[string]any{"client_id": "dup", "grant_types": []string{"client_credentials"}}, 409, "invalid_client_metadata"},
		{"jwks and jwks_uri", map[string]any{"grant_types": []string{"client_credentials"}, "jwks": json.RawMessage(testJWKS), "jwks_uri": "https://rp.example/jwks"}, 400, "invalid_client_metadata"},
		{"private jwks", map[string]any{"grant_types": []string{"client_credentials"}, "jwks": json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}, 400, "invalid_client_metadata"},
		{"jwks not an object", map[string]any{"grant_types": []string{"client_credentials"}, "jwks": []string{"x"}}, 400, "invalid_client_metadata"},
		{"http jwks_uri", map[string]any{"grant_types": []string{"client_credentials"}, "jwks_uri": "http://rp.example/jwks"}, 400, "invalid_client_metadata"},
		{"request object alg without keys", map[string]any{"grant_types": []string{"client_credentials"}, "request_object_signing_alg": "RS256"}, 400, "invalid_client_metadata"},
		{"request object alg HS256", map[string]any{"grant_types": []string{"client_credentials"}, "jwks": json.RawMessage(testJWKS), "request_object_signing_alg": "HS256"}, 400, "invalid_client_metadata"},
		{"request_uri not https", map[string]any{"grant_types": []string{"client_credentials"}, "request_uris": []string{"ftp://rp.example/r"}}, 400, "invalid_client_metadata"},
		{"backchannel logout uri not https", map[string]any{"grant_types": []string{"client_credentials"}, "backchannel_logout_uri": "http://rp.example/bcl"}, 400, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := e.do(http.MethodPost, "/admin/clients", tc.body)
			if code != tc.want || body["error"] != tc.wantCode || body["error_description"] == "" {
				t.Errorf("got %d %v, want %d %s", code, body, tc.want, tc.wantCode)
			}
		})
	}
	if code, body, _ := e.do(http.MethodPut, "/admin/clients/dup", map[string]any{"client_id": "other", "grant_types": []string{"client_credentials"}}); code != 400 || body["error"] != "invalid_client_metadata" {
		t.Errorf("PUT renaming the client: %d %v", code, body)
	}
	if code, body, _ := e.do(http.MethodPut, "/admin/clients/dup", map[string]any{"grant_types": []string{"password"}}); code != 400 || body["error"] != "invalid_client_metadata" {
		t.Errorf("PUT with a bad grant: %d %v", code, body)
	}
	if cs, _ := e.store.ListClients(context.Background()); len(cs) != 1 {
		t.Errorf("refused requests stored clients: %d stored, want 1", len(cs))
	}

	// Writes must be JSON.
	req := httptest.NewRequest(http.MethodPost, "/admin/clients", strings.NewReader(`{"grant_types":["client_credentials"]}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: got %d, want 415", rec.Code)
	}
}

func TestAdmin_Keys(t *testing.T) {
	e := newEnv(t, testToken)
	code, list, _ := e.do(http.MethodGet, "/admin/keys", nil)
	ks, _ := list["keys"].([]any)
	if code != http.StatusOK || len(ks) != 2 {
		t.Fatalf("list: %d %v, want the RS256 and ES256 keys", code, list)
	}
	k := ks[0].(map[string]any)
	if k["kid"] == "" || k["state"] != "active" || k["alg"] == "" {
		t.Errorf("key document %v", k)
	}
	code, rot, _ := e.do(http.MethodPost, "/admin/keys/rotate", map[string]any{"algorithms": []string{"ES256"}})
	nk, _ := rot["keys"].([]any)
	if code != http.StatusOK || len(nk) != 1 || nk[0].(map[string]any)["alg"] != "ES256" || nk[0].(map[string]any)["state"] != "pending" {
		t.Fatalf("rotate ES256: %d %v", code, rot)
	}
	if code, _, _ := e.do(http.MethodPost, "/admin/keys/rotate", ""); code != http.StatusOK {
		t.Errorf("rotate all with an empty body: got %d", code)
	}
	if _, list, _ = e.do(http.MethodGet, "/admin/keys", nil); len(list["keys"].([]any)) != 5 {
		t.Errorf("after rotations: %d keys, want 5", len(list["keys"].([]any)))
	}
	if code, body, _ := e.do(http.MethodPost, "/admin/keys/rotate", map[string]any{"algorithms": []string{"EdDSA"}}); code != http.StatusBadRequest {
		t.Errorf("rotate an unconfigured alg: %d %v, want 400", code, body)
	}
}

func TestAdmin_Route(t *testing.T) {
	e := newEnv(t, testToken)
	for path, want := range map[string]string{
		"/admin/clients":          "/admin/clients",
		"/admin/clients/web":      "/admin/clients/{id}",
		"/admin/clients/a%2Fb":    "/admin/clients/{id}",
		"/admin/clients/x/secret": "/admin/clients/{id}/secret",
		"/admin/nothing":          "",
	} {
		method := http.MethodGet
		if strings.HasSuffix(path, "/secret") {
			method = http.MethodPost
		}
		if got := e.h.Route(httptest.NewRequest(method, path, nil)); got != want {
			t.Errorf("Route(%s) = %q, want %q", path, got, want)
		}
	}
}
