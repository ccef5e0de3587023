package wechat

import (
	"bytes"
	"encoding/json"
	"time"
)

// AppKind is the kind of a WeChat app, which decides the login flow.
type AppKind string

// The app kinds.
const (
	// KindMiniProgram is a Mini Program: wx.login and jscode2session.
	KindMiniProgram AppKind = "miniprogram"
	// KindWebsite is an Open Platform website application: QR-code login
	// through /connect/qrconnect with scope snsapi_login.
	KindWebsite AppKind = "website"
	// KindOfficial is an official (service) account: OAuth inside the
	// WeChat browser through /connect/oauth2/authorize.
	KindOfficial AppKind = "official"
)

// OAuth scopes of the authorize pages.
const (
	ScopeLogin    = "snsapi_login"    // website QR login
	ScopeBase     = "snsapi_base"     // official account, silent, openid only
	ScopeUserInfo = "snsapi_userinfo" // official account, with consent, allows /sns/userinfo
)

// Session is the answer of jscode2session. SessionKey is a secret: never
// log it or send it to a client.
type Session struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	// UnionID is set only when the Mini Program is bound to an Open
	// Platform account.
	UnionID string `json:"unionid,omitempty"`
}

// ServerToken is a server access token and when it expires.
type ServerToken struct {
	AccessToken string
	ExpiresAt   time.Time
}

// TokenResponse is the answer of /cgi-bin/token and /cgi-bin/stable_token.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// StableTokenRequest is the JSON body of /cgi-bin/stable_token.
type StableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// Watermark tells which app data was produced for, and when.
type Watermark struct {
	Timestamp int64  `json:"timestamp"`
	AppID     string `json:"appid"`
}

// PhoneInfo is a phone number as WeChat reports it, from
// getuserphonenumber or from decrypted legacy data.
type PhoneInfo struct {
	// PhoneNumber is the number as bound; foreign numbers include the
	// country code.
	PhoneNumber string `json:"phoneNumber"`
	// PurePhoneNumber is the number without country code.
	PurePhoneNumber string `json:"purePhoneNumber"`
	// CountryCode is e.g. "86". WeChat sends it as a string or as a
	// number; both decode.
	CountryCode string    `json:"countryCode"`
	Watermark   Watermark `json:"watermark"`
}

// UnmarshalJSON accepts countryCode as a string or a number.
func (p *PhoneInfo) UnmarshalJSON(b []byte) error {
	type plain PhoneInfo
	var aux struct {
		plain
		CountryCode json.RawMessage `json:"countryCode"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*p = PhoneInfo(aux.plain)
	p.CountryCode = ""
	cc := bytes.TrimSpace(aux.CountryCode)
	switch {
	case len(cc) == 0 || bytes.Equal(cc, []byte("null")):
	case cc[0] == '"':
		if err := json.Unmarshal(cc, &p.CountryCode); err != nil {
			return err
		}
	default:
		var n json.Number
		if err := json.Unmarshal(cc, &n); err != nil {
			return err
		}
		p.CountryCode = n.String()
	}
	return nil
}

// PhoneResponse is the answer of getuserphonenumber.
type PhoneResponse struct {
	ErrCode   int        `json:"errcode"`
	ErrMsg    string     `json:"errmsg"`
	PhoneInfo *PhoneInfo `json:"phone_info,omitempty"`
}

// PhoneRequest is the JSON body of getuserphonenumber. OpenID is
// optional: when set, WeChat redeems the code only if it was issued to
// that user of the app (the current documentation lists the field; older
// versions did not).
type PhoneRequest struct {
	Code   string `json:"code"`
	OpenID string `json:"openid,omitempty"`
}

// OAuthToken is the answer of /sns/oauth2/access_token and
// /sns/oauth2/refresh_token: a user-level token, unrelated to the server
// access token.
type OAuthToken struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	OpenID       string `json:"openid"`
	// Scope is the comma-separated list of granted scopes.
	Scope string `json:"scope"`
	// UnionID is set for website apps bound to an Open Platform account,
	// and for official accounts only with scope snsapi_userinfo.
	UnionID string `json:"unionid,omitempty"`
	// IsSnapshotUser is 1 for a snapshot-mode virtual user, whose openid
	// and unionid are virtual: never link accounts on them.
	IsSnapshotUser int `json:"is_snapshotuser,omitempty"`
	// Expiry is computed by the client from ExpiresIn; it is not on the wire.
	Expiry time.Time `json:"-"`
}

// Snapshot reports whether the token belongs to a snapshot-mode virtual user.
func (t *OAuthToken) Snapshot() bool { return t.IsSnapshotUser == 1 }

// UserInfo is the answer of /sns/userinfo. Since 2021-10-20 Sex is always
// 0 and the region fields are empty.
type UserInfo struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid,omitempty"`
	Language   string   `json:"language,omitempty"`
}

// Status is the answer of calls that return only errcode and errmsg, such as
// checksession.
type Status struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// WXACodeRequest is the JSON body of getwxacodeunlimit (wechat-api.md
// §8.1). Zero fields take WeChat's defaults.
type WXACodeRequest struct {
	// Scene (at most 32 visible characters of digits, letters and
	// !#$&'()*+,/:;=?@-._~) reaches the page as options.scene.
	Scene string `json:"scene"`
	// Page is the page to open, without a leading slash or query; empty
	// means the home page.
	Page string `json:"page,omitempty"`
	// CheckPath false allows pages not yet published (default true).
	CheckPath *bool `json:"check_path,omitempty"`
	// EnvVersion is release (default), trial or develop.
	EnvVersion string `json:"env_version,omitempty"`
	// Width in pixels, 280 to 1280 (default 430).
	Width int `json:"width,omitempty"`
}

// Image is an image WeChat answered with.
type Image struct {
	ContentType string // as sniffed: image/png or image/jpeg
	Data        []byte
}
