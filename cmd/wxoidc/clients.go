package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// clientFlags are the client metadata flags of `clients create` and
// `clients update`.
type clientFlags struct {
	m      provider.ClientMetadata
	rotate bool
}

func (f *clientFlags) register(fs *pflag.FlagSet, create bool) {
	if create {
		fs.StringVar(&f.m.ClientID, "id", "", "client_id (default: generated)")
	}
	fs.StringVar(&f.m.ClientName, "name", "", "client_name")
	fs.StringArrayVar(&f.m.RedirectURIs, "redirect-uri", nil, "redirect_uris entry (repeatable)")
	fs.StringArrayVar(&f.m.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "post_logout_redirect_uris entry (repeatable)")
	fs.StringArrayVar(&f.m.GrantTypes, "grant-type", nil, "grant_types entry (repeatable; default authorization_code)")
	fs.StringArrayVar(&f.m.ResponseTypes, "response-type", nil, "response_types entry (repeatable; default code)")
	fs.StringVar(&f.m.Scope, "scope", "", `space-separated scopes the client may ask for, e.g. "openid profile offline_access"`)
	fs.StringArrayVar(&f.m.Audience, "audience", nil, "allowed audience (repeatable)")
	fs.StringVar(&f.m.TokenEndpointAuthMethod, "auth-method", "", "token_endpoint_auth_method: client_secret_basic (default), client_secret_post or none (public)")
	fs.StringVar(&f.m.IDTokenSignedResponseAlg, "id-token-alg", "", "id_token_signed_response_alg: RS256 (default), ES256 or EdDSA")
	fs.StringVar(&f.m.WeChatAppID, "wechat-appid", "", "WeChat Mini Program appid (for the WeChat grant)")
	fs.BoolVar(&f.m.SkipConsent, "skip-consent", false, "first-party client: no consent screen")
	if !create {
		fs.BoolVar(&f.rotate, "rotate-secret", false, "generate a new client secret (printed once)")
	}
}

// apply copies the flags that were set onto m.
func (f *clientFlags) apply(fs *pflag.FlagSet, m *provider.ClientMetadata) {
	set := func(name string, fn func()) {
		if fs.Changed(name) {
			fn()
		}
	}
	set("name", func() { m.ClientName = f.m.ClientName })
	set("redirect-uri", func() { m.RedirectURIs = f.m.RedirectURIs })
	set("post-logout-redirect-uri", func() { m.PostLogoutRedirectURIs = f.m.PostLogoutRedirectURIs })
	set("grant-type", func() { m.GrantTypes = f.m.GrantTypes })
	set("response-type", func() { m.ResponseTypes = f.m.ResponseTypes })
	set("scope", func() { m.Scope = f.m.Scope })
	set("audience", func() { m.Audience = f.m.Audience })
	set("auth-method", func() { m.TokenEndpointAuthMethod = f.m.TokenEndpointAuthMethod })
	set("id-token-alg", func() { m.IDTokenSignedResponseAlg = f.m.IDTokenSignedResponseAlg })
	set("wechat-appid", func() { m.WeChatAppID = f.m.WeChatAppID })
	set("skip-consent", func() { m.SkipConsent = f.m.SkipConsent })
}

func newClientsCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{Use: "clients", Short: "Manage OAuth 2.0 clients in the configured storage"}
	cmd.PersistentFlags().StringVar(&configPath, "config", "", "YAML configuration file")

	// withStore runs fn on the configured storage.
	withStore := func(ctx context.Context, fn func(s storage.Storage, secret []byte, dev bool) error) error {
		cfg, err := loadConfig(configPath, getenv)
		if err != nil {
			return err
		}
		secret, err := cfg.secret()
		if err != nil {
			return err
		}
		if len(secret) < 32 {
			return fmt.Errorf("secret: must be at least 32 bytes (client secrets are hashed with it)")
		}
		s, err := openStorage(ctx, cfg.Storage.DSN, true)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(s, secret, strings.HasPrefix(cfg.Issuer, "http://"))
	}

	var cf clientFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints its client_id and, once, its secret",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withStore(c.Context(), func(s storage.Storage, secret []byte, dev bool) error {
				m := cf.m
				if m.ClientID == "" {
					m.ClientID = randomSecret(12)
				}
				client, err := m.Client(dev, time.Now().UTC())
				if err != nil {
					return err
				}
				out := provider.Metadata(client)
				if !client.IsPublic() {
					plain := provider.NewClientSecret()
					client.SecretHash = provider.HashClientSecret(secret, plain)
					out.ClientSecret = plain
					zero := int64(0)
					out.ClientSecretExpiresAt = &zero
				}
				if err := s.CreateClient(c.Context(), client); err != nil {
					return fmt.Errorf("create client %s: %w", client.ID, err)
				}
				return printJSON(stdout, out)
			})
		},
	}
	cf.register(create.Flags(), true)

	var uf clientFlags
	update := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "Change a client's metadata (only the flags given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c.Context(), func(s storage.Storage, secret []byte, dev bool) error {
				var plain string
				if uf.rotate {
					plain = provider.NewClientSecret()
				}
				var updated storage.Client
				err := s.UpdateClient(c.Context(), args[0], func(old storage.Client) (storage.Client, error) {
					m := provider.Metadata(old)
					uf.apply(c.Flags(), &m)
					n, err := m.Client(dev, old.CreatedAt)
					if err != nil {
						return storage.Client{}, err
					}
					n.UpdatedAt = time.Now().UTC()
					n.SecretHash = old.SecretHash
					if plain != "" {
						n.SecretHash = provider.HashClientSecret(secret, plain)
					}
					if n.IsPublic() {
						n.SecretHash = nil
					} else if len(n.SecretHash) == 0 {
						return storage.Client{}, fmt.Errorf("a confidential client needs a secret: add --rotate-secret")
					}
					updated = n
					return n, nil
				})
				if err != nil {
					return fmt.Errorf("update client %s: %w", args[0], err)
				}
				out := provider.Metadata(updated)
				if plain != "" && !updated.IsPublic() {
					out.ClientSecret = plain
				}
				return printJSON(stdout, out)
			})
		},
	}
	uf.register(update.Flags(), false)

	list := &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return withStore(c.Context(), func(s storage.Storage, _ []byte, _ bool) error {
				cs, err := s.ListClients(c.Context())
				if err != nil {
					return err
				}
				out := make([]provider.ClientMetadata, 0, len(cs))
				for _, cl := range cs {
					out = append(out, provider.Metadata(cl))
				}
				return printJSON(stdout, out)
			})
		},
	}
	get := &cobra.Command{
		Use: "get CLIENT_ID", Short: "Show a client", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c.Context(), func(s storage.Storage, _ []byte, _ bool) error {
				cl, err := s.Client(c.Context(), args[0])
				if err != nil {
					return fmt.Errorf("client %s: %w", args[0], err)
				}
				return printJSON(stdout, provider.Metadata(cl))
			})
		},
	}
	del := &cobra.Command{
		Use: "delete CLIENT_ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return withStore(c.Context(), func(s storage.Storage, _ []byte, _ bool) error {
				if err := s.DeleteClient(c.Context(), args[0]); err != nil {
					return fmt.Errorf("delete client %s: %w", args[0], err)
				}
				fmt.Fprintf(stdout, "deleted %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, get, update, del)
	return cmd
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
