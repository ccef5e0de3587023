package wechattest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// App is a simulated WeChat app.
type App struct {
	AppID, Secret string
	// Kind decides which flows the app can use.
	Kind wechat.AppKind
	// Platform names the Open Platform account the app is bound to; apps
	// of one platform share unionids. Empty means unbound: no unionid.
	Platform string
	// Name is shown on the authorize pages; empty means the appid.
	Name string
	// RedirectHosts, when not empty, lists the hosts (host[:port]) that a
	// redirect_uri may name; other hosts get WeChat's 10003 error page.
	RedirectHosts []string
	// Pages, for a Mini Program, lists its published pages: with
	// check_path (the default) getwxacodeunlimit refuses any other page
	// (41030). Empty accepts every page.
	Pages []string
	// Push is the message-push configuration of an official account
	// (the console's 服务器配置); [Server.SetPush] changes it at run time.
	Push Push
}

// Push is where and how the simulator pushes an official account's
// events.
type Push struct {
	// URL is the account's server URL; empty means no pushes.
	URL string
	// Token signs the pushes.
	Token string
	// Mode is plaintext (the zero value), compatible or safe; the last two
	// need EncodingAESKey.
	Mode           wechat.PushMode
	EncodingAESKey string
}

// User is a simulated WeChat user.
type User struct {
	// Name identifies the user in the simulator (e.g. "alice").
	Name string
	// Nickname is what /sns/userinfo reports; empty means Name with its
	// first letter upper-cased.
	Nickname string
	// Phone is the number /sim/phone-code uses when none is given; empty
	// means a number derived from the name.
	Phone string
	// Snapshot makes official-account OAuth treat the user as a
	// snapshot-mode visitor: is_snapshotuser 1, virtual openid and unionid.
	Snapshot bool
}

// Config configures a simulator. Zero fields mean the defaults noted.
type Config struct {
	// Apps are the simulated apps; nil means [DevApps].
	Apps []App
	// Users are the test users offered on the pages; nil means
	// [DefaultUsers]. Any other name is created on demand by /sim/login and
	// the pages.
	Users []User
	// Now returns the current time; nil means time.Now. Tests inject a
	// fake clock to expire codes and tokens without sleeping.
	Now func() time.Time
	// AutoConfirm, when set, makes the authorize pages redirect at once as
	// this user instead of showing a page. Changeable with
	// [Server.SetAutoConfirm] and POST /sim/auto-confirm.
	AutoConfirm string
	// RotateSessionKeyOnLogin gives the user a new session_key on each new
	// login code, as real WeChat may; it makes stale-key decryption
	// failures reproducible.
	RotateSessionKeyOnLogin bool
	// AnyUserAgent serves the in-WeChat authorize page to any browser. By
	// default, like WeChat, it asks to open the link in WeChat unless the
	// User-Agent contains MicroMessenger.
	AnyUserAgent bool
	// Seed keys the derivation of openids, unionids and session keys;
	// empty means "wechattest". Same seed, same ids.
	Seed string
	// Logger receives a line per request; nil discards.
	Logger *slog.Logger

	// PushAttempts is how many times an event is delivered before the
	// simulator gives up (WeChat: three); 0 means 3.
	PushAttempts int
	// PushTimeout bounds each delivery (WeChat: 5 s); 0 means 5 s.
	PushTimeout time.Duration
	// PushRetryDelay is the wait between deliveries; 0 means 1 s.
	PushRetryDelay time.Duration
	// PushClient sends the pushes; nil means a plain client with
	// PushTimeout.
	PushClient *http.Client
}

// DevPlatform is the Open Platform account of [DevApps].
const DevPlatform = "wxoidc-dev"

// DevApps returns the apps of `wxoidc dev` (SPEC §9), all bound to
// [DevPlatform].
func DevApps() []App {
	return []App{
		{AppID: "wxd0000000000000a1", Secret: "dev-miniprogram-secret", Kind: wechat.KindMiniProgram, Platform: DevPlatform, Name: "wxoidc dev mini program"},
		{AppID: "wxd0000000000000b2", Secret: "dev-website-secret", Kind: wechat.KindWebsite, Platform: DevPlatform, Name: "wxoidc dev website"},
		{AppID: "wxd0000000000000c3", Secret: "dev-official-secret", Kind: wechat.KindOfficial, Platform: DevPlatform, Name: "wxoidc dev official account"},
	}
}

// DefaultUsers returns the deterministic test users: alice, bob, carol, and
// snapshot (a snapshot-mode visitor).
func DefaultUsers() []User {
	return []User{
		{Name: "alice", Nickname: "Alice", Phone: "13800138001"},
		{Name: "bob", Nickname: "Bob", Phone: "13800138002"},
		{Name: "carol", Nickname: "Carol", Phone: "13800138003"},
		{Name: "snapshot", Nickname: "微信用户", Phone: "13800138004", Snapshot: true},
	}
}

