// Package wechat implements a client for the WeChat server APIs that an
// identity provider needs: Mini Program login (jscode2session), the server
// access token (stable_token, with the classic /cgi-bin/token as a fallback),
// the phone-number API, website and official-account OAuth
// (/sns/oauth2/access_token, /sns/userinfo), session-key checks
// (/wxa/checksession), and the legacy encryptedData decryption and rawData
// signature check.
//
// One [Client] serves one appid. It handles WeChat's quirks: errors arrive as
// HTTP 200 with an errcode, success bodies may omit errcode, the Content-Type
// is not trusted, and errmsg carries a request id (callers branch on
// [APIError.Code] or [APIError.Class], never on the message). Every call has
// a timeout; only errcode -1 is retried, with bounded exponential backoff; a
// stale server access token (40001, 40014, 42001) is invalidated and the call
// retried exactly once.
//
// The server access token is shared between replicas through a [TokenStore];
// see [Client.ServerToken] for the refresh protocol.
//
// No error text or log line of this package contains a request URL, the app
// secret, a session key or a token: WeChat puts the app secret in the query
// string, so URLs are never printed.
//
// The package is a leaf: it imports nothing of wxoidc's. It does not map
// WeChat identities to OIDC subjects; see package provider. For tests and
// local development, package wechattest provides a simulator of these APIs.
package wechat
