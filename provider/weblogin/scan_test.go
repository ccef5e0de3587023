package weblogin_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/storage"
)

const scanPage = "pages/scan/index"

func withScan(lifetime time.Duration) func(*weblogin.Config) {
	return func(c *weblogin.Config) {
		c.Scan = &weblogin.ScanConfig{AppID: miniApp, Page: scanPage, Lifetime: lifetime}
	}
}

var (
	reDataLogin = regexp.MustCompile(`href="([^"]+)"[^>]*data-login="([a-z]+)"`)
	reImage     = regexp.MustCompile(`src="(data:image/[a-z]+;base64,[^"]+)"`)
)

// choices returns the page's data-login links by marker.
func choices(body string) map[string]string {
	out := map[string]string{}
	for _, m := range reDataLogin.FindAllStringSubmatch(body, -1) {
		out[m[2]] = html.UnescapeString(m[1])
	}
	return out
}

// decodeQR decodes the QR code in a data: URL image.
func decodeQR(t *testing.T, dataURL string) string {
	t.Helper()
	_, b64, _ := strings.Cut(dataURL, ",")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// Plain first; then harder, then as a pure code (no quiet-zone
	// search): gozxing's finder misses some small images.
	var last error
	for _, hints := range []map[gozxing.DecodeHintType]any{
		nil,
		{gozxing.DecodeHintType_TRY_HARDER: true},
		{gozxing.DecodeHintType_PURE_BARCODE: true},
	} {
		res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
		if err == nil {
			return res.GetText()
		}
		last = err
	}
	t.Fatal(last)
	return ""
}

func waitStatus(t *testing.T, b *browser, u string) string {
	t.Helper()
	p := b.get(u)
	var body struct{ Status string }
	if err := json.Unmarshal([]byte(p.body), &body); err != nil {
		t.Fatalf("status %d: %s", p.status, p.body)
	}
	return body.Status
}

// startScan starts a desktop login of the first-party client and picks
// "scan"; it returns the waiting page and the user code the image holds.
func startScan(t *testing.T, e *env, b *browser, verifier string) (page, string) {
	t.Helper()
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	chooser, _ := b.follow(authURL(conf, verifier))
	if chooser.status != 200 {
		t.Fatalf("chooser: status %d body %.300s", chooser.status, chooser.body)
	}
	ch := choices(chooser.body)
	if ch["qr"] == "" || ch["scan"] == "" {
		t.Fatalf("chooser offers %v; want qr and scan", ch)
	}
	wait, _ := b.follow(ch["scan"])
	m := reImage.FindStringSubmatch(wait.body)
	if wait.status != 200 || m == nil {
		t.Fatalf("waiting page: status %d body %.500s", wait.status, wait.body)
	}
	text := decodeQR(t, html.UnescapeString(m[1]))
	page, scene, ok := strings.Cut(text, "?scene=")
	if !ok || page != scanPage || len(scene) != 8 {
		t.Fatalf("QR text %q; want %s?scene=<user code>", text, scanPage)
	}
	if !strings.Contains(wait.body, storage.FormatUserCode(scene)) {
		t.Errorf("the page does not show the user code %s", storage.FormatUserCode(scene))
	}
	codes := e.sim.WXACodes(miniApp)
	if len(codes) == 0 || codes[0].Scene != scene || codes[0].Page != scanPage {
		t.Errorf("simulator issued %v; want scene %s first", codes, scene)
	}
	return wait, scene
}

