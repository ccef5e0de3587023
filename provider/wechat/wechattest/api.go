package wechattest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

const (
	ctypeJSON  = "application/json; encoding=utf-8"
	ctypePlain = "text/plain"
)

// errmsgs are the errmsg prefixes WeChat uses.
var errmsgs = map[int]string{
	wechat.CodeBusy:                "system error",
	wechat.CodeInvalidCredential:   "invalid credential, access_token is invalid or not latest",
	wechat.CodeInvalidGrantType:    "invalid grant_type",
	wechat.CodeInvalidOpenID:       "invalid openid",
	wechat.CodeInvalidAppID:        "invalid appid",
	wechat.CodeInvalidAccessToken:  "invalid access_token",
	wechat.CodeInvalidCode:         "invalid code",
	wechat.CodeInvalidRefreshToken: "invalid refresh_token",
	wechat.CodeInvalidAppSecret:    "invalid appsecret",
	wechat.CodeInvalidActionName:   "invalid action name",
	wechat.CodeInvalidActionInfo:   "invalid action info",
	wechat.CodeCodeUsed:            "code been used",
	wechat.CodeIPNotAllowed:        "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist",
	wechat.CodeCodeBlocked:         "code blocked",
	wechat.CodeAppSecretFrozen:     "appsecret frozen",
	wechat.CodeAccessTokenMissing:  "access_token missing",
	wechat.CodeAppIDMissing:        "appid missing",
	wechat.CodeAppSecretMissing:    "appsecret missing",
	wechat.CodeCodeMissing:         "missing code",
	wechat.CodeAccessTokenExpired:  "access_token expired",
	wechat.CodeRefreshTokenExpired: "refresh_token expired",
	wechat.CodeCodeExpired:         "code expired",
	wechat.CodeRequirePOST:         "require POST method",
	wechat.CodeDailyQuota:          "reach max api daily quota limit",
	wechat.CodeMinuteQuota:         "api minute-quota reach limit mustslower retry next minute",
	wechat.CodeDataFormat:          "data format error",
	wechat.CodeUnauthorized:        "api unauthorized",
	wechat.CodeInvalidSigMethod:    "invalid sig_method",
	wechat.CodeInvalidSignature:    "invalid signature",
	codeInvalidScene:               "invalid scene",
	codeInvalidSceneLength:         "invalid length for scene, or the data is not json string",
	codeInvalidPage:                "invalid page",
	codeInvalidArgs:                "invalid args",
}

func (s *Server) routes() {
	m := http.NewServeMux()
	api := func(path, ctype string, h func(w http.ResponseWriter, r *http.Request, path string) int) {
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s.count(path)
			if code, ok := s.applyFaults(r, path); ok {
				s.writeError(w, ctype, code)
				return
			}
			if code := h(w, r, path); code != 0 {
				s.writeError(w, ctype, code)
			}
		})
	}
	api(wechat.PathJSCode2Session, ctypePlain, s.jscode2session)
	api(wechat.PathToken, ctypeJSON, s.classicToken)
	api(wechat.PathStableToken, ctypeJSON, s.stableToken)
	api(wechat.PathPhoneNumber, ctypeJSON, s.phoneNumber)
	api(wechat.PathCheckSession, ctypeJSON, s.checkSession)
	api(wechat.PathResetSessionKey, ctypeJSON, s.resetSessionKey)
	api(wechat.PathWXACodeUnlimit, ctypeJSON, s.wxaCodeUnlimit)
	api(wechat.PathOAuthAccessToken, ctypePlain, s.oauthAccessToken)
	api(wechat.PathOAuthRefreshToken, ctypePlain, s.oauthRefreshToken)
	api(wechat.PathUserInfo, ctypePlain, s.userInfo)
	api(wechat.PathOAuthAuth, ctypePlain, s.snsAuth)
	api(wechat.PathQRCodeCreate, ctypeJSON, s.qrcodeCreate)
	api(wechat.PathFollowerInfo, ctypeJSON, s.followerInfo)

	page := func(path string, h http.HandlerFunc) {
		m.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			s.count(path)
			h(w, r)
		})
	}
	page(wechat.PathQRConnect, s.qrconnect)
	page(wechat.PathOAuth2Authorize, s.oauth2Authorize)
	page("/sim/login", s.simLogin)
	page("/sim/phone-code", s.simPhoneCode)
	page("/sim/faults", s.simFaults)
	page("/sim/stats", s.simStats)
	page("/sim/auto-confirm", s.simAutoConfirm)
	page("/sim/wxacodes", s.simWXACodes)
	page("/sim/{$}", s.simIndex)
	page(wechat.PathShowQRCode, s.showQRCode)
	page("/sim/oa-scan", s.simOAScan)
	page("/sim/oaqrcodes", s.simOAQRCodes)
	s.mux = m
}

