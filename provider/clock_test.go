package provider_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider"
)

// The token handlers read the time from the provider's clock
// (Config.Now): an access token is inactive once that clock passes its
// expiry, whatever the wall clock says.
func TestProviderClock_AccessTokenExpiry(t *testing.T) {
	clk := &clock{now: time.Now()}
	e := newEnv(t, func(c *provider.Config) { c.Now = clk.Now })
	resp, body := e.postForm("/oauth2/token", "", "", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {serviceClient}, "client_secret": {serviceSecret},
		"scope": {"orders.read"}, "audience": {resourceClient},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client_credentials: %d %v", resp.StatusCode, body)
	}
	at := body["access_token"].(string)
	introspect := func() any {
		_, intro := e.postForm("/oauth2/introspect", resourceClient, resourceSecret, url.Values{"token": {at}})
		return intro["active"]
	}
	if got := introspect(); got != true {
		t.Fatalf("fresh token: active %v", got)
	}
	clk.Add(16 * time.Minute) // past the 15-minute lifespan
	if got := introspect(); got != false {
		t.Fatalf("after the provider's clock passed the expiry: active %v, want false", got)
	}
}
