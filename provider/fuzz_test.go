package provider

import (
	"net/url"
	"testing"
)

// FuzzNormalizeAuthorizeForm: whatever query an anonymous caller sends,
// what survives normalisation — and so may be stored as a login state or a
// pushed request — holds only protocol parameters, each within its limit,
// and so stays within a few KiB; and normalising again changes nothing.
func FuzzNormalizeAuthorizeForm(f *testing.F) {
	f.Add("response_type=code&client_id=web&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid&state=abcdefgh&nonce=n", false)
	f.Add("client_id=web&client_secret=s&junk=xxxxxxxx&audience=a&audience=b&state=", true)
	f.Add("request=eyJhbGciOiJub25lIn0.e30.&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax", false)
	f.Add("%zz=1&scope=openid%20profile&max_age=0&prompt=login%20consent", false)
	f.Fuzz(func(t *testing.T, query string, par bool) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return // parseForm refuses it before normalisation
		}
		if err := normalizeAuthorizeForm(form, par); err != nil {
			return
		}
		total := 0
		for k, vs := range form {
			limit, ok := authorizeParams[k]
			if !ok && par {
				limit, ok = clientAuthParams[k]
			}
			if !ok {
				t.Fatalf("unknown parameter %q kept", k)
			}
			if len(vs) > maxRepeats {
				t.Fatalf("%q repeated %d times", k, len(vs))
			}
			for _, v := range vs {
				if len(v) > limit {
					t.Fatalf("%q is %d bytes, over %d", k, len(v), limit)
				}
				total += len(k) + len(v)
			}
		}
		if par {
			dropClientAuth(form)
			for k := range clientAuthParams {
				if form.Has(k) {
					t.Fatalf("client credential %q kept for storage", k)
				}
			}
		}
		before := form.Encode()
		if err := normalizeAuthorizeForm(form, par); err != nil || form.Encode() != before {
			t.Fatalf("normalising twice changed the form (%v)", err)
		}
	})
}
