package provider_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxoidc/wxoidc/provider/wechat/wechattest"
)

// logLines returns the lines of the provider's log that contain every one
// of parts.
func (e *env) logLines(parts ...string) []string {
	var out []string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// With WeChat unreachable the grant says WeChat is down (503, retry), not
// that the provider's storage is, and logs it once as a warning.
func TestWeChatGrant_WeChatUnreachable(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	code := m.wxLogin(miniApp, "bob")
	e.simSrv.Close() // nothing listens at WeChat's address any more

	status, body, h := m.grant(url.Values{"client_id": {miniClient}, "js_code": {code}})
	desc, _ := body["error_description"].(string)
	if status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("got %d %v (Retry-After %q), want 503 temporarily_unavailable with Retry-After", status, body, h.Get("Retry-After"))
	}
	if !strings.Contains(desc, "WeChat did not answer (jscode2session)") || strings.Contains(desc, "storage") {
		t.Errorf("error_description %q, want it to name WeChat and not storage", desc)
	}
	lines := e.logLines("wechat_api=jscode2session")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("log lines naming the call: %q, want one WARN line", lines)
	}
	if l := e.logLines("storage"); len(l) != 0 {
		t.Errorf("the log blames storage: %q", l)
	}
}

// Each WeChat failure is logged once, with the API and the errcode, at a
// level that says who must act: INFO for a person's bad code, WARN for
// WeChat being busy, ERROR for the operator's app configuration.
func TestWeChatGrant_FailureLoggedOnce(t *testing.T) {
	e := newEnv(t)
	m := mp{e: e}
	used := m.wxLogin(miniApp, "bob")
	if s, b, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {used}}); s != http.StatusOK {
		t.Fatalf("first use: %d %v", s, b)
	}
	cases := []struct {
		name      string
		faults    wechattest.Faults
		code      func() string
		errcode   string
		wantLevel string
	}{
		{"reused code", wechattest.Faults{}, func() string { return used }, "40163", "level=INFO"},
		{"busy", wechattest.Faults{Busy: 10}, func() string { return m.wxLogin(miniApp, "bob") }, "-1", "level=WARN"},
		{"wrong app secret", wechattest.Faults{WrongSecret: true}, func() string { return m.wxLogin(miniApp, "bob") }, "40125", "level=ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := tc.code()
			e.sim.SetFaults(tc.faults)
			defer e.sim.SetFaults(wechattest.Faults{})
			before := len(e.logLines("wechat_errcode=" + tc.errcode + " "))
			status, body, _ := m.grant(url.Values{"client_id": {miniClient}, "js_code": {code}})
			if status == http.StatusOK {
				t.Fatalf("grant succeeded: %v", body)
			}
			lines := e.logLines("wechat_errcode=" + tc.errcode + " ")[before:]
			if len(lines) != 1 {
				t.Fatalf("%d log lines with errcode %s, want 1: %q", len(lines), tc.errcode, lines)
			}
			if !strings.Contains(lines[0], tc.wantLevel) || !strings.Contains(lines[0], "wechat_api=jscode2session") {
				t.Errorf("log line %q, want %s with wechat_api=jscode2session", lines[0], tc.wantLevel)
			}
			if l := e.logLines(`msg="request failed"`); len(l) != 0 {
				t.Errorf("logged again as a failed request: %q", l)
			}
		})
	}
}
