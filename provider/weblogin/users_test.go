package weblogin_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// TestQRLogin_DisabledUser: disabling a signed-in web user ends their
// session at once; signing in again ends on a page that says the account
// is disabled, whose way back gives the client access_denied.
func TestQRLogin_DisabledUser(t *testing.T) {
	e := newEnv(t)
	e.sim.SetAutoConfirm("alice")
	b := e.browser(desktopUA)
	conf := e.config(firstParty, firstSecret, firstRedirect, "openid")
	v := oauth2.GenerateVerifier()
	p, _ := b.follow(authURL(conf, v))
	sub := e.redeem(conf, v, p).Subject

	if err := e.store.SetUserDisabled(context.Background(), sub, true); err != nil {
		t.Fatal(err)
	}
	qr := e.sim.Calls(wechat.PathQRConnect)
	p, _ = b.follow(authURL(conf, oauth2.GenerateVerifier()))
	if e.sim.Calls(wechat.PathQRConnect) == qr {
		t.Fatal("the browser session of a disabled user still signs in")
	}
	if p.status != http.StatusForbidden || !strings.Contains(p.body, `data-error="errDisabled"`) || !strings.Contains(p.body, "account is disabled") {
		t.Fatalf("disabled user: %d %.400s", p.status, p.body)
	}
	back := regexp.MustCompile(`href="([^"]+)" data-action="back"`).FindStringSubmatch(p.body)
	if back == nil {
		t.Fatalf("no way back to the app: %s", p.body)
	}
	u, err := url.Parse(html.UnescapeString(back[1]))
	if err != nil || !strings.HasPrefix(u.String(), firstRedirect) || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != stateFromTheTest {
		t.Fatalf("back link %s: want %s with error=access_denied and the state", back[1], firstRedirect)
	}
}
