package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/provider/console"
	"github.com/wxoidc/wxoidc/storage"
)

// validateConsole checks the console.* keys.
func (c Config) validateConsole() []error {
	if !c.Console.Enabled {
		return nil
	}
	var errs []error
	if c.Console.SessionLifetime <= 0 {
		errs = append(errs, errors.New("console.session_lifetime: must be positive (e.g. 8h)"))
	}
	if c.Console.URL != "" {
		u, err := url.Parse(c.Console.URL)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != console.Prefix || u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("console.url: %q must be an absolute URL ending in %s, e.g. https://admin.example.com%s", c.Console.URL, console.Prefix, console.Prefix))
		case u.Scheme == "http" && !c.dev && !loopbackAddr(net.JoinHostPort(u.Hostname(), "0")):
			errs = append(errs, fmt.Errorf("console.url: %q must use https (http only on a loopback host)", c.Console.URL))
		}
	}
	return errs
}

// consoleURL is where operators reach the console: console.url, else the
// admin listener's own address when it is a loopback one (where nothing
// stands in front of it), else "" (sign-in with WeChat off).
func (c Config) consoleURL(adminAddr net.Addr) string {
	if c.Console.URL != "" {
		return c.Console.URL
	}
	if adminAddr != nil && loopbackAddr(adminAddr.String()) {
		return "http://" + adminAddr.String() + console.Prefix
	}
	return ""
}

// registerConsoleClient creates or updates the console's own OAuth client
// (console.ClientMetadata).
func registerConsoleClient(ctx context.Context, s storage.ClientStore, consoleURL string, dev bool) error {
	c, err := console.ClientMetadata(consoleURL).Client(dev, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("console.url: %w", err)
	}
	err = s.CreateClient(ctx, c)
	if errors.Is(err, storage.ErrAlreadyExists) {
		err = s.UpdateClient(ctx, c.ID, func(old storage.Client) (storage.Client, error) {
			n := c.Clone()
			n.CreatedAt = old.CreatedAt
			return n, nil
		})
	}
	if err != nil {
		return fmt.Errorf("register the console's client %s: %w", console.ClientID, err)
	}
	return nil
}

// consoleHandler builds the console over the admin API h, for the admin
// listener at addr.
func consoleHandler(ctx context.Context, cfg Config, st *stack, api http.Handler, token string, addr net.Addr) (*console.Handler, error) {
	u := cfg.consoleURL(addr)
	if u == "" {
		st.log.Warn("console: sign-in with WeChat is off: admin.addr is not a loopback address and console.url is not set; only the admin token signs in", "addr", cfg.Admin.Addr)
	} else if err := registerConsoleClient(ctx, st.store, u, cfg.dev); err != nil {
		return nil, err
	}
	return console.New(console.Config{
		Issuer:          cfg.Issuer,
		URL:             u,
		Admin:           api,
		AdminToken:      token,
		IssuerHandler:   st.provider.Handler(),
		Secret:          st.secret,
		WeChatApps:      wechatAppList(cfg),
		GrantTypes:      provider.GrantTypes(),
		SessionLifetime: cfg.Console.SessionLifetime,
		Logger:          st.log.With("component", "console"),
	})
}

// wechatAppList lists the configured WeChat apps (no secrets).
func wechatAppList(cfg Config) []admin.WeChatApp {
	out := make([]admin.WeChatApp, 0, len(cfg.WeChat.Apps))
	for _, a := range cfg.WeChat.Apps {
		out = append(out, admin.WeChatApp{AppID: a.AppID, Kind: a.Kind})
	}
	return out
}

// isConsolePath reports whether an admin listener path is the console's.
func isConsolePath(p string) bool {
	return p == strings.TrimSuffix(console.Prefix, "/") || strings.HasPrefix(p, console.Prefix)
}
