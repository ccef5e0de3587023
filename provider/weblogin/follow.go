package weblogin

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// kindOfficial is the follow-the-official-account login method and
// waitKind.
const kindOfficial = "official"

// DefaultFollowLifetime is how long a follow-login QR code can be scanned.
const DefaultFollowLifetime = 5 * time.Minute

// FollowConfig turns on follow-the-official-account login (SPEC §12) for
// one official account: the desktop login page shows the account's
// temporary parametric QR code; scanning it in WeChat (and following the
// account, if the person does not yet) makes WeChat push a subscribe or
// SCAN event to /wechat/events/{appid}, which signs the waiting page in.
type FollowConfig struct {
	// AppID is the official account's appid; it must be among
	// Config.WeChatApps, of kind official, and be a verified service
	// account (only those may create parametric QR codes).
	AppID string
	// Token is the push Token of the account's server configuration; it
	// is a secret and is never logged.
	Token string
	// Mode is how WeChat pushes: plaintext, compatible or safe; empty
	// means plaintext.
	Mode wechat.PushMode
	// EncodingAESKey decrypts compatible- and safe-mode pushes; a secret.
	EncodingAESKey string
	// PreviousEncodingAESKey, when set, also decrypts pushes while WeChat
	// switches to a new EncodingAESKey; a secret.
	PreviousEncodingAESKey string
	// Lifetime is how long a QR code can be scanned; default 5 minutes,
	// at most StateLifetime.
	Lifetime time.Duration
	// Reply, when set, is the passive reply the person gets in the chat
	// once signed in; {client} stands for the client's name.
	Reply string
	// ReplyExpired, ReplyUsed, ReplyNoAccount, ReplyDisabled and
	// ReplyClosed are the passive replies to a scan that signs nobody in:
	// the code expired; it was used already (scanned twice); users.
	// registration existing found no account; the account is disabled;
	// the login page was closed. Empty means the built-in text, in the
	// login page's language (zh-CN or English); {client} stands for the
	// client's name.
	ReplyExpired, ReplyUsed, ReplyNoAccount, ReplyDisabled, ReplyClosed string
}

// Kinds of passive reply to a scan that signs nobody in (the denial
// reasons, and these).
const (
	replyExpired = "expired"
	replyUsed    = "used"
)

// followReplies are the built-in replies by kind: zh-CN, English. Short:
// WeChat shows them as a chat message from the account.
var followReplies = map[string][2]string{
	replyExpired:    {"二维码已过期，没有登录。请在网页上获取新的二维码后重新扫码。", "This QR code has expired; nobody was signed in. Get a new code on the website and scan it."},
	replyUsed:       {"这个二维码已经用过了。如需登录，请在网页上获取新的二维码后扫码。", "This QR code has already been used. To sign in, get a new code on the website and scan it."},
	reasonNoAccount: {"未登录：这个微信没有可以登录 {client} 的账号。", "Not signed in: this WeChat user has no {client} account."},
	reasonDisabled:  {"未登录：你的账号已被停用。", "Not signed in: your account is disabled."},
	reasonClosed:    {"未登录：扫码时登录页面已关闭。请重新打开网页的登录页，扫描新的二维码。", "Not signed in: the login page was closed when you scanned. Open the website's login page again and scan the new code."},
}

// reply is the passive reply of kind (replyExpired, replyUsed or a denial
// reason) for a login shown in locale, for the client called name.
func (f *follow) reply(kind, locale, name string) string {
	text := map[string]string{
		replyExpired: f.cfg.ReplyExpired, replyUsed: f.cfg.ReplyUsed, reasonNoAccount: f.cfg.ReplyNoAccount,
		reasonDisabled: f.cfg.ReplyDisabled, reasonClosed: f.cfg.ReplyClosed,
	}[kind]
	if text == "" {
		text = followReplies[kind][0]
		if locale == localeEN {
			text = followReplies[kind][1]
		}
	}
	if name == "" {
		name = "…"
	}
	return strings.ReplaceAll(text, "{client}", name)
}

// follow is a configured follow-the-official-account login.
type follow struct {
	cfg      FollowConfig
	client   *wechat.Client
	receiver *wechat.PushReceiver
	sceneKey []byte // keys the scene's MAC; never nil after newFollow
}

