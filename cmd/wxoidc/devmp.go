package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
)

// devMiniProgramPath is the dev page that plays the Mini Program of
// scan-to-sign-in: it lists the Mini Program codes shown and still pending,
// with buttons to approve or deny each as a test user.
const devMiniProgramPath = "/demo/miniprogram"

// devMiniProgram plays the dev Mini Program for a person at a browser, as
// the real one would after a scan: wx.login() at the simulator, the WeChat
// grant for demo-miniprogram, then GET and POST /oauth2/device/verify with
// the scene (the user code). It talks to the provider in process.
type devMiniProgram struct {
	sim      *wechattest.Server
	provider http.Handler
	store    storage.Storage
	issuer   string
	appID    string
	clientID string
	users    []string
}

var devMiniProgramPage = template.Must(template.New("mp").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dev Mini Program · 开发用小程序</title>
<style>body{font-family:system-ui,"PingFang SC",sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
li{margin:.8rem 0;padding:.8rem;border:1px solid #ddd;border-radius:6px;list-style:none}ul{padding:0}
button{font-size:1rem;padding:.4rem .8rem;margin:.2rem .2rem 0 0}code{font-size:1.05rem}.ok{color:#07c160}.err{color:#c00}</style></head>
<body><h1>Dev Mini Program · 开发用小程序</h1>
<p>Plays the Mini Program <code>{{.AppID}}</code> after a scan: pick who approves a code shown on a login or device page.
扫码后的小程序：选择由哪个测试用户确认。</p>
{{if .Message}}<p class="{{.Class}}" role="status">{{.Message}}</p>{{end}}
{{if .Codes}}<ul>{{range .Codes}}<li data-scene="{{.Scene}}"><code>{{.UserCode}}</code> · {{.Client}} · {{.Kind}} · <small>{{.Scope}}</small> · <small>{{.Left}}</small>
<form method="post">{{$s := .Scene}}<input type="hidden" name="scene" value="{{$s}}">
{{range $.Users}}<button name="approve" value="{{.}}" data-approve="{{.}}">Approve as {{.}}</button>{{end}}
<button name="deny" value="{{index $.Users 0}}" data-deny>Deny</button></form></li>{{end}}</ul>
{{else}}<p>No pending code. Open a login page and pick “Scan with the Mini Program”, or a device's /device page. 暂无待确认的码。</p>{{end}}
<p><a href="">Refresh · 刷新</a></p></body></html>`))

type devCode struct {
	Scene, UserCode, Client, Kind, Scope, Left string
}

func (m *devMiniProgram) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	provider.PageHeaders(w.Header())
	data := map[string]any{"AppID": m.appID, "Users": m.users}
	if r.Method == http.MethodPost {
		// With Referrer-Policy no-referrer a same-origin form says Origin:
		// null; Sec-Fetch-Site tells the cross-site ones.
		if o := r.Header.Get("Origin"); o != "" && o != "null" && o != strings.TrimRight(m.issuer, "/") || r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			http.Error(w, "cross-origin form", http.StatusForbidden)
			return
		}
		scene := r.PostFormValue("scene")
		user, action := r.PostFormValue("approve"), "approve"
		if user == "" {
			user, action = r.PostFormValue("deny"), "deny"
		}
		if err := m.decide(scene, user, action); err != nil {
			data["Message"], data["Class"] = err.Error(), "err"
		} else {
			data["Message"], data["Class"] = fmt.Sprintf("%s: %s as %s.", storage.FormatUserCode(scene), action+"d", user), "ok"
		}
	}
	var codes []devCode
	now := time.Now()
	seen := map[string]bool{}
	for _, c := range m.sim.WXACodes(m.appID) {
		if seen[c.Scene] {
			continue
		}
		seen[c.Scene] = true
		d, err := m.store.DeviceAuthByUserCode(r.Context(), c.Scene)
		if err != nil || d.Status != storage.DevicePending || !now.Before(d.ExpiresAt) {
			continue
		}
		name := d.ClientID
		if cl, err := m.store.Client(r.Context(), d.ClientID); err == nil && cl.Name != "" {
			name = cl.Name
		}
		codes = append(codes, devCode{Scene: c.Scene, UserCode: storage.FormatUserCode(c.Scene), Client: name, Kind: d.Kind,
			Scope: strings.Join(d.Scopes, " "), Left: d.ExpiresAt.Sub(now).Round(time.Second).String() + " left"})
	}
	data["Codes"] = codes
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	devMiniProgramPage.Execute(w, data)
}

// decide signs user in to the Mini Program and approves or denies scene.
func (m *devMiniProgram) decide(scene, user, action string) error {
	code, err := m.sim.LoginCode(m.appID, user)
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	status, body := m.call(http.MethodPost, "/oauth2/token", "", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {m.clientID}, "js_code": {code}, "scope": {"openid"},
	})
	if json.Unmarshal(body, &tok); status != http.StatusOK || tok.AccessToken == "" {
		return fmt.Errorf("mini program sign-in failed: %d %s", status, body)
	}
	status, body = m.call(http.MethodPost, "/oauth2/device/verify", tok.AccessToken, url.Values{"user_code": {scene}, "action": {action}})
	if status != http.StatusNoContent {
		return errors.New("the provider refused: " + string(body))
	}
	return nil
}

// call sends a request to the provider in process.
func (m *devMiniProgram) call(method, path, bearer string, form url.Values) (int, []byte) {
	u, _ := url.Parse(m.issuer)
	req := httptest.NewRequest(method, u.Path+path, strings.NewReader(form.Encode()))
	req.Host = u.Host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	m.provider.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}
