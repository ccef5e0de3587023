package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// checkDeployment is serve --check: what serve validates before it
// listens, without writing anything. cfg has passed Validate. It reads the
// TLS key pair, opens the storage read-only (a SQLite file that does not
// exist yet must be creatable), checks that the system secret opens the
// stored signing keys and that stored clients can be signed for, and
// composes the provider and the web login. It writes what it checked to
// out.
func checkDeployment(ctx context.Context, cfg Config, migrate bool, out io.Writer) error {
	secret, err := cfg.secret()
	if err != nil {
		return err
	}
	if cfg.HTTP.TLSCert != "" {
		if _, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey); err != nil {
			return fmt.Errorf("http.tls_cert, http.tls_key: %w", err)
		}
	}
	store, note, err := openReadOnly(ctx, cfg.Storage.DSN)
	if err != nil {
		return fmt.Errorf("storage.dsn: %w", err)
	}
	fmt.Fprintf(out, "storage %s: %s\n", redactDSN(cfg.Storage.DSN), note)
	empty := store == nil // nothing stored yet: check against an empty store
	if empty {
		store = memory.New()
	}
	defer store.Close()
	log := slog.New(slog.DiscardHandler)
	km, err := newKeyManager(cfg, store, secret, log)
	if err != nil {
		return err
	}
	if !empty {
		if err := checkStored(ctx, cfg, store, km, migrate); err != nil {
			return err
		}
		fmt.Fprintln(out, "system secret: opens the stored signing keys")
	}
	apps, err := wechatApps(cfg, store, secret, holderName(), log)
	if err != nil {
		return err
	}
	var auth provider.Authenticator
	if hasWebLoginApp(apps) || scanConfig(cfg) != nil {
		wl, err := weblogin.New(weblogin.Config{Issuer: cfg.Issuer, Storage: store, WeChatApps: apps, Secret: secret, Scan: scanConfig(cfg), Dev: cfg.dev})
		if err != nil {
			return err
		}
		auth = wl
	}
	if _, err := provider.New(provider.Config{
		Issuer: cfg.Issuer, Secret: secret, Storage: store, Keys: km, Authenticator: auth, WeChatApps: apps,
		GrantLimitPerClient: provider.RateLimit(cfg.RateLimit.WeChatGrant.PerClient),
		GrantLimitPerIP:     provider.RateLimit(cfg.RateLimit.WeChatGrant.PerIP),
		AccessTokenFormat:   cfg.AccessToken.Format, AccessTokenAlg: cfg.AccessToken.Alg,
		AccessTokenLifespan: cfg.AccessToken.Lifespan, IDTokenLifespan: cfg.IDToken.Lifespan,
		RefreshTokenLifespan: cfg.RefreshToken.Lifespan, AuthorizeCodeLifespan: cfg.AuthorizeCode.Lifespan,
		DeviceCodeLifespan: cfg.Device.CodeLifespan, DevicePollInterval: cfg.Device.Interval,
		Dev: cfg.dev,
	}); err != nil {
		return err
	}
	return nil
}

// checkStored checks what the storage holds against cfg: the secret opens
// the signing keys, and every client's ID-token algorithm has a key. When
// serve would migrate, a schema not yet applied is not a failure.
func checkStored(ctx context.Context, cfg Config, store storage.Storage, km *keys.Manager, migrate bool) error {
	if _, err := store.SigningKeys(ctx); err != nil {
		if migrate {
			return nil // serve applies the schema first; nothing is stored yet
		}
		return fmt.Errorf("storage.dsn: cannot read the signing keys (storage.migrate is false: apply the schema with wxoidc migrate): %w", err)
	}
	if err := km.CheckSecret(ctx); err != nil {
		return fmt.Errorf("secret: %w: use the secret this deployment was started with", err)
	}
	return checkStoredClients(ctx, store, keys.KeptAlgorithms(cfg.Keys.Algorithms))
}

// checkWritableDir reports whether a file can be created in dir, the way
// serve will create the database there: it creates and removes an empty
// file (portable, unlike access(2), which Windows lacks).
func checkWritableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".wxoidc-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// openReadOnly opens the storage of dsn without writing to it and says
// what it found. It returns a nil store when nothing is stored yet (memory
// storage, or a SQLite file serve will create).
func openReadOnly(ctx context.Context, dsn string) (storage.Storage, string, error) {
	scheme, err := backendOf(dsn)
	if err != nil {
		return nil, "", err
	}
	switch scheme {
	case "memory":
		return nil, "in memory (starts empty)", nil
	case "sqlite":
		path, err := sqlite.ParseDSN(dsn)
		if err != nil {
			return nil, "", err
		}
		s, err := sqlite.OpenReadOnly(ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			dir := filepath.Dir(path)
			if err := checkWritableDir(dir); err != nil {
				return nil, "", fmt.Errorf("the database %s does not exist and its directory %s is not writable: %w (create the directory, or point storage.dsn elsewhere)", path, dir, err)
			}
			return nil, fmt.Sprintf("%s does not exist yet; serve will create it", path), nil
		}
		if err != nil {
			return nil, "", err
		}
		return s, "opened read-only", nil
	default:
		s, err := postgres.Open(ctx, dsn, postgres.Options{ReadOnly: true, MaxConns: 2})
		if err != nil {
			return nil, "", err
		}
		return s, "connected (read-only transactions)", nil
	}
}