func newFollow(cfg FollowConfig, client *wechat.Client, secret []byte, stateLifetime time.Duration) (*follow, error) {
	var errs []error
	if client == nil {
		errs = append(errs, fmt.Errorf("weblogin: follow: appid: %s is not an official account among the WeChat apps", cfg.AppID))
	}
	if cfg.Token == "" {
		errs = append(errs, errors.New("weblogin: follow: token: required"))
	}
	if cfg.Mode == "" {
		cfg.Mode = wechat.PushPlaintext
	}
	r := &wechat.PushReceiver{AppID: cfg.AppID, Token: cfg.Token, Mode: cfg.Mode}
	switch cfg.Mode {
	case wechat.PushPlaintext:
	case wechat.PushCompatible, wechat.PushSafe:
		c, err := wechat.NewPushCipher(cfg.AppID, cfg.EncodingAESKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("weblogin: follow: %w", err))
		}
		r.Cipher = c
		if cfg.PreviousEncodingAESKey != "" {
			pc, err := wechat.NewPushCipher(cfg.AppID, cfg.PreviousEncodingAESKey)
			if err != nil {
				errs = append(errs, fmt.Errorf("weblogin: follow: previous key: %w", err))
			}
			r.PreviousCipher = pc
		}
	default:
		errs = append(errs, fmt.Errorf("weblogin: follow: mode: %q is not plaintext, compatible or safe", cfg.Mode))
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultFollowLifetime
	}
	if cfg.Lifetime > stateLifetime {
		errs = append(errs, fmt.Errorf("weblogin: follow: lifetime: at most %s", stateLifetime))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &follow{cfg: cfg, client: client, receiver: r, sceneKey: keys.DeriveMAC(secret, keys.PurposeFollowLoginScene)}, nil
}

// followQR is the parametric QR code of a waiting follow login, kept in
// its login state so that every replica shows the same code and can check
// the ticket of a push.
type followQR struct {
	AppID  string `json:"appid"`
	Ticket string `json:"ticket"`
	// URL is what the code encodes (weixin.qq.com/q/…); the page renders
	// it, so the browser never calls WeChat.
	URL string `json:"url"`
}

// scene is the QR code's scene_str for a waiting login's user code: the
// code (to find the login by) and a MAC of it (so a scene cannot be made
// up): 8 + 1 + 22 characters, within WeChat's 64.
func (f *follow) scene(userCode string) string {
	return userCode + "_" + f.sceneMAC(userCode)
}

func (f *follow) sceneMAC(userCode string) string {
	m := hmac.New(sha256.New, f.sceneKey)
	m.Write([]byte(f.cfg.AppID))
	m.Write([]byte{0})
	m.Write([]byte(userCode))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// userCodeOf returns the user code of a scene this provider made, or
// false.
func (f *follow) userCodeOf(scene string) (string, bool) {
	code, mac, ok := strings.Cut(scene, "_")
	if !ok {
		return "", false
	}
	if _, valid := storage.NormalizeUserCode(code); !valid || len(code) != storage.UserCodeLength {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(mac), []byte(f.sceneMAC(code))) != 1 {
		return "", false
	}
	return code, true
}

// prepare implements waitKind.prepare: it creates the temporary QR code
// of the login with user code userCode and keeps it in p.
func (f *follow) prepare(ctx context.Context, userCode string, p *pending) error {
	qr, err := f.client.CreateTempQRCode(ctx, f.scene(userCode), f.cfg.Lifetime)
	if err != nil {
		return fmt.Errorf("create official-account QR code: %w", err)
	}
	p.QR = &followQR{AppID: f.cfg.AppID, Ticket: qr.Ticket, URL: qr.URL}
	return nil
}

// show implements waitKind.show: the QR code, rendered here from its URL.
func (f *follow) show(_ context.Context, d storage.DeviceAuth, locale string) (waitView, error) {
	p, err := decodePending(d.Data)
	if err != nil {
		return waitView{}, err
	}
	if p.QR == nil {
		return waitView{}, errors.New("follow login without a QR code")
	}
	q, err := qrcode.New(p.QR.URL, qrcode.Medium)
	if err != nil {
		return waitView{}, fmt.Errorf("render QR code: %w", err)
	}
	// Whole pixels per module (a negative size): crisp for cameras.
	png, err := q.PNG(-6)
	if err != nil {
		return waitView{}, fmt.Errorf("render QR code: %w", err)
	}
	return waitView{
		Image:        template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
		Alt:          msg(locale, "officialAlt"),
		Instructions: msg(locale, "officialInstructions"),
	}, nil
}
