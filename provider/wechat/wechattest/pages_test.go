package wechattest_test

import (
	"bytes"
	"encoding/base64"
	"html"
	"image"
	_ "image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// The QR login page speaks one language per page (zh-CN or English, from
// lang or Accept-Language) and shows a real QR code of itself.
func TestServer_qrconnectPageLanguageAndQRCode(t *testing.T) {
	ts := httptest.NewServer(wechattest.New(wechattest.Config{}))
	defer ts.Close()
	q := url.Values{"appid": {"wxd0000000000000b2"}, "redirect_uri": {"https://rp.example/cb"}, "response_type": {"code"}, "scope": {"snsapi_login"}, "state": {"st"}}
	page := ts.URL + wechat.PathQRConnect + "?" + q.Encode()
	get := func(u, lang string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	han := regexp.MustCompile(`\p{Han}`)
	for _, tc := range []struct {
		name, url, lang string
		want            []string
		chinese         bool
	}{
		{"Chinese by default", page, "", []string{`<html lang="zh-CN">`, "以 Alice (alice) 身份扫码并确认登录", "以此用户身份扫码并确认登录", "其他用户名"}, true},
		{"English from Accept-Language", page, "en-GB,en;q=0.9", []string{`<html lang="en">`, "Scan and confirm as Alice (alice)", "Scan and confirm as this user", "Another user name"}, false},
		{"lang parameter", page + "&lang=en", "zh-CN", []string{`<html lang="en">`, "Sign in with WeChat"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := get(tc.url, tc.lang)
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			text := regexp.MustCompile(`(?s)<style>.*</style>|<[^>]+>`).ReplaceAllString(body, " ")
			text = strings.ReplaceAll(text, "微信用户", "") // a test user's WeChat nickname
			text = strings.ReplaceAll(text, "中文", "")   // the link to the other language
			if tc.chinese {
				if strings.Contains(text, "Scan") || strings.Contains(text, " as ") {
					t.Errorf("Chinese page has English: %s", text)
				}
			} else if han.MatchString(text) {
				t.Errorf("English page has Chinese: %s", han.FindAllString(text, -1))
			}
			m := regexp.MustCompile(`<img id="qr" alt="[^"]+" src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(body)
			if m == nil {
				t.Fatal("no QR code image")
			}
			if got := decodeQRPNG(t, m[1]); got != tc.url {
				t.Errorf("QR code says %q, want the page %q", got, tc.url)
			}
		})
	}
}

func decodeQRPNG(t *testing.T, b64 string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(b64))
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
	var last error
	for _, hints := range []map[gozxing.DecodeHintType]any{nil, {gozxing.DecodeHintType_TRY_HARDER: true}, {gozxing.DecodeHintType_PURE_BARCODE: true}} {
		res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
		if err == nil {
			return res.GetText()
		}
		last = err
	}
	t.Fatal(last)
	return ""
}
