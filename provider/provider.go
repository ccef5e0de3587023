package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// Access-token formats.
const (
	AccessTokenJWT    = "jwt"
	AccessTokenOpaque = "opaque"
)

// Scopes wxoidc knows, and the claims each releases (SPEC §5).
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopePhone         = "phone"
	ScopeWeChat        = "wechat"
	ScopeOfflineAccess = "offline_access"
)

// KnownScopes lists every scope wxoidc understands, in discovery order.
var KnownScopes = []string{ScopeOpenID, ScopeProfile, ScopePhone, ScopeWeChat, ScopeOfflineAccess}

// Config configures a Provider. Zero durations take the documented
// defaults.
type Config struct {
	// Issuer is the exact issuer identifier (no trailing slash), e.g.
	// https://id.example.com. It must be https unless Dev is set.
	Issuer string
	// Secret is the system secret (at least 32 bytes). Token HMACs and the
	// keyed hash of client secrets are derived from it.
	Secret []byte
	// Storage persists clients, codes, tokens and users.
	Storage storage.Storage
	// Keys signs and verifies tokens.
	Keys KeySource
	// Authenticator is the authorization endpoint's login step. Without one
	// the endpoint answers every request with temporarily_unavailable and
	// says that no login method is configured.
	Authenticator Authenticator

	// Users finds and creates the users of the Mini Program grant, and
	// Audit records the provider's events. Share both with the login
	// methods (weblogin and others). Nil Users means open registration on
	// Storage; nil Audit, one on Storage that logs to Logger.
	Users *Users
	Audit *Audit

	// WeChatApps are the WeChat apps the provider holds secrets for, by
	// appid. Mini Program apps serve the WeChat grant; website and official
	// apps serve web login.
	WeChatApps map[string]WeChatApp

	// GrantLimitPerClient and GrantLimitPerIP rate-limit the WeChat grant
	// (HTTP 429); zero values take DefaultGrantLimitPerClient and
	// DefaultGrantLimitPerIP.
	GrantLimitPerClient RateLimit
	GrantLimitPerIP     RateLimit
	// AuthorizeLimitPerIP rate-limits /oauth2/authorize and /oauth2/par
	// per client address on this replica (HTTP 429); zero takes
	// DefaultAuthorizeLimitPerIP, a negative Rate turns it off.
	AuthorizeLimitPerIP RateLimit
	// IPv6Prefix is the network size by which IPv6 clients share a per-IP
	// bucket; 0 takes DefaultIPv6Prefix (/64).
	IPv6Prefix int

	// AccessTokenFormat is "jwt" (RFC 9068, the default) or "opaque".
	AccessTokenFormat string
	// AccessTokenAlg signs JWT access tokens: ES256 (default), RS256 or
	// EdDSA.
	AccessTokenAlg string

	// AccessTokenLifespan defaults to 15 minutes.
	AccessTokenLifespan time.Duration
	// IDTokenLifespan defaults to 1 hour.
	IDTokenLifespan time.Duration
	// RefreshTokenLifespan defaults to 30 days.
	RefreshTokenLifespan time.Duration
	// RefreshReuseGrace is how long a rotated refresh token presented again
	// gets the answer of its first refresh (the same tokens) instead of
	// revoking the grant; 0 turns the grace off. See docs/config.md
	// (refresh_token.reuse_grace) for the trade-off. At most a minute.
	RefreshReuseGrace time.Duration
	// AuthorizeCodeLifespan defaults to 1 minute (RFC 6749 §4.1.2 asks for
	// at most 10).
	AuthorizeCodeLifespan time.Duration

	// DeviceCodeLifespan is how long a device authorization (RFC 8628)
	// waits for its approval; default 10 minutes.
	DeviceCodeLifespan time.Duration
	// DevicePollInterval is the least time between a device's polls
	// (RFC 8628 §3.2 interval); default 5 seconds.
	DevicePollInterval time.Duration

	// Dev relaxes what only a laptop may relax: an http issuer, and
	// fosite's debug text in error responses.
	//
	// Dev MUST NOT be set in production: error responses would then carry
	// internal details such as storage errors.
	Dev bool

	// OnRoute, when set, is called with the route template of each
	// request the provider's router matches (what Route returns for it),
	// before the route's handler runs: request logging learns the route
	// from it (ops.SetRoute) instead of matching the request again.
	OnRoute func(ctx context.Context, route string)

	// Logger receives one line per failure worth an operator's attention.
	// nil discards.
	Logger *slog.Logger

	// Registration configures Dynamic Client Registration (RFC 7591,
	// RFC 7592); off unless Registration.Enabled.
	Registration RegistrationConfig

	// Backchannel tunes the delivery of back-channel logouts
	// (RunBackchannelLogout).
	Backchannel BackchannelConfig

	// HTTPClient makes the provider's calls to URIs clients registered
	// (jwks_uri, request_uris, backchannel_logout_uri). nil means a plain
	// client; either way a 5-second timeout applies unless the client sets
	// one, and redirects are never followed.
	HTTPClient *http.Client

	// Metrics, when set, is told of events worth counting (tokens issued).
	// nil counts nothing.
	Metrics Metrics

	// Now is the provider's clock: token handlers (expiry checks, the
	// refresh grace, the device flow), request objects, rate limits and
	// users read the time from it. nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.AccessTokenFormat == "" {
		c.AccessTokenFormat = AccessTokenJWT
	}
	if c.AccessTokenAlg == "" {
		c.AccessTokenAlg = DefaultAccessTokenAlg
	}
	if c.AccessTokenLifespan == 0 {
		c.AccessTokenLifespan = 15 * time.Minute
	}
	if c.IDTokenLifespan == 0 {
		c.IDTokenLifespan = time.Hour
	}
	if c.RefreshTokenLifespan == 0 {
		c.RefreshTokenLifespan = 30 * 24 * time.Hour
	}
	if c.AuthorizeCodeLifespan == 0 {
		c.AuthorizeCodeLifespan = time.Minute
	}
	if c.DeviceCodeLifespan == 0 {
		c.DeviceCodeLifespan = DefaultDeviceCodeLifespan
	}
	if c.DevicePollInterval == 0 {
		c.DevicePollInterval = DefaultDevicePollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Backchannel.PollInterval <= 0 {
		c.Backchannel.PollInterval = time.Second
	}
	if c.Backchannel.MinBackoff <= 0 {
		c.Backchannel.MinBackoff = time.Second
	}
}

