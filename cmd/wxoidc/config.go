package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"gopkg.in/yaml.v3"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// Config is the wxoidc configuration file. Every scalar key can be
// overridden from the environment: WXOIDC_ plus the upper-cased key path
// joined with underscores (storage.dsn → WXOIDC_STORAGE_DSN). docs/config.md
// documents every key.
type Config struct {
	// Issuer is the exact issuer URL (https outside dev).
	Issuer string `yaml:"issuer"`
	// Secret is the system secret (at least 32 bytes); SecretFile reads it
	// from a file instead. Prefer WXOIDC_SECRET or a file to the config.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// InsecureSecretFiles starts even when a secret file is readable by
	// group or others, with a warning, instead of refusing to.
	//
	// It MUST NOT be set in production: another user of the machine
	// could read the secret.
	InsecureSecretFiles bool `yaml:"insecure_secret_files"`

	HTTP struct {
		// Addr is the public listener.
		Addr string `yaml:"addr"`
		// TLSCert and TLSKey enable TLS on the public listener.
		TLSCert string `yaml:"tls_cert"`
		TLSKey  string `yaml:"tls_key"`
		// TrustedProxies lists the reverse proxies (CIDRs or addresses)
		// whose X-Forwarded-* and X-Request-Id headers are believed.
		TrustedProxies []string `yaml:"trusted_proxies"`
		// ShutdownTimeout is how long in-flight requests get to finish
		// after SIGTERM or SIGINT.
		ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	} `yaml:"http"`

	Admin struct {
		// Addr is the admin API listener; "off" disables it.
		Addr string `yaml:"addr"`
		// Token is the admin API's bearer token (or TokenFile, a file
		// holding it). Required unless Addr is a loopback address.
		Token     string `yaml:"token"`
		TokenFile string `yaml:"token_file"`
		// Pprof serves Go's runtime profiles under /debug/pprof/.
		Pprof bool `yaml:"pprof"`
	} `yaml:"admin"`

	Console struct {
		// Enabled serves the admin console at /console/ on the admin
		// listener (default true).
		Enabled bool `yaml:"enabled"`
		// URL is where operators reach the console, ending in /console/;
		// empty means http://<admin.addr>/console/ when admin.addr is a
		// loopback address. Without one, sign-in with WeChat is off.
		URL string `yaml:"url"`
		// SessionLifetime is how long a console sign-in lasts.
		SessionLifetime time.Duration `yaml:"session_lifetime"`
	} `yaml:"console"`

	Metrics struct {
		// Enabled serves /metrics on the admin listener (behind the
		// admin token, when one is set).
		Enabled bool `yaml:"enabled"`
		// Public also serves /metrics on the public listener, without
		// authentication: its labels name client ids and appids.
		Public bool `yaml:"public"`
	} `yaml:"metrics"`

	Storage struct {
		// DSN selects the backend: memory://, sqlite:///path/file.db or
		// postgres://….
		DSN string `yaml:"dsn"`
		// Migrate applies the schema at start (default true).
		Migrate *bool `yaml:"migrate"`
		// JanitorInterval is how often expired rows are deleted.
		JanitorInterval time.Duration `yaml:"janitor_interval"`
	} `yaml:"storage"`

	Keys struct {
		Algorithms      []string      `yaml:"algorithms"`
		RotationPeriod  time.Duration `yaml:"rotation_period"`
		PublishDelay    time.Duration `yaml:"publish_delay"`
		Retention       time.Duration `yaml:"retention"`
		RefreshInterval time.Duration `yaml:"refresh_interval"`
	} `yaml:"keys"`

	AccessToken struct {
		Format   string        `yaml:"format"`
		Alg      string        `yaml:"alg"`
		Lifespan time.Duration `yaml:"lifespan"`
	} `yaml:"access_token"`
	IDToken struct {
		Lifespan time.Duration `yaml:"lifespan"`
	} `yaml:"id_token"`
	RefreshToken struct {
		Lifespan time.Duration `yaml:"lifespan"`
		// ReuseGrace: a rotated refresh token presented again within it
		// gets the same answer instead of revoking the grant; 0 is off.
		ReuseGrace time.Duration `yaml:"reuse_grace"`
	} `yaml:"refresh_token"`
	AuthorizeCode struct {
		Lifespan time.Duration `yaml:"lifespan"`
	} `yaml:"authorize_code"`
	Device struct {
		// CodeLifespan is how long a device authorization (RFC 8628)
		// waits for approval; Interval the least time between polls.
		CodeLifespan time.Duration `yaml:"code_lifespan"`
		Interval     time.Duration `yaml:"interval"`
	} `yaml:"device"`

	WeChat struct {
		APIBase  string      `yaml:"api_base"`
		OpenBase string      `yaml:"open_base"`
		Apps     []WeChatApp `yaml:"apps"`
	} `yaml:"wechat"`

	Clients []ClientConfig `yaml:"clients"`

	Users struct {
		// Registration is open (a new WeChat identity creates a user) or
		// existing (login-only: new identities link to existing users).
		Registration string `yaml:"registration"`
		// AccountDeleteMaxAge is how recent a sign-in must be for the
		// person to erase their own account.
		AccountDeleteMaxAge time.Duration `yaml:"account_delete_max_age"`
	} `yaml:"users"`

	Registration struct {
		// Enabled serves Dynamic Client Registration (RFC 7591, RFC 7592)
		// at /oauth2/register, gated by initial access tokens from the
		// admin API. Off by default.
		Enabled bool `yaml:"enabled"`
	} `yaml:"registration"`

	Events struct {
		// Retention is how long audit events are kept; the janitor
		// deletes older ones.
		Retention time.Duration `yaml:"retention"`
	} `yaml:"events"`

	RateLimit struct {
		// WeChatGrant limits the Mini Program grant per client (across
		// replicas) and per client IP address (per replica); HTTP 429
		// beyond. A rate of 0
		// takes the default (1000/s per client, 20/s per IP); a negative
		// rate turns the limit off.
		WeChatGrant struct {
			PerClient RateConfig `yaml:"per_client"`
			PerIP     RateConfig `yaml:"per_ip"`
		} `yaml:"wechat_grant"`
		// Authorize limits the browser sign-in endpoints
		// (/oauth2/authorize, /oauth2/par, /login) per client IP (per
		// replica), and caps the sign-ins one IP and one browser may have
		// pending (across replicas).
		Authorize struct {
			PerIP             RateConfig `yaml:"per_ip"`
			PendingPerIP      int        `yaml:"pending_per_ip"`
			PendingPerBrowser int        `yaml:"pending_per_browser"`
		} `yaml:"authorize"`
		// Registration limits the Dynamic Client Registration endpoints
		// per client IP (per replica).
		Registration struct {
			PerIP RateConfig `yaml:"per_ip"`
		} `yaml:"registration"`
		// IPv6Prefix is the network size by which IPv6 clients share
		// per-IP limits.
		IPv6Prefix int `yaml:"ipv6_prefix"`
	} `yaml:"rate_limit"`

	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"`
	} `yaml:"log"`

	// dev is set by `wxoidc dev`, never by a file.
	dev bool
	// tracer records spans (OpenTelemetry); nil traces nothing. It comes
	// from the OTEL_* environment (newTracerProvider), never from a file.
	tracer trace.TracerProvider
}

