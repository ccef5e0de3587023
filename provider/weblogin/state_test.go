package weblogin

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

var pendingSeeds = []string{
	`{}`, ` { } `, `null`, ``, `{`, `}`, `[]`, `{"step":"login"}`, `{"step":"login",}`, `{"step":"login"}x`,
	`{"step":"login","params":"client_id=web&redirect_uri=http%3A%2F%2Fx%2Fcb&scope=openid+profile","client_id":"web","redirect_uri":"http://x/cb","state":"s","binding":"ab","locale":"en"}`,
	`{"step":"login","params":"a=1\u0026b=2"}`, `{"step":"lo\"gin"}`, `{"step":"\u00e9"}`, "{\"step\":\"\xc3\xa9\"}", "{\"step\":\"\xff\"}",
	`{"step":"login","step":"wechat","kind":"website","scope":"snsapi_login"}`, `{"Step":"login"}`, `{"STEP":"login"}`,
	`{"step":null}`, `{"step":1}`, `{"scopes":["openid"]}`, `{"qr":{"appid":"a"}}`, `{"other":"x"}`,
	`{"step" : "login" , "locale":"zh-CN"}`, "{\n\t\"step\":\"login\"\r\n}", `{"step":"login"}{}`, `{"step":"login""kind":"x"}`,
	`{"resume":"/device?x=1","subject":"s","response_mode":"form_post"}`, "{\"step\":\"a\tb\"}", `{"step":"login",,"kind":"x"}`,
}

// TestDecodePendingFast: what the fast path decodes, json.Unmarshal decodes
// the same; what it leaves, json.Unmarshal still decodes (or refuses).
func TestDecodePendingFast(t *testing.T) {
	fast := 0
	for _, s := range pendingSeeds {
		if checkPendingFast(t, []byte(s)) {
			fast++
		}
	}
	if fast < 8 {
		t.Errorf("the fast path took %d of the seeds; want the plain ones", fast)
	}
	// What the provider stores: its own encoding, and that with the tail
	// of a WeChat round trip.
	p := &pending{Step: stepLogin, Params: "a=1&b=%3C%3E&scope=openid+profile", ClientID: "web", RedirectURI: "http://x/cb?a=1&b=2",
		State: "<state>&", ResponseMode: "query", Binding: "ab12", Locale: localeEN}
	b, err := encodePending(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := decodePendingFast(b); !ok || !reflect.DeepEqual(got, p) {
		t.Fatalf("fast decode of %s: %+v, %v; want %+v", b, got, ok, p)
	}
	tail, err := wechatTail(wechat.KindWebsite, wechat.ScopeLogin)
	if err != nil {
		t.Fatal(err)
	}
	advanced := append(b[:len(b)-1:len(b)-1], tail...)
	want := *p
	want.Step, want.Kind, want.Scope = stepWeChat, wechat.KindWebsite, wechat.ScopeLogin
	if got, ok := decodePendingFast(advanced); !ok || !reflect.DeepEqual(*got, want) {
		t.Fatalf("fast decode of %s: %+v, %v; want %+v", advanced, got, ok, want)
	}
	checkPendingFast(t, advanced)
}

// checkPendingFast compares decodePendingFast on b with json.Unmarshal and
// reports whether the fast path took b.
func checkPendingFast(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := decodePendingFast(b)
	var want pending
	err := json.Unmarshal(b, &want)
	if ok && (err != nil || !reflect.DeepEqual(*got, want)) {
		t.Errorf("%q: fast %+v; json.Unmarshal %+v, %v", b, *got, want, err)
	}
	if !ok {
		p, derr := decodePending(b)
		if (derr == nil) != (err == nil) || (err == nil && !reflect.DeepEqual(*p, want)) {
			t.Errorf("%q: decodePending %+v, %v; json.Unmarshal %+v, %v", b, p, derr, want, err)
		}
	}
	return ok
}

func FuzzDecodePendingFast(f *testing.F) {
	for _, s := range pendingSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkPendingFast(t, []byte(s)) })
}
