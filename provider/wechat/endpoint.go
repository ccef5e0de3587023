package wechat

import "strings"

// Endpoint holds WeChat's base URLs. Paths such as /sns/jscode2session are
// appended to them, so a base URL may carry a path prefix (for example a
// simulator mounted under /wechat-sim).
type Endpoint struct {
	// APIURL is the base URL of the server APIs (config key wechat.api_base).
	APIURL string
	// OpenURL is the base URL of the browser-facing authorize pages
	// (config key wechat.open_base).
	OpenURL string
}

// DefaultEndpoint is WeChat's production endpoint.
var DefaultEndpoint = Endpoint{
	APIURL:  "https://api.weixin.qq.com",
	OpenURL: "https://open.weixin.qq.com",
}

// The paths of the WeChat APIs and pages this package uses. They are
// exported so that package wechattest serves exactly these.
const (
	PathJSCode2Session    = "/sns/jscode2session"
	PathToken             = "/cgi-bin/token"
	PathStableToken       = "/cgi-bin/stable_token"
	PathPhoneNumber       = "/wxa/business/getuserphonenumber"
	PathCheckSession      = "/wxa/checksession"
	PathWXACodeUnlimit    = "/wxa/getwxacodeunlimit"
	PathResetSessionKey   = "/wxa/resetusersessionkey"
	PathOAuthAccessToken  = "/sns/oauth2/access_token"
	PathOAuthRefreshToken = "/sns/oauth2/refresh_token"
	PathUserInfo          = "/sns/userinfo"
	PathOAuthAuth         = "/sns/auth"
	PathQRConnect         = "/connect/qrconnect"
	PathOAuth2Authorize   = "/connect/oauth2/authorize"
)

func joinURL(base, path string) string {
	return strings.TrimRight(base, "/") + path
}

func (e Endpoint) apiURL() string {
	if e.APIURL == "" {
		return DefaultEndpoint.APIURL
	}
	return e.APIURL
}

func (e Endpoint) openURL() string {
	if e.OpenURL == "" {
		return DefaultEndpoint.OpenURL
	}
	return e.OpenURL
}
