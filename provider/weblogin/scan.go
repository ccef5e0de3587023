package weblogin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// kindScan is the scan-with-the-Mini-Program login method and waitKind.
const kindScan = "scan"

// DefaultScanLifetime is how long a Mini Program scan code is good for.
const DefaultScanLifetime = 5 * time.Minute

// ScanConfig turns on "scan with the Mini Program" (SPEC §11): the login
// page shows a Mini Program code (wxa/getwxacodeunlimit) whose scene is the
// pending login's user code; the Mini Program, opened on Page by the scan,
// approves it for its signed-in user through /oauth2/device/verify.
type ScanConfig struct {
	// AppID is the Mini Program's appid; it must be among
	// Config.WeChatApps, of kind miniprogram.
	AppID string
	// Page is the Mini Program page the code opens (e.g.
	// pages/scan/index): no leading slash, no query.
	Page string
	// EnvVersion is release (default), trial or develop; anything but
	// release also skips WeChat's check that the page is published.
	EnvVersion string
	// Lifetime bounds how long a code can be approved; default 5 minutes.
	Lifetime time.Duration
}

// scanCodes fetches Mini Program codes and keeps each for its pending
// login's lifetime: one WeChat call per code and replica, however often
// the page is shown.
type scanCodes struct {
	cfg    ScanConfig
	client *wechat.Client
	group  singleflight.Group

	mu    sync.Mutex // guards cache
	cache map[string]cachedCode
}

type cachedCode struct {
	url     template.URL
	expires time.Time
}

// maxCachedCodes bounds the cache; past it, expired codes are dropped, and
// if none has expired, all are (they are fetched again on demand).
const maxCachedCodes = 2048

// show implements waitKind.show for the scan method.
func (sc *scanCodes) show(ctx context.Context, d storage.DeviceAuth, locale string) (waitView, error) {
	u, err := sc.code(ctx, d.UserCode, d.ExpiresAt)
	if err != nil {
		return waitView{}, err
	}
	return waitView{Image: u, Alt: msg(locale, "scanAlt"), Instructions: msg(locale, "scanInstructions")}, nil
}

// code returns the data: URL of the Mini Program code for userCode.
func (sc *scanCodes) code(ctx context.Context, userCode string, expires time.Time) (template.URL, error) {
	now := time.Now()
	sc.mu.Lock()
	c, ok := sc.cache[userCode]
	sc.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.url, nil
	}
	v, err, _ := sc.group.Do(userCode, func() (any, error) {
		req := wechat.WXACodeRequest{Scene: userCode, Page: sc.cfg.Page, EnvVersion: sc.cfg.EnvVersion}
		if sc.cfg.EnvVersion != "" && sc.cfg.EnvVersion != "release" {
			f := false
			req.CheckPath = &f
		}
		img, err := sc.client.WXACodeUnlimit(context.WithoutCancel(ctx), req)
		if err != nil {
			return nil, err
		}
		u := template.URL("data:" + img.ContentType + ";base64," + base64.StdEncoding.EncodeToString(img.Data))
		sc.mu.Lock()
		defer sc.mu.Unlock()
		if len(sc.cache) >= maxCachedCodes {
			for k, c := range sc.cache {
				if !now.Before(c.expires) {
					delete(sc.cache, k)
				}
			}
			if len(sc.cache) >= maxCachedCodes {
				clear(sc.cache)
			}
		}
		sc.cache[userCode] = cachedCode{url: u, expires: expires}
		return u, nil
	})
	if err != nil {
		return "", fmt.Errorf("mini program code: %w", err)
	}
	return v.(template.URL), nil
}

// newScanCodes checks cfg against the apps.
func newScanCodes(cfg *ScanConfig, apps map[string]wechatApp) (*scanCodes, error) {
	app, ok := apps[cfg.AppID]
	switch {
	case cfg.AppID == "":
		return nil, errors.New("weblogin: scan: appid: required")
	case !ok || app.kind != wechat.KindMiniProgram || app.client == nil:
		return nil, fmt.Errorf("weblogin: scan: appid: %s is not a Mini Program among the WeChat apps", cfg.AppID)
	}
	if err := CheckScanPage(cfg.Page); err != nil {
		return nil, fmt.Errorf("weblogin: scan: page: %w", err)
	}
	switch cfg.EnvVersion {
	case "", "release", "trial", "develop":
	default:
		return nil, fmt.Errorf("weblogin: scan: env_version: %q is not release, trial or develop", cfg.EnvVersion)
	}
	c := *cfg
	if c.Lifetime <= 0 {
		c.Lifetime = DefaultScanLifetime
	}
	return &scanCodes{cfg: c, client: app.client, cache: map[string]cachedCode{}}, nil
}

// wechatApp is what newScanCodes needs of a provider.WeChatApp.
type wechatApp struct {
	kind   wechat.AppKind
	client *wechat.Client
}

// CheckScanPage reports why page cannot be a Mini Program code's page
// (wechat-api.md §8.1): required, no leading slash, no query.
func CheckScanPage(page string) error {
	switch {
	case page == "":
		return errors.New("required (e.g. pages/scan/index)")
	case page[0] == '/':
		return fmt.Errorf("%q must not start with a slash", page)
	}
	for _, c := range page {
		if c == '?' || c == '#' || c == ' ' {
			return fmt.Errorf("%q must be a bare page path, without query or fragment (the user code travels in scene)", page)
		}
	}
	return nil
}
