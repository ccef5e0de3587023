package weblogin_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// oaScan plays user scanning the QR code of ticket through the
// simulator's POST /sim/oa-scan, as the dev simulator page does, and
// returns what WeChat did: the event pushed and the chat reply.
func oaScan(t *testing.T, e *followEnv, user, ticket string) wechattest.ScanResult {
	t.Helper()
	resp, err := http.PostForm(e.simURL+"/sim/oa-scan", url.Values{"appid": {officialApp}, "user": {user}, "ticket": {ticket}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res wechattest.ScanResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /sim/oa-scan: %d %v", resp.StatusCode, err)
	}
	if !res.Delivered || res.Attempts != 1 {
		t.Fatalf("scan not acknowledged at the first delivery: %+v", res)
	}
	return res
}

// followWait is a follow login waiting for its scan: the browser, its
// QR code's ticket and the waiting page's links.
type followWait struct {
	b                        *browser
	verifier, ticket         string
	page, cont, status, left string
}

func startFollowWait(t *testing.T, e *followEnv, extra ...string) *followWait {
	t.Helper()
	w := &followWait{b: e.browser(desktopUA), verifier: "verifier-0123456789-0123456789-0123456789-abc"}
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid", "profile")
	chooser, _ := w.b.follow(authURL(conf, w.verifier, extra...))
	wait, _ := w.b.follow(choices(chooser.body)["official"])
	codes := e.sim.OfficialQRCodes(officialApp)
	if wait.status != http.StatusOK || len(codes) == 0 {
		t.Fatalf("waiting page: %d %.300s", wait.status, wait.body)
	}
	w.ticket, w.page = codes[0].Ticket, wait.url.String()
	w.cont = choices(wait.body)["continue"]
	w.status = strings.Replace(w.cont, weblogin.PathWaitContinue, weblogin.PathWaitStatus, 1)
	w.left = strings.Replace(w.cont, weblogin.PathWaitContinue, weblogin.PathWaitLeft, 1)
	if !strings.Contains(wait.body, `data-left="`+strings.ReplaceAll(w.left, "&", "&amp;")+`"`) {
		t.Fatalf("the waiting page does not name its beacon URL %s: %.800s", w.left, wait.body)
	}
	if !strings.Contains(wait.body, `<noscript><meta http-equiv="refresh" content="10"></noscript>`) {
		t.Fatalf("a waiting page without JavaScript does not reload itself: %.800s", wait.body)
	}
	return w
}

// closedPage checks that the waiting page (and its continue link) says
// the login ended because the page was closed, with a way to a new code.
func closedPage(t *testing.T, e *followEnv, w *followWait, wantText string) {
	t.Helper()
	if got := waitStatus(t, w.b, w.status); got != "denied" {
		t.Fatalf("status %q, want denied", got)
	}
	for _, u := range []string{w.page, w.cont} {
		p, _ := w.b.follow(u)
		if p.status != http.StatusGone || !strings.Contains(p.body, `data-error="closed"`) || !strings.Contains(p.body, wantText) || choices(p.body)["restart"] == "" {
			t.Fatalf("%s: status %d body %.600s", u, p.status, p.body)
		}
	}
	if strings.Contains(e.log.String(), "follow login approved") {
		t.Fatal("a login whose page was closed was approved")
	}
}

// TestFollowLogin_PageClosed: the waiting page says when it is closed (its
// script's beacon); a scan then signs nobody in, and the person reads in
// the chat that the page was closed and to scan a new code. The page, if
// it comes back, says the same. A page reloaded after the beacon is open
// again.
func TestFollowLogin_PageClosed(t *testing.T) {
	for _, mode := range []wechat.PushMode{wechat.PushPlaintext, wechat.PushSafe} {
		t.Run(string(mode), func(t *testing.T) {
			e := newFollowEnv(t, mode, 0)
			w := startFollowWait(t, e)
			if p := w.b.post(w.left, nil, nil); p.status != http.StatusNoContent {
				t.Fatalf("beacon: %d %s", p.status, p.body)
			}
			res := oaScan(t, e, "alice", w.ticket)
			if want := "Not signed in: the login page was closed when you scanned. Open the website's login page again and scan the new code."; res.Reply != want {
				t.Fatalf("chat reply %q, want %q", res.Reply, want)
			}
			closedPage(t, e, w, "This login page was closed when the code was scanned")
			// Scanned again: the same answer.
			if res := oaScan(t, e, "alice", w.ticket); !strings.Contains(res.Reply, "login page was closed") {
				t.Fatalf("second scan: %+v", res)
			}
		})
	}
	t.Run("reloaded", func(t *testing.T) {
		e := newFollowEnv(t, wechat.PushPlaintext, 0)
		alice := e.miniProgramSub("alice")
		w := startFollowWait(t, e)
		w.b.post(w.left, nil, nil)
		if p := w.b.get(w.page); p.status != http.StatusOK { // the reload marks it open
			t.Fatalf("reload: %d", p.status)
		}
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != "已登录 First" {
			t.Fatalf("chat reply %q, want the signed-in reply", res.Reply)
		}
		done, _ := w.b.follow(w.cont)
		if idt := e.redeem(e.config(firstParty, firstSecret, firstRedirect, "openid", "profile"), w.verifier, done); idt.Subject != alice {
			t.Fatalf("signed in as %s, want %s", idt.Subject, alice)
		}
	})
	t.Run("another browser's beacon", func(t *testing.T) {
		e := newFollowEnv(t, wechat.PushPlaintext, 0)
		w := startFollowWait(t, e)
		if p := e.browser(desktopUA).post(w.left, nil, nil); p.status != http.StatusNoContent {
			t.Fatalf("beacon: %d", p.status)
		}
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != "已登录 First" {
			t.Fatalf("another browser closed the login: chat reply %q", res.Reply)
		}
	})
}

// TestFollowLogin_PageSilent: a page that stopped polling (closed without
// a beacon: a crash, a laptop asleep, the network gone) for more than 20
// seconds is taken as closed; one that polls stays open.
func TestFollowLogin_PageSilent(t *testing.T) {
	clk := &clock{}
	e := newFollowEnv(t, wechat.PushPlaintext, 0, func(c *weblogin.Config) { c.Now = clk.Now })
	w := startFollowWait(t, e)
	// Polled all along: open.
	for range 5 {
		clk.Advance(6 * time.Second)
		waitStatus(t, w.b, w.status)
	}
	clk.Advance(15 * time.Second)
	other := startFollowWait(t, e) // waits on; this one goes silent
	clk.Advance(21 * time.Second)
	waitStatus(t, w.b, w.status)
	if res := oaScan(t, e, "alice", w.ticket); res.Reply != "已登录 First" {
		t.Fatalf("a polling page: chat reply %q, want the signed-in reply", res.Reply)
	}
	res := oaScan(t, e, "bob", other.ticket)
	if !strings.Contains(res.Reply, "the login page was closed") {
		t.Fatalf("a silent page: chat reply %q", res.Reply)
	}
	if got := waitStatus(t, other.b, other.status); got != "denied" {
		t.Fatalf("silent page's status %q, want denied", got)
	}
}

// TestFollowLogin_RefusedReplies: every scan that signs nobody in ends
// the login clearly, and the chat says why, in the login page's language
// or as configured.
func TestFollowLogin_RefusedReplies(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		clk := &clock{}
		e := newFollowEnv(t, wechat.PushSafe, time.Minute, func(c *weblogin.Config) { c.Now = clk.Now })
		w := startFollowWait(t, e)
		// WeChat still pushes (its code lives a moment longer than the
		// login: it was made first, and clocks differ).
		clk.Advance(61 * time.Second)
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != "This QR code has expired; nobody was signed in. Get a new code on the website and scan it." {
			t.Fatalf("chat reply %q", res.Reply)
		}
		if p := w.b.get(w.page); p.status != http.StatusGone || !strings.Contains(p.body, `data-error="expired"`) {
			t.Fatalf("page: %d %.400s", p.status, p.body)
		}
	})
	t.Run("used", func(t *testing.T) {
		e := newFollowEnv(t, wechat.PushPlaintext, 0)
		alice := e.miniProgramSub("alice")
		w := startFollowWait(t, e)
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != "已登录 First" {
			t.Fatalf("first scan: %q", res.Reply)
		}
		want := "This QR code has already been used. To sign in, get a new code on the website and scan it."
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != want { // approved, not yet collected
			t.Fatalf("second scan: %q", res.Reply)
		}
		done, _ := w.b.follow(w.cont)
		if idt := e.redeem(e.config(firstParty, firstSecret, firstRedirect, "openid", "profile"), w.verifier, done); idt.Subject != alice {
			t.Fatalf("the first scan signed in %s, want %s", idt.Subject, alice)
		}
		if res := oaScan(t, e, "bob", w.ticket); res.Reply != want { // collected
			t.Fatalf("third scan: %q", res.Reply)
		}
		if strings.Count(e.log.String(), "follow login approved") != 1 {
			t.Fatalf("approved more than once:\n%s", e.log.String())
		}
	})
	t.Run("no account", func(t *testing.T) {
		e := newFollowEnv(t, wechat.PushSafe, 0, func(c *weblogin.Config) {
			c.Users = &provider.Users{Storage: c.Storage, Registration: provider.RegistrationExisting}
		})
		w := startFollowWait(t, e, "ui_locales", "zh-CN")
		if res := oaScan(t, e, "dave", w.ticket); res.Reply != "未登录：这个微信没有可以登录 First 的账号。" {
			t.Fatalf("chat reply %q", res.Reply)
		}
		if p, _ := w.b.follow(w.cont); p.status != http.StatusForbidden || !strings.Contains(p.body, `data-error="errNoAccount"`) {
			t.Fatalf("page: %d %.400s", p.status, p.body)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		e := newFollowEnv(t, wechat.PushPlaintext, 0)
		alice := e.miniProgramSub("alice")
		if err := e.store.SetUserDisabled(e.ctx, alice, true); err != nil {
			t.Fatal(err)
		}
		w := startFollowWait(t, e)
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != "Not signed in: your account is disabled." {
			t.Fatalf("chat reply %q", res.Reply)
		}
		if p, _ := w.b.follow(w.cont); p.status != http.StatusForbidden || !strings.Contains(p.body, `data-error="errDisabled"`) {
			t.Fatalf("page: %d %.400s", p.status, p.body)
		}
	})
	t.Run("configured", func(t *testing.T) {
		e := newFollowEnv(t, wechat.PushPlaintext, 0, func(c *weblogin.Config) {
			c.Follow[0].ReplyClosed = "登录页已关闭 / The login page of {client} was closed"
		})
		w := startFollowWait(t, e)
		w.b.post(w.left, nil, nil)
		if res := oaScan(t, e, "alice", w.ticket); res.Reply != "登录页已关闭 / The login page of First was closed" {
			t.Fatalf("chat reply %q", res.Reply)
		}
	})
}