// DefaultAccessTokenAlg signs JWT access tokens when Config.AccessTokenAlg
// is empty.
const DefaultAccessTokenAlg = keys.ES256

// CheckAccessTokenAlg reports why alg (empty: DefaultAccessTokenAlg) cannot
// sign access tokens: it is not a supported algorithm, or ks (if not nil)
// keeps no key for it.
func CheckAccessTokenAlg(alg string, ks interface{ Algorithms() []string }) error {
	if alg == "" {
		alg = DefaultAccessTokenAlg
	}
	if !keys.Supported(alg) {
		return fmt.Errorf("access_token.alg: %q is not %s", alg, keys.OneOf(keys.SupportedAlgorithms()))
	}
	if ks == nil {
		return nil
	}
	if kept := ks.Algorithms(); !slices.Contains(kept, alg) {
		return fmt.Errorf("access_token.alg: %s has no signing key (keys.algorithms keeps %s); add %s to keys.algorithms or set access_token.alg to %s",
			alg, keys.OneOf(kept), alg, keys.OneOf(kept))
	}
	return nil
}

// CheckIssuer reports why issuer cannot be an issuer identifier (OpenID
// Connect Discovery §3: an https URL without query or fragment; wxoidc also
// refuses a trailing slash, which would drift from the iss claim). dev
// allows http.
func CheckIssuer(issuer string, dev bool) error {
	u, err := url.Parse(issuer)
	switch {
	case issuer == "":
		return errors.New("required")
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q is not an absolute URL without query or fragment", issuer)
	case strings.HasSuffix(issuer, "/"):
		return fmt.Errorf("%q must not end with a slash", issuer)
	case u.Scheme != "https" && !(dev && u.Scheme == "http"):
		return fmt.Errorf("%q must use https (http is allowed only in dev)", issuer)
	}
	return nil
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if err := CheckIssuer(c.Issuer, c.Dev); err != nil {
		errs = append(errs, fmt.Errorf("issuer: %w", err))
	}
	if len(c.Secret) < 32 {
		errs = append(errs, errors.New("secret: must be at least 32 bytes"))
	}
	if c.Storage == nil {
		errs = append(errs, errors.New("storage: required"))
	}
	if c.Users != nil {
		if err := CheckRegistration(c.Users.Registration); err != nil {
			errs = append(errs, fmt.Errorf("users.registration: %w", err))
		}
	}
	if c.Keys == nil {
		errs = append(errs, errors.New("keys: required"))
	}
	switch c.AccessTokenFormat {
	case "", AccessTokenJWT, AccessTokenOpaque:
	default:
		errs = append(errs, fmt.Errorf("access_token.format: %q is not jwt or opaque", c.AccessTokenFormat))
	}
	if err := CheckAccessTokenAlg(c.AccessTokenAlg, c.Keys); err != nil {
		errs = append(errs, err)
	}
	for name, d := range map[string]time.Duration{
		"access_token.lifespan":   c.AccessTokenLifespan,
		"id_token.lifespan":       c.IDTokenLifespan,
		"refresh_token.lifespan":  c.RefreshTokenLifespan,
		"authorize_code.lifespan": c.AuthorizeCodeLifespan,
		"device.code_lifespan":    c.DeviceCodeLifespan,
		"device.interval":         c.DevicePollInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative", name))
		}
	}
	if c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > time.Minute {
		errs = append(errs, errors.New("refresh_token.reuse_grace: must be between 0 (off) and 1m"))
	}
	if c.DevicePollInterval%time.Second != 0 {
		errs = append(errs, errors.New("device.interval: must be whole seconds (RFC 8628 §3.2), e.g. 5s"))
	}
	if c.DeviceCodeLifespan%time.Second != 0 {
		errs = append(errs, errors.New("device.code_lifespan: must be whole seconds, e.g. 10m"))
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("rate_limit.ipv6_prefix: %d is not a prefix length from 1 to 128 (0 takes %d)", c.IPv6Prefix, DefaultIPv6Prefix))
	}
	if c.AuthorizeCodeLifespan > 10*time.Minute {
		errs = append(errs, errors.New("authorize_code.lifespan: must be at most 10m (RFC 6749 §4.1.2)"))
	}
	return errors.Join(errs...)
}

