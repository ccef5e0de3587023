package weblogin_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"testing"
)

// TestChooserPrerendered: the pre-rendered login page is byte for byte the
// one the template writes, in each language, for the ids the provider
// hands out and for any other (which the template renders).
func TestChooserPrerendered(t *testing.T) {
	e := newEnv(t, withScan(0))
	a := e.auths[0]
	if n := a.ChooserLocales(); n != 2 {
		t.Fatalf("%d languages pre-rendered; want 2", n)
	}
	ids := []string{"", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "AZaz09-._~",
		"a b", "<script>", `x"y`, "x&method=qr", "%41", "é", "a+b", "javascript:alert(1)"}
	for _, lang := range []struct{ uiLocales, accept string }{{"", ""}, {"", "en-US,en;q=0.9"}, {"en", "zh-CN"}, {"zh-CN", "en"}} {
		for _, id := range ids {
			q := url.Values{"login": {id}}
			if lang.uiLocales != "" {
				q.Set("ui_locales", lang.uiLocales)
			}
			r := httptest.NewRequest(http.MethodGet, e.issuer+"/login?"+q.Encode(), nil)
			if lang.accept != "" {
				r.Header.Set("Accept-Language", lang.accept)
			}
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			a.ShowChooser(got, r, id)
			a.RenderChooser(want, r, id)
			if got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) {
				t.Errorf("id %q, %+v: status %d header %v; want %d %v", id, lang, got.Code, got.Header(), want.Code, want.Header())
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("id %q, %+v: page\n%s\nwant\n%s", id, lang, got.Body, want.Body)
			}
			if len(choices(got.Body.String())) != 2 {
				t.Errorf("id %q: choices %v; want qr and scan", id, choices(got.Body.String()))
			}
		}
	}
}
