package main

import (
	"strings"
	"testing"
)

// TestServeCheck_PushConfig: the push and follow_login keys are validated
// with messages that name the key, and never quote a secret.
func TestServeCheck_PushConfig(t *testing.T) {
	const head = "issuer: https://id.example.com\nsecret: ssssssssssssssssssssssssssssssssssss\nstorage:\n  dsn: memory://\nwechat:\n  apps:\n    - appid: wxd0000000000000c3\n      secret: oasecret\n"
	const goodKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	cases := []struct {
		name, yaml string
		wantKeys   []string // empty: accepted
	}{
		{"plaintext", "      kind: official\n      push:\n        token: devpushtoken\n", nil},
		{"safe, key from a file", "      kind: official\n      push:\n        token: tok123\n        aes_key_file: " + writeFile(t, "aes", goodKey+"\n") + "\n      follow_login:\n        qr_lifetime: 2m\n        reply: \"已登录 {client}\"\n", nil},
		{"token missing", "      kind: official\n      push:\n        mode: plaintext\n", []string{"wechat.apps[0].push.token"}},
		{"token from an empty env", "      kind: official\n      push:\n        token_env: WXOIDC_TEST_SURELY_UNSET_TOKEN\n", []string{"wechat.apps[0].push.token", "token_env"}},
		{"token with symbols", "      kind: official\n      push:\n        token: \"bad token!\"\n", []string{"wechat.apps[0].push.token"}},
		{"token twice", "      kind: official\n      push:\n        token: abc123\n        token_env: X\n", []string{"wechat.apps[0].push.token"}},
		{"push on a mini program", "      kind: miniprogram\n      push:\n        token: abc123\n", []string{"wechat.apps[0].push"}},
		{"safe without key", "      kind: official\n      push:\n        token: abc123\n        mode: safe\n", []string{"wechat.apps[0].push.aes_key"}},
		{"short key", "      kind: official\n      push:\n        token: abc123\n        aes_key: SECRETKEYVALUE\n", []string{"wechat.apps[0].push.aes_key", "43"}},
		{"previous key", "      kind: official\n      push:\n        token: abc123\n        aes_key: " + goodKey + "\n        previous_aes_key: AdiqDDDvUNCeE1ZW5XJmjf9fqNBJpGBs4vL4cHKmHBS\n", nil},
		{"previous key in plaintext mode", "      kind: official\n      push:\n        token: abc123\n        mode: plaintext\n        previous_aes_key: " + goodKey + "\n", []string{"wechat.apps[0].push.previous_aes_key"}},
		{"bad mode", "      kind: official\n      push:\n        token: abc123\n        mode: loud\n", []string{"wechat.apps[0].push.mode"}},
		{"lifetime", "      kind: official\n      push:\n        token: abc123\n      follow_login:\n        qr_lifetime: 1h\n", []string{"wechat.apps[0].follow_login.qr_lifetime"}},
		{"follow_login without push", "      kind: official\n      follow_login:\n        reply: hi\n", []string{"wechat.apps[0].follow_login", "push.token"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCmd(t, noEnv, "serve", "--config", writeFile(t, "c.yaml", head+tc.yaml), "--check")
			if len(tc.wantKeys) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %s", out)
			}
			for _, k := range tc.wantKeys {
				if !strings.Contains(err.Error(), k) {
					t.Errorf("error %q does not name %q", err, k)
				}
			}
			for _, secret := range []string{"SECRETKEYVALUE", "bad token!", "abc123"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error quotes a secret: %q", err)
				}
			}
		})
	}
}
