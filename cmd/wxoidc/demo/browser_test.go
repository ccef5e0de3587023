package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxoidc/wxoidc/cmd/wxoidc/demo"
	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-only")

const wechatUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"

// devServer is what `wxoidc dev` runs, built from the packages: the
// provider with web login, the simulator at /wechat-sim/, the demo at /demo
// (demo-web, first party) and a second demo at /demo2 (a third-party
// client, which gets the consent page).
type devServer struct {
	url   string
	sim   *wechattest.Server
	store storage.Storage
}

func startDevServer(t *testing.T) *devServer {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	km, err := keys.New(store, keys.Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	issuer := srv.URL

	sim := wechattest.New(wechattest.Config{})
	mux.Handle("/wechat-sim/", http.StripPrefix("/wechat-sim", sim))
	simBase := issuer + "/wechat-sim"
	apps := map[string]provider.WeChatApp{}
	for _, a := range wechattest.DevApps() {
		apps[a.AppID] = provider.WeChatApp{Kind: a.Kind, Client: &wechat.Client{
			AppID: a.AppID, AppSecret: a.Secret, Endpoint: wechat.Endpoint{APIURL: simBase, OpenURL: simBase},
		}}
	}
	auth, err := weblogin.New(weblogin.Config{Issuer: issuer, Storage: store, WeChatApps: apps, Secret: testSecret, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(provider.Config{
		Issuer: issuer, Secret: testSecret, Storage: store, Keys: km, Authenticator: auth, WeChatApps: apps, Dev: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/", p.Handler())

	all := []string{"openid", "profile", "phone", "wechat", "offline_access"}
	now := time.Now().UTC()
	for _, c := range []storage.Client{
		{
			ID: "demo-web", Name: "wxoidc demo", SecretHash: provider.HashClientSecret(testSecret, "demo-web-secret"),
			RedirectURIs: []string{issuer + "/demo/callback"}, PostLogoutRedirectURIs: []string{issuer + "/demo"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
			Scopes: all, TokenEndpointAuthMethod: storage.AuthMethodBasic, SkipConsent: true,
		},
		{
			ID: "demo-third", Name: "Third-party demo", SecretHash: provider.HashClientSecret(testSecret, "demo-third-secret"),
			RedirectURIs: []string{issuer + "/demo2/callback"}, PostLogoutRedirectURIs: []string{issuer + "/demo2"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
			Scopes: all, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		},
		{
			ID: "demo-miniprogram", GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"}, Scopes: all,
			TokenEndpointAuthMethod: storage.AuthMethodNone, WeChatAppID: "wxd0000000000000a1",
		},
	} {
		c.CreatedAt, c.UpdatedAt = now, now
		if err := store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []struct{ path, id, secret, title string }{
		{"/demo", "demo-web", "demo-web-secret", "wxoidc demo"},
		{"/demo2", "demo-third", "demo-third-secret", "Third-party demo"},
	} {
		h, err := demo.New(demo.Config{Issuer: issuer, ClientID: d.id, ClientSecret: d.secret, BaseURL: issuer + d.path, Title: d.title, HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle(d.path, h)
		mux.Handle(d.path+"/", h)
	}
	return &devServer{url: issuer, sim: sim, store: store}
}

// miniProgramSub signs user in through the Mini Program grant, as a Mini
// Program would: wx.login() (the simulator's /sim/login), then the token
// endpoint.
func (s *devServer) miniProgramSub(t *testing.T, user string) string {
	t.Helper()
	resp, err := http.PostForm(s.url+"/wechat-sim/sim/login", url.Values{"appid": {"wxd0000000000000a1"}, "user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	resp, err = http.PostForm(s.url+"/oauth2/token", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {"demo-miniprogram"}, "js_code": {login.Code}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	parts := strings.Split(tok.IDToken, ".")
	if len(parts) != 3 {
		t.Fatalf("wechat grant: status %d, no ID token", resp.StatusCode)
	}
	var claims struct{ Sub string }
	b, _ := base64URLDecode(parts[1])
	json.Unmarshal(b, &claims)
	return claims.Sub
}

func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WXOIDC_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// newBrowser starts headless Chromium (Debian's package), or skips.
func newBrowser(t *testing.T, userAgent string) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): skipping the browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(420, 860), // a phone-sized screen
	}
	if userAgent != "" {
		opts = append(opts, chromedp.UserAgent(userAgent))
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

type shooter struct {
	t   *testing.T
	dir string
	n   int
}

func (s *shooter) shot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		s.n++
		return chromedp.Void{}, os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), buf, 0o644)
	}
}

// into runs a value-returning action and stores its value.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tg)
		*dst = v
		return chromedp.Void{}, err
	}
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s: %.500s)", step, err, loc, body)
	}
}

// userButton selects the simulator's confirm button of user.
func userButton(user string) chromedp.CSS {
	return chromedp.CSS(`form:has(input[name="user"][value="` + user + `"]) button`)
}

// userinfoButton selects the confirm button of user on the
// snsapi_userinfo page.
func userinfoButton(user string) chromedp.CSS {
	return chromedp.CSS(`form:has(input[name="scope"][value="snsapi_userinfo"]):has(input[name="user"][value="` + user + `"]) button`)
}

// confirmAs clicks the simulator's confirm button for user.
func confirmAs(user string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(userButton(user))
}

func TestBrowser_DesktopQRLogin(t *testing.T) {
	ctx := newBrowser(t, "")
	s := startDevServer(t)
	shots := &shooter{t: t, dir: artifactsDir(t)}

	var sub, name, claims, userinfo, loc string
	run(t, ctx, "open /demo",
		chromedp.Navigate(s.url+"/demo"),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		shots.shot("demo"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(userButton("alice")),
		into(&loc, chromedp.Location()),
		shots.shot("wechat-qr-page"),
	)
	if !strings.Contains(loc, "/wechat-sim/connect/qrconnect") || !strings.Contains(loc, "appid=wxd0000000000000b2") {
		t.Fatalf("sign-in went to %s, want the website QR page", loc)
	}
	run(t, ctx, "confirm on the QR page",
		confirmAs("alice"),
		chromedp.WaitVisible(chromedp.ID("claims")),
		into(&loc, chromedp.Location()),
		into(&sub, chromedp.Text(chromedp.ID("sub"))),
		into(&name, chromedp.Text(chromedp.ID("name"))),
		into(&claims, chromedp.Text(chromedp.ID("claims"))),
		into(&userinfo, chromedp.Text(chromedp.ID("userinfo"))),
		shots.shot("demo-signed-in"),
	)
	if name != "Alice" {
		t.Errorf("the demo greets %q, want the person's name Alice", name)
	}
	if loc != s.url+"/demo" || !strings.Contains(claims, `"name": "Alice"`) || !strings.Contains(userinfo, sub) {
		t.Fatalf("after sign-in at %s: claims %s userinfo %s", loc, claims, userinfo)
	}
	if mp := s.miniProgramSub(t, "alice"); mp != sub {
		t.Fatalf("web sub %s, Mini Program sub %s: want one user", sub, mp)
	}

	// SSO: the second app signs in without a scan (but asks for consent,
	// being third-party).
	qr := s.sim.Calls(wechat.PathQRConnect)
	var sub2 string
	run(t, ctx, "second app",
		chromedp.Navigate(s.url+"/demo2"),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("allow")),
		shots.shot("consent"),
		chromedp.Click(chromedp.ID("allow")),
		chromedp.WaitVisible(chromedp.ID("claims")),
		into(&sub2, chromedp.Text(chromedp.ID("sub"))),
		shots.shot("demo2-signed-in"),
	)
	if sub2 != sub || s.sim.Calls(wechat.PathQRConnect) != qr {
		t.Fatalf("second app: sub %s (want %s); QR page shown %d more times", sub2, sub, s.sim.Calls(wechat.PathQRConnect)-qr)
	}

	// Sign out of the first app: RP-initiated logout ends the provider
	// session too.
	run(t, ctx, "sign out",
		chromedp.Navigate(s.url+"/demo"),
		chromedp.WaitVisible(chromedp.ID("sign-out")),
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
		into(&loc, chromedp.Location()),
		shots.shot("signed-out"),
	)
	if loc != s.url+"/demo?state=signed-out" {
		t.Fatalf("after sign-out at %s", loc)
	}
	run(t, ctx, "signed out at the provider",
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(userButton("alice")),
		into(&loc, chromedp.Location()),
	)
	if !strings.Contains(loc, "/connect/qrconnect") {
		t.Fatalf("signing in after logout went to %s, want WeChat again", loc)
	}
}

func TestBrowser_InWeChatLogin(t *testing.T) {
	ctx := newBrowser(t, wechatUA)
	s := startDevServer(t)
	shots := &shooter{t: t, dir: artifactsDir(t)}

	// The demo asks for profile, so WeChat's snsapi_userinfo page comes at
	// once (the silent snsapi_base round is for requests without profile;
	// see package weblogin's tests).
	var sub, claims, loc, title string
	run(t, ctx, "open /demo in WeChat",
		chromedp.Navigate(s.url+"/demo"),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		shots.shot("demo"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(userinfoButton("bob")),
		into(&loc, chromedp.Location()),
		into(&title, chromedp.Title()),
		shots.shot("official-account-userinfo"),
		chromedp.Click(userinfoButton("bob")),
		chromedp.WaitVisible(chromedp.ID("claims")),
		into(&sub, chromedp.Text(chromedp.ID("sub"))),
		into(&claims, chromedp.Text(chromedp.ID("claims"))),
		shots.shot("demo-signed-in"),
	)
	if !strings.Contains(loc, "/wechat-sim/connect/oauth2/authorize") || !strings.Contains(loc, "appid=wxd0000000000000c3") {
		t.Fatalf("WeChat page %s: want the official account's authorize page", loc)
	}
	// The simulator speaks the browser's language (zh-CN or English).
	if !strings.Contains(title, "申请获得你的公开信息") && !strings.Contains(title, "Allow access to your public profile") {
		t.Fatalf("WeChat page %q: want the snsapi_userinfo page", title)
	}
	if !strings.Contains(claims, `"name": "Bob"`) {
		t.Fatalf("claims %s", claims)
	}
	if mp := s.miniProgramSub(t, "bob"); mp != sub {
		t.Fatalf("in-WeChat sub %s, Mini Program sub %s: want one user", sub, mp)
	}
}
