package weblogin_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
	"github.com/wxoidc/wxoidc/storage"
)

const (
	pushToken = "testpushtoken42"
	aesKey    = "Zm9yd3hvaWRjdGVzdHNvbmx5MDEyMzQ1Njc4OWFiY2Q"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// followEnv is an env with follow-the-official-account login for the dev
// official account, its pushes delivered by the simulator, and the log.
type followEnv struct {
	*env
	log  *syncBuffer
	mode wechat.PushMode
}

func newFollowEnv(t *testing.T, mode wechat.PushMode, lifetime time.Duration, opts ...func(*weblogin.Config)) *followEnv {
	t.Helper()
	logs := &syncBuffer{}
	fc := weblogin.FollowConfig{AppID: officialApp, Token: pushToken, Mode: mode, Lifetime: lifetime, Reply: "已登录 {client}"}
	if mode != wechat.PushPlaintext {
		fc.EncodingAESKey = aesKey
	}
	e := newEnv(t, append([]func(*weblogin.Config){func(c *weblogin.Config) {
		c.Follow = []weblogin.FollowConfig{fc}
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}}, opts...)...)
	if err := e.sim.SetPush(officialApp, wechattest.Push{URL: e.issuer + "/wechat/events/" + officialApp, Token: pushToken, Mode: mode, EncodingAESKey: fc.EncodingAESKey}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, secret := range []string{pushToken, aesKey} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("a secret is in the log:\n%s", logs.String())
			}
		}
	})
	return &followEnv{env: e, log: logs, mode: mode}
}

// startFollow starts a desktop login of the first-party client, picks
// "official" and returns the waiting page and the ticket of the QR code
// it shows (checked against what the simulator issued).
func startFollow(t *testing.T, e *followEnv, b *browser, verifier string) (page, string) {
	t.Helper()
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	chooser, _ := b.follow(authURL(conf, verifier))
	ch := choices(chooser.body)
	if chooser.status != 200 || ch["official"] == "" || ch["qr"] == "" {
		t.Fatalf("chooser: status %d, choices %v; want qr and official", chooser.status, ch)
	}
	wait, _ := b.follow(ch["official"])
	m := reImage.FindStringSubmatch(wait.body)
	if wait.status != 200 || m == nil {
		t.Fatalf("waiting page: status %d body %.500s", wait.status, wait.body)
	}
	text := decodeQR(t, html.UnescapeString(m[1]))
	codes := e.sim.OfficialQRCodes(officialApp)
	if len(codes) == 0 || codes[0].URL != text {
		t.Fatalf("the page shows %q; the simulator issued %v", text, codes)
	}
	if len(codes[0].Scene) > wechat.MaxQRSceneLength || !strings.Contains(codes[0].Scene, "_") {
		t.Fatalf("scene %q", codes[0].Scene)
	}
	return wait, codes[0].Ticket
}

func TestFollowLogin(t *testing.T) {
	for _, mode := range []wechat.PushMode{wechat.PushPlaintext, wechat.PushSafe} {
		t.Run(string(mode), func(t *testing.T) {
			e := newFollowEnv(t, mode, 0)
			alice := e.miniProgramSub("alice")
			b := e.browser(desktopUA)
			const verifier = "verifier-0123456789-0123456789-0123456789-abc"
			wait, ticket := startFollow(t, e, b, verifier)
			cont := choices(wait.body)["continue"]
			statusURL := strings.Replace(cont, "/login/wait/continue", "/login/wait/status", 1)
			if got := waitStatus(t, b, statusURL); got != "pending" {
				t.Fatalf("status %q, want pending", got)
			}

			// alice scans and follows: WeChat pushes subscribe; the
			// provider answers in the chat and approves the login.
			res, err := e.sim.Scan(context.Background(), officialApp, "alice", ticket)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Delivered || res.Event != "subscribe" || res.Attempts != 1 || res.Reply != "已登录 First" {
				t.Fatalf("scan: %+v", res)
			}
			if got := waitStatus(t, b, statusURL); got != "approved" {
				t.Fatalf("status %q, want approved", got)
			}
			done, _ := b.follow(cont)
			conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
			if idt := e.redeem(conf, verifier, done); idt.Subject != alice {
				t.Fatalf("signed in as %s, want alice's Mini Program sub %s", idt.Subject, alice)
			}

			// Scanned again: changes nothing, and the chat says the code
			// was used.
			res, err = e.sim.Scan(context.Background(), officialApp, "bob", ticket)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Delivered || !strings.Contains(res.Reply, "already been used") {
				t.Fatalf("second scan: %+v", res)
			}
			if !strings.Contains(e.log.String(), "scanned again") {
				t.Errorf("no log line for the second scan")
			}
		})
	}
}

