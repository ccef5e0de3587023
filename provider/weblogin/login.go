package weblogin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// inWeChat reports whether the browser is WeChat's in-app browser, where
// official-account OAuth works (wechat-api.md §7.3). WeCom (wxwork) is not.
func inWeChat(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	return strings.Contains(ua, "micromessenger") && !strings.Contains(ua, "wxwork")
}

// A loginMethod is one way in on the desktop login page (SPEC §9). Adding
// one is a matter of appending it in loginMethods, with its button text in
// pages.go's messages; a method that finishes out of band (the person
// scans something with their phone) starts with startWait and registers a
// waitKind (wait.go).
type loginMethod struct {
	// name is the method's data-login marker and its ?method= value:
	// "qr", "scan", "official".
	name string
	// label and hint are the message keys of its button and the line
	// below it.
	label, hint string
	// start begins the login of p, whose login state has just been
	// consumed, and writes the response.
	start func(w http.ResponseWriter, r *http.Request, p *pending)
	// kind and scope, if set, say that start only sends the browser to
	// WeChat's OAuth of that kind and scope: handleLogin then does it
	// with toWeChatFrom, consuming the state and storing the next in one
	// storage step, and start is not called.
	kind  wechat.AppKind
	scope string
}

// loginMethods lists the ways in this deployment offers on a desktop
// browser, in the order the login page shows them.
func (a *Authenticator) loginMethods() []loginMethod {
	var ms []loginMethod
	if a.website != nil {
		ms = append(ms, loginMethod{name: "qr", label: "methodQR", hint: "methodQRHint", start: func(w http.ResponseWriter, r *http.Request, p *pending) {
			p.Kind, p.Scope = wechat.KindWebsite, wechat.ScopeLogin
			a.toWeChat(w, r, p)
		}, kind: wechat.KindWebsite, scope: wechat.ScopeLogin})
	}
	if a.scan != nil {
		ms = append(ms, loginMethod{name: kindScan, label: "methodScan", hint: "methodScanHint", start: func(w http.ResponseWriter, r *http.Request, p *pending) {
			a.startWait(w, r, p, kindScan)
		}})
	}
	if a.followLogin != nil {
		ms = append(ms, loginMethod{name: kindOfficial, label: "methodOfficial", hint: "methodOfficialHint", start: func(w http.ResponseWriter, r *http.Request, p *pending) {
			a.startWait(w, r, p, kindOfficial)
		}})
	}
	return ms
}

// handleLogin serves GET /login?login=ID[&method=NAME].
//
// Inside WeChat's browser the official account's OAuth is the only way in
// that makes sense (nobody scans their own screen), so it starts at once,
// as does the only method of a deployment that has one: a page with a
// single button is a click for nothing. Otherwise, without a method, it
// shows the chooser; the chooser reads nothing from storage and consumes
// nothing, so reloading it or coming back to it is harmless. With a
// method, it consumes the login state and starts that method.
func (a *Authenticator) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if headOnly(w, r) {
		return
	}
	if ok, wait := a.loginLimits.Allow(r, a.now()); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		a.errorPage(w, r, "", http.StatusTooManyRequests, "errTooMany", "")
		return
	}
	q := r.URL.Query()
	id, name := q.Get("login"), q.Get("method")
	methods := a.loginMethods()
	if inWeChat(r) && a.official != nil {
		name = "wechat"
	} else if name == "" && len(methods) == 1 {
		name = methods[0].name
	} else if name == "" && len(methods) > 1 {
		a.showChooser(w, r, q, id, methods)
		return
	}
	i := slices.IndexFunc(methods, func(m loginMethod) bool { return m.name == name })
	if name != "wechat" && name != "" && i < 0 {
		a.errorPage(w, r, "", http.StatusBadRequest, "errForm", "")
		return
	}
	if i >= 0 && methods[i].kind != "" {
		a.toWeChatFrom(w, r, id, methods[i].kind, methods[i].scope)
		return
	}
	p, msg, err := a.consume(ctx, r, id, stepLogin)
	if err != nil {
		a.serverError(w, r, "", "consume login state", err)
		return
	}
	if p == nil {
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	switch {
	case name == "wechat":
		p.Kind, p.Scope = wechat.KindOfficial, wechat.ScopeBase
		if wantsProfile(p.Params) {
			p.Scope = wechat.ScopeUserInfo
		}
		a.toWeChat(w, r, p)
	case i >= 0:
		methods[i].start(w, r, p)
	default:
		// Only an official account, and not inside WeChat.
		a.errorPage(w, r, p.Locale, http.StatusBadRequest, "errOpenInWeChat", a.authorizeURL(p))
	}
}

