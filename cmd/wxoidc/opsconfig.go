package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// adminOff is the admin.addr value that disables the admin listener.
const adminOff = "off"

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 16

// validateOps checks the http.trusted_proxies, http.shutdown_timeout,
// admin.* and console.* keys.
func (c Config) validateOps() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, err := c.trustedProxies(); err != nil {
		bad("http.trusted_proxies", "%v", err)
	}
	if c.HTTP.ShutdownTimeout <= 0 {
		bad("http.shutdown_timeout", "must be positive")
	}
	if !c.adminEnabled() {
		return errs
	}
	errs = append(errs, c.validateConsole()...)
	if _, _, err := net.SplitHostPort(c.Admin.Addr); err != nil {
		bad("admin.addr", "%q is not host:port (or %q to disable the admin API)", c.Admin.Addr, adminOff)
		return errs
	}
	if c.Admin.Token != "" && c.Admin.TokenFile != "" {
		bad("admin.token", "set token or token_file, not both")
		return errs
	}
	tok, err := c.adminToken()
	switch {
	case err != nil:
		bad("admin.token_file", "%v", err)
	case tok == "" && !loopbackAddr(c.Admin.Addr):
		bad("admin.addr", "%q is not a loopback address: set admin.token (WXOIDC_ADMIN_TOKEN) or admin.token_file, or listen on 127.0.0.1", c.Admin.Addr)
	case tok != "" && len(tok) < minAdminToken:
		bad("admin.token", "must be at least %d characters", minAdminToken)
	}
	return errs
}

func (c Config) adminEnabled() bool {
	return c.Admin.Addr != "" && c.Admin.Addr != adminOff
}

// adminToken returns the admin bearer token from admin.token or
// admin.token_file ("" if neither is set).
func (c Config) adminToken() (string, error) {
	if c.Admin.TokenFile != "" {
		b, err := os.ReadFile(c.Admin.TokenFile)
		if err != nil {
			return "", err
		}
		return string(bytes.TrimSpace(b)), nil
	}
	return c.Admin.Token, nil
}

// trustedProxies parses http.trusted_proxies: CIDRs, or single addresses.
func (c Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.HTTP.TrustedProxies {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// loopbackAddr reports whether the listen address addr (host:port) only
// accepts connections from this machine. An empty host listens everywhere.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
