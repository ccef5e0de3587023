package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
	"github.com/wxoidc/wxoidc/storage/postgres"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// backends maps a DSN scheme to the function that opens it (style S6: the
// command owns the registry, no init()).
var backends = map[string]func(ctx context.Context, dsn string) (storage.Storage, error){
	"memory": func(context.Context, string) (storage.Storage, error) { return memory.New(), nil },
	"sqlite": func(ctx context.Context, dsn string) (storage.Storage, error) {
		path, err := sqlite.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, path)
	},
	"postgres":   openPostgres,
	"postgresql": openPostgres, // libpq's other spelling
}

// openPostgres opens a PostgreSQL DSN; the pool size and timeouts come from
// its parameters (pool_max_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time, statement_timeout).
func openPostgres(ctx context.Context, dsn string) (storage.Storage, error) {
	return postgres.Open(ctx, dsn, postgres.Options{})
}

// migrator is implemented by backends with a schema.
type migrator interface {
	Migrate(ctx context.Context) error
}

func backendOf(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%q is not a DSN (memory://, sqlite:///path/file.db, postgres://user@host/db)", redactDSN(dsn))
	}
	if _, ok := backends[u.Scheme]; !ok {
		return "", fmt.Errorf("unknown storage %q (memory, sqlite, postgres)", u.Scheme)
	}
	return u.Scheme, nil
}

// redactDSN hides a password in a DSN before it is shown.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparsable DSN>"
	}
	return u.Redacted()
}

// openStorage opens the configured backend and, when migrate is set,
// applies its schema.
func openStorage(ctx context.Context, dsn string, migrate bool) (storage.Storage, error) {
	scheme, err := backendOf(dsn)
	if err != nil {
		return nil, err
	}
	s, err := backends[scheme](ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", redactDSN(dsn), err)
	}
	if m, ok := s.(migrator); ok && migrate {
		if err := m.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("migrate storage: %w", err)
		}
	}
	return s, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newKeyManager builds the key manager of cfg on s.
func newKeyManager(cfg Config, s storage.Storage, secret []byte, log *slog.Logger) (*keys.Manager, error) {
	return keys.New(s, keys.Config{
		Secret:          secret,
		Algorithms:      cfg.Keys.Algorithms,
		PublishDelay:    cfg.Keys.PublishDelay,
		Retention:       cfg.Keys.Retention,
		RotationPeriod:  cfg.Keys.RotationPeriod,
		RefreshInterval: cfg.Keys.RefreshInterval,
		Logger:          log,
	})
}

// syncConfigClients creates or updates the clients declared in the config
// file. A declared client_secret is stored hashed; a client declared
// without one keeps the secret it has.
func syncConfigClients(ctx context.Context, cfg Config, s storage.Storage, secret []byte) error {
	now := time.Now().UTC()
	for i, cc := range cfg.Clients {
		c, err := cc.metadata().Client(cfg.dev, now)
		if err != nil {
			return fmt.Errorf("clients[%d] (%s): %w", i, cc.ClientID, err)
		}
		plain := cc.ClientSecret
		if cc.ClientSecretEnv != "" {
			plain = os.Getenv(cc.ClientSecretEnv)
		}
		if !c.IsPublic() && plain != "" {
			c.SecretHash = provider.HashClientSecret(secret, plain)
		}
		err = s.CreateClient(ctx, c)
		if errors.Is(err, storage.ErrAlreadyExists) {
			err = s.UpdateClient(ctx, c.ID, func(old storage.Client) (storage.Client, error) {
				n := c.Clone()
				n.CreatedAt = old.CreatedAt
				if len(n.SecretHash) == 0 {
					n.SecretHash = old.SecretHash
				}
				return n, nil
			})
		}
		if err != nil {
			return fmt.Errorf("clients[%d] (%s): %w", i, cc.ClientID, err)
		}
		if !c.IsPublic() && plain == "" {
			if stored, err := s.Client(ctx, c.ID); err == nil && len(stored.SecretHash) == 0 {
				return fmt.Errorf("clients[%d] (%s): a confidential client needs client_secret or client_secret_env", i, cc.ClientID)
			}
		}
	}
	return nil
}

// checkStoredClients refuses clients that ask for ID tokens signed with an
// algorithm the provider keeps no key for (after keys.algorithms changed,
// say): they could never sign in.
func checkStoredClients(ctx context.Context, s storage.ClientStore, kept []string) error {
	cs, err := s.ListClients(ctx)
	if err != nil {
		return fmt.Errorf("list clients: %w", err)
	}
	var errs []error
	for _, c := range cs {
		if err := provider.CheckClientAlg(c, kept); err != nil {
			errs = append(errs, fmt.Errorf("client %s: %w (or: wxoidc clients update %s --id-token-alg %s)", c.ID, err, c.ID, kept[0]))
		}
	}
	return errors.Join(errs...)
}

// holderName identifies this process in leases.
func holderName() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", h, os.Getpid(), strings.ToLower(randomSecret(6)))
}
