package storage_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/wxoidc/wxoidc/storage"
)

// TestRequestRecord_Marshal: Marshal writes exactly what json.Marshal
// writes, for token requests and authorize requests, with text that
// encoding/json escapes.
func TestRequestRecord_Marshal(t *testing.T) {
	client := &storage.Client{ID: "c<&>\u2028"}
	sess := &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: "sub<script>&\u2029", Extra: map[string]any{"name": "张三 <b>", "n": 1.5}},
		Headers: &jwt.Headers{Extra: map[string]any{"typ": "JWT"}},
		Subject: "sub<script>&",
	}
	sess.SetExpiresAt(fosite.AccessToken, time.Date(2026, 12, 2, 1, 2, 3, 4, time.UTC))
	req := &fosite.Request{
		ID: "r1", RequestedAt: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Client: client, Session: sess,
		RequestedScope: fosite.Arguments{"openid", "a&b"}, GrantedScope: fosite.Arguments{"openid"},
		Form: url.Values{"x": {"<y>"}},
	}
	ar := &fosite.AuthorizeRequest{Request: *req, ResponseTypes: fosite.Arguments{"code"}, State: "s<&>"}
	ar.RedirectURI, _ = url.Parse("https://rp.example/cb?a=<b>")
	cases := []struct {
		name string
		req  fosite.Requester
	}{
		{"token", req},
		{"authorize", ar},
		{"no session", &fosite.Request{ID: "r2", Client: client}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := storage.EncodeRequest(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rec.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
