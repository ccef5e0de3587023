package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

func newServeCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var (
		configPath string
		check      bool
		noMigrate  bool
		addr       string
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
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			if check {
				fmt.Fprintln(stdout, "configuration OK")
				return nil
			}
			log := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
			migrate := !noMigrate && (cfg.Storage.Migrate == nil || *cfg.Storage.Migrate)
			return serve(cmd.Context(), cfg, migrate, log, nil)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration file")
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration and exit")
	cmd.Flags().BoolVar(&noMigrate, "no-migrate", false, "do not apply the storage schema at start")
	cmd.Flags().StringVar(&addr, "addr", "", "public listen address (overrides http.addr)")
	return cmd
}

// stack is everything a running provider is made of.
type stack struct {
	store    storage.Storage
	keys     *keys.Manager
	provider *provider.Provider
	log      *slog.Logger
}

// buildStack opens storage, loads keys, registers config clients and
// composes the provider. auth may be nil (no login method).
func buildStack(ctx context.Context, cfg Config, migrate bool, log *slog.Logger, auth provider.Authenticator) (*stack, error) {
	secret, err := cfg.secret()
	if err != nil {
		return nil, err
	}
	store, err := openStorage(ctx, cfg.Storage.DSN, migrate)
	if err != nil {
		return nil, err
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
	apps, err := wechatApps(cfg, store, secret, holderName(), log)
	if err != nil {
		store.Close()
		return nil, err
	}
	p, err := provider.New(provider.Config{
		Issuer:                cfg.Issuer,
		Secret:                secret,
		Storage:               store,
		Keys:                  km,
		Authenticator:         auth,
		WeChatApps:            apps,
		AccessTokenFormat:     cfg.AccessToken.Format,
		AccessTokenAlg:        cfg.AccessToken.Alg,
		AccessTokenLifespan:   cfg.AccessToken.Lifespan,
		IDTokenLifespan:       cfg.IDToken.Lifespan,
		RefreshTokenLifespan:  cfg.RefreshToken.Lifespan,
		AuthorizeCodeLifespan: cfg.AuthorizeCode.Lifespan,
		Dev:                   cfg.dev,
		Logger:                log.With("component", "provider"),
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &stack{store: store, keys: km, provider: p, log: log}, nil
}

// serve runs the provider until ctx ends, then shuts down gracefully.
// extra, when set, wraps the provider's handler (dev mounts more routes).
func serve(ctx context.Context, cfg Config, migrate bool, log *slog.Logger, wrap func(*stack, http.Handler) http.Handler) error {
	st, err := buildStack(ctx, cfg, migrate, log, nil)
	if err != nil {
		return err
	}
	defer st.store.Close()
	log.Warn("no login method is configured: /oauth2/authorize answers every request with temporarily_unavailable; the token endpoint works")
	h := st.provider.Handler()
	if wrap != nil {
		h = wrap(st, h)
	}
	return listenAndServe(ctx, cfg, st, h)
}

// listenAndServe runs the background loops and the HTTP server until ctx
// ends.
func listenAndServe(ctx context.Context, cfg Config, st *stack, h http.Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go st.keys.Run(ctx)
	go storage.RunJanitor(ctx, st.store, cfg.Storage.JanitorInterval, holderName(), st.log.With("component", "janitor"))

	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(st.log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	st.log.Info("listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "tls", cfg.HTTP.TLSCert != "")
	errc := make(chan error, 1)
	go func() {
		if cfg.HTTP.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	st.log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
