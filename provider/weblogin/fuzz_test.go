package weblogin

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzBindingCookie: a binding cookie value from a browser is accepted only
// if this provider issued it; nothing a client sends makes the check panic,
// and no value but an issued one verifies.
func FuzzBindingCookie(f *testing.F) {
	// Only the parts the binding needs (New wants storage and apps).
	a := &Authenticator{bindingKey: []byte("fuzz binding key 0123456789abcdef"), hostCookies: true}
	issued := a.newBinding()
	f.Add(issued)
	f.Add(strings.Repeat("A", 43))
	f.Add(issued[:len(issued)-1] + "x")
	f.Add("." + issued)
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.")
	f.Fuzz(func(t *testing.T, v string) {
		ok := a.validBinding(v)
		if ok && v != issued {
			// Another value may verify only if it is itself issued: the
			// same random part with the right MAC, i.e. the same string.
			random, _, _ := strings.Cut(v, ".")
			if random+"."+a.bindingMAC(random) != v {
				t.Fatalf("%q verified without its MAC", v)
			}
		}
		r := httptest.NewRequest("GET", "https://id.example.com/login", nil)
		r.Header.Set("Cookie", "__Host-wxoidc_browser="+v)
		got := a.bindingOf(r)
		if got != "" && !a.validBinding(got) {
			t.Fatalf("bindingOf returned an unverified %q", got)
		}
	})
}