func TestScanLogin(t *testing.T) {
	e := newEnv(t, withScan(0))
	alice := e.miniProgramSub("alice")
	b := e.browser(desktopUA)
	const verifier = "verifier-0123456789-0123456789-0123456789-abc"
	wait, scene := startScan(t, e, b, verifier)
	links := choices(wait.body)
	cont := links["continue"]
	if cont == "" || links["restart"] == "" {
		t.Fatalf("waiting page links %v; want continue and restart", links)
	}
	statusURL := strings.Replace(cont, "/login/wait/continue", "/login/wait/status", 1)
	if got := waitStatus(t, b, statusURL); got != "pending" {
		t.Fatalf("status %q, want pending", got)
	}
	// Continue before approval: back to the waiting page.
	p := b.get(cont)
	if p.location == nil || !strings.Contains(p.location.Path, "/login/wait") {
		t.Fatalf("continue while pending: status %d location %v", p.status, p.location)
	}
	// Another browser cannot take the login over.
	if p := e.browser(desktopUA).get(cont); p.status != 400 || !strings.Contains(p.body, "errOtherBrowser") {
		t.Fatalf("another browser: status %d body %.200s", p.status, p.body)
	}

	if _, err := e.store.DecideDeviceAuth(e.ctx, scene, storage.DeviceDecision{Approve: true, Subject: alice, AuthTime: time.Now(), AMR: []string{"wechat"}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got := waitStatus(t, b, statusURL); got != "approved" {
		t.Fatalf("status %q, want approved", got)
	}
	done, _ := b.follow(cont)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	idt := e.redeem(conf, verifier, done)
	var claims struct {
		AMR []string `json:"amr"`
	}
	idt.Claims(&claims)
	if idt.Subject != alice || strings.Join(claims.AMR, " ") != "wechat miniprogram" {
		t.Fatalf("signed in as %s with amr %v; want alice %s, [wechat miniprogram]", idt.Subject, claims.AMR, alice)
	}
	events, _, err := e.store.Events(e.ctx, storage.EventQuery{Subject: alice, Type: storage.EventLogin, ClientID: firstParty})
	if err != nil || len(events) != 1 || events[0].Details["method"] != "scan" {
		t.Fatalf("login events %+v, %v; want one with method scan", events, err)
	}
	// Single use.
	if p, _ := b.follow(cont); p.status != 400 || !strings.Contains(p.body, "errStateExpired") {
		t.Fatalf("second continue: status %d body %.200s", p.status, p.body)
	}
}

func TestScanLogin_DeniedAndExpired(t *testing.T) {
	// The login step's clock runs ahead by skew, so the code expires
	// without a sleep, and not before the test decides on it however
	// slow the machine is.
	var skew atomic.Int64
	e := newEnv(t, withScan(time.Minute), func(c *weblogin.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	b := e.browser(desktopUA)
	wait, scene := startScan(t, e, b, "verifier-0123456789-0123456789-0123456789-abc")
	waitURL := wait.url.String()
	if _, err := e.store.DecideDeviceAuth(e.ctx, scene, storage.DeviceDecision{Approve: false, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	p := b.get(waitURL)
	if p.status != 410 || !strings.Contains(p.body, `data-error="denied"`) || choices(p.body)["restart"] == "" {
		t.Fatalf("denied: status %d body %.400s", p.status, p.body)
	}
	// A fresh code: the restart link goes back to the chooser.
	again, _ := b.follow(choices(p.body)["restart"])
	if choices(again.body)["scan"] == "" {
		t.Fatalf("restart: status %d body %.300s", again.status, again.body)
	}

	wait, _ = startScan(t, e, b, "verifier-0123456789-0123456789-0123456789-abc")
	skew.Add(int64(time.Minute + time.Second))
	p = b.get(wait.url.String())
	if p.status != 410 || !strings.Contains(p.body, `data-error="expired"`) {
		t.Fatalf("expired: status %d body %.400s", p.status, p.body)
	}
}

func TestLogin_SingleMethodGoesStraight(t *testing.T) {
	e := newEnv(t) // website app and official account; no scan
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	_, seen := b.follow(authURL(conf, "verifier-0123456789-0123456789-0123456789-abc"))
	for _, u := range seen {
		if strings.Contains(u, "/connect/qrconnect") {
			return
		}
	}
	t.Fatalf("with one way in the browser should go straight to WeChat's QR page; went %v", seen)
}