// TestFollowLogin_Expired: a push for a code whose login has expired (a
// late retry; WeChat itself pushes nothing for an expired code, which
// wechattest's tests check) signs nobody in and tells the person; the
// page says the code expired. Expiry comes from a skewed login-step clock,
// not a short lifetime and a sleep (the code would expire before the test
// looked at it on busy cores).
func TestFollowLogin_Expired(t *testing.T) {
	clk := &clock{}
	e := newFollowEnv(t, wechat.PushPlaintext, time.Minute, func(c *weblogin.Config) { c.Now = clk.Now })
	b := e.browser(desktopUA)
	wait, ticket := startFollow(t, e, b, "verifier-0123456789-0123456789-0123456789-abc")
	scene := e.sim.OfficialQRCodes(officialApp)[0].Scene
	clk.Advance(61 * time.Second)
	now := clk.Now()
	ev := wechat.NewPushEvent(e.sim.OriginalID(officialApp), e.sim.OpenID(officialApp, "alice"), now.Unix(), "SCAN", scene, ticket)
	if st, body := send(t, pushRequest(t, e, officialApp, ev, now, pushToken)); st != 200 || !strings.Contains(body, "<![CDATA[This QR code has expired") {
		t.Fatalf("late push: %d %q", st, body)
	}
	if !strings.Contains(e.log.String(), "scanned after it expired") {
		t.Errorf("no log line for the late scan")
	}
	p := b.get(wait.url.String())
	if p.status != 410 || !strings.Contains(p.body, `data-error="expired"`) || choices(p.body)["restart"] == "" {
		t.Fatalf("expired: status %d body %.400s", p.status, p.body)
	}
}

// pushRequest is a push as WeChat would send it at ts.
func pushRequest(t *testing.T, e *followEnv, appID string, body []byte, ts time.Time, token string) *http.Request {
	t.Helper()
	tsStr := strconv.FormatInt(ts.Unix(), 10)
	q := url.Values{"timestamp": {tsStr}, "nonce": {"1234567"}, "signature": {wechat.PushSignature(token, tsStr, "1234567")}, "openid": {"o1"}}
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/wechat/events/"+appID+"?"+q.Encode(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/xml;charset=UTF-8")
	return req
}

