package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// followDev is `wxoidc dev` (startDevRun); with replicas, a second
// stack on the same PostgreSQL schema receives the simulator's pushes
// while the browser talks to the first.
type followDev struct {
	issuer string
	sim    *wechattest.Server
	logs   *lockedBuffer
}

type lockedBuffer struct {
	mu  chan struct{}
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{mu: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}

const followAESKey = "Zm9yd3hvaWRjdGVzdHNvbmx5MDEyMzQ1Njc4OWFiY2Q"

func startFollowDev(t *testing.T, mode wechat.PushMode, qrLifetime time.Duration, replicas bool) *followDev {
	t.Helper()
	logs := newLockedBuffer()
	o := devRunOptions{
		log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		sim: wechattest.Config{AnyUserAgent: true, PushRetryDelay: 200 * time.Millisecond},
		configure: func(cfg *Config) {
			for i, a := range cfg.WeChat.Apps {
				if a.AppID != devOfficialAppID {
					continue
				}
				if mode == wechat.PushSafe {
					cfg.WeChat.Apps[i].Push.AESKey = followAESKey
				}
				// Below the 30 s a config file may set: the test waits for it.
				cfg.WeChat.Apps[i].FollowLogin.QRLifetime = qrLifetime
			}
		},
	}
	if replicas {
		o.replicas = 1
	}
	d := startDevRun(t, o)
	t.Cleanup(func() {
		for _, secret := range []string{devPushToken, followAESKey} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a push secret is in the log")
			}
		}
	})
	return &followDev{issuer: d.issuer, sim: d.sim, logs: logs}
}

// scan plays the person: they scan the QR code the page shows with WeChat
// as user, through the simulator's /sim/oa-scan.
func (d *followDev) scan(t *testing.T, user, ticket string) wechattest.ScanResult {
	t.Helper()
	resp, err := http.PostForm(d.issuer+"/wechat-sim/sim/oa-scan", url.Values{"appid": {devOfficialAppID}, "user": {user}, "ticket": {ticket}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res wechattest.ScanResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("oa-scan: status %d, %v", resp.StatusCode, err)
	}
	return res
}

// miniProgramSub signs user in through the Mini Program grant.
func (d *followDev) miniProgramSub(t *testing.T, user string) string {
	t.Helper()
	resp, err := http.PostForm(d.issuer+"/wechat-sim/sim/login", url.Values{"appid": {devMiniProgramAppID}, "user": {user}})
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	resp, err = http.PostForm(d.issuer+"/oauth2/token", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {devMiniClient}, "js_code": {login.Code}, "scope": {"openid"},
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
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Sub string }
	json.Unmarshal(b, &claims)
	return claims.Sub
}

// newFollowBrowser starts headless Chromium speaking lang, or skips.
func newFollowBrowser(t *testing.T, lang string) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it): skipping the browser test")
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 860),
	)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

type followShots struct {
	dir string
	n   int
}

func newFollowShots(t *testing.T) *followShots {
	dir := os.Getenv("WXOIDC_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return &followShots{dir: dir}
}

func (s *followShots) shot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		buf, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		s.n++
		return chromedp.Void{}, os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), buf, 0o644)
	}
}

func store[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tg)
		*dst = v
		return chromedp.Void{}, err
	}
}

func steps(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v (at %s: %.500s)", step, err, loc, body)
	}
}

// openFollowQR opens the demo, signs in, picks the official account on
// the login page and returns the ticket of the QR code the page shows.
func openFollowQR(t *testing.T, ctx context.Context, d *followDev, shots *followShots, lang string) string {
	t.Helper()
	var src, htmlLang string
	steps(t, ctx, "choose the official account",
		chromedp.Navigate(d.issuer+"/demo"),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="official"]`)),
		store(&htmlLang, chromedp.Evaluate[string]("document.documentElement.lang")),
		shots.shot("login-page"),
		chromedp.Click(chromedp.CSS(`a[data-login="official"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#wait img`)),
		store(&src, chromedp.Evaluate[string](`document.querySelector("#wait img").src`)),
		shots.shot("official-qr"),
	)
	if htmlLang != lang {
		t.Fatalf("page language %q, want %q", htmlLang, lang)
	}
	_, b64, _ := strings.Cut(src, ",")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("QR image %.80s: %v", src, err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	var res *gozxing.Result
	for _, hints := range []map[gozxing.DecodeHintType]any{nil, {gozxing.DecodeHintType_TRY_HARDER: true}, {gozxing.DecodeHintType_PURE_BARCODE: true}} {
		if res, err = gzqr.NewQRCodeReader().Decode(bmp, hints); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("decode the page's QR code: %v", err)
	}
	for _, c := range d.sim.OfficialQRCodes(devOfficialAppID) {
		if c.URL == res.GetText() {
			return c.Ticket
		}
	}
	t.Fatalf("the page's QR code %q is none the simulator issued", res.GetText())
	return ""
}

// followLogin: demo → official-account login → the person scans through
// /sim/oa-scan → the demo is signed in, without a click, as the person
// the Mini Program grant knows.
func followLogin(t *testing.T, d *followDev, lang string, simPage bool) {
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)
	ticket := openFollowQR(t, ctx, d, shots, lang)
	if simPage {
		// As in `wxoidc dev`: the person scans from the simulator's page
		// in another tab, picking a test user.
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		var status string
		steps(t, tab, "scan on the simulator's page",
			chromedp.Navigate(d.issuer+"/wechat-sim/sim/oa-scan"),
			chromedp.WaitVisible(chromedp.CSS(`section[data-ticket="`+ticket+`"] button[data-user="alice"]`)),
			shots.shot("simulator-scan-page"),
			chromedp.Click(chromedp.CSS(`section[data-ticket="`+ticket+`"] button[data-user="alice"]`)),
			chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)),
			store(&status, chromedp.Text(chromedp.CSS(`p[role="status"]`))),
			shots.shot("simulator-scanned"),
		)
		if !strings.Contains(status, "subscribe pushed") || !strings.Contains(status, "已登录 Demo web app") {
			t.Fatalf("simulator page says %q", status)
		}
	} else {
		res := d.scan(t, "alice", ticket)
		if !res.Delivered || res.Event != "subscribe" || !strings.Contains(res.Reply, "已登录 Demo web app") {
			t.Fatalf("scan: %+v", res)
		}
	}
	var sub, loc string
	steps(t, ctx, "the page carries on by itself",
		chromedp.WaitVisible(chromedp.ID("claims")),
		store(&sub, chromedp.Text(chromedp.ID("sub"))),
		store(&loc, chromedp.Location()),
		shots.shot("demo-signed-in"),
	)
	if loc != d.issuer+"/demo" {
		t.Fatalf("after the scan at %s", loc)
	}
	if mp := d.miniProgramSub(t, "alice"); mp != sub {
		t.Fatalf("official-account sub %s, Mini Program sub %s: want one user", sub, mp)
	}
	// Scanned again after the login: no sign-in; the chat says the code
	// was used, in the page's language.
	used := map[string]string{"zh-CN": "这个二维码已经用过了", "en": "This QR code has already been used"}[lang]
	if res := d.scan(t, "alice", ticket); !res.Delivered || res.Event != "SCAN" || !strings.Contains(res.Reply, used) {
		t.Fatalf("second scan: %+v", res)
	}
}

