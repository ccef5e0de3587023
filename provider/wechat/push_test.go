package wechat_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// pushVectors is testdata/push/vectors.json, made by gen_vectors.py next to
// it (Python with the cryptography package, written from WeChat's published
// algorithm, not from this package). The script asserts WeChat's own
// published values: the URL-check signature examples, Tencent's sample
// ciphertext (jn1L23DB…), and the msg_signature values of wechat-api.md
// §15.3.4.
type pushVectors struct {
	Signatures []struct {
		Parts     []string `json:"parts"`
		Signature string   `json:"signature"`
	} `json:"signatures"`
	Ciphers []struct {
		Name           string `json:"name"`
		AppID          string `json:"appid"`
		EncodingAESKey string `json:"encoding_aes_key"`
		Random         string `json:"random"`
		Msg            string `json:"msg"`
		Encrypt        string `json:"encrypt"`
	} `json:"ciphers"`
	Push struct {
		AppID          string            `json:"appid"`
		Token          string            `json:"token"`
		EncodingAESKey string            `json:"encoding_aes_key"`
		Query          map[string]string `json:"query"`
		Body           string            `json:"body"`
		From           string            `json:"from"`
		Scene          string            `json:"scene"`
	} `json:"push"`
	Reply struct {
		Token          string `json:"token"`
		EncodingAESKey string `json:"encoding_aes_key"`
		AppID          string `json:"appid"`
		Msg            string `json:"msg"`
		Envelope       string `json:"envelope"`
	} `json:"reply"`
}

func loadPushVectors(t *testing.T) pushVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/push/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v pushVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPushSignature_Vectors(t *testing.T) {
	v := loadPushVectors(t)
	for _, s := range v.Signatures {
		if got := wechat.PushSignature(s.Parts...); got != s.Signature {
			t.Errorf("PushSignature(%q) = %s, want %s", s.Parts, got, s.Signature)
		}
	}
}

func TestPushCipher_Vectors(t *testing.T) {
	v := loadPushVectors(t)
	if len(v.Ciphers) < 4 {
		t.Fatalf("only %d cipher vectors", len(v.Ciphers))
	}
	for _, c := range v.Ciphers {
		t.Run(c.Name, func(t *testing.T) {
			pc, err := wechat.NewPushCipher(c.AppID, c.EncodingAESKey)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pc.Encrypt([]byte(c.Msg), []byte(c.Random))
			if err != nil || got != c.Encrypt {
				t.Fatalf("Encrypt = %q, %v; want %q", got, err, c.Encrypt)
			}
			msg, err := pc.Decrypt(c.Encrypt)
			if err != nil || string(msg) != c.Msg {
				t.Fatalf("Decrypt = %q, %v; want %q", msg, err, c.Msg)
			}
			other, _ := wechat.NewPushCipher("wx0000000000000000", c.EncodingAESKey)
			if _, err := other.Decrypt(c.Encrypt); !errors.Is(err, wechat.ErrPushAppID) {
				t.Fatalf("Decrypt for another appid: %v, want ErrPushAppID", err)
			}
		})
	}
}

