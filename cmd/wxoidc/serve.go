package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/ops"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

func newServeCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var (
		configPath string
		check      bool
		noMigrate  bool
		addr       string
		adminAddr  string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the provider (production)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, getenv)
			if err != nil {
				return err
			}
			if addr != "" {
				cfg.HTTP.Addr = addr
			}
			if adminAddr != "" {
				cfg.Admin.Addr = adminAddr
			}
			if err := cfg.Validate(); err != nil {
				return invalidConfig(configPath, err)
			}
			migrate := !noMigrate && (cfg.Storage.Migrate == nil || *cfg.Storage.Migrate)
			if check {
				if err := checkDeployment(cmd.Context(), cfg, migrate, stdout); err != nil {
					return invalidConfig(configPath, err)
				}
				fmt.Fprintf(stdout, "configuration OK (%s)\n", configSource(configPath))
				return nil
			}
			log := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
			if cfg.InsecureSecretFiles {
				for _, err := range cfg.looseSecretFiles() {
					log.Warn("insecure secret file (insecure_secret_files is set)", "problem", err.Error())
				}
			}
			stopTracing, err := startTracing(cmd.Context(), &cfg, getenv, log)
			if err != nil {
				return err
			}
			defer stopTracing()
			return serve(cmd.Context(), cfg, migrate, log, nil)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file")
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration and exit")
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply the storage schema at start")
	cmd.Flags().StringVar(&addr, "addr", "", "public listen address (overrides http.addr)")
	cmd.Flags().StringVar(&adminAddr, "admin-addr", "", `admin API listen address (overrides admin.addr; "off" disables it)`)
	return cmd
}

// invalidConfig says what is wrong with the configuration serve was given,
// and which configuration that was.
func invalidConfig(configPath string, err error) error {
	if configPath == "" {
		return fmt.Errorf("invalid configuration (%s; pass --config FILE):\n%w", configSource(""), err)
	}
	return fmt.Errorf("invalid configuration (%s):\n%w", configSource(configPath), err)
}

// stack is everything a running provider is made of.
type stack struct {
	store    storage.Storage // its round trips timed into metrics
	keys     *keys.Manager
	provider *provider.Provider
	log      *slog.Logger // adds request ids to lines logged with a request's context
	metrics  *ops.Metrics
	wechat   *ops.WeChatLog  // this process's calls to WeChat, for the console
	secret   []byte          // the system secret
	audit    *provider.Audit // records the audit trail (also for the admin API)
	// background are loops serveOn runs besides the key manager and the
	// janitor (the push worker of follow login).
	background []func(ctx context.Context)
}

