package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// wechatCaller is the Mini Program user behind a bearer access token.
type wechatCaller struct {
	subject  string
	app      WeChatApp
	appID    string
	clientID string
}

// bearerWeChatCaller authenticates a request to the /wechat/ endpoints: a
// bearer access token (RFC 6750) issued to a Mini Program client and
// granted scope ("" asks for none). On failure it has written the response.
func (p *Provider) bearerWeChatCaller(w http.ResponseWriter, r *http.Request, scope string) (*wechatCaller, bool) {
	if err := parseForm(w, r); err != nil {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", standardError(err).GetDescription())
		return nil, false
	}
	token, bad := bearerToken(r)
	if bad != "" {
		p.bearerError(w, http.StatusBadRequest, "invalid_request", bad)
		return nil, false
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", p.bearerChallenge("", "", ""))
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "The request carries no access token."})
		return nil, false
	}
	tu, ar, err := p.oauth2.IntrospectToken(r.Context(), token, fosite.AccessToken, newSession())
	if err != nil || tu != fosite.AccessToken {
		p.bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid, expired or revoked.")
		return nil, false
	}
	client, _ := ar.GetClient().(*storage.Client)
	app, ok := WeChatApp{}, false
	if client != nil {
		app, ok = p.cfg.WeChatApps[client.WeChatAppID]
	}
	if !ok || app.Kind != wechat.KindMiniProgram {
		p.bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token was not issued to a Mini Program client.")
		return nil, false
	}
	if scope != "" && !ar.GetGrantedScopes().Has(scope) {
		p.insufficientScope(w, scope, fmt.Sprintf("The access token was not granted the %s scope.", scope))
		return nil, false
	}
	return &wechatCaller{subject: ar.GetSession().GetSubject(), app: app, appID: client.WeChatAppID, clientID: client.ID}, true
}

// handleWeChatPhone binds a phone number later: POST /wechat/phone with a
// phone_code from the getPhoneNumber button (SPEC §3). The token must have
// been granted the phone scope: binding a number is releasing it.
func (p *Provider) handleWeChatPhone(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, ok := p.bearerWeChatCaller(w, r, ScopePhone)
	if !ok {
		return
	}
	code := r.PostForm.Get("phone_code")
	if code == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "The 'phone_code' parameter is missing."})
		return
	}
	// The number goes to the caller only if WeChat issued the code to the
	// caller's openid in this Mini Program.
	openID, err := p.callerOpenID(ctx, c)
	if errors.Is(err, storage.ErrNotFound) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "This user has no WeChat identity in this Mini Program any more: log in with wx.login() first."})
		return
	}
	if err != nil {
		p.logError(ctx, r, fosite.ErrServerError.WithWrap(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	info, err := c.app.Client.PhoneNumber(ctx, code, openID)
	if err != nil {
		p.writeWeChatAPIError(w, r, "getuserphonenumber", err)
		return
	}
	phone := e164(info)
	err = p.audit.RecordWith(ctx, func(ctx context.Context) error {
		return p.cfg.Storage.UpdateUser(ctx, c.subject, func(u storage.User) (storage.User, error) {
			u.PhoneNumber, u.PhoneNumberVerified = phone, true
			u.UpdatedAt = p.cfg.Now().UTC()
			return u, nil
		})
	}, storage.Event{Type: storage.EventPhoneBound, Subject: c.subject, ClientID: c.clientID, IP: clientIP(r), Details: map[string]any{"appid": c.appID}})
	if err != nil {
		p.logError(ctx, r, fosite.ErrServerError.WithWrap(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"phone_number": phone, "phone_number_verified": true})
}

// callerOpenID returns the openid of c's user in c's Mini Program, or
// storage.ErrNotFound when the identity was unlinked.
func (p *Provider) callerOpenID(ctx context.Context, c *wechatCaller) (string, error) {
	ids, err := p.cfg.Storage.Identities(ctx, c.subject)
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id.AppID == c.appID {
			return id.OpenID, nil
		}
	}
	return "", fmt.Errorf("openid of %q in %s: %w", c.subject, c.appID, storage.ErrNotFound)
}

// handleWeChatDecrypt decrypts legacy encryptedData + iv with the caller's
// current session key for the token's Mini Program (SPEC §3). The token
// must have been granted the wechat scope.
func (p *Provider) handleWeChatDecrypt(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, ok := p.bearerWeChatCaller(w, r, ScopeWeChat)
	if !ok {
		return
	}
	data, iv := r.PostForm.Get("encrypted_data"), r.PostForm.Get("iv")
	if data == "" || iv == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "The 'encrypted_data' and 'iv' parameters are required."})
		return
	}
	rec, err := p.cfg.Storage.SessionKey(ctx, c.subject, c.appID)
	if errors.Is(err, storage.ErrNotFound) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "No WeChat session key is known for this user: log in with wx.login() first."})
		return
	}
	if err != nil {
		p.logError(ctx, r, fosite.ErrServerError.WithWrap(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	key, err := p.sessionKeys.Open(rec.Ciphertext, sessionKeyAAD(c.subject, c.appID))
	if err != nil {
		p.logError(ctx, r, fosite.ErrServerError.WithWrap(err))
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	plain, err := wechat.DecryptData(string(key), data, iv, c.appID)
	switch {
	case errors.Is(err, wechat.ErrSessionKeyMismatch):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "The data was not encrypted with the current session key (it has rotated): call wx.login() again, exchange the new code, then retry."})
		return
	case errors.Is(err, wechat.ErrWatermarkMismatch):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "The data's watermark names another app."})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "encrypted_data or iv is malformed (base64 of the right length expected)."})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	w.Write(json.RawMessage(plain))
}

// writeWeChatAPIError answers a resource request whose WeChat call failed.
func (p *Provider) writeWeChatAPIError(w http.ResponseWriter, r *http.Request, api string, err error) {
	rfc := standardError(p.wechatError(api, err))
	p.logError(r.Context(), r, rfc)
	if rfc.ErrorField == fosite.ErrInvalidGrant.ErrorField {
		rfc = remap(rfc, fosite.ErrInvalidRequest)
	}
	if rfc.ErrorField == fosite.ErrTemporarilyUnavailable.ErrorField {
		w.Header().Set("Retry-After", retryAfter(rfc))
	}
	writeJSON(w, rfc.CodeField, map[string]string{"error": rfc.ErrorField, "error_description": rfc.GetDescription()})
}
