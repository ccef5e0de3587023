package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage"
)

// configSource says which configuration a command used, for its messages.
func configSource(path string) string {
	if path == "" {
		return "no config file (--config not given: built-in defaults and WXOIDC_* environment variables)"
	}
	return "config " + path
}

// fixHint is how to point a CLI command at a deployment.
const fixHint = "Point the command at your deployment with --config FILE (the file serve runs with), " +
	"or at a running provider's admin API with --admin URL."

// cliError is a failure of a command that works on a deployment, with what
// it used and how to point it elsewhere.
type cliError struct {
	err    error
	source string // configSource
	hint   string
}

func (e *cliError) Error() string {
	return fmt.Sprintf("%v\n(used %s)\n%s", e.err, e.source, e.hint)
}

func (e *cliError) Unwrap() error { return e.err }

// local is the deployment a CLI command works on directly: its storage and
// signing keys, as the config at configPath describes them.
type local struct {
	cfg    Config
	store  storage.Storage
	keys   *keys.Manager
	secret []byte
}

// openLocal opens the deployment of configPath for a CLI command: storage
// (migrated, as serve would), the key manager, and a check that the system
// secret is the deployment's, so that nothing made with a wrong secret (a
// client secret that could never authenticate) is written. Like serve's
// first start, it creates the signing keys of a deployment that has none:
// they are the deployment's check value of the secret (keys.CheckSecret). Its errors name
// the config used and how to fix it.
func openLocal(ctx context.Context, configPath string, getenv func(string) string) (*local, error) {
	fail := func(err error) error { return &cliError{err: err, source: configSource(configPath), hint: fixHint} }
	cfg, err := loadConfig(configPath, getenv)
	if err != nil {
		return nil, fail(err)
	}
	secret, err := cfg.secret()
	if err != nil {
		return nil, fail(err)
	}
	if len(secret) < keys.MinSecretLength {
		return nil, fail(fmt.Errorf("secret: the system secret is %d bytes, want at least %d (set secret, secret_file or WXOIDC_SECRET)", len(secret), keys.MinSecretLength))
	}
	s, err := openStorage(ctx, cfg.Storage.DSN, true)
	if err != nil {
		return nil, fail(fmt.Errorf("storage.dsn: %w", err))
	}
	km, err := newKeyManager(cfg, s, secret, newLogger(io.Discard, "text", "error"))
	if err == nil {
		err = km.CheckSecret(ctx)
		if errors.Is(err, keys.ErrWrongSecret) {
			err = fmt.Errorf("%w: use the secret serve runs with for %s", err, redactDSN(cfg.Storage.DSN))
		}
	}
	if err == nil {
		// As at serve's first start: a deployment without keys gets them
		// now, so that its secret is fixed before anything is made with it.
		err = km.Load(ctx)
	}
	if err != nil {
		s.Close()
		return nil, fail(err)
	}
	return &local{cfg: cfg, store: s, keys: km, secret: secret}, nil
}

// admin serves the admin API in process on the local deployment.
func (l *local) admin() (*adminClient, error) {
	return newLocalAdmin(admin.Config{Clients: l.store, Keys: l.keys, Users: l.store, Registrations: l.store, Secret: l.secret, Dev: l.cfg.dev || strings.HasPrefix(l.cfg.Issuer, "http://")})
}

// remoteAdmin is the admin API at adminURL, with the token of the config
// at configPath (admin.token, admin.token_file or WXOIDC_ADMIN_TOKEN).
func remoteAdmin(configPath, adminURL string, getenv func(string) string) (*adminClient, error) {
	cfg, err := loadConfig(configPath, getenv)
	if err != nil {
		return nil, &cliError{err: err, source: configSource(configPath), hint: fixHint}
	}
	token, err := cfg.adminToken()
	if err != nil {
		return nil, &cliError{err: fmt.Errorf("admin.token_file: %w", err), source: configSource(configPath), hint: fixHint}
	}
	return newRemoteAdmin(adminURL, token), nil
}

// adminFlags are the flags of a command that works on the configured
// storage or, with --admin, through the admin API.
type adminFlags struct {
	configPath, adminURL string
	getenv               func(string) string
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.configPath, "config", "", "YAML configuration file")
	cmd.PersistentFlags().StringVar(&f.adminURL, "admin", "", "admin API base URL, e.g. http://127.0.0.1:8081 (token from WXOIDC_ADMIN_TOKEN or admin.token); default: work on the configured storage directly")
}

// run runs fn against the admin API: the remote one, or one in this
// process on the configured storage (one implementation of validation and
// events for both).
func (f *adminFlags) run(ctx context.Context, fn func(a *adminClient) error) error {
	if f.adminURL != "" {
		a, err := remoteAdmin(f.configPath, f.adminURL, f.getenv)
		if err != nil {
			return err
		}
		return fn(a)
	}
	l, err := openLocal(ctx, f.configPath, f.getenv)
	if err != nil {
		return err
	}
	defer l.store.Close()
	a, err := l.admin()
	if err != nil {
		return err
	}
	return fn(a)
}
