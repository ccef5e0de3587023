package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wxoidc/wxoidc/cmd/wxoidc/demo"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// Dev defaults (SPEC §9): docs and tests name these.
const (
	devMiniProgramAppID = "wxd0000000000000a1"
	devWebsiteAppID     = "wxd0000000000000b2"
	devOfficialAppID    = "wxd0000000000000c3"
	devMiniClient       = "demo-miniprogram"
	devWebClient        = "demo-web"
	devWebSecret        = "demo-web-secret"
	devSimPrefix        = "/wechat-sim"
	devPushToken        = "devpushtoken"
	devDeviceClient     = "demo-device"
	devScanPage         = "pages/scan/index"
)

type devOptions struct {
	addr, data, wechatAPI, wechatOpen, config string
	adminAddr, adminToken                     string
	// allowNonLoopback lets --addr listen beyond this machine.
	allowNonLoopback bool
}

func newDevCommand(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything on this machine: provider, SQLite, WeChat simulator, demo clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), o, getenv, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address; the issuer is http://ADDR")
	f.StringVar(&o.data, "data", "./wxoidc-data", "directory for the SQLite database and the generated system secret")
	f.StringVar(&o.wechatAPI, "wechat-api", "", "WeChat API base URL (default: the built-in simulator at /wechat-sim)")
	f.StringVar(&o.wechatOpen, "wechat-open", "", "WeChat open-platform base URL (default: the built-in simulator)")
	f.StringVar(&o.config, "config", "", "YAML file overlaid on the dev configuration")
	f.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:8081", "admin API listen address")
	f.StringVar(&o.adminToken, "admin-token", "", "admin API bearer token")
	f.BoolVar(&o.allowNonLoopback, "allow-non-loopback", false, "listen on a non-loopback --addr although dev mounts the WeChat simulator and prints secrets")
	return cmd
}

// devConfig is the configuration of `wxoidc dev` before --config and the
// environment overlay it.
func devConfig(o devOptions, secret string) (Config, error) {
	data, err := filepath.Abs(o.data)
	if err != nil {
		return Config{}, err
	}
	c := defaultConfig()
	c.dev = true
	c.Issuer = "http://" + o.addr
	c.Secret = secret
	c.HTTP.Addr = o.addr
	c.Admin.Addr = o.adminAddr
	c.Admin.Token = o.adminToken
	c.Storage.DSN = "sqlite://" + filepath.Join(data, "wxoidc.db")
	c.Log.Format = "text"
	c.AccessToken.Alg = "ES256"
	c.WeChat.APIBase = c.Issuer + devSimPrefix
	c.WeChat.OpenBase = c.Issuer + devSimPrefix
	if o.wechatAPI != "" {
		c.WeChat.APIBase = o.wechatAPI
	}
	if o.wechatOpen != "" {
		c.WeChat.OpenBase = o.wechatOpen
	}
	c.WeChat.Apps = []WeChatApp{
		{AppID: devMiniProgramAppID, Secret: "dev-miniprogram-secret", Kind: "miniprogram",
			ScanLogin: ScanLoginConfig{Page: devScanPage}},
		{AppID: devWebsiteAppID, Secret: "dev-website-secret", Kind: "website"},
		{AppID: devOfficialAppID, Secret: "dev-official-secret", Kind: "official",
			Push:        PushConfig{Token: devPushToken},
			FollowLogin: FollowLoginConfig{Reply: "已登录 {client} / Signed in to {client}"}},
	}
	all := strings.Join(provider.KnownScopes, " ")
	c.Clients = []ClientConfig{
		{
			ClientID: devMiniClient, ClientName: "Demo Mini Program", TokenEndpointAuthMethod: "none",
			GrantTypes: []string{provider.GrantTypeWeChat, "refresh_token"}, Scope: all,
			WeChatAppID: devMiniProgramAppID, IDTokenSignedResponseAlg: "ES256",
		},
		{
			ClientID: devWebClient, ClientSecret: devWebSecret, ClientName: "Demo web app",
			TokenEndpointAuthMethod: "client_secret_basic", GrantTypes: []string{"authorization_code", "refresh_token", provider.GrantTypeDeviceCode},
			ResponseTypes: []string{"code"}, Scope: all, SkipConsent: true, IDTokenSignedResponseAlg: "ES256",
			RedirectURIs: []string{c.Issuer + "/demo/callback"}, PostLogoutRedirectURIs: []string{c.Issuer + "/demo"},
		},
		{
			ClientID: devDeviceClient, ClientName: "Demo device", TokenEndpointAuthMethod: "none",
			GrantTypes: []string{provider.GrantTypeDeviceCode}, Scope: all,
		},
	}
	return c, nil
}