// RateConfig is a token bucket: rate requests per second, bursts of burst.
type RateConfig struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// WeChatApp is one WeChat app the provider holds the secret of.
type WeChatApp struct {
	AppID string `yaml:"appid"`
	// Secret, or SecretFile, or SecretEnv (the name of an environment
	// variable) holds the AppSecret.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// Kind is miniprogram, website or official.
	Kind string `yaml:"kind"`
	// Push is an official account's message push (服务器配置); setting its
	// token turns on follow-the-official-account login.
	Push PushConfig `yaml:"push"`
	// FollowLogin tunes follow-the-official-account login.
	FollowLogin FollowLoginConfig `yaml:"follow_login"`
	// ScanLogin, on one Mini Program, turns on scan-to-sign-in: the login
	// and device pages show its Mini Program code.
	ScanLogin ScanLoginConfig `yaml:"scan_login"`
}

// ScanLoginConfig is scan-to-sign-in with a Mini Program (SPEC §11).
type ScanLoginConfig struct {
	// Page is the Mini Program page the code opens; setting it turns
	// scan-to-sign-in on.
	Page string `yaml:"page"`
	// EnvVersion is release (default), trial or develop.
	EnvVersion string `yaml:"env_version"`
	// CodeLifetime is how long a code shown on the login page can be
	// approved.
	CodeLifetime time.Duration `yaml:"code_lifetime"`
}

