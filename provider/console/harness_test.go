package console_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/provider/console"
	"github.com/wxoidc/wxoidc/provider/ops"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-console-test")

const (
	adminToken = "console-admin-token-0123456789"
	miniApp    = "wxd0000000000000a1"
)

// env is a provider with web login on one listener and the admin API with
// the console on another, as wxoidc serve runs them, on one memory store,
// with the WeChat simulator.
type env struct {
	t       *testing.T
	store   storage.Storage
	keys    *keys.Manager
	sim     *wechattest.Server
	issuer  string
	console string      // the console's URL, ending in /console/
	logs    *syncBuffer // the console's and the admin API's log
}

// syncBuffer is a log sink that tests read while servers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	km, err := keys.New(store, keys.Config{Secret: testSecret, Algorithms: []string{"RS256", "ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}

	pub := http.NewServeMux()
	pubSrv := httptest.NewServer(pub)
	t.Cleanup(pubSrv.Close)
	issuer := pubSrv.URL
	sim := wechattest.New(wechattest.Config{})
	pub.Handle("/wechat-sim/", http.StripPrefix("/wechat-sim", sim))
	simBase := issuer + "/wechat-sim"
	apps := map[string]provider.WeChatApp{}
	var consoleApps []admin.WeChatApp
	wechatLog := &ops.WeChatLog{}
	tokens, err := provider.NewTokenStore(store, testSecret, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range wechattest.DevApps() {
		apps[a.AppID] = provider.WeChatApp{Kind: a.Kind, Client: &wechat.Client{
			AppID: a.AppID, AppSecret: a.Secret, Endpoint: wechat.Endpoint{APIURL: simBase, OpenURL: simBase},
			Tokens: tokens, ObserveCall: wechatLog.Observe(a.AppID),
		}}
		consoleApps = append(consoleApps, admin.WeChatApp{AppID: a.AppID, Kind: string(a.Kind)})
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
	pub.Handle("/", p.Handler())

	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	api, err := admin.New(admin.Config{Clients: store, Keys: km, Users: store, Secret: testSecret, Token: adminToken, Logger: log,
		WeChat: &admin.WeChatHealth{Apps: consoleApps, Tokens: store, Log: wechatLog}, Stats: store})
	if err != nil {
		t.Fatal(err)
	}
	adminMux := http.NewServeMux()
	adminSrv := httptest.NewServer(adminMux)
	t.Cleanup(adminSrv.Close)
	consoleURL := adminSrv.URL + console.Prefix
	con, err := console.New(console.Config{
		Issuer: issuer, URL: consoleURL, Admin: api, AdminToken: adminToken, IssuerHandler: p.Handler(),
		Secret: testSecret, WeChatApps: consoleApps, GrantTypes: provider.GrantTypes(), Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	adminMux.Handle("/console/", con)
	adminMux.Handle("/", api)

	c, err := console.ClientMetadata(consoleURL).Client(false, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := store.CreateClient(ctx, storage.Client{
		ID: "demo-web", Name: "Demo web app", SecretHash: provider.HashClientSecret(testSecret, "demo-web-secret"),
		RedirectURIs: []string{issuer + "/demo/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"}, Scopes: provider.KnownScopes, TokenEndpointAuthMethod: storage.AuthMethodBasic,
		SkipConsent: true, CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, storage.Client{
		ID: "demo-miniprogram", GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"}, Scopes: provider.KnownScopes,
		TokenEndpointAuthMethod: storage.AuthMethodNone, WeChatAppID: miniApp, CreatedAt: now, UpdatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, keys: km, sim: sim, issuer: issuer, console: consoleURL, logs: logs}
}

// browser is the test package's one headless Chromium; each test opens
// its own incognito context in it (newTab).
var browser context.Context

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		path, err := exec.LookPath("chromium")
		if err != nil || flag.Lookup("test.run").Value.String() == "^$" {
			return m.Run() // browser tests skip, or none runs (benchmarks)
		}
		dir, err := os.MkdirTemp("", "wxoidc-console-chromium")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		actx, cancel := chromedp.NewExecAllocator(context.Background(),
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
			chromedp.UserDataDir(dir),
		)
		defer cancel()
		bctx, cancel2 := chromedp.NewContext(actx)
		defer cancel2()
		if err := chromedp.Do(bctx); err != nil {
			panic("start chromium: " + err.Error())
		}
		browser = bctx
		return m.Run()
	}()
	os.Exit(code)
}

// newTab opens a fresh incognito browser context (no cookies shared with
// other tests) with a laptop-sized window, or skips without Chromium.
func newTab(t *testing.T) context.Context {
	t.Helper()
	if browser == nil {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): skipping the browser test")
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, 120*time.Second)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, laptop()); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

func laptop() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(1280, 800)
}

func phone() chromedp.Action[chromedp.Void] {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait)
}

// shooter writes numbered screenshots into the test's directory under
// $WXOIDC_TEST_ARTIFACTS; without it, taking them is skipped (they are
// for people to look at, and cost seconds).
type shooter struct {
	dir string // "" when screenshots are off
	n   int
}

func newShooter(t *testing.T) *shooter {
	t.Helper()
	root := os.Getenv("WXOIDC_TEST_ARTIFACTS")
	if root == "" {
		return &shooter{}
	}
	dir := filepath.Join(root, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return &shooter{dir: dir}
}

func (s *shooter) on() bool { return s.dir != "" }

func (s *shooter) shot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if s.dir == "" {
			return chromedp.Void{}, nil
		}
		buf, err := chromedp.FullScreenshot(100)(ctx, tg) // 100: PNG (less is JPEG)
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
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s: %.800s)", step, err, loc, body)
	}
}

// text returns the visible text of sel.
func text(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// signInWithToken signs in with the admin token (break-glass) and lands
// on the overview, in English.
func (e *env) signInWithToken(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, "break-glass sign-in",
		chromedp.Navigate(e.console+"lang/en?next=/console/"),
		chromedp.WaitVisible(chromedp.CSS("summary")),
		chromedp.Click(chromedp.CSS("summary")),
		chromedp.SendKeys(chromedp.ID("token"), adminToken),
		chromedp.Click(chromedp.ID("sign-in-token")),
		chromedp.WaitVisible(chromedp.ID("count-apps")),
	)
}

// lang switches the console's language with the page's switch (by
// following its link, which waits for the new page to load), staying on
// the page.
func lang(want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		cur, err := chromedp.AttributeValue(chromedp.CSS("html"), "lang")(ctx, tg)
		if err != nil || cur.Value == want {
			return chromedp.Void{}, err
		}
		href, err := chromedp.Evaluate[string](`document.getElementById("lang").href`)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		if _, err := chromedp.Navigate(href)(ctx, tg); err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.WaitReady(chromedp.CSS(`html[lang="`+want+`"]`))(ctx, tg)
	}
}

// miniProgramGrant runs the WeChat grant with js_code for the Mini Program
// client and returns the answer's status.
func (e *env) miniProgramGrant(t *testing.T, jsCode string) int {
	t.Helper()
	resp, err := http.PostForm(e.issuer+"/oauth2/token", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {"demo-miniprogram"}, "js_code": {jsCode}, "scope": {"openid"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// simCode asks the simulator for a code, as wx.login() or the
// getPhoneNumber button would give one.
func (e *env) simCode(t *testing.T, path string, form url.Values) string {
	t.Helper()
	resp, err := http.PostForm(e.issuer+"/wechat-sim"+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Code string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Code == "" {
		t.Fatalf("simulator %s: %v", path, err)
	}
	return out.Code
}