// buildStack opens storage, loads keys, registers config clients and
// composes the provider. auth may be nil (no login method).
func buildStack(ctx context.Context, cfg Config, migrate bool, log *slog.Logger, auth provider.Authenticator) (*stack, error) {
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	log = slog.New(ops.LogHandler(log.Handler()))
	metrics, err := newMetrics()
	if err != nil {
		return nil, err
	}
	store, err := openStorage(ctx, cfg.Storage.DSN, migrate)
	if err != nil {
		return nil, err
	}
	if ob, ok := store.(storage.Observable); ok {
		scheme, _ := backendOf(cfg.Storage.DSN)
		ob.Observe(storage.Observers(metrics.StorageObserver(), ops.StorageTracer(cfg.tracer, scheme)))
	}
	km, err := newKeyManager(cfg, store, secret, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := km.Load(ctx); err != nil {
		store.Close()
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if err := syncConfigClients(ctx, cfg, store, secret); err != nil {
		store.Close()
		return nil, err
	}
	if err := checkStoredClients(ctx, store, km.Algorithms()); err != nil {
		store.Close()
		return nil, err
	}
	apps, err := wechatApps(cfg, store, secret, holderName(), log)
	if err != nil {
		store.Close()
		return nil, err
	}
	wechatLog := &ops.WeChatLog{}
	for appID, a := range apps {
		a.Client.ObserveCall = observeBoth(metrics.WeChatCall(appID), wechatLog.Observe(appID))
		a.Client.TraceCall = ops.WeChatTracer(cfg.tracer, appID)
		a.Client.ObserveTokenRefresh = metrics.WeChatTokenRefresh(appID)
	}
	var background []func(context.Context)
	audit := &provider.Audit{Storage: store, Logger: log.With("component", "audit")}
	users := &provider.Users{Storage: store, Registration: cfg.Users.Registration, DeleteMaxAge: cfg.Users.AccountDeleteMaxAge, Audit: audit}
	if auth == nil && (hasWebLoginApp(apps) || scanConfig(cfg) != nil) {
		follows, err := followConfigs(cfg)
		if err != nil {
			store.Close()
			return nil, err
		}
		wl, err := weblogin.New(weblogin.Config{
			Issuer: cfg.Issuer, Storage: store, Users: users, WeChatApps: apps, Secret: secret,
			Follow: follows, Scan: scanConfig(cfg), Dev: cfg.dev, Logger: log,
			LoginLimitPerIP:   provider.RateLimit(cfg.RateLimit.Authorize.PerIP),
			IPv6Prefix:        cfg.RateLimit.IPv6Prefix,
			PendingPerIP:      cfg.RateLimit.Authorize.PendingPerIP,
			PendingPerBrowser: cfg.RateLimit.Authorize.PendingPerBrowser,
		})
		if err != nil {
			store.Close()
			return nil, err
		}
		auth = wl
		background = append(background, wl.RunPushWorker)
	}
	if auth == nil {
		log.Warn("no login method is configured (no WeChat website app or official account in wechat.apps): " +
			"/oauth2/authorize answers every request with temporarily_unavailable; the token endpoint works")
	}
	p, err := provider.New(provider.Config{
		Issuer:              cfg.Issuer,
		Secret:              secret,
		Storage:             store,
		Keys:                km,
		Authenticator:       auth,
		Users:               users,
		Audit:               audit,
		OnRoute:             ops.SetRoute,
		WeChatApps:          apps,
		GrantLimitPerClient: provider.RateLimit(cfg.RateLimit.WeChatGrant.PerClient),
		GrantLimitPerIP:     provider.RateLimit(cfg.RateLimit.WeChatGrant.PerIP),
		AuthorizeLimitPerIP: provider.RateLimit(cfg.RateLimit.Authorize.PerIP),
		Registration: provider.RegistrationConfig{
			Enabled:    cfg.Registration.Enabled,
			LimitPerIP: provider.RateLimit(cfg.RateLimit.Registration.PerIP),
		},
		IPv6Prefix:            cfg.RateLimit.IPv6Prefix,
		AccessTokenFormat:     cfg.AccessToken.Format,
		AccessTokenAlg:        cfg.AccessToken.Alg,
		AccessTokenLifespan:   cfg.AccessToken.Lifespan,
		IDTokenLifespan:       cfg.IDToken.Lifespan,
		RefreshTokenLifespan:  cfg.RefreshToken.Lifespan,
		RefreshReuseGrace:     cfg.RefreshToken.ReuseGrace,
		AuthorizeCodeLifespan: cfg.AuthorizeCode.Lifespan,
		DeviceCodeLifespan:    cfg.Device.CodeLifespan,
		DevicePollInterval:    cfg.Device.Interval,
		Dev:                   cfg.dev,
		Logger:                log.With("component", "provider"),
		Metrics:               metrics,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &stack{store: store, keys: km, provider: p, log: log, metrics: metrics, wechat: wechatLog, secret: secret, audit: audit, background: background}, nil
}

// observeBoth calls both observers of a WeChat call.
func observeBoth(a, b func(api string, d time.Duration, err error)) func(api string, d time.Duration, err error) {
	return func(api string, d time.Duration, err error) {
		a(api, d, err)
		b(api, d, err)
	}
}

// hasWebLoginApp reports whether apps include one that web login can use.
func hasWebLoginApp(apps map[string]provider.WeChatApp) bool {
	for _, a := range apps {
		if a.Kind == wechat.KindWebsite || a.Kind == wechat.KindOfficial {
			return true
		}
	}
	return false
}

// serve runs the provider until ctx ends, then shuts down gracefully.
// extra, when set, wraps the provider's handler (dev mounts more routes).
func serve(ctx context.Context, cfg Config, migrate bool, log *slog.Logger, wrap func(*stack, http.Handler) http.Handler) error {
	st, err := buildStack(ctx, cfg, migrate, log, nil)
	if err != nil {
		return err
	}
	defer st.store.Close()
	h := st.provider.Handler()
	if wrap != nil {
		h = wrap(st, h)
	}
	return listenAndServe(ctx, cfg, st, h)
}

// newMetrics returns wxoidc's metrics, with the Go runtime's and the
// process's, in a registry of their own.
func newMetrics() (*ops.Metrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	return ops.NewMetrics(reg)
}

// publicHandler puts /healthz, /readyz and /metrics beside h and wraps the
// whole in request logging, metrics and proxy-header handling.
func publicHandler(cfg Config, st *stack, h http.Handler) (http.Handler, error) {
	proxies, err := cfg.trustedProxies()
	if err != nil {
		return nil, err
	}
	health := &ops.Health{Storage: st.store, Keys: st.keys, Logger: st.log.With("component", "health")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", health.Live)
	mux.HandleFunc("GET /readyz", health.Ready)
	quiet := []string{"/healthz", "/readyz"}
	if cfg.Metrics.Enabled && cfg.Metrics.Public {
		mux.Handle("GET /metrics", st.metrics.Handler())
		quiet = append(quiet, "/metrics")
	}
	mux.Handle("/", h)
	var root http.Handler = mux
	if cfg.HTTP.TLSCert != "" {
		root = hsts(mux)
	}
	mw := &ops.Middleware{
		Logger:         st.log.With("component", "http"),
		Metrics:        st.metrics,
		Route:          routeName(mux, st.provider, h),
		QuietRoutes:    quiet,
		TrustedProxies: proxies,
		TracerProvider: cfg.tracer,
	}
	return mw.Wrap(root), nil
}

// hsts tells browsers to use only https for the issuer's host for a year
// (RFC 6797), on every response of a listener that serves TLS itself. A
// TLS-terminating proxy must send it instead (docs/security.md).
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// routeName names a request's route for logs and metrics: the pattern of
// our own mux, else the provider's route template, else the pattern of h
// when h is a mux itself (wxoidc dev mounts the simulator that way).
func routeName(outer *http.ServeMux, p *provider.Provider, h http.Handler) func(*http.Request) string {
	inner, _ := h.(*http.ServeMux)
	return func(r *http.Request) string {
		if pat := muxPattern(outer, r); pat != "/" && pat != "" {
			return pat
		}
		if rt := p.Route(r); rt != "" {
			return rt
		}
		if inner != nil {
			if pat := muxPattern(inner, r); pat != "/" {
				return pat
			}
		}
		return ""
	}
}

// muxPattern is the path of the ServeMux pattern r matches ("" for none).
func muxPattern(m *http.ServeMux, r *http.Request) string {
	_, pat := m.Handler(r)
	if i := strings.IndexByte(pat, ' '); i >= 0 {
		pat = pat[i+1:]
	}
	return pat
}

// listenAndServe runs the background loops, the public listener and the
// admin listener until ctx ends, then shuts them down gracefully:
// in-flight requests get http.shutdown_timeout to finish, and the loops
// have stopped when it returns.
func listenAndServe(ctx context.Context, cfg Config, st *stack, h http.Handler) error {
	public, err := publicHandler(cfg, st, h)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	return serveOn(ctx, cfg, st, ln, public)
}

// serveOn is listenAndServe on a public listener the caller opened. It
// also starts the admin listener (startAdmin).
func serveOn(ctx context.Context, cfg Config, st *stack, ln net.Listener, h http.Handler) error {
	stopAdmin, err := startAdmin(cfg, st)
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var loops sync.WaitGroup
	loops.Go(func() { st.keys.Run(ctx) })
	for _, run := range st.background {
		loops.Go(func() { run(ctx) })
	}
	loops.Go(func() { st.provider.RunBackchannelLogout(ctx, holderName()) })
	loops.Go(func() {
		storage.RunJanitor(ctx, st.store, cfg.Storage.JanitorInterval, cfg.Events.Retention, holderName(), st.log.With("component", "janitor"))
	})
	defer loops.Wait() // after cancel: the loops stop before storage closes

	srv := newServer(h, st.log)
	st.log.Info("listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "tls", cfg.HTTP.TLSCert != "")
	errc := make(chan error, 1)
	go func() {
		if cfg.HTTP.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var failed error
	select {
	case failed = <-errc:
	case <-ctx.Done():
	}
	st.log.Info("shutting down", "timeout", cfg.HTTP.ShutdownTimeout.String())
	sctx, scancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer scancel()
	adminErr := stopAdmin(sctx)
	if failed != nil {
		return errors.Join(failed, adminErr)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return errors.Join(fmt.Errorf("shutdown: %w", err), adminErr)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(err, adminErr)
	}
	return adminErr
}

// newServer returns an http.Server with wxoidc's timeouts.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}