func (s *Server) count(path string) {
	s.mu.Lock()
	s.calls[path]++
	s.mu.Unlock()
}

// rid returns a request id shaped like WeChat's: hex seconds, then random.
func (s *Server) rid() string {
	b := make([]byte, 8)
	rand.Read(b)
	return fmt.Sprintf("%08x-%s-%s", uint32(s.now().Unix()), hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:]))
}

func (s *Server) writeError(w http.ResponseWriter, ctype string, code int) {
	msg, ok := errmsgs[code]
	if !ok {
		msg = "error"
	}
	s.writeJSON(w, ctype, wechat.Status{ErrCode: code, ErrMsg: msg + " rid: " + s.rid()})
}

func (s *Server) writeJSON(w http.ResponseWriter, ctype string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (s *Server) secretOK(path string, app App, secret string) bool {
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	if f.WrongSecret && (f.Path == "" || f.Path == path) {
		return false
	}
	return secret == app.Secret
}

// jscode2session: GET /sns/jscode2session?appid&secret&js_code&grant_type.
func (s *Server) jscode2session(w http.ResponseWriter, r *http.Request, path string) int {
	q := r.URL.Query()
	appID, secret, jsCode := q.Get("appid"), q.Get("secret"), q.Get("js_code")
	switch {
	case appID == "":
		return wechat.CodeAppIDMissing
	case secret == "":
		return wechat.CodeAppSecretMissing
	case jsCode == "":
		return wechat.CodeCodeMissing
	}
	app, ok := s.apps[appID]
	if !ok {
		return wechat.CodeInvalidAppID
	}
	if !s.secretOK(path, app, secret) {
		return wechat.CodeInvalidAppSecret
	}
	if q.Get("grant_type") != "authorization_code" {
		return wechat.CodeInvalidGrantType
	}
	s.mu.Lock()
	c, errc := s.takeCodeLocked(jsCode, appID, wechat.CodeInvalidCode, wechat.CodeCodeUsed, codeLogin)
	if errc != 0 {
		s.mu.Unlock()
		return errc
	}
	sess := wechat.Session{
		OpenID:     s.openIDLocked(appID, c.user),
		SessionKey: s.sessionKeyLocked(appID, c.user),
		UnionID:    s.UnionID(appID, c.user),
	}
	s.mu.Unlock()
	s.writeJSON(w, ctypePlain, sess)
	return 0
}

// takeCodeLocked checks and spends a code.
func (s *Server) takeCodeLocked(v, appID string, expiredCode, usedCode int, kinds ...codeKind) (*code, int) {
	c, ok := s.codes[v]
	if !ok || c.appID != appID {
		return nil, wechat.CodeInvalidCode
	}
	kindOK := false
	for _, k := range kinds {
		kindOK = kindOK || c.kind == k
	}
	if !kindOK {
		return nil, wechat.CodeInvalidCode
	}
	if c.used {
		return nil, usedCode
	}
	if !s.now().Before(c.expires) {
		return nil, expiredCode
	}
	c.used = true
	return c, 0
}

func looksLikeServerToken(t string) bool {
	if len(t) < 32 || len(t) > 512 {
		return false
	}
	for _, r := range t {
		if !strings.ContainsRune(alnum+"_-", r) {
			return false
		}
	}
	return true
}

func (s *Server) mintServerTokenLocked(appID string, stable bool) *tokenSpace {
	key := tokenRef{appID: appID, stable: stable}
	sp := s.spaces[key]
	if sp == nil {
		sp = &tokenSpace{}
		s.spaces[key] = sp
	}
	now := s.now()
	if sp.cur != "" {
		sp.prev, sp.prevExpires = sp.cur, sp.curExpires
		sp.prevUntil = now.Add(TokenOverlap)
		if sp.prevUntil.After(sp.prevExpires) {
			sp.prevUntil = sp.prevExpires
		}
	}
	prefix := "86_"
	if stable {
		prefix = "87_"
	}
	sp.cur = prefix + randomString(120)
	sp.curExpires = now.Add(ServerTokenTTL)
	s.serverTokens[sp.cur] = tokenRef{appID: appID, stable: stable, expires: sp.curExpires}
	s.pruneLocked()
	return sp
}

// checkServerTokenLocked returns the app of a server token, or an errcode.
func (s *Server) checkServerTokenLocked(t string) (string, int) {
	if t == "" {
		return "", wechat.CodeAccessTokenMissing
	}
	ref, ok := s.serverTokens[t]
	if !ok {
		if looksLikeServerToken(t) {
			return "", wechat.CodeInvalidCredential
		}
		return "", wechat.CodeInvalidAccessToken
	}
	now := s.now()
	if !now.Before(ref.expires) {
		return "", wechat.CodeAccessTokenExpired
	}
	sp := s.spaces[tokenRef{appID: ref.appID, stable: ref.stable}]
	switch {
	case t == sp.cur:
		return ref.appID, 0
	case t == sp.prev && now.Before(sp.prevUntil):
		return ref.appID, 0
	}
	return "", wechat.CodeInvalidCredential
}

func (s *Server) tokenCredentials(path, appID, secret, grantType string, wrongSecret int) int {
	switch {
	case grantType != "client_credential":
		return wechat.CodeInvalidGrantType
	case appID == "":
		return wechat.CodeAppIDMissing
	case secret == "":
		return wechat.CodeAppSecretMissing
	}
	app, ok := s.apps[appID]
	if !ok {
		return wechat.CodeInvalidAppID
	}
	if !s.secretOK(path, app, secret) {
		return wrongSecret
	}
	return 0
}

// classicToken: GET /cgi-bin/token. Every call mints a new token; the
// previous one keeps working for 5 minutes.
func (s *Server) classicToken(w http.ResponseWriter, r *http.Request, path string) int {
	q := r.URL.Query()
	appID := q.Get("appid")
	// A wrong secret on the classic endpoint answers 40001, as WeChat's does.
	if c := s.tokenCredentials(path, appID, q.Get("secret"), q.Get("grant_type"), wechat.CodeInvalidCredential); c != 0 {
		return c
	}
	s.mu.Lock()
	sp := s.mintServerTokenLocked(appID, false)
	resp := wechat.TokenResponse{AccessToken: sp.cur, ExpiresIn: int64(ServerTokenTTL / time.Second)}
	s.mu.Unlock()
	s.writeJSON(w, ctypeJSON, resp)
	return 0
}

// stableToken: POST /cgi-bin/stable_token with a JSON body. Normal mode
// returns the current token with its remaining life, rotating when 5
// minutes or less remain; force_refresh rotates (at most every 30 s, 20 a
// day).
func (s *Server) stableToken(w http.ResponseWriter, r *http.Request, path string) int {
	if r.Method != http.MethodPost {
		return wechat.CodeRequirePOST
	}
	var req wechat.StableTokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return wechat.CodeDataFormat
	}
	if c := s.tokenCredentials(path, req.AppID, req.Secret, req.GrantType, wechat.CodeInvalidAppSecret); c != 0 {
		return c
	}
	s.mu.Lock()
	now := s.now()
	key := tokenRef{appID: req.AppID, stable: true}
	sp := s.spaces[key]
	switch {
	case sp == nil || sp.curExpires.Sub(now) <= TokenOverlap:
		sp = s.mintServerTokenLocked(req.AppID, true)
	case req.ForceRefresh:
		day := now.Format(time.DateOnly)
		if sp.forceDay != day {
			sp.forceDay, sp.forceCount = day, 0
		}
		if sp.forceCount >= 20 {
			s.mu.Unlock()
			return wechat.CodeDailyQuota
		}
		if now.Sub(sp.lastForce) >= 30*time.Second {
			sp.forceCount++
			sp.lastForce = now
			sp = s.mintServerTokenLocked(req.AppID, true)
		}
	}
	resp := wechat.TokenResponse{AccessToken: sp.cur, ExpiresIn: int64(sp.curExpires.Sub(now) / time.Second)}
	s.mu.Unlock()
	s.writeJSON(w, ctypeJSON, resp)
	return 0
}

