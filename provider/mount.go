package provider

import "github.com/gorilla/mux"

// RouteMounter is implemented by an [Authenticator] that serves pages of
// its own (login, callback, consent). [Provider.Handler] calls Mount with
// the router at the issuer's path, after the provider's own routes, so the
// paths given to r are relative to the issuer.
type RouteMounter interface {
	Mount(r *mux.Router)
}
