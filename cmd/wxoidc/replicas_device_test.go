package main

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wxoidc/wxoidc/provider"
)

// TestReplicas_DeviceFlow: three replicas on one PostgreSQL behave as one
// provider for the device flow: the interval holds across replicas, and an
// approval is redeemed exactly once however many replicas are polled at
// the same moment.
func TestReplicas_DeviceFlow(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.Clients = append(cfg.Clients, ClientConfig{
			ClientID: "tv", TokenEndpointAuthMethod: "none", GrantTypes: []string{provider.GrantTypeDeviceCode}, Scope: "openid",
		})
	})
	status, da := c.post(c.urls[0], "/oauth2/device/authorize", url.Values{"client_id": {"tv"}, "scope": {"openid"}}, "", "")
	if status != 200 {
		t.Fatalf("device authorization: %d %v", status, da)
	}
	deviceCode, userCode := da["device_code"].(string), da["user_code"].(string)
	poll := url.Values{"grant_type": {provider.GrantTypeDeviceCode}, "client_id": {"tv"}, "device_code": {deviceCode}}
	if status, body := c.post(c.urls[1], "/oauth2/token", poll, "", ""); status != 400 || body["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v", status, body)
	}
	// Polling another replica at once is still too fast.
	if status, body := c.post(c.urls[2], "/oauth2/token", poll, "", ""); status != 400 || body["error"] != "slow_down" {
		t.Fatalf("second poll at another replica: %d %v", status, body)
	}

	// The Mini Program approves through a third replica.
	_, tok := c.grant(c.urls[2], c.code("alice"), "openid")
	req, _ := http.NewRequest(http.MethodPost, c.urls[0]+"/oauth2/device/verify",
		strings.NewReader(url.Values{"user_code": {userCode}, "action": {"approve"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("approve: %d", resp.StatusCode)
	}

	// 30 polls at once, ten on each replica: one gets the tokens.
	var o outcome
	var wg sync.WaitGroup
	var winner string
	var mu sync.Mutex
	for i := range 30 {
		wg.Go(func() {
			status, body := c.post(c.urls[i%3], "/oauth2/token", poll, "", "")
			o.add(status, body)
			if status == 200 {
				mu.Lock()
				winner, _ = body["access_token"].(string)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if o.by["200"] != 1 || o.by["400 invalid_grant"] != 29 {
		t.Fatalf("outcomes %v; want one 200 and 29 invalid_grant", o.by)
	}
	if sub := subOf(t, c, winner); sub == "" || sub != subOf(t, c, tok["access_token"].(string)) {
		t.Fatalf("the device is signed in as %q, not as the Mini Program's user", sub)
	}
}
