package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// responses records every body the provider answered in a test, for the
// leak scan.
type responses struct {
	mu     sync.Mutex
	bodies []string
}

func (r *responses) add(b string) {
	r.mu.Lock()
	r.bodies = append(r.bodies, b)
	r.mu.Unlock()
}

// mp drives the provider as a Mini Program would.
type mp struct {
	e    *env
	seen *responses
}

// wxLogin asks the simulator for a wx.login() code, as the WeChat client
// does.
func (m mp) wxLogin(appID, user string) string {
	m.e.t.Helper()
	return m.simCode("/sim/login", url.Values{"appid": {appID}, "user": {user}})
}

// phoneCode asks the simulator for a getPhoneNumber code.
func (m mp) phoneCode(appID, user, phone string) string {
	m.e.t.Helper()
	return m.simCode("/sim/phone-code", url.Values{"appid": {appID}, "user": {user}, "phone": {phone}})
}

func (m mp) simCode(path string, form url.Values) string {
	resp, err := http.PostForm(m.e.simURL+path, form)
	if err != nil {
		m.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Code string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Code == "" {
		m.e.t.Fatalf("simulator %s: %v", path, err)
	}
	return out.Code
}

// grant posts the WeChat grant and returns the status and decoded body.
func (m mp) grant(form url.Values) (int, map[string]any, http.Header) {
	m.e.t.Helper()
	if form.Get("grant_type") == "" {
		form.Set("grant_type", provider.GrantTypeWeChat)
	}
	return m.post("/oauth2/token", "", form)
}

func (m mp) post(path, bearer string, form url.Values) (int, map[string]any, http.Header) {
	m.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, m.e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := m.e.client.Do(req)
	if err != nil {
		m.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m.seen != nil {
		m.seen.add(string(raw))
	}
	var body map[string]any
	json.Unmarshal(raw, &body)
	return resp.StatusCode, body, resp.Header
}

// login runs the grant for user at appID's client and verifies the ID
// token; it returns the body and the verified sub.
func (m mp) login(clientID, appID, user, scope string) (map[string]any, string) {
	m.e.t.Helper()
	status, body, _ := m.grant(url.Values{"client_id": {clientID}, "js_code": {m.wxLogin(appID, user)}, "scope": {scope}})
	if status != http.StatusOK {
		m.e.t.Fatalf("grant for %s at %s: %d %v", user, clientID, status, body)
	}
	raw, _ := body["id_token"].(string)
	idt, err := m.e.provider.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{"RS256", "ES256"}}).Verify(m.e.ctx, raw)
	if err != nil {
		m.e.t.Fatalf("verify ID token: %v", err)
	}
	return body, idt.Subject
}

