// Package weblogin is the provider's browser login step: it signs people
// in at the authorization endpoint through WeChat (website QR-code login on
// desktop browsers, official-account OAuth inside the WeChat browser), keeps
// the provider's login session in a cookie, and asks for consent on behalf
// of third-party clients.
//
// [Authenticator] implements [provider.Authenticator],
// [provider.LogoutAuthenticator] and [provider.RouteMounter]; it serves
// GET /login, GET /login/wechat/callback, POST /login/consent,
// GET/POST /login/consents, the waiting page (GET /login/wait,
// /login/wait/status, /login/wait/continue, /login/wait.js, POST
// /login/wait/left) and the
// official accounts' message push (GET/POST /wechat/events/{appid}) below
// the issuer.
//
// # Ways in
//
// The desktop login page offers every way in the deployment has configured
// (SPEC §9), each a link marked data-login: "qr" (the website app's QR
// login at WeChat), "scan" (a Mini Program code, [ScanConfig]), and
// "official" (an official-account QR, issue 16). They are the list
// loginMethods builds, in login.go: a method is its marker, its button
// text and a start function. Adding one is appending to that list.
//
// With a single way in, /login starts it at once, as before the chooser
// existed: a page with one button costs a click and tells nothing. Inside
// WeChat's browser the official account's OAuth always starts at once,
// since nobody can scan their own screen. The chooser itself reads and
// consumes nothing, so a reload or the back button never breaks it.
//
// # Waiting for an out-of-band approval
//
// A method that finishes on the person's phone ("scan", "official") calls
// startWait with its kind: the login state goes into a new
// storage.DeviceAuth of that kind (the mechanism the RFC 8628 device flow
// uses too), and the browser goes to /login/wait?id=<device code>, which
// shows what its waitKind renders (the code to scan) with the user code.
// Whoever learns of the approval calls storage.DecideDeviceAuth with the
// user code (the scene of the scanned code): the Mini Program does so
// through /oauth2/device/verify, an official-account push through its
// event handler. A new waiting method therefore needs a waitKind (lifetime,
// how the person signed in, and a show function) in Authenticator.waits,
// and nothing else.
//
// The page finishes by itself: wait.js polls /login/wait/status (one
// storage read, plain short GETs that pass any proxy) starting at two
// seconds and backing off, and goes to /login/wait/continue once
// approved. Without JavaScript, the data-login="continue" link does the
// same, once per click. /login/wait/continue redeems the approval once
// (storage.PollDeviceAuth, single use across replicas), checks that the
// browser is the one that started the login, starts the login session and
// resumes the authorization request. Expired and denied logins are shown
// as such (HTTP 410) with a data-login="restart" link that starts the
// authorization again, for a fresh code.
//
// # Follow the official account
//
// The "official" method ([FollowConfig]) waits like "scan", with a
// prepare step: before the DeviceAuth is stored it creates the official
// account's temporary QR code (QR_STR_SCENE) whose scene is the user code
// and a MAC of it, and keeps the ticket and the code's URL in the login
// state, so that every replica shows the same code (rendered here, not
// fetched from WeChat) and checks the ticket of a push. WeChat pushes a
// subscribe (qrscene_SCENE) or SCAN event to /wechat/events/{appid}
// (push.go): it is verified (wechat.PushReceiver: signature, timestamp
// window, safe-mode decryption and appid), recorded in storage
// (storage.PushEventStore: WeChat's retries count once on every replica)
// and worked on until a deadline well inside WeChat's 5 seconds: the scene
// and ticket lead to the DeviceAuth, cgi-bin/user/info gives the unionid,
// the identity is linked and the DeviceAuth approved, and the person may
// get a passive reply. A push not finished by then is acknowledged anyway
// and finished by RunPushWorker on whichever replica claims it once the
// claim lapses; a push that cannot be recorded is answered 503, so that
// WeChat delivers it again.
//
// A scan that signs nobody in ends clearly: the person gets a passive
// reply saying why (the code expired, was used, no account, account
// disabled, page closed; [FollowConfig] ReplyExpired and the rest, else
// built-in text in the page's language), and the DeviceAuth is denied with
// the reason, which the page shows. The page counts as closed when its
// tab's pagehide beacon (POST /login/wait/left) marked it gone, or when it
// has not polled (or, without JavaScript, reloaded) for pageGoneAfter:
// every poll records it as seen (storage.DeviceAuth.SeenAt, so any
// replica knows), and the approval itself is conditional on a recent
// sighting (DeviceDecision.SeenSince), so a beacon that arrives while the
// person is being checked still wins.
//
// # Flow
//
// An authorization request without a usable login session (none, prompt=login,
// or older than max_age) is kept in storage as a login state bound to the
// browser by a cookie, and the browser goes to /login. /login picks the WeChat
// flow from the User-Agent and sends the browser to WeChat with a fresh,
// single-use state. The callback consumes that state, checks the browser
// binding, exchanges the code, links the WeChat identity to a provider user by
// unionid (provider.Users.SignIn), starts a login session and sends
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
