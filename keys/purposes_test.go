package keys

import (
	"bytes"
	"testing"
)

// No two uses of the system secret share a purpose, so none share a key.
func TestPurposes_Distinct(t *testing.T) {
	all := []string{
		PurposeSigningKeys, PurposeWeChatSessionKeys, PurposeWeChatServerTokens, PurposeRefreshGrace,
		PurposeFositeHMAC, PurposeClientSecrets, PurposeRegistrationTokens,
		PurposeWebLoginCSRF, PurposeWebLoginBinding, PurposeFollowLoginScene,
		PurposeConsoleCookieSeal, PurposeConsoleCSRF, PurposeConsoleAdminToken,
	}
	seen := map[string]bool{}
	for _, p := range all {
		if p == "" || seen[p] {
			t.Errorf("purpose %q is empty or used twice", p)
		}
		seen[p] = true
	}
	secret := bytes.Repeat([]byte("s"), 32)
	if bytes.Equal(DeriveMAC(secret, PurposeWebLoginCSRF), DeriveMAC(secret, PurposeWebLoginBinding)) {
		t.Error("two purposes derive the same key")
	}
	if len(DeriveMAC(secret, PurposeConsoleCookieSeal)) != 32 {
		t.Error("DeriveMAC does not give 32 bytes (AES-256 needs them)")
	}
}
