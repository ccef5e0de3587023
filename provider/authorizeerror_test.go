package provider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/provider"
)

// An authorization error that cannot go back to the client is a page for
// the person, in one language, with the code for the developer; a client
// that asks for JSON gets JSON.
func TestAuthorize_ErrorPage(t *testing.T) {
	e := newEnv(t)
	get := func(q url.Values, accept, lang string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.issuer+"/oauth2/authorize?"+q.Encode(), nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if lang != "" {
			req.Header.Set("Accept-Language", lang)
		}
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	browser := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	unknown := url.Values{"client_id": {"nobody"}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}, "state": {"s1"}}
	badRedirect := url.Values{"client_id": {webClient}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}, "state": {"s1"}}

	cases := []struct {
		name       string
		q          url.Values
		lang       string
		wantStatus int
		wantCode   string
		want       []string
		notWant    []string
	}{
		{"unknown client, English", unknown, "en-US,en;q=0.9", http.StatusUnauthorized, "invalid_client",
			[]string{`<html lang="en">`, "Sign-in cannot continue", "is not registered with this sign-in service", "error=invalid_client"},
			[]string{"无法继续登录"}},
		{"unknown client, Chinese", unknown, "zh-CN,zh;q=0.9,en;q=0.8", http.StatusUnauthorized, "invalid_client",
			[]string{`<html lang="zh-CN">`, "无法继续登录", "没有在本登录服务注册", "error=invalid_client"},
			[]string{"Sign-in cannot continue", "is not registered"}},
		{"unregistered redirect URI", badRedirect, "en", http.StatusBadRequest, "invalid_request",
			[]string{"cannot be sent back to it safely", "redirect_uri"},
			[]string{"无法"}},
		{"ui_locales wins", func() url.Values { v := url.Values{}; maps(v, unknown); v.Set("ui_locales", "en"); return v }(), "zh-CN", http.StatusUnauthorized, "invalid_client",
			[]string{"Sign-in cannot continue"}, []string{"无法继续登录"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(tc.q, browser, tc.lang)
			if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s, want %d text/html", resp.StatusCode, resp.Header.Get("Content-Type"), tc.wantStatus)
			}
			if resp.Header.Get("Location") != "" {
				t.Fatalf("redirected to an unverified URI: %s", resp.Header.Get("Location"))
			}
			if !strings.Contains(body, `data-error="`+tc.wantCode+`"`) {
				t.Errorf("page lacks data-error=%q", tc.wantCode)
			}
			if dir := os.Getenv("WXOIDC_TEST_ARTIFACTS"); dir != "" {
				os.WriteFile(filepath.Join(dir, "authorize-error-"+strings.ReplaceAll(tc.name, " ", "-")+".html"), []byte(body), 0o644)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(body, w) {
					t.Errorf("page mixes languages: has %q", w)
				}
			}
		})
	}

	// A client (no Accept, or asking for JSON) still gets JSON.
	for _, accept := range []string{"", "application/json"} {
		resp, body := get(unknown, accept, "")
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil || out["error"] != "invalid_client" || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Accept %q: %d %s, want JSON invalid_client", accept, resp.StatusCode, body)
		}
	}
}

func maps(dst, src url.Values) {
	for k, v := range src {
		dst[k] = v
	}
}

// WriteErrorRedirect puts the error where the client asked for it.
func TestWriteErrorRedirect(t *testing.T) {
	redirect, _ := url.Parse("https://rp.example/cb?keep=1")
	rfc := fosite.ErrAccessDenied.WithHint("The person declined.")
	for _, tc := range []struct {
		mode  fosite.ResponseModeType
		check func(t *testing.T, rec *httptest.ResponseRecorder)
	}{
		{fosite.ResponseModeQuery, func(t *testing.T, rec *httptest.ResponseRecorder) {
			u, _ := url.Parse(rec.Header().Get("Location"))
			q := u.Query()
			if q.Get("error") != "access_denied" || q.Get("state") != "st" || q.Get("iss") != "https://id.example" || q.Get("keep") != "1" || u.Fragment != "" {
				t.Errorf("Location %s", u)
			}
		}},
		// fragment is not offered (discovery): the error goes in the query.
		{fosite.ResponseModeFragment, func(t *testing.T, rec *httptest.ResponseRecorder) {
			u, _ := url.Parse(rec.Header().Get("Location"))
			if u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "st" || u.Fragment != "" {
				t.Errorf("Location %s", u)
			}
		}},
		{fosite.ResponseModeFormPost, func(t *testing.T, rec *httptest.ResponseRecorder) {
			b := rec.Body.String()
			if rec.Header().Get("Location") != "" || !strings.Contains(b, `action="https://rp.example/cb?keep=1"`) || !strings.Contains(b, `value="access_denied"`) {
				t.Errorf("form post: %s", b)
			}
		}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			rec := httptest.NewRecorder()
			provider.WriteErrorRedirect(rec, provider.ErrorRedirect{RedirectURI: redirect, ResponseMode: tc.mode, State: "st", Issuer: "https://id.example"}, rfc, false)
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("error response may be cached")
			}
			tc.check(t, rec)
		})
	}
}