// phoneNumber: POST /wxa/business/getuserphonenumber?access_token= with
// {"code"} and optionally {"openid"}. A reused phone code answers 40029, as
// the API documents. With an openid, a code issued to another user of the
// app answers 40029 too and stays unused: WeChat checks the binding but
// does not document its errcode (wechat-api.md §15.5), and 40029 is what
// it answers for a code that is not the caller's to redeem.
func (s *Server) phoneNumber(w http.ResponseWriter, r *http.Request, path string) int {
	if r.Method != http.MethodPost {
		return wechat.CodeRequirePOST
	}
	s.mu.Lock()
	appID, errc := s.checkServerTokenLocked(r.URL.Query().Get("access_token"))
	s.mu.Unlock()
	if errc != 0 {
		return errc
	}
	var req wechat.PhoneRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return wechat.CodeDataFormat
	}
	if req.Code == "" {
		return wechat.CodeCodeMissing
	}
	s.mu.Lock()
	if c, ok := s.codes[req.Code]; ok && req.OpenID != "" && c.kind == codePhone && c.appID == appID && s.openIDLocked(appID, c.user) != req.OpenID {
		s.mu.Unlock()
		return wechat.CodeInvalidCode
	}
	c, errc := s.takeCodeLocked(req.Code, appID, wechat.CodeInvalidCode, wechat.CodeInvalidCode, codePhone)
	s.mu.Unlock()
	if errc != 0 {
		return errc
	}
	number := c.phone
	if c.cc != "86" {
		number = "+" + c.cc + " " + c.phone
	}
	s.writeJSON(w, ctypeJSON, wechat.PhoneResponse{
		ErrCode: 0,
		ErrMsg:  "ok",
		PhoneInfo: &wechat.PhoneInfo{
			PhoneNumber:     number,
			PurePhoneNumber: c.phone,
			CountryCode:     c.cc,
			Watermark:       wechat.Watermark{Timestamp: s.now().Unix(), AppID: appID},
		},
	})
	return 0
}