// PushConfig is the message push of an official account, as configured
// in WeChat's console. The token and the EncodingAESKey are secrets: from
// a file or the environment, never logged.
type PushConfig struct {
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// AESKey is the EncodingAESKey (43 letters and digits) of compatible
	// and safe mode.
	AESKey     string `yaml:"aes_key"`
	AESKeyFile string `yaml:"aes_key_file"`
	AESKeyEnv  string `yaml:"aes_key_env"`
	// PreviousAESKey is the EncodingAESKey before the current one, kept
	// while WeChat switches over after a key change.
	PreviousAESKey     string `yaml:"previous_aes_key"`
	PreviousAESKeyFile string `yaml:"previous_aes_key_file"`
	PreviousAESKeyEnv  string `yaml:"previous_aes_key_env"`
	// Mode is plaintext, compatible or safe; empty means safe when an
	// EncodingAESKey is set, else plaintext.
	Mode string `yaml:"mode"`
}

// FollowLoginConfig tunes follow-the-official-account login.
type FollowLoginConfig struct {
	// QRLifetime is how long a login QR code can be scanned.
	QRLifetime time.Duration `yaml:"qr_lifetime"`
	// Reply is the passive reply the person gets in the chat after
	// signing in; {client} stands for the client's name. Empty: none.
	Reply string `yaml:"reply"`
	// ReplyExpired, ReplyUsed, ReplyNoAccount, ReplyDisabled and
	// ReplyClosed answer a scan that signs nobody in (the code expired,
	// was used already, no account under users.registration existing,
	// the account is disabled, the login page was closed). Empty: the
	// built-in text in the login page's language.
	ReplyExpired   string `yaml:"reply_expired"`
	ReplyUsed      string `yaml:"reply_used"`
	ReplyNoAccount string `yaml:"reply_no_account"`
	ReplyDisabled  string `yaml:"reply_disabled"`
	ReplyClosed    string `yaml:"reply_closed"`
}

// Follow-login QR code lifetimes allowed (the login state lives 10 min).
const (
	defaultFollowQRLifetime = 5 * time.Minute
	maxFollowQRLifetime     = 10 * time.Minute
)

// ClientConfig declares a client in the config file, with RFC 7591 names.
type ClientConfig struct {
	ClientID                 string   `yaml:"client_id"`
	ClientSecret             string   `yaml:"client_secret"`
	ClientSecretEnv          string   `yaml:"client_secret_env"`
	ClientName               string   `yaml:"client_name"`
	RedirectURIs             []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs   []string `yaml:"post_logout_redirect_uris"`
	GrantTypes               []string `yaml:"grant_types"`
	ResponseTypes            []string `yaml:"response_types"`
	Scope                    string   `yaml:"scope"`
	Audience                 []string `yaml:"audience"`
	TokenEndpointAuthMethod  string   `yaml:"token_endpoint_auth_method"`
	IDTokenSignedResponseAlg string   `yaml:"id_token_signed_response_alg"`
	WeChatAppID              string   `yaml:"wechat_appid"`
	SkipConsent              bool     `yaml:"skip_consent"`
}

// defaultConfig is the configuration before a file or the environment
// changes it.
func defaultConfig() Config {
	var c Config
	c.HTTP.Addr = "127.0.0.1:8080"
	c.HTTP.ShutdownTimeout = 20 * time.Second
	c.Admin.Addr = "127.0.0.1:8081"
	c.Metrics.Enabled = true
	c.Console.Enabled = true
	c.Console.SessionLifetime = 8 * time.Hour
	c.Storage.DSN = "sqlite:///var/lib/wxoidc/wxoidc.db"
	c.Storage.JanitorInterval = 5 * time.Minute
	c.RateLimit.IPv6Prefix = provider.DefaultIPv6Prefix
	c.Users.Registration = provider.RegistrationOpen
	c.Users.AccountDeleteMaxAge = provider.DefaultDeleteMaxAge
	c.Events.Retention = 180 * 24 * time.Hour
	c.Keys.Algorithms = []string{"RS256", "ES256", "EdDSA"}
	c.Keys.RotationPeriod = 30 * 24 * time.Hour
	c.Keys.PublishDelay = 10 * time.Minute
	c.Keys.Retention = 24 * time.Hour
	c.Keys.RefreshInterval = 30 * time.Second
	c.AccessToken.Format = "jwt"
	c.AccessToken.Alg = "ES256"
	c.AccessToken.Lifespan = 15 * time.Minute
	c.IDToken.Lifespan = time.Hour
	c.RefreshToken.Lifespan = 30 * 24 * time.Hour
	c.RefreshToken.ReuseGrace = 5 * time.Second
	c.AuthorizeCode.Lifespan = time.Minute
	c.Device.CodeLifespan = provider.DefaultDeviceCodeLifespan
	c.Device.Interval = provider.DefaultDevicePollInterval
	c.WeChat.APIBase = "https://api.weixin.qq.com"
	c.WeChat.OpenBase = "https://open.weixin.qq.com"
	c.Log.Level = "info"
	c.Log.Format = "json"
	return c
}

