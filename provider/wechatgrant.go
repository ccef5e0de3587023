package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// wechatGrant is the Mini Program's extension grant (RFC 6749 §4.5, SPEC
// §4): a public client posts the code from wx.login() and gets standard
// tokens. Behind the one call the provider does jscode2session, links the
// WeChat identity to a user, and keeps the session key, encrypted.
type wechatGrant struct {
	p      *Provider
	tokens *tokenIssuer
	sealer *keys.Sealer // seals WeChat session keys at rest
}

var _ fosite.TokenEndpointHandler = (*wechatGrant)(nil)

// CanSkipClientAuth implements fosite.TokenEndpointHandler: the client must
// be identified (a public client does so with client_id alone).
func (g *wechatGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (g *wechatGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(GrantTypeWeChat)
}

// HandleTokenEndpointRequest validates the request, redeems the code at
// WeChat and prepares the session.
func (g *wechatGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	ar.SetID(newRequestID())
	client, ok := ar.GetClient().(*storage.Client)
	if !ok || !client.GetGrantTypes().Has(GrantTypeWeChat) {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not allowed to use the WeChat grant.")
	}
	app, ok := g.p.cfg.WeChatApps[client.WeChatAppID]
	if !client.IsPublic() || !ok || app.Kind != wechat.KindMiniProgram {
		return fosite.ErrUnauthorizedClient.WithHint("The client is not a Mini Program this provider holds the secret of.")
	}
	form := ar.GetRequestForm()
	jsCode := form.Get("js_code")
	if jsCode == "" {
		return fosite.ErrInvalidRequest.WithHint("The 'js_code' parameter (the code from wx.login()) is missing.")
	}
	phoneCode := form.Get("phone_code")
	cfg := g.p.fconf
	for _, s := range ar.GetRequestedScopes() {
		if !cfg.GetScopeStrategy(ctx)(client.GetScopes(), s) {
			return fosite.ErrInvalidScope.WithHintf("The client is not allowed to request scope '%s'.", s)
		}
		ar.GrantScope(s)
	}
	if err := cfg.GetAudienceStrategy(ctx)(client.GetAudience(), ar.GetRequestedAudience()); err != nil {
		return err
	}
	for _, a := range ar.GetRequestedAudience() {
		ar.GrantAudience(a)
	}

	// The js_code first: its openid goes with the phone code, so WeChat
	// redeems the phone code only if it was issued to the very user who
	// signs in. A phone number is bound to the identity of the js_code
	// redeemed in the same request, never to another person's. If WeChat
	// then refuses the phone code, the js_code is spent: the Mini Program
	// calls wx.login() again (the phone code, refused, costs nothing).
	sess, err := app.Client.Code2Session(ctx, jsCode)
	if err != nil {
		return g.p.wechatError("jscode2session", err)
	}
	var phone string
	if phoneCode != "" {
		info, err := app.Client.PhoneNumber(ctx, phoneCode, sess.OpenID)
		if err != nil {
			return g.p.wechatError("getuserphonenumber", err)
		}
		phone = e164(info)
	}
	user, login, err := g.p.users.find(ctx, SignIn{
		AppID: client.WeChatAppID, OpenID: sess.OpenID, UnionID: sess.UnionID, Kind: wechat.KindMiniProgram,
		PhoneNumber: phone, ClientID: client.ID, IP: requestIPFrom(ctx), Method: MethodMiniProgram,
	})
	if err != nil {
		return signInError(err)
	}
	now := login.At
	sealedKey, err := g.sealer.Seal([]byte(sess.SessionKey), sessionKeyAAD(user.Subject, client.WeChatAppID))
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}

	s := newUserSession(g.p.cfg.Issuer, client, user.Subject, now, now, idTokenAlg(client))
	s.Claims.AuthenticationMethodsReferences = []string{"wechat"}
	claims, err := g.p.userClaims(ctx, user, client, ar.GetGrantedScopes(), sess.OpenID)
	if err != nil {
		return err
	}
	s.setUserClaims(claims)
	s.sessionKey = &storage.SessionKey{
		Subject: user.Subject, AppID: client.WeChatAppID, OpenID: sess.OpenID, Ciphertext: sealedKey, UpdatedAt: now,
	}
	s.login = &login
	s.SetExpiresAt(fosite.AccessToken, now.Add(fosite.GetEffectiveLifespan(client, GrantTypeWeChat, fosite.AccessToken, cfg.GetAccessTokenLifespan(ctx))))
	s.SetExpiresAt(fosite.RefreshToken, now.Add(fosite.GetEffectiveLifespan(client, GrantTypeWeChat, fosite.RefreshToken, cfg.GetRefreshTokenLifespan(ctx))))
	ar.SetSession(s)
	return nil
}

// PopulateTokenEndpointResponse issues the access token, the refresh token
// when offline_access was granted, and the ID token when openid was.
func (g *wechatGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	// The new session key (replacing the previous one for this user and
	// app) and the login (last-login times, the login event) commit
	// together with the tokens: one write transaction a login, and no
	// token for a user disabled meanwhile.
	sess := ar.GetSession().(*Session)
	var loginEvent storage.Event
	err := g.tokens.issue(ctx, ar, resp, GrantTypeWeChat, func(ctx context.Context) error {
		if k := sess.sessionKey; k != nil {
			if err := g.p.cfg.Storage.PutSessionKey(ctx, *k); err != nil {
				return err
			}
		}
		if l := sess.login; l != nil {
			loginEvent = loginEventOf(l)
			return g.p.cfg.Storage.RecordLogin(ctx, *l)
		}
		return nil
	})
	if err == nil && sess.login != nil {
		g.p.users.audit().logged(ctx, loginEvent)
	}
	return err
}