// sessionCheck validates checksession/resetusersessionkey parameters.
func (s *Server) sessionCheckLocked(r *http.Request) (identity, int) {
	q := r.URL.Query()
	appID, errc := s.checkServerTokenLocked(q.Get("access_token"))
	if errc != 0 {
		return identity{}, errc
	}
	id, ok := s.byOpenID[q.Get("openid")]
	if !ok || id.appID != appID {
		return identity{}, wechat.CodeInvalidOpenID
	}
	if q.Get("sig_method") != "hmac_sha256" {
		return identity{}, wechat.CodeInvalidSigMethod
	}
	want := wechat.SessionSignature(s.sessionKeyLocked(id.appID, id.user), "")
	if !strings.EqualFold(q.Get("signature"), want) {
		return identity{}, wechat.CodeInvalidSignature
	}
	return id, 0
}

// checkSession: GET /wxa/checksession.
func (s *Server) checkSession(w http.ResponseWriter, r *http.Request, path string) int {
	s.mu.Lock()
	_, errc := s.sessionCheckLocked(r)
	s.mu.Unlock()
	if errc != 0 {
		return errc
	}
	s.writeJSON(w, ctypeJSON, wechat.Status{ErrCode: 0, ErrMsg: "ok"})
	return 0
}

// resetSessionKey: GET /wxa/resetusersessionkey.
func (s *Server) resetSessionKey(w http.ResponseWriter, r *http.Request, path string) int {
	s.mu.Lock()
	id, errc := s.sessionCheckLocked(r)
	if errc != 0 {
		s.mu.Unlock()
		return errc
	}
	s.sessionGen[id]++
	resp := struct {
		wechat.Status
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}{wechat.Status{ErrCode: 0, ErrMsg: "ok"}, r.URL.Query().Get("openid"), s.sessionKeyLocked(id.appID, id.user)}
	s.mu.Unlock()
	s.writeJSON(w, ctypeJSON, resp)
	return 0
}