// followClosed: the person closes the login page's tab before scanning;
// the scan signs nobody in, the chat says the page was closed and to scan
// a new code, and the page, opened again, says the same and offers a new
// code.
func followClosed(t *testing.T, d *followDev, lang string) {
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)
	tab, closeTab := chromedp.NewContext(ctx)
	ticket := openFollowQR(t, tab, d, shots, lang)
	var waitURL string
	steps(t, tab, "the waiting page", store(&waitURL, chromedp.Location()))
	closeTab() // the tab closes: its pagehide beacon says so
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.logs.String(), "waiting login page closed") {
		if time.Now().After(deadline) {
			t.Fatal("the closed page's beacon never arrived")
		}
		time.Sleep(50 * time.Millisecond)
	}
	res := d.scan(t, "alice", ticket)
	want := map[string]string{
		"zh-CN": "未登录：扫码时登录页面已关闭。请重新打开网页的登录页，扫描新的二维码。",
		"en":    "Not signed in: the login page was closed when you scanned. Open the website's login page again and scan the new code.",
	}[lang]
	if !res.Delivered || res.Reply != want {
		t.Fatalf("scan after the page was closed: %+v; want the reply %q", res, want)
	}
	if strings.Contains(d.logs.String(), "follow login approved") {
		t.Fatal("a login whose page was closed was approved")
	}
	var text string
	steps(t, ctx, "the page, opened again, says it was closed",
		chromedp.Navigate(waitURL),
		chromedp.WaitVisible(chromedp.CSS(`[data-error="closed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="restart"]`)),
		store(&text, chromedp.Text(chromedp.CSS(`[data-error="closed"]`))),
		shots.shot("official-qr-closed"),
	)
	if wantText := map[string]string{"zh-CN": "登录页面已关闭", "en": "login page was closed"}[lang]; !strings.Contains(text, wantText) {
		t.Fatalf("closed page says %q", text)
	}
}

// followExpiry: the code expires before anyone scans; the page says so by
// itself and offers a fresh code.
func followExpiry(t *testing.T, d *followDev, lang string) {
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)
	openFollowQR(t, ctx, d, shots, lang)
	var text string
	steps(t, ctx, "the code expires",
		chromedp.WaitVisible(chromedp.CSS(`[data-error="expired"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="restart"]`)),
		store(&text, chromedp.Text(chromedp.CSS(`[data-error="expired"]`))),
		shots.shot("official-qr-expired"),
	)
	if text == "" {
		t.Fatal("no expiry message")
	}
}

func TestBrowser_FollowLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	t.Run("plaintext zh-CN", func(t *testing.T) {
		followLogin(t, startFollowDev(t, wechat.PushPlaintext, 0, false), "zh-CN", true)
	})
	t.Run("safe mode en", func(t *testing.T) {
		followLogin(t, startFollowDev(t, wechat.PushSafe, 0, false), "en", false)
	})
	t.Run("expiry zh-CN", func(t *testing.T) {
		followExpiry(t, startFollowDev(t, wechat.PushPlaintext, 4*time.Second, false), "zh-CN")
	})
	t.Run("expiry en", func(t *testing.T) {
		followExpiry(t, startFollowDev(t, wechat.PushSafe, 4*time.Second, false), "en")
	})
	t.Run("page closed zh-CN", func(t *testing.T) {
		followClosed(t, startFollowDev(t, wechat.PushPlaintext, 0, false), "zh-CN")
	})
	t.Run("page closed en", func(t *testing.T) {
		followClosed(t, startFollowDev(t, wechat.PushSafe, 0, false), "en")
	})
}

// TestBrowser_FollowLoginReplicas: two providers on one PostgreSQL; the
// browser talks to the first, WeChat pushes to the second.
func TestBrowser_FollowLoginReplicas(t *testing.T) {
	d := startFollowDev(t, wechat.PushSafe, 0, true)
	followLogin(t, d, "zh-CN", false)
}