func TestWeChatGrant_Users(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	body, sub := m.login(miniClient, miniApp, "bob", "openid offline_access wechat")
	for _, k := range []string{"access_token", "refresh_token", "id_token", "expires_in", "scope"} {
		if _, ok := body[k]; !ok {
			t.Errorf("token response lacks %s: %v", k, body)
		}
	}
	if body["token_type"] != "bearer" && body["token_type"] != "Bearer" {
		t.Errorf("token_type %v", body["token_type"])
	}
	u, err := e.store.User(context.Background(), sub)
	if err != nil || u.UnionID != e.sim.UnionID(miniApp, "bob") {
		t.Fatalf("first login did not create the user with its unionid: %+v %v", u, err)
	}
	// The same person again: the same sub.
	if _, again := m.login(miniClient, miniApp, "bob", "openid"); again != sub {
		t.Fatalf("second login: sub %s, want %s", again, sub)
	}
	// Another Mini Program of the same Open Platform account: same sub.
	if _, other := m.login(miniClient2, miniApp2, "bob", "openid"); other != sub {
		t.Fatalf("second app: sub %s, want %s (same unionid)", other, sub)
	}
	// Another person: another sub.
	if _, carol := m.login(miniClient, miniApp, "carol", "openid"); carol == sub {
		t.Fatal("two people share a sub")
	}
	// wechat scope: the openid for the requesting client's app.
	ui := m.userinfo(body["access_token"].(string))
	if ui["sub"] != sub || ui["wechat_openid"] != e.sim.OpenID(miniApp, "bob") || ui["wechat_unionid"] != e.sim.UnionID(miniApp, "bob") {
		t.Fatalf("userinfo %v", ui)
	}

	// Refresh works like any other refresh, with rotation.
	status, refreshed, _ := m.post("/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {body["refresh_token"].(string)}})
	if status != http.StatusOK || refreshed["refresh_token"] == body["refresh_token"] || refreshed["id_token"] == nil {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}
	status, reused, _ := m.post("/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {body["refresh_token"].(string)}})
	if status != http.StatusBadRequest || reused["error"] != "invalid_grant" {
		t.Fatalf("reused refresh token: %d %v", status, reused)
	}
}

func (m mp) userinfo(token string) map[string]any {
	m.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := m.e.client.Do(req)
	if err != nil {
		m.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func TestWeChatGrant_UnionIDArrivesLater(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	// An identity first seen without a unionid (the app was not yet bound
	// to the Open Platform account)…
	ctx := context.Background()
	res, err := e.store.LinkIdentity(ctx, storageLink(miniApp, e.sim.OpenID(miniApp, "dave"), "", "sub-dave"))
	first := res.User
	if err != nil {
		t.Fatal(err)
	}
	// …logs in now that WeChat sends the unionid: same user, unionid
	// attached; the other app then lands on the same sub.
	if _, sub := m.login(miniClient, miniApp, "dave", "openid"); sub != first.Subject {
		t.Fatalf("login with a new unionid forked the person: %s vs %s", sub, first.Subject)
	}
	if _, sub := m.login(miniClient2, miniApp2, "dave", "openid"); sub != first.Subject {
		t.Fatalf("second app: %s, want %s", sub, first.Subject)
	}
}

func TestWeChatGrant_Errors(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	used := m.wxLogin(miniApp, "bob")
	if s, b, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {used}}); s != 200 {
		t.Fatalf("first use: %d %v", s, b)
	}
	cases := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
		wantInDesc string
	}{
		{"reused code", url.Values{"client_id": {miniClient}, "js_code": {used}}, 400, "invalid_grant", "40163"},
		{"forged code", url.Values{"client_id": {miniClient}, "js_code": {"071forgedcode"}}, 400, "invalid_grant", "40029"},
		{"code of another app", url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp2, "bob")}}, 400, "invalid_grant", "40029"},
		{"missing code", url.Values{"client_id": {miniClient}}, 400, "invalid_request", "js_code"},
		{"unknown client", url.Values{"client_id": {"nobody"}, "js_code": {"x"}}, 401, "invalid_client", ""},
		{"client without the grant", url.Values{"client_id": {spaClient}, "js_code": {"x"}}, 400, "unauthorized_client", ""},
		{"confidential client without the grant", url.Values{"client_id": {serviceClient}, "client_secret": {serviceSecret}, "js_code": {"x"}}, 400, "unauthorized_client", ""},
		{"scope not allowed", url.Values{"client_id": {miniClient2}, "js_code": {"x"}, "scope": {"openid phone"}}, 400, "invalid_scope", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, _ := m.grant(tc.form)
			if status != tc.wantStatus || body["error"] != tc.wantError {
				t.Fatalf("%d %v, want %d %s", status, body, tc.wantStatus, tc.wantError)
			}
			if desc, _ := body["error_description"].(string); !strings.Contains(desc, tc.wantInDesc) {
				t.Fatalf("error_description %q lacks %q", desc, tc.wantInDesc)
			}
		})
	}

	// WeChat busy, rate-limited or down: 503 with Retry-After, then recovery.
	for _, f := range []wechattest.Faults{{Busy: 10}, {RateLimit: 1}, {Errcode: 45009, ErrcodeCount: 1}} {
		e.sim.SetFaults(f)
		status, body, h := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "bob")}})
		if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || h.Get("Retry-After") == "" {
			t.Fatalf("fault %+v: %d %v Retry-After %q", f, status, body, h.Get("Retry-After"))
		}
		e.sim.SetFaults(wechattest.Faults{})
		if _, sub := m.login(miniClient, miniApp, "bob", "openid"); sub == "" {
			t.Fatal("no recovery after the fault")
		}
	}
	// WeChat unreachable.
	e.sim.SetFaults(wechattest.Faults{WrongSecret: true})
	status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "bob")}})
	if status != http.StatusInternalServerError || !strings.Contains(body["error_description"].(string), "40125") {
		t.Fatalf("wrong app secret: %d %v", status, body)
	}
	e.sim.SetFaults(wechattest.Faults{})
}

func TestWeChatGrant_ConcurrentFirstLogins(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	const n = 50
	codes := make([]string, n)
	for i := range codes {
		codes[i] = m.wxLogin(miniApp, "erin")
	}
	subs := make(chan string, n)
	var wg sync.WaitGroup
	for _, c := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {c}, "scope": {"openid"}})
			if status != 200 {
				t.Errorf("concurrent login: %d %v", status, body)
				return
			}
			idt, err := e.provider.Verifier(&oidc.Config{ClientID: miniClient, SupportedSigningAlgs: []string{"ES256"}}).Verify(e.ctx, body["id_token"].(string))
			if err != nil {
				t.Error(err)
				return
			}
			subs <- idt.Subject
		}()
	}
	wg.Wait()
	close(subs)
	distinct := map[string]bool{}
	for s := range subs {
		distinct[s] = true
	}
	if len(distinct) != 1 {
		t.Fatalf("%d concurrent first logins made %d users, want 1", n, len(distinct))
	}
}

