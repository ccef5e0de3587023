// Package wechattest implements a simulator of WeChat's server APIs and
// authorize pages as an [http.Handler], for tests and local development
// only. It backs `wxoidc dev` and `wxoidc wechat-sim`; `wxoidc serve` never
// mounts it.
//
// The simulator serves, from one base URL, the API host's paths
// (/sns/jscode2session, /cgi-bin/token, /cgi-bin/stable_token,
// /wxa/business/getuserphonenumber, /wxa/checksession,
// /wxa/resetusersessionkey, /sns/oauth2/access_token,
// /sns/oauth2/refresh_token, /sns/userinfo, /sns/auth, /cgi-bin/qrcode/create,
// /cgi-bin/user/info), mp.weixin.qq.com's /cgi-bin/showqrcode (a PNG), and
// the open host's pages (/connect/qrconnect, /connect/oauth2/authorize),
// with WeChat's JSON
// shapes, content types (text/plain on /sns/*) and error codes: every
// error is HTTP 200 with {"errcode","errmsg"} and a request id in errmsg.
// Codes are single use and expire (login, phone and official-account codes
// after 5 minutes, website codes after 10); openids differ per app and
// unionids are shared by the apps of one Open Platform account, both
// derived deterministically from (app, user) so that restarts give the
// same ids. Server access tokens rotate as WeChat's do, with a 5-minute
// overlap, so a provider that stomps its own token sees 40001.
//
// Helper endpoints under /sim/ stand in for the client side and for test
// control: POST /sim/login (form appid, user) answers {"code": ...} as
// wx.login() would; POST /sim/phone-code (form appid, user, phone) answers
// {"code": ...} as the getPhoneNumber button would; /sim/faults switches
// fault injection (latency, -1 busy, 45011, any errcode, wrong secret) at
// run time; GET /sim/stats counts calls per path; POST /sim/auto-confirm
// makes the authorize pages confirm at once as a given user. For official
// accounts with a push URL ([App.Push], [Server.SetPush]), POST
// /sim/oa-scan (form appid, user, ticket) plays a person scanning a
// parametric QR code: it pushes the subscribe or SCAN event, signed and in
// safe mode encrypted, to the account's server with WeChat's retries, and
// answers what happened and the chat reply; GET /sim/oa-scan is a page
// listing the codes waiting to be scanned with a button per test user, and
// GET /sim/oaqrcodes?appid lists them as JSON, newest first.
//
// Pages use relative links and form actions, so the handler works when
// mounted under a prefix with [http.StripPrefix]; the endpoint of a
// [wechat.Client] is then the prefixed base URL for both APIURL and
// OpenURL.
//
// The simulator has no authentication of its own and hands out codes for
// any user: it MUST NOT be reachable from outside the machine. [ListenAndServe]
// refuses a non-loopback address unless told otherwise.
package wechattest