func send(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPushEndpoint_Negative(t *testing.T) {
	e := newFollowEnv(t, wechat.PushPlaintext, 0)
	b := e.browser(desktopUA)
	_, ticket := startFollow(t, e, b, "verifier-0123456789-0123456789-0123456789-abc")
	scene := e.sim.OfficialQRCodes(officialApp)[0].Scene
	openID := e.sim.OpenID(officialApp, "alice")
	now := time.Now()
	event := func(scene, ticket string) []byte {
		return wechat.NewPushEvent(e.sim.OriginalID(officialApp), openID, now.Unix(), "subscribe", "qrscene_"+scene, ticket)
	}

	// The URL check: echostr back only with the right signature.
	q := url.Values{"timestamp": {"1700000000"}, "nonce": {"42"}, "echostr": {"7531902468"}}
	q.Set("signature", wechat.PushSignature(pushToken, "1700000000", "42"))
	if st, body := send(t, mustGet(e.issuer+"/wechat/events/"+officialApp+"?"+q.Encode())); st != 200 || body != "7531902468" {
		t.Fatalf("URL check: %d %q", st, body)
	}
	q.Set("signature", wechat.PushSignature("forged", "1700000000", "42"))
	if st, _ := send(t, mustGet(e.issuer+"/wechat/events/"+officialApp+"?"+q.Encode())); st != 403 {
		t.Fatalf("forged URL check: %d", st)
	}

	cases := []struct {
		name    string
		req     *http.Request
		status  int
		logLine string
	}{
		{"unknown appid", pushRequest(t, e, "wx0000000000000bad", event(scene, ticket), now, pushToken), 404, "unknown official account"},
		{"forged signature", pushRequest(t, e, officialApp, event(scene, ticket), now, "forgedtoken"), 403, "reason=signature"},
		{"stale timestamp", pushRequest(t, e, officialApp, event(scene, ticket), now.Add(-10*time.Minute), pushToken), 403, "reason=\"timestamp outside the window\""},
		{"oversized body", pushRequest(t, e, officialApp, append(event(scene, ticket), bytes.Repeat([]byte(" "), wechat.MaxPushBody)...), now, pushToken), 413, "body too large"},
		{"malformed XML", pushRequest(t, e, officialApp, []byte("<xml><ToUserName>gh_"), now, pushToken), 400, "reason=malformed"},
		{"encrypted push to a plaintext account", withQuery(pushRequest(t, e, officialApp, event(scene, ticket), now, pushToken), "encrypt_type", "aes"), 400, "reason=mode"},
	}
	for _, tc := range cases {
		st, _ := send(t, tc.req)
		if st != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, st, tc.status)
		}
		if !strings.Contains(e.log.String(), tc.logLine) {
			t.Errorf("%s: no log line with %q", tc.name, tc.logLine)
		}
	}

	// A scene that belongs to no login, and a made-up one: acknowledged
	// (WeChat must not retry), logged, and nobody signed in.
	for _, sc := range []string{"BCDFGHJK_AAAAAAAAAAAAAAAAAAAAAA", "not-ours"} {
		if st, body := send(t, pushRequest(t, e, officialApp, event(sc, ticket), now, pushToken)); st != 200 || body != "success" {
			t.Fatalf("unknown scene %q: %d %q", sc, st, body)
		}
	}
	if !strings.Contains(e.log.String(), "belongs to no login") {
		t.Errorf("no log line for an unknown scene")
	}
	// The right scene with another ticket does not sign in either.
	if st, body := send(t, pushRequest(t, e, officialApp, event(scene, "someoneelsesticket"), now, pushToken)); st != 200 || body != "success" {
		t.Fatalf("wrong ticket: %d %q", st, body)
	}
	d, err := e.store.DeviceAuthByUserCode(e.ctx, strings.SplitN(scene, "_", 2)[0])
	if err != nil || d.Status != storage.DevicePending {
		t.Fatalf("after bad pushes the login is %q (%v), want pending", d.Status, err)
	}

	// The real push signs in and gets the chat reply; WeChat's retry of
	// it (same body) is recognised and only acknowledged.
	st, body := send(t, pushRequest(t, e, officialApp, event(scene, ticket), now, pushToken))
	if st != 200 || !strings.Contains(body, "<Content><![CDATA[已登录 First]]></Content>") {
		t.Fatalf("push: %d %q", st, body)
	}
	st, body = send(t, pushRequest(t, e, officialApp, event(scene, ticket), now, pushToken))
	if st != 200 || body != "success" {
		t.Fatalf("replayed push: %d %q", st, body)
	}
	if !strings.Contains(e.log.String(), "push already received") {
		t.Errorf("no log line for the replayed push")
	}
	d, _ = e.store.DeviceAuthByUserCode(e.ctx, d.UserCode)
	if d.Status != storage.DeviceApproved {
		t.Fatalf("login %q, want approved", d.Status)
	}
}

func mustGet(u string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return req
}

func withQuery(req *http.Request, k, v string) *http.Request {
	q := req.URL.Query()
	q.Set(k, v)
	req.URL.RawQuery = q.Encode()
	return req
}

// clock is a settable clock for the login steps.
type clock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d += d
}

