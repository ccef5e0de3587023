// Package provider is the wxoidc OpenID Connect provider: it composes fosite
// with wxoidc's storage and signing keys and serves the public HTTP surface
// (discovery, JWKS, authorization, PAR, token, revocation, introspection,
// userinfo and logout) as one http.Handler.
//
// It does not listen, load configuration or choose a storage backend: package
// main (cmd/wxoidc) does that and passes the pieces in. It does not
// authenticate people either: the authorization endpoint's login step is an
// [Authenticator] supplied by the caller.
package provider
