package wechat_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// A Mini Program login: the code from wx.login becomes openid, unionid and
// session key. Here the simulator plays WeChat.
func ExampleClient_Code2Session() {
	sim := wechattest.New(wechattest.Config{}) // the wxoidc dev apps
	ts := httptest.NewServer(sim)
	defer ts.Close()

	c := &wechat.Client{
		AppID:     "wxd0000000000000a1",
		AppSecret: "dev-miniprogram-secret",
		Endpoint:  wechat.Endpoint{APIURL: ts.URL, OpenURL: ts.URL},
	}
	code, _ := sim.LoginCode("wxd0000000000000a1", "alice") // what wx.login() returns
	s, err := c.Code2Session(context.Background(), code)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.OpenID == sim.OpenID("wxd0000000000000a1", "alice"), len(s.OpenID), len(s.SessionKey))

	// The same code again: WeChat's codes are single use.
	_, err = c.Code2Session(context.Background(), code)
	fmt.Println(wechat.IsInvalidCode(err), err != nil)
	// Output:
	// true 28 24
	// true true
}

// Website login: send the browser to AuthCodeURL, exchange the code from the
// redirect, then fetch the profile.
func ExampleClient_Exchange() {
	sim := wechattest.New(wechattest.Config{AutoConfirm: "alice"})
	ts := httptest.NewServer(sim)
	defer ts.Close()

	c := &wechat.Client{
		AppID:     "wxd0000000000000b2",
		AppSecret: "dev-website-secret",
		Endpoint:  wechat.Endpoint{APIURL: ts.URL, OpenURL: ts.URL},
	}
	authURL := c.AuthCodeURL(wechat.KindWebsite, "https://rp.example/callback", wechat.ScopeLogin, "xyz")

	// The browser's part, played by an HTTP client that does not follow
	// the redirect back to the relying party.
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	callback, _ := url.Parse(resp.Header.Get("Location"))

	tok, err := c.Exchange(context.Background(), callback.Query().Get("code"))
	if err != nil {
		fmt.Println(err)
		return
	}
	u, err := c.UserInfo(context.Background(), tok)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(callback.Query().Get("state"), tok.Scope, u.Nickname, u.UnionID == sim.UnionID("wxd0000000000000a1", "alice"))
	// Output:
	// xyz snsapi_login Alice true
}

// Legacy encryptedData decryption, with the vector of wechat-api.md §4.4.
func ExampleDecryptData() {
	pt, err := wechat.DecryptData(
		"XxyaPnstTGqODxorPE1ebw==",
		"nWBCFBYkGuAcki2Rn5y2I/5MsfzBI+n+/eSbrMwtOlkFFAsZc7iHLKTNQfiP6Ut/JmmPELSMB76drA+DnbQzW8IMxta2Od3Me743RsbjyhKt0/WYuDZNInXj4pqXmYZODgiNmqyqqEnjOoM48CAEofR3re9jHNscRxZslxIlQezPO4ZHU5o73vkpKtdz311ujAZ41U0SqhGukcd2xjnpzg==",
		"ChssPU5fYHGCk6S1xtfo+Q==",
		"wx3f7c2a9e51b04d86")
	fmt.Println(string(pt), err)
	// Output:
	// {"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":1700000000,"appid":"wx3f7c2a9e51b04d86"}} <nil>
}