// Provider is the OpenID Connect provider. Build it with New; serve
// Handler.
type Provider struct {
	cfg    Config
	oauth2 *fosite.Fosite
	// fconf is the fosite configuration; read-only after New.
	fconf    *fosite.Config
	idSigner *signer
	// core issues and checks access and refresh tokens.
	core oauth2.CoreStrategy
	// graceSealer seals the answers kept for the refresh reuse grace.
	graceSealer *keys.Sealer
	// sessionKeys seals WeChat session keys at rest.
	sessionKeys *keys.Sealer
	// limits rate-limits the WeChat grant per client and per IP on this
	// replica; clientQuota per client across replicas (nil when off).
	limits      *grantLimits
	clientQuota *clientQuota
	// authorizeLimits rate-limits /oauth2/authorize and /oauth2/par per
	// address on this replica (nil when off).
	authorizeLimits *IPLimiter
	// registrationLimits rate-limits the registration endpoints per
	// address on this replica (nil when off); regTokens hashes their
	// tokens; appKinds are the WeChat apps' kinds (CheckClientApp).
	registrationLimits *IPLimiter
	regTokens          *RegistrationTokens
	appKinds           map[string]wechat.AppKind
	routes             *mux.Router // what Route matches against; read-only after New
	discovery          []byte      // prepared discovery document
	basePath           string      // the issuer's path, where the routes are mounted
	log                *slog.Logger
	// outbound calls clients' registered URIs (see Config.HTTPClient).
	outbound *http.Client
	// clientJWKS caches what clients' jwks_uris serve; never nil after New.
	clientJWKS *jwksCache
	users      *Users // never nil after New
	audit      *Audit // never nil after New
}

// New validates cfg and composes the provider.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	p := &Provider{cfg: cfg, log: cfg.Logger, outbound: newOutboundClient(cfg.HTTPClient), users: cfg.Users, audit: cfg.Audit}
	p.clientJWKS = newJWKSCache(p.fetch, cfg.Now, cfg.Logger)
	if p.audit == nil {
		p.audit = &Audit{Storage: cfg.Storage, Logger: cfg.Logger}
	}
	if p.users == nil {
		p.users = &Users{Storage: cfg.Storage, Audit: p.audit, Now: cfg.Now}
	}
	if u, err := url.Parse(cfg.Issuer); err == nil {
		p.basePath = u.Path
	}
	p.limits = newGrantLimits(cfg.GrantLimitPerClient, cfg.GrantLimitPerIP, cfg.IPv6Prefix)
	p.authorizeLimits = NewIPLimiter(cfg.AuthorizeLimitPerIP, DefaultAuthorizeLimitPerIP, cfg.IPv6Prefix)
	p.clientQuota = newClientQuota(cfg.Storage, cfg.GrantLimitPerClient)
	p.registrationLimits = NewIPLimiter(cfg.Registration.LimitPerIP, DefaultRegistrationLimitPerIP, cfg.IPv6Prefix)
	p.regTokens = NewRegistrationTokens(cfg.Secret)
	p.appKinds = appKinds(cfg.WeChatApps)
	if err := p.compose(); err != nil {
		return nil, err
	}
	doc, err := p.discoveryDocument()
	if err != nil {
		return nil, err
	}
	p.discovery = doc
	p.routes = p.router()
	return p, nil
}

// Endpoint paths, relative to the issuer (SPEC §3).
const (
	pathDiscovery       = "/.well-known/openid-configuration"
	pathJWKS            = "/.well-known/jwks.json"
	pathAuthorize       = "/oauth2/authorize"
	pathPAR             = "/oauth2/par"
	pathToken           = "/oauth2/token"
	pathRevoke          = "/oauth2/revoke"
	pathIntrospect      = "/oauth2/introspect"
	pathUserinfo        = "/userinfo"
	pathLogout          = "/oauth2/logout"
	pathWeChatPhone     = "/wechat/phone"
	pathWeChatDecrypt   = "/wechat/decrypt"
	pathDeviceAuthorize = "/oauth2/device/authorize"
	pathDeviceVerify    = "/oauth2/device/verify"
)

func (p *Provider) url(path string) string { return p.cfg.Issuer + path }
