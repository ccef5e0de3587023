package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wxoidc/wxoidc/provider"
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
		fs.BoolVar(&f.rotate, "rotate-secret", false, "generate a new client secret (printed once; the old one stops working)")
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
	af := &adminFlags{getenv: getenv}
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "Manage OAuth 2.0 clients in the configured storage, or through the admin API with --admin",
	}
	af.register(cmd)

	var cf clientFlags
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints its client_id and, once, its secret",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var out provider.ClientMetadata
				if err := a.call(c.Context(), http.MethodPost, "/admin/clients", cf.m, &out); err != nil {
					return fmt.Errorf("create client: %w", err)
				}
				return printJSON(stdout, out)
			})
		},
	}
	cf.register(create.Flags(), true)

	var uf clientFlags
	update := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "Change a client's metadata (only the flags given); a client made confidential gets a new secret, printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				path := "/admin/clients/" + url.PathEscape(args[0])
				var m provider.ClientMetadata
				if err := a.call(c.Context(), http.MethodGet, path, nil, &m); err != nil {
					return fmt.Errorf("client %s: %w", args[0], err)
				}
				uf.apply(c.Flags(), &m)
				m.ClientIDIssuedAt, m.ClientSecretExpiresAt = 0, nil
				var out provider.ClientMetadata
				if err := a.call(c.Context(), http.MethodPut, path, m, &out); err != nil {
					return fmt.Errorf("update client %s: %w", args[0], err)
				}
				if uf.rotate && out.ClientSecret == "" {
					if err := a.call(c.Context(), http.MethodPost, path+"/secret", struct{}{}, &out); err != nil {
						return fmt.Errorf("rotate secret of %s: %w", args[0], err)
					}
				}
				return printJSON(stdout, out)
			})
		},
	}
	uf.register(update.Flags(), false)

	list := &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var out struct {
					Clients []provider.ClientMetadata `json:"clients"`
				}
				if err := a.call(c.Context(), http.MethodGet, "/admin/clients", nil, &out); err != nil {
					return fmt.Errorf("list clients: %w", err)
				}
				if out.Clients == nil {
					out.Clients = []provider.ClientMetadata{}
				}
				return printJSON(stdout, out.Clients)
			})
		},
	}
	get := &cobra.Command{
		Use: "get CLIENT_ID", Short: "Show a client", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var out provider.ClientMetadata
				if err := a.call(c.Context(), http.MethodGet, "/admin/clients/"+url.PathEscape(args[0]), nil, &out); err != nil {
					return fmt.Errorf("client %s: %w", args[0], err)
				}
				return printJSON(stdout, out)
			})
		},
	}
	del := &cobra.Command{
		Use: "delete CLIENT_ID", Short: "Delete a client", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				if err := a.call(c.Context(), http.MethodDelete, "/admin/clients/"+url.PathEscape(args[0]), nil, nil); err != nil {
					return fmt.Errorf("delete client %s: %w", args[0], err)
				}
				fmt.Fprintf(stdout, "deleted %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, get, update, del, newInitialTokensCommand(af, stdout))
	return cmd
}

// newInitialTokensCommand is `clients initial-tokens`: the initial access
// tokens of Dynamic Client Registration (/admin/initial-access-tokens).
func newInitialTokensCommand(af *adminFlags, stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "initial-tokens",
		Short: "Initial access tokens for Dynamic Client Registration (POST /oauth2/register, registration.enabled)",
	}
	var req struct {
		Description string        `json:"description,omitempty"`
		Uses        int           `json:"uses,omitempty"`
		ExpiresIn   int64         `json:"expires_in,omitempty"`
		ttl         time.Duration // --expires-in
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Issue an initial access token; prints it once (only its hash is stored)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if req.ttl < 0 || req.ttl%time.Second != 0 {
				return fmt.Errorf("--expires-in: %s is not a positive number of whole seconds", req.ttl)
			}
			req.ExpiresIn = int64(req.ttl / time.Second)
			return af.run(c.Context(), func(a *adminClient) error {
				var out map[string]any
				if err := a.call(c.Context(), http.MethodPost, "/admin/initial-access-tokens", req, &out); err != nil {
					return fmt.Errorf("create initial access token: %w", err)
				}
				return printJSON(stdout, out)
			})
		},
	}
	create.Flags().StringVar(&req.Description, "description", "", "who the token is for")
	create.Flags().IntVar(&req.Uses, "uses", 1, "how many clients it may register")
	create.Flags().DurationVar(&req.ttl, "expires-in", 24*time.Hour, "lifetime, e.g. 24h (at most 8760h)")
	list := &cobra.Command{
		Use: "list", Short: "List initial access tokens (never the tokens themselves)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				var out struct {
					Tokens []map[string]any `json:"initial_access_tokens"`
				}
				if err := a.call(c.Context(), http.MethodGet, "/admin/initial-access-tokens", nil, &out); err != nil {
					return fmt.Errorf("list initial access tokens: %w", err)
				}
				if out.Tokens == nil {
					out.Tokens = []map[string]any{}
				}
				return printJSON(stdout, out.Tokens)
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke an initial access token (clients it registered stay)", Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return af.run(c.Context(), func(a *adminClient) error {
				if err := a.call(c.Context(), http.MethodDelete, "/admin/initial-access-tokens/"+url.PathEscape(args[0]), nil, nil); err != nil {
					return fmt.Errorf("revoke initial access token %s: %w", args[0], err)
				}
				fmt.Fprintf(stdout, "revoked %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
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
