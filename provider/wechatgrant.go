package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"time"

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

	// The phone code first: if WeChat refuses it, the single-use js_code
	// has not been spent and the Mini Program can retry the login.
	var phone string
	if phoneCode != "" {
		info, err := app.Client.PhoneNumber(ctx, phoneCode)
		if err != nil {
			return g.p.wechatError("getuserphonenumber", err)
		}
		phone = e164(info)
	}
	sess, err := app.Client.Code2Session(ctx, jsCode)
	if err != nil {
		return g.p.wechatError("jscode2session", err)
	}
	now := time.Now().UTC()
	user, _, err := g.p.cfg.Storage.LinkIdentity(ctx, storage.LinkRequest{
		AppID: client.WeChatAppID, OpenID: sess.OpenID, UnionID: sess.UnionID,
		NewSubject: newSubject(), Now: now,
	})
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	sealedKey, err := g.sealer.Seal([]byte(sess.SessionKey), sessionKeyAAD(user.Subject, client.WeChatAppID))
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	if phone != "" && phone != user.PhoneNumber {
		err := g.p.cfg.Storage.UpdateUser(ctx, user.Subject, func(u storage.User) (storage.User, error) {
			u.PhoneNumber = phone
			u.UpdatedAt = now
			return u, nil
		})
		if err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
		user.PhoneNumber = phone
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
	// app) commits together with the tokens: one write transaction a login.
	return g.tokens.issue(ctx, ar, resp, GrantTypeWeChat, func(ctx context.Context) error {
		if k := ar.GetSession().(*Session).sessionKey; k != nil {
			return g.p.cfg.Storage.PutSessionKey(ctx, *k)
		}
		return nil
	})
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

// newSubject returns a fresh opaque subject: 128 random bits.
func newSubject() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

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
