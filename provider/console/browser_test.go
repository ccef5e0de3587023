package console_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// TestBrowser_BreakGlassAndPages signs in with the admin token, visits
// every page in both languages on a laptop and a phone (screenshots), and
// signs out.
func TestBrowser_BreakGlassAndPages(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)

	var loc string
	run(t, ctx, "sign-in page",
		chromedp.Navigate(e.console),
		chromedp.WaitVisible(chromedp.ID("sign-in-wechat")),
		into(&loc, chromedp.Location()),
		lang("zh-CN"),
		shots.shot("login-zh"),
		lang("en"),
		chromedp.Click(chromedp.CSS("summary")),
		shots.shot("login-en"),
	)
	if !strings.HasPrefix(loc, e.console+"login?next=") {
		t.Fatalf("without a session the console sent the browser to %s, want the sign-in page", loc)
	}
	run(t, ctx, "a wrong token",
		chromedp.SendKeys(chromedp.ID("token"), "not-the-admin-token-at-all"),
		chromedp.Click(chromedp.ID("sign-in-token")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if got := text(ctx, t, "#flash"); !strings.Contains(got, "not the admin token") {
		t.Fatalf("after a wrong token: %q", got)
	}
	if code := e.miniProgramGrant(t, "not-a-code-wechat-knows"); code != http.StatusBadRequest {
		t.Fatalf("a bad js_code: %d, want 400", code)
	}
	code := e.simCode(t, "/sim/login", url.Values{"appid": {miniApp}, "user": {"alice"}})
	if status := e.miniProgramGrant(t, code); status != http.StatusOK {
		t.Fatalf("Mini Program grant: %d", status)
	}
	e.signInWithToken(t, ctx)
	today := time.Now().UTC().Format(time.DateOnly)
	var signIns, newUsers string
	run(t, ctx, "charts",
		into(&signIns, attr(`#chart-signins rect[data-day="`+today+`"]`, "data-total")),
		into(&newUsers, attr(`#chart-newusers rect[data-day="`+today+`"]`, "data-total")),
	)
	if signIns != "1" || newUsers != "1" || text(ctx, t, "#count-users") != "1" {
		t.Errorf("today: %s sign-ins and %s new users charted, %s users counted; want 1 each", signIns, newUsers, text(ctx, t, "#count-users"))
	}
	if got := text(ctx, t, "#wechat tr[data-appid=\""+miniApp+"\"] .failures"); !strings.Contains(got, "40029") {
		t.Errorf("the WeChat health shows %q for the Mini Program, want its errcode 40029", got)
	}
	if got := text(ctx, t, "#operator"); !strings.Contains(got, "break-glass") {
		t.Errorf("operator shown as %q, want the break-glass sign-in named", got)
	}

	pages := []struct{ name, path, ready string }{
		{"overview", "", "#count-apps"},
		{"apps", "apps", "#apps"},
		{"app-new", "apps/new", "#app-form"},
		{"app", "apps/demo-web", "#app-form"},
		{"keys", "keys", "#keys"},
	}
	sizes := []struct {
		name string
		set  chromedp.Action[chromedp.Void]
	}{{"laptop", laptop()}, {"phone", phone()}}
	if !shots.on() {
		sizes = sizes[:1] // the phone layout is for people to look at
	}
	for _, size := range sizes {
		run(t, ctx, size.name, size.set)
		for _, p := range pages {
			for _, l := range []string{"zh-CN", "en"} {
				run(t, ctx, p.name+" "+l,
					chromedp.Navigate(e.console+p.path),
					chromedp.WaitVisible(chromedp.CSS(p.ready)),
					lang(l),
					chromedp.WaitVisible(chromedp.CSS(p.ready)),
					shots.shot(p.name+"-"+l+"-"+size.name),
				)
			}
		}
	}
	run(t, ctx, "back on a laptop", laptop())

	run(t, ctx, "sign out",
		chromedp.Navigate(e.console),
		chromedp.WaitVisible(chromedp.ID("sign-out")),
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("flash")),
		chromedp.Navigate(e.console+"apps"),
		chromedp.WaitVisible(chromedp.ID("sign-in-wechat")),
		into(&loc, chromedp.Location()),
	)
	if !strings.HasPrefix(loc, e.console+"login") {
		t.Fatalf("after signing out /apps went to %s, want the sign-in page", loc)
	}
}