// Lifetimes, as WeChat's.
const (
	LoginCodeTTL    = 5 * time.Minute
	PhoneCodeTTL    = 5 * time.Minute
	OfficialCodeTTL = 5 * time.Minute
	WebsiteCodeTTL  = 10 * time.Minute
	ServerTokenTTL  = 2 * time.Hour
	TokenOverlap    = 5 * time.Minute
	OAuthTokenTTL   = 2 * time.Hour
	RefreshTokenTTL = 30 * 24 * time.Hour
)

type codeKind int

const (
	codeLogin codeKind = iota
	codePhone
	codeWebsite
	codeOfficial
)

type code struct {
	kind     codeKind
	appID    string
	user     string
	expires  time.Time
	used     bool
	phone    string // codePhone: pure number
	cc       string // codePhone: country code
	scope    string // OAuth codes
	snapshot bool   // codeOfficial: snapshot-mode visitor
}

type identity struct{ appID, user string }

type tokenRef struct {
	appID   string
	stable  bool
	expires time.Time
}

type tokenSpace struct {
	cur, prev   string
	curExpires  time.Time
	prevExpires time.Time
	prevUntil   time.Time // previous accepted until then
	lastForce   time.Time
	forceDay    string
	forceCount  int
}

type oauthGrant struct {
	appID, user     string
	openID, unionID string
	scope           string
	snapshot        bool
	access, refresh string
	accessExpires   time.Time
	refreshExpires  time.Time
}

// Server is the simulator. Create it with [New]; it is safe for concurrent
// use.
type Server struct {
	now  func() time.Time // never nil
	log  *slog.Logger     // never nil
	seed []byte
	cfg  Config
	apps map[string]App // by appid; read-only after New
	mux  *http.ServeMux

	mu           sync.Mutex // guards everything below
	users        map[string]User
	byOpenID     map[string]identity
	sessionGen   map[identity]int
	codes        map[string]*code
	spaces       map[tokenRef]*tokenSpace // keyed by {appID, stable} (expires zero)
	serverTokens map[string]tokenRef
	access       map[string]*oauthGrant
	refresh      map[string]*oauthGrant
	faults       Faults
	autoConfirm  string
	calls        map[string]int
	lastPrune    time.Time
	pushes       map[string]Push      // by appid
	qrcodes      map[string]*qrTicket // by ticket
	followers    map[identity]*follow
	wxaCodes     map[string][]WXACode // by appid, oldest first
}

