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

// TestUnmarshalRecord: decoding the session in the record's pass gives the
// same record (without Session) and the same session as json.Unmarshal and
// Decode, for a record with a session, without one, with a null one, and
// with no session to decode into; malformed records are refused.
func TestUnmarshalRecord(t *testing.T) {
	client := &storage.Client{ID: "c1"}
	sess := &openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{Subject: "sub", Extra: map[string]any{"name": "张三", "n": 1.5}},
		Headers: &jwt.Headers{Extra: map[string]any{"typ": "JWT"}},
		Subject: "sub",
	}
	sess.SetExpiresAt(fosite.RefreshToken, time.Date(2026, 12, 2, 1, 2, 3, 0, time.UTC))
	rec, err := storage.EncodeRequest(&fosite.Request{
		ID: "r1", RequestedAt: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Client: client, Session: sess,
		RequestedScope: fosite.Arguments{"openid", "offline"}, GrantedScope: fosite.Arguments{"openid"},
		Form: url.Values{"x": {"y"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	withSession, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"session":    withSession,
		"none":       []byte(`{"id":"r2","client_id":"c1"}`),
		"null":       []byte(`{"id":"r3","client_id":"c1","session":null}`),
		"other case": []byte(`{"id":"r4","client_id":"c1","Session":{"subject":"s4"}}`),
	} {
		t.Run(name, func(t *testing.T) {
			var want storage.RequestRecord
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			wantSess := &openid.DefaultSession{}
			if len(want.Session) > 0 {
				if err := json.Unmarshal(want.Session, wantSess); err != nil {
					t.Fatal(err)
				}
			}
			gotSess := &openid.DefaultSession{}
			got, err := storage.UnmarshalRecord(data, gotSess)
			if err != nil {
				t.Fatal(err)
			}
			if got.Session != nil {
				t.Errorf("Session kept: %s", got.Session)
			}
			a, _ := json.Marshal(gotSess)
			b, _ := json.Marshal(wantSess)
			if !bytes.Equal(a, b) {
				t.Errorf("session\n got %s\nwant %s", a, b)
			}
			want.Session = nil
			a, _ = json.Marshal(got)
			b, _ = json.Marshal(want)
			if !bytes.Equal(a, b) {
				t.Errorf("record\n got %s\nwant %s", a, b)
			}
			nilSess, err := storage.UnmarshalRecord(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			var plain storage.RequestRecord
			_ = json.Unmarshal(data, &plain)
			a, _ = json.Marshal(nilSess)
			b, _ = json.Marshal(plain)
			if !bytes.Equal(a, b) {
				t.Errorf("without a session\n got %s\nwant %s", a, b)
			}
		})
	}
	for _, bad := range []string{`{`, `{"id":"r","session":{"subject":1}}`, `{"id":"r","session":[1]}`} {
		if _, err := storage.UnmarshalRecord([]byte(bad), &openid.DefaultSession{}); err == nil {
			t.Errorf("UnmarshalRecord(%s) accepted", bad)
		}
	}
}
