package wechattest

import (
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
	"github.com/wxoidc/wxoidc/provider/wechat"
)

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · {{.SimName}}</title>
<style>
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#111;line-height:1.5}
h1{font-size:1.3rem}.note{color:#555;font-size:.9rem}
form{margin:.5rem 0}button{font-size:1rem;padding:.5rem 1rem;margin:.2rem 0;min-width:14rem;min-height:44px;cursor:pointer}
.confirm{background:#07c160;color:#fff;border:0;border-radius:4px}.cancel{background:#eee;border:1px solid #ccc;border-radius:4px}
.qr{text-align:center;margin:1rem 0}.qr img{width:200px;height:200px;image-rendering:pixelated;border:1px solid #eee}
label{display:block;margin-top:.5rem}input{font-size:1rem;padding:.4rem;margin:.2rem 0}
.lang{float:right;font-size:.9rem}
</style>
</head>
<body>
<main>
{{if .SwitchHref}}<a class="lang" href="{{.SwitchHref}}" lang="{{.SwitchLang}}">{{.SwitchLabel}}</a>{{end}}
<h1>{{.Title}}</h1>
{{if .Message}}<p role="alert">{{.Message}}</p>{{end}}
{{if .QR}}<div class="qr"><img id="qr" alt="{{.QRAlt}}" src="{{.QR}}"></div>{{end}}
{{if .Note}}<p class="note">{{.Note}}</p>{{end}}
{{if .Users}}
<p>{{.AppName}}</p>
<section aria-label="{{.UsersLabel}}">
{{range .Users}}
<form method="post" action="{{$.Action}}">
{{template "hidden" $}}
<input type="hidden" name="user" value="{{.Name}}">
<input type="hidden" name="action" value="confirm">
<button class="confirm" type="submit">{{.Label}}</button>
</form>
{{end}}
<form method="post" action="{{.Action}}">
{{template "hidden" .}}
<input type="hidden" name="action" value="confirm">
<label for="user">{{.OtherUserLabel}}</label>
<input id="user" name="user" required maxlength="64" pattern="\S+">
<button class="confirm" type="submit">{{.OtherUserButton}}</button>
</form>
<form method="post" action="{{.Action}}">
{{template "hidden" .}}
<input type="hidden" name="action" value="cancel">
<button class="cancel" type="submit">{{.CancelLabel}}</button>
</form>
</section>
{{end}}
<p class="note">{{.Footer}}</p>
</main>
</body>
</html>
{{define "hidden"}}<input type="hidden" name="appid" value="{{.AppID}}"><input type="hidden" name="redirect_uri" value="{{.RedirectURI}}"><input type="hidden" name="response_type" value="code"><input type="hidden" name="scope" value="{{.Scope}}"><input type="hidden" name="state" value="{{.State}}"><input type="hidden" name="lang" value="{{.Lang}}">{{end}}
`))

type pageData struct {
	Lang                                string
	Title, Message, Note                string
	AppName                             string
	AppID, RedirectURI                  string
	Scope, State                        string
	Action, CancelLabel                 string
	OtherUserLabel, OtherUserButton     string
	UsersLabel, SimName, Footer         string
	QR                                  template.URL // data: URI of the QR code image
	QRAlt                               string
	SwitchHref, SwitchLang, SwitchLabel string
	Users                               []userChoice
}

// userChoice is one test user's confirm button.
type userChoice struct{ Name, Label string }

// pageText is a page's wording in one language.
type pageText struct {
	simName, footer, usersLabel, otherUser, qrAlt, switchLabel string
	// website QR login; official-account snsapi_userinfo; snsapi_base
	websiteTitle, websiteNote, websiteAs, websiteOther, websiteCancel string
	userinfoTitle, userinfoAs, userinfoOther, userinfoCancel          string
	baseTitle, baseNote, baseAs, baseOther, baseCancel                string
	snapshot                                                          string
}

var pageTexts = map[string]pageText{
	"zh-CN": {
		simName: "微信模拟器", footer: "微信模拟器（wechattest）——仅供测试和本地开发使用。",
		usersLabel: "测试用户", otherUser: "其他用户名", qrAlt: "登录二维码", switchLabel: "English",
		websiteTitle: "微信登录", websiteNote: "请使用微信扫描二维码登录。在模拟器里，点击一位测试用户即代表用微信扫码并在手机上确认。",
		websiteAs: "以 %s 身份扫码并确认登录", websiteOther: "以此用户身份扫码并确认登录", websiteCancel: "取消登录",
		userinfoTitle: "申请获得你的公开信息（昵称、头像）", userinfoAs: "以 %s 身份允许", userinfoOther: "以此用户身份允许", userinfoCancel: "拒绝",
		baseTitle: "选择测试用户", baseNote: "在微信里，snsapi_base 授权是静默的；模拟器会问你是哪位测试用户。",
		baseAs: "以 %s 身份继续", baseOther: "以此用户身份继续", baseCancel: "取消",
		snapshot: "（快照页模式）",
	},
	"en": {
		simName: "WeChat simulator", footer: "WeChat simulator (wechattest) — for tests and local development only.",
		usersLabel: "Test users", otherUser: "Another user name", qrAlt: "Sign-in QR code", switchLabel: "中文",
		websiteTitle: "Sign in with WeChat", websiteNote: "Scan the QR code with WeChat to sign in. In the simulator, choosing a test user stands for scanning the code and confirming on the phone.",
		websiteAs: "Scan and confirm as %s", websiteOther: "Scan and confirm as this user", websiteCancel: "Cancel",
		userinfoTitle: "Allow access to your public profile (nickname, picture)?", userinfoAs: "Allow as %s", userinfoOther: "Allow as this user", userinfoCancel: "Deny",
		baseTitle: "Choose a test user", baseNote: "In WeChat, snsapi_base is silent; the simulator asks which test user you are.",
		baseAs: "Continue as %s", baseOther: "Continue as this user", baseCancel: "Cancel",
		snapshot: " (snapshot mode)",
	},
}

// pageLang picks the page's language: the lang parameter (zh-CN or en),
// else the first Chinese or English tag of Accept-Language, else Chinese
// (WeChat's own pages are Chinese).
func pageLang(r *http.Request, get func(string) string) string {
	switch l := get("lang"); l {
	case "zh-CN", "en":
		return l
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(part)), ";")
		switch {
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			return "zh-CN"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			return "en"
		}
	}
	return "zh-CN"
}

// qrDataURI is a PNG QR code of content as a data: URI.
func qrDataURI(content string) (template.URL, error) {
	png, err := qrcode.Encode(content, qrcode.Medium, -4) // 4 pixels a module: sharp at any length
	if err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}

func writePage(w http.ResponseWriter, d pageData) {
	if d.Lang == "" {
		d.Lang = "zh-CN"
	}
	t := pageTexts[d.Lang]
	if d.SimName == "" {
		d.SimName, d.Footer = t.simName, t.footer
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(http.StatusOK)
	pageTmpl.Execute(w, d)
}

// authRequest is a validated authorize request.
type authRequest struct {
	app                       App
	redirectURI, scope, state string
}

// parseAuth validates the authorize parameters of a page; on failure it
// returns WeChat's error page text.
func (s *Server) parseAuth(r *http.Request, kind wechat.AppKind) (authRequest, string) {
	get := r.URL.Query().Get
	if r.Method == http.MethodPost {
		get = r.PostFormValue
	}
	a := authRequest{redirectURI: get("redirect_uri"), scope: get("scope"), state: get("state")}
	app, ok := s.apps[get("appid")]
	if !ok || app.Kind != kind {
		return a, "该链接无法访问 (appid 参数错误)"
	}
	a.app = app
	if kind == wechat.KindWebsite && a.scope != wechat.ScopeLogin ||
		kind == wechat.KindOfficial && a.scope != wechat.ScopeBase && a.scope != wechat.ScopeUserInfo {
		return a, "Scope 参数错误或没有 Scope 权限 (10005)"
	}
	if get("response_type") != "code" {
		return a, "该链接无法访问 (response_type 参数错误)"
	}
	u, err := url.Parse(a.redirectURI)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return a, "redirect_uri 参数错误 (10003)"
	}
	if len(app.RedirectHosts) > 0 {
		found := false
		for _, h := range app.RedirectHosts {
			found = found || strings.EqualFold(h, u.Host)
		}
		if !found {
			return a, "redirect_uri 域名与后台配置不一致 (10003)"
		}
	}
	if len(a.state) > 128 {
		return a, "state 参数过长"
	}
	return a, ""
}

// redirectTo sends the browser back to redirect_uri with code (if any) and
// state.
func redirectTo(w http.ResponseWriter, r *http.Request, a authRequest, code string) {
	u, _ := url.Parse(a.redirectURI)
	q := u.Query()
	if code != "" {
		q.Set("code", code)
	}
	q.Set("state", a.state)
	u.RawQuery = q.Encode()
	u.Fragment = ""
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) issueOAuthCode(a authRequest, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(user)
	c := &code{appID: a.app.AppID, user: user, scope: a.scope}
	if a.app.Kind == wechat.KindWebsite {
		c.kind, c.expires = codeWebsite, s.now().Add(WebsiteCodeTTL)
	} else {
		c.kind, c.expires, c.snapshot = codeOfficial, s.now().Add(OfficialCodeTTL), u.Snapshot
	}
	return s.issueLocked(c)
}

func (s *Server) autoConfirmUser() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.autoConfirm
}

func appName(a App) string {
	if a.Name != "" {
		return a.Name
	}
	return a.AppID
}

// qrconnect serves the website QR-login page. A person (or a headless
// browser) confirms by clicking as a test user, which stands in for
// scanning the QR code and confirming on the phone.
func (s *Server) qrconnect(w http.ResponseWriter, r *http.Request) {
	s.authorizePage(w, r, wechat.KindWebsite)
}

// oauth2Authorize serves the official-account authorize page. Outside a
// MicroMessenger User-Agent it shows "请在微信客户端打开链接", as WeChat does.
// Real snsapi_base is silent; the simulator cannot know who is holding the
// phone, so it asks which test user you are (without consent wording)
// unless auto-confirm is on.
func (s *Server) oauth2Authorize(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AnyUserAgent && !strings.Contains(strings.ToLower(r.UserAgent()), "micromessenger") {
		writePage(w, pageData{
			Title:   "请在微信客户端打开链接",
			Message: "请在微信客户端打开链接 (Please open this link in WeChat.)",
			Note:    "The simulator, like WeChat, serves this page only to a User-Agent containing MicroMessenger.",
		})
		return
	}
	s.authorizePage(w, r, wechat.KindOfficial)
}

func (s *Server) authorizePage(w http.ResponseWriter, r *http.Request, kind wechat.AppKind) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			writePage(w, pageData{Title: "该链接无法访问", Message: "bad form"})
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, bad := s.parseAuth(r, kind)
	if bad != "" {
		writePage(w, pageData{Title: "该链接无法访问", Message: bad})
		return
	}
	if r.Method == http.MethodPost {
		if r.PostFormValue("action") == "cancel" {
			if kind == wechat.KindWebsite {
				// Older docs: a refusal redirects with only state.
				redirectTo(w, r, a, "")
				return
			}
			if pageLang(r, r.PostFormValue) == "en" {
				writePage(w, pageData{Lang: "en", Title: "Cancelled", Message: "You declined."})
			} else {
				writePage(w, pageData{Title: "已取消", Message: "你已拒绝授权。"})
			}
			return
		}
		user := r.PostFormValue("user")
		if !validUserName(user) {
			writePage(w, pageData{Title: "该链接无法访问", Message: "invalid user name"})
			return
		}
		redirectTo(w, r, a, s.issueOAuthCode(a, user))
		return
	}
	if u := s.autoConfirmUser(); u != "" {
		redirectTo(w, r, a, s.issueOAuthCode(a, u))
		return
	}
	get := r.URL.Query().Get
	lang := pageLang(r, get)
	t := pageTexts[lang]
	d := pageData{
		Lang: lang, AppName: appName(a.app), AppID: a.app.AppID, RedirectURI: a.redirectURI,
		Scope: a.scope, State: a.state, UsersLabel: t.usersLabel, OtherUserLabel: t.otherUser,
	}
	var as string
	switch {
	case kind == wechat.KindWebsite:
		d.Title, d.Action, d.Note, as, d.OtherUserButton, d.CancelLabel = t.websiteTitle, "qrconnect", t.websiteNote, t.websiteAs, t.websiteOther, t.websiteCancel
		// The code a phone would scan: this page's own address.
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		if qr, err := qrDataURI(scheme + "://" + r.Host + r.URL.RequestURI()); err == nil {
			d.QR, d.QRAlt = qr, t.qrAlt
		}
	case a.scope == wechat.ScopeUserInfo:
		d.Title, d.Action, as, d.OtherUserButton, d.CancelLabel = t.userinfoTitle, "authorize", t.userinfoAs, t.userinfoOther, t.userinfoCancel
	default:
		d.Title, d.Action, d.Note, as, d.OtherUserButton, d.CancelLabel = t.baseTitle, "authorize", t.baseNote, t.baseAs, t.baseOther, t.baseCancel
	}
	for _, u := range s.sortedUsers() {
		who := u.Nickname + " (" + u.Name + ")"
		if u.Snapshot {
			who += t.snapshot
		}
		d.Users = append(d.Users, userChoice{Name: u.Name, Label: fmt.Sprintf(as, who)})
	}
	other := "en"
	if lang == "en" {
		other = "zh-CN"
	}
	q := r.URL.Query()
	q.Set("lang", other)
	d.SwitchHref, d.SwitchLang, d.SwitchLabel = "?"+q.Encode(), other, t.switchLabel // relative: the simulator may be mounted under a prefix
	writePage(w, d)
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WeChat simulator</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3}</style></head>
<body><main><h1>WeChat simulator</h1>
<p>For tests and local development only.</p>
<h2>Apps</h2><ul>{{range .Apps}}<li><code>{{.AppID}}</code> {{.Kind}}{{if .Platform}}, platform <code>{{.Platform}}</code>{{end}}</li>{{end}}</ul>
<h2>Users</h2><ul>{{range .Users}}<li><code>{{.Name}}</code> {{.Nickname}}{{if .Snapshot}} (snapshot){{end}}</li>{{end}}</ul>
<h2>Helpers</h2><ul>
<li><code>POST sim/login</code> form appid, user → {"code"}</li>
<li><code>POST sim/phone-code</code> form appid, user, phone → {"code"}</li>
<li><code>GET|POST|DELETE sim/faults</code> latency_ms, busy, busy_rate, rate_limit, errcode, errcode_count, wrong_secret, path</li>
<li><code>GET|DELETE sim/stats</code> call counts per path</li>
<li><code>POST sim/auto-confirm</code> form user</li>
</ul></main></body></html>`))

// simIndex: GET /sim/ describes the simulator.
func (s *Server) simIndex(w http.ResponseWriter, r *http.Request) {
	apps := make([]App, 0, len(s.cfg.Apps))
	for _, a := range s.cfg.Apps {
		a.Secret = ""
		apps = append(apps, a)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	indexTmpl.Execute(w, map[string]any{"Apps": apps, "Users": s.sortedUsers()})
}
