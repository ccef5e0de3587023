package weblogin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// inWeChat reports whether the browser is WeChat's in-app browser, where
// official-account OAuth works (wechat-api.md §7.3). WeCom (wxwork) is not.
func inWeChat(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	return strings.Contains(ua, "micromessenger") && !strings.Contains(ua, "wxwork")
}

// handleLogin serves GET /login?login=ID: it picks the WeChat flow for
// this browser and sends it to WeChat with a new single-use state.
func (a *Authenticator) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, msg, err := a.consume(ctx, r, r.URL.Query().Get("login"), stepLogin)
	if err != nil {
		a.serverError(w, r, "", "consume login state", err)
		return
	}
	if p == nil {
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	switch {
	case inWeChat(r) && a.official != nil:
		p.Kind, p.Scope = wechat.KindOfficial, wechat.ScopeBase
		if wantsProfile(p.Params) {
			p.Scope = wechat.ScopeUserInfo
		}
	case a.website != nil:
		p.Kind, p.Scope = wechat.KindWebsite, wechat.ScopeLogin
	default:
		// Only an official account, and not inside WeChat.
		a.errorPage(w, r, p.Locale, http.StatusBadRequest, "errOpenInWeChat", a.authorizeURL(p))
		return
	}
	a.toWeChat(w, r, p)
}

// wantsProfile reports whether the authorization request asks for scope
// profile, which needs snsapi_userinfo inside WeChat.
func wantsProfile(params string) bool {
	v, _ := url.ParseQuery(params)
	return slices.Contains(strings.Fields(v.Get("scope")), "profile")
}

// toWeChat stores p as a WeChat round trip and redirects there.
func (a *Authenticator) toWeChat(w http.ResponseWriter, r *http.Request, p *pending) {
	p.Step = stepWeChat
	state, err := a.save(r.Context(), p)
	if err != nil {
		a.serverError(w, r, p.Locale, "save login state", err)
		return
	}
	noStore(w)
	http.Redirect(w, r, a.client(p.Kind).AuthCodeURL(p.Kind, a.url(PathCallback), p.Scope, state), http.StatusFound)
}

func (a *Authenticator) client(kind wechat.AppKind) *wechat.Client {
	if kind == wechat.KindOfficial {
		return a.official
	}
	return a.website
}
