package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

func withRegistration(policy string) envOption {
	return func(c *provider.Config) {
		c.Users = &provider.Users{Storage: c.Storage, Registration: policy, Audit: &provider.Audit{Storage: c.Storage, Logger: c.Logger}}
	}
}

// TestWeChatGrant_SubjectFormat: new users get the one subject format,
// whichever app they come through.
func TestWeChatGrant_SubjectFormat(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	_, sub := m.login(miniClient, miniApp, "erin", "openid")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(sub) {
		t.Fatalf("sub %q is not 32 lower-case hex characters", sub)
	}
	if got := provider.NewSubject(); len(got) != 32 || got == provider.NewSubject() {
		t.Fatalf("NewSubject %q", got)
	}
}

// TestNewSubject_TimeOrdered: subjects keep the public format (32
// lower-case hex characters) and sort by creation time, so that sign-ups
// insert next to each other in the subject-keyed indexes; the first 12
// hex digits are the creation time in Unix milliseconds.
func TestNewSubject_TimeOrdered(t *testing.T) {
	format := regexp.MustCompile(`^[0-9a-f]{32}$`)
	before := time.Now().UnixMilli()
	subs := make([]string, 1000)
	for i := range subs {
		subs[i] = provider.NewSubject()
		if i == 500 {
			time.Sleep(2 * time.Millisecond) // across milliseconds too
		}
	}
	after := time.Now().UnixMilli()
	seen := map[string]bool{}
	for i, sub := range subs {
		if !format.MatchString(sub) {
			t.Fatalf("subject %q is not 32 lower-case hex characters", sub)
		}
		if seen[sub] {
			t.Fatalf("subject %q made twice", sub)
		}
		seen[sub] = true
		if i > 0 && sub <= subs[i-1] {
			t.Fatalf("subject %d %q does not sort after the one before it, %q", i, sub, subs[i-1])
		}
		// google/uuid keeps the first 64 bits increasing by running its
		// sub-millisecond counter ahead of the clock when called faster
		// than every 256 ns, at most some 0.1 ms here: allow 1 ms.
		ms, err := strconv.ParseInt(sub[:12], 16, 64)
		if err != nil || ms < before || ms > after+1 {
			t.Fatalf("subject %q: time %d (%v), want between %d and %d", sub, ms, err, before, after)
		}
	}
	// The rest is not the time: two subjects of the same millisecond differ
	// in their random part.
	if a, b := subs[0], subs[1]; a[16:] == b[16:] {
		t.Fatalf("subjects %q and %q share their random part", a, b)
	}
}

// TestWeChatGrant_LoginEvents: a login records last-login times and a
// login event (also logged), with the client and IP, and nothing secret.
func TestWeChatGrant_LoginEvents(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	body, sub := m.login(miniClient, miniApp, "frank", "openid offline_access")
	ctx := context.Background()
	u, err := e.store.User(ctx, sub)
	if err != nil || u.LastLoginAt.IsZero() {
		t.Fatalf("last login not recorded: %+v %v", u, err)
	}
	id, err := e.store.Identity(ctx, miniApp, e.sim.OpenID(miniApp, "frank"))
	if err != nil || id.LastLoginAt.IsZero() || id.Kind != "miniprogram" {
		t.Fatalf("identity %+v %v", id, err)
	}
	evs, _, err := e.store.Events(ctx, storage.EventQuery{Subject: sub})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
		if ev.ClientID != miniClient || ev.IP != "127.0.0.1" {
			t.Errorf("event %+v: want client %s and IP 127.0.0.1", ev, miniClient)
		}
	}
	if got := strings.Join(types, ","); got != "login,identity_linked,user_created" {
		t.Fatalf("events newest first: %s", got)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "audit event") || !strings.Contains(logs, evs[0].ID) {
		t.Fatalf("the login event %s is not logged:\n%s", evs[0].ID, logs)
	}
	for _, secret := range []string{body["access_token"].(string), body["refresh_token"].(string), e.sim.SessionKey(miniApp, "frank")} {
		for _, ev := range evs {
			if strings.Contains(ev.Type+ev.Subject+ev.ClientID+strings.Join(mapValues(ev.Details), " "), secret) {
				t.Fatalf("an event holds a secret: %+v", ev)
			}
		}
	}
}