// New returns a simulator. It panics on an invalid Config (duplicate or
// empty appid, unknown kind), as test constructors may.
func New(cfg Config) *Server {
	if cfg.Apps == nil {
		cfg.Apps = DevApps()
	}
	if cfg.Users == nil {
		cfg.Users = DefaultUsers()
	}
	s := &Server{
		now:          cfg.Now,
		log:          cfg.Logger,
		cfg:          cfg,
		apps:         map[string]App{},
		users:        map[string]User{},
		byOpenID:     map[string]identity{},
		sessionGen:   map[identity]int{},
		codes:        map[string]*code{},
		wxaCodes:     map[string][]WXACode{},
		spaces:       map[tokenRef]*tokenSpace{},
		serverTokens: map[string]tokenRef{},
		access:       map[string]*oauthGrant{},
		refresh:      map[string]*oauthGrant{},
		autoConfirm:  cfg.AutoConfirm,
		calls:        map[string]int{},
		pushes:       map[string]Push{},
		qrcodes:      map[string]*qrTicket{},
		followers:    map[identity]*follow{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "wechattest")
	seed := cfg.Seed
	if seed == "" {
		seed = "wechattest"
	}
	s.seed = []byte(seed)
	for _, a := range cfg.Apps {
		if a.AppID == "" {
			panic("wechattest: app without appid")
		}
		if _, dup := s.apps[a.AppID]; dup {
			panic("wechattest: duplicate appid " + a.AppID)
		}
		switch a.Kind {
		case wechat.KindMiniProgram, wechat.KindWebsite, wechat.KindOfficial:
		default:
			panic(fmt.Sprintf("wechattest: app %s: unknown kind %q", a.AppID, a.Kind))
		}
		s.apps[a.AppID] = a
		if a.Push.URL != "" {
			if err := checkPush(a.AppID, a.Push); err != nil {
				panic(err.Error())
			}
			s.pushes[a.AppID] = a.Push
		}
	}
	for _, u := range cfg.Users {
		if !validUserName(u.Name) {
			panic(fmt.Sprintf("wechattest: invalid user name %q", u.Name))
		}
		s.users[u.Name] = u
	}
	s.routes()
	return s
}

// ServeHTTP implements [http.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func validUserName(n string) bool {
	if n == "" || len(n) > 64 || !utf8.ValidString(n) {
		return false
	}
	for _, r := range n {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// userLocked returns the user of that name, creating it on demand.
func (s *Server) userLocked(name string) User {
	u, ok := s.users[name]
	if !ok {
		u = User{Name: name}
		s.users[name] = u
	}
	if u.Nickname == "" {
		r, size := utf8.DecodeRuneInString(u.Name)
		u.Nickname = string(unicode.ToUpper(r)) + u.Name[size:]
	}
	if u.Phone == "" {
		d := s.derive("phone", u.Name)
		u.Phone = "139" + fmt.Sprintf("%08d", (uint32(d[0])<<24|uint32(d[1])<<16|uint32(d[2])<<8|uint32(d[3]))%100000000)
	}
	return u
}

// AddUser adds (or replaces) a test user.
func (s *Server) AddUser(u User) {
	if !validUserName(u.Name) {
		panic(fmt.Sprintf("wechattest: invalid user name %q", u.Name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Name] = u
}

func (s *Server) derive(label string, parts ...string) []byte {
	m := hmac.New(sha256.New, s.seed)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func (s *Server) deriveID(label string, parts ...string) string {
	return "o" + base64.RawURLEncoding.EncodeToString(s.derive(label, parts...))[:27]
}

// OpenID returns the openid of user in app appID. The same (seed, appid,
// user) always gives the same openid.
func (s *Server) OpenID(appID, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openIDLocked(appID, user)
}

func (s *Server) openIDLocked(appID, user string) string {
	id := s.deriveID("openid", appID, user)
	s.byOpenID[id] = identity{appID, user}
	return id
}

// UnionID returns the unionid of user as seen by app appID, or "" when the
// app is not bound to an Open Platform account.
func (s *Server) UnionID(appID, user string) string {
	a, ok := s.apps[appID]
	if !ok || a.Platform == "" {
		return ""
	}
	return s.deriveID("unionid", a.Platform, user)
}

func (s *Server) virtualIDs(appID, user string) (openID, unionID string) {
	s.byOpenID[s.deriveID("snapshot-openid", appID, user)] = identity{appID, user}
	openID = s.deriveID("snapshot-openid", appID, user)
	if a := s.apps[appID]; a.Platform != "" {
		unionID = s.deriveID("snapshot-unionid", a.Platform, user)
	}
	return openID, unionID
}

// SessionKey returns the current session_key of user in Mini Program appID.
func (s *Server) SessionKey(appID, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionKeyLocked(appID, user)
}

func (s *Server) sessionKeyLocked(appID, user string) string {
	gen := s.sessionGen[identity{appID, user}]
	return base64.StdEncoding.EncodeToString(s.derive("session_key", appID, user, strconv.Itoa(gen))[:16])
}

// SetAutoConfirm makes the authorize pages confirm at once as user; ""
// switches back to showing the pages.
func (s *Server) SetAutoConfirm(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoConfirm = user
}

// Calls returns how many requests path (e.g. "/cgi-bin/stable_token") has
// received.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// CallCounts returns a copy of the per-path request counts.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		m[k] = v
	}
	return m
}

// ResetCalls sets every call counter to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// LoginCode issues a Mini Program login code for user, as wx.login() would
// (POST /sim/login does the same over HTTP).
func (s *Server) LoginCode(appID, user string) (string, error) {
	a, ok := s.apps[appID]
	if !ok || a.Kind != wechat.KindMiniProgram {
		return "", fmt.Errorf("wechattest: %q is not a mini program of this simulator", appID)
	}
	if !validUserName(user) {
		return "", fmt.Errorf("wechattest: invalid user name %q", user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(user)
	if s.cfg.RotateSessionKeyOnLogin {
		s.sessionGen[identity{appID, user}]++
	}
	return s.issueLocked(&code{kind: codeLogin, appID: appID, user: user, expires: s.now().Add(LoginCodeTTL)}), nil
}

// PhoneCode issues a phone code for user, as the getPhoneNumber button
// would (POST /sim/phone-code does the same over HTTP). phone may be empty
// (the user's number), a mainland number, or +CC followed by the number.
func (s *Server) PhoneCode(appID, user, phone string) (string, error) {
	a, ok := s.apps[appID]
	if !ok || a.Kind != wechat.KindMiniProgram {
		return "", fmt.Errorf("wechattest: %q is not a mini program of this simulator", appID)
	}
	if !validUserName(user) {
		return "", fmt.Errorf("wechattest: invalid user name %q", user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(user)
	if phone == "" {
		phone = u.Phone
	}
	cc, pure, err := splitPhone(phone)
	if err != nil {
		return "", err
	}
	return s.issueLocked(&code{kind: codePhone, appID: appID, user: user, phone: pure, cc: cc, expires: s.now().Add(PhoneCodeTTL)}), nil
}

// splitPhone normalises a phone number into WeChat's countryCode and
// purePhoneNumber. A mainland China mobile number (11 digits, 13 to 19)
// may be written the usual ways: 13800138000, 138 0013 8000,
// 138-0013-8000, +8613800138000, +86 138 0013 8000, (+86) 138…,
// 008613800138000 or 8613800138000. Any other country needs +CC and a
// separator (+1-4155550100, +44 2071838750), since a country code has no
// fixed length. Anything else, a short or 10-digit number say, is refused
// as ambiguous rather than guessed at.
func splitPhone(p string) (cc, pure string, err error) {
	p = strings.TrimSpace(p)
	digits := func(s string) bool {
		if s == "" || len(s) > 20 {
			return false
		}
		for _, r := range s {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	compact := strings.NewReplacer(" ", "", "-", "", ".", "", "(", "", ")", "").Replace(p)
	if rest, ok := strings.CutPrefix(p, "+"); ok {
		if c, n, found := strings.Cut(strings.NewReplacer(" ", "-", ")", "-").Replace(rest), "-"); found && c != "86" && digits(c) && len(c) <= 3 {
			if n = strings.NewReplacer(" ", "", "-", "", ".", "").Replace(n); digits(n) {
				return c, n, nil
			}
		}
	}
	var n string
	switch {
	case strings.HasPrefix(compact, "+86"):
		n = compact[3:]
	case strings.HasPrefix(compact, "+"):
		return "", "", fmt.Errorf("wechattest: phone %q: write a number outside mainland China as +CC-NUMBER (+1-4155550100)", p)
	case strings.HasPrefix(compact, "0086"):
		n = compact[4:]
	case len(compact) == 13 && strings.HasPrefix(compact, "86"):
		n = compact[2:]
	default:
		n = compact
	}
	if len(n) != 11 || n[0] != '1' || n[1] < '3' || !digits(n) {
		return "", "", fmt.Errorf("wechattest: phone %q is not a mainland China mobile number (11 digits from 13 to 19, optionally with +86); write any other number as +CC-NUMBER", p)
	}
	return "86", n, nil
}

// EncryptData produces legacy encryptedData and iv for user of Mini Program
// appID under the user's current session key: fields as JSON plus a
// watermark {appid, timestamp}. It is what the old getPhoneNumber button
// hands the client, for testing [wechat.DecryptData] end to end.
func (s *Server) EncryptData(appID, user string, fields map[string]any) (encryptedData, iv string, err error) {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["watermark"] = wechat.Watermark{AppID: appID, Timestamp: s.now().Unix()}
	pt, err := json.Marshal(m)
	if err != nil {
		return "", "", fmt.Errorf("wechattest: encode data: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(s.SessionKey(appID, user))
	if err != nil {
		return "", "", err
	}
	ivb := make([]byte, 16)
	rand.Read(ivb)
	ct, err := encryptCBC(key, ivb, pt)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(ct), base64.StdEncoding.EncodeToString(ivb), nil
}

func (s *Server) issueLocked(c *code) string {
	s.pruneLocked()
	v := randomString(32)
	s.codes[v] = c
	return v
}

// pruneLocked forgets codes, tokens and grants long past expiry, at most
// once a minute of simulated time.
func (s *Server) pruneLocked() {
	now := s.now()
	if now.Sub(s.lastPrune) < time.Minute {
		return
	}
	s.lastPrune = now
	for k, c := range s.codes {
		if now.Sub(c.expires) > time.Hour {
			delete(s.codes, k)
		}
	}
	for k, q := range s.qrcodes {
		if !q.expires.IsZero() && now.Sub(q.expires) > time.Hour {
			delete(s.qrcodes, k)
		}
	}
	for k, t := range s.serverTokens {
		if now.Sub(t.expires) > time.Hour {
			delete(s.serverTokens, k)
		}
	}
	for k, g := range s.refresh {
		if now.After(g.refreshExpires) {
			delete(s.refresh, k)
			delete(s.access, g.access)
		}
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

func (s *Server) sortedUsers() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := make([]User, 0, len(s.users))
	for name := range s.users {
		us = append(us, s.userLocked(name))
	}
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	return us
}