func TestPushReceiver_OpenSafeModeVector(t *testing.T) {
	v := loadPushVectors(t)
	pc, err := wechat.NewPushCipher(v.Push.AppID, v.Push.EncodingAESKey)
	if err != nil {
		t.Fatal(err)
	}
	r := &wechat.PushReceiver{AppID: v.Push.AppID, Token: v.Push.Token, Mode: wechat.PushSafe, Cipher: pc}
	q := url.Values{}
	for k, val := range v.Push.Query {
		q.Set(k, val)
	}
	at := time.Unix(1700000000, 0).Add(30 * time.Second)
	o, err := r.Open(q, []byte(v.Push.Body), at)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Encrypted || o.Message.FromUserName != v.Push.From {
		t.Fatalf("opened %+v", o.Message)
	}
	scene, ok := o.Message.QRScene()
	if !ok || scene != v.Push.Scene {
		t.Fatalf("QRScene = %q, %v; want %q", scene, ok, v.Push.Scene)
	}

	// Every check refuses a tampered request.
	tamper := func(k, val string) url.Values {
		c := url.Values{}
		for kk, vv := range q {
			c[kk] = vv
		}
		c.Set(k, val)
		return c
	}
	cases := []struct {
		name string
		q    url.Values
		body string
		at   time.Time
		want error
	}{
		{"forged signature", tamper("signature", strings.Repeat("0", 40)), v.Push.Body, at, wechat.ErrPushSignature},
		{"forged msg_signature", tamper("msg_signature", strings.Repeat("a", 40)), v.Push.Body, at, wechat.ErrPushSignature},
		{"stale", q, v.Push.Body, at.Add(10 * time.Minute), wechat.ErrPushStale},
		{"future", q, v.Push.Body, at.Add(-10 * time.Minute), wechat.ErrPushStale},
		{"plaintext in safe mode", tamper("encrypt_type", ""), v.Push.Body, at, wechat.ErrPushMode},
		{"other ciphertext", q, strings.Replace(v.Push.Body, "n4pk", "m4pk", 1), at, wechat.ErrPushSignature},
		{"malformed XML", q, "<xml><ToUserName>", at, wechat.ErrPushMalformed},
		{"wrong ToUserName outside", q, strings.Replace(v.Push.Body, "gh_0123456789ab", "gh_ffffffffffff", 1), at, wechat.ErrPushAppID},
	}
	for _, tc := range cases {
		if _, err := r.Open(tc.q, []byte(tc.body), tc.at); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestPushReceiver_Plaintext(t *testing.T) {
	const token = "devpushtoken"
	now := time.Unix(1764680000, 0)
	body := wechat.NewPushEvent("gh_0123456789ab", "oAlice", now.Unix(), wechat.EventScan, "scene42", "TICKET+/=")
	q := url.Values{"timestamp": {strconv.FormatInt(now.Unix(), 10)}, "nonce": {"nonce123"}, "openid": {"oAlice"}}
	q.Set("signature", wechat.PushSignature(token, q.Get("timestamp"), q.Get("nonce")))

	r := &wechat.PushReceiver{AppID: "wxd0000000000000c3", Token: token}
	o, err := r.Open(q, body, now)
	if err != nil {
		t.Fatal(err)
	}
	m := o.Message
	if o.Encrypted || m.FromUserName != "oAlice" || m.Ticket != "TICKET+/=" || m.CreateTime != now.Unix() {
		t.Fatalf("opened %+v", m)
	}
	if s, ok := m.QRScene(); !ok || s != "scene42" {
		t.Fatalf("QRScene = %q, %v", s, ok)
	}
	if _, err := (&wechat.PushReceiver{Token: "other"}).Open(q, body, now); !errors.Is(err, wechat.ErrPushSignature) {
		t.Fatalf("other token: %v", err)
	}
	if _, err := (&wechat.PushReceiver{Token: token, Mode: wechat.PushSafe}).Open(q, body, now); !errors.Is(err, wechat.ErrPushMode) {
		t.Fatalf("safe mode receiver took plaintext: %v", err)
	}
	// An encrypted push to a receiver without a key.
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	q2.Set("encrypt_type", "aes")
	if _, err := r.Open(q2, body, now); !errors.Is(err, wechat.ErrPushMode) {
		t.Fatalf("aes push to plaintext receiver: %v", err)
	}

	// The URL check echoes echostr only with the right signature.
	q.Set("echostr", "5837397520980539")
	if e, err := r.VerifyURL(q); err != nil || e != "5837397520980539" {
		t.Fatalf("VerifyURL = %q, %v", e, err)
	}
	q.Set("signature", "x")
	if _, err := r.VerifyURL(q); !errors.Is(err, wechat.ErrPushSignature) {
		t.Fatalf("VerifyURL forged: %v", err)
	}
}

func TestPushReceiver_SealReplyVector(t *testing.T) {
	v := loadPushVectors(t)
	pc, _ := wechat.NewPushCipher(v.Reply.AppID, v.Reply.EncodingAESKey)
	// WeChat's side opens the vector's envelope...
	got, err := pc.OpenReply(v.Reply.Token, []byte(v.Reply.Envelope))
	if err != nil || string(got) != v.Reply.Msg {
		t.Fatalf("OpenReply = %q, %v", got, err)
	}
	// ...and what SealReply produces (fresh random) opens to the same.
	r := &wechat.PushReceiver{AppID: v.Reply.AppID, Token: v.Reply.Token, Mode: wechat.PushSafe, Cipher: pc}
	env, err := r.SealReply([]byte(v.Reply.Msg), "1700000001", "987654321")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := pc.OpenReply(v.Reply.Token, env); err != nil || string(got) != v.Reply.Msg {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	if _, err := pc.OpenReply("wrongtoken", env); !errors.Is(err, wechat.ErrPushSignature) {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestPushMessage_QRScene(t *testing.T) {
	cases := []struct {
		name, event, key, ticket string
		want                     string
		ok                       bool
	}{
		{"new follower", "subscribe", "qrscene_abc", "T", "abc", true},
		{"follower", "SCAN", "abc", "T", "abc", true},
		{"follower lower case", "scan", "abc", "T", "abc", true},
		{"plain follow", "subscribe", "", "", "", false},
		{"subscribe without prefix", "subscribe", "abc", "T", "", false},
		{"no ticket", "SCAN", "abc", "", "", false},
		{"unfollow", "unsubscribe", "", "", "", false},
	}
	for _, tc := range cases {
		m, err := wechat.ParsePushMessage(wechat.NewPushEvent("gh_x", "o1", 1, tc.event, tc.key, tc.ticket))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := m.QRScene()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: QRScene = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	// Retries (same body) share a key; another second or event does not.
	a, _ := wechat.ParsePushMessage(wechat.NewPushEvent("gh_x", "o1", 1, "SCAN", "abc", "T"))
	b, _ := wechat.ParsePushMessage(wechat.NewPushEvent("gh_x", "o1", 1, "SCAN", "abc", "T"))
	c, _ := wechat.ParsePushMessage(wechat.NewPushEvent("gh_x", "o1", 2, "SCAN", "abc", "T"))
	d, _ := wechat.ParsePushMessage(wechat.NewPushEvent("gh_x", "o1", 1, "subscribe", "qrscene_abc", "T"))
	if a.DedupKey() != b.DedupKey() || a.DedupKey() == c.DedupKey() || a.DedupKey() == d.DedupKey() {
		t.Fatal("DedupKey does not tell retries from other events")
	}
}

func TestNewPushCipher_Keys(t *testing.T) {
	for _, k := range []string{"", "short", strings.Repeat("a", 44), strings.Repeat("a", 42) + "!"} {
		if _, err := wechat.NewPushCipher("wx1", k); err == nil {
			t.Errorf("key %q accepted", k)
		} else if k != "" && strings.Contains(err.Error(), k) {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}

// TestPushReceiver_PreviousKey: while WeChat switches to a new
// EncodingAESKey, pushes sealed with the old one open, and their replies
// are sealed with the key that opened them.
func TestPushReceiver_PreviousKey(t *testing.T) {
	const appID, token = "wx0123456789abcdef", "tok"
	oldKey, _ := wechat.NewPushCipher(appID, "AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBS")
	newKey, _ := wechat.NewPushCipher(appID, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8")
	now := time.Unix(1700000000, 0)
	msg := wechat.NewPushEvent("gh_x", "o1", now.Unix(), "SCAN", "s", "T")
	for _, tc := range []struct {
		name     string
		sealer   *wechat.PushCipher
		previous *wechat.PushCipher
		ok       bool
	}{
		{"current key", newKey, oldKey, true},
		{"previous key", oldKey, oldKey, true},
		{"old key without previous", oldKey, nil, false},
	} {
		body, msgSig, err := tc.sealer.SealPush(token, "gh_x", "1700000000", "n", msg)
		if err != nil {
			t.Fatal(err)
		}
		q := url.Values{"timestamp": {"1700000000"}, "nonce": {"n"}, "signature": {wechat.PushSignature(token, "1700000000", "n")},
			"encrypt_type": {"aes"}, "msg_signature": {msgSig}}
		r := &wechat.PushReceiver{AppID: appID, Token: token, Mode: wechat.PushSafe, Cipher: newKey, PreviousCipher: tc.previous}
		o, err := r.Open(q, body, now)
		if (err == nil) != tc.ok {
			t.Fatalf("%s: Open error %v", tc.name, err)
		}
		if err != nil {
			continue
		}
		reply, err := r.SealReplyTo(o, []byte("<xml/>"))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := tc.sealer.OpenReply(token, reply); err != nil || string(got) != "<xml/>" {
			t.Fatalf("%s: reply not sealed with the key that opened the push: %q, %v", tc.name, got, err)
		}
	}
}
