package ops

import (
	"net/url"
	"strings"
	"testing"
)

// TestQueryClientID: the request line's client id is the one u.Query()
// finds, however the query is written.
func TestQueryClientID(t *testing.T) {
	for _, q := range []string{
		"", "client_id=web", "a=1&client_id=web&b=2", "client_id=first&client_id=second",
		"client_id=a%20b", "client_id=a+b", "client%5Fid=escaped", "client_id=bad%zz&client_id=good",
		"client_id;x=1&client_id=after", "client_id", "client_id=", "&&client_id=x&&", "%zz=1&client_id=y",
		"CLIENT_ID=upper", "client_id=%E4%BD%A0", "x=" + strings.Repeat("&", 150) + "client_id=many",
		"client_id=1;2", "a=1&" + strings.Repeat("b=2&", 120) + "client_id=z",
	} {
		u := &url.URL{Path: "/oauth2/authorize", RawQuery: q}
		if got, want := queryClientID(u), u.Query().Get("client_id"); got != want {
			t.Errorf("query %q: client id %q; want %q", q, got, want)
		}
	}
}
