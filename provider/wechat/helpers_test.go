package wechat_test

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// The apps of wechattest.DevApps.
const (
	mpID      = "wxd0000000000000a1"
	mpSecret  = "dev-miniprogram-secret"
	webID     = "wxd0000000000000b2"
	webSecret = "dev-website-secret"
	oaID      = "wxd0000000000000c3"
	oaSecret  = "dev-official-secret"
)

// clock is a fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	sim *wechattest.Server
	ts  *httptest.Server
	clk *clock
}

func newEnv(t testing.TB, cfg wechattest.Config) *env {
	t.Helper()
	clk := newClock()
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	sim := wechattest.New(cfg)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return &env{sim: sim, ts: ts, clk: clk}
}

func (e *env) endpoint() wechat.Endpoint {
	return wechat.Endpoint{APIURL: e.ts.URL, OpenURL: e.ts.URL}
}

func (e *env) client(appID, secret string) *wechat.Client {
	return &wechat.Client{
		AppID:        appID,
		AppSecret:    secret,
		Endpoint:     e.endpoint(),
		HTTPClient:   e.ts.Client(),
		Timeout:      2 * time.Second,
		RetryBackoff: time.Millisecond,
		Now:          e.clk.Now,
	}
}

func (e *env) loginCode(t testing.TB, appID, user string) string {
	t.Helper()
	c, err := e.sim.LoginCode(appID, user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
