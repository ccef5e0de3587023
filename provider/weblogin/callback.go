package weblogin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// headOnly answers a HEAD request to a page that would spend a single-use
// login state, without touching the state, and reports whether it did.
func headOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodHead {
		return false
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	return true
}

// handleCallback serves GET /login/wechat/callback?code&state: WeChat's
// redirect after the person confirmed (or, with no code, refused).
func (a *Authenticator) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if headOnly(w, r) {
		return
	}
	q := r.URL.Query()
	p, msg, err := a.consume(ctx, r, q.Get("state"), stepWeChat)
	if err != nil {
		a.serverError(w, r, "", "consume login state", err)
		return
	}
	if p == nil {
		a.log.InfoContext(ctx, "wechat callback refused", "reason", msg)
		a.errorPage(w, r, "", http.StatusBadRequest, msg, "")
		return
	}
	code := q.Get("code")
	if code == "" {
		// WeChat sends the browser back without a code when the person
		// refuses: RFC 6749 §4.1.2.1 access_denied to the client.
		a.log.InfoContext(ctx, "wechat login refused", "client_id", p.ClientID, "kind", string(p.Kind))
		a.denyToClient(w, r, p, fosite.ErrAccessDenied.WithHint("The person declined to sign in with WeChat."))
		return
	}
	app := a.client(p.Kind)
	tok, err := app.Exchange(ctx, code)
	if err != nil {
		a.logWeChat(ctx, "oauth2_access_token", app.AppID, err)
		a.errorPage(w, r, p.Locale, http.StatusBadGateway, "errWeChat", a.authorizeURL(p))
		return
	}
	if tok.Snapshot() {
		// Virtual ids: never link or create a user from them.
		a.log.InfoContext(ctx, "wechat snapshot-mode user refused", "appid", app.AppID)
		a.errorPage(w, r, p.Locale, http.StatusForbidden, "errSnapshot", a.authorizeURL(p))
		return
	}
	// The browser session commits with the login (one write).
	var bs storage.BrowserSession
	subject, err := a.subjectOf(ctx, r, app, p, tok, func(ctx context.Context, user storage.User) (err error) {
		bs, err = a.replaceSession(ctx, r, user.Subject, []string{amrWeChat})
		return err
	})
	switch {
	case errors.Is(err, provider.ErrUserDisabled):
		a.refusePage(w, r, p, "errDisabled", fosite.ErrAccessDenied.WithHint("The account is disabled."))
		return
	case errors.Is(err, provider.ErrNoAccount), errors.Is(err, provider.ErrPhoneRequired):
		a.refusePage(w, r, p, "errNoAccount", fosite.ErrAccessDenied.WithHint("Registration is closed and no account matches this WeChat user."))
		return
	case err != nil:
		a.serverError(w, r, p.Locale, "link wechat identity", err)
		return
	}
	if subject == "" {
		// snsapi_base found nobody: go round again with snsapi_userinfo,
		// which brings the unionid.
		p.Scope = wechat.ScopeUserInfo
		a.toWeChat(w, r, p)
		return
	}
	a.setSessionCookie(w, bs)
	noStore(w)
	http.Redirect(w, r, a.authorizeURL(p), http.StatusSeeOther)
}

// subjectOf signs the WeChat user of tok in (provider.Users.SignInWith,
// running also in the login's transaction) and returns their subject. A
// snsapi_base token only finds an identity that is linked already: for an
// unknown one it returns "" (and no error, and also does not run), to go
// round again with snsapi_userinfo, which brings the unionid.
func (a *Authenticator) subjectOf(ctx context.Context, r *http.Request, app *wechat.Client, p *pending, tok *wechat.OAuthToken, also func(ctx context.Context, user storage.User) error) (string, error) {
	in := provider.SignIn{
		AppID: app.AppID, OpenID: tok.OpenID, UnionID: tok.UnionID, Kind: p.Kind,
		ClientID: p.ClientID, IP: provider.RequestIP(r), Method: provider.MethodQR,
	}
	if p.Kind == wechat.KindOfficial {
		in.Method = provider.MethodOAuth
	}
	if p.Kind == wechat.KindOfficial && p.Scope == wechat.ScopeBase {
		_, err := a.cfg.Storage.Identity(ctx, app.AppID, tok.OpenID)
		if errors.Is(err, storage.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
	} else {
		// website login and snsapi_userinfo allow /sns/userinfo.
		ui, err := app.UserInfo(ctx, tok)
		if err != nil {
			a.logWeChat(ctx, "userinfo", app.AppID, err)
		} else if ui.OpenID == tok.OpenID {
			in.Name, in.Picture = ui.Nickname, ui.HeadImgURL
			if in.UnionID == "" {
				in.UnionID = ui.UnionID
			}
		}
	}
	user, err := a.cfg.Users.SignInWith(ctx, in, also)
	if err != nil {
		return "", err
	}
	return user.Subject, nil
}

// logWeChat logs a failed WeChat call once, with the API and errcode, at
// a level that says who must act: INFO for a person's bad or reused code,
// WARN for WeChat being busy or down, ERROR for the app's configuration and
// anything unexpected.
func (a *Authenticator) logWeChat(ctx context.Context, api, appID string, err error) {
	level, msg := slog.LevelError, "wechat call failed"
	switch class := wechat.ClassOf(err); class {
	case wechat.ClassInvalidCode:
		level, msg = slog.LevelInfo, "wechat rejected a code"
	case wechat.ClassRetryLater, wechat.ClassUnavailable, wechat.ClassStaleToken:
		level, msg = slog.LevelWarn, "wechat unavailable"
	case wechat.ClassMisconfigured:
		msg = "wechat refused the provider's credentials: an operator must fix the app configuration"
	}
	a.log.Log(ctx, level, msg, "wechat_api", api, "appid", appID, "wechat_errcode", errcode(err), "class", wechat.ClassOf(err).String())
}

func errcode(err error) int {
	var ae *wechat.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}