// TestBrowser_Apps creates an app (first with a field error), reads its
// secret once, edits it, rotates the secret and deletes it with a typed
// confirmation.
func TestBrowser_Apps(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)
	e.signInWithToken(t, ctx)

	run(t, ctx, "new app with a bad redirect URI",
		chromedp.Navigate(e.console+"apps"),
		chromedp.WaitVisible(chromedp.ID("new-app")),
		chromedp.Click(chromedp.ID("new-app")),
		chromedp.WaitVisible(chromedp.ID("app-form")),
		chromedp.SendKeys(chromedp.ID("client_id"), "shop-web"),
		chromedp.SendKeys(chromedp.ID("client_name"), "Shop 商城"),
		chromedp.SendKeys(chromedp.ID("redirect_uris"), "http://shop.example/callback"),
		chromedp.Click(chromedp.ID("save-app")),
		chromedp.WaitVisible(chromedp.ID("error-redirect_uris")),
		shots.shot("field-error"),
	)
	if got := text(ctx, t, "#error-redirect_uris"); !strings.Contains(got, "https") {
		t.Fatalf("field error %q, want the API's reason (https)", got)
	}
	var name string
	run(t, ctx, "the form kept what was typed", into(&name, chromedp.Value(chromedp.ID("client_name"))))
	if name != "Shop 商城" {
		t.Fatalf("client_name after the error: %q", name)
	}

	var secret string
	run(t, ctx, "fix and create",
		chromedp.Clear(chromedp.ID("redirect_uris")),
		chromedp.SendKeys(chromedp.ID("redirect_uris"), "https://shop.example/callback"),
		chromedp.SetValue(chromedp.ID("wechat_appid"), "wxd0000000000000b2"),
		chromedp.Click(chromedp.ID("save-app")),
		chromedp.WaitVisible(chromedp.ID("client-secret")),
		into(&secret, chromedp.Value(chromedp.ID("client-secret"))),
		chromedp.Click(chromedp.CSS("button[data-copy]")),
		chromedp.WaitVisible(chromedp.CSS("button[data-copied]")),
		shots.shot("secret-once"),
	)
	c, err := e.store.Client(context.Background(), "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 40 || !bytes.Equal(c.SecretHash, provider.HashClientSecret(testSecret, secret)) {
		t.Fatalf("the secret shown (%d chars) is not the stored one", len(secret))
	}
	if c.Name != "Shop 商城" || c.WeChatAppID != "wxd0000000000000b2" || c.RedirectURIs[0] != "https://shop.example/callback" {
		t.Fatalf("stored client %+v", c)
	}
	if got := text(ctx, t, "button[data-copy]"); got != "Copied" {
		t.Errorf("copy button says %q after a click, want Copied", got)
	}

	// The secret is never shown again.
	var page string
	run(t, ctx, "the app page",
		chromedp.Click(chromedp.ID("to-app")),
		chromedp.WaitVisible(chromedp.ID("app-form")),
		into(&page, chromedp.OuterHTML(chromedp.CSS("html"))),
	)
	if strings.Contains(page, secret) {
		t.Fatal("the app page shows the secret again")
	}

	// A field the form does not show survives an edit.
	if err := e.store.UpdateClient(context.Background(), "shop-web", func(c storage.Client) (storage.Client, error) {
		c = c.Clone()
		c.BackchannelLogoutURI = "https://shop.example/backchannel"
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "edit",
		chromedp.Navigate(e.console+"apps/shop-web"),
		chromedp.WaitVisible(chromedp.ID("client_name")),
		chromedp.Clear(chromedp.ID("client_name")),
		chromedp.SendKeys(chromedp.ID("client_name"), "Shop"),
		chromedp.Click(chromedp.ID("skip_consent")),
		chromedp.Click(chromedp.ID("save-app")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	c, _ = e.store.Client(context.Background(), "shop-web")
	if c.Name != "Shop" || !c.SkipConsent || !bytes.Equal(c.SecretHash, provider.HashClientSecret(testSecret, secret)) ||
		c.BackchannelLogoutURI != "https://shop.example/backchannel" {
		t.Fatalf("after the edit: %+v", c)
	}

	var rotated string
	run(t, ctx, "rotate the secret",
		chromedp.Click(chromedp.ID("rotate-secret")),
		chromedp.WaitVisible(chromedp.ID("client-secret")),
		into(&rotated, chromedp.Value(chromedp.ID("client-secret"))),
	)
	c, _ = e.store.Client(context.Background(), "shop-web")
	if rotated == secret || !bytes.Equal(c.SecretHash, provider.HashClientSecret(testSecret, rotated)) {
		t.Fatal("the rotated secret is not the stored one")
	}

	run(t, ctx, "delete: the button waits for the client_id",
		chromedp.Click(chromedp.ID("to-app")),
		chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.SendKeys(chromedp.ID("confirm"), "shop"),
	)
	var disabled bool
	run(t, ctx, "button state", into(&disabled, chromedp.Evaluate[bool](`document.getElementById("delete-app").disabled`)))
	if !disabled {
		t.Fatal("the delete button is enabled before the client_id is typed")
	}
	// Without JavaScript's help the server refuses a wrong confirmation.
	run(t, ctx, "wrong confirmation",
		eval(`document.getElementById("delete-app").disabled = false`),
		chromedp.Click(chromedp.ID("delete-app")),
		chromedp.WaitVisible(chromedp.ID("flash")),
	)
	if _, err := e.store.Client(context.Background(), "shop-web"); err != nil {
		t.Fatalf("a wrong confirmation deleted the app: %v", err)
	}
	run(t, ctx, "delete",
		chromedp.SendKeys(chromedp.ID("confirm"), "shop-web"),
		chromedp.Click(chromedp.ID("delete-app")),
		chromedp.WaitVisible(chromedp.ID("apps")),
		shots.shot("deleted"),
	)
	if _, err := e.store.Client(context.Background(), "shop-web"); err == nil {
		t.Fatal("the app is still there")
	}
	if strings.Contains(e.logs.String(), secret) || strings.Contains(e.logs.String(), rotated) {
		t.Fatal("a secret reached the log")
	}
}

// TestBrowser_Keys rotates the keys of one algorithm.
func TestBrowser_Keys(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)
	e.signInWithToken(t, ctx)
	before, _ := e.keys.List(context.Background())
	var rows []*chromedp.Node
	run(t, ctx, "rotate ES256",
		chromedp.Navigate(e.console+"keys"),
		chromedp.WaitVisible(chromedp.ID("rotate-keys")),
		chromedp.SetValue(chromedp.ID("rotate-alg"), "ES256"),
		chromedp.Click(chromedp.ID("rotate-keys")),
		chromedp.WaitVisible(chromedp.ID("flash")),
		into(&rows, chromedp.Nodes(chromedp.CSS(`#keys tr[data-state="pending"]`))),
		shots.shot("rotated"),
	)
	after, _ := e.keys.List(context.Background())
	if len(after) != len(before)+1 || len(rows) != 1 {
		t.Fatalf("keys before %d, after %d, pending rows %d: want one new pending key", len(before), len(after), len(rows))
	}
	if got := text(ctx, t, "#flash"); !strings.Contains(got, "ES256") {
		t.Errorf("flash %q does not name the new key", got)
	}
}

// TestBrowser_WeChatWithoutRole signs in with WeChat as a user who holds
// no console role: refused, and no session is left behind.
func TestBrowser_WeChatWithoutRole(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)
	run(t, ctx, "sign in with WeChat as alice",
		chromedp.Navigate(e.console+"lang/en?next=/console/"),
		chromedp.WaitVisible(chromedp.ID("sign-in-wechat")),
		chromedp.Click(chromedp.ID("sign-in-wechat")),
		chromedp.WaitVisible(chromedp.CSS(`form:has(input[name="user"][value="alice"]) button`)),
		chromedp.Click(chromedp.CSS(`form:has(input[name="user"][value="alice"]) button`)),
		chromedp.WaitVisible(chromedp.ID("error")),
		shots.shot("refused"),
	)
	var code string
	run(t, ctx, "error code", into(&code, attr("#error", "data-error")))
	if code != "errNoRole" {
		t.Fatalf("refusal %q, want errNoRole", code)
	}
	var loc string
	run(t, ctx, "no session",
		chromedp.Navigate(e.console+"apps"),
		chromedp.WaitVisible(chromedp.ID("sign-in-wechat")),
		into(&loc, chromedp.Location()),
	)
	if !strings.HasPrefix(loc, e.console+"login") {
		t.Fatalf("a refused user reached %s", loc)
	}
}

