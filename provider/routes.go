package provider

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Handler returns the public HTTP surface (SPEC §3), mounted at the
// issuer's path.
func (p *Provider) Handler() http.Handler {
	return fastPaths{p, p.router()}
}

// Route returns the path template of the endpoint r is for (e.g.
// "/oauth2/token", after the issuer's path), or "" if r matches no route or
// not with its method. Request logs and metrics name requests by it, never
// by their raw path.
func (p *Provider) Route(r *http.Request) string {
	var m mux.RouteMatch
	if !p.routes.Match(r, &m) || m.Route == nil {
		return ""
	}
	t, err := m.Route.GetPathTemplate()
	if err != nil {
		return ""
	}
	return t
}

// router registers every route, in one place.
func (p *Provider) router() *mux.Router {
	r := mux.NewRouter()
	base := p.basePath
	s := r
	if base != "" {
		s = r.PathPrefix(base).Subrouter()
	}
	s.HandleFunc(pathDiscovery, p.handleDiscovery).Methods(http.MethodGet, http.MethodHead)
	s.HandleFunc(pathJWKS, p.handleJWKS).Methods(http.MethodGet, http.MethodHead)
	s.HandleFunc(pathAuthorize, p.handleAuthorize).Methods(http.MethodGet, http.MethodPost)
	s.HandleFunc(pathPAR, p.handlePAR).Methods(http.MethodPost)
	s.HandleFunc(pathToken, p.handleToken).Methods(http.MethodPost)
	s.HandleFunc(pathRevoke, p.handleRevoke).Methods(http.MethodPost)
	s.HandleFunc(pathIntrospect, p.handleIntrospect).Methods(http.MethodPost)
	s.HandleFunc(pathUserinfo, p.handleUserinfo).Methods(http.MethodGet, http.MethodPost)
	s.HandleFunc(pathLogout, p.handleLogout).Methods(http.MethodGet, http.MethodPost)
	s.HandleFunc(pathDeviceAuthorize, p.handleDeviceAuthorize).Methods(http.MethodPost)
	s.HandleFunc(pathDeviceVerify, p.handleDeviceVerify).Methods(http.MethodGet, http.MethodPost)
	if p.cfg.Registration.Enabled {
		s.HandleFunc(pathRegister, p.handleRegister).Methods(http.MethodPost)
		s.HandleFunc(pathRegisterClient, p.handleClientConfiguration).Methods(http.MethodGet, http.MethodPut, http.MethodDelete)
	}
	if m, ok := p.cfg.Authenticator.(RouteMounter); ok {
		m.Mount(s)
	}
	s.HandleFunc(pathWeChatPhone, p.handleWeChatPhone).Methods(http.MethodPost)
	s.HandleFunc(pathWeChatDecrypt, p.handleWeChatDecrypt).Methods(http.MethodPost)
	s.HandleFunc(PathAccountDelete, p.handleAccountDelete).Methods(http.MethodPost)
	if on := p.cfg.OnRoute; on != nil {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				if rt := mux.CurrentRoute(req); rt != nil {
					if t, err := rt.GetPathTemplate(); err == nil {
						on(req.Context(), t)
					}
				}
				next.ServeHTTP(w, req)
			})
		})
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "The HTTP method is not allowed on this endpoint."})
	})
	return r
}

// fastPaths serves the two documents every relying party polls straight
// from prepared bytes, ahead of the router.
type fastPaths struct {
	p    *Provider
	next http.Handler
}

func (f fastPaths) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		switch r.URL.Path {
		case f.p.basePath + pathDiscovery:
			f.route(r, pathDiscovery)
			f.p.handleDiscovery(w, r)
			return
		case f.p.basePath + pathJWKS:
			f.route(r, pathJWKS)
			f.p.handleJWKS(w, r)
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

// route tells Config.OnRoute the route of a request served ahead of the
// router: its template below the issuer's path, as the router has it.
func (f fastPaths) route(r *http.Request, path string) {
	if on := f.p.cfg.OnRoute; on != nil {
		on(r.Context(), f.p.basePath+path)
	}
}