// loadConfig reads the YAML file at path (if path is not empty) over the
// defaults, then applies WXOIDC_* environment overrides. Unknown keys are
// refused, so a typo cannot silently fall back to a default.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	return loadConfigOver(defaultConfig(), path, getenv)
}

// loadConfigOver is loadConfig over other defaults (wxoidc dev's).
func loadConfigOver(c Config, path string, getenv func(string) string) (Config, error) {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		if err := decodeYAML(b, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "WXOIDC", "", getenv); err != nil {
		return c, err
	}
	return c, nil
}

func decodeYAML(b []byte, c *Config) error {
	if err := checkYAML(b, c); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file keeps the defaults
		return err
	}
	return nil
}

// applyEnv overrides the scalar (and string-list, comma-separated) fields of
// v from the environment. Lists of structs (apps, clients) come from the
// file only.
func applyEnv(v reflect.Value, envPrefix, keyPrefix string, getenv func(string) string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		env := envPrefix + "_" + strings.ToUpper(tag)
		key := tag
		if keyPrefix != "" {
			key = keyPrefix + "." + tag
		}
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, env, key, getenv); err != nil {
				return err
			}
			continue
		}
		raw := getenv(env)
		if raw == "" {
			continue
		}
		if err := setScalar(fv, raw); err != nil {
			return fmt.Errorf("%s (from %s): %w", key, env, err)
		}
	}
	return nil
}

func setScalar(fv reflect.Value, raw string) error {
	switch {
	case fv.Type() == reflect.TypeOf(time.Duration(0)):
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration: %q", raw)
		}
		fv.SetInt(int64(d))
	case fv.Kind() == reflect.String:
		fv.SetString(raw)
	case fv.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		fv.SetFloat(f)
	case fv.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		fv.SetInt(int64(n))
	case fv.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		fv.SetInt(int64(n))
	case fv.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return fmt.Errorf("not a number: %q", raw)
		}
		fv.SetFloat(f)
	case fv.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		fv.SetBool(b)
	case fv.Kind() == reflect.Pointer && fv.Type().Elem().Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		fv.Set(reflect.ValueOf(&b))
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		var parts []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		fv.Set(reflect.ValueOf(parts))
	default:
		return errors.New("cannot be set from the environment")
	}
	return nil
}