// TestBrowser_ForgedForm posts a form without the CSRF token from a
// signed-in browser: refused, nothing changed.
func TestBrowser_ForgedForm(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	e.signInWithToken(t, ctx)
	before, _ := e.keys.List(context.Background())
	run(t, ctx, "forged rotate and delete",
		chromedp.Navigate(e.console+"keys"),
		chromedp.WaitVisible(chromedp.ID("rotate-keys")),
		eval(`document.querySelector('form[action$="/keys/rotate"] input[name=csrf_token]').remove()`),
		chromedp.Click(chromedp.ID("rotate-keys")),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	var code string
	run(t, ctx, "error code", into(&code, attr("#error", "data-error")))
	after, _ := e.keys.List(context.Background())
	if code != "errCSRF" || len(after) != len(before) {
		t.Fatalf("forged form: refusal %q, keys %d → %d", code, len(before), len(after))
	}
	run(t, ctx, "forged token",
		chromedp.Navigate(e.console+"apps/demo-web"),
		chromedp.Navigate(e.console+"keys"),
		chromedp.WaitVisible(chromedp.ID("rotate-keys")),
		eval(`document.querySelector('form[action$="/keys/rotate"] input[name=csrf_token]').value = 'AAAA'`),
		chromedp.Click(chromedp.ID("rotate-keys")),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	if after, _ := e.keys.List(context.Background()); len(after) != len(before) {
		t.Fatal("a wrong CSRF token rotated the keys")
	}
}

// attr is the value of attribute name of sel.
func attr(sel, name string) chromedp.Action[string] {
	return func(ctx context.Context, tg *chromedp.Target) (string, error) {
		v, err := chromedp.AttributeValue(chromedp.CSS(sel), name)(ctx, tg)
		return v.Value, err
	}
}

// eval runs JavaScript for its effect.
func eval(js string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[any](js)(ctx, tg)
		return chromedp.Void{}, err
	}
}

// TestBrowser_OverviewEveryMethod charts a month of sign-ins by every login
// method the provider records, and new users, and checks that the legend
// names each method with its total in both languages (screenshots).
func TestBrowser_OverviewEveryMethod(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)

	today := storage.DayOf(time.Now())
	totals := map[string]int{}
	var events []storage.Event
	for d := 1; d <= 29; d++ {
		day := today.AddDate(0, 0, -d)
		for i := range 1 + (d*7)%5 {
			sub := fmt.Sprintf("%032x", d*10+i)
			require(t, e.store.CreateUser(context.Background(), storage.User{Subject: sub, CreatedAt: day.Add(time.Hour), UpdatedAt: day.Add(time.Hour)}))
			events = append(events, storage.Event{Type: storage.EventUserCreated, Subject: sub, Time: day.Add(time.Hour)})
		}
		for k, m := range provider.LoginMethods {
			for i := range (d*(k+3) + k) % (9 - k) {
				totals[m]++
				events = append(events, storage.Event{Type: storage.EventLogin, Subject: "s", Time: day.Add(time.Duration(2+i) * time.Minute),
					Details: map[string]any{"method": m}})
			}
		}
	}
	require(t, e.store.AppendEvents(context.Background(), events...))
	// As on a store the janitor keeps: the first half of the month from
	// the daily roll-ups (the watermark mid-day), the rest from the events.
	_, err := e.store.RollUpEvents(context.Background(), today.AddDate(0, 0, -15).Add(12*time.Hour))
	require(t, err)
	e.signInWithToken(t, ctx)
	for _, l := range []string{"zh-CN", "en"} {
		run(t, ctx, "overview "+l, lang(l), chromedp.WaitVisible(chromedp.ID("chart-signins")), shots.shot("overview-methods-"+l))
		for _, m := range provider.LoginMethods {
			got := strings.TrimSpace(text(ctx, t, `#chart-signins .legend li[data-method="`+m+`"]`))
			name, _, _ := strings.Cut(got, " ")
			if want := fmt.Sprint(totals[m]); !strings.HasSuffix(got, " "+want) || name == m || name == "" {
				t.Errorf("%s legend for %s: %q, want its name and %s", l, m, got, want)
			}
		}
	}
}

func require(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