func TestWeChatGrant_PhoneAndDecrypt(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	// Phone at login.
	status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "frank")},
		"scope": {"openid phone"}, "phone_code": {m.phoneCode(miniApp, "frank", "13800138000")}})
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	var claims map[string]any
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: miniClient, SupportedSigningAlgs: []string{"ES256"}}).Verify(e.ctx, body["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	idt.Claims(&claims)
	if claims["phone_number"] != "+8613800138000" || claims["phone_number_verified"] != true {
		t.Fatalf("ID token phone claims: %v", claims)
	}

	// Phone later, with the bearer token.
	status, body, _ = m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "grace")}, "scope": {"openid phone wechat"}})
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	at := body["access_token"].(string)
	if ui := m.userinfo(at); ui["phone_number"] != nil {
		t.Fatalf("phone before binding: %v", ui)
	}
	status, bound, _ := m.post("/wechat/phone", at, url.Values{"phone_code": {m.phoneCode(miniApp, "grace", "13900139000")}})
	if status != 200 || bound["phone_number"] != "+8613900139000" {
		t.Fatalf("/wechat/phone: %d %v", status, bound)
	}
	if ui := m.userinfo(at); ui["phone_number"] != "+8613900139000" || ui["phone_number_verified"] != true {
		t.Fatalf("userinfo after binding: %v", ui)
	}
	if status, b, _ := m.post("/wechat/phone", at, url.Values{"phone_code": {"forged"}}); status != 400 || b["error"] != "invalid_request" {
		t.Fatalf("forged phone code: %d %v", status, b)
	}
	if status, b, _ := m.post("/wechat/phone", "", url.Values{"phone_code": {"x"}}); status != 401 || b["error"] != "invalid_token" {
		t.Fatalf("no bearer: %d %v", status, b)
	}

	// Legacy decryption with the current session key.
	data, iv, err := e.sim.EncryptData(miniApp, "grace", map[string]any{"nickName": "Grace"})
	if err != nil {
		t.Fatal(err)
	}
	status, plain, _ := m.post("/wechat/decrypt", at, url.Values{"encrypted_data": {data}, "iv": {iv}})
	if status != 200 || plain["nickName"] != "Grace" {
		t.Fatalf("decrypt: %d %v", status, plain)
	}
	// The data of another app's watermark.
	data2, iv2, _ := e.sim.EncryptData(miniApp2, "grace", map[string]any{"nickName": "Grace"})
	if status, b, _ := m.post("/wechat/decrypt", at, url.Values{"encrypted_data": {data2}, "iv": {iv2}}); status != 400 || b["error"] != "invalid_request" {
		t.Fatalf("foreign data: %d %v", status, b)
	}
	// The session key rotates at WeChat (wx.login called again, but the new
	// code not yet exchanged): the stored key is stale → a clear 400.
	m.wxLogin(miniApp, "grace")
	data, iv, _ = e.sim.EncryptData(miniApp, "grace", map[string]any{"nickName": "Grace"})
	status, b, _ := m.post("/wechat/decrypt", at, url.Values{"encrypted_data": {data}, "iv": {iv}})
	if status != 400 || !strings.Contains(b["error_description"].(string), "wx.login") {
		t.Fatalf("rotated key: %d %v", status, b)
	}
	if status, b, _ := m.post("/wechat/decrypt", at, url.Values{"encrypted_data": {"%%%"}, "iv": {"x"}}); status != 400 {
		t.Fatalf("garbage: %d %v", status, b)
	}
}

func TestWeChatGrant_RateLimit(t *testing.T) {
	e := newEnv(t, func(c *provider.Config) { c.GrantLimitPerIP = provider.RateLimit{Rate: 1, Burst: 2} })
	m := mp{e: e}
	var limited int
	for range 4 {
		status, body, h := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "bob")}})
		if status == http.StatusTooManyRequests {
			limited++
			if h.Get("Retry-After") == "" || body["error"] == nil {
				t.Fatalf("429 without Retry-After or error: %v", body)
			}
		}
	}
	if limited == 0 {
		t.Fatal("4 grants in a burst of 2 were never limited")
	}
}