// devSecret returns the system secret kept in the data directory, creating
// it on first run, so a restart keeps tokens and encrypted keys valid.
func devSecret(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "secret")
	b, err := os.ReadFile(path)
	if err == nil {
		return string(bytes.TrimSpace(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	s := randomSecret(32)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

func runDev(ctx context.Context, o devOptions, getenv func(string) string, stdout, stderr io.Writer) error {
	// dev serves the WeChat simulator (anyone reaching it can sign in as
	// any test user) and prints secrets: a laptop's loopback only, unless
	// asked for explicitly.
	if !loopbackAddr(o.addr) && !o.allowNonLoopback {
		return fmt.Errorf("dev: --addr %s is not a loopback address; dev mounts the WeChat simulator and prints secrets, so it listens on this machine only (use 127.0.0.1:PORT, or --allow-non-loopback to expose it anyway)", o.addr)
	}
	secret, err := devSecret(o.data)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", o.data, err)
	}
	if err := tightenDataDir(o.data); err != nil {
		return fmt.Errorf("data directory %s: %w", o.data, err)
	}
	base, err := devConfig(o, secret)
	if err != nil {
		return err
	}
	cfg, err := loadConfigOver(base, o.config, getenv)
	if err != nil {
		return err
	}
	cfg.dev = true
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(stderr, cfg.Log.Format, cfg.Log.Level)
	stopTracing, err := startTracing(ctx, &cfg, getenv, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	st, err := buildStack(ctx, cfg, true, log, nil)
	if err != nil {
		return err
	}
	defer st.store.Close()

	var sim *wechattest.Server
	if o.wechatAPI == "" || o.wechatOpen == "" {
		sim = wechattest.New(wechattest.Config{AnyUserAgent: true, Logger: log.With("component", "wechat-sim")})
	}
	mux, err := devMux(cfg, st, sim, cfg.Issuer)
	if err != nil {
		return err
	}
	printDevBanner(stdout, cfg)
	return listenAndServe(ctx, cfg, st, mux)
}

// devMux serves what `wxoidc dev` serves: the simulator at /wechat-sim/
// (when sim is set), the demo relying party at /demo and the provider.
// The simulator pushes the official accounts' events to pushBase's
// /wechat/events/{appid}, signed (and encrypted) as cfg says.
func devMux(cfg Config, st *stack, sim *wechattest.Server, pushBase string) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	if sim != nil {
		follows, err := followConfigs(cfg)
		if err != nil {
			return nil, err
		}
		for _, f := range follows {
			push := wechattest.Push{URL: pushBase + "/wechat/events/" + f.AppID, Token: f.Token, Mode: f.Mode, EncodingAESKey: f.EncodingAESKey}
			if err := sim.SetPush(f.AppID, push); err != nil {
				return nil, err
			}
		}
		mux.Handle(devSimPrefix+"/", http.StripPrefix(devSimPrefix, sim))
		if sc := scanConfig(cfg); sc != nil {
			mux.Handle(devMiniProgramPath, &devMiniProgram{
				sim: sim, provider: st.provider.Handler(), store: st.store, issuer: cfg.Issuer,
				appID: sc.AppID, clientID: devMiniClient, users: []string{"alice", "bob", "carol"},
			})
		}
	}
	d, err := demo.New(demo.Config{Issuer: cfg.Issuer, ClientID: devWebClient, ClientSecret: devWebSecret})
	if err != nil {
		return nil, err
	}
	mux.Handle("/demo", d)
	mux.Handle("/demo/", d)
	mux.Handle("/", st.provider.Handler())
	return mux, nil
}

func printDevBanner(w io.Writer, cfg Config) {
	iss := cfg.Issuer
	fmt.Fprintf(w, `
wxoidc dev is running.

  issuer          %[1]s
  discovery       %[1]s/.well-known/openid-configuration
  WeChat          %[2]s/sim/ (the simulator: test users, QR pages)
  Mini Program    client_id %[3]s (public; appid %[4]s)
  web app         client_id %[5]s, secret %[6]s

Sign in on the web: open %[1]s/demo and pick a test user on the
simulator's QR page. To follow the official account instead, pick
"Follow the official account" and scan its code as a test user at
%[2]s/sim/oa-scan.

Scan to sign in: on the login page pick "Scan with the Mini Program",
then play the Mini Program at %[1]s%[8]s and approve as alice.

Try the device flow (RFC 8628) as client %[9]s:

  curl -s %[1]s/oauth2/device/authorize -d client_id=%[9]s -d 'scope=openid profile'
  # open verification_uri_complete (or approve at %[1]s%[8]s), then:
  curl -s %[1]s/oauth2/token -d grant_type=%[10]s \
    -d client_id=%[9]s -d device_code=<device_code>

Try the Mini Program grant:

  # 1. wx.login() for test user alice, at the WeChat simulator
  code=$(curl -s -X POST %[2]s/sim/login -d appid=%[4]s -d user=alice | sed -E 's/.*"code":"([^"]+)".*/\1/')

  # 2. trade the code for tokens
  tokens=$(curl -s %[1]s/oauth2/token \
    -d grant_type=%[7]s \
    -d client_id=%[3]s -d js_code=$code \
    -d 'scope=openid offline_access phone wechat'); echo "$tokens"

  # 3. who is signed in
  at=$(echo "$tokens" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  curl -s %[1]s/userinfo -H "Authorization: Bearer $at"

  # 4. new tokens from the refresh token
  rt=$(echo "$tokens" | sed -E 's/.*"refresh_token":"([^"]+)".*/\1/')
  curl -s %[1]s/oauth2/token -d grant_type=refresh_token -d client_id=%[3]s -d refresh_token=$rt
%[11]s
`, iss, cfg.WeChat.APIBase, devMiniClient, devMiniProgramAppID, devWebClient, devWebSecret, provider.GrantTypeWeChat,
		devMiniProgramPath, devDeviceClient, provider.GrantTypeDeviceCode, devAdminLines(cfg))
}

// devAdminLines are the banner's admin API commands, when it listens.
func devAdminLines(cfg Config) string {
	if !cfg.adminEnabled() {
		return ""
	}
	token := ""
	if cfg.Admin.Token != "" {
		token = "WXOIDC_ADMIN_TOKEN=<the --admin-token> "
	}
	return fmt.Sprintf(`
Manage clients and keys through the admin API at http://%[1]s:

  %[2]swxoidc clients --admin http://%[1]s list
  %[2]swxoidc keys --admin http://%[1]s list
`, cfg.Admin.Addr, token)
}
