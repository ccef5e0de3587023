package ops

import (
	"sync"
	"time"
)

// WeChatLog keeps, per appid, the outcome counts and the last failures of
// this process's calls to WeChat's server APIs, for the admin console's
// health view. It is safe for concurrent use; the zero value is ready. It
// holds no secret: an API name, an errcode label and a time per failure.
type WeChatLog struct {
	// Keep is how many failures are kept per appid; 0 means 20.
	Keep int

	mu   sync.Mutex
	apps map[string]*wechatAppLog // guarded by mu
}

// WeChatFailure is one failed call to WeChat.
type WeChatFailure struct {
	Time time.Time `json:"time"`
	// API is the API's name (e.g. "jscode2session").
	API string `json:"api"`
	// Errcode is WeChat's errcode, or "unavailable", "canceled", "error".
	Errcode string `json:"errcode"`
}

// WeChatHealth is what a WeChatLog knows of one appid.
type WeChatHealth struct {
	Since  time.Time `json:"since"`
	Calls  int64     `json:"calls"`
	Failed int64     `json:"failed"`
	// Recent holds the last failures, newest first.
	Recent []WeChatFailure `json:"recent_failures"`
}

type wechatAppLog struct {
	since         time.Time
	calls, failed int64
	ring          []WeChatFailure // the last Keep failures; next is the slot to write
	next          int
}

// Observe returns the function to chain into [wechat.Client.ObserveCall]
// of the client of appID.
func (l *WeChatLog) Observe(appID string) func(api string, d time.Duration, err error) {
	return func(api string, _ time.Duration, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		a := l.app(appID)
		a.calls++
		if err == nil {
			return
		}
		a.failed++
		f := WeChatFailure{Time: time.Now().UTC(), API: api, Errcode: errcodeLabel(err)}
		keep := l.Keep
		if keep <= 0 {
			keep = 20
		}
		if len(a.ring) < keep {
			a.ring = append(a.ring, f)
			return
		}
		a.ring[a.next] = f
		a.next = (a.next + 1) % keep
	}
}

// app returns appID's log, creating it; l.mu must be held.
func (l *WeChatLog) app(appID string) *wechatAppLog {
	if l.apps == nil {
		l.apps = map[string]*wechatAppLog{}
	}
	a, ok := l.apps[appID]
	if !ok {
		a = &wechatAppLog{since: time.Now().UTC()}
		l.apps[appID] = a
	}
	return a
}

// Health returns what l knows of appID (zero counts for an appid never
// called).
func (l *WeChatLog) Health(appID string) WeChatHealth {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.app(appID)
	out := WeChatHealth{Since: a.since, Calls: a.calls, Failed: a.failed, Recent: make([]WeChatFailure, 0, len(a.ring))}
	for i := range a.ring { // newest first
		j := (a.next - 1 - i + 2*len(a.ring)) % len(a.ring)
		out.Recent = append(out.Recent, a.ring[j])
	}
	return out
}
