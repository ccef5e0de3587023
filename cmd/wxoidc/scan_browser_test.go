package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	gzqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// scanDev is `wxoidc dev` (startDevRun) with the scan code's lifetime
// set by the test.
type scanDev struct {
	issuer string
	sim    *wechattest.Server
}

func startScanDev(t *testing.T, lifetime time.Duration) *scanDev {
	t.Helper()
	d := startDevRun(t, devRunOptions{
		sim: wechattest.Config{AnyUserAgent: true},
		configure: func(cfg *Config) {
			for i := range cfg.WeChat.Apps {
				if cfg.WeChat.Apps[i].AppID == devMiniProgramAppID {
					cfg.WeChat.Apps[i].ScanLogin.CodeLifetime = lifetime // below what a file may set: the test waits for it
				}
			}
		},
	})
	return &scanDev{issuer: d.issuer, sim: d.sim}
}

// miniProgram plays the Mini Program opened by a scan: wx.login() as
// user, the WeChat grant, then /oauth2/device/verify with the scene.
func (d *scanDev) miniProgram(t *testing.T, user, scene, action string) {
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
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	// onLoad(options): decodeURIComponent(options.scene), then show what
	// is asked and let the person decide.
	req, _ := http.NewRequest(http.MethodGet, d.issuer+"/oauth2/device/verify?user_code="+url.QueryEscape(scene), nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var shown map[string]any
	json.NewDecoder(resp.Body).Decode(&shown)
	resp.Body.Close()
	if resp.StatusCode != 200 || shown["client_id"] != devWebClient || shown["kind"] != "scan" {
		t.Fatalf("GET verify: %d %v", resp.StatusCode, shown)
	}
	req, _ = http.NewRequest(http.MethodPost, d.issuer+"/oauth2/device/verify", strings.NewReader(url.Values{"user_code": {scene}, "action": {action}}.Encode()))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST verify %s: %d %s", action, resp.StatusCode, b)
	}
}

// openScanCode opens the demo, signs in, picks "scan" on the login page
// and returns the scene of the Mini Program code the page shows.
func openScanCode(t *testing.T, ctx context.Context, d *scanDev, shots *followShots, lang string) string {
	t.Helper()
	var src, htmlLang, code string
	steps(t, ctx, "choose scan",
		chromedp.Navigate(d.issuer+"/demo"),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="scan"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="qr"]`)),
		store(&htmlLang, chromedp.Evaluate[string]("document.documentElement.lang")),
		shots.shot("login-page"),
		chromedp.Click(chromedp.CSS(`a[data-login="scan"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#wait img`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="continue"]`)),
		store(&src, chromedp.Evaluate[string](`document.querySelector("#wait img").src`)),
		store(&code, chromedp.Text(chromedp.CSS(`.user-code`))),
		shots.shot("scan-code"),
	)
	if htmlLang != lang {
		t.Fatalf("page language %q, want %q", htmlLang, lang)
	}
	_, b64, _ := strings.Cut(src, ",")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("code image %.80s: %v", src, err)
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
		t.Fatalf("decode the page's Mini Program code: %v", err)
	}
	page, scene, _ := strings.Cut(res.GetText(), "?scene=")
	if page != devScanPage || scene != strings.ReplaceAll(code, "-", "") {
		t.Fatalf("the code holds %q; want %s?scene=%s (the user code shown)", res.GetText(), devScanPage, code)
	}
	if got := d.sim.WXACodes(devMiniProgramAppID); len(got) == 0 || got[0].Scene != scene {
		t.Fatalf("simulator issued %v", got)
	}
	return scene
}

// scanLogin: demo → scan → the Mini Program approves → the demo is signed
// in as that person, without a click.
func scanLogin(t *testing.T, d *scanDev, lang string, devPage bool) {
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)
	scene := openScanCode(t, ctx, d, shots, lang)
	if devPage {
		// As in `wxoidc dev`: the person plays the Mini Program on its
		// dev page, in another tab.
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		btn := `li[data-scene="` + scene + `"] button[data-approve="alice"]`
		steps(t, tab, "approve on the dev Mini Program page",
			chromedp.Navigate(d.issuer+devMiniProgramPath),
			chromedp.WaitVisible(chromedp.CSS(btn)),
			shots.shot("dev-miniprogram"),
			chromedp.Click(chromedp.CSS(btn)),
			chromedp.WaitVisible(chromedp.CSS(`p.ok`)),
		)
	} else {
		d.miniProgram(t, "alice", scene, "approve")
	}
	var sub, loc string
	steps(t, ctx, "the page carries on by itself",
		chromedp.WaitVisible(chromedp.ID("claims")),
		store(&sub, chromedp.Text(chromedp.ID("sub"))),
		store(&loc, chromedp.Location()),
		shots.shot("demo-signed-in"),
	)
	if loc != d.issuer+"/demo" {
		t.Fatalf("after the approval at %s", loc)
	}
	if mp := (&followDev{issuer: d.issuer}).miniProgramSub(t, "alice"); mp != sub {
		t.Fatalf("scan sub %s, Mini Program sub %s: want one user", sub, mp)
	}
}

// scanEnds: the code is denied in the Mini Program, or expires; the page
// says so by itself and offers a fresh code.
func scanEnds(t *testing.T, d *scanDev, lang, how string) {
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)
	scene := openScanCode(t, ctx, d, shots, lang)
	if how == "denied" {
		d.miniProgram(t, "alice", scene, "deny")
	}
	var text string
	steps(t, ctx, "the page tells",
		chromedp.WaitVisible(chromedp.CSS(`[data-error="`+how+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="restart"]`)),
		store(&text, chromedp.Text(chromedp.CSS(`[data-error="`+how+`"]`))),
		shots.shot("scan-"+how),
		chromedp.Click(chromedp.CSS(`a[data-login="restart"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="scan"]`)),
	)
	if text == "" {
		t.Fatal("no message")
	}
}

// deviceShots shows /device for a device's code, before sign-in.
func deviceShots(t *testing.T, d *scanDev, lang string) {
	resp, err := http.PostForm(d.issuer+"/oauth2/device/authorize", url.Values{"client_id": {devDeviceClient}, "scope": {"openid profile"}})
	if err != nil {
		t.Fatal(err)
	}
	var da struct {
		VerificationURIComplete string `json:"verification_uri_complete"`
	}
	json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	ctx := newFollowBrowser(t, lang)
	shots := newFollowShots(t)
	steps(t, ctx, "device page",
		chromedp.Navigate(d.issuer+"/device"),
		chromedp.WaitVisible(chromedp.ID("user_code")),
		shots.shot("device-enter"),
		chromedp.Navigate(da.VerificationURIComplete),
		chromedp.WaitVisible(chromedp.CSS(`#device[data-state="signin"] img`)),
		chromedp.WaitVisible(chromedp.CSS(`a[data-login="qr"]`)),
		shots.shot("device-signin"),
	)
}

func TestBrowser_ScanLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	// Each language sees a success and a failure; CI time is shared.
	t.Run("dev page zh-CN", func(t *testing.T) { scanLogin(t, startScanDev(t, 0), "zh-CN", true) })
	t.Run("verify en", func(t *testing.T) { scanLogin(t, startScanDev(t, 0), "en", false) })
	t.Run("denied en", func(t *testing.T) { scanEnds(t, startScanDev(t, 0), "en", "denied") })
	t.Run("expired zh-CN", func(t *testing.T) { scanEnds(t, startScanDev(t, 4*time.Second), "zh-CN", "expired") })
	t.Run("device page en", func(t *testing.T) { deviceShots(t, startScanDev(t, 0), "en") })
}
