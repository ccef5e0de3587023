package wechattest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

const (
	mpID      = "wxd0000000000000a1"
	mpSecret  = "dev-miniprogram-secret"
	webID     = "wxd0000000000000b2"
	webSecret = "dev-website-secret"
	oaID      = "wxd0000000000000c3"
	wechatUA  = "Mozilla/5.0 (Linux; Android 14) MicroMessenger/8.0.47.2560(0x28002F35) NetType/WIFI Language/zh_CN"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	sim *wechattest.Server
	ts  *httptest.Server
	clk *clock
	hc  *http.Client // does not follow redirects
}

func newFixture(t *testing.T, cfg wechattest.Config) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	sim := wechattest.New(cfg)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	hc := *ts.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &fixture{sim: sim, ts: ts, clk: clk, hc: &hc}
}

// get does a GET and returns the response with its body read.
func (f *fixture) get(t *testing.T, path string, q url.Values, ua string) (*http.Response, string) {
	t.Helper()
	u := f.ts.URL + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := f.hc.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (f *fixture) post(t *testing.T, path string, form url.Values, ua string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := f.hc.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (f *fixture) postJSON(t *testing.T, path string, v any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := f.hc.Post(f.ts.URL+path, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &m), body)
	return m
}

func errcode(t *testing.T, body string) int {
	t.Helper()
	m := decode(t, body)
	c, _ := m["errcode"].(float64)
	if c != 0 {
		require.Contains(t, m["errmsg"], " rid: ")
	}
	return int(c)
}

func (f *fixture) jscode2session(t *testing.T, appID, secret, code string) (*http.Response, string) {
	t.Helper()
	return f.get(t, wechat.PathJSCode2Session, url.Values{"appid": {appID}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}, "")
}

func (f *fixture) simLogin(t *testing.T, appID, user string) string {
	t.Helper()
	resp, body := f.post(t, "/sim/login", url.Values{"appid": {appID}, "user": {user}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	return decode(t, body)["code"].(string)
}

func TestServer_jscode2session(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	code := f.simLogin(t, mpID, "alice")
	resp, body := f.jscode2session(t, mpID, mpSecret, code)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	m := decode(t, body)
	require.NotContains(t, m, "errcode", "success omits errcode")
	require.Equal(t, f.sim.OpenID(mpID, "alice"), m["openid"])
	require.Equal(t, f.sim.UnionID(mpID, "alice"), m["unionid"])
	require.Equal(t, f.sim.SessionKey(mpID, "alice"), m["session_key"])

	// Single use.
	_, body = f.jscode2session(t, mpID, mpSecret, code)
	require.Equal(t, wechat.CodeCodeUsed, errcode(t, body))
	// Unknown.
	_, body = f.jscode2session(t, mpID, mpSecret, "nope")
	require.Equal(t, wechat.CodeInvalidCode, errcode(t, body))
	// Expired after 5 minutes.
	code = f.simLogin(t, mpID, "alice")
	f.clk.Advance(wechattest.LoginCodeTTL)
	_, body = f.jscode2session(t, mpID, mpSecret, code)
	require.Equal(t, wechat.CodeInvalidCode, errcode(t, body))
	// Wrong secret, missing parameters, POST.
	_, body = f.jscode2session(t, mpID, "wrong", f.simLogin(t, mpID, "alice"))
	require.Equal(t, wechat.CodeInvalidAppSecret, errcode(t, body))
	_, body = f.get(t, wechat.PathJSCode2Session, url.Values{"appid": {mpID}, "secret": {mpSecret}, "code": {"x"}}, "")
	require.Equal(t, wechat.CodeCodeMissing, errcode(t, body))
	_, body = f.post(t, wechat.PathJSCode2Session, url.Values{"appid": {mpID}}, "")
	require.Equal(t, wechat.CodeAppIDMissing, errcode(t, body))
	_, body = f.jscode2session(t, "wxnope", mpSecret, "x")
	require.Equal(t, wechat.CodeInvalidAppID, errcode(t, body))
}

func TestServer_identities(t *testing.T) {
	f := newFixture(t, wechattest.Config{Apps: append(wechattest.DevApps(),
		wechattest.App{AppID: "wxunbound", Secret: "s", Kind: wechat.KindMiniProgram},
		wechattest.App{AppID: "wxotherplatform", Secret: "s", Kind: wechat.KindMiniProgram, Platform: "other"},
	)})
	require.NotEqual(t, f.sim.OpenID(mpID, "alice"), f.sim.OpenID(webID, "alice"), "openid per app")
	require.NotEqual(t, f.sim.OpenID(mpID, "alice"), f.sim.OpenID(mpID, "bob"))
	require.Equal(t, f.sim.UnionID(mpID, "alice"), f.sim.UnionID(oaID, "alice"), "unionid per platform")
	require.NotEqual(t, f.sim.UnionID(mpID, "alice"), f.sim.UnionID("wxotherplatform", "alice"))
	require.Empty(t, f.sim.UnionID("wxunbound", "alice"))

	// Deterministic across restarts; different with another seed.
	again := wechattest.New(wechattest.Config{})
	require.Equal(t, f.sim.OpenID(mpID, "alice"), again.OpenID(mpID, "alice"))
	require.Equal(t, f.sim.SessionKey(mpID, "alice"), again.SessionKey(mpID, "alice"))
	other := wechattest.New(wechattest.Config{Seed: "x"})
	require.NotEqual(t, f.sim.OpenID(mpID, "alice"), other.OpenID(mpID, "alice"))

	// Unbound apps answer without unionid.
	_, body := f.jscode2session(t, "wxunbound", "s", f.simLogin(t, "wxunbound", "dave"))
	require.NotContains(t, decode(t, body), "unionid")

	// Users are created on demand; the code of one app fails on another.
	code := f.simLogin(t, mpID, "zed")
	_, body = f.jscode2session(t, "wxunbound", "s", code)
	require.Equal(t, wechat.CodeInvalidCode, errcode(t, body))
}

func TestServer_rotateSessionKey(t *testing.T) {
	f := newFixture(t, wechattest.Config{RotateSessionKeyOnLogin: true})
	k0 := f.sim.SessionKey(mpID, "alice")
	f.simLogin(t, mpID, "alice")
	k1 := f.sim.SessionKey(mpID, "alice")
	require.NotEqual(t, k0, k1)
	require.Len(t, k1, 24)
}

func stableToken(t *testing.T, f *fixture, force bool) (string, float64) {
	t.Helper()
	m := f.postJSON(t, wechat.PathStableToken, wechat.StableTokenRequest{GrantType: "client_credential", AppID: mpID, Secret: mpSecret, ForceRefresh: force})
	require.NotContains(t, m, "errcode")
	return m["access_token"].(string), m["expires_in"].(float64)
}

func classicToken(t *testing.T, f *fixture) string {
	t.Helper()
	_, body := f.get(t, wechat.PathToken, url.Values{"grant_type": {"client_credential"}, "appid": {mpID}, "secret": {mpSecret}}, "")
	return decode(t, body)["access_token"].(string)
}

// checkToken uses a server token on checksession and returns the errcode:
// 87009 means the token was accepted (the signature is deliberately wrong).
func checkToken(t *testing.T, f *fixture, tok string) int {
	t.Helper()
	_, body := f.get(t, wechat.PathCheckSession, url.Values{"access_token": {tok}, "openid": {f.sim.OpenID(mpID, "alice")}, "signature": {"x"}, "sig_method": {"hmac_sha256"}}, "")
	return errcode(t, body)
}

func TestServer_stableToken(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	t1, exp := stableToken(t, f, false)
	require.Equal(t, float64(7200), exp)
	f.clk.Advance(time.Hour)
	t2, exp := stableToken(t, f, false)
	require.Equal(t, t1, t2, "normal mode returns the same token")
	require.Equal(t, float64(3600), exp)

	// Rolls over when 5 minutes or less remain; the old one keeps working.
	f.clk.Advance(time.Hour - 5*time.Minute)
	t3, exp := stableToken(t, f, false)
	require.NotEqual(t, t1, t3)
	require.Equal(t, float64(7200), exp)
	require.Equal(t, wechat.CodeInvalidSignature, checkToken(t, f, t1))
	f.clk.Advance(5 * time.Minute)
	require.Equal(t, wechat.CodeAccessTokenExpired, checkToken(t, f, t1))
	require.Equal(t, wechat.CodeInvalidSignature, checkToken(t, f, t3))

	// Force refresh rotates, at most every 30 s.
	t4, _ := stableToken(t, f, true)
	require.NotEqual(t, t3, t4)
	t5, _ := stableToken(t, f, true)
	require.Equal(t, t4, t5)

	// GET is refused; stable and classic spaces are separate.
	_, body := f.get(t, wechat.PathStableToken, nil, "")
	require.Equal(t, wechat.CodeRequirePOST, errcode(t, body))
	classicToken(t, f)
	require.Equal(t, wechat.CodeInvalidSignature, checkToken(t, f, t5), "a classic fetch does not invalidate the stable token")
}

func TestServer_classicTokenOverlap(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	t1 := classicToken(t, f)
	t2 := classicToken(t, f)
	require.NotEqual(t, t1, t2)
	require.Equal(t, wechat.CodeInvalidSignature, checkToken(t, f, t1), "previous token works during the overlap")
	f.clk.Advance(wechattest.TokenOverlap)
	require.Equal(t, wechat.CodeInvalidCredential, checkToken(t, f, t1), "then 40001")
	require.Equal(t, wechat.CodeInvalidSignature, checkToken(t, f, t2))

	t3 := classicToken(t, f)
	classicToken(t, f)
	require.Equal(t, wechat.CodeInvalidCredential, checkToken(t, f, t2), "older than previous: 40001 at once")
	require.Equal(t, wechat.CodeInvalidSignature, checkToken(t, f, t3))

	require.Equal(t, wechat.CodeInvalidAccessToken, checkToken(t, f, "bad!"))
	require.Equal(t, wechat.CodeAccessTokenMissing, checkToken(t, f, ""))

	_, body := f.get(t, wechat.PathToken, url.Values{"grant_type": {"client_credential"}, "appid": {mpID}, "secret": {"wrong"}}, "")
	require.Equal(t, wechat.CodeInvalidCredential, errcode(t, body), "wrong secret on the classic endpoint")
}

func TestServer_phoneNumber(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	tok, _ := stableToken(t, f, false)
	resp, body := f.post(t, "/sim/phone-code", url.Values{"appid": {mpID}, "user": {"alice"}, "phone": {"+8613912345678"}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	code := decode(t, body)["code"].(string)
	call := func(code string) (*http.Response, map[string]any) {
		b, _ := json.Marshal(wechat.PhoneRequest{Code: code})
		resp, err := f.hc.Post(f.ts.URL+wechat.PathPhoneNumber+"?access_token="+url.QueryEscape(tok), "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp, m
	}
	resp, m := call(code)
	require.Contains(t, resp.Header.Get("Content-Type"), "application/json")
	require.Equal(t, float64(0), m["errcode"])
	require.Equal(t, "ok", m["errmsg"])
	info := m["phone_info"].(map[string]any)
	require.Equal(t, "13912345678", info["purePhoneNumber"])
	require.Equal(t, "86", info["countryCode"])
	require.Equal(t, mpID, info["watermark"].(map[string]any)["appid"])
	_, m = call(code)
	require.Equal(t, float64(wechat.CodeInvalidCode), m["errcode"])

	resp, _ = f.post(t, "/sim/phone-code", url.Values{"appid": {webID}, "user": {"alice"}}, "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "only mini programs have the phone button")
}

// TestServer_phoneNumberOpenID: with an openid, a phone code redeems only
// for the user it was issued to; a mismatch leaves it unused.
func TestServer_phoneNumberOpenID(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	tok, _ := stableToken(t, f, false)
	code, err := f.sim.PhoneCode(mpID, "alice", "13912345678")
	require.NoError(t, err)
	call := func(openID string) map[string]any {
		b, _ := json.Marshal(wechat.PhoneRequest{Code: code, OpenID: openID})
		require.Contains(t, string(b), `"openid":"`+openID+`"`)
		resp, err := f.hc.Post(f.ts.URL+wechat.PathPhoneNumber+"?access_token="+url.QueryEscape(tok), "application/json", bytes.NewReader(b))
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return m
	}
	require.Equal(t, float64(wechat.CodeInvalidCode), call(f.sim.OpenID(mpID, "bob"))["errcode"], "bob's openid with alice's code")
	m := call(f.sim.OpenID(mpID, "alice"))
	require.Equal(t, float64(0), m["errcode"], "the mismatch left the code unused")
	require.Equal(t, "13912345678", m["phone_info"].(map[string]any)["purePhoneNumber"])
}

func TestServer_qrconnectPage(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	q := url.Values{"appid": {webID}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"}, "scope": {"snsapi_login"}, "state": {"st"}}
	resp, body := f.get(t, wechat.PathQRConnect, q, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, body, `action="qrconnect"`, "relative form action")
	require.Contains(t, body, `value="alice"`)
	require.NotContains(t, body, "http://", "no external resources")
	require.NotContains(t, body, webSecret)

	// Confirm as bob.
	form := url.Values{}
	for k, v := range q {
		form[k] = v
	}
	form.Set("user", "bob")
	form.Set("action", "confirm")
	resp, _ = f.post(t, wechat.PathQRConnect, form, "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	require.Equal(t, "rp.example", loc.Host)
	require.Equal(t, "st", loc.Query().Get("state"))
	code := loc.Query().Get("code")
	require.NotEmpty(t, code)
	_, body = f.get(t, wechat.PathOAuthAccessToken, url.Values{"appid": {webID}, "secret": {webSecret}, "code": {code}, "grant_type": {"authorization_code"}}, "")
	m := decode(t, body)
	require.Equal(t, f.sim.OpenID(webID, "bob"), m["openid"])
	_, body = f.get(t, wechat.PathOAuthAccessToken, url.Values{"appid": {webID}, "secret": {webSecret}, "code": {code}, "grant_type": {"authorization_code"}}, "")
	require.Equal(t, wechat.CodeCodeUsed, errcode(t, body))

	// Cancel: redirect with state only.
	form.Set("action", "cancel")
	resp, _ = f.post(t, wechat.PathQRConnect, form, "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	require.Empty(t, loc.Query().Get("code"))
	require.Equal(t, "st", loc.Query().Get("state"))

	// Wrong scope, wrong kind of app: WeChat's error page, no redirect.
	q.Set("scope", "snsapi_userinfo")
	resp, body = f.get(t, wechat.PathQRConnect, q, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "10005")
	q.Set("scope", "snsapi_login")
	q.Set("appid", oaID)
	_, body = f.get(t, wechat.PathQRConnect, q, "")
	require.Contains(t, body, "该链接无法访问")
}

func TestServer_officialAuthorizePage(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	q := url.Values{"appid": {oaID}, "redirect_uri": {"https://m.example/cb"}, "response_type": {"code"}, "scope": {"snsapi_userinfo"}, "state": {"s"}}

	// Outside WeChat: the "open in WeChat" page.
	resp, body := f.get(t, wechat.PathOAuth2Authorize, q, "Mozilla/5.0 (X11; Linux x86_64) Chrome/120")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "请在微信客户端打开链接")

	// Inside: consent page for snsapi_userinfo; choose-user page for base.
	_, body = f.get(t, wechat.PathOAuth2Authorize, q, wechatUA)
	require.Contains(t, body, "允许")
	require.Contains(t, body, `action="authorize"`)
	q.Set("scope", "snsapi_base")
	_, body = f.get(t, wechat.PathOAuth2Authorize, q, wechatUA)
	require.NotContains(t, body, "允许")
	require.Contains(t, body, `value="carol"`)

	form := url.Values{}
	for k, v := range q {
		form[k] = v
	}
	form.Set("user", "carol")
	form.Set("action", "confirm")
	resp, _ = f.post(t, wechat.PathOAuth2Authorize, form, wechatUA)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	require.NotEmpty(t, loc.Query().Get("code"))

	// Declining leaves the user on a page.
	form.Set("action", "cancel")
	resp, body = f.post(t, wechat.PathOAuth2Authorize, form, wechatUA)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "拒绝")

	// Auto-confirm, switched on at run time over HTTP.
	resp, _ = f.post(t, "/sim/auto-confirm", url.Values{"user": {"alice"}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = f.get(t, wechat.PathOAuth2Authorize, q, wechatUA)
	require.Equal(t, http.StatusFound, resp.StatusCode)

	// Any browser when configured so.
	f2 := newFixture(t, wechattest.Config{AnyUserAgent: true, AutoConfirm: "alice"})
	resp, _ = f2.get(t, wechat.PathOAuth2Authorize, q, "curl/8")
	require.Equal(t, http.StatusFound, resp.StatusCode)
}

func TestServer_redirectHosts(t *testing.T) {
	apps := wechattest.DevApps()
	apps[1].RedirectHosts = []string{"rp.example"}
	f := newFixture(t, wechattest.Config{Apps: apps, AutoConfirm: "alice"})
	q := url.Values{"appid": {webID}, "redirect_uri": {"https://evil.example/cb"}, "response_type": {"code"}, "scope": {"snsapi_login"}, "state": {"s"}}
	resp, body := f.get(t, wechat.PathQRConnect, q, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "10003")
	q.Set("redirect_uri", "https://rp.example/cb")
	resp, _ = f.get(t, wechat.PathQRConnect, q, "")
	require.Equal(t, http.StatusFound, resp.StatusCode)
}

// The pages work under a prefix: the relative form action resolves back to
// the prefixed page.
func TestServer_underPrefix(t *testing.T) {
	sim := wechattest.New(wechattest.Config{})
	mux := http.NewServeMux()
	mux.Handle("/wechat-sim/", http.StripPrefix("/wechat-sim", sim))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	page := ts.URL + "/wechat-sim/connect/qrconnect?appid=" + webID + "&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=snsapi_login&state=s"
	resp, err := http.Get(page)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `action="qrconnect"`)
	base, _ := url.Parse(page)
	action, _ := base.Parse("qrconnect")
	require.Equal(t, "/wechat-sim/connect/qrconnect", action.Path)

	resp, err = http.PostForm(ts.URL+"/wechat-sim/sim/login", url.Values{"appid": {mpID}, "user": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 1, sim.Calls("/sim/login"))
}

func TestServer_oauthTokens(t *testing.T) {
	f := newFixture(t, wechattest.Config{AutoConfirm: "alice"})
	q := url.Values{"appid": {webID}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"}, "scope": {"snsapi_login"}, "state": {"s"}}
	resp, _ := f.get(t, wechat.PathQRConnect, q, "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	resp, body := f.get(t, wechat.PathOAuthAccessToken, url.Values{"appid": {webID}, "secret": {webSecret}, "code": {loc.Query().Get("code")}, "grant_type": {"authorization_code"}}, "")
	require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	tok := decode(t, body)
	at, rt, openid := tok["access_token"].(string), tok["refresh_token"].(string), tok["openid"].(string)

	_, body = f.get(t, wechat.PathUserInfo, url.Values{"access_token": {at}, "openid": {"o-other"}}, "")
	require.Equal(t, wechat.CodeInvalidOpenID, errcode(t, body))
	_, body = f.get(t, wechat.PathOAuthAuth, url.Values{"access_token": {at}, "openid": {openid}}, "")
	require.Equal(t, 0, errcode(t, body))

	f.clk.Advance(wechattest.OAuthTokenTTL)
	_, body = f.get(t, wechat.PathUserInfo, url.Values{"access_token": {at}, "openid": {openid}}, "")
	require.Equal(t, wechat.CodeAccessTokenExpired, errcode(t, body))
	_, body = f.get(t, wechat.PathOAuthRefreshToken, url.Values{"appid": {webID}, "grant_type": {"refresh_token"}, "refresh_token": {rt}}, "")
	at2 := decode(t, body)["access_token"].(string)
	require.NotEqual(t, at, at2, "an expired token is replaced")
	_, body = f.get(t, wechat.PathUserInfo, url.Values{"access_token": {at2}, "openid": {openid}}, "")
	require.Equal(t, "Alice", decode(t, body)["nickname"])

	f.clk.Advance(wechattest.RefreshTokenTTL)
	_, body = f.get(t, wechat.PathOAuthRefreshToken, url.Values{"appid": {webID}, "grant_type": {"refresh_token"}, "refresh_token": {rt}}, "")
	require.Equal(t, wechat.CodeRefreshTokenExpired, errcode(t, body))
}

func TestServer_faultsAndStats(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	m := f.postJSON(t, "/sim/faults", map[string]any{"busy": 1, "rate_limit": 1, "path": wechat.PathJSCode2Session})
	require.Equal(t, float64(1), m["busy"])
	code := f.simLogin(t, mpID, "alice")
	_, body := f.jscode2session(t, mpID, mpSecret, code)
	require.Equal(t, wechat.CodeBusy, errcode(t, body))
	_, body = f.jscode2session(t, mpID, mpSecret, code)
	require.Equal(t, wechat.CodeMinuteQuota, errcode(t, body))
	_, body = f.jscode2session(t, mpID, mpSecret, code)
	require.Equal(t, 0, errcode(t, body), "faults used up; the code was not spent by them")

	// Form variant: wrong secret.
	resp, _ := f.post(t, "/sim/faults", url.Values{"wrong_secret": {"true"}}, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, body = f.jscode2session(t, mpID, mpSecret, f.simLogin(t, mpID, "alice"))
	require.Equal(t, wechat.CodeInvalidAppSecret, errcode(t, body))
	resp, _ = f.post(t, "/sim/faults", url.Values{"busy_rate": {"2"}}, "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodDelete, f.ts.URL+"/sim/faults", nil)
	resp, err := f.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, wechattest.Faults{}, f.sim.Faults())

	// Latency, observed over loopback.
	f.sim.SetFaults(wechattest.Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	f.jscode2session(t, mpID, mpSecret, "x")
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	f.sim.SetFaults(wechattest.Faults{})

	_, body = f.get(t, "/sim/stats", nil, "")
	calls := decode(t, body)["calls"].(map[string]any)
	require.Equal(t, float64(5), calls[wechat.PathJSCode2Session])
	require.Equal(t, 5, f.sim.Calls(wechat.PathJSCode2Session))
	req, _ = http.NewRequest(http.MethodDelete, f.ts.URL+"/sim/stats", nil)
	resp, err = f.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 0, f.sim.Calls(wechat.PathJSCode2Session))

	resp, body = f.get(t, "/sim/", nil, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, mpID)
	require.NotContains(t, body, mpSecret)

	resp, _ = f.get(t, "/sim/login", nil, "")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	resp, _ = f.post(t, "/sim/login", url.Values{"appid": {mpID}, "user": {"has space"}}, "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestServer_encryptData(t *testing.T) {
	f := newFixture(t, wechattest.Config{})
	data, iv, err := f.sim.EncryptData(mpID, "alice", map[string]any{"phoneNumber": "1"})
	require.NoError(t, err)
	pt, err := wechat.DecryptData(f.sim.SessionKey(mpID, "alice"), data, iv, mpID)
	require.NoError(t, err)
	require.Contains(t, string(pt), `"phoneNumber":"1"`)
}

func TestNew_panicsOnBadConfig(t *testing.T) {
	require.Panics(t, func() {
		wechattest.New(wechattest.Config{Apps: []wechattest.App{{AppID: "a", Kind: "x"}}})
	})
	require.Panics(t, func() {
		wechattest.New(wechattest.Config{Apps: []wechattest.App{{AppID: "a", Kind: wechat.KindWebsite}, {AppID: "a", Kind: wechat.KindWebsite}}})
	})
}

func TestCheckAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:9", "127.1.2.3:80"} {
		require.NoError(t, wechattest.CheckAddr(ok, false), ok)
	}
	for _, bad := range []string{":8080", "0.0.0.0:8080", "192.168.1.2:80", "example.com:80", "[::]:80"} {
		require.ErrorIs(t, wechattest.CheckAddr(bad, false), wechattest.ErrNonLoopback, bad)
		require.NoError(t, wechattest.CheckAddr(bad, true), bad)
	}
	require.Error(t, wechattest.CheckAddr("nope", true))
}

func TestListenAndServe(t *testing.T) {
	sim := wechattest.New(wechattest.Config{})
	err := wechattest.ListenAndServe(t.Context(), "0.0.0.0:0", false, sim)
	require.ErrorIs(t, err, wechattest.ErrNonLoopback)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, ln) }()
	resp, err := http.PostForm("http://"+ln.Addr().String()+"/sim/login", url.Values{"appid": {mpID}, "user": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestWXACodeUnlimit(t *testing.T) {
	sim := wechattest.New(wechattest.Config{})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	mini := &wechat.Client{AppID: "wxd0000000000000a1", AppSecret: "dev-miniprogram-secret", Endpoint: wechat.Endpoint{APIURL: srv.URL}}
	ctx := t.Context()
	img, err := mini.WXACodeUnlimit(ctx, wechat.WXACodeRequest{Scene: "BCDFGHJK", Page: "pages/scan/index"})
	if err != nil {
		t.Fatal(err)
	}
	if img.ContentType != "image/png" || !bytes.HasPrefix(img.Data, []byte("\x89PNG")) {
		t.Fatalf("got %s, %d bytes; want a PNG", img.ContentType, len(img.Data))
	}
	if got := sim.WXACodes("wxd0000000000000a1"); len(got) != 1 || got[0].Scene != "BCDFGHJK" || got[0].Page != "pages/scan/index" {
		t.Fatalf("issued %v", got)
	}
	for _, tc := range []struct {
		name string
		req  wechat.WXACodeRequest
		want int
	}{
		{"scene too long", wechat.WXACodeRequest{Scene: strings.Repeat("a", 33)}, 40169},
		{"illegal scene", wechat.WXACodeRequest{Scene: "a%20b"}, 40129},
		{"page with slash", wechat.WXACodeRequest{Scene: "a", Page: "/pages/scan/index"}, 41030},
		{"page with query", wechat.WXACodeRequest{Scene: "a", Page: "pages/scan/index?x=1"}, 41030},
		{"env version", wechat.WXACodeRequest{Scene: "a", EnvVersion: "beta"}, 40097},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mini.WXACodeUnlimit(ctx, tc.req)
			var ae *wechat.APIError
			if !errors.As(err, &ae) || ae.Code != tc.want {
				t.Fatalf("got %v, want errcode %d", err, tc.want)
			}
		})
	}
	// Only a Mini Program's token may ask.
	web := &wechat.Client{AppID: "wxd0000000000000b2", AppSecret: "dev-website-secret", Endpoint: wechat.Endpoint{APIURL: srv.URL}}
	var ae *wechat.APIError
	if _, err := web.WXACodeUnlimit(ctx, wechat.WXACodeRequest{Scene: "a"}); !errors.As(err, &ae) || ae.Code != wechat.CodeUnauthorized {
		t.Fatalf("website app: got %v, want errcode 48001", err)
	}
	// A form post is not JSON: 47001.
	var st wechat.Status
	resp, err := http.Post(srv.URL+wechat.PathWXACodeUnlimit+"?access_token=x", "application/x-www-form-urlencoded", strings.NewReader("scene=a"))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.ErrCode == 0 {
		t.Fatalf("form post: errcode %d, want an error", st.ErrCode)
	}
	// /sim/wxacodes lists newest first.
	mini.WXACodeUnlimit(ctx, wechat.WXACodeRequest{Scene: "CCCCDDDD", Page: "pages/scan/index"})
	resp, err = http.Get(srv.URL + "/sim/wxacodes?appid=wxd0000000000000a1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct{ Codes []wechattest.WXACode }
	json.NewDecoder(resp.Body).Decode(&list)
	if len(list.Codes) != 2 || list.Codes[0].Scene != "CCCCDDDD" {
		t.Fatalf("/sim/wxacodes: %+v", list)
	}
}