// oauthAccessToken: GET /sns/oauth2/access_token.
func (s *Server) oauthAccessToken(w http.ResponseWriter, r *http.Request, path string) int {
	q := r.URL.Query()
	appID, secret, v := q.Get("appid"), q.Get("secret"), q.Get("code")
	switch {
	case appID == "":
		return wechat.CodeAppIDMissing
	case secret == "":
		return wechat.CodeAppSecretMissing
	case v == "":
		return wechat.CodeCodeMissing
	}
	app, ok := s.apps[appID]
	if !ok {
		return wechat.CodeInvalidAppID
	}
	if !s.secretOK(path, app, secret) {
		return wechat.CodeInvalidAppSecret
	}
	if q.Get("grant_type") != "authorization_code" {
		return wechat.CodeInvalidGrantType
	}
	s.mu.Lock()
	c, errc := s.takeCodeLocked(v, appID, wechat.CodeCodeExpired, wechat.CodeCodeUsed, codeWebsite, codeOfficial)
	if errc != 0 {
		s.mu.Unlock()
		return errc
	}
	now := s.now()
	g := &oauthGrant{
		appID: appID, user: c.user, scope: c.scope, snapshot: c.snapshot,
		access: "80_" + randomString(86), refresh: "80_" + randomString(86),
		accessExpires: now.Add(OAuthTokenTTL), refreshExpires: now.Add(RefreshTokenTTL),
	}
	if c.snapshot {
		g.openID, g.unionID = s.virtualIDs(appID, c.user)
	} else {
		g.openID, g.unionID = s.openIDLocked(appID, c.user), s.UnionID(appID, c.user)
	}
	s.access[g.access] = g
	s.refresh[g.refresh] = g
	resp := wechat.OAuthToken{
		AccessToken: g.access, ExpiresIn: int64(OAuthTokenTTL / time.Second), RefreshToken: g.refresh,
		OpenID: g.openID, Scope: g.scope,
	}
	// Official accounts return unionid only with snsapi_userinfo.
	if app.Kind == wechat.KindWebsite || g.scope == wechat.ScopeUserInfo {
		resp.UnionID = g.unionID
	}
	if g.snapshot {
		resp.IsSnapshotUser = 1
	}
	s.mu.Unlock()
	s.writeJSON(w, ctypePlain, resp)
	return 0
}