func mapValues(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestWeChatGrant_RegistrationExisting: in login-only mode an unknown
// person needs a phone code that matches a pre-provisioned user.
func TestWeChatGrant_RegistrationExisting(t *testing.T) {
	e := newEnv(t, withRegistration(provider.RegistrationExisting))
	m := mp{e: e}
	ctx := context.Background()

	status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "gina")}, "scope": {"openid"}})
	if status != http.StatusBadRequest || body["error"] != "phone_required" {
		t.Fatalf("unknown person without phone_code: %d %v", status, body)
	}
	status, body, _ = m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "gina")}, "scope": {"openid"},
		"phone_code": {m.phoneCode(miniApp, "gina", "13911112222")}})
	if status != http.StatusBadRequest || body["error"] != "access_denied" {
		t.Fatalf("phone number of nobody: %d %v", status, body)
	}
	if us, _, _ := e.store.SearchUsers(ctx, storage.UserQuery{}); len(us) != 1 {
		t.Fatalf("login-only mode created users: %v", us)
	}

	if err := e.store.CreateUser(ctx, storage.User{Subject: "gina-sub", Name: "Gina", PhoneNumber: "+8613911112222", ExternalID: "emp-7"}); err != nil {
		t.Fatal(err)
	}
	status, body, _ = m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "gina")}, "scope": {"openid phone"},
		"phone_code": {m.phoneCode(miniApp, "gina", "13911112222")}})
	if status != http.StatusOK {
		t.Fatalf("pre-provisioned phone: %d %v", status, body)
	}
	if ui := m.userinfo(body["access_token"].(string)); ui["sub"] != "gina-sub" || ui["phone_number_verified"] != true {
		t.Fatalf("userinfo %v", ui)
	}
	// Linked now: the next login needs no phone code.
	if _, sub := m.login(miniClient, miniApp, "gina", "openid"); sub != "gina-sub" {
		t.Fatalf("second login: %s", sub)
	}
	// And the other Mini Program of the platform finds her by unionid.
	if _, sub := m.login(miniClient2, miniApp2, "gina", "openid"); sub != "gina-sub" {
		t.Fatalf("other app: %s", sub)
	}
	evs, _, _ := e.store.Events(ctx, storage.EventQuery{Type: storage.EventLoginFailed})
	if len(evs) != 2 || evs[0].Details["reason"] != "no_account" || evs[1].Details["reason"] != "phone_required" {
		t.Fatalf("login_failed events: %+v", evs)
	}
}

// TestWeChatGrant_DisabledUser: no grant and no refresh for a disabled
// user; userinfo and introspection answer as revoked.
func TestWeChatGrant_DisabledUser(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	ctx := context.Background()
	body, sub := m.login(miniClient, miniApp, "hank", "openid offline_access")
	if err := e.store.SetUserDisabled(ctx, sub, true); err != nil {
		t.Fatal(err)
	}
	status, got, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "hank")}, "scope": {"openid"}})
	if status != http.StatusBadRequest || got["error"] != "invalid_grant" || !strings.Contains(got["error_description"].(string), "disabled") {
		t.Fatalf("grant for a disabled user: %d %v", status, got)
	}
	status, got, _ = m.post("/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {body["refresh_token"].(string)}})
	if status != http.StatusBadRequest || got["error"] != "invalid_grant" {
		t.Fatalf("refresh for a disabled user: %d %v", status, got)
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("userinfo for a disabled user: %d", resp.StatusCode)
	}
	evs, _, _ := e.store.Events(ctx, storage.EventQuery{Subject: sub, Type: storage.EventLoginFailed})
	if len(evs) != 1 || evs[0].Details["reason"] != "disabled" {
		t.Fatalf("login_failed events: %+v", evs)
	}
	// Enabled again: signs in as before.
	if err := e.store.SetUserDisabled(ctx, sub, false); err != nil {
		t.Fatal(err)
	}
	if _, again := m.login(miniClient, miniApp, "hank", "openid"); again != sub {
		t.Fatalf("after enabling: %s, want %s", again, sub)
	}
}

// TestAccountDelete: a Mini Program user erases their own account with a
// fresh token, and the same WeChat user signing in again is a new sub. A
// token from an old sign-in is refused with a way to get a fresh one.
func TestAccountDelete(t *testing.T) {
	var skew atomic.Int64
	e := newEnv(t, func(c *provider.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	m := mp{e: e}
	ctx := context.Background()
	body, sub := m.login(miniClient, miniApp, "ivy", "openid offline_access phone")
	at := body["access_token"].(string)

	skew.Store(int64(11 * time.Minute))
	status, got, _ := m.post("/account/delete", at, url.Values{})
	if status != http.StatusForbidden || got["error"] != "login_required" || !strings.Contains(got["error_description"].(string), "wx.login") || !strings.Contains(got["error_description"].(string), "within the last 10 minutes.") {
		t.Fatalf("delete with an old sign-in: %d %v", status, got)
	}
	if _, err := e.store.User(ctx, sub); err != nil {
		t.Fatalf("refused delete erased the user: %v", err)
	}
	skew.Store(0)
	if status, got, _ := m.post("/account/delete", "", url.Values{}); status != http.StatusUnauthorized {
		t.Fatalf("delete without a token: %d %v", status, got)
	}
	status, got, _ = m.post("/account/delete", at, url.Values{})
	if status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", status, got)
	}
	if _, err := e.store.User(ctx, sub); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user after delete: %v", err)
	}
	status, got, _ = m.post("/oauth2/token", "", url.Values{"grant_type": {"refresh_token"}, "client_id": {miniClient}, "refresh_token": {body["refresh_token"].(string)}})
	if status != http.StatusBadRequest || got["error"] != "invalid_grant" {
		t.Fatalf("refresh after delete: %d %v", status, got)
	}
	if ui := m.userinfoStatus(at); ui != http.StatusUnauthorized {
		t.Fatalf("userinfo after delete: %d", ui)
	}
	evs, _, _ := e.store.Events(ctx, storage.EventQuery{Subject: sub, Type: storage.EventUserDeleted})
	if len(evs) != 1 || evs[0].Details["by"] != "self" || evs[0].ClientID != miniClient {
		t.Fatalf("user_deleted events: %+v", evs)
	}
	// Signing in again: a new person, a new sub.
	if _, again := m.login(miniClient, miniApp, "ivy", "openid"); again == sub {
		t.Fatal("the erased user's sub came back")
	}
}

