// Package provider is the wxoidc OpenID Connect provider: it composes fosite
// with wxoidc's storage and signing keys and serves the public HTTP surface
// (discovery, JWKS, authorization, PAR, token, revocation, introspection,
// userinfo and logout) as one http.Handler.
//
// It does not listen, load configuration or choose a storage backend: package
// main (cmd/wxoidc) does that and passes the pieces in. It does not
// authenticate people either: the authorization endpoint's login step is an
// [Authenticator] supplied by the caller.
//
// # Signing people in
//
// Every login method (the Mini Program grant, QR login, in-WeChat OAuth,
// device and scan login, follow-the-official-account login) finds or
// creates the user behind a WeChat identity through one function,
// [Users.SignIn]: it applies users.registration ([RegistrationOpen],
// [RegistrationExisting]), refuses disabled users, mints subjects in one
// format ([NewSubject]), keeps last-login times and records the login,
// login_failed, user_created, identity_linked and phone_bound events. Its
// errors [ErrUserDisabled], [ErrPhoneRequired] and [ErrNoAccount] are for
// the login method to answer in its own way (the grant: invalid_grant,
// phone_required, access_denied; web login: a page, then access_denied to
// the client). Share one *Users between the provider ([Config.Users]) and
// the login methods.
//
// # The audit trail
//
// Security events (storage.Event, types storage.Event*) go through an
// [Audit]: [Audit.Record] stores events on their own, [Audit.RecordWith]
// stores them in one transaction with the change they record (a failed
// change writes no event); both also log each event as one line. Inside a
// transaction of your own, use storage.InTx and Storage.AppendEvents. An
// event never holds a secret, a token, a code or a session key, nor
// personal data beyond the subject and the request's IP address.
package provider