// oauthRefreshToken: GET /sns/oauth2/refresh_token.
func (s *Server) oauthRefreshToken(w http.ResponseWriter, r *http.Request, path string) int {
	q := r.URL.Query()
	appID, rt := q.Get("appid"), q.Get("refresh_token")
	switch {
	case appID == "":
		return wechat.CodeAppIDMissing
	case q.Get("grant_type") != "refresh_token":
		return wechat.CodeInvalidGrantType
	}
	if _, ok := s.apps[appID]; !ok {
		return wechat.CodeInvalidAppID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[rt]
	if !ok || g.appID != appID {
		return wechat.CodeInvalidRefreshToken
	}
	now := s.now()
	if !now.Before(g.refreshExpires) {
		return wechat.CodeRefreshTokenExpired
	}
	if !now.Before(g.accessExpires) {
		delete(s.access, g.access)
		g.access = "80_" + randomString(86)
		s.access[g.access] = g
	}
	g.accessExpires = now.Add(OAuthTokenTTL)
	s.writeJSON(w, ctypePlain, wechat.OAuthToken{
		AccessToken: g.access, ExpiresIn: int64(OAuthTokenTTL / time.Second), RefreshToken: g.refresh,
		OpenID: g.openID, Scope: g.scope,
	})
	return 0
}

func (s *Server) oauthGrantLocked(q map[string][]string) (*oauthGrant, int) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	t := get("access_token")
	if t == "" {
		return nil, wechat.CodeAccessTokenMissing
	}
	g, ok := s.access[t]
	if !ok {
		if looksLikeServerToken(t) {
			return nil, wechat.CodeInvalidCredential
		}
		return nil, wechat.CodeInvalidAccessToken
	}
	if !s.now().Before(g.accessExpires) {
		return nil, wechat.CodeAccessTokenExpired
	}
	if get("openid") != g.openID {
		return nil, wechat.CodeInvalidOpenID
	}
	return g, 0
}

// userInfo: GET /sns/userinfo.
func (s *Server) userInfo(w http.ResponseWriter, r *http.Request, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, errc := s.oauthGrantLocked(r.URL.Query())
	if errc != 0 {
		return errc
	}
	if g.scope == wechat.ScopeBase {
		return wechat.CodeUnauthorized
	}
	u := s.userLocked(g.user)
	info := wechat.UserInfo{
		OpenID: g.openID, Nickname: u.Nickname, Privilege: []string{},
		HeadImgURL: "https://thirdwx.qlogo.cn/mmopen/vi_32/wechattest-" + hex.EncodeToString(s.derive("avatar", u.Name)[:12]) + "/132",
		UnionID:    g.unionID, Language: "zh_CN",
	}
	if g.snapshot {
		info.Nickname, info.HeadImgURL = "微信用户", ""
	}
	s.writeJSON(w, ctypePlain, info)
	return 0
}

// snsAuth: GET /sns/auth.
func (s *Server) snsAuth(w http.ResponseWriter, r *http.Request, path string) int {
	s.mu.Lock()
	_, errc := s.oauthGrantLocked(r.URL.Query())
	s.mu.Unlock()
	if errc != 0 {
		return errc
	}
	s.writeJSON(w, ctypePlain, wechat.Status{ErrCode: 0, ErrMsg: "ok"})
	return 0
}

// applyFaults sleeps for the injected latency and reports an injected
// errcode, if any.
func (s *Server) applyFaults(r *http.Request, path string) (int, bool) {
	s.mu.Lock()
	f := &s.faults
	if f.Path != "" && f.Path != path {
		s.mu.Unlock()
		return 0, false
	}
	latency := f.Latency
	code, hit := 0, true
	switch {
	case f.Busy > 0:
		f.Busy--
		code = wechat.CodeBusy
	case f.RateLimit > 0:
		f.RateLimit--
		code = wechat.CodeMinuteQuota
	case f.ErrcodeCount > 0 && f.Errcode != 0:
		f.ErrcodeCount--
		code = f.Errcode
	case f.BusyRate > 0 && mrand.Float64() < f.BusyRate:
		code = wechat.CodeBusy
	default:
		hit = false
	}
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-r.Context().Done():
			return 0, false
		case <-t.C:
		}
	}
	return code, hit
}

func encryptCBC(key, iv, pt []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(pt)%aes.BlockSize
	padded := append(append([]byte(nil), pt...), make([]byte, n)...)
	for i := len(pt); i < len(padded); i++ {
		padded[i] = byte(n)
	}
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)
	return ct, nil
}