// showChooser renders the desktop login page: one link per method,
// marked data-login=NAME.
func (a *Authenticator) showChooser(w http.ResponseWriter, r *http.Request, q url.Values, id string, methods []loginMethod) {
	locale := pickLocale(q.Get("ui_locales"), r.Header.Get("Accept-Language"))
	if parts := a.choosers[locale]; parts != nil && plainID(id) {
		writePageHeader(w, http.StatusOK, locale, false)
		n := len(id) * (len(parts) - 1)
		for _, p := range parts {
			n += len(p)
		}
		b := make([]byte, 0, n)
		for i, p := range parts {
			if i > 0 {
				b = append(b, id...)
			}
			b = append(b, p...)
		}
		w.Write(b)
		return
	}
	a.render(w, http.StatusOK, "login", locale, chooserData(a, id, locale, methods))
}

// chooserData is the data of the login page in locale for login state id.
func chooserData(a *Authenticator, id, locale string, methods []loginMethod) map[string]any {
	type choice struct{ Name, Label, Hint, URL string }
	choices := make([]choice, 0, len(methods))
	for _, m := range methods {
		v := url.Values{"login": {id}, "method": {m.name}}
		choices = append(choices, choice{m.name, msg(locale, m.label), msg(locale, m.hint), a.url(PathLogin) + "?" + v.Encode()})
	}
	return map[string]any{"Choices": choices, "L": locale}
}

// chooserMarker stands for the login id in the pre-rendered login pages.
// plainID holds for it, so no escaping changes it.
const chooserMarker = "wxoidc-login-id-0f3c9a7e"

// prerenderChoosers renders the login page of each page language once,
// with chooserMarker for the login id, and cuts it at the marker: the page
// of an id that no escaping changes (plainID; every id the provider hands
// out) is then the parts joined by the id, the same bytes as the template
// writes, without executing it per request. A language whose page does not
// hold the marker exactly once per method is left out (rendered per
// request).
func (a *Authenticator) prerenderChoosers() map[string][][]byte {
	methods := a.loginMethods()
	out := map[string][][]byte{}
	for _, locale := range []string{localeZH, localeEN} {
		var buf bytes.Buffer
		if err := pages.ExecuteTemplate(&buf, "login", chooserData(a, chooserMarker, locale, methods)); err != nil {
			continue
		}
		parts := bytes.Split(buf.Bytes(), []byte(chooserMarker))
		if len(methods) == 0 || len(parts) != len(methods)+1 {
			continue
		}
		out[locale] = parts
	}
	return out
}

// plainID reports whether id is made of characters that neither query
// escaping nor HTML attribute and URL escaping change (RFC 3986's
// unreserved characters).
func plainID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
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

// toWeChatFrom is consume of the login state id (of stepLogin) and
// toWeChat with kind and scope, in one storage step
// (storage.LoginStateStore.AdvanceLoginState): the state for WeChat is the
// consumed one with its step, kind and scope changed (wechatTail). The
// consumed state is checked after that step, as consume checks it; when it
// fails the check, the state stored for WeChat is never handed out, and
// the janitor removes it once it expires.
func (a *Authenticator) toWeChatFrom(w http.ResponseWriter, r *http.Request, id string, kind wechat.AppKind, scope string) {
	if id == "" {
		a.errorPage(w, r, "", http.StatusBadRequest, "errNoState", "")
		return
	}
	tail, err := wechatTail(kind, scope)
	if err != nil {
		a.serverError(w, r, "", "consume login state", err)
		return
	}
	state := randomID(32)
	b, err := a.cfg.Storage.AdvanceLoginState(r.Context(), id, state, tail, a.now().Add(a.cfg.StateLifetime))
	p, msg, err := a.checkConsumed(r, b, err, stepLogin)
	if err != nil {
		a.serverError(w, r, "", "consume login state", err)
		return
	}
	if p == nil {
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	p.Step, p.Kind, p.Scope = stepWeChat, kind, scope
	noStore(w)
	http.Redirect(w, r, a.client(p.Kind).AuthCodeURL(p.Kind, a.url(PathCallback), p.Scope, state), http.StatusFound)
}

// wechatTail is the tail (see AdvanceLoginState) that turns the encoding
// of a pending login into that of its WeChat round trip of kind and scope:
// its last members set step, kind and scope, which decodePending takes
// over the earlier ones.
func wechatTail(kind wechat.AppKind, scope string) ([]byte, error) {
	b, err := json.Marshal(struct {
		Step  string         `json:"step"`
		Kind  wechat.AppKind `json:"kind"`
		Scope string         `json:"scope"`
	}{stepWeChat, kind, scope})
	if err != nil {
		return nil, fmt.Errorf("encode login state: %w", err)
	}
	b[0] = ','
	return b, nil
}

func (a *Authenticator) client(kind wechat.AppKind) *wechat.Client {
	if kind == wechat.KindOfficial {
		return a.official
	}
	return a.website
}
