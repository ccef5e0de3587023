package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/provider/console"
	"github.com/wxoidc/wxoidc/provider/ops"
	"github.com/wxoidc/wxoidc/provider/wechat"
)

// adminHandler is the admin API of st and, unless console.enabled is
// false, the console beside it at /console/, with request logs and
// metrics. addr is the admin listener's address.
func adminHandler(ctx context.Context, cfg Config, st *stack, addr net.Addr) (http.Handler, error) {
	token, err := cfg.adminToken()
	if err != nil {
		return nil, fmt.Errorf("admin.token_file: %w", err)
	}
	h, err := admin.New(admin.Config{
		Clients:       st.store,
		Keys:          st.keys,
		Users:         st.store,
		Audit:         st.audit,
		Registrations: st.store,
		Secret:        st.secret,
		Token:         token,
		Dev:           cfg.dev,
		Profiling:     cfg.Admin.Pprof,
		WeChat:        &admin.WeChatHealth{Apps: wechatAppList(cfg), Tokens: st.store, Log: st.wechat},
		Stats:         st.store,
		WeChatApps:    wechatAppKinds(cfg),
		Logger:        st.log.With("component", "admin"),
	})
	if err != nil {
		return nil, err
	}
	if token == "" {
		st.log.Warn("the admin API has no token: it answers anyone on this machine (loopback only); set admin.token or WXOIDC_ADMIN_TOKEN", "addr", cfg.Admin.Addr)
	}
	var root http.Handler = h
	route := h.Route
	if cfg.Console.Enabled {
		con, err := consoleHandler(ctx, cfg, st, h, token, addr)
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/console", con)
		mux.Handle(console.Prefix, con)
		mux.Handle("/", h)
		root = mux
		route = func(r *http.Request) string {
			if isConsolePath(r.URL.Path) {
				return con.Route(r)
			}
			return h.Route(r)
		}
	}
	var quiet []string
	if cfg.Metrics.Enabled {
		inner, innerRoute := root, route
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", bearerOnly(token, st.metrics.Handler()))
		mux.Handle("/", inner)
		root = mux
		route = func(r *http.Request) string {
			if r.URL.Path == "/metrics" {
				return "/metrics"
			}
			return innerRoute(r)
		}
		quiet = []string{"/metrics"}
	}
	mw := &ops.Middleware{Logger: st.log.With("component", "admin-http"), Metrics: st.metrics, Route: route, QuietRoutes: quiet}
	return mw.Wrap(root), nil
}

// bearerOnly serves h to requests that carry token as a bearer token (RFC
// 6750); an empty token admits every request (a loopback admin listener).
func bearerOnly(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte("Bearer " + token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wxoidc admin"`)
			http.Error(w, "401 unauthorized: send the admin token as a bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// startAdmin starts the admin API listener of cfg (admin.addr; nothing if
// it is "off") and returns at once. stop shuts it down gracefully within
// its context's deadline and returns the server's error, if it failed
// while running. wxoidc serve and wxoidc dev call it through
// listenAndServe.
func startAdmin(cfg Config, st *stack) (stop func(context.Context) error, err error) {
	if !cfg.adminEnabled() {
		return func(context.Context) error { return nil }, nil
	}
	if err := errors.Join(cfg.validateOps()...); err != nil { // dev flags may bypass Validate
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Admin.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin API: listen on %s: %w", cfg.Admin.Addr, err)
	}
	h, err := adminHandler(context.Background(), cfg, st, ln.Addr())
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := newServer(h, st.log)
	st.log.Info("admin API listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	return func(ctx context.Context) error {
		serr := srv.Shutdown(ctx)
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin API: %w", err)
		}
		if serr != nil {
			return fmt.Errorf("admin API shutdown: %w", serr)
		}
		return nil
	}, nil
}

// wechatAppKinds maps the configured WeChat apps' appids to their kinds.
func wechatAppKinds(cfg Config) map[string]wechat.AppKind {
	out := make(map[string]wechat.AppKind, len(cfg.WeChat.Apps))
	for _, a := range cfg.WeChat.Apps {
		out[a.AppID] = wechat.AppKind(a.Kind)
	}
	return out
}
