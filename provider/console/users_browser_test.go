package console_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// signInWithWeChat signs in to the console with WeChat as the simulator's
// test user, in English, and waits for the page after.
func (e *env) signInWithWeChat(t *testing.T, ctx context.Context, user string, ready chromedp.Action[chromedp.Void]) {
	t.Helper()
	btn := chromedp.CSS(`form:has(input[name="user"][value="` + user + `"]) button`)
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(e.console + "lang/en?next=/console/"),
		chromedp.WaitVisible(chromedp.ID("sign-in-wechat")),
		chromedp.Click(chromedp.ID("sign-in-wechat")),
	}
	if user != "" { // else the issuer's login session signs in again without WeChat
		steps = append(steps, chromedp.WaitVisible(btn), chromedp.Click(btn))
	}
	run(t, ctx, "sign in with WeChat as "+user, append(steps, ready)...)
}

// grantRoles gives the user behind sub roles, as `wxoidc users update
// --role` would.
func (e *env) grantRoles(t *testing.T, sub string, roles ...string) {
	t.Helper()
	if err := e.store.UpdateUser(context.Background(), sub, func(u storage.User) (storage.User, error) {
		u = u.Clone()
		u.Roles = roles
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// webSub is the sub of the user that signed in with WeChat as the
// simulator's user name (by unionid).
func (e *env) userByName(t *testing.T, name string) storage.User {
	t.Helper()
	users, _, err := e.store.SearchUsers(context.Background(), storage.UserQuery{Prefix: name})
	if err != nil || len(users) != 1 {
		t.Fatalf("user %q: %v, %d found", name, err, len(users))
	}
	return users[0]
}

// TestBrowser_Users: an admin signs in with WeChat, finds a user by phone
// number, disables and enables them, signs them out, and deletes them
// after typing their sub; the audit trail shows each change under the
// admin's name and filters by type.
func TestBrowser_Users(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)

	// Alice signs in: no role yet, refused; the admin role lets her in.
	e.signInWithWeChat(t, ctx, "alice", chromedp.WaitVisible(chromedp.ID("error")))
	alice := e.userByName(t, "Alice")
	e.grantRoles(t, alice.Subject, storage.RoleAdmin)
	e.signInWithWeChat(t, ctx, "", chromedp.WaitVisible(chromedp.ID("count-apps")))
	if got := text(ctx, t, "#operator"); !strings.Contains(got, "Alice") {
		t.Fatalf("operator shown as %q", got)
	}

	// Bob is a Mini Program user with a phone number.
	bob := e.miniProgramUser(t, "bob", "13800138002")

	run(t, ctx, "find bob by phone",
		chromedp.Navigate(e.console+"users"),
		chromedp.WaitVisible(chromedp.ID("user-search")),
		chromedp.SetValue(chromedp.ID("by"), "phone_number"),
		chromedp.SendKeys(chromedp.ID("v"), "138 0013 8002"),
		chromedp.Click(chromedp.ID("search")),
		// The unsearched page lists bob too: wait for the answer, whose
		// box the server fills with what was typed.
		chromedp.WaitReady(chromedp.CSS(`#v[value="138 0013 8002"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#users tr[data-sub="`+bob+`"]`)),
		shots.shot("users-found"),
		chromedp.Click(chromedp.CSS(`#users tr[data-sub="`+bob+`"] a`)),
		chromedp.WaitVisible(chromedp.ID("disable-user")),
		shots.shot("user"),
	)
	run(t, ctx, "disable", chromedp.Click(chromedp.ID("disable-user")), chromedp.WaitVisible(chromedp.ID("enable-user")))
	if u, _ := e.store.User(context.Background(), bob); !u.Disabled {
		t.Fatal("bob is not disabled")
	}
	if code := e.miniProgramGrantFor(t, "bob"); code == http.StatusOK {
		t.Fatal("a disabled user got tokens")
	}
	run(t, ctx, "enable and sign out everywhere",
		chromedp.Click(chromedp.ID("enable-user")),
		chromedp.WaitVisible(chromedp.ID("disable-user")),
		chromedp.Click(chromedp.ID("signout-user")),
		// The enabled page has a flash too: wait for this one's.
		chromedp.WaitVisible(chromedp.CSS(`#flash[data-flash="users.signedOut"]`)),
	)
	if u, _ := e.store.User(context.Background(), bob); u.Disabled {
		t.Fatal("bob is still disabled")
	}
	run(t, ctx, "delete with a typed confirmation",
		chromedp.SendKeys(chromedp.ID("confirm"), bob),
		chromedp.Click(chromedp.ID("delete-user")),
		chromedp.WaitVisible(chromedp.ID("user-search")),
	)
	if _, err := e.store.User(context.Background(), bob); err == nil {
		t.Fatal("bob is still there")
	}

	run(t, ctx, "the audit trail, filtered",
		chromedp.Navigate(e.console+"events"),
		chromedp.WaitVisible(chromedp.ID("event-filter")),
		chromedp.SetValue(chromedp.ID("type"), "user_disabled"),
		chromedp.Click(chromedp.ID("filter")),
		// The unfiltered page has a user_disabled row too: wait for the
		// filtered page, whose select has the type selected by the server,
		// before reading rows, or a query can land in the page being left.
		chromedp.WaitReady(chromedp.CSS(`#type option[selected]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events tr[data-type="user_disabled"]`)),
		shots.shot("events-filtered"),
	)
	var rows []*chromedp.Node
	run(t, ctx, "rows", into(&rows, chromedp.Nodes(chromedp.CSS(`#events tbody tr`))))
	if len(rows) != 1 {
		t.Fatalf("%d rows for type user_disabled, want 1", len(rows))
	}
	if got := text(ctx, t, "#events tbody tr .details"); !strings.Contains(got, "user:"+alice.Subject) {
		t.Errorf("the event does not name the operator: %q", got)
	}
	if got := text(ctx, t, "#events tbody tr .to-user"); got != bob {
		t.Errorf("the event links to %q, want bob's sub", got)
	}
}

// TestBrowser_Viewer: a viewer sees the pages and every change is refused
// on the server, even with a valid CSRF token.
func TestBrowser_Viewer(t *testing.T) {
	t.Parallel()
	ctx := newTab(t)
	e := newEnv(t)
	shots := newShooter(t)
	e.signInWithWeChat(t, ctx, "carol", chromedp.WaitVisible(chromedp.ID("error")))
	carol := e.userByName(t, "Carol")
	e.grantRoles(t, carol.Subject, storage.RoleViewer)
	e.signInWithWeChat(t, ctx, "", chromedp.WaitVisible(chromedp.ID("count-apps")))
	var n []*chromedp.Node
	run(t, ctx, "no change buttons",
		chromedp.Navigate(e.console+"users/"+url.PathEscape(carol.Subject)),
		chromedp.WaitVisible(chromedp.ID("sub")),
		shots.shot("viewer-user"),
		into(&n, chromedp.Nodes(chromedp.CSS(`#disable-user, #delete-user, #save-user`), chromedp.AtLeast(0))),
	)
	if len(n) != 0 {
		t.Fatalf("a viewer sees %d change buttons", len(n))
	}
	// A form forged with the page's own CSRF token: refused on the server.
	run(t, ctx, "forged disable",
		eval(`(() => { const f = document.createElement("form"); f.method = "post";
			f.action = "/console/users/`+url.PathEscape(carol.Subject)+`/disable";
			const i = document.createElement("input"); i.name = "csrf_token";
			i.value = document.querySelector("input[name=csrf_token]").value; f.appendChild(i);
			document.body.appendChild(f); f.submit(); })()`),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	var code string
	run(t, ctx, "refusal", into(&code, attr("#error", "data-error")))
	if u, _ := e.store.User(context.Background(), carol.Subject); code != "errReadOnly" || u.Disabled {
		t.Fatalf("viewer's forged disable: refusal %q, disabled %v", code, u.Disabled)
	}
	// Revoking the role takes effect on the next request.
	e.grantRoles(t, carol.Subject)
	run(t, ctx, "role revoked", chromedp.Navigate(e.console+"apps"), chromedp.WaitVisible(chromedp.ID("error")))
	run(t, ctx, "refusal", into(&code, attr("#error", "data-error")))
	if code != "errNoRole" {
		t.Fatalf("after the role was revoked: %q", code)
	}
}

// miniProgramUser signs user in through the Mini Program grant with their
// phone number and returns their sub.
func (e *env) miniProgramUser(t *testing.T, user, phone string) string {
	t.Helper()
	resp, err := http.PostForm(e.issuer+"/oauth2/token", url.Values{
		"grant_type": {provider.GrantTypeWeChat}, "client_id": {"demo-miniprogram"}, "scope": {"openid phone"},
		"js_code":    {e.simCode(t, "/sim/login", url.Values{"appid": {miniApp}, "user": {user}})},
		"phone_code": {e.simCode(t, "/sim/phone-code", url.Values{"appid": {miniApp}, "user": {user}, "phone": {phone}})},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	parts := strings.Split(tok.IDToken, ".")
	if resp.StatusCode != http.StatusOK || len(parts) != 3 {
		t.Fatalf("Mini Program grant for %s: %d", user, resp.StatusCode)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Sub string }
	json.Unmarshal(b, &claims)
	return claims.Sub
}

// miniProgramGrantFor runs the Mini Program grant for user and returns the
// status.
func (e *env) miniProgramGrantFor(t *testing.T, user string) int {
	t.Helper()
	return e.miniProgramGrant(t, e.simCode(t, "/sim/login", url.Values{"appid": {miniApp}, "user": {user}}))
}
