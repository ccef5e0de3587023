// Package weblogin is the provider's browser login step: it signs people
// in at the authorization endpoint through WeChat (website QR-code login on
// desktop browsers, official-account OAuth inside the WeChat browser), keeps
// the provider's login session in a cookie, and asks for consent on behalf
// of third-party clients.
//
// [Authenticator] implements [provider.Authenticator],
// [provider.LogoutAuthenticator] and [provider.RouteMounter]; it serves
// GET /login, GET /login/wechat/callback, POST /login/consent and
// GET/POST /login/consents below the issuer.
//
// # Flow
//
// An authorization request without a usable login session (none, prompt=login,
// or older than max_age) is kept in storage as a login state bound to the
// browser by a cookie, and the browser goes to /login. /login picks the WeChat
// flow from the User-Agent and sends the browser to WeChat with a fresh,
// single-use state. The callback consumes that state, checks the browser
// binding, exchanges the code, links the WeChat identity to a provider user by
// unionid (storage.UserStore.LinkIdentity), starts a login session and sends
// the browser back to the authorization endpoint with the original parameters
// (provider.AuthorizeParams, so pushed requests survive), minus the
// prompt=login or max_age=0 it has just satisfied.
//
// Inside WeChat the official account's silent snsapi_base round comes first;
// when the openid it returns is not linked to a user yet (or profile is
// asked for), a second round with snsapi_userinfo brings the unionid that
// joins the person to their other apps. Snapshot-mode visitors
// (is_snapshotuser 1) carry virtual ids and are never linked.
//
// Nothing is kept in process memory: every step's state is in storage, so
// any replica can serve any step.
//
// The package does not issue tokens or codes; package provider does.
package weblogin