// secret returns the system secret from secret or secret_file.
func (c Config) secret() ([]byte, error) {
	if c.SecretFile != "" {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("secret_file: %w", err)
		}
		return bytes.TrimSpace(b), nil
	}
	return []byte(c.Secret), nil
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := provider.CheckIssuer(c.Issuer, c.dev); err != nil {
		bad("issuer", "%v", err)
	}
	if c.Secret != "" && c.SecretFile != "" {
		bad("secret", "set secret or secret_file, not both")
	} else if s, err := c.secret(); err != nil {
		errs = append(errs, err)
	} else if len(s) < 32 {
		bad("secret", "must be at least 32 bytes (set WXOIDC_SECRET or secret_file)")
	}
	if !c.InsecureSecretFiles {
		errs = append(errs, c.looseSecretFiles()...)
	}
	if c.HTTP.Addr == "" {
		bad("http.addr", "required")
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tls_cert", "tls_cert and tls_key go together")
	}
	errs = append(errs, c.validateOps()...)
	if scheme, err := backendOf(c.Storage.DSN); err != nil {
		bad("storage.dsn", "%v", err)
	} else if scheme == "sqlite" {
		if p, err := sqlite.ParseDSN(c.Storage.DSN); err == nil && p != sqlite.MemoryPath && !filepath.IsAbs(p) {
			abs, _ := filepath.Abs(p)
			bad("storage.dsn", "the SQLite path %q is relative: the database would be created in the working directory, as %s; write the absolute path, sqlite://%s", p, abs, abs)
		}
	}
	for _, alg := range c.Keys.Algorithms {
		if !keys.Supported(alg) {
			bad("keys.algorithms", "%q is not %s", alg, keys.OneOf(keys.SupportedAlgorithms()))
		}
	}
	kept := keys.KeptAlgorithms(c.Keys.Algorithms)
	switch c.AccessToken.Format {
	case "jwt", "opaque":
	default:
		bad("access_token.format", "%q is not jwt or opaque", c.AccessToken.Format)
	}
	if err := provider.CheckAccessTokenAlg(c.AccessToken.Alg, keptAlgorithms(kept)); err != nil {
		errs = append(errs, err)
	}
	if c.Keys.Retention < c.AccessToken.Lifespan || c.Keys.Retention < c.IDToken.Lifespan {
		bad("keys.retention", "must be at least the access- and ID-token lifespans, so every token verifies until it expires")
	}
	if c.RefreshToken.ReuseGrace < 0 || c.RefreshToken.ReuseGrace > time.Minute {
		bad("refresh_token.reuse_grace", "must be between 0 (off) and 1m; a few seconds covers concurrent refreshes")
	}
	if c.AuthorizeCode.Lifespan <= 0 || c.AuthorizeCode.Lifespan > 10*time.Minute {
		bad("authorize_code.lifespan", "must be between 1s and 10m")
	}
	if d := c.Device.CodeLifespan; d < 30*time.Second || d > 30*time.Minute || d%time.Second != 0 {
		bad("device.code_lifespan", "must be whole seconds between 30s and 30m (RFC 8628 suggests minutes), e.g. 10m")
	}
	if d := c.Device.Interval; d < time.Second || d > time.Minute || d%time.Second != 0 {
		bad("device.interval", "must be whole seconds between 1s and 1m (RFC 8628 §3.2 default 5s)")
	}
	for name, d := range map[string]time.Duration{
		"access_token.lifespan": c.AccessToken.Lifespan, "id_token.lifespan": c.IDToken.Lifespan,
		"refresh_token.lifespan": c.RefreshToken.Lifespan,
	} {
		if d <= 0 {
			bad(name, "must be positive")
		}
	}
	for _, k := range []struct{ key, v string }{{"wechat.api_base", c.WeChat.APIBase}, {"wechat.open_base", c.WeChat.OpenBase}} {
		if u, err := url.Parse(k.v); err != nil || u.Host == "" || (u.Scheme != "https" && !(c.dev && u.Scheme == "http")) {
			bad(k.key, "%q must be an https URL", k.v)
		}
	}
	seen := map[string]bool{}
	var scanApps []string // apps with scan_login, so far
	for i, a := range c.WeChat.Apps {
		key := fmt.Sprintf("wechat.apps[%d]", i)
		switch {
		case a.AppID == "":
			bad(key+".appid", "required")
		case !appIDPattern.MatchString(a.AppID):
			bad(key+".appid", "%q is not a WeChat appid: wx followed by 16 hexadecimal digits (copy it from the WeChat admin console)", a.AppID)
		case seen[a.AppID]:
			bad(key+".appid", "%q appears twice", a.AppID)
		}
		seen[a.AppID] = true
		if s, err := a.secret(); err != nil {
			errs = append(errs, fmt.Errorf("%s.%w", key, err))
		} else if s == "" {
			bad(key+".secret", "missing app secret for %s (set secret_file or secret_env)", a.AppID)
		}
		switch a.Kind {
		case "miniprogram", "website", "official":
		default:
			bad(key+".kind", "%q is not miniprogram, website or official", a.Kind)
		}
		errs = append(errs, a.validatePush(key)...)
		errs = append(errs, a.validateScan(key, scanApps)...)
		if a.ScanLogin.Page != "" {
			scanApps = append(scanApps, a.AppID)
		}
	}
	for i, cc := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		if cc.ClientSecretEnv != "" && os.Getenv(cc.ClientSecretEnv) == "" {
			bad(key+".client_secret_env", "the environment variable %s is unset or empty", cc.ClientSecretEnv)
		}
		if cc.ClientID != "" {
			key += " (" + cc.ClientID + ")"
		}
		if _, err := cc.metadata().Check(c.dev, time.Now(), kept, wechatAppKinds(c)); err != nil {
			bad(key, "%v", err)
		}
	}
	if p := c.RateLimit.IPv6Prefix; p < 1 || p > 128 {
		bad("rate_limit.ipv6_prefix", "%d is not a prefix length from 1 to 128 (64 aggregates a host's /64)", p)
	}
	if err := provider.CheckRegistration(c.Users.Registration); err != nil {
		bad("users.registration", "%v", err)
	}
	if d := c.Users.AccountDeleteMaxAge; d < time.Second || d > 24*time.Hour {
		bad("users.account_delete_max_age", "must be between 1s and 24h")
	}
	if c.Events.Retention < 24*time.Hour {
		bad("events.retention", "must be at least 24h (security logs are kept six months by default: 4320h)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	return errors.Join(errs...)
}

// keptAlgorithms is a list of algorithms as provider.CheckAccessTokenAlg
// wants it.
type keptAlgorithms []string

func (k keptAlgorithms) Algorithms() []string { return k }

// metadata is the client's registration document.
func (cc ClientConfig) metadata() provider.ClientMetadata {
	return provider.ClientMetadata{
		ClientID: cc.ClientID, ClientName: cc.ClientName, RedirectURIs: cc.RedirectURIs,
		PostLogoutRedirectURIs: cc.PostLogoutRedirectURIs, GrantTypes: cc.GrantTypes,
		ResponseTypes: cc.ResponseTypes, Scope: cc.Scope, Audience: cc.Audience,
		TokenEndpointAuthMethod: cc.TokenEndpointAuthMethod, IDTokenSignedResponseAlg: cc.IDTokenSignedResponseAlg,
		WeChatAppID: cc.WeChatAppID, SkipConsent: cc.SkipConsent,
	}
}

func (a WeChatApp) secret() (string, error) {
	switch {
	case a.SecretFile != "":
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return "", fmt.Errorf("secret_file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	case a.SecretEnv != "":
		v := os.Getenv(a.SecretEnv)
		if v == "" {
			return "", fmt.Errorf("secret_env: the environment variable %s is unset or empty", a.SecretEnv)
		}
		return v, nil
	}
	return a.Secret, nil
}

// appIDPattern is the shape of a WeChat appid: wx and 16 hexadecimal
// digits (wxd0000000000000a1).
var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

// pushToken returns the push token from token, token_file or token_env.
func (p PushConfig) pushToken() (string, error) {
	return readSecret(p.Token, p.TokenFile, p.TokenEnv, "token_env")
}

// aesKey returns the EncodingAESKey from aes_key, aes_key_file or
// aes_key_env.
func (p PushConfig) aesKey() (string, error) {
	return readSecret(p.AESKey, p.AESKeyFile, p.AESKeyEnv, "aes_key_env")
}

// previousAESKey returns the previous EncodingAESKey, if any.
func (p PushConfig) previousAESKey() (string, error) {
	return readSecret(p.PreviousAESKey, p.PreviousAESKeyFile, p.PreviousAESKeyEnv, "previous_aes_key_env")
}

// configured reports whether any push key is set.
func (p PushConfig) configured() bool {
	return p != PushConfig{}
}

// mode returns the push mode, with its default.
func (p PushConfig) mode() wechat.PushMode {
	if p.Mode != "" {
		return wechat.PushMode(p.Mode)
	}
	if p.AESKey != "" || p.AESKeyFile != "" || p.AESKeyEnv != "" {
		return wechat.PushSafe
	}
	return wechat.PushPlaintext
}

// readSecret reads a secret given inline, as a file or as the name of an
// environment variable (at most one of them); envKey names the key that
// gives the variable, for the message when it is unset.
func readSecret(inline, file, env, envKey string) (string, error) {
	n := 0
	for _, v := range []string{inline, file, env} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return "", errors.New("set only one of the inline value, _file and _env")
	}
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	case env != "":
		v := os.Getenv(env)
		if v == "" {
			return "", fmt.Errorf("%s: the environment variable %s is unset or empty", envKey, env)
		}
		return v, nil
	}
	return inline, nil
}