// TestWeChatGrant_NoSecretLeaks scans every response and the provider's
// whole log of a full run for the secrets WeChat issued and holds.
func TestWeChatGrant_NoSecretLeaks(t *testing.T) {
	e := newEnv(t)
	seen := &responses{}
	m := mp{e: e, seen: seen}
	users := []string{"bob", "carol", "heidi"}
	for _, u := range users {
		body, _ := m.login(miniClient, miniApp, u, "openid offline_access phone wechat")
		m.post("/wechat/phone", body["access_token"].(string), url.Values{"phone_code": {m.phoneCode(miniApp, u, "13700137000")}})
		data, iv, _ := e.sim.EncryptData(miniApp, u, map[string]any{"x": 1})
		m.post("/wechat/decrypt", body["access_token"].(string), url.Values{"encrypted_data": {data}, "iv": {iv}})
		m.post("/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {body["refresh_token"].(string)}})
		seen.add(body["id_token"].(string)) // the tokens themselves are scanned too
		seen.add(body["access_token"].(string))
	}
	e.sim.SetFaults(wechattest.Faults{Busy: 5})
	m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "bob")}})
	e.sim.SetFaults(wechattest.Faults{WrongSecret: true})
	m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "bob")}})
	e.sim.SetFaults(wechattest.Faults{})

	secrets := []string{"dev-miniprogram-secret", "second-miniprogram-secret", "secret="}
	for _, u := range users {
		secrets = append(secrets, e.sim.SessionKey(miniApp, u))
	}
	haystacks := append(seen.bodies, e.logs.String())
	for _, s := range secrets {
		for _, h := range haystacks {
			if s != "" && strings.Contains(h, s) {
				t.Fatalf("secret %q leaked into %q", s, h)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "wechat_errcode") {
		t.Fatal("the WeChat errcode never reached the log")
	}
}

// TestWeChatGrant_RefreshTellsTodaysClaims binds a phone number after the
// login and refreshes: the new ID token carries it (the user is read along
// with the refresh token, not taken from the old session).
func TestWeChatGrant_RefreshTellsTodaysClaims(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "henry")}, "scope": {"openid offline_access phone"}})
	if status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	if status, b, _ := m.post("/wechat/phone", body["access_token"].(string), url.Values{"phone_code": {m.phoneCode(miniApp, "henry", "13700137000")}}); status != 200 {
		t.Fatalf("/wechat/phone: %d %v", status, b)
	}
	status, body, _ = m.post("/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {body["refresh_token"].(string)}})
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: miniClient, SupportedSigningAlgs: []string{"ES256"}}).Verify(e.ctx, body["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	if claims["phone_number"] != "+8613700137000" || claims["phone_number_verified"] != true {
		t.Fatalf("refreshed ID token claims: %v", claims)
	}
}

// TestWeChatAPI_RequiresScope: an openid-only token can neither bind a
// phone number nor decrypt data (403 insufficient_scope naming the scope,
// RFC 6750 §3.1); a token in the query string is refused at every
// protected resource (RFC 6750 §2.3).
func TestWeChatAPI_RequiresScope(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	body, _ := m.login(miniClient, miniApp, "ivan", "openid")
	at := body["access_token"].(string)
	data, iv, _ := e.sim.EncryptData(miniApp, "ivan", map[string]any{"nickName": "Ivan"})
	for _, c := range []struct {
		path, scope string
		form        url.Values
	}{
		{"/wechat/phone", "phone", url.Values{"phone_code": {m.phoneCode(miniApp, "ivan", "13600136000")}}},
		{"/wechat/decrypt", "wechat", url.Values{"encrypted_data": {data}, "iv": {iv}}},
	} {
		status, b, h := m.post(c.path, at, c.form)
		if status != http.StatusForbidden || b["error"] != "insufficient_scope" {
			t.Fatalf("%s with an openid-only token: %d %v", c.path, status, b)
		}
		if ch := h.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="`+c.scope+`"`) {
			t.Fatalf("%s: WWW-Authenticate %q", c.path, ch)
		}
	}
	if ui := m.userinfo(at); ui["phone_number"] != nil {
		t.Fatalf("a phone number was bound: %v", ui)
	}

	// The query string never carries a token; header and body not both.
	full, _ := m.login(miniClient, miniApp, "ivan", "openid phone wechat")
	good := full["access_token"].(string)
	for _, path := range []string{"/userinfo", "/wechat/phone", "/wechat/decrypt"} {
		status, b, _ := m.post(path+"?access_token="+url.QueryEscape(good), "", url.Values{"phone_code": {"x"}})
		if status != http.StatusBadRequest || b["error"] != "invalid_request" {
			t.Fatalf("%s with the token in the query: %d %v", path, status, b)
		}
		status, b, _ = m.post(path, good, url.Values{"access_token": {good}})
		if status != http.StatusBadRequest || b["error"] != "invalid_request" {
			t.Fatalf("%s with the token in header and body: %d %v", path, status, b)
		}
	}
	// The form body of a POST is a documented way (RFC 6750 §2.2).
	if status, b, _ := m.post("/userinfo", "", url.Values{"access_token": {good}}); status != 200 || b["sub"] == nil {
		t.Fatalf("userinfo with the token in the body: %d %v", status, b)
	}
}