// TestFollowLogin_SlowWeChatLeftToWorker: when cgi-bin/user/info is too
// slow to finish within the push's answer, the push is still acknowledged
// within WeChat's 5 seconds (once, no retry), and the push worker of any
// replica finishes the sign-in from the recorded event once the claim
// lapses.
func TestFollowLogin_SlowWeChatLeftToWorker(t *testing.T) {
	clk := &clock{}
	logs := &syncBuffer{}
	e := newEnv(t, func(c *weblogin.Config) {
		c.Follow = []weblogin.FollowConfig{{AppID: officialApp, Token: pushToken}}
		c.Now = clk.Now
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	if err := e.sim.SetPush(officialApp, wechattest.Push{URL: e.issuer + "/wechat/events/" + officialApp, Token: pushToken}); err != nil {
		t.Fatal(err)
	}
	fe := &followEnv{env: e, log: logs}
	alice := e.miniProgramSub("alice")
	b := e.browser(desktopUA)
	const verifier = "verifier-0123456789-0123456789-0123456789-abc"
	wait, ticket := startFollow(t, fe, b, verifier)
	cont := choices(wait.body)["continue"]
	statusURL := strings.Replace(cont, "/login/wait/continue", "/login/wait/status", 1)

	e.sim.SetFaults(wechattest.Faults{Latency: 4 * time.Second, Path: wechat.PathFollowerInfo})
	start := time.Now()
	res, err := e.sim.Scan(context.Background(), officialApp, "alice", ticket)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); !res.Delivered || res.Attempts != 1 || took > 4500*time.Millisecond {
		t.Fatalf("scan answered after %s: %+v; want one delivery acknowledged within WeChat's 5 s", took, res)
	}
	if !strings.Contains(logs.String(), "left for the worker") {
		t.Fatalf("log:\n%s", logs.String())
	}
	e.sim.SetFaults(wechattest.Faults{})
	if got := waitStatus(t, b, statusURL); got != "pending" {
		t.Fatalf("status %q before the worker ran", got)
	}
	// The worker leaves a claimed event alone...
	e.auths[1].WorkPushes(e.ctx)
	if got := waitStatus(t, b, statusURL); got != "pending" {
		t.Fatalf("status %q: the worker took an event still claimed", got)
	}
	// ...and finishes it once the claim has lapsed, on the other replica
	// (the page polled meanwhile).
	clk.Advance(30 * time.Second)
	if got := waitStatus(t, b, statusURL); got != "pending" {
		t.Fatalf("status %q before the worker ran", got)
	}
	e.auths[1].WorkPushes(e.ctx)
	clk.Advance(-30 * time.Second) // the provider's clock is the real one
	if got := waitStatus(t, b, statusURL); got != "approved" {
		t.Fatalf("status %q after the worker, want approved", got)
	}
	done, _ := b.follow(cont)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	if idt := e.redeem(conf, verifier, done); idt.Subject != alice {
		t.Fatalf("signed in as %s, want %s", idt.Subject, alice)
	}
}

// stuckPushes is storage whose push-event writes hang until the caller
// gives up, as a database under a lock or an unreachable one would.
type stuckPushes struct{ storage.Storage }

func (stuckPushes) RecordPushEvent(ctx context.Context, _ storage.PushEvent, _ time.Time) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

// TestPushEndpoint_StorageStuck: a push that cannot be recorded is answered
// 503 within WeChat's 5 seconds (so that WeChat delivers it again), never
// acknowledged as done.
func TestPushEndpoint_StorageStuck(t *testing.T) {
	e := newEnv(t, func(c *weblogin.Config) {
		c.Follow = []weblogin.FollowConfig{{AppID: officialApp, Token: pushToken}}
		c.Storage = stuckPushes{c.Storage}
	})
	fe := &followEnv{env: e, log: &syncBuffer{}}
	now := time.Now()
	ev := wechat.NewPushEvent(e.sim.OriginalID(officialApp), e.sim.OpenID(officialApp, "alice"), now.Unix(), "SCAN", "BCDFGHJK_AAAAAAAAAAAAAAAAAAAAAA", "T")
	start := time.Now()
	st, _ := send(t, pushRequest(t, fe, officialApp, ev, now, pushToken))
	if took := time.Since(start); st != http.StatusServiceUnavailable || took > 4*time.Second {
		t.Fatalf("status %d after %s; want 503 well within 5 s", st, took)
	}
}

// TestFollowLogin_RefusedByRegistration: with users.registration existing,
// a scan by someone without an account ends the waiting page on a page
// that says so, whose way back gives the client access_denied.
func TestFollowLogin_RefusedByRegistration(t *testing.T) {
	e := newFollowEnv(t, wechat.PushPlaintext, 0, func(c *weblogin.Config) {
		c.Users = &provider.Users{Storage: c.Storage, Registration: provider.RegistrationExisting}
	})
	b := e.browser(desktopUA)
	wait, ticket := startFollow(t, e, b, "verifier-0123456789-0123456789-0123456789-abc")
	cont := choices(wait.body)["continue"]
	statusURL := strings.Replace(cont, "/login/wait/continue", "/login/wait/status", 1)
	res, err := e.sim.Scan(context.Background(), officialApp, "dave", ticket)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Delivered || res.Reply != "Not signed in: this WeChat user has no First account." {
		t.Fatalf("scan: %+v", res)
	}
	if got := waitStatus(t, b, statusURL); got != "denied" {
		t.Fatalf("status %q, want denied", got)
	}
	// The page the script reloads (and the continue link leads to).
	p, _ := b.follow(cont)
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `data-error="errNoAccount"`) {
		t.Fatalf("refused page: status %d body %.500s", p.status, p.body)
	}
	m := regexp.MustCompile(`href="([^"]+)" data-action="back"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no way back to the app: %.500s", p.body)
	}
	back, _ := url.Parse(html.UnescapeString(m[1]))
	if q := back.Query(); !strings.HasPrefix(back.String(), firstRedirect) || q.Get("error") != "access_denied" || q.Get("state") != stateFromTheTest {
		t.Fatalf("way back %s; want the client's redirect with error=access_denied and its state", back)
	}
	if strings.Contains(e.log.String(), "follow login approved") {
		t.Fatal("a refused scan was approved")
	}
}

// pushLog is storage that remembers the pushes recorded through it.
type pushLog struct {
	storage.Storage
	mu     *sync.Mutex
	events *[]storage.PushEvent
}

func (p pushLog) RecordPushEvent(ctx context.Context, e storage.PushEvent, claimUntil time.Time) (bool, error) {
	p.mu.Lock()
	*p.events = append(*p.events, e)
	p.mu.Unlock()
	return p.Storage.RecordPushEvent(ctx, e, claimUntil)
}

// TestFollowLogin_ErasureTakesThePushes: a push is recorded with its
// sender's openid, so that erasing the person who signed in by following
// erases the pushes they sent (SPEC §10: nothing personal left).
func TestFollowLogin_ErasureTakesThePushes(t *testing.T) {
	var (
		store  storage.Storage
		mu     sync.Mutex
		pushes []storage.PushEvent
	)
	e := newFollowEnv(t, wechat.PushPlaintext, 0, func(c *weblogin.Config) {
		store = c.Storage
		c.Storage = pushLog{Storage: c.Storage, mu: &mu, events: &pushes}
	})
	b := e.browser(desktopUA)
	const verifier = "verifier-0123456789-0123456789-0123456789-abc"
	wait, ticket := startFollow(t, e, b, verifier)
	if res, err := e.sim.Scan(context.Background(), officialApp, "alice", ticket); err != nil || !res.Delivered {
		t.Fatalf("scan: %+v %v", res, err)
	}
	done, _ := b.follow(choices(wait.body)["continue"])
	sub := e.redeem(e.config(firstParty, firstSecret, firstRedirect, "openid"), verifier, done).Subject

	mu.Lock()
	recorded := slices.Clone(pushes)
	mu.Unlock()
	if len(recorded) != 1 || recorded[0].OpenID != e.sim.OpenID(officialApp, "alice") {
		t.Fatalf("recorded pushes %+v: want alice's subscribe with her openid", recorded)
	}
	ctx := context.Background()
	again := recorded[0]
	if fresh, err := store.RecordPushEvent(ctx, again, time.Now()); err != nil || fresh {
		t.Fatalf("before the erasure the push should be a known duplicate: fresh %v, %v", fresh, err)
	}
	if err := store.DeleteUser(ctx, sub); err != nil {
		t.Fatal(err)
	}
	if fresh, err := store.RecordPushEvent(ctx, again, time.Now()); err != nil || !fresh {
		t.Fatalf("the erased person's push is still stored: fresh %v, %v", fresh, err)
	}
}