// validateScan checks the scan_login keys of app key; earlier lists the
// apps before it that have scan_login.
func (a WeChatApp) validateScan(key string, earlier []string) []error {
	sl := a.ScanLogin
	if sl == (ScanLoginConfig{}) {
		return nil
	}
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, args...)))
	}
	if a.Kind != "miniprogram" {
		bad("scan_login", "only a Mini Program (kind miniprogram) has Mini Program codes")
	}
	if len(earlier) > 0 {
		bad("scan_login", "%s already has scan_login; a deployment scans with one Mini Program", earlier[0])
	}
	if err := weblogin.CheckScanPage(sl.Page); err != nil {
		bad("scan_login.page", "%v", err)
	}
	switch sl.EnvVersion {
	case "", "release", "trial", "develop":
	default:
		bad("scan_login.env_version", "%q is not release, trial or develop", sl.EnvVersion)
	}
	if d := sl.CodeLifetime; d != 0 && (d < 30*time.Second || d > 10*time.Minute) {
		bad("scan_login.code_lifetime", "must be between 30s and 10m")
	}
	return errs
}

// scanConfig returns the weblogin configuration of scan-to-sign-in, or nil.
func scanConfig(cfg Config) *weblogin.ScanConfig {
	for _, a := range cfg.WeChat.Apps {
		if a.ScanLogin.Page != "" {
			return &weblogin.ScanConfig{AppID: a.AppID, Page: a.ScanLogin.Page, EnvVersion: a.ScanLogin.EnvVersion, Lifetime: a.ScanLogin.CodeLifetime}
		}
	}
	return nil
}

