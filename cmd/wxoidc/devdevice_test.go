package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/provider"
)

// TestDev_DeviceFlow runs the README's device login in `wxoidc dev`:
// demo-device asks, the dev Mini Program page approves as alice, the
// device gets its tokens.
func TestDev_DeviceFlow(t *testing.T) {
	issuer, _ := startDev(t, t.TempDir())
	post := func(path string, form url.Values) (int, map[string]any, string) {
		t.Helper()
		resp, err := http.PostForm(issuer+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		return resp.StatusCode, body, string(b)
	}
	status, da, raw := post("/oauth2/device/authorize", url.Values{"client_id": {devDeviceClient}, "scope": {"openid profile"}})
	if status != 200 || da["verification_uri"] != issuer+"/device" {
		t.Fatalf("device authorization: %d %s", status, raw)
	}
	deviceCode, userCode := da["device_code"].(string), da["user_code"].(string)
	poll := url.Values{"grant_type": {provider.GrantTypeDeviceCode}, "client_id": {devDeviceClient}, "device_code": {deviceCode}}
	if status, body, _ := post("/oauth2/token", poll); status != 400 || body["error"] != "authorization_pending" {
		t.Fatalf("poll: %d %v", status, body)
	}
	// The device page shows the dev Mini Program's code; the dev page
	// plays the Mini Program.
	resp, err := http.Get(issuer + devMiniProgramPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), `data-scene="`+strings.ReplaceAll(userCode, "-", "")+`"`) {
		t.Fatalf("the code is listed before any page showed it: %s", b)
	}
	resp, err = http.Get(issuer + "/device?user_code=" + userCode)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	scene := strings.ReplaceAll(userCode, "-", "")
	resp, err = http.Get(issuer + devMiniProgramPath)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `data-scene="`+scene+`"`) || !strings.Contains(string(b), "Demo device") {
		t.Fatalf("dev Mini Program page does not list %s: %s", scene, b)
	}
	if status, _, raw := post(devMiniProgramPath, url.Values{"scene": {scene}, "approve": {"alice"}}); status != 200 || !strings.Contains(raw, "approved as alice") {
		t.Fatalf("approve as alice: %d %s", status, raw)
	}
	status, tok, raw := post("/oauth2/token", poll)
	if status != 200 || tok["id_token"] == nil || tok["access_token"] == nil {
		t.Fatalf("tokens: %d %s", status, raw)
	}
}
