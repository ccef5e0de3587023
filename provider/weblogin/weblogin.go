package weblogin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// Defaults of Config's zero-valued fields.
const (
	DefaultSessionLifetime = 7 * 24 * time.Hour
	DefaultStateLifetime   = 10 * time.Minute
	// DefaultPendingPerIP and DefaultPendingPerBrowser cap the sign-ins
	// one address and one browser may start per StateLifetime.
	DefaultPendingPerIP      = 300
	DefaultPendingPerBrowser = 30
)

// Paths served below the issuer.
const (
	PathLogin    = "/login"
	PathCallback = "/login/wechat/callback"
	PathConsent  = "/login/consent"
	PathConsents = "/login/consents"
)

const (
	pathAuthorize = "/oauth2/authorize"
	amrWeChat     = "wechat"
)

// Config configures an Authenticator. Zero durations take the defaults.
type Config struct {
	// Issuer is the provider's issuer; the login pages live below it.
	Issuer string
	// Storage keeps login states, sessions, consents and users.
	Storage storage.Storage
	// Users signs people in (the provider's; see provider.Config.Users).
	// Nil means open registration on Storage.
	Users *provider.Users
	// WeChatApps are the provider's WeChat apps (provider.Config.WeChatApps).
	// The website app (the lowest appid of kind website) serves QR login;
	// the official account (likewise) serves login inside WeChat. At least
	// one of them is required.
	WeChatApps map[string]provider.WeChatApp
	// Secret (at least 32 bytes) keys the CSRF tokens of the forms.
	Secret []byte
	// Dev drops the Secure attribute of cookies so that an http issuer
	// works on a laptop.
	//
	// Dev MUST NOT be set in production: the session cookie would then be
	// sent over plain HTTP.
	Dev bool
	// SessionLifetime is how long a login session lasts; default 7 days.
	SessionLifetime time.Duration
	// StateLifetime bounds a round trip to WeChat or a consent page;
	// default 10 minutes.
	StateLifetime time.Duration
	// Scan, when set, offers "scan with the Mini Program" on the desktop
	// login page.
	Scan *ScanConfig
	// Follow lists the official accounts whose message push this
	// provider receives at /wechat/events/{appid}; the first (lowest
	// appid) also offers follow-the-official-account login on the desktop
	// login page.
	Follow []FollowConfig
	// LoginLimitPerIP rate-limits GET /login per client address on this
	// replica (HTTP 429); zero takes provider.DefaultAuthorizeLimitPerIP, a
	// negative Rate turns it off.
	LoginLimitPerIP provider.RateLimit
	// IPv6Prefix is the network size by which IPv6 clients share the
	// per-address limits and caps; 0 takes provider.DefaultIPv6Prefix.
	IPv6Prefix int
	// PendingPerIP and PendingPerBrowser cap the sign-ins (login states)
	// one client address and one browser may start: a bucket of that many
	// that refills over StateLifetime, kept in storage so that it holds
	// across replicas. Zero takes DefaultPendingPerIP and
	// DefaultPendingPerBrowser; a negative value turns the cap off.
	PendingPerIP      int
	PendingPerBrowser int
	// Logger receives one line per failure; nil discards. WeChat codes,
	// tokens and state values are never logged.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Authenticator is the browser login step. Build it with New.
type Authenticator struct {
	cfg      Config
	website  *wechat.Client // nil if there is no website app
	official *wechat.Client // nil if there is no official account
	csrfKey  []byte
	// bindingKey MACs binding cookie values (newBinding).
	bindingKey []byte
	// hostCookies: the issuer is https, so cookies are __Host- cookies.
	hostCookies bool
	// loginLimits rate-limits /login per address (nil: off).
	loginLimits *provider.IPLimiter
	scan        *scanCodes // nil unless Config.Scan is set
	// waits are the login methods that wait for an out-of-band approval,
	// by DeviceAuth kind; read-only after New.
	waits map[string]waitKind
	// follows are the official accounts whose pushes are received, by
	// appid, and followLogin the one offered on the login page (nil when
	// none); read-only after New.
	follows     map[string]*follow
	followLogin *follow
	basePath    string // the issuer's path; cookie path
	// choosers are the login page of each language, pre-rendered and cut
	// at the login id (prerenderChoosers); read-only after New.
	choosers map[string][][]byte
	log      *slog.Logger
	now      func() time.Time
}

var (
	_ provider.Authenticator       = (*Authenticator)(nil)
	_ provider.LogoutAuthenticator = (*Authenticator)(nil)
	_ provider.RouteMounter        = (*Authenticator)(nil)
	_ provider.SessionReader       = (*Authenticator)(nil)
	_ provider.FormGuard           = (*Authenticator)(nil)
)

// New validates cfg and returns the Authenticator.
func New(cfg Config) (*Authenticator, error) {
	var errs []error
	u, err := url.Parse(cfg.Issuer)
	if cfg.Issuer == "" || err != nil || u.Host == "" {
		errs = append(errs, errors.New("weblogin: issuer: an absolute URL is required"))
	}
	if cfg.Storage == nil {
		errs = append(errs, errors.New("weblogin: storage: required"))
	}
	if len(cfg.Secret) < 32 {
		errs = append(errs, errors.New("weblogin: secret: must be at least 32 bytes"))
	}
	a := &Authenticator{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	a.website = pickApp(cfg.WeChatApps, wechat.KindWebsite)
	a.official = pickApp(cfg.WeChatApps, wechat.KindOfficial)
	a.waits = map[string]waitKind{}
	if cfg.Scan != nil {
		apps := map[string]wechatApp{}
		for id, app := range cfg.WeChatApps {
			apps[id] = wechatApp{app.Kind, app.Client}
		}
		sc, err := newScanCodes(cfg.Scan, apps)
		if err != nil {
			errs = append(errs, err)
		} else {
			a.scan = sc
			a.waits[kindScan] = waitKind{lifetime: sc.cfg.Lifetime, amr: []string{amrWeChat, provider.AMRMiniProgram}, method: provider.MethodScan, show: sc.show}
		}
	}
	a.follows = map[string]*follow{}
	if cfg.StateLifetime <= 0 {
		cfg.StateLifetime = DefaultStateLifetime
	}
	for _, fc := range cfg.Follow {
		var client *wechat.Client
		if app, ok := cfg.WeChatApps[fc.AppID]; ok && app.Kind == wechat.KindOfficial {
			client = app.Client
		}
		f, err := newFollow(fc, client, cfg.Secret, cfg.StateLifetime)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if a.follows[fc.AppID] != nil {
			errs = append(errs, fmt.Errorf("weblogin: follow: appid %s appears twice", fc.AppID))
		}
		a.follows[fc.AppID] = f
		if a.followLogin == nil || fc.AppID < a.followLogin.cfg.AppID {
			a.followLogin = f
		}
	}
	if f := a.followLogin; f != nil {
		a.waits[kindOfficial] = waitKind{lifetime: f.cfg.Lifetime, amr: []string{amrWeChat}, show: f.show, prepare: f.prepare}
	}
	if a.website == nil && a.official == nil && cfg.Scan == nil {
		errs = append(errs, errors.New("weblogin: wechat apps: a website app, an official account or a Mini Program for scanning is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if a.cfg.SessionLifetime <= 0 {
		a.cfg.SessionLifetime = DefaultSessionLifetime
	}
	if a.cfg.StateLifetime <= 0 {
		a.cfg.StateLifetime = DefaultStateLifetime
	}
	if a.cfg.PendingPerIP == 0 {
		a.cfg.PendingPerIP = DefaultPendingPerIP
	}
	if a.cfg.PendingPerBrowser == 0 {
		a.cfg.PendingPerBrowser = DefaultPendingPerBrowser
	}
	a.loginLimits = provider.NewIPLimiter(cfg.LoginLimitPerIP, provider.DefaultAuthorizeLimitPerIP, cfg.IPv6Prefix)
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "weblogin")
	if a.now == nil {
		a.now = time.Now
	}
	if a.cfg.Users == nil {
		a.cfg.Users = &provider.Users{Storage: cfg.Storage, Now: a.now}
	}
	a.basePath = strings.TrimRight(u.Path, "/")
	a.csrfKey = keys.DeriveMAC(cfg.Secret, keys.PurposeWebLoginCSRF)
	a.bindingKey = keys.DeriveMAC(cfg.Secret, keys.PurposeWebLoginBinding)
	a.hostCookies = u.Scheme == "https"
	a.choosers = a.prerenderChoosers()
	return a, nil
}

func pickApp(apps map[string]provider.WeChatApp, kind wechat.AppKind) *wechat.Client {
	ids := make([]string, 0, len(apps))
	for id, app := range apps {
		if app.Kind == kind && app.Client != nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Strings(ids)
	return apps[ids[0]].Client
}

// Mount implements provider.RouteMounter.
func (a *Authenticator) Mount(r *mux.Router) {
	// HEAD (link checkers, previews) must not spend a single-use state:
	// handleLogin and handleCallback answer it without reading one.
	r.HandleFunc(PathLogin, a.handleLogin).Methods("GET", "HEAD")
	r.HandleFunc(PathCallback, a.handleCallback).Methods("GET", "HEAD")
	r.HandleFunc(PathConsent, a.handleConsent).Methods("POST")
	r.HandleFunc(PathConsents, a.handleConsents).Methods("GET", "HEAD", "POST")
	r.HandleFunc(PathAccountDelete, a.handleAccountDelete).Methods("GET", "HEAD", "POST")
	r.HandleFunc(PathDevice, a.handleDevice).Methods("GET", "HEAD", "POST")
	r.HandleFunc(PathDeviceLogin, a.handleDeviceLogin).Methods("GET", "HEAD")
	r.HandleFunc(PathWait, a.handleWait).Methods("GET", "HEAD")
	r.HandleFunc(PathWaitStatus, a.handleWaitStatus).Methods("GET", "HEAD")
	r.HandleFunc(PathWaitContinue, a.handleWaitContinue).Methods("GET", "HEAD")
	r.HandleFunc(PathWaitScript, a.handleWaitScript).Methods("GET", "HEAD")
	r.HandleFunc(PathWaitLeft, a.handleWaitLeft).Methods("POST")
	r.HandleFunc(PathPushEvents, a.handlePush).Methods("GET", "HEAD", "POST")
}

func (a *Authenticator) url(path string) string { return a.cfg.Issuer + path }

// randomID returns n random bytes, hex-encoded (letters and digits only,
// as WeChat wants for state).
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