// validatePush checks the push and follow_login keys of app key.
func (a WeChatApp) validatePush(key string) []error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", key, k, fmt.Sprintf(format, args...)))
	}
	if !a.Push.configured() {
		if a.FollowLogin != (FollowLoginConfig{}) {
			bad("follow_login", "needs push.token (follow-the-official-account login works through message push)")
		}
		return errs
	}
	if a.Kind != "official" {
		bad("push", "only an official account (kind official) receives message push")
	}
	// Never quote a secret's value in a message.
	if tok, err := a.Push.pushToken(); err != nil {
		bad("push.token", "%v", err)
	} else if tok == "" {
		bad("push.token", "missing: set token_file or token_env to the Token of WeChat's server configuration (服务器配置)")
	} else if !alnumLen(tok, 3, 32) {
		bad("push.token", "must be 3 to 32 letters and digits, as WeChat's console requires")
	}
	mode := a.Push.mode()
	switch mode {
	case wechat.PushPlaintext, wechat.PushCompatible, wechat.PushSafe:
	default:
		bad("push.mode", "%q is not plaintext, compatible or safe", a.Push.Mode)
	}
	k, err := a.Push.aesKey()
	switch {
	case err != nil:
		bad("push.aes_key", "%v", err)
	case k == "" && (mode == wechat.PushCompatible || mode == wechat.PushSafe):
		bad("push.aes_key", "%s mode needs the EncodingAESKey (aes_key_file or aes_key_env)", mode)
	case k != "":
		if _, err := wechat.DecodeEncodingAESKey(k); err != nil {
			bad("push.aes_key", "%s", strings.TrimPrefix(err.Error(), "wechat: "))
		}
	}
	switch prev, err := a.Push.previousAESKey(); {
	case err != nil:
		bad("push.previous_aes_key", "%v", err)
	case prev != "" && mode == wechat.PushPlaintext:
		bad("push.previous_aes_key", "plaintext mode has no EncodingAESKey to rotate")
	case prev != "":
		if _, err := wechat.DecodeEncodingAESKey(prev); err != nil {
			bad("push.previous_aes_key", "%s", strings.TrimPrefix(err.Error(), "wechat: "))
		}
	}
	if d := a.FollowLogin.QRLifetime; d != 0 && (d < 30*time.Second || d > maxFollowQRLifetime) {
		bad("follow_login.qr_lifetime", "must be between 30s and %s", maxFollowQRLifetime)
	}
	fl := a.FollowLogin
	for _, r := range []struct{ key, text string }{
		{"reply", fl.Reply}, {"reply_expired", fl.ReplyExpired}, {"reply_used", fl.ReplyUsed},
		{"reply_no_account", fl.ReplyNoAccount}, {"reply_disabled", fl.ReplyDisabled}, {"reply_closed", fl.ReplyClosed},
	} {
		if len(r.text) > 600 {
			bad("follow_login."+r.key, "must be at most 600 bytes (WeChat shows about 2048 bytes of a reply)")
		}
	}
	return errs
}

func alnumLen(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// randomSecret returns n random bytes, base64url-encoded.
func randomSecret(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