func (m mp) userinfoStatus(token string) int {
	m.e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := m.e.client.Do(req)
	if err != nil {
		m.e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWeChatGrant_PhoneCodeOfAnotherPerson: a phone code is redeemed with
// the openid of the js_code redeemed in the same request (and, on
// /wechat/phone, with the caller's openid), so a phone code issued to one
// person binds their number to nobody else: not at login, not later, and
// in login-only mode it does not open the account it would match. The
// refused code stays good for its owner.
func TestWeChatGrant_PhoneCodeOfAnotherPerson(t *testing.T) {
	e := newEnv(t, withRegistration(provider.RegistrationExisting))
	m := mp{e: e}
	ctx := context.Background()
	if err := e.store.CreateUser(ctx, storage.User{Subject: "vera-sub", Name: "Vera", PhoneNumber: "+8613955556666"}); err != nil {
		t.Fatal(err)
	}
	verasCode := m.phoneCode(miniApp, "vera", "13955556666")
	status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "mallory")}, "scope": {"openid phone"},
		"phone_code": {verasCode}})
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.Contains(body["error_description"].(string), "getuserphonenumber errcode 40029") {
		t.Fatalf("mallory with vera's phone code: %d %v", status, body)
	}
	if _, err := e.store.Identity(ctx, miniApp, e.sim.OpenID(miniApp, "mallory")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("mallory was linked: %v", err)
	}
	// Vera's own sign-in with the same code links her account.
	status, body, _ = m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "vera")}, "scope": {"openid phone"},
		"phone_code": {verasCode}})
	if status != http.StatusOK {
		t.Fatalf("vera with her phone code: %d %v", status, body)
	}
	if ui := m.userinfo(body["access_token"].(string)); ui["sub"] != "vera-sub" {
		t.Fatalf("vera signed in as %v", ui["sub"])
	}

	// Later binding: mallory, signed in (pre-provisioned without a
	// number), cannot bind vera's number with vera's next phone code.
	if err := e.store.CreateUser(ctx, storage.User{Subject: "mallory-sub", PhoneNumber: "+8613977778888"}); err != nil {
		t.Fatal(err)
	}
	status, body, _ = m.grant(url.Values{"client_id": {miniClient}, "js_code": {m.wxLogin(miniApp, "mallory")}, "scope": {"openid phone"},
		"phone_code": {m.phoneCode(miniApp, "mallory", "13977778888")}})
	if status != http.StatusOK {
		t.Fatalf("mallory's own sign-in: %d %v", status, body)
	}
	verasCode = m.phoneCode(miniApp, "vera", "13955556666")
	if status, b, _ := m.post("/wechat/phone", body["access_token"].(string), url.Values{"phone_code": {verasCode}}); status != http.StatusBadRequest || b["error"] != "invalid_request" {
		t.Fatalf("/wechat/phone with vera's code: %d %v", status, b)
	}
	if u, _ := e.store.User(ctx, "mallory-sub"); u.PhoneNumber != "+8613977778888" {
		t.Fatalf("mallory's number became %s", u.PhoneNumber)
	}
	if got := e.sim.Calls("/wxa/business/getuserphonenumber"); got < 4 {
		t.Fatalf("getuserphonenumber called %d times", got)
	}
	// A user whose Mini Program identity was unlinked has no openid to
	// bind a number to.
	if err := e.store.UnlinkIdentity(ctx, "mallory-sub", miniApp); err != nil {
		t.Fatal(err)
	}
	if status, b, _ := m.post("/wechat/phone", body["access_token"].(string), url.Values{"phone_code": {m.phoneCode(miniApp, "mallory", "13977778888")}}); status != http.StatusBadRequest || !strings.Contains(b["error_description"].(string), "wx.login") {
		t.Fatalf("/wechat/phone after unlinking: %d %v", status, b)
	}
}