// wechatError maps a failed WeChat call to the token endpoint's answer
// (SPEC §4). The errcode reaches error_description and the log; errmsg,
// which carries WeChat's request id, only the log. It does not log: the
// answer carries a *wechatFailure that logError logs once, at its level.
func (p *Provider) wechatError(api string, err error) error {
	var ae *wechat.APIError
	code := 0
	if errors.As(err, &ae) {
		code = ae.Code
	}
	f := &wechatFailure{api: api, code: code, err: err, level: slog.LevelError, msg: "wechat call failed"}
	switch wechat.ClassOf(err) {
	case wechat.ClassInvalidCode:
		f.level, f.msg = slog.LevelInfo, "wechat rejected a code"
		return fosite.ErrInvalidGrant.WithWrap(f).WithHintf("WeChat rejected the code (%s errcode %d).", api, code)
	case wechat.ClassRetryLater, wechat.ClassUnavailable, wechat.ClassStaleToken:
		f.level, f.msg = slog.LevelWarn, "wechat unavailable"
		if code != 0 {
			return fosite.ErrTemporarilyUnavailable.WithWrap(f).WithHintf("WeChat is busy or rate-limited (%s errcode %d); retry later.", api, code)
		}
		return fosite.ErrTemporarilyUnavailable.WithWrap(f).WithHintf("WeChat did not answer (%s); retry later.", api)
	case wechat.ClassMisconfigured:
		f.msg = "wechat refused the provider's credentials: an operator must fix the app configuration"
		return fosite.ErrServerError.WithWrap(f).WithHintf("The provider's WeChat configuration was refused (%s errcode %d).", api, code)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		f.level, f.msg = slog.LevelWarn, "wechat did not answer in time"
		return fosite.ErrTemporarilyUnavailable.WithWrap(f).WithHintf("WeChat did not answer in time (%s).", api)
	}
	if errors.Is(err, wechat.ErrWatermarkMismatch) {
		f.level, f.msg = slog.LevelInfo, "phone code of another app"
		return fosite.ErrInvalidGrant.WithWrap(f).WithHint("The phone_code belongs to another app.")
	}
	if code != 0 {
		return fosite.ErrInvalidGrant.WithWrap(f).WithHintf("WeChat refused the request (%s errcode %d).", api, code)
	}
	return fosite.ErrServerError.WithWrap(f).WithDebug(err.Error())
}

// wechatFailure is a failed WeChat call as the provider answers it: the API,
// WeChat's errcode (0 for none) and how loud its one log line is. A person's
// bad or reused code is INFO, WeChat being down WARN, and only what an
// operator must fix ERROR.
type wechatFailure struct {
	api   string
	code  int
	level slog.Level
	msg   string
	err   error
}

func (f *wechatFailure) Error() string { return f.err.Error() }
func (f *wechatFailure) Unwrap() error { return f.err }

// retryAfter is the Retry-After (seconds) of a temporarily_unavailable
// answer: a minute for WeChat's per-minute quota, a few seconds otherwise.
func retryAfter(err error) string {
	var ae *wechat.APIError
	if errors.As(err, &ae) && (ae.Code == wechat.CodeMinuteQuota || ae.Code == wechat.CodeDailyQuota) {
		return "60"
	}
	return "5"
}

// sessionKeyAAD binds a sealed session key to its user and app.
func sessionKeyAAD(subject, appID string) []byte { return []byte(subject + "\x00" + appID) }

// e164 formats WeChat's phone info as E.164 (+8613800138000).
func e164(info *wechat.PhoneInfo) string {
	if info.CountryCode != "" && info.PurePhoneNumber != "" {
		return "+" + info.CountryCode + info.PurePhoneNumber
	}
	if len(info.PhoneNumber) > 0 && info.PhoneNumber[0] == '+' {
		return info.PhoneNumber
	}
	return "+86" + info.PhoneNumber
}

// The token endpoint's answers to a refused sign-in (SPEC §10). RFC 6749
// lets an extension grant define error codes; phone_required is ours.
var (
	errPhoneRequired = &fosite.RFC6749Error{
		ErrorField:       "phone_required",
		DescriptionField: "Registration is closed and this WeChat user has no account yet: sign in again with phone_code (the code from the getPhoneNumber button) so that the account can be found by its phone number.",
		CodeField:        http.StatusBadRequest,
	}
	errNoAccount = &fosite.RFC6749Error{
		ErrorField:       fosite.ErrAccessDenied.ErrorField,
		DescriptionField: "Registration is closed and no account matches this WeChat user or phone number. Ask the operator to create your account.",
		CodeField:        http.StatusBadRequest,
	}
	errDisabled = &fosite.RFC6749Error{
		ErrorField:       fosite.ErrInvalidGrant.ErrorField,
		DescriptionField: "The account is disabled.",
		CodeField:        http.StatusBadRequest,
	}
)

// signInError maps an error of Users.SignIn to the token endpoint's
// answer.
func signInError(err error) error {
	switch {
	case errors.Is(err, ErrPhoneRequired):
		return errPhoneRequired
	case errors.Is(err, ErrNoAccount):
		return errNoAccount
	case errors.Is(err, ErrUserDisabled), errors.Is(err, storage.ErrUserDisabled):
		return errDisabled.WithWrap(err)
	}
	return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
}
