package console_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// client is a cookie-keeping HTTP client that does not follow redirects.
func (e *env) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// signedIn returns a client signed in with the admin token and its CSRF
// token.
func (e *env) signedIn(t *testing.T) (*http.Client, string) {
	t.Helper()
	c := e.client(t)
	resp, err := c.Get(e.console + "login")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	m := csrfRE.FindStringSubmatch(b.String())
	if m == nil {
		t.Fatal("no CSRF token on the sign-in page")
	}
	resp, err = c.PostForm(e.console+"login/token", url.Values{"csrf_token": {m[1]}, "token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("break-glass sign-in: %d", resp.StatusCode)
	}
	return c, m[1]
}

func TestCSRF_CrossSiteRefused(t *testing.T) {
	e := newEnv(t)
	c, csrf := e.signedIn(t)
	for _, tc := range []struct {
		name   string
		header map[string]string
		form   url.Values
		want   int
	}{
		{"no token", nil, url.Values{}, http.StatusForbidden},
		{"wrong token", nil, url.Values{"csrf_token": {"x" + csrf}}, http.StatusForbidden},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, url.Values{"csrf_token": {csrf}}, http.StatusForbidden},
		{"same-site", map[string]string{"Sec-Fetch-Site": "same-site"}, url.Values{"csrf_token": {csrf}}, http.StatusForbidden},
		{"other origin", map[string]string{"Origin": "https://evil.example"}, url.Values{"csrf_token": {csrf}}, http.StatusForbidden},
		{"right", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "null"}, url.Values{"csrf_token": {csrf}}, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.console+"keys/rotate", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestSession_TamperedOrForeignCookieRefused(t *testing.T) {
	e := newEnv(t)
	c, _ := e.signedIn(t)
	u, _ := url.Parse(e.console)
	var session, binding *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		switch ck.Name {
		case "wxoidc_console":
			session = ck
		case "wxoidc_console_b":
			binding = ck
		}
	}
	if session == nil || binding == nil {
		t.Fatal("no session or binding cookie")
	}
	b := []byte(session.Value)
	b[len(b)/2] ^= 1
	for name, value := range map[string]string{"tampered": string(b), "binding cookie's value": binding.Value, "empty": ""} {
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(u, []*http.Cookie{{Name: "wxoidc_console", Value: value, Path: "/console/"}})
		other := &http.Client{Jar: jar, CheckRedirect: c.CheckRedirect}
		resp, err := other.Get(e.console + "apps")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
			t.Errorf("%s session cookie: %d %s, want the sign-in page", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, err := c.Get(e.console + "apps")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the real session: %d", resp.StatusCode)
	}
}

func TestLanguageSwitch_StaysInTheConsole(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	for next, want := range map[string]string{
		"/console/apps":          "/console/apps",
		"https://evil.example/":  "/console/",
		"//evil.example/console": "/console/",
		"/console/\\evil":        "/console/",
		"/admin/clients":         "/console/",
	} {
		resp, err := c.Get(e.console + "lang/en?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next=%s: went to %q, want %q", next, got, want)
		}
	}
}
