package weblogin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ory/fosite"

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
	subject, err := a.subjectOf(ctx, app, p, tok)
	if err != nil {
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
	if err := a.startSession(ctx, w, r, subject); err != nil {
		a.serverError(w, r, p.Locale, "start login session", err)
		return
	}
	noStore(w)
	http.Redirect(w, r, a.authorizeURL(p), http.StatusSeeOther)
}

// subjectOf maps the WeChat user of tok to a provider subject. For a
// snsapi_base token it only looks the openid up and returns "" when it is
// not linked; otherwise it links by unionid (SPEC §5), creating the user if
// needed.
func (a *Authenticator) subjectOf(ctx context.Context, app *wechat.Client, p *pending, tok *wechat.OAuthToken) (string, error) {
	if p.Kind == wechat.KindOfficial && p.Scope == wechat.ScopeBase {
		id, err := a.cfg.Storage.Identity(ctx, app.AppID, tok.OpenID)
		if errors.Is(err, storage.ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return id.Subject, nil
	}
	req := storage.LinkRequest{
		AppID: app.AppID, OpenID: tok.OpenID, UnionID: tok.UnionID,
		NewSubject: randomID(16), Now: a.now().UTC(),
	}
	// website login and snsapi_userinfo allow /sns/userinfo.
	ui, err := app.UserInfo(ctx, tok)
	if err != nil {
		a.logWeChat(ctx, "userinfo", app.AppID, err)
	} else if ui.OpenID == tok.OpenID {
		req.Name, req.Picture = ui.Nickname, ui.HeadImgURL
		if req.UnionID == "" {
			req.UnionID = ui.UnionID
		}
	}
	user, created, err := a.cfg.Storage.LinkIdentity(ctx, req)
	if err != nil {
		return "", err
	}
	if created {
		a.log.InfoContext(ctx, "user created from wechat login", "appid", app.AppID, "subject", user.Subject)
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
